#include "pathwindows.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <limits>
#include <optional>
#include <set>

namespace partita::detail {

namespace {

std::optional<SyncRecord::Kind> syncKind(const std::string& name)
{
    if (name == "Context Sync")
        return SyncRecord::Context;
    if (name == "Stream Sync")
        return SyncRecord::Stream;
    if (name == "Event Sync")
        return SyncRecord::Event;
    if (name == "Stream Wait Event")
        return SyncRecord::StreamWait;
    return std::nullopt;
}

int64_t intArg(const nlohmann::json& a, const char* key)
{
    auto it = a.find(key);
    return it != a.end() && it->is_number_integer() ? it->get<int64_t>() : -1;
}

bool byStart(const Ev& a, const Ev& b) { return a.start < b.start || (a.start == b.start && a.id < b.id); }

} // namespace

Result<const std::string*> NameCache::get(int64_t id)
{
    auto it = m_names.find(id);
    if (it == m_names.end()) {
        auto n = m_store.name(id);
        if (!n)
            return n.error();
        it = m_names.emplace(id, std::move(*n)).first;
    }
    return &it->second;
}

Result<std::map<int, std::vector<Window>>> findWindows(const TraceStore& store, const RunScan& scan, NameCache& names,
                                                      const std::string& annotation)
{
    std::map<int, std::vector<Window>> out;
    std::unordered_map<int64_t, bool> matches; // name id -> contains the annotation
    for (const auto& [rank, positions] : scan.ranks) {
        std::vector<Ev> found;
        for (int32_t p : positions) {
            if (!scan.host_events[size_t(p)])
                continue;
            auto s = store.stream(scan.tracks[size_t(p)].id);
            if (!s)
                return s.error();
            RawEvent r;
            while ((*s)->next(r)) {
                if (annotation.empty()) {
                    if (r.kind == TraceKind::Step)
                        found.push_back({r.start_ns, r.start_ns + r.dur_ns, -1, r.id, r.name_id});
                    continue;
                }
                if (isDeviceKind(r.kind) && scan.tracks[size_t(p)].device)
                    continue;
                auto [it, added] = matches.try_emplace(r.name_id, false);
                if (added) {
                    auto n = names.get(r.name_id);
                    if (!n)
                        return n.error();
                    it->second = (*n)->find(annotation) != std::string::npos;
                }
                if (it->second)
                    found.push_back({r.start_ns, r.start_ns + r.dur_ns, -1, r.id, r.name_id});
            }
            if ((*s)->error())
                return *(*s)->error();
        }
        std::sort(found.begin(), found.end(), byStart);
        auto& ws = out[rank];
        for (const Ev& e : found) {
            auto n = names.get(e.name);
            if (!n)
                return n.error();
            ws.push_back({e.start, e.end, **n});
        }
    }
    return out;
}

struct WindowReader::Cursor
{
    int32_t position = 0;
    bool device = false; // a device track: its events are taken by their launches
    std::unique_ptr<EventStream> events;
    std::optional<Ev> ahead;
    bool done = false;

    // The next event without taking it.
    const Ev* peek(const RunScan& scan)
    {
        if (!ahead && !done) {
            RawEvent r;
            if (events->next(r)) {
                const StoredTrack& t = scan.tracks[size_t(position)];
                Ev v{r.start_ns, r.start_ns + r.dur_ns, r.correlation, r.id, r.name_id, r.layer, position, r.kind,
                     t.device && isDeviceKind(r.kind)};
                ahead = v;
            } else {
                done = true;
            }
        }
        return ahead ? &*ahead : nullptr;
    }
};

WindowReader::WindowReader(const TraceStore& store, const RunScan& scan, int64_t run, NameCache& names)
    : m_store(store), m_scan(scan), m_run(run), m_names(names)
{
}

WindowReader::~WindowReader() = default;

Result<bool> WindowReader::open(int rank)
{
    if (m_cursors.count(rank))
        return true;
    auto& cs = m_cursors[rank];
    auto it = m_scan.ranks.find(rank);
    if (it == m_scan.ranks.end())
        return true;
    for (int32_t p : it->second) {
        auto s = m_store.stream(m_scan.tracks[size_t(p)].id);
        if (!s)
            return s.error();
        auto c = std::make_unique<Cursor>();
        c->position = p;
        c->device = m_scan.tracks[size_t(p)].device;
        c->events = std::move(*s);
        cs.push_back(std::move(c));
    }
    return true;
}

// The arguments of the track's sync records, read once (they are few: one
// per synchronizing call).
Result<bool> WindowReader::loadSyncArgs(int32_t position)
{
    if (m_syncArgs.count(position))
        return true;
    auto& map = m_syncArgs[position];
    std::optional<Error> failed;
    auto r = m_store.forEachEvent(
        m_run,
        [&](const StoredEvent& e) {
            auto kind = syncKind(e.record.name);
            if (!kind || failed)
                return;
            SyncRecord s;
            s.kind = *kind;
            s.corr = e.record.correlation;
            auto a = nlohmann::json::parse(e.args.empty() ? std::string("{}") : e.args, nullptr, false);
            if (a.is_object()) {
                if (s.corr < 0)
                    s.corr = intArg(a, "correlation");
                s.stream = intArg(a, "stream");
                s.wait_on_stream = intArg(a, "wait_on_stream");
                s.record_corr = intArg(a, "wait_on_cuda_event_record_corr_id");
            }
            map.emplace(e.id, s);
        },
        m_scan.tracks[size_t(position)].id, true);
    if (!r)
        return r.error();
    return true;
}

Result<RankWindow> WindowReader::read(int rank, const Window& w)
{
    if (auto r = open(rank); !r)
        return r.error();
    RankWindow out;
    out.rank = rank;
    out.window = w;
    std::set<int64_t> corrs; // launches in the window
    auto& cursors = m_cursors[rank];
    for (auto& c : cursors) {
        if (c->device)
            continue;
        while (const Ev* e = c->peek(m_scan)) {
            if (e->start >= w.end && e->start > w.start)
                break; // windows are half open: an event at a step's end is the next step's
            const Ev v = *e;
            c->ahead.reset();
            if (v.start < w.start || v.device)
                continue;
            if (v.kind == TraceKind::Runtime) {
                out.runtime.push_back(v);
                if (v.corr >= 0)
                    corrs.insert(v.corr);
            }
            if ((v.kind == TraceKind::Runtime || v.kind == TraceKind::CpuOp) && v.end > v.start)
                out.host.push_back(v);
            if (v.kind == TraceKind::Annotation) {
                auto n = m_names.get(v.name);
                if (!n)
                    return n.error();
                if (syncKind(**n)) {
                    if (auto l = loadSyncArgs(c->position); !l)
                        return l.error();
                    auto& args = m_syncArgs[c->position];
                    if (auto it = args.find(v.id); it != args.end()) {
                        SyncRecord s = it->second;
                        s.start = v.start;
                        s.end = v.end;
                        out.syncs.push_back(s);
                    }
                }
            }
        }
        if (c->events->error())
            return *c->events->error();
    }
    const int64_t lastCorr = corrs.empty() ? std::numeric_limits<int64_t>::min() : *corrs.rbegin();
    // Without launches in the window (a CPU backend's run, a prediction, a
    // trace of device events only) its device events are those starting in it.
    const bool byLaunch = !corrs.empty();
    for (auto& c : cursors) {
        if (!c->device)
            continue;
        while (const Ev* e = c->peek(m_scan)) {
            const Ev v = *e;
            const bool launched = byLaunch && v.corr >= 0 && corrs.count(v.corr);
            const bool later = v.start >= w.end && v.start > w.start;
            if (!launched && later && (!byLaunch || v.corr < 0 || v.corr > lastCorr))
                break; // a later window's
            c->ahead.reset();
            if (!v.device)
                continue;
            if (launched) {
                out.device.push_back(v);
                out.launches = true;
            } else if ((!byLaunch || v.corr < 0) && v.start >= w.start && !later) {
                out.device.push_back(v);
            }
        }
        if (c->events->error())
            return *c->events->error();
    }
    std::sort(out.runtime.begin(), out.runtime.end(), byStart);
    return out;
}

} // namespace partita::detail
