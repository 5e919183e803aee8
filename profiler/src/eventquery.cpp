#include "partita/profiler/eventquery.h"

#include <algorithm>
#include <map>
#include <unordered_map>

namespace partita {

namespace {

// Each rank's step windows, by place, from its non-device tracks.
Result<std::map<int, std::vector<std::pair<int64_t, int64_t>>>> stepWindows(const TraceStore& store,
                                                                           const std::vector<StoredTrack>& tracks,
                                                                           const std::optional<int>& rank)
{
    std::map<int, std::vector<std::pair<int64_t, int64_t>>> out;
    for (const StoredTrack& t : tracks) {
        if (t.device || (rank && t.rank != *rank))
            continue;
        auto s = store.stream(t.id);
        if (!s)
            return s.error();
        RawEvent e;
        while ((*s)->next(e))
            if (e.kind == TraceKind::Step)
                out[t.rank].push_back({e.start_ns, e.start_ns + e.dur_ns});
        if ((*s)->error())
            return *(*s)->error();
    }
    for (auto& [r, w] : out)
        std::sort(w.begin(), w.end());
    return out;
}

// The window of the asked step on each queried rank that has it; an error
// naming the most steps a rank has when none has it.
Result<std::map<int, std::pair<int64_t, int64_t>>> askedStepWindows(const TraceStore& store,
                                                                     const std::vector<StoredTrack>& tracks,
                                                                     const EventQuery& q)
{
    std::map<int, std::pair<int64_t, int64_t>> window;
    auto steps = stepWindows(store, tracks, q.rank);
    if (!steps)
        return steps.error();
    int64_t most = 0;
    for (const auto& [r, w] : *steps) {
        most = std::max<int64_t>(most, int64_t(w.size()));
        if (*q.step >= 0 && *q.step < int64_t(w.size()))
            window[r] = w[size_t(*q.step)];
    }
    if (window.empty())
        return Error{store.path(), "--step", "no " + (q.rank ? "step " + std::to_string(*q.step) + " on rank " + std::to_string(*q.rank)
                                                              : "rank has step " + std::to_string(*q.step)) +
                                                 " (counting from 0; the most a rank has is " + std::to_string(most) + ")"};
    return window;
}

// Whether an event matches a query (inside the step window `w`, when given),
// each name read once and what it matched remembered.
struct EventMatcher
{
    const TraceStore& store;
    const EventQuery& q;
    std::unordered_map<int64_t, bool> nameMatches;             // name id -> matches q.name
    std::unordered_map<int64_t, KernelClass> classes;          // name id x 16 + kind -> class

    Result<bool> matches(const RawEvent& e, const std::optional<std::pair<int64_t, int64_t>>& w)
    {
        if (w && (e.start_ns < w->first || e.start_ns >= w->second))
            return false;
        if (q.layer && e.layer != *q.layer)
            return false;
        if ((q.device_only || q.cls) && !isDeviceKind(e.kind))
            return false;
        if (!q.name.empty()) {
            auto [it, added] = nameMatches.try_emplace(e.name_id, false);
            if (added) {
                auto n = store.name(e.name_id);
                if (!n)
                    return n.error();
                it->second = *n == q.name;
            }
            if (!it->second)
                return false;
        }
        if (q.cls) {
            const int64_t key = e.name_id * 16 + int64_t(e.kind);
            auto [it, added] = classes.try_emplace(key, KernelClass::Other);
            if (added) {
                auto n = store.name(e.name_id);
                if (!n)
                    return n.error();
                it->second = classifyKernel(*n, e.kind);
            }
            if ((it->second == *q.cls) == q.other_classes)
                return false;
        }
        return true;
    }
};

// The order events are kept and listed in: by start, then id.
bool earlier(const FoundEvent& a, const FoundEvent& b)
{
    return a.start_ns < b.start_ns || (a.start_ns == b.start_ns && a.event_id < b.event_id);
}

// Keeps a match if it is among the `limit` earliest (a heap, the latest on top).
void keepEarliest(std::vector<FoundEvent>& kept, FoundEvent f, size_t limit)
{
    if (kept.size() < limit) {
        kept.push_back(std::move(f));
        std::push_heap(kept.begin(), kept.end(), earlier);
    } else if (limit > 0 && earlier(f, kept.front())) {
        std::pop_heap(kept.begin(), kept.end(), earlier);
        kept.back() = std::move(f);
        std::push_heap(kept.begin(), kept.end(), earlier);
    }
}

// Counts and times one track's matches (inside `w`, when given), keeping the earliest.
Result<bool> scanTrack(const TraceStore& store, const StoredTrack& t, const std::optional<std::pair<int64_t, int64_t>>& w,
                       EventMatcher& matcher, EventMatches& out)
{
    auto s = store.stream(t.id);
    if (!s)
        return s.error();
    RawEvent e;
    while ((*s)->next(e)) {
        auto m = matcher.matches(e, w);
        if (!m)
            return m.error();
        if (!*m)
            continue;
        ++out.total;
        out.total_ns += e.dur_ns;
        FoundEvent f{t.rank, t.id, t.name, e.id, e.start_ns, e.start_ns + e.dur_ns, {}, e.name_id, e.kind, e.layer};
        keepEarliest(out.events, std::move(f), matcher.q.limit);
    }
    if ((*s)->error())
        return *(*s)->error();
    return true;
}

// Puts the kept events in order and names them.
Result<bool> sortAndName(const TraceStore& store, std::vector<FoundEvent>& events)
{
    std::sort(events.begin(), events.end(), earlier);
    for (FoundEvent& f : events) { // named once kept: a name read per match was most of a long query
        auto n = store.name(f.name_id);
        if (!n)
            return n.error();
        f.name = *n;
    }
    return true;
}

} // namespace

Result<EventMatches> findEvents(const TraceStore& store, int64_t run, const EventQuery& q)
{
    if (auto info = store.run(run); !info)
        return info.error();
    auto tracks = store.tracks(run);
    if (!tracks)
        return tracks.error();
    EventMatches out;
    std::map<int, std::pair<int64_t, int64_t>> window; // per rank, when a step is asked for
    if (q.step) {
        auto asked = askedStepWindows(store, *tracks, q);
        if (!asked)
            return asked.error();
        window = std::move(*asked);
        out.step_windows = window;
    }
    EventMatcher matcher{store, q, {}, {}};
    for (const StoredTrack& t : *tracks) {
        if ((q.rank && t.rank != *q.rank) || ((q.device_only || q.cls) && !t.device))
            continue;
        std::optional<std::pair<int64_t, int64_t>> w;
        if (q.step) {
            auto it = window.find(t.rank);
            if (it == window.end())
                continue;
            w = it->second;
        }
        if (auto scanned = scanTrack(store, t, w, matcher, out); !scanned)
            return scanned.error();
    }
    if (auto named = sortAndName(store, out.events); !named)
        return named.error();
    return out;
}

} // namespace partita
