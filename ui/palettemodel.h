#pragma once
// The strategy palette: one tile per strategy atom, dragged onto layers in
// the designer. The drag carries the atom's id as kMimeType.

#include "partita/core/strategyedit.h"

#include <QAbstractListModel>
#include <QColor>

namespace partita {

class PaletteModel : public QAbstractListModel
{
    Q_OBJECT
public:
    static constexpr const char* kMimeType = "application/x-partita-atom";
    enum Role
    {
        AtomIdRole = Qt::UserRole + 1,
    };
    explicit PaletteModel(QObject* parent = nullptr);

    AtomKind atom(int row) const;
    // The atom a drag carries, if the data came from a palette.
    static std::optional<AtomKind> atomFromMime(const QMimeData* data);
    static QColor colorOf(AtomKind k);

    int rowCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
    Qt::ItemFlags flags(const QModelIndex& index) const override;
    QStringList mimeTypes() const override;
    QMimeData* mimeData(const QModelIndexList& indexes) const override;
    Qt::DropActions supportedDragActions() const override { return Qt::CopyAction; }
};

} // namespace partita
