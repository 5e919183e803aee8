#include "stragglersview.h"

#include "partita/core/units.h"
#include "partita/profiler/tracestore.h"

#include <QCoreApplication>
#include <QHeaderView>
#include <QLabel>
#include <QTableView>
#include <QVBoxLayout>
#include <QtConcurrent/QtConcurrentRun>

namespace partita {

namespace {

QString seconds(int64_t ns) { return ns == 0 ? QStringLiteral("0") : QString::fromStdString(formatSeconds(double(ns) * 1e-9)); }

} // namespace

StragglersModel::StragglersModel(QObject* parent) : QAbstractTableModel(parent) {}

void StragglersModel::setReport(StragglerReport r, std::vector<std::string> layerNames)
{
    beginResetModel();
    m_report = std::move(r);
    m_layerNames = std::move(layerNames);
    endResetModel();
}

int StragglersModel::rowCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : int(m_report.steps.size()); }
int StragglersModel::columnCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : ColumnCount; }

QVariant StragglersModel::data(const QModelIndex& index, int role) const
{
    if (!index.isValid() || index.row() >= rowCount() || index.column() >= ColumnCount)
        return {};
    const StepStraggler& s = m_report.steps[size_t(index.row())];
    if (role == Qt::TextAlignmentRole)
        return index.column() == WorstCollective || index.column() == Cause || index.column() == Layer
                   ? QVariant(int(Qt::AlignLeft | Qt::AlignVCenter))
                   : QVariant(int(Qt::AlignRight | Qt::AlignVCenter));
    if (role == Qt::ToolTipRole && (index.column() == WorstCollective || index.column() == Cause))
        return QString::fromStdString(index.column() == Cause ? s.kernel : s.collective);
    if (role == Qt::UserRole) // sortable values
        switch (index.column()) {
        case Step: return qint64(s.step);
        case LateRank: return s.late_rank;
        case MadeWait: return qint64(s.wait_caused_ns);
        case WorstWait: return qint64(s.worst_wait_ns);
        case Excess: return qint64(s.excess_ns);
        default: break;
        }
    if (role != Qt::DisplayRole)
        return {};
    switch (index.column()) {
    case Step: return s.step < 0 ? QStringLiteral("-") : QString::number(s.step);
    case LateRank: return s.late_rank;
    case MadeWait: return seconds(s.wait_caused_ns);
    case WorstCollective: return QString::fromStdString(s.collective);
    case WorstWait: return seconds(s.worst_wait_ns);
    case Cause: return s.kernel.empty() ? QStringLiteral("-") : QString::fromStdString(s.kernel);
    case Layer:
        if (s.layer < 0)
            return QStringLiteral("-");
        return s.layer < int32_t(m_layerNames.size()) ? QString::fromStdString(m_layerNames[size_t(s.layer)])
                                                      : QString::number(s.layer);
    case Excess: return s.kernel.empty() ? QStringLiteral("-") : "+" + seconds(s.excess_ns);
    default: return {};
    }
}

QVariant StragglersModel::headerData(int section, Qt::Orientation orientation, int role) const
{
    if (orientation != Qt::Horizontal || role != Qt::DisplayRole)
        return QAbstractTableModel::headerData(section, orientation, role);
    switch (section) {
    case Step: return tr("Step");
    case LateRank: return tr("Late rank");
    case MadeWait: return tr("Made others wait");
    case WorstCollective: return tr("Worst collective");
    case WorstWait: return tr("Wait there");
    case Cause: return tr("Longer than the others");
    case Layer: return tr("Layer");
    case Excess: return tr("By");
    default: return {};
    }
}

StragglersView::StragglersView(QWidget* parent) : QWidget(parent)
{
    m_model = new StragglersModel(this);
    m_summary = new QLabel(this);
    m_summary->setWordWrap(true);
    m_summary->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_table = new QTableView(this);
    m_table->setModel(m_model);
    m_table->setSelectionBehavior(QAbstractItemView::SelectRows);
    m_table->setSelectionMode(QAbstractItemView::SingleSelection);
    m_table->horizontalHeader()->setSectionResizeMode(QHeaderView::Interactive);
    m_table->horizontalHeader()->setStretchLastSection(false);
    m_table->verticalHeader()->hide();
    m_table->setToolTip(tr("Double-click a step to frame, on the late rank's timeline, what it ran before its worst "
                           "collective and the collective itself"));
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(4, 4, 4, 4);
    layout->addWidget(m_summary);
    layout->addWidget(m_table, 1);
    connect(m_table, &QTableView::doubleClicked, this, [this](const QModelIndex& i) { frameRow(i.row()); });
    connect(&m_watcher, &QFutureWatcher<Outcome>::finished, this, &StragglersView::done);
    setRun({}, 0);
}

void StragglersView::setRun(const std::string& path, int64_t run)
{
    m_run = run;
    m_model->setReport({});
    if (run <= 0 || path.empty()) {
        m_summary->setText(tr("<i>Open a run on the timeline: its stragglers show here.</i>"));
        return;
    }
    m_summary->setText(tr("<i>Finding who made whom wait in run %1…</i>").arg(run));
    m_watcher.setFuture(QtConcurrent::run([path, run]() {
        Outcome o;
        o.run = run;
        auto store = TraceStore::open(path);
        if (!store) {
            o.error = QString::fromStdString(store.error().str());
            return o;
        }
        auto r = findStragglers(**store, run);
        if (!r) {
            o.error = QString::fromStdString(r.error().str());
            return o;
        }
        o.report = std::move(*r);
        if (auto info = (*store)->run(run))
            o.layers = (*store)->layerNames(info->model_id);
        return o;
    }));
}

void StragglersView::waitForReport()
{
    if (m_watcher.isRunning())
        m_watcher.waitForFinished();
    QCoreApplication::sendPostedEvents(&m_watcher);
}

void StragglersView::done()
{
    Outcome o = m_watcher.result();
    if (o.run != m_run)
        return; // another run was asked for meanwhile
    if (!o.error.isEmpty()) {
        m_summary->setText(tr("Stragglers of run %1 could not be found: %2").arg(o.run).arg(o.error.toHtmlEscaped()));
        emit errorOccurred(o.error);
        return;
    }
    std::map<int32_t, int64_t> offsets;
    for (const ClockCorrection& c : o.report.clocks)
        offsets[c.rank] = c.offset_ns;
    m_model->setReport(std::move(o.report), std::move(o.layers));
    emit clocksFound(offsets);
    m_table->resizeColumnsToContents();
    m_summary->setText(summary());
}

QString StragglersView::summary() const
{
    const StragglerReport& r = m_model->report();
    QString text = r.ranks == 1 ? tr("Run %1: 1 rank, %2 collectives every rank ran.").arg(m_run).arg(r.matched)
                                : tr("Run %1: %2 ranks, %3 collectives every rank ran.").arg(m_run).arg(r.ranks).arg(r.matched);
    if (!r.clocks.empty()) {
        int64_t largest = 0;
        for (const ClockCorrection& c : r.clocks)
            largest = std::max(largest, std::abs(c.offset_ns));
        text += " " + tr("Clocks aligned on the collectives' ends (largest correction %1).").arg(seconds(largest));
    }
    for (const std::string& n : r.notes)
        text += " " + QString::fromStdString(n) + ".";
    return text;
}

void StragglersView::frameRow(int row)
{
    const auto& steps = m_model->report().steps;
    if (row < 0 || row >= int(steps.size()))
        return;
    const StepStraggler& s = steps[size_t(row)];
    emit frameRequested(s.late_rank, s.window_start_ns, s.collective_end_ns);
}

} // namespace partita
