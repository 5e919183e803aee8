#include "runsmodel.h"

#include "partita/core/units.h"

#include <QBrush>
#include <QColor>

namespace partita {

RunsModel::RunsModel(QObject* parent) : QAbstractTableModel(parent) {}

void RunsModel::setRuns(std::vector<RunInfo> runs)
{
    beginResetModel();
    m_runs = std::move(runs);
    endResetModel();
}

const RunInfo* RunsModel::run(int row) const
{
    return row >= 0 && row < int(m_runs.size()) ? &m_runs[size_t(row)] : nullptr;
}

int RunsModel::rowOf(int64_t runId) const
{
    for (size_t i = 0; i < m_runs.size(); ++i)
        if (m_runs[i].id == runId)
            return int(i);
    return -1;
}

int RunsModel::rowCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : int(m_runs.size()); }
int RunsModel::columnCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : ColumnCount; }

QVariant RunsModel::data(const QModelIndex& index, int role) const
{
    if (!index.isValid() || index.row() >= int(m_runs.size()) || index.column() >= ColumnCount)
        return {};
    const RunInfo& r = m_runs[size_t(index.row())];
    if (role == Qt::DisplayRole) {
        switch (index.column()) {
        case Id: return qlonglong(r.id);
        case Name: return QString::fromStdString(r.name);
        case Kind: return QString::fromUtf8(runKindName(r.kind).data(), int(runKindName(r.kind).size()));
        case Status: return r.status == RunStatus::Complete ? tr("complete") : tr("incomplete");
        case Ranks: return r.ranks;
        case Events: return qlonglong(r.events);
        case Duration: return QString::fromStdString(formatSeconds(double(r.end_ns - r.start_ns) * 1e-9));
        }
    }
    if (role == Qt::TextAlignmentRole && (index.column() == Id || index.column() == Ranks || index.column() == Events ||
                                          index.column() == Duration))
        return int(Qt::AlignRight | Qt::AlignVCenter);
    if (role == Qt::ForegroundRole && index.column() == Status && r.status != RunStatus::Complete)
        return QBrush(QColor(200, 60, 40));
    if (role == Qt::ToolTipRole)
        return QString::fromStdString(r.source + (r.host.empty() ? "" : " on " + r.host) +
                                      (r.created.empty() ? "" : ", " + r.created));
    if (role == Qt::UserRole)
        return qlonglong(r.id);
    return {};
}

QVariant RunsModel::headerData(int section, Qt::Orientation orientation, int role) const
{
    if (orientation != Qt::Horizontal || role != Qt::DisplayRole)
        return QAbstractTableModel::headerData(section, orientation, role);
    switch (section) {
    case Id: return tr("Id");
    case Name: return tr("Name");
    case Kind: return tr("Kind");
    case Status: return tr("Status");
    case Ranks: return tr("Ranks");
    case Events: return tr("Events");
    case Duration: return tr("Duration");
    }
    return {};
}

} // namespace partita
