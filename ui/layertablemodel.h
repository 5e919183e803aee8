#pragma once
// The designer's layer table: every layer of the model with its size, cost,
// the strategy it resolves to and, once predicted, its time. Strategy atoms
// dropped on a row (PaletteModel's mime type) go to the drop handler, which
// decides which layers they apply to and whether the drop is accepted.

#include "partita/core/model.h"
#include "partita/core/simulator.h"
#include "partita/core/strategy.h"
#include "partita/core/strategyedit.h"

#include <QAbstractTableModel>

#include <functional>
#include <optional>

namespace partita {

class LayerTableModel : public QAbstractTableModel
{
    Q_OBJECT
public:
    enum Column
    {
        Name,
        Sync, // the strategy first: it is what the designer edits
        TensorParallel,
        Stage,
        Recompute,
        Time,
        SyncTime,
        Params,
        ForwardFlops,
        Activations,
        Kind,
        Block,
        ColumnCount
    };
    enum Role
    {
        SortRole = Qt::UserRole + 1, // numbers as numbers
        LayerNameRole,
    };
    // Called with the row dropped on and the atom; returns false with the reason to refuse.
    using DropHandler = std::function<bool(int row, AtomKind atom, QString* why)>;

    explicit LayerTableModel(QObject* parent = nullptr);

    void setModel(const Model* model); // not owned; nullptr clears
    // The strategy as resolved (nullopt: it does not resolve) and the batch the costs are for.
    void setStrategy(const std::optional<ResolvedStrategy>& resolved, int64_t microBatch, int64_t seqLen);
    void setPrediction(const std::optional<SimResult>& result);
    void setDropHandler(DropHandler h) { m_drop = std::move(h); }
    QString lastDropError() const { return m_lastDropError; }

    const Layer* layer(int row) const;
    int rowOf(const std::string& layerName) const;

    int rowCount(const QModelIndex& parent = {}) const override;
    int columnCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;
    Qt::ItemFlags flags(const QModelIndex& index) const override;
    QStringList mimeTypes() const override;
    Qt::DropActions supportedDropActions() const override { return Qt::CopyAction; }
    bool canDropMimeData(const QMimeData* data, Qt::DropAction action, int row, int column,
                         const QModelIndex& parent) const override;
    bool dropMimeData(const QMimeData* data, Qt::DropAction action, int row, int column,
                      const QModelIndex& parent) override;

private:
    const Model* m_model = nullptr;
    std::optional<ResolvedStrategy> m_resolved;
    std::optional<SimResult> m_result;
    std::vector<int> m_timeOf; // model layer -> index in m_result->layers, -1: none
    int64_t m_microBatch = 1, m_seq = 1;
    std::vector<CostAt> m_costs;
    DropHandler m_drop;
    QString m_lastDropError;
};

} // namespace partita
