#include "compareview.h"
#include "compareformat.h"
#include "theme.h"

#include "timelineview.h"

#include "partita/core/units.h"
#include "partita/profiler/tracestore.h"

#include <QEvent>
#include <QBarCategoryAxis>
#include <QBarSet>
#include <QChart>
#include <QChartView>
#include <QComboBox>
#include <QFileDialog>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QLabel>
#include <QPainter>
#include <QPushButton>
#include <QSortFilterProxyModel>
#include <QSplitter>
#include <QStackedBarSeries>
#include <QBarSeries>
#include <QTableView>
#include <QTextDocumentFragment>
#include <QValueAxis>
#include <QVBoxLayout>
#include <QtConcurrent/QtConcurrentRun>
#ifdef PARTITA_HAVE_QTSVG
#include <QSvgGenerator>
#endif

#include <algorithm>
#include <cmath>
#include <map>

namespace partita {

using namespace compare;


// ---- CompareView ----

CompareView::CompareView(QWidget* parent) : QWidget(parent)
{
    auto* bar = createRunBar();
    createSummary();
    auto* timelines = createTimelines();
    auto* bottom = createBottom();

    auto* split = new QSplitter(Qt::Vertical);
    split->addWidget(timelines);
    split->addWidget(bottom);
    split->setSizes({420, 320});

    auto* top = new QVBoxLayout(this);
    top->addLayout(bar);
    top->addWidget(m_summaryLabel);
    top->addWidget(split, 1);
    m_summaryLabel->setText(tr("Choose two runs: strategy A against B, or a prediction against its measurement."));
    connect(&m_watcher, &QFutureWatcher<Prepared>::finished, this, &CompareView::prepared);
}

// The bar above: the runs A and B (either compares on a choice), Swap and Export.
QHBoxLayout* CompareView::createRunBar()
{
    m_boxA = new QComboBox;
    m_boxB = new QComboBox;
    for (QComboBox* b : {m_boxA, m_boxB}) {
        b->setSizeAdjustPolicy(QComboBox::AdjustToContents);
        b->setMinimumContentsLength(24);
        connect(b, &QComboBox::activated, this, [this] {
            const qint64 a = m_boxA->currentData().toLongLong(), b = m_boxB->currentData().toLongLong();
            if (a > 0 && b > 0 && !compare(a, b))
                emit errorOccurred(m_error);
        });
    }
    auto* swap = new QPushButton(tr("Swap"));
    swap->setToolTip(tr("Swap A and B"));
    connect(swap, &QPushButton::clicked, this, [this] {
        if (m_a && m_b && !compare(m_b, m_a))
            emit errorOccurred(m_error);
    });
    auto* exportButton = new QPushButton(tr("Export…"));
    exportButton->setToolTip(tr("Save this view as PNG or SVG"));
    connect(exportButton, &QPushButton::clicked, this, [this] {
        const QString path = QFileDialog::getSaveFileName(this, tr("Export Comparison"), QString(),
                                                          tr("PNG image (*.png);;SVG drawing (*.svg)"));
        if (!path.isEmpty() && !exportImage(path))
            emit errorOccurred(m_error);
    });
    auto* bar = new QHBoxLayout;
    bar->addWidget(new QLabel(tr("A:")));
    bar->addWidget(m_boxA);
    bar->addWidget(swap);
    bar->addWidget(new QLabel(tr("B:")));
    bar->addWidget(m_boxB);
    bar->addStretch(1);
    bar->addWidget(exportButton);
    return bar;
}

// The summary label, whose links frame the events behind its figures.
void CompareView::createSummary()
{
    m_summaryLabel = new QLabel;
    m_summaryLabel->setWordWrap(true);
    m_summaryLabel->setTextInteractionFlags(Qt::TextSelectableByMouse | Qt::LinksAccessibleByMouse);
    m_summaryLabel->setToolTip(tr("A link frames the events behind its figure on the timelines"));
    connect(m_summaryLabel, &QLabel::linkActivated, this, [this](const QString& link) { openLink(link); });
}

// The two timelines, kept in step, one above the other under their captions.
QSplitter* CompareView::createTimelines()
{
    m_timelineA = new TimelineView;
    m_timelineB = new TimelineView;
    for (TimelineView* t : {m_timelineA, m_timelineB}) {
        connect(t, &TimelineView::viewChanged, this, [this, t] { syncFrom(t); });
        connect(t, &TimelineView::errorOccurred, this, &CompareView::errorOccurred);
    }
    auto* timelines = new QSplitter(Qt::Vertical);
    for (int side = 0; side < 2; ++side) {
        auto* box = new QWidget;
        auto* bl = new QVBoxLayout(box);
        bl->setContentsMargins(0, 0, 0, 0);
        bl->setSpacing(2);
        QLabel*& caption = side == 0 ? m_captionA : m_captionB;
        caption = new QLabel;
        bl->addWidget(caption);
        bl->addWidget(side == 0 ? m_timelineA : m_timelineB, 1);
        timelines->addWidget(box);
    }
    return timelines;
}

// The sortable per-layer delta and ops diff tables; a double-click frames a row's first event.
void CompareView::createTables()
{
    m_layers = new LayerDeltaModel(this);
    auto* lp = new QSortFilterProxyModel(this);
    lp->setSourceModel(m_layers);
    lp->setSortRole(LayerDeltaModel::SortRole);
    m_layerTable = new QTableView;
    m_layerTable->setModel(lp);
    m_ops = new OpsDiffModel(this);
    auto* op = new QSortFilterProxyModel(this);
    op->setSourceModel(m_ops);
    op->setSortRole(OpsDiffModel::SortRole);
    m_opsTable = new QTableView;
    m_opsTable->setModel(op);
    for (QTableView* t : {m_layerTable, m_opsTable}) {
        t->setSortingEnabled(true);
        t->verticalHeader()->hide();
        t->verticalHeader()->setDefaultSectionSize(t->fontMetrics().height() + 6);
        t->setSelectionBehavior(QAbstractItemView::SelectRows);
        t->horizontalHeader()->setStretchLastSection(true);
    }
    m_layerTable->setToolTip(tr("Double-click a layer to frame its first event on both timelines"));
    m_opsTable->setToolTip(tr("Double-click an op to frame its first event on both timelines"));
    connect(m_layerTable, &QTableView::doubleClicked, this, [this, lp](const QModelIndex& i) {
        frameLayer(m_layers->rowLayer(lp->mapToSource(i).row()));
    });
    connect(m_opsTable, &QTableView::doubleClicked, this, [this, op](const QModelIndex& i) {
        frameOp(m_ops->rowName(op->mapToSource(i).row()));
    });
    m_layerTable->sortByColumn(LayerDeltaModel::Layer, Qt::AscendingOrder);
    m_opsTable->sortByColumn(OpsDiffModel::Delta, Qt::DescendingOrder);
}

// The per-rank and kernel-category charts, one above the other.
QWidget* CompareView::createCharts()
{
    m_rankChart = new QChartView;
    m_classChart = new QChartView;
    m_rankChart->setToolTip(tr("Click a bar to frame that rank's events of its kind in the compared step"));
    m_classChart->setToolTip(tr("Click a bar to frame the category's first kernel on both timelines"));
    for (QChartView* c : {m_rankChart, m_classChart}) {
        c->setRenderHint(QPainter::Antialiasing);
        c->setMinimumHeight(160);
    }
    auto* charts = new QWidget;
    auto* cl = new QVBoxLayout(charts);
    cl->setContentsMargins(0, 0, 0, 0);
    cl->addWidget(m_rankChart);
    cl->addWidget(m_classChart);
    return charts;
}

// The bottom row: the layer table, the ops table and the charts.
QSplitter* CompareView::createBottom()
{
    createTables();
    auto* charts = createCharts();
    auto* bottom = new QSplitter(Qt::Horizontal);
    bottom->addWidget(m_layerTable);
    bottom->addWidget(m_opsTable);
    bottom->addWidget(charts);
    bottom->setSizes({300, 420, 360});
    return bottom;
}

CompareView::~CompareView()
{
    m_watcher.waitForFinished();
    m_frameWatcher.waitForFinished();
    m_timelineA->setRun(nullptr, 0);
    m_timelineB->setRun(nullptr, 0);
}

void CompareView::setStore(const TraceStore* store)
{
    m_watcher.waitForFinished(); // a comparison of the previous project is dropped
    m_busy = false;
    m_store = store;
    m_a = m_b = 0;
    m_diff.reset();
    m_timelineA->setRun(nullptr, 0);
    m_timelineB->setRun(nullptr, 0);
    m_layers->setRows({}, {});
    m_ops->setRows({});
    refreshRunLists();
}

void CompareView::refreshRunLists()
{
    for (QComboBox* b : {m_boxA, m_boxB}) {
        const QSignalBlocker block(b);
        b->clear();
    }
    if (!m_store)
        return;
    auto runs = m_store->runs();
    if (!runs)
        return;
    for (const RunInfo& r : *runs)
        for (QComboBox* b : {m_boxA, m_boxB}) {
            const QSignalBlocker block(b);
            b->addItem(QString("%1: %2").arg(r.id).arg(QString::fromStdString(r.name)), qint64(r.id));
        }
    m_boxA->setCurrentIndex(m_boxA->findData(qint64(m_a)));
    m_boxB->setCurrentIndex(m_boxB->findData(qint64(m_b)));
}

bool CompareView::compare(int64_t a, int64_t b)
{
    m_error.clear();
    if (!m_store) {
        m_error = tr("No project is open.");
        return false;
    }
    auto ra = m_store->run(a);
    auto rb = m_store->run(b);
    if (!ra || !rb) {
        m_error = QString::fromStdString(!ra ? ra.error().str() : rb.error().str());
        return false;
    }
    // The reads that pass over whole runs (the diff, both analyses, the
    // steps) go to a worker with its own connection to the project, so that a
    // comparison of large runs never freezes the window.
    if (m_watcher.isRunning()) {
        m_error = tr("A comparison is still being prepared.");
        return false;
    }
    const std::string path = m_store->path();
    const RunInfo infoA = *ra, infoB = *rb;
    m_busy = true;
    m_summaryLabel->setText(tr("<i>Comparing run %1 with run %2…</i>").arg(a).arg(b));
    m_watcher.setFuture(QtConcurrent::run([path, a, b, infoA, infoB]() { return prepare(path, a, b, infoA, infoB); }));
    return true;
}

namespace {

// A run's name with its kind, "NAME (predicted)", unless the name says it already.
QString runTitle(const RunInfo& r)
{
    const std::string kind(runKindName(r.kind));
    const std::string title = r.name.find("(" + kind) != std::string::npos ? r.name : r.name + " (" + kind + ")";
    return QString::fromStdString(title).toHtmlEscaped();
}
// A run's origin on the timeline: the start of its first step, else of its first event.
int64_t runOrigin(const TraceStore& store, int64_t run, const RunInfo& info)
{
    auto steps = store.steps(run);
    if (steps && !steps->empty())
        return steps->front().record.start_ns;
    return info.start_ns;
}
} // namespace

CompareView::Prepared CompareView::prepare(const std::string& path, int64_t a, int64_t b, const RunInfo& infoA,
                                           const RunInfo& infoB)
{
    Prepared p;
    p.a = a;
    p.b = b;
    p.ra = infoA;
    p.rb = infoB;
    auto store = TraceStore::open(path);
    if (!store) {
        p.error = QString::fromStdString(store.error().str());
        return p;
    }
    auto diff = diffRuns(**store, a, b);
    if (!diff) {
        p.error = QString::fromStdString(diff.error().str());
        return p;
    }
    AnalysisOptions ao;
    ao.drop_last_step = false; // compare whole runs; HTA's convention is for profiler traces
    auto aa = analyzeRun(**store, a, ao);
    auto ab = analyzeRun(**store, b, ao);
    if (!aa || !ab) {
        p.error = QString::fromStdString(!aa ? aa.error().str() : ab.error().str());
        return p;
    }
    p.diff = std::move(*diff);
    p.aa = std::move(*aa);
    p.ab = std::move(*ab);
    // Memory and stragglers: figures of their own, left out when they cannot be read.
    if (auto m = readMemory(**store, a))
        p.ma = std::move(*m);
    if (auto m = readMemory(**store, b))
        p.mb = std::move(*m);
    for (auto [run, out] : {std::pair{a, &p.sa}, std::pair{b, &p.sb}})
        if (auto s = findStragglers(**store, run); s && s->ranks > 1)
            *out = std::move(*s);
    // Layer names from the model the run was predicted or measured with.
    for (int64_t modelDoc : {infoA.model_id, infoB.model_id})
        if (p.names.empty())
            p.names = (*store)->layerNames(modelDoc);
    // Origins: the first step of each run, else its first event.
    p.anchorA = runOrigin(**store, a, infoA);
    p.anchorB = runOrigin(**store, b, infoB);
    p.ok = true;
    return p;
}

void CompareView::prepared()
{
    m_busy = false;
    Prepared p = m_watcher.result();
    if (!p.ok) {
        m_error = p.error;
        m_summaryLabel->setText(tr("<span style='color:#c62828'><b>Not compared:</b> %1</span>").arg(m_error.toHtmlEscaped()));
        emit errorOccurred(m_error);
        emit compared(false);
        return;
    }
    const int64_t a = p.a, b = p.b;
    const RunInfo* ra = &p.ra;
    const RunInfo* rb = &p.rb;
    m_a = a;
    m_b = b;
    m_diff = p.diff;
    refreshRunLists();
    showTables(p);
    alignTimelines(p);
    const QString text = summaryText(p);
    keepMarks(p);
    m_summary = text;
    m_summaryLabel->setText(text);
    m_captionA->setText(tr("<b>A</b> · run %1: %2").arg(a).arg(QString::fromStdString(ra->name).toHtmlEscaped()));
    m_captionB->setText(tr("<b>B</b> · run %1: %2").arg(b).arg(QString::fromStdString(rb->name).toHtmlEscaped()));
    drawCharts(p.aa, p.ab);
    emit compared(true);
}

// Fills the layer and ops tables with the diff's rows.
void CompareView::showTables(const Prepared& p)
{
    m_layers->setRows(p.diff.layers, p.names);
    m_ops->setRows(p.diff.ops);
    m_layerTable->resizeColumnsToContents();
    m_opsTable->resizeColumnToContents(OpsDiffModel::Change);
}

// Shows the runs on the timelines, on one time scale from their origins.
void CompareView::alignTimelines(const Prepared& p)
{
    m_anchorA = p.anchorA;
    m_anchorB = p.anchorB;
    m_timelineA->setRun(m_store, p.a);
    m_timelineB->setRun(m_store, p.b);
    // One time scale for both: each axis spans as much before and after its
    // origin as the longer of the two runs, so their rulers read alike.
    const int64_t pre = std::max({int64_t(0), m_anchorA - p.ra.start_ns, m_anchorB - p.rb.start_ns});
    const int64_t post = std::max({int64_t(1), p.ra.end_ns - m_anchorA, p.rb.end_ns - m_anchorB});
    m_syncing = true;
    m_timelineA->axis().setRange(m_anchorA - pre, m_anchorA + post);
    m_timelineB->axis().setRange(m_anchorB - pre, m_anchorB + post);
    m_timelineA->axis().fit();
    m_timelineB->axis().fit();
    m_syncing = false;
    m_timelineA->viewport()->update();
    m_timelineB->viewport()->update();
}

// The summary: the runs, their mean step (else their spans), kernel shares,
// the ranks and steps the ops diff compared, memory, stragglers and plan.
QString CompareView::summaryText(const Prepared& p)
{
    const RunInfo* ra = &p.ra;
    const RunInfo* rb = &p.rb;
    const RunDiff* diff = &p.diff;
    const RunAnalysis* aa = &p.aa;
    const RunAnalysis* ab = &p.ab;
    int64_t stepA = 0, stepB = 0;
    int n = 0;
    for (const StepDelta& s : diff->steps)
        if (s.a_ns > 0 && s.b_ns > 0) {
            stepA += s.a_ns;
            stepB += s.b_ns;
            ++n;
        }
    QString text = tr("<b>A</b> = %1 &nbsp; <b>B</b> = %2<br>").arg(runTitle(*ra), runTitle(*rb));
    if (n > 0) {
        stepA /= n;
        stepB /= n;
        text += tr("<a href=\"step\">mean step</a> over %1 aligned step(s): A %2 ms, B %3 ms, <b>B − A = %4 ms (%5)</b>")
                    .arg(n)
                    .arg(ms(stepA), ms(stepB), ms(stepB - stepA), signedPct(stepA, stepB));
    } else {
        const int64_t spanA = ra->end_ns - ra->start_ns, spanB = rb->end_ns - rb->start_ns;
        text += tr("no aligned steps; span: A %1 ms, B %2 ms (%3)").arg(ms(spanA), ms(spanB), signedPct(spanA, spanB));
    }
    text += tr("<br><a href=\"class:computation\">compute</a> %1 → %2 of the kernel span, idle %3 → %4")
                .arg(pct(aa->total.compute_pct), pct(ab->total.compute_pct), pct(aa->total.idle_pct),
                     pct(ab->total.idle_pct));
    if (aa->comm_comp_overlap_pct || ab->comm_comp_overlap_pct)
        text += tr(", <a href=\"class:communication\">communication</a> overlapped %1 → %2")
                    .arg(aa->comm_comp_overlap_pct ? pct(*aa->comm_comp_overlap_pct) : tr("—"),
                         ab->comm_comp_overlap_pct ? pct(*ab->comm_comp_overlap_pct) : tr("—"));
    if (diff->rank_a != diff->rank_b || diff->iteration_a >= 0)
        text += tr("<br>ops diff: rank %1 step %2 of A against rank %3 step %4 of B")
                    .arg(diff->rank_a)
                    .arg(diff->iteration_a)
                    .arg(diff->rank_b)
                    .arg(diff->iteration_b);
    text += memoryAndStragglers(p);
    text += notAsPlanned(p.ra, "A") + notAsPlanned(p.rb, "B");
    return text;
}

// Keeps where the summary's memory and straggler links lead, for these runs.
void CompareView::keepMarks(const Prepared& p)
{
    m_pendingFrame.reset(); // asked of the runs compared before
    m_peak[0] = peakMark(p.ma, p.ra);
    m_peak[1] = peakMark(p.mb, p.rb);
    m_straggler[0] = stragglerMark(p.sa);
    m_straggler[1] = stragglerMark(p.sb);
}

// The summary's lines on memory (the most loaded accelerator's peak, else
// the CPU's; the prediction's) and stragglers (the rank that made the others
// wait most), for each run that has them.
QString CompareView::memoryAndStragglers(const Prepared& p)
{
    auto memory = [](const MemoryReport& m, const char* side) -> QString {
        const MemorySeries* top = topSeries(m);
        QString out;
        if (top)
            out = tr("<a href=\"memory:%4\">%1</a> (%2 of rank %3)")
                      .arg(QString::fromStdString(formatBytes(double(top->peak_allocated))), QString::fromStdString(top->device))
                      .arg(top->rank)
                      .arg(side);
        if (m.predicted_peak_bytes)
            out += (out.isEmpty() ? QString() : QStringLiteral(", ")) +
                   tr("%1 predicted").arg(QString::fromStdString(formatBytes(*m.predicted_peak_bytes)));
        return out.isEmpty() ? QStringLiteral("—") : out;
    };
    auto stragglers = [](const std::optional<StragglerReport>& r, const char* side) -> QString {
        if (!r)
            return tr("one rank");
        const RankBlame* top = topBlame(r);
        if (!top)
            return tr("none found");
        return tr("<a href=\"straggler:%4\">rank %1</a> made the others wait %2 ms (last at %3 collectives)")
            .arg(top->rank)
            .arg(ms(top->wait_caused_ns))
            .arg(top->late_count)
            .arg(side);
    };
    QString text;
    if (!p.ma.series.empty() || !p.mb.series.empty() || p.ma.predicted_peak_bytes || p.mb.predicted_peak_bytes)
        text += tr("<br>peak memory per device: A %1, B %2").arg(memory(p.ma, "a"), memory(p.mb, "b"));
    if (p.sa || p.sb)
        text += tr("<br>stragglers: A %1; B %2").arg(stragglers(p.sa, "a"), stragglers(p.sb, "b"));
    return text;
}

// A measured run's list of what its backend ran otherwise than its plan
// (partita-cli run writes it in the run's meta): the comparison is not like
// for like there.
QString CompareView::notAsPlanned(const RunInfo& run, const char* side)
{
    const QJsonArray items = QJsonDocument::fromJson(QByteArray::fromStdString(run.meta)).object().value("not_as_planned").toArray();
    if (items.isEmpty())
        return {};
    QStringList lines;
    for (const QJsonValue& v : items)
        lines << v.toString().toHtmlEscaped();
    return tr("<br>%1 did not run as planned: %2").arg(side, lines.join("; "));
}

QString CompareView::summary() const { return QTextDocumentFragment::fromHtml(m_summary).toPlainText(); }

void CompareView::syncFrom(TimelineView* from)
{
    if (m_syncing || !m_a || !m_b)
        return;
    m_syncing = true;
    TimelineView* to = from == m_timelineA ? m_timelineB : m_timelineA;
    const int64_t fromAnchor = from == m_timelineA ? m_anchorA : m_anchorB;
    const int64_t toAnchor = from == m_timelineA ? m_anchorB : m_anchorA;
    const int64_t offset = from->axis().start() - fromAnchor;
    const int64_t length = from->axis().end() - from->axis().start();
    to->axis().show(toAnchor + offset, toAnchor + offset + length);
    to->viewport()->update();
    m_syncing = false;
}

bool CompareView::exportImage(const QString& path, QWidget* what)
{
    QWidget* w = what ? what : this;
    const QString suffix = QFileInfo(path).suffix().toLower();
    if (suffix == "png") {
        if (!w->grab().save(path, "PNG")) {
            m_error = tr("%1: could not be written").arg(path);
            return false;
        }
        return true;
    }
    if (suffix == "svg") {
#ifdef PARTITA_HAVE_QTSVG
        QSvgGenerator gen;
        gen.setFileName(path);
        gen.setSize(w->size());
        gen.setViewBox(QRect(QPoint(0, 0), w->size()));
        gen.setTitle(tr("Partita comparison"));
        QPainter p;
        if (!p.begin(&gen)) {
            m_error = tr("%1: could not be written").arg(path);
            return false;
        }
        w->render(&p);
        p.end();
        if (!QFileInfo(path).exists() || QFileInfo(path).size() == 0) {
            m_error = tr("%1: could not be written").arg(path);
            return false;
        }
        return true;
#else
        m_error = tr("SVG export needs Qt SVG (qt6-svg-dev), which this build lacks; export PNG instead.");
        return false;
#endif
    }
    m_error = tr("%1: export writes .png or .svg").arg(path);
    return false;
}

} // namespace partita

namespace partita {

void CompareView::changeEvent(QEvent* e)
{
    if (e->type() == QEvent::PaletteChange) { // light/dark switched: the charts follow
        styleChart(m_rankChart->chart(), palette());
        styleChart(m_classChart->chart(), palette());
    }
    QWidget::changeEvent(e);
}

} // namespace partita
