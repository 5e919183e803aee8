#include "searchdialog.h"
#include "theme.h"

#include <QEvent>
#include <QChart>
#include <QChartView>
#include <QCheckBox>
#include <QComboBox>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineSeries>
#include <QApplication>
#include <QMetaObject>
#include <QPointer>
#include <QProgressBar>
#include <QPushButton>
#include <QSpinBox>
#include <QTableView>
#include <QThread>
#include <QTimer>
#include <QValueAxis>
#include <QVBoxLayout>
#include <QtConcurrent/QtConcurrentRun>

#include <cmath>

namespace partita {

// ---- CandidatesModel ----

CandidatesModel::CandidatesModel(QObject* parent) : QAbstractTableModel(parent) {}

void CandidatesModel::setCandidates(std::vector<Candidate> c)
{
    beginResetModel();
    m_rows = std::move(c);
    endResetModel();
}

const Candidate* CandidatesModel::candidate(int row) const
{
    return row >= 0 && row < int(m_rows.size()) ? &m_rows[size_t(row)] : nullptr;
}

int CandidatesModel::rowCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : int(m_rows.size()); }
int CandidatesModel::columnCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : ColumnCount; }

QVariant CandidatesModel::data(const QModelIndex& index, int role) const
{
    const Candidate* c = index.isValid() ? candidate(index.row()) : nullptr;
    if (!c || index.column() >= ColumnCount)
        return {};
    if (role == Qt::DisplayRole) {
        const Strategy& s = c->strategy;
        switch (index.column()) {
        case Rank: return index.row() + 1;
        case StepTime: return QString::number(c->step_time * 1e3, 'f', 1);
        case Throughput: return QString::number(c->samples_per_s, 'f', 1);
        case Mfu: return QString::number(c->mfu * 100, 'f', 1);
        case Memory: return QString::number(c->peak_memory / double(1 << 30), 'f', 1);
        case Mesh:
            return QString("dp %1 · tp %2 · pp %3%4").arg(s.dp).arg(s.tp).arg(s.pp).arg(s.zero_stage ? QString(" · ZeRO %1").arg(s.zero_stage) : QString());
        case What: return QString::fromStdString(c->explanation);
        }
    }
    if (role == Qt::ToolTipRole && index.column() == What)
        return QString::fromStdString(c->explanation);
    if (role == Qt::TextAlignmentRole && index.column() >= StepTime && index.column() <= Memory)
        return int(Qt::AlignRight | Qt::AlignVCenter);
    return {};
}

QVariant CandidatesModel::headerData(int section, Qt::Orientation o, int role) const
{
    if (o != Qt::Horizontal || role != Qt::DisplayRole)
        return {};
    switch (section) {
    case Rank: return tr("#");
    case StepTime: return tr("Step (ms)");
    case Throughput: return tr("Samples/s");
    case Mfu: return tr("MFU %");
    case Memory: return tr("Peak GiB");
    case Mesh: return tr("Mesh");
    case What: return tr("What differs from the best preset");
    }
    return {};
}

// ---- SearchDialog ----

SearchDialog::SearchDialog(const Model& model, const Cluster& cluster, const Strategy& current, QWidget* parent)
    : QDialog(parent), m_model(std::make_shared<const Model>(model)), m_cluster(std::make_shared<const Cluster>(cluster)),
      m_current(current), m_cancel(std::make_shared<std::atomic<bool>>(false))
{
    setWindowTitle(tr("Auto-Search"));
    auto* form = createSettings(current);
    createProgress();
    createTable();
    auto* buttons = createButtons();

    auto* top = new QVBoxLayout(this);
    top->addLayout(form);
    top->addWidget(m_progress);
    top->addWidget(m_status);
    top->addWidget(m_chart, 2);
    top->addWidget(m_table, 2);
    top->addLayout(buttons);
    resize(760, 720);
    connect(&m_watcher, &QFutureWatcher<Result<SearchResult>>::finished, this, &SearchDialog::done);
}

// The search's settings: objective, budget, global batch and precision (from `current`), threads, what it may change.
QFormLayout* SearchDialog::createSettings(const Strategy& current)
{
    m_objective = new QComboBox;
    m_objective->addItem(tr("Shortest step at this global batch"));
    m_objective->addItem(tr("Most samples/s (global batch may grow 4×)"));
    m_budgetBox = new QSpinBox;
    m_budgetBox->setRange(1, 24 * 3600);
    m_budgetBox->setValue(10);
    m_budgetBox->setSuffix(" s");
    m_batch = new QSpinBox;
    m_batch->setRange(1, 1 << 30);
    m_batch->setValue(int(std::min<int64_t>(current.global_batch, 1 << 30)));
    m_precision = new QComboBox;
    m_precision->addItems({"fp32", "fp16", "bf16", "fp8"});
    m_precision->setCurrentIndex(current.precision == Precision::FP32   ? 0
                                 : current.precision == Precision::FP16 ? 1
                                 : current.precision == Precision::BF16 ? 2
                                                                        : 3);
    m_threads = new QSpinBox;
    m_threads->setRange(1, std::max(1, QThread::idealThreadCount()));
    m_threads->setValue(std::max(1, QThread::idealThreadCount()));
    m_powersgd = new QCheckBox(tr("Allow PowerSGD (lossy: changes what training computes)"));
    m_fp16Compression = new QCheckBox(tr("Allow fp16 gradients with fp32 training (lossy: changes what training computes)"));
    m_fp8 = new QCheckBox(tr("Allow FP8 GEMMs on devices that have them (changes what training computes)"));
    m_fp8->setObjectName("allowFp8");
    auto* form = new QFormLayout;
    form->addRow(tr("Objective"), m_objective);
    form->addRow(tr("Budget"), m_budgetBox);
    form->addRow(tr("Global batch"), m_batch);
    form->addRow(tr("Precision"), m_precision);
    form->addRow(tr("Threads"), m_threads);
    form->addRow(m_powersgd);
    form->addRow(m_fp16Compression);
    form->addRow(m_fp8);
    return form;
}

// The progress bar, the status line and the best-so-far chart.
void SearchDialog::createProgress()
{
    m_progress = new QProgressBar;
    m_progress->setRange(0, 1000);
    m_status = new QLabel(tr("Presets are tried first; the search never returns worse than the best of them."));
    m_status->setWordWrap(true);
    m_best = new QLineSeries;
    m_best->setName(tr("best step time so far (ms)"));
    auto* chart = new QChart;
    chart->addSeries(m_best);
    m_axisX = new QValueAxis;
    m_axisX->setTitleText(tr("candidates evaluated"));
    m_axisX->setLabelFormat("%.0f");
    m_axisY = new QValueAxis;
    m_axisY->setLabelFormat("%.1f");
    chart->addAxis(m_axisX, Qt::AlignBottom);
    chart->addAxis(m_axisY, Qt::AlignLeft);
    m_best->attachAxis(m_axisX);
    m_best->attachAxis(m_axisY);
    chart->legend()->setAlignment(Qt::AlignBottom);
    m_chart = new QChartView(chart);
    styleChart(chart, palette());
    m_chart->setRenderHint(QPainter::Antialiasing);
    m_chart->setMinimumHeight(200);
}

// The table of the top candidates.
void SearchDialog::createTable()
{
    m_candidates = new CandidatesModel(this);
    m_table = new QTableView;
    m_table->setModel(m_candidates);
    m_table->setSelectionBehavior(QAbstractItemView::SelectRows);
    m_table->setSelectionMode(QAbstractItemView::SingleSelection);
    m_table->verticalHeader()->hide();
    m_table->horizontalHeader()->setStretchLastSection(true);
}

// Start, Stop, Apply Selected (or a double-click on a candidate) and Close.
QHBoxLayout* SearchDialog::createButtons()
{
    m_start = new QPushButton(tr("Start"));
    m_start->setDefault(true);
    m_stop = new QPushButton(tr("Stop"));
    m_stop->setEnabled(false);
    m_apply = new QPushButton(tr("Apply Selected"));
    m_apply->setEnabled(false);
    m_apply->setToolTip(tr("Make the selected candidate the designer's strategy (undoable)"));
    auto* close = new QPushButton(tr("Close"));
    connect(m_start, &QPushButton::clicked, this, [this] { start(); });
    connect(m_stop, &QPushButton::clicked, this, &SearchDialog::cancel);
    connect(close, &QPushButton::clicked, this, &QDialog::reject);
    connect(m_apply, &QPushButton::clicked, this, [this] {
        const QModelIndexList rows = m_table->selectionModel()->selectedRows();
        if (const Candidate* c = m_candidates->candidate(rows.isEmpty() ? 0 : rows.front().row()))
            emit applyStrategy(c->strategy);
    });
    connect(m_table, &QTableView::doubleClicked, this, [this](const QModelIndex& i) {
        if (const Candidate* c = m_candidates->candidate(i.row()))
            emit applyStrategy(c->strategy);
    });
    auto* buttons = new QHBoxLayout;
    buttons->addStretch(1);
    buttons->addWidget(m_start);
    buttons->addWidget(m_stop);
    buttons->addWidget(m_apply);
    buttons->addWidget(close);
    return buttons;
}

SearchDialog::~SearchDialog()
{
    *m_cancel = true;
    m_watcher.waitForFinished();
}

void SearchDialog::setBudget(double seconds) { m_budgetBox->setValue(int(std::max(1.0, seconds))); }

int SearchDialog::progressPoints() const { return int(m_best->count()); }

bool SearchDialog::start()
{
    if (searching())
        return false;
    *m_cancel = false;
    m_result.reset();
    m_error.clear();
    m_best->clear();
    m_candidates->setCandidates({});
    m_progress->setValue(0);
    m_budget = m_budgetBox->value();
    SearchOptions o;
    o.objective = m_objective->currentIndex() == 1 ? Objective::Throughput : Objective::Time;
    o.budget_s = m_budget;
    o.global_batch = m_batch->value();
    o.seq_len = 0;
    o.precision = m_precision->currentIndex() == 0   ? Precision::FP32
                  : m_precision->currentIndex() == 1 ? Precision::FP16
                  : m_precision->currentIndex() == 2 ? Precision::BF16
                                                     : Precision::FP8;
    o.threads = m_threads->value();
    o.allow_powersgd = m_powersgd->isChecked();
    o.allow_fp16_compression = m_fp16Compression->isChecked();
    o.allow_fp8 = m_fp8->isChecked();
    o.cancel = m_cancel.get();
    // Progress arrives on the search's threads; the widgets are updated on this one.
    QPointer<SearchDialog> self(this);
    o.progress = [self](const SearchProgress& p) {
        QMetaObject::invokeMethod(
            qApp, [self, p] {
                if (self)
                    self->onProgress(p);
            },
            Qt::QueuedConnection);
    };
    auto model = m_model;
    auto cluster = m_cluster;
    auto cancel = m_cancel; // outlives the dialog's wait, whatever the order of destruction
    m_running = true;
    m_start->setEnabled(false);
    m_stop->setEnabled(true);
    m_apply->setEnabled(false);
    m_status->setText(tr("Searching…"));
    m_watcher.setFuture(QtConcurrent::run([model, cluster, o, cancel]() { return searchStrategy(*model, *cluster, o); }));
    return true;
}

void SearchDialog::cancel()
{
    *m_cancel = true;
    m_status->setText(tr("Stopping: the best so far is kept."));
}

void SearchDialog::onProgress(const SearchProgress& p)
{
    if (!m_running || p.best_step_time <= 0 || !std::isfinite(p.best_step_time))
        return;
    const double ms = p.best_step_time * 1e3;
    m_best->append(double(p.evaluated), ms);
    m_axisX->setRange(0, std::max(10.0, double(p.evaluated) * 1.1));
    double lo = ms, hi = ms;
    for (const QPointF& q : m_best->points()) {
        lo = std::min(lo, q.y());
        hi = std::max(hi, q.y());
    }
    m_axisY->setRange(lo * 0.95, hi * 1.05);
    m_progress->setValue(int(std::min(1000.0, 1000.0 * p.elapsed_s / std::max(1e-9, m_budget))));
    m_status->setText(tr("%1 candidates evaluated in %2 s; best step %3 ms (%4 samples/s)")
                          .arg(p.evaluated)
                          .arg(p.elapsed_s, 0, 'f', 1)
                          .arg(ms, 0, 'f', 2)
                          .arg(p.best_samples_per_s, 0, 'f', 1));
}

void SearchDialog::done()
{
    m_running = false;
    m_start->setEnabled(true);
    m_stop->setEnabled(false);
    Result<SearchResult> r = m_watcher.result();
    if (!r) {
        m_error = QString::fromStdString(r.error().str());
        m_status->setText(tr("<span style='color:#c62828'><b>Search failed:</b> %1</span>").arg(m_error.toHtmlEscaped()));
        emit searchFinished();
        return;
    }
    m_result = *r;
    m_progress->setValue(1000);
    std::vector<Candidate> rows = r->top;
    if (rows.empty())
        rows.push_back(r->best);
    m_candidates->setCandidates(rows);
    m_table->resizeColumnsToContents();
    m_table->selectRow(0);
    m_apply->setEnabled(true);
    m_status->setText(tr("%1%2 candidates of a space of %3 in %4 s; best %5 ms per step (best preset: %6)%7")
                          .arg(r->cancelled ? tr("Stopped: ") : QString())
                          .arg(r->evaluated)
                          .arg(r->space_size)
                          .arg(r->elapsed_s, 0, 'f', 1)
                          .arg(r->best.step_time * 1e3, 0, 'f', 2)
                          .arg(QString::fromStdString(r->best_preset))
                          .arg(r->exhaustive ? tr(", the whole space enumerated") : QString()));
    QString unfit;
    if (r->out_of_memory > 0)
        unfit += tr("%1 did not fit in memory. ").arg(r->out_of_memory);
    if (r->failed > 0)
        unfit += tr("%1 could not be simulated (most often: %2).")
                     .arg(r->failed)
                     .arg(QString::fromStdString(r->failures.front().first).toHtmlEscaped());
    if (!unfit.isEmpty())
        m_status->setText(m_status->text() + "<br>" + unfit);
    emit searchFinished();
}

} // namespace partita

namespace partita {

void SearchDialog::changeEvent(QEvent* e)
{
    if (e->type() == QEvent::PaletteChange) // light/dark switched: the chart follows
        styleChart(m_chart->chart(), palette());
    QDialog::changeEvent(e);
}

} // namespace partita
