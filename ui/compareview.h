#pragma once
// Compare: two runs of the project (strategy A vs B, or predicted vs
// measured) one above the other, their timelines kept on the same window
// relative to their first step; the summary deltas, a sortable per-layer
// delta table, HTA's ops diff, kernel-category deltas and per-rank
// breakdown charts. Every figure comes from diffRuns() and analyzeRun(),
// which `partita-cli trace diff` and `trace stats` print too.

#include "partita/profiler/analysis.h"
#include "partita/profiler/eventquery.h"
#include "partita/profiler/memory.h"
#include "partita/profiler/stragglers.h"

#include <QAbstractTableModel>
#include <QFutureWatcher>
#include <QWidget>

#include <optional>

class QChartView;
class QComboBox;
class QLabel;
class QTableView;

namespace partita {

class TimelineView;
class TraceStore;

// Per-layer device time of the two runs.
class LayerDeltaModel : public QAbstractTableModel
{
    Q_OBJECT
public:
    enum Column
    {
        Layer,
        A,
        B,
        Delta,
        DeltaPct,
        ColumnCount
    };
    static constexpr int SortRole = Qt::UserRole + 1;
    explicit LayerDeltaModel(QObject* parent = nullptr);
    // `names[i]`: the name of layer id i (from the run's model), when known.
    void setRows(std::vector<LayerDelta> rows, std::vector<std::string> names);
    int32_t rowLayer(int row) const { return row >= 0 && row < int(m_rows.size()) ? m_rows[size_t(row)].layer : -1; }
    int rowCount(const QModelIndex& parent = {}) const override;
    int columnCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

private:
    std::vector<LayerDelta> m_rows;
    std::vector<std::string> m_names;
};

// HTA's ops diff: per name, counts and times in A and B, and the change.
class OpsDiffModel : public QAbstractTableModel
{
    Q_OBJECT
public:
    enum Column
    {
        Name,
        Change,
        CountA,
        CountB,
        TimeA,
        TimeB,
        Delta,
        ColumnCount
    };
    static constexpr int SortRole = Qt::UserRole + 1;
    explicit OpsDiffModel(QObject* parent = nullptr);
    void setRows(std::vector<OpsDiffRow> rows);
    std::string rowName(int row) const { return row >= 0 && row < int(m_rows.size()) ? m_rows[size_t(row)].name : std::string(); }
    int rowCount(const QModelIndex& parent = {}) const override;
    int columnCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

private:
    std::vector<OpsDiffRow> m_rows;
};

class CompareView : public QWidget
{
    Q_OBJECT
public:
    explicit CompareView(QWidget* parent = nullptr);
    ~CompareView() override;

    // The project whose runs are offered (not owned; nullptr clears).
    void setStore(const TraceStore* store);
    // Re-reads the project's run list (after a run was added).
    void refreshRunLists();
    // Compares two runs: false with lastError() when they cannot be (missing
    // runs, no project); else the runs are read on a worker thread and
    // compared(ok) follows (errors also as errorOccurred).
    bool compare(int64_t a, int64_t b);
    bool busy() const { return m_busy; }
    int64_t runA() const { return m_a; }
    int64_t runB() const { return m_b; }
    QString lastError() const { return m_error; }
    QString summary() const;

    TimelineView* timelineA() const { return m_timelineA; }
    TimelineView* timelineB() const { return m_timelineB; }
    LayerDeltaModel* layerModel() const { return m_layers; }
    OpsDiffModel* opsModel() const { return m_ops; }
    const std::optional<RunDiff>& diff() const { return m_diff; }
    // Time of the first step of each run (or its first event): the timelines' common origin.
    std::pair<int64_t, int64_t> anchors() const { return {m_anchorA, m_anchorB}; }

    // The events behind a row: in each run, the compared rank's first event
    // of the layer (or of the op's name) in the compared iteration, found off
    // the GUI thread, then selected and framed on both timelines; framed()
    // says which runs had one (compareframe.cpp). A double-click on a layer
    // or ops row does this.
    void frameLayer(int32_t layer);
    void frameOp(const std::string& name);
    void waitForFrame(); // tests
    QTableView* layerTable() const { return m_layerTable; }
    QTableView* opsTable() const { return m_opsTable; }

    // Writes the whole view, or one chart, as PNG or SVG (by the extension).
    bool exportImage(const QString& path, QWidget* what = nullptr);
    QChartView* rankChart() const { return m_rankChart; }
    QChartView* classChart() const { return m_classChart; }

signals:
    void errorOccurred(const QString& message);
    void compared(bool ok);
    void framed(bool inA, bool inB);

protected:
    void changeEvent(QEvent* e) override;

private:
    struct Prepared
    {
        bool ok = false;
        QString error;
        int64_t a = 0, b = 0, anchorA = 0, anchorB = 0;
        RunInfo ra, rb;
        RunDiff diff;
        RunAnalysis aa, ab;
        MemoryReport ma, mb;                   // memory records, the predicted peak
        std::optional<StragglerReport> sa, sb; // runs of several ranks
        std::vector<std::string> names;
    };
    static QString memoryAndStragglers(const Prepared& p);
    struct Found
    {
        int64_t a = 0, b = 0; // the runs asked about
        std::optional<FoundEvent> inA, inB;
        int32_t layer = -1;
    };
    void frameEvents(EventQuery query);
    void showFound();
    QFutureWatcher<Found> m_frameWatcher;
    void prepared();
    QFutureWatcher<Prepared> m_watcher;
    bool m_busy = false;
    void syncFrom(TimelineView* from);
    void drawCharts(const RunAnalysis& a, const RunAnalysis& b);

    const TraceStore* m_store = nullptr;
    int64_t m_a = 0, m_b = 0, m_anchorA = 0, m_anchorB = 0;
    QString m_error, m_summary;
    bool m_syncing = false;
    std::optional<RunDiff> m_diff;
    QComboBox *m_boxA = nullptr, *m_boxB = nullptr;
    QLabel* m_summaryLabel = nullptr;
    QLabel *m_captionA = nullptr, *m_captionB = nullptr;
    TimelineView *m_timelineA = nullptr, *m_timelineB = nullptr;
    LayerDeltaModel* m_layers = nullptr;
    OpsDiffModel* m_ops = nullptr;
    QTableView *m_layerTable = nullptr, *m_opsTable = nullptr;
    QChartView *m_rankChart = nullptr, *m_classChart = nullptr;
};

} // namespace partita
