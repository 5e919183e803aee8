#pragma once
// Who made whom wait (profiler/stragglers.h) for the run on the timeline:
// per step the late rank, the waiting it caused, its worst collective and
// the kernel (and layer) it spent longer on; a double-click frames that
// stretch on the late rank's timeline. Computed off the GUI thread, on its
// own connection to the project.

#include "partita/profiler/stragglers.h"

#include <QAbstractTableModel>
#include <QFutureWatcher>
#include <QWidget>

#include <map>
#include <vector>

class QLabel;
class QTableView;

namespace partita {

class StragglersModel : public QAbstractTableModel
{
    Q_OBJECT
public:
    enum Column
    {
        Step,
        LateRank,
        MadeWait,
        WorstCollective,
        WorstWait,
        Cause,
        Layer,
        Excess,
        ColumnCount
    };
    explicit StragglersModel(QObject* parent = nullptr);
    void setReport(StragglerReport r, std::vector<std::string> layerNames = {});
    const StragglerReport& report() const { return m_report; }

    int rowCount(const QModelIndex& parent = {}) const override;
    int columnCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

private:
    StragglerReport m_report;
    std::vector<std::string> m_layerNames;
};

class StragglersView : public QWidget
{
    Q_OBJECT
public:
    explicit StragglersView(QWidget* parent = nullptr);
    // Analyzes `run` of the project at `path` (0: clears).
    void setRun(const std::string& path, int64_t run);
    // Blocks until the analysis under way is done (tests).
    void waitForReport();
    StragglersModel* model() const { return m_model; }
    QTableView* table() const { return m_table; }
    QString summary() const;
    // Frames row `row`'s stretch: emits frameRequested.
    void frameRow(int row);

signals:
    void frameRequested(int32_t rank, int64_t t0, int64_t t1);
    // Each rank's clock correction, once found (empty for a run of one rank).
    void clocksFound(const std::map<int32_t, int64_t>& offsets);
    void errorOccurred(const QString& message);

private:
    struct Outcome
    {
        int64_t run = 0;
        StragglerReport report;
        std::vector<std::string> layers;
        QString error;
    };
    void done();

    StragglersModel* m_model;
    QTableView* m_table;
    QLabel* m_summary;
    QFutureWatcher<Outcome> m_watcher;
    int64_t m_run = 0;
};

} // namespace partita
