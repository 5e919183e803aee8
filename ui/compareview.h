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
class QHBoxLayout;
class QLabel;
class QSplitter;
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

    // Where each figure leads (compareframe.cpp): the events behind it, found
    // off the GUI thread in the rank and step the diff compared, then
    // selected and framed on the timelines; framed() says which runs had one.
    // A double-click on a layer or ops row, a click on a chart's bar or on a
    // summary line's link does this.
    enum class RankShare
    {
        Compute,
        NonCompute,
        Idle
    };
    void frameLayer(int32_t layer);                    // its first kernel, on both
    void frameOp(const std::string& name);             // its first event, on both
    void frameClass(KernelClass k);                    // the class's first kernel, on both
    void frameStep();                                  // the compared step, on both
    void frameRankShare(int side, int rank, RankShare share); // a rank's bar (side 0: A): its first such kernel, or its step for idle
    bool frameMemoryPeak(int side);                    // the most loaded device's peak; false when the run has none
    bool frameStraggler(int side);                     // where the rank that made the others wait most was late
    bool openLink(const QString& link);                // a summary link: step, class:NAME, memory:a|b, straggler:a|b
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
    static QString notAsPlanned(const RunInfo& run, const char* side);
    // compare()'s worker: both runs diffed and analyzed over a connection of its own to the project at `path`.
    static Prepared prepare(const std::string& path, int64_t a, int64_t b, const RunInfo& infoA, const RunInfo& infoB);
    // One side's question: its first event, or (`window`) its step's window.
    struct SideQuery
    {
        EventQuery q;
        bool window = false;
    };
    struct FrameRequest
    {
        std::optional<SideQuery> a, b;
    };
    struct Found
    {
        int64_t a = 0, b = 0; // the runs asked about
        std::optional<FoundEvent> inA, inB;
        std::optional<std::pair<int64_t, int64_t>> windowA, windowB;
        int rankA = 0, rankB = 0;
        int32_t layer = -1;
    };
    SideQuery scoped(EventQuery q, int side, bool window = false) const;
    void frameEvents(FrameRequest request);
    void showFound();
    QFutureWatcher<Found> m_frameWatcher;
    std::optional<FrameRequest> m_pendingFrame; // asked for while a search ran: the latest wins
    // Places the summary's memory and straggler lines lead to, per side.
    struct Mark
    {
        int rank = 0;
        int64_t t0 = 0, t1 = 0;
    };
    std::optional<Mark> m_peak[2], m_straggler[2];
    bool frameMark(int side, const std::optional<Mark> (&marks)[2]);
    static const MemorySeries* topSeries(const MemoryReport& m);                  // the most loaded accelerator (else the CPU)
    static const RankBlame* topBlame(const std::optional<StragglerReport>& r);   // who made the others wait most; null if none
    static std::optional<Mark> peakMark(const MemoryReport& m, const RunInfo& run);
    static std::optional<Mark> stragglerMark(const std::optional<StragglerReport>& r);
    QHBoxLayout* createRunBar();
    void createSummary();
    QSplitter* createTimelines();
    void createTables();
    QWidget* createCharts();
    QSplitter* createBottom();
    void prepared();
    void showTables(const Prepared& p);
    void alignTimelines(const Prepared& p);
    static QString summaryText(const Prepared& p);
    void keepMarks(const Prepared& p);
    QFutureWatcher<Prepared> m_watcher;
    bool m_busy = false;
    void syncFrom(TimelineView* from);
    void drawCharts(const RunAnalysis& a, const RunAnalysis& b); // comparecharts.cpp
    void drawRankChart(const RunAnalysis& a, const RunAnalysis& b);
    void drawClassChart(const RunAnalysis& a, const RunAnalysis& b);
    std::vector<std::pair<int, int>> m_rankBars; // the rank chart's categories: (side, rank)
    std::vector<KernelClass> m_classBars;        // the class chart's categories

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
