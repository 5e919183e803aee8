#include "palettemodel.h"

#include <QMimeData>
#include <QPainter>
#include <QPixmap>

namespace partita {

PaletteModel::PaletteModel(QObject* parent) : QAbstractListModel(parent) {}

AtomKind PaletteModel::atom(int row) const { return strategyAtoms().at(size_t(row)).kind; }

std::optional<AtomKind> PaletteModel::atomFromMime(const QMimeData* data)
{
    if (!data || !data->hasFormat(kMimeType))
        return std::nullopt;
    return atomFromId(data->data(kMimeType).toStdString());
}

QColor PaletteModel::colorOf(AtomKind k)
{
    // One hue per family, told apart by lightness: sync (blues), tensor
    // parallel (oranges), pipeline (green), recomputation (purples).
    switch (k) {
    case AtomKind::AllReduce: return QColor(0x3b, 0x7d, 0xd8);
    case AtomKind::AllReduceHierarchical: return QColor(0x1f, 0x5a, 0xa6);
    case AtomKind::ParameterServer: return QColor(0x2a, 0xa1, 0x98);
    case AtomKind::SFB: return QColor(0x5b, 0xb8, 0xe8);
    case AtomKind::NoSync: return QColor(0x9a, 0xa0, 0xa6);
    case AtomKind::TpColumn: return QColor(0xe8, 0x8a, 0x2a);
    case AtomKind::TpRow: return QColor(0xc4, 0x62, 0x10);
    case AtomKind::TpReplicated: return QColor(0xd9, 0xb3, 0x6c);
    case AtomKind::PipelineStage: return QColor(0x3d, 0x9a, 0x50);
    case AtomKind::RecomputeNone: return QColor(0xb7, 0xa6, 0xd6);
    case AtomKind::RecomputeSelective: return QColor(0x8e, 0x6b, 0xc4);
    case AtomKind::RecomputeFull: return QColor(0x63, 0x3f, 0x9e);
    }
    return Qt::gray;
}

int PaletteModel::rowCount(const QModelIndex& parent) const
{
    return parent.isValid() ? 0 : int(strategyAtoms().size());
}

QVariant PaletteModel::data(const QModelIndex& index, int role) const
{
    if (!index.isValid() || index.row() < 0 || index.row() >= rowCount())
        return {};
    const AtomInfo& a = strategyAtoms()[size_t(index.row())];
    switch (role) {
    case Qt::DisplayRole: return QString::fromStdString(a.label);
    case Qt::ToolTipRole:
        return tr("%1\nDrag onto a layer, a selection of layers or a block.").arg(QString::fromStdString(a.description));
    case Qt::DecorationRole: {
        QPixmap swatch(14, 14);
        swatch.fill(Qt::transparent);
        QPainter p(&swatch);
        p.setRenderHint(QPainter::Antialiasing);
        p.setBrush(colorOf(a.kind));
        p.setPen(colorOf(a.kind).darker(140));
        p.drawRoundedRect(QRectF(0.5, 0.5, 13, 13), 3, 3);
        return swatch;
    }
    case AtomIdRole: return QString::fromStdString(a.id);
    default: return {};
    }
}

Qt::ItemFlags PaletteModel::flags(const QModelIndex& index) const
{
    if (!index.isValid())
        return Qt::NoItemFlags;
    return Qt::ItemIsEnabled | Qt::ItemIsSelectable | Qt::ItemIsDragEnabled;
}

QStringList PaletteModel::mimeTypes() const { return {kMimeType}; }

QMimeData* PaletteModel::mimeData(const QModelIndexList& indexes) const
{
    if (indexes.isEmpty() || !indexes.front().isValid())
        return nullptr;
    auto* m = new QMimeData;
    const AtomInfo& a = strategyAtoms()[size_t(indexes.front().row())];
    m->setData(kMimeType, QByteArray::fromStdString(a.id));
    m->setText(QString::fromStdString(a.label));
    return m;
}

} // namespace partita
