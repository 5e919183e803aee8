// CompareView: every figure leads to the events behind it on the timelines:
// a layer's or an op's row, a chart's bar, a summary line's link.
#include "compareview.h"
#include "timelineview.h"

#include "partita/profiler/tracestore.h"

#include <QCoreApplication>
#include <QtConcurrent/QtConcurrentRun>

namespace partita {

// The question asked of one side: in the rank and step the diff compared.
CompareView::SideQuery CompareView::scoped(EventQuery q, int side, bool window) const
{
    q.rank = side == 0 ? m_diff->rank_a : m_diff->rank_b;
    if (const int64_t it = side == 0 ? m_diff->iteration_a : m_diff->iteration_b; it >= 0)
        q.step = it;
    q.limit = window ? 0 : 1;
    return {q, window};
}

void CompareView::frameLayer(int32_t layer)
{
    if (!m_diff)
        return;
    EventQuery q;
    q.layer = layer;
    q.device_only = true; // the layer table's times are device time
    frameEvents({scoped(q, 0), scoped(q, 1)});
}

void CompareView::frameOp(const std::string& name)
{
    if (!m_diff)
        return;
    EventQuery q;
    q.name = name;
    frameEvents({scoped(q, 0), scoped(q, 1)});
}

void CompareView::frameClass(KernelClass k)
{
    if (!m_diff)
        return;
    EventQuery q;
    q.cls = k;
    frameEvents({scoped(q, 0), scoped(q, 1)});
}

void CompareView::frameStep()
{
    if (!m_diff || m_diff->iteration_a < 0 || m_diff->iteration_b < 0)
        return; // runs without steps: the timelines already show them whole
    frameEvents({scoped({}, 0, true), scoped({}, 1, true)});
}

// The rank chart's bars hold the whole run's breakdown; a segment leads to
// the rank's first kernel of its kind in the compared step (its idle time
// is the gaps between that step's kernels: the step is framed).
void CompareView::frameRankShare(int side, int rank, RankShare share)
{
    if (!m_diff || side < 0 || side > 1)
        return;
    EventQuery q;
    if (share != RankShare::Idle) {
        q.cls = KernelClass::Computation;
        q.other_classes = share == RankShare::NonCompute;
    }
    SideQuery s = scoped(q, side, share == RankShare::Idle);
    s.q.rank = rank;
    if (share == RankShare::Idle && !s.q.step)
        return; // no steps: the whole run is its window, and is shown
    FrameRequest r;
    (side == 0 ? r.a : r.b) = s;
    frameEvents(r);
}

void CompareView::frameEvents(FrameRequest request)
{
    if (!m_store || !m_a || !m_b || !m_diff)
        return;
    if (m_frameWatcher.isRunning()) {
        m_pendingFrame = std::move(request); // asked again before the last answer: the latest is framed next
        return;
    }
    if (!m_frameWatcher.property("connected").toBool()) {
        connect(&m_frameWatcher, &QFutureWatcher<Found>::finished, this, &CompareView::showFound);
        m_frameWatcher.setProperty("connected", true);
    }
    m_pendingFrame.reset(); // this question is newer than any left waiting
    m_frameWatcher.setFuture(QtConcurrent::run([path = m_store->path(), a = m_a, b = m_b, request]() {
        Found f;
        f.a = a;
        f.b = b;
        for (const auto& s : {request.a, request.b})
            if (s && s->q.layer)
                f.layer = *s->q.layer;
        auto store = TraceStore::open(path);
        if (!store)
            return f;
        auto ask = [&](int64_t run, const std::optional<SideQuery>& s, std::optional<FoundEvent>& event,
                       std::optional<std::pair<int64_t, int64_t>>& window, int& rank) {
            if (!s)
                return;
            rank = s->q.rank.value_or(0);
            auto m = findEvents(**store, run, s->q);
            if (!m)
                return; // a run that cannot be read, or lacks the step, frames nothing on its side
            if (s->window) {
                if (auto w = m->step_windows.find(rank); w != m->step_windows.end())
                    window = w->second;
            } else if (!m->events.empty()) {
                event = m->events.front();
            }
        };
        ask(a, request.a, f.inA, f.windowA, f.rankA);
        ask(b, request.b, f.inB, f.windowB, f.rankB);
        return f;
    }));
}

void CompareView::waitForFrame()
{
    while (m_frameWatcher.isRunning() || m_pendingFrame) {
        m_frameWatcher.waitForFinished();
        QCoreApplication::sendPostedEvents(&m_frameWatcher);
    }
    QCoreApplication::sendPostedEvents(&m_frameWatcher);
}

void CompareView::showFound()
{
    if (!m_frameWatcher.isFinished())
        return; // a signal of a search replaced since: the running one's answer comes
    const Found f = m_frameWatcher.result();
    if (std::optional<FrameRequest> next = std::exchange(m_pendingFrame, std::nullopt)) {
        frameEvents(std::move(*next)); // a newer question supersedes this answer
        return;
    }
    if (f.a != m_a || f.b != m_b)
        return; // other runs were chosen meanwhile
    m_syncing = true; // each side framed on its own event, not synced to the other's
    auto show = [&](TimelineView* t, const std::optional<FoundEvent>& e, const std::optional<std::pair<int64_t, int64_t>>& w, int rank) {
        if (e)
            t->selectEvent(e->rank, e->event_id, e->start_ns, e->end_ns, f.layer);
        else if (w)
            t->showRange(rank, w->first, w->second);
    };
    show(m_timelineA, f.inA, f.windowA, f.rankA);
    show(m_timelineB, f.inB, f.windowB, f.rankB);
    m_syncing = false;
    emit framed(f.inA || f.windowA, f.inB || f.windowB);
}

bool CompareView::frameMark(int side, const std::optional<Mark> (&marks)[2])
{
    if (side < 0 || side > 1 || !marks[side])
        return false;
    const Mark& m = *marks[side];
    (side == 0 ? m_timelineA : m_timelineB)->showRange(m.rank, m.t0, m.t1);
    emit framed(side == 0, side == 1);
    return true;
}

bool CompareView::frameMemoryPeak(int side) { return frameMark(side, m_peak); }

bool CompareView::frameStraggler(int side) { return frameMark(side, m_straggler); }

bool CompareView::openLink(const QString& link)
{
    const QString kind = link.section(':', 0, 0), arg = link.section(':', 1);
    const int side = arg == "a" ? 0 : arg == "b" ? 1 : -1;
    if (kind == "step" && m_diff) {
        frameStep();
        return true;
    }
    if (kind == "class" && m_diff) {
        for (KernelClass k : {KernelClass::Computation, KernelClass::Communication, KernelClass::Memory, KernelClass::Other})
            if (QString::fromStdString(std::string(kernelClassName(k))) == arg) {
                frameClass(k);
                return true;
            }
        return false;
    }
    if (kind == "memory")
        return frameMemoryPeak(side);
    if (kind == "straggler")
        return frameStraggler(side);
    return false;
}

// The most loaded accelerator's peak (else the CPU's), a little of the run
// either side of it, as the summary names it.
const MemorySeries* CompareView::topSeries(const MemoryReport& m)
{
    const MemorySeries* top = nullptr;
    for (const MemorySeries& s : m.series)
        if (!top || (s.device_type != 0) > (top->device_type != 0) ||
            ((s.device_type != 0) == (top->device_type != 0) && s.peak_allocated > top->peak_allocated))
            top = &s;
    return top;
}

const RankBlame* CompareView::topBlame(const std::optional<StragglerReport>& r)
{
    const RankBlame* top = nullptr;
    if (r)
        for (const RankBlame& b : r->blame)
            if (!top || b.wait_caused_ns > top->wait_caused_ns)
                top = &b;
    return top && top->wait_caused_ns > 0 ? top : nullptr;
}

std::optional<CompareView::Mark> CompareView::peakMark(const MemoryReport& m, const RunInfo& run)
{
    const MemorySeries* top = topSeries(m);
    if (!top)
        return std::nullopt;
    const int64_t half = std::max<int64_t>(1000, (run.end_ns - run.start_ns) / 200);
    return Mark{top->rank, top->peak_allocated_at_ns - half, top->peak_allocated_at_ns + half};
}

// The rank that made the others wait most: its costliest late arrival, from
// the end of the collective before it to the end of the one it was late at.
std::optional<CompareView::Mark> CompareView::stragglerMark(const std::optional<StragglerReport>& r)
{
    const RankBlame* top = topBlame(r);
    if (!top)
        return std::nullopt;
    const StepStraggler* worst = nullptr;
    for (const StepStraggler& s : r->steps)
        if (s.late_rank == top->rank && (!worst || s.worst_wait_ns > worst->worst_wait_ns))
            worst = &s;
    if (!worst)
        return std::nullopt;
    return Mark{top->rank, worst->window_start_ns, worst->collective_end_ns};
}

} // namespace partita
