// TimelineView: the ranks' clocks, raw or aligned.
#include "timelineview.h"

namespace partita {

void TimelineView::setClockOffsets(std::map<int32_t, int64_t> offsets)
{
    m_offsets = std::move(offsets);
    refreshGroups(); // the group headers' spans are on the aligned clocks
    fitRange();
    viewport()->update();
    emit viewChanged();
}

void TimelineView::setAlignClocks(bool on)
{
    if (on == m_alignClocks)
        return;
    m_alignClocks = on;
    refreshGroups();
    fitRange();
    viewport()->update();
    emit viewChanged();
}

int64_t TimelineView::offsetOf(int32_t rank) const
{
    if (!m_alignClocks)
        return 0;
    auto it = m_offsets.find(rank);
    return it == m_offsets.end() ? 0 : it->second;
}

// The range the axis can show: every track's extent, each on its rank's
// clock as drawn. The window shown stays where it was (same start and
// scale) unless it falls outside.
void TimelineView::fitRange()
{
    int64_t b = INT64_MAX, e = INT64_MIN;
    for (const StoredTrack& t : m_tracks)
        if (t.events > 0) {
            b = std::min(b, t.start_ns - offsetOf(t.rank));
            e = std::max(e, t.end_ns - offsetOf(t.rank));
        }
    if (b > e)
        b = e = 0;
    m_axis.setRange(b, e);
}

} // namespace partita
