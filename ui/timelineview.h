#pragma once
// The timeline of one run: a row per track, grouped by rank (a rank's header
// collapses its tracks), a time ruler with units, the events of the visible
// window drawn from the store's viewport query (level of detail: runs of
// events too small to tell apart come folded, "N events"), coloured by kind.
// Zoom at the cursor with Ctrl+wheel, pan with Shift+wheel or a drag,
// W/A/S/D as in Perfetto and chrome://tracing, F to fit; hovering shows an
// event's name, kind, duration, layer and bytes.

#include "timeaxis.h"

#include "partita/core/mesh.h"
#include "partita/profiler/heatmap.h"
#include "partita/profiler/memory.h"
#include "partita/profiler/tracestore.h"

#include <QAbstractScrollArea>
#include <QFutureWatcher>
#include <QImage>
#include <QThreadPool>
#include <QFontMetrics>
#include <QRectF>
#include <QStaticText>

#include <map>
#include <memory>
#include <optional>
#include <unordered_map>
#include <vector>

class QPainter;

namespace partita {

// A group header's second line: "4 ranks, 40–60 % busy" (least to most busy rank).
QString groupBusyText(const GroupBusy& g);

class TimelineView : public QAbstractScrollArea
{
    Q_OBJECT
public:
    explicit TimelineView(QWidget* parent = nullptr);

    // Shows a run of `store` (not owned; must outlive the view or be cleared with setRun(nullptr, 0)).
    void setRun(const TraceStore* store, int64_t run);
    int64_t run() const { return m_run; }
    const TimeAxis& axis() const { return m_axis; }
    TimeAxis& axis() { return m_axis; }
    void setRankCollapsed(int32_t rank, bool collapsed);

    // What the last paint drew (for tests and hit tests).
    struct Painted
    {
        QRectF rect;
        DrawItem item;
        int64_t track = 0;
    };
    const std::vector<Painted>& painted() const { return m_painted; }
    const Painted* itemAt(const QPointF& viewportPos) const;
    // The text of an item's tooltip.
    QString describe(const Painted& p) const;

    // The range measured with Shift+drag (empty when none), and its summary:
    // its length and, over the tracks drawn, the busy time by kind.
    std::pair<int64_t, int64_t> measuredRange() const { return m_measure; }

    // Events whose name contains `text` (any case) are outlined; empty: none.
    void setSearch(const QString& text);
    int matchesPainted() const { return m_matches; } // in the last paint
    // Colour by the event's kind, or by its model layer (events without one grey).
    enum class ColorBy
    {
        Kind,
        Layer,
    };
    void setColorBy(ColorBy c);
    ColorBy colorBy() const { return m_colorBy; }
    void setMeasuredRange(int64_t t0, int64_t t1);
    QString describeRange() const;
    // Frames [t0, t1] (a little either side), marks it as the measured range
    // and scrolls `rank` (expanded) to the top: where a figure elsewhere
    // points on the timeline.
    void showRange(int32_t rank, int64_t t0, int64_t t1);
    // Frames an event as showRange does and selects it as a click would (its
    // layer highlighted on every rank): where a row elsewhere leads.
    void selectEvent(int32_t rank, int64_t eventId, int64_t t0, int64_t t1, int32_t layer = -1);
    int64_t selectedEvent() const { return m_selected; }

    // A critical path (profiler/criticalpath.h) drawn over the tracks: each
    // segment a red band on its track (on its rank's header when the rank is
    // folded), consecutive segments on different tracks joined by a line.
    struct PathMark
    {
        int32_t rank = 0;
        int64_t track_id = 0;
        int64_t t0 = 0, t1 = 0;
    };
    void setCriticalPath(std::vector<PathMark> marks);
    int pathMarksPainted() const { return m_pathPainted; } // in the last paint

    // Each rank's clock correction (subtracted from its times: stragglers.h's
    // ClockCorrection, aligning the ranks on their collectives' ends), applied
    // while alignment is on (the default) and reported on the rank's header;
    // off, every rank is drawn on its own raw clock (timelineclocks.cpp).
    void setClockOffsets(std::map<int32_t, int64_t> offsets);
    void setAlignClocks(bool on);
    bool alignClocks() const { return m_alignClocks; }
    int64_t offsetOf(int32_t rank) const; // applied now: 0 when raw or unknown

    // Memory over time (profiler/memory.h), read off the GUI thread when a
    // run is shown: a row per rank and device under the rank's tracks, the
    // allocated bytes filled, the reserved bytes a line, the predicted peak
    // dashed (timelinecounters.cpp).
    void setMemory(MemoryReport report);
    const MemoryReport& memory() const { return m_memory; }
    void waitForMemory(); // tests
    bool memoryLoading() const { return m_memoryWatcher.isRunning(); }
    int countersPainted() const { return m_countersPainted; } // in the last paint

    // Ranks grouped by a parallel axis of the run's mesh (TraceStore::runMesh:
    // given on import, else the run's strategy's): a header per group folds
    // its ranks and shows, per step, its ranks' busy share (1 - idle / step,
    // profiler/heatmap.h, read off the GUI thread): the median filled, the
    // least and most busy marked; run-wide, their least, median and most in
    // the gutter. Groups start folded in a run of more than 8 ranks.
    // None: the ranks in order (timelinegroups.cpp).
    const std::optional<MeshShape>& mesh() const { return m_mesh; }
    bool canGroupBy(MeshAxis a) const; // the mesh has a degree above 1 on it
    void setGroupBy(std::optional<MeshAxis> axis);
    std::optional<MeshAxis> groupBy() const { return m_groupBy; }
    void setGroupCollapsed(int group, bool collapsed);
    bool groupCollapsed(int group) const;
    int groupOf(int32_t rank) const; // -1: ungrouped, or beyond the mesh
    std::vector<GroupBusy> groupBusy() const; // profiler/heatmap.h's; empty until the busy shares are read
    void waitForGroups();                     // tests
    // The headers laid out, in order: a group's as {true, group}, a rank's as {false, rank}.
    std::vector<std::pair<bool, int>> outline() const;
    bool groupsLoading() const { return m_heatWatcher.isRunning(); }
    int groupsPainted() const { return m_groupsPainted; } // group headers in the last paint

    // Outlines the events of one model layer on every rank and dims the rest
    // (-1: none). A click on an event highlights its layer and selects it.
    void setHighlightLayer(int32_t layer);
    int32_t highlightLayer() const { return m_highlight; }
    int highlightedPainted() const { return m_highlighted; } // in the last paint
    // The steps drawn in the last paint (of the lowest rank that has steps in
    // view): dashed lines and "#N" on the ruler.
    struct StepMark
    {
        int64_t start = 0, end = 0;
        QString label;
    };
    const std::vector<StepMark>& stepMarks() const { return m_steps; }

    static constexpr int kGutter = 190;  // track names
    static constexpr int kRuler = 26;
    static constexpr int kRowHeight = 22;
    static constexpr int kHeaderHeight = 20;
    static constexpr int kLaneHeight = 16;
    static constexpr int kHostLanes = 3; // nesting shown on host tracks; deeper ones share the last lane

signals:
    void viewChanged();
    // A run was shown whose mesh differs, or the grouping changed.
    void groupingChanged();
    // A click chose an event: its details (as the tooltip's), for a details panel.
    void eventSelected(const QString& details);
    void errorOccurred(const QString& message);

protected:
    void paintEvent(QPaintEvent*) override;
    void resizeEvent(QResizeEvent*) override;
    void wheelEvent(QWheelEvent*) override;
    void keyPressEvent(QKeyEvent*) override;
    void mousePressEvent(QMouseEvent*) override;
    void mouseMoveEvent(QMouseEvent*) override;
    void mouseReleaseEvent(QMouseEvent*) override;
    void mouseDoubleClickEvent(QMouseEvent*) override;
    bool viewportEvent(QEvent*) override;
    void scrollContentsBy(int dx, int dy) override;
    void changeEvent(QEvent*) override;

private:
    struct Row
    {
        bool header = false;
        int32_t rank = 0;
        StoredTrack track; // a memory row's: a negative id, its name
        int top = 0, height = 0;
        int counter = -1;  // a memory row: its series in m_memory
        int group = -1;    // the rank's group (grouped by a mesh axis)
        bool groupHeader = false;
    };
    // One frame, painted in named passes (timelineview.cpp).
    struct Canvas;
    struct RowSpan
    {
        size_t row, first, last; // m_rows index; m_painted range
    };
    Canvas beginCanvas(QPainter& p, int w, int h);
    bool onScreen(const Row& r, int scroll, int h) const;
    std::vector<Result<std::vector<DrawItem>>> fetchVisible(int scroll, int h);
    void paintRows(const Canvas& cv, int scroll, int w, int h, std::vector<Result<std::vector<DrawItem>>> fetched,
                   std::vector<RowSpan>& drawn);
    void paintTitles(QPainter& p, const std::vector<RowSpan>& drawnRows, int scroll, int w);
    void outline(QPainter& p, const Painted& pd);
    void paintMeasure(QPainter& p, int w, int h);
    void paintRuler(QPainter& p, const std::vector<TimeAxis::Tick>& ticks, int w);
    void layoutRows();
    void paintPath(QPainter& p, int scroll, int w, int h); // timelinepath.cpp
    void paintCounters(QPainter& p, int scroll, int w, int h); // timelinecounters.cpp
    void paintGroups(QPainter& p, int scroll, int w, int h);   // timelinegroups.cpp
    void loadHeat();
    void refreshGroups(); // m_groupBusy and m_groupColumns from the busy shares, the grouping and the clocks
    std::vector<size_t> rankOrder(const std::vector<int32_t>& ranks) const;
    void loadMemory();
    void addCounterRows(int32_t rank, int& y);
    void fitRange(); // the axis's range: every track's, on the clocks applied
    void updateScrollBars();
    QString nameOf(int64_t nameId) const;
    const QImage& labelMask(const DrawItem& it, const QFontMetrics& fm);

    const TraceStore* m_store = nullptr;
    std::unique_ptr<TraceStore> m_helperStore; // the same file, for the helper thread's queries
    QThreadPool m_helperPool;
    int64_t m_run = 0;
    TimeAxis m_axis;
    std::vector<StoredTrack> m_tracks;
    std::vector<Row> m_rows;
    std::unordered_map<int32_t, bool> m_collapsed;
    std::vector<Painted> m_painted;
    QImage m_canvas; // rows and events, filled without QPainter, when not straight into the backing store
    bool m_direct = false, m_noDirect = false;

public:
    // Whether the last paint filled the window's backing store directly;
    // tests turn that off to compare both ways.
    bool paintedDirectly() const { return m_direct; }
    void setPaintDirectly(bool on) { m_noDirect = !on; }

private:
    mutable std::unordered_map<int64_t, QString> m_names;
    std::unordered_map<int64_t, QImage> m_labelMasks; // name id (or -count of a folded run) -> glyph coverage
    qreal m_labelDpr = 0;
    std::unordered_map<int64_t, QStaticText> m_trackTitles; // track id -> elided name
    bool m_dragging = false, m_measuring = false;
    QString m_search;
    mutable std::unordered_map<int64_t, bool> m_searchHits; // name id -> matches
    int m_matches = 0;
    ColorBy m_colorBy = ColorBy::Kind;
    std::pair<int64_t, int64_t> m_measure{0, 0};
    QPointF m_dragFrom;
    QString m_error;
    bool m_errorShown = false;
    int32_t m_highlight = -1;
    int m_highlighted = 0;
    int64_t m_selected = 0; // event id
    std::vector<StepMark> m_steps;
    std::vector<PathMark> m_path;
    int m_pathPainted = 0;
    MemoryReport m_memory;
    std::map<int32_t, int64_t> m_offsets;
    bool m_alignClocks = true;
    QFutureWatcher<std::pair<int64_t, MemoryReport>> m_memoryWatcher;
    int m_countersPainted = 0;
    std::optional<MeshShape> m_mesh;
    std::optional<MeshAxis> m_groupBy;
    std::unordered_map<int, bool> m_groupCollapsed;
    bool m_groupsFoldedFirst = false; // groups not yet toggled start folded
    HeatMap m_heat;                    // the busy shares, for the group headers
    // Per group, what its header shows, made once per change of the shares,
    // the grouping or the clocks (not per paint): its ranks' busy range, and
    // per step the median span and the least, median and most busy share.
    struct GroupColumn
    {
        int64_t start = 0, end = 0; // the ranks' median, on the timeline's clock
        double lo = 0, med = 0, hi = 0;
    };
    std::map<int, GroupBusy> m_groupBusy;
    std::map<int, std::vector<GroupColumn>> m_groupColumns;
    int64_t m_heatRun = 0;
    QFutureWatcher<std::pair<int64_t, HeatMap>> m_heatWatcher;
    int m_groupsPainted = 0;
    bool m_clickCandidate = false;
    QPointF m_pressAt;
};

} // namespace partita
