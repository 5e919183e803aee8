// TimelineView: memory over time, a row per rank and device.
#include "timelineview.h"

#include "partita/core/units.h"

#include <QCoreApplication>
#include <QPainter>
#include <QtConcurrent/QtConcurrentRun>

#include <algorithm>

namespace partita {

namespace {
constexpr int kCounterHeight = 44;
constexpr int kCounterPoints = 4000; // per series: enough for a full-screen width, peaks kept
} // namespace

void TimelineView::loadMemory()
{
    if (!m_store || !m_run)
        return;
    if (!m_memoryWatcher.property("connected").toBool()) {
        connect(&m_memoryWatcher, &QFutureWatcher<std::pair<int64_t, MemoryReport>>::finished, this, [this] {
            auto [run, report] = m_memoryWatcher.result();
            if (run == m_run && m_store)
                setMemory(std::move(report));
        });
        m_memoryWatcher.setProperty("connected", true);
    }
    m_memoryWatcher.setFuture(QtConcurrent::run([path = m_store->path(), run = m_run]() {
        std::pair<int64_t, MemoryReport> out{run, {}};
        if (auto store = TraceStore::open(path))
            if (auto r = readMemory(**store, run, kCounterPoints))
                out.second = std::move(*r);
        return out; // a run without records, or one that cannot be read, draws no memory rows
    }));
}

void TimelineView::waitForMemory()
{
    if (m_memoryWatcher.isRunning())
        m_memoryWatcher.waitForFinished();
    QCoreApplication::sendPostedEvents(&m_memoryWatcher);
}

void TimelineView::setMemory(MemoryReport report)
{
    m_memory = std::move(report);
    layoutRows();
    viewport()->update();
}

void TimelineView::addCounterRows(int32_t rank, int& y)
{
    if (m_collapsed[rank])
        return;
    for (size_t i = 0; i < m_memory.series.size(); ++i) {
        const MemorySeries& s = m_memory.series[i];
        if (s.rank != rank)
            continue;
        Row r;
        r.rank = rank;
        r.counter = int(i);
        r.track.id = -1 - int64_t(i);
        r.track.rank = rank;
        r.track.name = "memory " + s.device;
        r.top = y;
        r.height = kCounterHeight;
        y += r.height;
        m_rows.push_back(r);
    }
}

void TimelineView::paintCounters(QPainter& p, int scroll, int w, int h)
{
    m_countersPainted = 0;
    if (m_memory.series.empty())
        return;
    const QColor fill(46, 134, 193), line(192, 57, 43), predicted(120, 120, 120);
    for (const Row& r : m_rows) {
        if (r.counter < 0)
            continue;
        const int y = kRuler + r.top - scroll;
        if (y + r.height < kRuler || y > h)
            continue;
        const MemorySeries& s = m_memory.series[size_t(r.counter)];
        double top = double(std::max(s.peak_reserved, s.peak_allocated));
        const bool withPrediction = m_memory.predicted_peak_bytes && s.device_type != 0;
        if (withPrediction)
            top = std::max(top, *m_memory.predicted_peak_bytes);
        if (top <= 0 || s.points.empty())
            continue;
        const double y0 = y + r.height - 3, scale = (r.height - 8) / top;
        const int64_t off = offsetOf(s.rank);
        auto yOf = [&](double bytes) { return y0 - bytes * scale; };
        p.save();
        p.setClipRect(QRect(kGutter, std::max(y, kRuler), w - kGutter, r.height));
        // Allocated: a filled step graph; reserved: a step line over it.
        QPolygonF area, reserved;
        area << QPointF(kGutter + m_axis.x(s.points.front().t_ns - off), y0);
        for (size_t i = 0; i < s.points.size(); ++i) {
            const double x = kGutter + m_axis.x(s.points[i].t_ns - off);
            const double xn = i + 1 < s.points.size() ? kGutter + m_axis.x(s.points[i + 1].t_ns - off) : double(w);
            area << QPointF(x, yOf(double(s.points[i].allocated))) << QPointF(xn, yOf(double(s.points[i].allocated)));
            reserved << QPointF(x, yOf(double(s.points[i].reserved))) << QPointF(xn, yOf(double(s.points[i].reserved)));
        }
        area << QPointF(w, y0);
        p.setPen(Qt::NoPen);
        p.setBrush(QColor(fill.red(), fill.green(), fill.blue(), 110));
        p.drawPolygon(area);
        p.setBrush(Qt::NoBrush);
        p.setPen(QPen(line, 1));
        p.drawPolyline(reserved);
        QString label = tr("peak %1 allocated, %2 reserved")
                            .arg(QString::fromStdString(formatBytes(double(s.peak_allocated))),
                                 QString::fromStdString(formatBytes(double(s.peak_reserved))));
        if (withPrediction) {
            p.setPen(QPen(predicted, 1, Qt::DashLine));
            p.drawLine(QPointF(kGutter, yOf(*m_memory.predicted_peak_bytes)), QPointF(w, yOf(*m_memory.predicted_peak_bytes)));
            label += tr(", predicted %1").arg(QString::fromStdString(formatBytes(*m_memory.predicted_peak_bytes)));
        }
        p.setPen(palette().color(QPalette::Text));
        p.drawText(QRectF(kGutter + 6, y + 1, w - kGutter - 12, 14), Qt::AlignLeft | Qt::AlignVCenter, label);
        p.restore();
        ++m_countersPainted;
    }
}

} // namespace partita
