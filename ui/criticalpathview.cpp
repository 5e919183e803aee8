#include "criticalpathview.h"

#include "partita/core/units.h"
#include "partita/profiler/tracestore.h"

#include <QComboBox>
#include <QCoreApplication>
#include <QHeaderView>
#include <QLabel>
#include <QTableView>
#include <QVBoxLayout>
#include <QtConcurrent/QtConcurrentRun>

#include <algorithm>

namespace partita {

namespace {

QString seconds(int64_t ns) { return ns == 0 ? QStringLiteral("0") : QString::fromStdString(formatSeconds(double(ns) * 1e-9)); }

QString what(const PathSegment& s)
{
    switch (s.edge) {
    case PathEdge::Launch: return QObject::tr("launch delay");
    case PathEdge::StreamGap: return QObject::tr("stream gap");
    case PathEdge::Collective: return QObject::tr("collective after the last arrival");
    case PathEdge::P2P: return QObject::tr("transfer after the send");
    default: return s.name.empty() ? QString::fromUtf8(pathEdgeName(s.edge).data()) : QString::fromUtf8(traceKindName(s.kind).data());
    }
}

} // namespace

CriticalPathModel::CriticalPathModel(QObject* parent) : QAbstractTableModel(parent) {}

void CriticalPathModel::setPath(CriticalPath p, std::vector<std::string> layerNames)
{
    beginResetModel();
    m_path = std::move(p);
    m_layerNames = std::move(layerNames);
    m_rows.clear();
    for (size_t i = 0; i < m_path.segments.size(); ++i)
        if (m_path.segments[i].weight_ns > 0)
            m_rows.push_back(i);
    endResetModel();
}

int CriticalPathModel::rowCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : int(m_rows.size()); }
int CriticalPathModel::columnCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : ColumnCount; }

QVariant CriticalPathModel::data(const QModelIndex& index, int role) const
{
    if (!index.isValid() || index.row() >= rowCount() || index.column() >= ColumnCount)
        return {};
    const PathSegment& s = segment(index.row());
    const int64_t origin = m_path.segments.empty() ? 0 : m_path.segments.front().from_ns;
    if (role == Qt::TextAlignmentRole)
        return index.column() == Rank || index.column() == At || index.column() == Length
                   ? QVariant(int(Qt::AlignRight | Qt::AlignVCenter))
                   : QVariant(int(Qt::AlignLeft | Qt::AlignVCenter));
    if (role == Qt::ToolTipRole && index.column() == Event)
        return QString::fromStdString(s.name);
    if (role == Qt::UserRole) // sortable values
        switch (index.column()) {
        case Rank: return s.rank;
        case At: return qint64(s.from_ns - origin);
        case Length: return qint64(s.weight_ns);
        default: break;
        }
    if (role != Qt::DisplayRole)
        return {};
    switch (index.column()) {
    case Rank: return s.rank;
    case What: return what(s);
    case Event: return s.name.empty() ? QStringLiteral("-") : QString::fromStdString(s.name);
    case Layer:
        if (s.layer < 0)
            return QStringLiteral("-");
        return s.layer < int32_t(m_layerNames.size()) ? QString::fromStdString(m_layerNames[size_t(s.layer)]) : QString::number(s.layer);
    case At: return "+" + seconds(s.from_ns - origin);
    case Length: return seconds(s.weight_ns);
    default: return {};
    }
}

QVariant CriticalPathModel::headerData(int section, Qt::Orientation orientation, int role) const
{
    if (orientation != Qt::Horizontal || role != Qt::DisplayRole)
        return QAbstractTableModel::headerData(section, orientation, role);
    switch (section) {
    case Rank: return tr("Rank");
    case What: return tr("What");
    case Event: return tr("Event");
    case Layer: return tr("Layer");
    case At: return tr("At");
    case Length: return tr("Takes");
    default: return {};
    }
}

CriticalPathView::CriticalPathView(QWidget* parent) : LazyPanel(parent, m_watcher)
{
    m_model = new CriticalPathModel(this);
    m_windows = new QComboBox(this);
    m_windows->setToolTip(tr("The step (or, in a run without steps, the time slice) whose critical path to show"));
    m_table = new QTableView(this);
    m_table->setModel(m_model);
    m_table->setSelectionBehavior(QAbstractItemView::SelectRows);
    m_table->setSelectionMode(QAbstractItemView::SingleSelection);
    m_table->horizontalHeader()->setSectionResizeMode(QHeaderView::Interactive);
    m_table->verticalHeader()->hide();
    m_table->setToolTip(tr("Double-click a segment to frame it on its rank's timeline"));
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(4, 4, 4, 4);
    layout->addWidget(m_windows);
    layout->addWidget(m_summary);
    layout->addWidget(m_table, 1);
    connect(m_table, &QTableView::doubleClicked, this, [this](const QModelIndex& i) { frameRow(i.row()); });
    connect(m_windows, &QComboBox::activated, this, &CriticalPathView::showWindow);
    connect(&m_watcher, &QFutureWatcher<Outcome>::finished, this, &CriticalPathView::done);
    setRun({}, 0);
}

void CriticalPathView::clearRun()
{
    m_all = {};
    m_model->setPath({});
    m_windows->clear();
    m_windows->setEnabled(false);
    emit pathChanged({});
}

QString CriticalPathView::idleText() const { return tr("<i>Open a run on the timeline: its critical path shows here.</i>"); }

QString CriticalPathView::waitingText(int64_t run) const
{
    return tr("<i>Run %1's critical path is found when this panel is shown.</i>").arg(run);
}

void CriticalPathView::showWindow(int index)
{
    if (index < 0 || size_t(index) >= m_all.paths.size())
        return;
    m_windows->setCurrentIndex(index);
    start(index, false);
}

void CriticalPathView::start(int index, bool all)
{
    begin();
    m_summary->setText(tr("<i>Finding the critical path of run %1…</i>").arg(m_run));
    std::optional<int64_t> step;
    if (!all && m_all.paths[size_t(index)].step >= 0)
        step = m_all.paths[size_t(index)].step;
    m_watcher.setFuture(QtConcurrent::run([path = m_project, run = m_run, index, all, step]() {
        Outcome o;
        o.run = run;
        o.index = index;
        auto store = TraceStore::open(path);
        if (!store) {
            o.error = QString::fromStdString(store.error().str());
            return o;
        }
        std::optional<int64_t> chosen = step;
        if (all) {
            CriticalPathOptions sums;
            sums.segments = false;
            auto r = findCriticalPath(**store, run, sums);
            if (!r) {
                o.error = QString::fromStdString(r.error().str());
                return o;
            }
            o.all = std::move(*r);
            if (o.all->paths.empty())
                return o;
            if (o.all->paths.front().step >= 0)
                chosen = o.all->paths.front().step;
        }
        CriticalPathOptions one;
        one.step = chosen;
        auto r = findCriticalPath(**store, run, one);
        if (!r || r->paths.empty()) {
            o.error = r ? QObject::tr("no window") : QString::fromStdString(r.error().str());
            return o;
        }
        o.chosen = std::move(r->paths.front());
        if (auto info = (*store)->run(run))
            o.layers = (*store)->layerNames(info->model_id);
        return o;
    }));
}

void CriticalPathView::done()
{
    Outcome o = m_watcher.result();
    if (o.run != m_run)
        return; // another run was asked for meanwhile
    if (!o.error.isEmpty()) {
        m_summary->setText(tr("The critical path of run %1 could not be found: %2").arg(o.run).arg(o.error.toHtmlEscaped()));
        emit errorOccurred(o.error);
        return;
    }
    if (o.all) {
        m_all = std::move(*o.all);
        m_windows->clear();
        for (const CriticalPath& p : m_all.paths)
            m_windows->addItem(tr("%1: path %2 of %3").arg(QString::fromStdString(p.window), seconds(p.length_ns), seconds(p.span_ns)));
        m_windows->setEnabled(m_all.paths.size() > 1);
        if (m_all.paths.empty()) {
            m_summary->setText(summary());
            return;
        }
    }
    if (o.index != m_windows->currentIndex())
        return; // another window was chosen meanwhile
    m_model->setPath(std::move(o.chosen), std::move(o.layers));
    m_table->resizeColumnsToContents();
    m_summary->setText(summary());
    std::vector<TimelineView::PathMark> marks;
    for (const PathSegment& s : m_model->path().segments)
        if (s.weight_ns > 0)
            marks.push_back({s.rank, s.track_id, s.from_ns, s.to_ns});
    emit pathChanged(marks);
}

QString CriticalPathView::summary() const
{
    const CriticalPath& p = m_model->path();
    if (m_all.paths.empty())
        return tr("Run %1 has no events to find a path through.").arg(m_run);
    QString text = tr("Run %1, %2: the critical path takes %3 of %4").arg(m_run).arg(QString::fromStdString(p.window), seconds(p.length_ns),
                                                                               seconds(p.span_ns));
    std::vector<std::pair<int64_t, std::string>> kinds;
    for (const auto& [k, v] : p.by_kind)
        if (v > 0)
            kinds.push_back({v, k});
    std::sort(kinds.rbegin(), kinds.rend());
    QStringList parts;
    for (size_t i = 0; i < kinds.size() && i < 4; ++i)
        parts << tr("%1 %2 %").arg(QString::fromStdString(kinds[i].second)).arg(100.0 * double(kinds[i].first) / double(p.length_ns), 0, 'f', 0);
    if (!parts.isEmpty())
        text += ": " + parts.join(", ");
    text += ".";
    if (p.by_rank.size() > 1) {
        auto top = std::max_element(p.by_rank.begin(), p.by_rank.end(), [](auto& a, auto& b) { return a.second < b.second; });
        text += " " + tr("Rank %1 carries %2 % of it.").arg(top->first).arg(100.0 * double(top->second) / double(p.length_ns), 0, 'f', 0);
    }
    for (const std::string& n : m_all.notes)
        text += " " + QString::fromStdString(n) + ".";
    for (const std::string& n : p.notes)
        text += " " + QString::fromStdString(n) + ".";
    return text;
}

void CriticalPathView::frameRow(int row)
{
    if (row < 0 || row >= m_model->rowCount())
        return;
    const PathSegment& s = m_model->segment(row);
    emit frameRequested(s.rank, s.from_ns, s.to_ns);
}

} // namespace partita
