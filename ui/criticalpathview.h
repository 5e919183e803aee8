#pragma once
// The critical path (profiler/criticalpath.h) of the run on the timeline:
// per step (or time slice) the path's length against the step's, its split
// by kind, and its segments: rank, what ran, layer, when and how long. The
// chosen step's path is drawn on the timeline; a double-click frames a
// segment there. Computed off the GUI thread, on its own connection to the
// project, and only while the panel is shown.

#include "lazypanel.h"
#include "timelineview.h"

#include "partita/profiler/criticalpath.h"

#include <QAbstractTableModel>
#include <QFutureWatcher>
#include <QWidget>

#include <optional>
#include <vector>

class QComboBox;
class QLabel;
class QTableView;

namespace partita {

class CriticalPathModel : public QAbstractTableModel
{
    Q_OBJECT
public:
    enum Column
    {
        Rank,
        What,
        Event,
        Layer,
        At,
        Length,
        ColumnCount
    };
    explicit CriticalPathModel(QObject* parent = nullptr);
    // The path's segments that take time (zero-weight ordering edges left out).
    void setPath(CriticalPath p, std::vector<std::string> layerNames = {});
    const CriticalPath& path() const { return m_path; }
    const PathSegment& segment(int row) const { return m_path.segments[m_rows[size_t(row)]]; }

    int rowCount(const QModelIndex& parent = {}) const override;
    int columnCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

private:
    CriticalPath m_path;
    std::vector<size_t> m_rows;
    std::vector<std::string> m_layerNames;
};

class CriticalPathView : public LazyPanel
{
    Q_OBJECT
public:
    explicit CriticalPathView(QWidget* parent = nullptr);
    // Shows step `index` of the run's windows (the combo box's order).
    void showWindow(int index);
    CriticalPathModel* model() const { return m_model; }
    QTableView* table() const { return m_table; }
    QComboBox* windows() const { return m_windows; }
    QString summary() const;
    // Frames row `row`'s segment: emits frameRequested.
    void frameRow(int row);

signals:
    void pathChanged(const std::vector<TimelineView::PathMark>& marks);
    void frameRequested(int32_t rank, int64_t t0, int64_t t1);
    void errorOccurred(const QString& message);


protected:
    void clearRun() override;
    QString idleText() const override;
    QString waitingText(int64_t run) const override;
    void start() override { start(0, true); }

private:
    struct Outcome
    {
        int64_t run = 0;
        std::optional<CriticalPathReport> all; // every window's sums (a new run)
        CriticalPath chosen;                   // one window, with its segments
        int index = 0;
        std::vector<std::string> layers;
        QString error;
    };
    void start(int index, bool all);
    void done();

    CriticalPathModel* m_model;
    QComboBox* m_windows;
    QTableView* m_table;
    QFutureWatcher<Outcome> m_watcher;
    CriticalPathReport m_all;
};

} // namespace partita
