// TimelineView: the critical path drawn over the tracks.
#include "timelineview.h"

#include <QPainter>

#include <unordered_map>

namespace partita {

void TimelineView::setCriticalPath(std::vector<PathMark> marks)
{
    m_path = std::move(marks);
    viewport()->update();
}

void TimelineView::paintPath(QPainter& p, int scroll, int w, int h)
{
    m_pathPainted = 0;
    if (m_path.empty())
        return;
    std::unordered_map<int64_t, const Row*> tracks;
    std::unordered_map<int32_t, const Row*> headers;
    std::unordered_map<int, const Row*> groups; // a folded group's ranks' marks go on its header
    for (const Row& r : m_rows) {
        if (r.groupHeader)
            groups[r.group] = &r;
        else
            (r.header ? headers[r.rank] : tracks[r.track.id]) = &r;
    }
    const int64_t ns0 = m_axis.start(), ns1 = m_axis.end();
    const QColor c(220, 30, 80);
    p.save();
    p.setClipRect(QRect(kGutter, kRuler, w - kGutter, h - kRuler));
    p.setRenderHint(QPainter::Antialiasing, false);
    const Row* prevRow = nullptr;
    QPointF prevEnd;
    for (const PathMark& m : m_path) {
        auto t = tracks.find(m.track_id);
        const Row* row = t != tracks.end() ? t->second : nullptr;
        if (!row) {
            auto hd = headers.find(m.rank);
            row = hd != headers.end() ? hd->second : nullptr;
        }
        if (!row) {
            auto gh = groups.find(groupOf(m.rank));
            row = gh != groups.end() ? gh->second : nullptr;
        }
        if (!row) {
            prevRow = nullptr;
            continue;
        }
        const double y = kRuler + row->top - scroll, mid = y + row->height / 2.0;
        const int64_t t0 = m.t0 - offsetOf(m.rank), t1 = m.t1 - offsetOf(m.rank); // given on the rank's clock
        const double x0 = kGutter + m_axis.x(t0), x1 = kGutter + m_axis.x(t1);
        const bool visible = t1 >= ns0 && t0 <= ns1 && y + row->height >= kRuler && y <= h;
        if (prevRow && prevRow != row && (visible || (prevEnd.x() >= kGutter && prevEnd.x() <= w))) {
            p.setPen(QPen(c, 1.5, Qt::DashLine));
            p.drawLine(prevEnd, QPointF(x0, mid));
        }
        if (visible && m.t1 > m.t0) {
            // A bar along the row's foot, the stretch outlined above it: the
            // events on the path stay readable.
            const double width = std::max(2.0, x1 - x0);
            p.fillRect(QRectF(x0, y + row->height - 5, width, 4), c);
            p.setPen(QPen(QColor(c.red(), c.green(), c.blue(), 150), 1));
            p.drawRect(QRectF(x0, y + 1, width, row->height - 3));
            ++m_pathPainted;
        }
        prevRow = row;
        prevEnd = QPointF(x1, mid);
    }
    p.restore();
}

} // namespace partita
