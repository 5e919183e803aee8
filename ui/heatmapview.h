#pragma once
// The rank heat map (profiler/heatmap.h) of the run on the timeline: a row
// per rank, a column per step, each cell coloured by how far the chosen
// figure (step time, compute, exposed communication, idle) lies from its
// step's median over the ranks, as a share of the step's median length:
// red above, blue below. Hovering a cell gives its figures; a click frames
// the rank's step on the timeline. Computed off the GUI thread, on its own
// connection to the project, and only while the panel is shown.

#include "lazypanel.h"

#include "partita/profiler/heatmap.h"

#include <QFutureWatcher>
#include <QWidget>

#include <optional>

class QComboBox;
class QPainter;
class QLabel;
class QScrollArea;

namespace partita {

// The grid itself: painted, sized to its rows and columns.
class HeatMapChart : public QWidget
{
    Q_OBJECT
public:
    explicit HeatMapChart(QWidget* parent = nullptr);
    void setMap(HeatMap map);
    const HeatMap& map() const { return m_map; }
    void setMetric(HeatMetric m);
    HeatMetric metric() const { return m_metric; }
    // The colour scale's reach: the largest deviation drawn fully saturated,
    // as a share of the step's median length.
    double scale() const { return m_scale; }
    // A cell's deviation from its column's median, as a share of the
    // column's median step length (what its colour shows).
    double deviation(int row, int64_t column) const;
    QColor cellColor(int row, int64_t column) const;
    // Where a cell is drawn, and which cell is at a point (row -1: none).
    QRect cellRect(int row, int64_t column) const;
    std::pair<int, int64_t> cellAt(const QPoint& p) const;
    QString describe(int row, int64_t column) const;
    QSize sizeHint() const override;

    static constexpr int kGutter = 64; // rank labels
    static constexpr int kHeader = 18; // step numbers
    static constexpr int kLegend = 130; // the colour scale, right of the cells

signals:
    void cellClicked(int32_t rank, int64_t t0, int64_t t1);

protected:
    void paintEvent(QPaintEvent*) override;
    void mousePressEvent(QMouseEvent*) override;
    bool event(QEvent*) override;

private:
    void recompute();
    void paintLegend(QPainter& p);
    int cellWidth() const;
    int cellHeight() const;

    HeatMap m_map;
    HeatMetric m_metric = HeatMetric::Step;
    std::vector<int64_t> m_medians, m_stepMedians; // per column: the metric's, the step length's
    double m_scale = 0.01;
};

class HeatMapView : public LazyPanel
{
    Q_OBJECT
public:
    explicit HeatMapView(QWidget* parent = nullptr);
    void setMetric(HeatMetric m);
    HeatMapChart* chart() const { return m_chart; }
    QComboBox* metrics() const { return m_metrics; }
    QString summary() const;

signals:
    void frameRequested(int32_t rank, int64_t t0, int64_t t1);
    void errorOccurred(const QString& message);


protected:
    void clearRun() override { m_chart->setMap({}); }
    QString idleText() const override;
    QString waitingText(int64_t run) const override;
    void start() override;

private:
    struct Outcome
    {
        int64_t run = 0;
        std::optional<HeatMap> map;
        QString error;
    };
    void done();
    void updateSummary();

    QComboBox* m_metrics;
    QScrollArea* m_scroll;
    HeatMapChart* m_chart;
    QFutureWatcher<Outcome> m_watcher;
};

} // namespace partita
