#include "layertablemodel.h"

#include "palettemodel.h"

#include "partita/core/units.h"

#include <QMimeData>

namespace partita {

namespace {

QString count(double v)
{
    if (v >= 1e9)
        return QString::number(v / 1e9, 'f', 2) + " G";
    if (v >= 1e6)
        return QString::number(v / 1e6, 'f', 2) + " M";
    if (v >= 1e3)
        return QString::number(v / 1e3, 'f', 1) + " k";
    return QString::number(v, 'f', 0);
}
QString bytes(double v)
{
    if (v >= double(1 << 30))
        return QString::number(v / double(1 << 30), 'f', 2) + " GiB";
    if (v >= double(1 << 20))
        return QString::number(v / double(1 << 20), 'f', 1) + " MiB";
    if (v >= 1024)
        return QString::number(v / 1024, 'f', 1) + " KiB";
    return QString::number(v, 'f', 0) + " B";
}
QString ms(double seconds) { return QString::number(seconds * 1e3, 'f', seconds < 1e-3 ? 3 : 2); }

} // namespace

LayerTableModel::LayerTableModel(QObject* parent) : QAbstractTableModel(parent) {}

void LayerTableModel::setModel(const Model* model)
{
    beginResetModel();
    m_model = model;
    m_resolved.reset();
    m_result.reset();
    m_timeOf.clear();
    m_costs.clear();
    endResetModel();
}

void LayerTableModel::setStrategy(const std::optional<ResolvedStrategy>& resolved, int64_t microBatch, int64_t seqLen)
{
    m_resolved = resolved;
    m_microBatch = std::max<int64_t>(1, microBatch);
    m_seq = std::max<int64_t>(1, seqLen);
    m_costs.clear();
    if (m_model)
        for (const Layer& l : m_model->layers)
            m_costs.push_back(layerCostAt(l, m_microBatch, m_model->sequence ? m_seq : 1));
    if (rowCount() > 0)
        emit dataChanged(index(0, 0), index(rowCount() - 1, ColumnCount - 1));
}

void LayerTableModel::setPrediction(const std::optional<SimResult>& result)
{
    m_result = result;
    // Each cell finds its layer's time by index, not by a search per cell.
    m_timeOf.assign(m_model ? m_model->layers.size() : 0, -1);
    if (m_result)
        for (size_t k = 0; k < m_result->layers.size(); ++k) {
            const int layer = m_result->layers[k].layer;
            if (layer >= 0 && size_t(layer) < m_timeOf.size())
                m_timeOf[size_t(layer)] = int(k);
        }
    if (rowCount() > 0)
        emit dataChanged(index(0, 0), index(rowCount() - 1, ColumnCount - 1));
}

const Layer* LayerTableModel::layer(int row) const
{
    if (!m_model || row < 0 || row >= int(m_model->layers.size()))
        return nullptr;
    return &m_model->layers[size_t(row)];
}

int LayerTableModel::rowOf(const std::string& layerName) const
{
    if (!m_model)
        return -1;
    for (size_t i = 0; i < m_model->layers.size(); ++i)
        if (m_model->layers[i].name == layerName)
            return int(i);
    return -1;
}

int LayerTableModel::rowCount(const QModelIndex& parent) const
{
    return parent.isValid() || !m_model ? 0 : int(m_model->layers.size());
}

int LayerTableModel::columnCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : ColumnCount; }

namespace {

// The SortRole value of a numeric column; nullopt where the column sorts by its display text.
std::optional<QVariant> sortKey(int col, const Layer& l, const CostAt* c, const LayerAssignment* a, const LayerTime* t)
{
    switch (col) {
    case LayerTableModel::Params: return QVariant(double(l.parameterCount()));
    case LayerTableModel::ForwardFlops: return QVariant(c ? c->forward_flops : 0.0);
    case LayerTableModel::Activations: return QVariant(c ? c->activation_bytes : 0.0);
    case LayerTableModel::Stage: return QVariant(a ? a->stage : 0);
    case LayerTableModel::Time: return QVariant(t ? t->forward + t->backward + t->recompute : -1.0);
    case LayerTableModel::SyncTime: return QVariant(t ? t->sync : -1.0);
    default: return std::nullopt;
    }
}

// The DisplayRole text of one cell: the layer's figures, its resolved strategy and its predicted times.
QVariant displayText(int col, const Layer& l, const CostAt* c, const LayerAssignment* a, const LayerTime* t)
{
    switch (col) {
    case LayerTableModel::Name: return QString::fromStdString(l.name);
    case LayerTableModel::Kind: return QString::fromStdString(std::string(layerKindName(l.kind)));
    case LayerTableModel::Block: return QString::fromStdString(l.block);
    case LayerTableModel::Params:
        return l.tied_to.empty() ? count(double(l.parameterCount()))
                                 : LayerTableModel::tr("tied to %1").arg(QString::fromStdString(l.tied_to));
    case LayerTableModel::ForwardFlops: return c ? count(c->forward_flops) : QVariant();
    case LayerTableModel::Activations: return c ? bytes(c->activation_bytes) : QVariant();
    case LayerTableModel::Sync:
        if (!a)
            return QVariant();
        return l.parameterCount() > 0 || !l.tied_to.empty() ? QString::fromStdString(syncLabel(a->sync))
                                                            : QStringLiteral("–");
    case LayerTableModel::TensorParallel:
        return a ? QString::fromStdString(std::string(tpRoleName(a->tp_role))) : QVariant();
    case LayerTableModel::Stage: return a ? QVariant(a->stage) : QVariant();
    case LayerTableModel::Recompute:
        return a ? QString::fromStdString(std::string(recomputeName(a->recompute))) : QVariant();
    case LayerTableModel::Time: return t ? ms(t->forward + t->backward + t->recompute) : QVariant();
    case LayerTableModel::SyncTime: return t ? ms(t->sync) : QVariant();
    }
    return {};
}

// A swatch of the atom in effect in a strategy column, as in the palette; none in other columns.
QVariant atomSwatch(int col, const Layer& l, const LayerAssignment& a)
{
    AtomKind k;
    if (col == LayerTableModel::Sync && (l.parameterCount() > 0 || !l.tied_to.empty())) {
        k = a.sync.method == SyncMethod::ParameterServer ? AtomKind::ParameterServer
            : a.sync.method == SyncMethod::SFB           ? AtomKind::SFB
            : a.sync.method == SyncMethod::None          ? AtomKind::NoSync
            : a.sync.algorithm == AllReduceAlgo::Hierarchical ? AtomKind::AllReduceHierarchical
                                                               : AtomKind::AllReduce;
    } else if (col == LayerTableModel::TensorParallel) {
        k = a.tp_role == TpRole::Column ? AtomKind::TpColumn
            : a.tp_role == TpRole::Row  ? AtomKind::TpRow
                                        : AtomKind::TpReplicated;
    } else if (col == LayerTableModel::Recompute) {
        k = a.recompute == Recompute::Full        ? AtomKind::RecomputeFull
            : a.recompute == Recompute::Selective ? AtomKind::RecomputeSelective
                                                  : AtomKind::RecomputeNone;
    } else {
        return {};
    }
    return PaletteModel::colorOf(k);
}

// The row's tooltip: the layer, its cost at the micro-batch, its predicted times and the drop hint.
QString layerToolTip(const Layer& l, const CostAt* c, const LayerTime* t, int64_t microBatch)
{
    QString tip = QString("<b>%1</b> (%2)").arg(QString::fromStdString(l.name).toHtmlEscaped(),
                                                QString::fromStdString(std::string(layerKindName(l.kind))));
    if (!l.block.empty())
        tip += LayerTableModel::tr("<br>block %1").arg(QString::fromStdString(l.block).toHtmlEscaped());
    tip += LayerTableModel::tr("<br>%1 parameters").arg(count(double(l.parameterCount())));
    if (c)
        tip += LayerTableModel::tr("<br>forward %1FLOP, %2 saved for backward (micro-batch %3)")
                   .arg(count(c->forward_flops), bytes(c->activation_bytes))
                   .arg(microBatch);
    if (t)
        tip += LayerTableModel::tr("<br>forward %1 ms, backward %2 ms, recompute %3 ms, sync %4 ms")
                   .arg(ms(t->forward), ms(t->backward), ms(t->recompute), ms(t->sync));
    tip += LayerTableModel::tr("<br><i>Drop a strategy atom here.</i>");
    return tip;
}

} // namespace

QVariant LayerTableModel::data(const QModelIndex& index, int role) const
{
    const Layer* l = index.isValid() ? layer(index.row()) : nullptr;
    if (!l || index.column() < 0 || index.column() >= ColumnCount)
        return {};
    const size_t i = size_t(index.row());
    const LayerAssignment* a = m_resolved && i < m_resolved->layers.size() ? &m_resolved->layers[i] : nullptr;
    const CostAt* c = i < m_costs.size() ? &m_costs[i] : nullptr;
    const LayerTime* t = i < m_timeOf.size() && m_timeOf[i] >= 0 ? &m_result->layers[size_t(m_timeOf[i])] : nullptr;
    const int col = index.column();
    if (role == LayerNameRole)
        return QString::fromStdString(l->name);
    if (role == SortRole) {
        if (std::optional<QVariant> key = sortKey(col, *l, c, a, t))
            return *key;
        return data(index, Qt::DisplayRole);
    }
    if (role == Qt::DisplayRole)
        return displayText(col, *l, c, a, t);
    if (role == Qt::TextAlignmentRole && (col == Params || col == ForwardFlops || col == Activations || col == Stage ||
                                          col == Time || col == SyncTime))
        return int(Qt::AlignRight | Qt::AlignVCenter);
    if (role == Qt::DecorationRole && a)
        return atomSwatch(col, *l, *a);
    if (role == Qt::ToolTipRole)
        return layerToolTip(*l, c, t, m_microBatch);
    return {};
}

QVariant LayerTableModel::headerData(int section, Qt::Orientation orientation, int role) const
{
    if (orientation != Qt::Horizontal)
        return {};
    if (role == Qt::DisplayRole) {
        switch (section) {
        case Name: return tr("Layer");
        case Kind: return tr("Kind");
        case Block: return tr("Block");
        case Params: return tr("Params");
        case ForwardFlops: return tr("Fwd FLOP");
        case Activations: return tr("Saved act.");
        case Sync: return tr("Sync");
        case TensorParallel: return tr("TP");
        case Stage: return tr("Stage");
        case Recompute: return tr("Recompute");
        case Time: return tr("Compute ms");
        case SyncTime: return tr("Sync ms");
        }
    }
    if (role == Qt::ToolTipRole) {
        switch (section) {
        case ForwardFlops: return tr("Forward FLOPs of one micro-batch");
        case Activations: return tr("Activation bytes saved for the backward pass, one micro-batch");
        case Time: return tr("Predicted forward + backward + recompute of one micro-batch on one device");
        case SyncTime: return tr("Predicted gradient synchronization per step (not all of it is exposed)");
        default: return {};
        }
    }
    return {};
}

Qt::ItemFlags LayerTableModel::flags(const QModelIndex& index) const
{
    if (!index.isValid())
        return Qt::NoItemFlags; // no drops between rows
    return Qt::ItemIsEnabled | Qt::ItemIsSelectable | Qt::ItemIsDropEnabled;
}

QStringList LayerTableModel::mimeTypes() const { return {PaletteModel::kMimeType}; }

bool LayerTableModel::canDropMimeData(const QMimeData* data, Qt::DropAction, int row, int, const QModelIndex& parent) const
{
    const int target = parent.isValid() ? parent.row() : row;
    return PaletteModel::atomFromMime(data).has_value() && layer(target) != nullptr;
}

bool LayerTableModel::dropMimeData(const QMimeData* data, Qt::DropAction action, int row, int column,
                                   const QModelIndex& parent)
{
    m_lastDropError.clear();
    if (!canDropMimeData(data, action, row, column, parent))
        return false;
    const int target = parent.isValid() ? parent.row() : row;
    const AtomKind atom = *PaletteModel::atomFromMime(data);
    if (!m_drop) {
        m_lastDropError = tr("No strategy is open.");
        return false;
    }
    QString why;
    if (!m_drop(target, atom, &why)) {
        m_lastDropError = why;
        return false;
    }
    return true;
}

} // namespace partita
