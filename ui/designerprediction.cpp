// The designer's live prediction (designer.h): debounced, on a worker
// thread, shown as step time, memory per stage and a breakdown, and stored
// as a predicted run of the project.
#include "designer.h"
#include "theme.h"

#include "layertablemodel.h"
#include "modelgraphview.h"
#include "palettemodel.h"

#include "partita/core/clusterio.h"
#include "partita/core/modelio.h"
#include "partita/core/units.h"
#include "partita/core/dtype.h"
#include "partita/profiler/tracestore.h"

#include <QBarCategoryAxis>
#include <QBarSet>
#include <QChart>
#include <QEvent>
#include <QChartView>
#include <QCheckBox>
#include <QComboBox>
#include <QFormLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QHorizontalStackedBarSeries>
#include <QLabel>
#include <QLineSeries>
#include <QListView>
#include <QMenu>
#include <QPushButton>
#include <QSortFilterProxyModel>
#include <QSpinBox>
#include <QSplitter>
#include <QStackedBarSeries>
#include <QTabWidget>
#include <QTableView>
#include <QTimer>
#include <QToolButton>
#include <QInputDialog>
#include <QLineEdit>
#include <QMessageBox>
#include <QUndoStack>
#include <QValueAxis>
#include <QVBoxLayout>
#include <QtConcurrent/QtConcurrentRun>


#include <algorithm>
#include <set>

namespace partita {

namespace {

QString seconds(double s)
{
    if (s >= 1)
        return QString::number(s, 'f', 3) + " s";
    return QString::number(s * 1e3, 'f', s < 0.01 ? 3 : 1) + " ms";
}
QString gib(double b) { return QString::number(b / double(1 << 30), 'f', 2) + " GiB"; }

// The prediction's throughput, MFU and peak memory, as the summary line says them.
QString predictionSummary(const SimResult& r)
{
    return Designer::tr("%1 samples/s · %2 tokens/s · MFU %3 %<br>peak memory %4 of %5 per GPU")
        .arg(QString::number(r.samples_per_s, 'f', 1))
        .arg(QLocale().toString(qlonglong(r.tokens_per_s)))
        .arg(QString::number(r.mfu * 100, 'f', 1))
        .arg(gib(r.memory.peak), gib(r.memory.capacity));
}

// Out of memory, if so, and the simulator's notes, one a line.
QString predictionStatus(const SimResult& r)
{
    QString status;
    if (r.oom)
        status = Designer::tr("<span style='color:#c62828'><b>Out of memory</b> on the stages in red.</span>");
    for (const std::string& n : r.notes)
        status += (status.isEmpty() ? "" : "<br>") + QString::fromStdString(n).toHtmlEscaped();
    return status;
}

// The device's capacity as a dashed red line across the stages' bars, on its own hidden x axis.
void addCapacityLine(QChart* chart, const SimResult& r, qsizetype stageCount, QValueAxis* values)
{
    auto* cap = new QLineSeries;
    cap->setName(Designer::tr("capacity"));
    cap->append(-0.5, r.memory.capacity / double(1 << 30));
    cap->append(double(stageCount) - 0.5, r.memory.capacity / double(1 << 30));
    QPen pen(QColor(0xc6, 0x28, 0x28));
    pen.setStyle(Qt::DashLine);
    pen.setWidth(2);
    cap->setPen(pen);
    chart->addSeries(cap);
    auto* capX = new QValueAxis;
    capX->setRange(-0.5, double(stageCount) - 0.5);
    capX->setVisible(false);
    chart->addAxis(capX, Qt::AlignTop);
    cap->attachAxis(capX);
    cap->attachAxis(values);
}

// Memory per pipeline stage, stacked, with the device's capacity; `small` gets the legend's (smaller) font.
QChart* memoryChart(const SimResult& r, QFont& small)
{
    auto* chart = new QChart;
    chart->setTitle(Designer::tr("Memory per GPU, by pipeline stage (GiB)"));
    auto* weights = new QBarSet(Designer::tr("weights + optimizer"));
    auto* acts = new QBarSet(Designer::tr("activations"));
    weights->setColor(QColor(0x3b, 0x7d, 0xd8));
    acts->setColor(QColor(0x8e, 0x6b, 0xc4));
    weights->setSelectedColor(QColor(0xc6, 0x28, 0x28));
    acts->setSelectedColor(QColor(0xe5, 0x73, 0x73));
    QStringList stages;
    double top = r.memory.capacity;
    for (size_t i = 0; i < r.stage_memory.size(); ++i) {
        const MemoryUse& m = r.stage_memory[i];
        *weights << m.parameters_optimizer / double(1 << 30);
        *acts << m.activations / double(1 << 30);
        if (m.oom) {
            weights->selectBar(int(i));
            acts->selectBar(int(i));
        }
        stages << Designer::tr("stage %1").arg(i);
        top = std::max(top, m.peak);
    }
    auto* bars = new QStackedBarSeries;
    bars->append(weights);
    bars->append(acts);
    chart->addSeries(bars);
    auto* cats = new QBarCategoryAxis;
    cats->append(stages);
    auto* values = new QValueAxis;
    values->setRange(0, top * 1.1 / double(1 << 30));
    values->applyNiceNumbers(); // round GiB ticks
    values->setLabelFormat("%.0f");
    chart->addAxis(cats, Qt::AlignBottom);
    chart->addAxis(values, Qt::AlignLeft);
    bars->attachAxis(cats);
    bars->attachAxis(values);
    addCapacityLine(chart, r, stages.size(), values);
    chart->legend()->setAlignment(Qt::AlignBottom);
    small = chart->legend()->font();
    small.setPointSizeF(small.pointSizeF() * 0.85);
    chart->legend()->setFont(small);
    chart->setMargins(QMargins(4, 4, 4, 4));
    return chart;
}

// Where the step goes, on the most loaded stage, in milliseconds; the legend in `small`.
QChart* breakdownChart(const Breakdown& b, const QFont& small)
{
    auto* bd = new QChart;
    bd->setTitle(Designer::tr("Step breakdown (ms)"));
    auto* series = new QHorizontalStackedBarSeries;
    auto add = [&](const QString& name, double s, QColor c) {
        if (s <= 0)
            return; // a legend entry for nothing only crowds the others out
        const double ms = s * 1e3;
        auto* set = new QBarSet(QString("%1 %2").arg(name, QString::number(ms, 'f', ms >= 10 ? 0 : 1)));
        *set << s * 1e3;
        set->setColor(c);
        series->append(set);
    };
    add(Designer::tr("compute"), b.compute - b.tp_comm, QColor(0x3d, 0x9a, 0x50));
    add(Designer::tr("TP comm"), b.tp_comm, QColor(0xe8, 0x8a, 0x2a));
    add(Designer::tr("exposed comm"), b.exposed_comm, QColor(0xc6, 0x28, 0x28));
    add(Designer::tr("bubble"), b.bubble, QColor(0x9a, 0xa0, 0xa6));
    add(Designer::tr("optimizer"), b.optimizer, QColor(0x63, 0x3f, 0x9e));
    add(Designer::tr("idle"), b.idle, QColor(0xd0, 0xd0, 0xd0));
    bd->addSeries(series);
    auto* bcat = new QBarCategoryAxis;
    bcat->append(Designer::tr("step"));
    auto* bval = new QValueAxis;
    bval->setLabelFormat("%.0f");
    bval->setTickCount(3);
    bd->addAxis(bcat, Qt::AlignLeft);
    bd->addAxis(bval, Qt::AlignBottom);
    series->attachAxis(bcat);
    series->attachAxis(bval);
    bcat->setVisible(false);
    bd->legend()->setAlignment(Qt::AlignRight);
    bd->legend()->setFont(small);
    bd->setMargins(QMargins(4, 4, 4, 4));
    return bd;
}

} // namespace

bool Designer::predicting() const { return m_debounce->isActive() || m_inFlight || m_rerun; }

bool Designer::comparing() const { return m_compareWatcher->isRunning(); }

void Designer::schedulePrediction()
{
    m_statusLabel->setText(tr("<i>Predicting…</i>"));
    m_debounce->start();
}

void Designer::startPrediction()
{
    if (!m_model)
        return;
    if (m_inFlight) {
        m_rerun = true; // once this one is done
        return;
    }
    if (!m_resolved) {
        m_result.reset();
        m_predictionError = m_resolveError;
        showPrediction();
        emit predictionUpdated();
        return;
    }
    const int gen = m_generation;
    auto model = m_model;
    auto cluster = m_cluster;
    Strategy s = m_strategy;
    m_inFlight = true;
    m_watcher->setFuture(QtConcurrent::run([gen, model, cluster, s]() { return predict(*model, *cluster, s, false, gen); }));
}

void Designer::predictionDone()
{
    m_inFlight = false;
    Outcome o = m_watcher->result();
    if (o.generation == m_generation) {
        m_result = std::move(o.result);
        m_predictionError = o.error;
        m_layers->setPrediction(m_result);
        showPrediction();
        emit predictionUpdated();
    } else {
        m_rerun = true;
    }
    if (m_rerun && !m_debounce->isActive()) {
        m_rerun = false;
        startPrediction();
    }
}

void Designer::showPrediction()
{
    if (!m_result) {
        m_stepLabel->setText(tr("—"));
        m_summaryLabel->clear();
        m_statusLabel->setText(
            tr("<span style='color:#c62828'><b>Not predicted:</b> %1</span>").arg(m_predictionError.toHtmlEscaped()));
        m_memoryChart->setChart(new QChart);
        m_breakdownChart->setChart(new QChart);
        m_layers->setPrediction(std::nullopt);
        return;
    }
    const SimResult& r = *m_result;
    m_stepLabel->setText(tr("%1 per step").arg(seconds(r.step_time)));
    m_summaryLabel->setText(predictionSummary(r));
    m_statusLabel->setText(predictionStatus(r));

    QFont small;
    auto* chart = memoryChart(r, small);
    m_memoryChart->setChart(chart);
    styleChart(chart, palette());

    auto* bd = breakdownChart(r.breakdown, small);
    m_breakdownChart->setChart(bd);
    styleChart(bd, palette());
}

void Designer::storePredictedRun()
{
    if (!m_model || !m_resolved) {
        showError(m_model ? tr("The strategy does not resolve:\n%1").arg(m_resolveError) : tr("No model is open."));
        return;
    }
    if (m_traceWatcher->isRunning())
        return;
    m_timelineButton->setEnabled(false);
    auto model = m_model;
    auto cluster = m_cluster;
    Strategy s = m_strategy;
    m_traceWatcher->setFuture(QtConcurrent::run([model, cluster, s]() { return predict(*model, *cluster, s, true); }));
}

Designer::Outcome Designer::predict(const Model& m, const Cluster& c, const Strategy& s, bool trace, int generation)
{
    Outcome o;
    o.generation = generation;
    SimOptions opt;
    opt.trace = trace;
    auto r = simulate(m, c, s, opt);
    if (r)
        o.result = std::move(*r);
    else
        o.error = QString::fromStdString(r.error().str());
    return o;
}

Result<int64_t> Designer::storePrediction(const Strategy& s, const SimResult& r)
{
    if (!m_store)
        return Error{{}, {}, "open or create a project to keep predicted timelines"};
    auto save = [&](const char* kind, const std::string& name, const std::string& body, int64_t& cached) -> Result<bool> {
        if (cached)
            return true;
        auto d = m_store->saveDocument(kind, name, body);
        if (!d)
            return d.error();
        cached = d->id;
        return true;
    };
    if (auto m = save("model", m_model->name, modelToJson(*m_model), m_modelDoc); !m)
        return m.error();
    if (auto c = save("cluster", m_cluster->name, clusterToJson(*m_cluster), m_clusterDoc); !c)
        return c.error();
    const std::string name = s.name.empty() ? "designer" : s.name;
    // The strategy as a document: the newest saved version that is this very
    // strategy, else a new version.
    int64_t strategyDoc = 0;
    int version = 0;
    const std::string body = strategyToJson(s);
    if (auto docs = m_store->documents("strategy"))
        for (const Document& d : *docs)
            if (d.name == name && d.body == body && d.version > version) {
                version = d.version;
                strategyDoc = d.id;
            }
    if (!strategyDoc) {
        auto sd = m_store->saveDocument("strategy", name, body);
        if (!sd)
            return sd.error();
        strategyDoc = sd->id;
        version = sd->version;
    }
    RunInfo info;
    info.name = name + " v" + std::to_string(version) + " (predicted)";
    info.kind = RunKind::Predicted;
    info.source = "partita designer";
    info.model_id = m_modelDoc;
    info.cluster_id = m_clusterDoc;
    info.strategy_id = strategyDoc;
    return m_store->storeTrace(r.trace, info, predictionMetaJson(r));
}

} // namespace partita
