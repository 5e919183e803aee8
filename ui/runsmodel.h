#pragma once
// The runs of a project as a table: id, name, kind, status, ranks, events,
// duration. Read from the store when the project opens or changes.

#include "partita/profiler/tracestore.h"

#include <QAbstractTableModel>

#include <vector>

namespace partita {

class RunsModel : public QAbstractTableModel
{
    Q_OBJECT
public:
    enum Column
    {
        Id,
        Name,
        Kind,
        Status,
        Ranks,
        Events,
        Duration,
        ColumnCount
    };
    explicit RunsModel(QObject* parent = nullptr);
    void setRuns(std::vector<RunInfo> runs);
    const RunInfo* run(int row) const;
    int rowOf(int64_t runId) const;

    int rowCount(const QModelIndex& parent = {}) const override;
    int columnCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

private:
    std::vector<RunInfo> m_runs;
};

} // namespace partita
