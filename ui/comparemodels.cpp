// The Compare view's tables: per-layer deltas and HTA's ops diff.
#include "compareview.h"
#include "compareformat.h"

namespace partita {

using namespace compare;

// ---- LayerDeltaModel ----

LayerDeltaModel::LayerDeltaModel(QObject* parent) : QAbstractTableModel(parent) {}

void LayerDeltaModel::setRows(std::vector<LayerDelta> rows, std::vector<std::string> names)
{
    beginResetModel();
    m_rows = std::move(rows);
    m_names = std::move(names);
    endResetModel();
}

int LayerDeltaModel::rowCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : int(m_rows.size()); }
int LayerDeltaModel::columnCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : ColumnCount; }

QVariant LayerDeltaModel::data(const QModelIndex& index, int role) const
{
    if (!index.isValid() || index.row() >= int(m_rows.size()) || index.column() >= ColumnCount)
        return {};
    const LayerDelta& r = m_rows[size_t(index.row())];
    const int64_t d = r.b_ns - r.a_ns;
    if (role == SortRole) {
        switch (index.column()) {
        case Layer: return r.layer;
        case A: return qlonglong(r.a_ns);
        case B: return qlonglong(r.b_ns);
        case Delta: return qlonglong(d);
        case DeltaPct: return r.a_ns ? double(d) / double(r.a_ns) : (d ? 1e300 : 0.0);
        }
    }
    if (role == Qt::DisplayRole) {
        switch (index.column()) {
        case Layer:
            if (r.layer < 0)
                return tr("(no layer)");
            if (size_t(r.layer) < m_names.size())
                return QString::fromStdString(m_names[size_t(r.layer)]);
            return tr("layer %1").arg(r.layer);
        case A: return ms(r.a_ns);
        case B: return ms(r.b_ns);
        case Delta: return (d > 0 ? "+" : "") + ms(d);
        case DeltaPct: return signedPct(r.a_ns, r.b_ns);
        }
    }
    if (role == Qt::ForegroundRole && (index.column() == Delta || index.column() == DeltaPct)) {
        const QColor c = deltaColor(r.a_ns, r.b_ns);
        return c.isValid() ? QVariant(c) : QVariant();
    }
    if (role == Qt::TextAlignmentRole && index.column() != Layer)
        return int(Qt::AlignRight | Qt::AlignVCenter);
    return {};
}

QVariant LayerDeltaModel::headerData(int section, Qt::Orientation o, int role) const
{
    if (o != Qt::Horizontal || role != Qt::DisplayRole)
        return {};
    switch (section) {
    case Layer: return tr("Layer");
    case A: return tr("A (ms)");
    case B: return tr("B (ms)");
    case Delta: return tr("Δ (ms)");
    case DeltaPct: return tr("Δ");
    }
    return {};
}

// ---- OpsDiffModel ----

OpsDiffModel::OpsDiffModel(QObject* parent) : QAbstractTableModel(parent) {}

void OpsDiffModel::setRows(std::vector<OpsDiffRow> rows)
{
    beginResetModel();
    m_rows = std::move(rows);
    endResetModel();
}

int OpsDiffModel::rowCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : int(m_rows.size()); }
int OpsDiffModel::columnCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : ColumnCount; }

QVariant OpsDiffModel::data(const QModelIndex& index, int role) const
{
    if (!index.isValid() || index.row() >= int(m_rows.size()) || index.column() >= ColumnCount)
        return {};
    const OpsDiffRow& r = m_rows[size_t(index.row())];
    if (role == SortRole) {
        switch (index.column()) {
        case CountA: return qlonglong(r.a_count);
        case CountB: return qlonglong(r.b_count);
        case TimeA: return qlonglong(r.a_ns);
        case TimeB: return qlonglong(r.b_ns);
        case Delta: return qlonglong(r.b_ns - r.a_ns);
        default: return data(index, Qt::DisplayRole);
        }
    }
    if (role == Qt::DisplayRole) {
        switch (index.column()) {
        case Name: return QString::fromStdString(r.name);
        case Change: return QString::fromStdString(r.change);
        case CountA: return qlonglong(r.a_count);
        case CountB: return qlonglong(r.b_count);
        case TimeA: return ms(r.a_ns);
        case TimeB: return ms(r.b_ns);
        case Delta: return (r.b_ns > r.a_ns ? "+" : "") + ms(r.b_ns - r.a_ns);
        }
    }
    if (role == Qt::ToolTipRole && index.column() == Name)
        return QString::fromStdString(r.name);
    if (role == Qt::ForegroundRole && index.column() == Delta) {
        const QColor c = deltaColor(r.a_ns, r.b_ns);
        return c.isValid() ? QVariant(c) : QVariant();
    }
    if (role == Qt::TextAlignmentRole && index.column() >= CountA)
        return int(Qt::AlignRight | Qt::AlignVCenter);
    return {};
}

QVariant OpsDiffModel::headerData(int section, Qt::Orientation o, int role) const
{
    if (o != Qt::Horizontal || role != Qt::DisplayRole)
        return {};
    switch (section) {
    case Name: return tr("Op / kernel");
    case Change: return tr("Change");
    case CountA: return tr("# A");
    case CountB: return tr("# B");
    case TimeA: return tr("A (ms)");
    case TimeB: return tr("B (ms)");
    case Delta: return tr("Δ (ms)");
    }
    return {};
}

} // namespace partita
