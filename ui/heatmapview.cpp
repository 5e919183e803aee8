#include "heatmapview.h"

#include "partita/core/units.h"
#include "partita/profiler/tracestore.h"

#include <QComboBox>
#include <QCoreApplication>
#include <QHelpEvent>
#include <QLabel>
#include <QMouseEvent>
#include <QPainter>
#include <QScrollArea>
#include <QToolTip>
#include <QVBoxLayout>
#include <QtConcurrent/QtConcurrentRun>

#include <algorithm>
#include <cmath>

namespace partita {

namespace {

QString seconds(int64_t ns) { return ns == 0 ? QStringLiteral("0") : QString::fromStdString(formatSeconds(double(ns) * 1e-9)); }

constexpr HeatMetric kMetrics[] = {HeatMetric::Step, HeatMetric::Compute, HeatMetric::ExposedComm, HeatMetric::Idle};

QString metricLabel(HeatMetric m)
{
    switch (m) {
    case HeatMetric::Step: return QObject::tr("Step time");
    case HeatMetric::Compute: return QObject::tr("Compute");
    case HeatMetric::ExposedComm: return QObject::tr("Exposed communication");
    case HeatMetric::Idle: return QObject::tr("Idle");
    }
    return {};
}

QColor mix(const QColor& a, const QColor& b, double t)
{
    return QColor::fromRgbF(float(a.redF() + (b.redF() - a.redF()) * t), float(a.greenF() + (b.greenF() - a.greenF()) * t),
                            float(a.blueF() + (b.blueF() - a.blueF()) * t));
}

// The scale's ends and middle.
const QColor neutral(232, 232, 232), above(214, 48, 39), below(49, 104, 178);

// The smallest deviation given full colour: 1 % of a step (what the summary
// and `trace heatmap` count as standing out), so that jitter in an even run stays pale.
constexpr double kMinScale = 0.01;

} // namespace

HeatMapChart::HeatMapChart(QWidget* parent) : QWidget(parent)
{
    setMouseTracking(true);
    setSizePolicy(QSizePolicy::Expanding, QSizePolicy::Expanding);
}

void HeatMapChart::setMap(HeatMap map)
{
    m_map = std::move(map);
    recompute();
}

void HeatMapChart::setMetric(HeatMetric m)
{
    m_metric = m;
    recompute();
}

void HeatMapChart::recompute()
{
    m_medians.assign(size_t(m_map.columns), 0);
    m_stepMedians.assign(size_t(m_map.columns), 0);
    for (int64_t c = 0; c < m_map.columns; ++c) {
        m_medians[size_t(c)] = m_map.columnMedian(c, m_metric);
        m_stepMedians[size_t(c)] = m_map.columnMedian(c, HeatMetric::Step);
    }
    m_scale = kMinScale;
    for (int r = 0; r < int(m_map.rows.size()); ++r)
        for (int64_t c = 0; c < int64_t(m_map.rows[size_t(r)].cells.size()); ++c)
            m_scale = std::max(m_scale, std::abs(deviation(r, c)));
    // At least its cells' room (the scroll area scrolls past it), else the viewport's.
    setMinimumSize(kGutter + int(std::max<int64_t>(1, m_map.columns)) * 8 + 4, kHeader + int(m_map.rows.size()) * cellHeight() + 4);
    updateGeometry();
    update();
}

double HeatMapChart::deviation(int row, int64_t column) const
{
    if (row < 0 || row >= int(m_map.rows.size()) || column < 0 || column >= int64_t(m_map.rows[size_t(row)].cells.size()))
        return 0;
    const int64_t step = m_stepMedians[size_t(column)];
    if (step <= 0)
        return 0;
    return double(heatValue(m_map.rows[size_t(row)].cells[size_t(column)], m_metric) - m_medians[size_t(column)]) / double(step);
}

QColor HeatMapChart::cellColor(int row, int64_t column) const
{
    const double t = std::clamp(deviation(row, column) / m_scale, -1.0, 1.0);
    return t >= 0 ? mix(neutral, above, t) : mix(neutral, below, -t);
}

int HeatMapChart::cellWidth() const
{
    const int columns = int(std::max<int64_t>(1, m_map.columns));
    return std::clamp((width() - kGutter - kLegend - 4) / columns, 8, 120);
}

int HeatMapChart::cellHeight() const { return std::clamp(400 / std::max(1, int(m_map.rows.size())), 3, 18); }

QSize HeatMapChart::sizeHint() const
{
    return {kGutter + int(std::max<int64_t>(1, m_map.columns)) * 40 + 4, kHeader + int(m_map.rows.size()) * cellHeight() + 4};
}

QRect HeatMapChart::cellRect(int row, int64_t column) const
{
    const int w = cellWidth(), h = cellHeight();
    return QRect(kGutter + int(column) * w, kHeader + row * h, w - (w > 10 ? 1 : 0), h - (h > 5 ? 1 : 0));
}

std::pair<int, int64_t> HeatMapChart::cellAt(const QPoint& p) const
{
    if (p.x() < kGutter || p.y() < kHeader)
        return {-1, 0};
    const int row = (p.y() - kHeader) / cellHeight();
    const int64_t column = (p.x() - kGutter) / cellWidth();
    if (row >= int(m_map.rows.size()) || column >= int64_t(m_map.rows[size_t(row)].cells.size()))
        return {-1, 0};
    return {row, column};
}

QString HeatMapChart::describe(int row, int64_t column) const
{
    if (row < 0 || row >= int(m_map.rows.size()) || column >= int64_t(m_map.rows[size_t(row)].cells.size()))
        return {};
    const HeatCell& c = m_map.rows[size_t(row)].cells[size_t(column)];
    QString s = m_map.by_step ? tr("Rank %1, step %2").arg(m_map.rows[size_t(row)].rank).arg(column)
                              : tr("Rank %1, the whole run").arg(m_map.rows[size_t(row)].rank);
    for (HeatMetric m : kMetrics) {
        const int64_t v = heatValue(c, m), med = m_map.columnMedian(column, m);
        s += "\n" + tr("%1: %2 (median %3)").arg(metricLabel(m), seconds(v), seconds(med));
    }
    s += "\n" + tr("other (copies, other kernels): %1").arg(seconds(c.other_ns()));
    s += "\n" + tr("Click to frame it on the timeline");
    return s;
}

void HeatMapChart::paintEvent(QPaintEvent* e)
{
    QPainter p(this);
    p.fillRect(e->rect(), palette().base());
    if (m_map.rows.empty())
        return;
    const QFontMetrics fm(font());
    const int w = cellWidth(), h = cellHeight();
    p.setPen(palette().color(QPalette::Text));
    // Step numbers where they fit, rank labels a line apart.
    const int stepEvery = std::max(1, (fm.horizontalAdvance("000") + 6) / w);
    for (int64_t c = 0; c < m_map.columns; c += stepEvery)
        p.drawText(QRect(kGutter + int(c) * w, 0, w * stepEvery, kHeader), Qt::AlignLeft | Qt::AlignVCenter,
                   m_map.by_step ? QString::number(c) : tr("run"));
    paintLegend(p);
    const int rankEvery = std::max(1, (fm.height() + 1 + h - 1) / h);
    for (int r = 0; r < int(m_map.rows.size()); ++r) {
        const int y = kHeader + r * h;
        if (y + h < e->rect().top() || y > e->rect().bottom())
            continue;
        if (r % rankEvery == 0)
            p.drawText(QRect(0, y, kGutter - 6, std::max(h, fm.height())), Qt::AlignRight | Qt::AlignTop,
                       tr("rank %1").arg(m_map.rows[size_t(r)].rank));
        for (int64_t c = 0; c < int64_t(m_map.rows[size_t(r)].cells.size()); ++c)
            p.fillRect(cellRect(r, c), cellColor(r, c));
    }
}

// Right of the cells: the colour scale, from the most above to the most
// below, as tall as the room allows.
void HeatMapChart::paintLegend(QPainter& p)
{
    const QFontMetrics fm(font());
    const int x = kGutter + int(m_map.columns) * cellWidth() + 16;
    const int barH = std::min(100, height() - kHeader - 4);
    if (x + kLegend - 16 > width() || barH < 2 * fm.height())
        return;
    const QString pct = QString::number(100.0 * m_scale, 'g', 2) + " %";
    p.drawText(QRect(x, 0, kLegend, kHeader), Qt::AlignLeft | Qt::AlignVCenter, tr("of step, vs median"));
    for (int i = 0; i < barH; ++i) {
        const double t = 1.0 - 2.0 * i / (barH - 1);
        p.fillRect(QRect(x, kHeader + i, 12, 1), t >= 0 ? mix(neutral, above, t) : mix(neutral, below, -t));
    }
    p.drawText(QPoint(x + 16, kHeader + fm.ascent()), "+" + pct);
    if (barH >= 3 * fm.height())
        p.drawText(QPoint(x + 16, kHeader + (barH - fm.height()) / 2 + fm.ascent()), tr("median"));
    p.drawText(QPoint(x + 16, kHeader + barH - fm.descent()), "−" + pct);
}

void HeatMapChart::mousePressEvent(QMouseEvent* e)
{
    const auto [row, column] = cellAt(e->position().toPoint());
    if (row < 0 || e->button() != Qt::LeftButton)
        return QWidget::mousePressEvent(e);
    const HeatCell& c = m_map.rows[size_t(row)].cells[size_t(column)];
    emit cellClicked(m_map.rows[size_t(row)].rank, c.start_ns, c.end_ns);
}

bool HeatMapChart::event(QEvent* e)
{
    if (e->type() == QEvent::ToolTip) {
        auto* help = static_cast<QHelpEvent*>(e);
        const auto [row, column] = cellAt(help->pos());
        if (row >= 0)
            QToolTip::showText(help->globalPos(), describe(row, column), this, cellRect(row, column));
        else
            QToolTip::hideText();
        return true;
    }
    return QWidget::event(e);
}

HeatMapView::HeatMapView(QWidget* parent) : LazyPanel(parent, m_watcher)
{
    m_metrics = new QComboBox(this);
    for (HeatMetric m : kMetrics)
        m_metrics->addItem(metricLabel(m), int(m));
    m_metrics->setToolTip(tr("The figure each cell's colour shows against its step's median over the ranks"));
    m_chart = new HeatMapChart;
    m_scroll = new QScrollArea(this);
    m_scroll->setWidget(m_chart);
    m_scroll->setWidgetResizable(true);
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(4, 4, 4, 4);
    layout->addWidget(m_metrics);
    layout->addWidget(m_summary);
    layout->addWidget(m_scroll, 1);
    connect(m_metrics, &QComboBox::activated, this, [this](int i) { setMetric(HeatMetric(m_metrics->itemData(i).toInt())); });
    connect(m_chart, &HeatMapChart::cellClicked, this, &HeatMapView::frameRequested);
    connect(&m_watcher, &QFutureWatcher<Outcome>::finished, this, &HeatMapView::done);
    setRun({}, 0);
}

QString HeatMapView::idleText() const { return tr("<i>Open a run on the timeline: its ranks' heat map shows here.</i>"); }

QString HeatMapView::waitingText(int64_t run) const
{
    return tr("<i>Run %1's heat map is made when this panel is shown.</i>").arg(run);
}

void HeatMapView::setMetric(HeatMetric m)
{
    m_metrics->setCurrentIndex(m_metrics->findData(int(m)));
    m_chart->setMetric(m);
    updateSummary();
}

void HeatMapView::start()
{
    begin();
    m_summary->setText(tr("<i>Mapping run %1's ranks…</i>").arg(m_run));
    m_watcher.setFuture(QtConcurrent::run([path = m_project, run = m_run]() {
        Outcome o;
        o.run = run;
        auto store = TraceStore::open(path);
        if (!store) {
            o.error = QString::fromStdString(store.error().str());
            return o;
        }
        auto map = rankHeatMap(**store, run);
        if (!map)
            o.error = QString::fromStdString(map.error().str());
        else
            o.map = std::move(*map);
        return o;
    }));
}

void HeatMapView::done()
{
    Outcome o = m_watcher.result();
    if (o.run != m_run)
        return; // another run was asked for meanwhile
    if (!o.map) {
        m_summary->setText(tr("Run %1's heat map could not be made: %2").arg(o.run).arg(o.error.toHtmlEscaped()));
        emit errorOccurred(o.error);
        return;
    }
    m_chart->setMap(std::move(*o.map));
    updateSummary();
}

void HeatMapView::updateSummary()
{
    if (m_run > 0 && !m_watcher.isRunning() && !pending())
        m_summary->setText(summary());
}

QString HeatMapView::summary() const
{
    const HeatMap& map = m_chart->map();
    if (map.rows.empty())
        return tr("Run %1 has no device events to map.").arg(m_run);
    const HeatMetric metric = m_chart->metric();
    QString text = tr("Run %1: %n rank(s)", "", int(map.rows.size())).arg(m_run) +
                   (map.by_step ? tr(", %n step(s)", "", int(map.columns)) : tr(", no steps"));
    const auto top = heatOutliers(map, metric, 1);
    if (!top.empty()) {
        const HeatOutlier& o = top.front();
        text += ". " + tr("Furthest above its step's median %1: rank %2 in step %3, %4 against %5")
                           .arg(metricLabel(metric).toLower())
                           .arg(o.rank)
                           .arg(o.column)
                           .arg(seconds(o.value_ns), seconds(o.median_ns));
    } else {
        text += ". " + tr("No cell's %1 is over 1 % above its step's median").arg(metricLabel(metric).toLower());
        // What stands out below, then (the slow rank's short wait, say).
        int lowRow = -1;
        int64_t lowColumn = 0;
        for (int r = 0; r < int(map.rows.size()); ++r)
            for (int64_t c = 0; c < int64_t(map.rows[size_t(r)].cells.size()); ++c)
                if (lowRow < 0 || m_chart->deviation(r, c) < m_chart->deviation(lowRow, lowColumn)) {
                    lowRow = r;
                    lowColumn = c;
                }
        if (lowRow >= 0 && m_chart->deviation(lowRow, lowColumn) < -0.01) {
            const HeatCell& low = map.rows[size_t(lowRow)].cells[size_t(lowColumn)];
            text += "; " + tr("furthest below: rank %1 in step %2, %3 against %4")
                               .arg(map.rows[size_t(lowRow)].rank)
                               .arg(lowColumn)
                               .arg(seconds(heatValue(low, metric)), seconds(map.columnMedian(lowColumn, metric)));
        }
    }
    text += ".";
    for (const std::string& n : map.notes)
        text += " " + QString::fromStdString(n) + ".";
    return text;
}

} // namespace partita
