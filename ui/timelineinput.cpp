// The timeline's input: resizing, the wheel, keys and the mouse, and the ranges
// they measure or frame (painting and the view's state: timelineview.cpp).
#include "timelineview.h"
#include "partita/core/units.h"
#include <QKeyEvent>
#include <QPaintEngine>
#include <QPainter>
#include <QPen>
#include <QScrollBar>
#include <QStaticText>
#include <QTimer>
#include <QToolTip>
#include <QWheelEvent>
#include <QtConcurrent/QtConcurrentRun>
#include <algorithm>
#include <emmintrin.h>
#include <atomic>
#include <filesystem>
#include <optional>
#include <map>
#include <cmath>

namespace partita {

void TimelineView::resizeEvent(QResizeEvent* e)
{
    QAbstractScrollArea::resizeEvent(e);
    const bool whole = m_axis.showsWholeRange();
    const int64_t oldStart = m_axis.start();
    const double npp = m_axis.nsPerPixel();
    m_axis.setWidth(std::max(1, viewport()->width() - kGutter));
    if (whole)
        m_axis.fit(); // still the whole run
    else // same scale, more or less of it
        m_axis.show(oldStart, oldStart + int64_t(npp * m_axis.width()));
    updateScrollBars();
}

void TimelineView::wheelEvent(QWheelEvent* e)
{
    const double x = e->position().x() - kGutter;
    const QPoint d = e->angleDelta();
    if (e->modifiers() & Qt::ControlModifier) {
        m_axis.zoomAt(std::max(0.0, x), std::pow(1.0015, d.y()));
    } else if ((e->modifiers() & Qt::ShiftModifier) || d.x() != 0) {
        const int delta = d.x() != 0 ? d.x() : d.y();
        m_axis.pan(-delta * 0.5);
    } else {
        QAbstractScrollArea::wheelEvent(e);
        return;
    }
    e->accept();
    viewport()->update();
    emit viewChanged();
}

void TimelineView::keyPressEvent(QKeyEvent* e)
{
    const QPointF mouse = viewport()->mapFromGlobal(QCursor::pos());
    const double x = mouse.x() > kGutter && mouse.x() < viewport()->width() ? mouse.x() - kGutter : m_axis.width() / 2;
    switch (e->key()) {
    case Qt::Key_W: m_axis.zoomAt(x, 1.5); break;
    case Qt::Key_S: m_axis.zoomAt(x, 1 / 1.5); break;
    case Qt::Key_A: m_axis.pan(-m_axis.width() * 0.1); break;
    case Qt::Key_D: m_axis.pan(m_axis.width() * 0.1); break;
    case Qt::Key_F: m_axis.fit(); break;
    case Qt::Key_Escape:
        m_measure = {0, 0};
        m_highlight = -1;
        m_selected = 0;
        break;
    default: QAbstractScrollArea::keyPressEvent(e); return;
    }
    viewport()->update();
    emit viewChanged();
}

void TimelineView::mousePressEvent(QMouseEvent* e)
{
    if (e->button() == Qt::LeftButton && e->position().y() > kRuler) {
        // A rank header toggles its tracks.
        const int y = int(e->position().y()) - kRuler + verticalScrollBar()->value();
        for (const Row& r : m_rows) {
            if (y < r.top || y >= r.top + r.height)
                continue;
            if (r.groupHeader && r.group >= 0) { // a group's header folds its ranks
                setGroupCollapsed(r.group, !groupCollapsed(r.group));
                return;
            }
            if (r.header) {
                setRankCollapsed(r.rank, !(m_collapsed.count(r.rank) && m_collapsed[r.rank]));
                return;
            }
        }
        if (e->position().x() > kGutter && (e->modifiers() & Qt::ShiftModifier)) {
            m_measuring = true;
            const int64_t t = m_axis.t(e->position().x() - kGutter);
            setMeasuredRange(t, t);
            return;
        }
        if (e->position().x() > kGutter) {
            m_dragging = true;
            m_dragFrom = e->position();
            m_pressAt = e->position();
            m_clickCandidate = true;
            viewport()->setCursor(Qt::ClosedHandCursor);
        }
    }
}

void TimelineView::mouseMoveEvent(QMouseEvent* e)
{
    if (m_measuring) {
        setMeasuredRange(m_measure.first, m_axis.t(std::max(0.0, e->position().x() - kGutter)));
        return;
    }
    if (m_dragging) {
        const QPointF d = e->position() - m_dragFrom;
        m_dragFrom = e->position();
        m_axis.pan(-d.x());
        verticalScrollBar()->setValue(verticalScrollBar()->value() - int(d.y()));
        viewport()->update();
        emit viewChanged();
    }
}

void TimelineView::mouseReleaseEvent(QMouseEvent* e)
{
    // A press and release in place (not a drag) selects the event under it
    // and highlights its layer on every rank; on empty space it clears both.
    if (m_clickCandidate && (e->position() - m_pressAt).manhattanLength() < 4) {
        if (const Painted* p = itemAt(e->position()); p && p->item.count == 1) {
            m_selected = p->item.event_id;
            m_highlight = p->item.layer;
            emit eventSelected(describe(*p));
        } else {
            m_selected = 0;
            m_highlight = -1;
            emit eventSelected({});
        }
        viewport()->update();
    }
    m_clickCandidate = false;
    m_measuring = false;
    m_dragging = false;
    viewport()->unsetCursor();
}

void TimelineView::mouseDoubleClickEvent(QMouseEvent* e)
{
    if (const Painted* p = itemAt(e->position())) // zoom to the event
        m_axis.show(p->item.start_ns, std::max(p->item.end_ns, p->item.start_ns + 1));
    viewport()->update();
    emit viewChanged();
}

bool TimelineView::viewportEvent(QEvent* e)
{
    if (e->type() == QEvent::ToolTip) {
        auto* he = static_cast<QHelpEvent*>(e);
        if (const Painted* p = itemAt(he->pos()))
            QToolTip::showText(he->globalPos(), describe(*p), viewport(), p->rect.toAlignedRect());
        else
            QToolTip::hideText();
        return true;
    }
    return QAbstractScrollArea::viewportEvent(e);
}

void TimelineView::scrollContentsBy(int, int) { viewport()->update(); }

void TimelineView::setMeasuredRange(int64_t t0, int64_t t1)
{
    m_measure = t0 <= t1 ? std::make_pair(t0, t1) : std::make_pair(t1, t0);
    viewport()->update();
}

void TimelineView::showRange(int32_t rank, int64_t t0, int64_t t1)
{
    t0 -= offsetOf(rank); // given on the rank's own clock
    t1 -= offsetOf(rank);
    if (t1 < t0)
        std::swap(t0, t1);
    const int64_t margin = std::max<int64_t>(1000, (t1 - t0) / 10);
    m_axis.show(t0 - margin, t1 + margin);
    if (const int g = groupOf(rank); g >= 0)
        m_groupCollapsed[g] = false; // laid out by setRankCollapsed
    setRankCollapsed(rank, false);
    for (const Row& r : m_rows)
        if (r.header && r.rank == rank) {
            verticalScrollBar()->setValue(r.top);
            break;
        }
    setMeasuredRange(t0, t1);
    emit viewChanged();
}

void TimelineView::selectEvent(int32_t rank, int64_t eventId, int64_t t0, int64_t t1, int32_t layer)
{
    showRange(rank, t0, t1);
    m_selected = eventId;
    m_highlight = layer;
    viewport()->update();
}

QString TimelineView::describeRange() const
{
    const auto [a, b] = m_measure;
    if (b <= a)
        return {};
    // Busy time by kind over the drawn tracks, clipped to the range (folded
    // runs count their whole span: at this zoom they are what is known).
    std::map<TraceKind, int64_t> busy;
    int64_t total = 0;
    for (const Painted& p : m_painted) {
        const int64_t s = std::max(a, p.item.start_ns), e = std::min(b, p.item.end_ns);
        if (e > s && p.item.kind != TraceKind::Step) {
            busy[p.item.kind] += e - s;
            total += e - s;
        }
    }
    QString text = tr("%1 selected").arg(QString::fromStdString(formatSeconds(double(b - a) * 1e-9)));
    std::vector<std::pair<int64_t, TraceKind>> order;
    for (auto [k, ns] : busy)
        order.push_back({ns, k});
    std::sort(order.rbegin(), order.rend());
    for (size_t i = 0; i < order.size() && i < 4; ++i) {
        const std::string_view name = traceKindName(order[i].second);
        text += "\n" + tr("%1: %2 (%3 % of busy time)")
                           .arg(QString::fromUtf8(name.data(), int(name.size())))
                           .arg(QString::fromStdString(formatSeconds(double(order[i].first) * 1e-9)))
                           .arg(100.0 * double(order[i].first) / double(std::max<int64_t>(1, total)), 0, 'f', 1);
    }
    return text;
}

} // namespace partita
