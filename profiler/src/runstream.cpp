#include "runstream.h"

#include <algorithm>
#include <set>

namespace partita::detail {

namespace {

int64_t ceilUs(int64_t ns) { return ns >= 0 ? (ns + 999) / 1000 * 1000 : -((-ns) / 1000 * 1000); }
int64_t floorUs(int64_t ns) { return ns >= 0 ? ns / 1000 * 1000 : -((-ns + 999) / 1000 * 1000); }

Ev toEv(const RawEvent& r, const StoredTrack& t, int32_t position, bool hta)
{
    Ev v;
    v.start = r.start_ns;
    v.end = r.start_ns + r.dur_ns;
    if (hta) {
        v.start = ceilUs(v.start);
        v.end = std::max(v.start, floorUs(v.end));
    }
    v.corr = r.correlation;
    v.id = r.id;
    v.name = r.name_id;
    v.layer = r.layer;
    v.track = position;
    v.kind = r.kind;
    v.device = t.device && isDeviceKind(r.kind);
    return v;
}

// Each event of one track, read as the analyses read it.
template <class F>
Result<bool> eachOfTrack(const TraceStore& store, const RunScan& scan, int32_t position, F&& f)
{
    const StoredTrack& t = scan.tracks[size_t(position)];
    auto s = store.stream(t.id);
    if (!s)
        return s.error();
    RawEvent r;
    while ((*s)->next(r))
        f(toEv(r, t, position, scan.hta_rounding));
    if ((*s)->error())
        return *(*s)->error();
    return true;
}

} // namespace

Result<RunScan> scanRun(const TraceStore& store, int64_t run, bool htaRounding)
{
    auto tracks = store.tracks(run);
    if (!tracks)
        return tracks.error();
    RunScan scan;
    scan.tracks = std::move(*tracks);
    scan.hta_rounding = htaRounding;
    scan.host_events.assign(scan.tracks.size(), false);
    std::set<int64_t> stepNames;
    for (int32_t i = 0; i < int32_t(scan.tracks.size()); ++i) {
        const StoredTrack& t = scan.tracks[size_t(i)];
        if (t.events == 0)
            continue;
        scan.ranks[t.rank].push_back(i);
        bool host = !t.device;
        auto s = store.stream(t.id);
        if (!s)
            return s.error();
        RawEvent e;
        while ((*s)->next(e)) {
            host = host || !isDeviceKind(e.kind);
            if (e.kind == TraceKind::Step)
                stepNames.insert(e.name_id);
        }
        if ((*s)->error())
            return *(*s)->error();
        scan.host_events[size_t(i)] = host;
    }
    scan.distinct_step_names = int(stepNames.size());
    return scan;
}

const Launch* RankHost::find(int64_t corr) const
{
    auto it = std::lower_bound(launches.begin(), launches.end(), corr, [](const Launch& l, int64_t c) { return l.corr < c; });
    return it != launches.end() && it->corr == corr ? &*it : nullptr;
}

Result<RankHost> readHost(const TraceStore& store, const RunScan& scan, int rank)
{
    RankHost h;
    auto tracks = scan.ranks.find(rank);
    if (tracks == scan.ranks.end())
        return h;
    for (int32_t i : tracks->second) {
        if (!scan.host_events[size_t(i)])
            continue;
        auto r = eachOfTrack(store, scan, i, [&](const Ev& e) {
            if (e.device)
                return;
            if (e.kind == TraceKind::Step)
                h.steps.push_back(e);
            if (e.corr >= 0)
                h.launches.push_back({e.corr, e.start, e.start});
        });
        if (!r)
            return r.error();
    }
    auto byStart = [](const Ev& a, const Ev& b) { return a.start < b.start || (a.start == b.start && a.id < b.id); };
    std::sort(h.steps.begin(), h.steps.end(), byStart);
    // By correlation; the first read of each kept, its earliest start noted.
    std::stable_sort(h.launches.begin(), h.launches.end(), [](const Launch& a, const Launch& b) { return a.corr < b.corr; });
    size_t n = 0;
    for (size_t i = 0; i < h.launches.size(); ++i) {
        if (n > 0 && h.launches[n - 1].corr == h.launches[i].corr)
            h.launches[n - 1].min_start = std::min(h.launches[n - 1].min_start, h.launches[i].min_start);
        else
            h.launches[n++] = h.launches[i];
    }
    h.launches.resize(n);
    h.launches.shrink_to_fit();
    return h;
}

std::string glooCollective(std::string_view v, bool& issued)
{
    issued = v.rfind("c10d::", 0) == 0;
    if (issued)
        v.remove_prefix(6);
    else if (v.rfind("gloo:", 0) == 0)
        v.remove_prefix(5);
    else
        return {};
    std::string out;
    for (char c : v)
        if (c != '_')
            out += c;
    if (out.find("send") != std::string::npos || out.find("recv") != std::string::npos)
        return {};
    return out;
}

Result<bool> forEachRankEvent(const TraceStore& store, const RunScan& scan, int rank, const std::function<void(const Ev&)>& f)
{
    auto tracks = scan.ranks.find(rank);
    if (tracks == scan.ranks.end())
        return true;
    for (int32_t i : tracks->second)
        if (auto r = eachOfTrack(store, scan, i, f); !r)
            return r.error();
    return true;
}

// ---------------------------------------------------------------- merge

struct DeviceMerge::Stream
{
    std::unique_ptr<EventStream> events;
    const StoredTrack* track = nullptr;
    int32_t position = 0;
    // Events that start together (after HTA's rounding), in id order; the
    // one read past them waits in `ahead`. Unrounded, a group is one event.
    std::vector<Ev> group;
    size_t at = 0;
    std::optional<Ev> ahead;
    bool done = false;
};

DeviceMerge::~DeviceMerge() = default;

Result<std::unique_ptr<DeviceMerge>> DeviceMerge::open(const TraceStore& store, const RunScan& scan, int rank)
{
    std::unique_ptr<DeviceMerge> m(new DeviceMerge());
    m->m_hta = scan.hta_rounding;
    auto tracks = scan.ranks.find(rank);
    if (tracks == scan.ranks.end())
        return m;
    for (int32_t i : tracks->second) {
        const StoredTrack& t = scan.tracks[size_t(i)];
        if (!t.device)
            continue;
        auto s = store.stream(t.id);
        if (!s)
            return s.error();
        auto st = std::make_unique<Stream>();
        st->events = std::move(*s);
        st->track = &t;
        st->position = i;
        m->m_streams.push_back(std::move(st));
    }
    for (auto& s : m->m_streams)
        if (m->refill(*s))
            m->m_heap.push_back({s->group.front().start, s.get()});
    if (m->m_error)
        return *m->m_error;
    std::make_heap(m->m_heap.begin(), m->m_heap.end(), later);
    return m;
}

// The stream's next device event (its other events skipped); false at its end.
bool DeviceMerge::readDevice(Stream& s, Ev& out)
{
    if (s.ahead) {
        out = *s.ahead;
        s.ahead.reset();
        return true;
    }
    RawEvent r;
    while (!s.done && s.events->next(r)) {
        out = toEv(r, *s.track, s.position, m_hta);
        if (out.device)
            return true;
    }
    s.done = true;
    if (s.events->error() && !m_error)
        m_error = s.events->error();
    return false;
}

// The stream's next group of device events that start together; false at its end.
bool DeviceMerge::refill(Stream& s)
{
    s.at = 0;
    s.group.resize(1);
    if (!readDevice(s, s.group.front()))
        return false;
    if (!m_hta)
        return true; // unrounded, the store's order is already (start, id)
    Ev e;
    while (readDevice(s, e)) {
        if (e.start != s.group.front().start) {
            s.ahead = e;
            break;
        }
        s.group.push_back(e);
    }
    std::sort(s.group.begin(), s.group.end(), [](const Ev& a, const Ev& b) { return a.id < b.id; });
    return true;
}

bool DeviceMerge::next(Ev& out)
{
    if (m_heap.empty() || m_error)
        return false;
    std::pop_heap(m_heap.begin(), m_heap.end(), later);
    Stream* s = m_heap.back().stream;
    out = s->group[s->at];
    if (++s->at < s->group.size() || refill(*s)) {
        m_heap.back().start = s->group[s->at].start;
        std::push_heap(m_heap.begin(), m_heap.end(), later);
    } else {
        m_heap.pop_back();
    }
    return !m_error;
}

} // namespace partita::detail
