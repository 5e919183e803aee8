// The read side of the project file: viewports, events streamed or
// pushed, aggregates and steps (the store and its runs: tracestore.cpp).
#include "partita/profiler/tracestore.h"

#include "storeblocks.h"
#include "sqlitestmt.h"

#include <sqlite3.h>

#include <algorithm>
#include <unordered_map>

namespace partita {

using detail::Stmt;
using namespace detail; // storeblocks.h

namespace {

// The coarsest level stored (in the mask `levels`) whose buckets are no
// wider than `fold`, or -1 when there is none.
int viewportLevel(int64_t levels, double fold)
{
    int level = -1;
    for (int k = 0; k < kLevels; ++k)
        if ((levels >> k & 1) && double(levelWidth(k)) <= fold)
            level = k;
    return level;
}

// Appends an item to the viewport's items.
void pushFolded(std::vector<DrawItem>& out, DrawItem it, double fold)
{
    // Merge with the previous folded run when both are too small to show apart.
    if (!out.empty()) {
        DrawItem& last = out.back();
        const bool lastSmall = last.count > 1 || double(last.end_ns - last.start_ns) < fold;
        const bool itSmall = it.count > 1 || double(it.end_ns - it.start_ns) < fold;
        if (lastSmall && itSmall && last.depth == it.depth && double(it.start_ns - last.end_ns) < fold &&
            double(std::max(last.end_ns, it.end_ns) - last.start_ns) < fold * 8) {
            last.end_ns = std::max(last.end_ns, it.end_ns);
            last.count += it.count;
            return;
        }
    }
    out.push_back(std::move(it));
}

} // namespace

// The viewport from the level-of-detail table's buckets at `level`.
Result<bool> TraceStore::viewportFromLod(int64_t track, int64_t t0, int64_t t1, double fold, int64_t maxDur, int level,
                                         std::vector<DrawItem>& out) const
{
    const int64_t w = levelWidth(level);
    const int64_t b0 = (t0 - maxDur) / w - 1, b1 = t1 / w + 1;
    // Blocks do not overlap: start from the last one that begins at or before b0.
    Stmt& q = cached(m_lodQuery, "SELECT data FROM lod_blocks WHERE track_id = ?1 AND level = ?2 AND first_bucket >= "
                                 "coalesce((SELECT max(first_bucket) FROM lod_blocks WHERE track_id = ?1 AND "
                                 "level = ?2 AND first_bucket <= ?3), ?3) AND first_bucket <= ?4 ORDER BY first_bucket");
    q.bind(1, track).bind(2, int64_t(level)).bind(3, b0).bind(4, b1);
    std::vector<detail::LodBucket> buckets;
    int rc;
    while ((rc = q.step()) == SQLITE_ROW) {
        buckets.clear();
        if (!detail::decodeBuckets(q.blob(0), buckets, b1)) {
            q.reset();
            return Error{m_path, "track " + std::to_string(track), "a corrupt level-of-detail block"};
        }
        for (const detail::LodBucket& x : buckets) {
            if (x.end <= t0 || x.start >= t1 || x.bucket < b0 || x.bucket > b1)
                continue;
            DrawItem it;
            it.start_ns = x.start;
            it.end_ns = x.end;
            it.count = x.count;
            it.event_id = x.longestId;
            it.name_id = x.nameId;
            it.kind = TraceKind(x.kind);
            it.layer = x.layer;
            if (it.count > 1 && double(x.longestDur) >= fold)
                it.count = 1; // a wide event inside the bucket is drawn as itself
            pushFolded(out, std::move(it), fold);
        }
    }
    if (rc != SQLITE_DONE)
        return sqlError("viewport");
    return true;
}

// The viewport from the events themselves, each at the depth of the events
// that enclose it.
Result<bool> TraceStore::viewportFromEvents(int64_t track, int64_t t0, int64_t t1, double fold, int64_t maxDur,
                                            std::vector<DrawItem>& out) const
{
    std::vector<DrawItem> rows;
    rows.reserve(256);
    auto r = readEvents(m_db, m_path, track, t0 - maxDur, t1, t0, false, [&](const detail::BlockEvent& e, std::string_view) {
        if (e.start >= t1 || e.start + e.dur < t0)
            return; // blocks reach past the window
        DrawItem it;
        it.event_id = e.id;
        it.start_ns = e.start;
        it.end_ns = e.start + e.dur;
        it.kind = TraceKind(e.kind);
        it.name_id = e.nameId;
        it.layer = e.layer;
        rows.push_back(it);
    }, &cached(m_rawQuery, kBlocksOfTrack), &cached(m_blockLoad, kBlockEventsOnly));
    if (!r)
        return r.error();
    // Events that start together: the enclosing (longer) one first.
    auto enclosingFirst = [](const DrawItem& a, const DrawItem& b) {
        return a.start_ns < b.start_ns || (a.start_ns == b.start_ns && a.end_ns > b.end_ns);
    };
    if (!std::is_sorted(rows.begin(), rows.end(), enclosingFirst))
        std::stable_sort(rows.begin(), rows.end(), enclosingFirst);
    std::vector<int64_t> stack; // end times of the open enclosing events
    for (DrawItem& it : rows) {
        while (!stack.empty() && stack.back() <= it.start_ns)
            stack.pop_back();
        it.depth = int(stack.size());
        stack.push_back(it.end_ns);
        if (it.end_ns <= t0)
            continue;
        pushFolded(out, std::move(it), fold);
    }
    return true;
}

Result<std::vector<DrawItem>> TraceStore::viewport(int64_t track, int64_t t0, int64_t t1, double nsPerPixel,
                                                   double minPixels) const
{
    std::vector<DrawItem> out;
    if (t1 <= t0)
        return out;
    const double fold = std::max(1.0, nsPerPixel * minPixels);
    int64_t maxDur = 0, levels = 0;
    {
        Stmt& q = cached(m_trackInfo, "SELECT max_dur_ns, lod_levels FROM tracks WHERE id = ?");
        q.bind(1, track);
        if (q.step() != SQLITE_ROW) {
            q.reset();
            return Error{m_path, "track " + std::to_string(track), "no such track"};
        }
        maxDur = q.int64(0);
        levels = q.int64(1);
        q.reset(); // ends the read
    }
    const int level = viewportLevel(levels, fold);
    auto filled = level >= 0 ? viewportFromLod(track, t0, t1, fold, maxDur, level, out)
                             : viewportFromEvents(track, t0, t1, fold, maxDur, out);
    if (!filled)
        return filled.error();
    return out;
}

EventStream::EventStream(std::unique_ptr<detail::TrackReader> r) : m_reader(std::move(r)) {}
EventStream::~EventStream() = default;

bool EventStream::next(RawEvent& out)
{
    const detail::BlockEvent* e = m_reader->next();
    if (!e)
        return false;
    out.id = e->id;
    out.start_ns = e->start;
    out.dur_ns = e->dur;
    out.name_id = e->nameId;
    out.correlation = e->corr;
    out.layer = e->layer;
    out.kind = TraceKind(e->kind);
    return true;
}

const std::optional<Error>& EventStream::error() const { return m_reader->error(); }

Result<std::unique_ptr<EventStream>> TraceStore::stream(int64_t track) const
{
    auto reader = std::make_unique<detail::TrackReader>(m_db, m_path, track, false);
    if (!reader->open(INT64_MIN, INT64_MAX, INT64_MIN))
        return *reader->error();
    return std::unique_ptr<EventStream>(new EventStream(std::move(reader)));
}

Result<bool> TraceStore::forEachEvent(int64_t run, const std::function<void(const StoredEvent&)>& f,
                                      std::optional<int64_t> track, bool withArgs) const
{
    auto ts = tracks(run);
    if (!ts)
        return ts.error();
    for (const StoredTrack& t : *ts) {
        if (track && *track != t.id)
            continue;
        StoredEvent e;
        e.track_id = t.id;
        e.record.rank = t.rank;
        e.record.track = t.track;
        std::optional<Error> failed;
        auto r = readEvents(m_db, m_path, t.id, INT64_MIN, INT64_MAX, INT64_MIN, withArgs,
                            [&](const detail::BlockEvent& b, std::string_view args) {
                                if (failed)
                                    return;
                                e.id = b.id;
                                e.record.start_ns = b.start;
                                e.record.dur_ns = b.dur;
                                e.record.kind = TraceKind(b.kind);
                                auto nm = name(b.nameId);
                                if (!nm) {
                                    failed = nm.error();
                                    return;
                                }
                                e.record.name = *nm;
                                e.record.layer = b.layer;
                                e.record.op = b.op;
                                e.record.bytes = b.bytes;
                                e.record.flops = b.flops;
                                e.record.correlation = b.corr;
                                e.args.assign(args);
                                f(e);
                            });
        if (!r)
            return r.error();
        if (failed)
            return *failed;
    }
    return true;
}

Result<std::vector<Aggregate>> TraceStore::aggregate(int64_t run, GroupBy by, std::optional<TraceKind> kind) const
{
    auto ts = tracks(run);
    if (!ts)
        return ts.error();
    std::unordered_map<int64_t, Aggregate> groups;
    for (const StoredTrack& t : *ts) {
        auto r = readEvents(m_db, m_path, t.id, INT64_MIN, INT64_MAX, INT64_MIN, false, [&](const detail::BlockEvent& e, std::string_view) {
            if (kind && TraceKind(e.kind) != *kind)
                return;
            const int64_t key = by == GroupBy::Name ? e.nameId : by == GroupBy::Kind ? int64_t(e.kind) : int64_t(e.layer);
            Aggregate& a = groups[key];
            ++a.count;
            a.total_ns += e.dur;
            a.bytes += e.bytes;
            a.flops += e.flops;
        });
        if (!r)
            return r.error();
    }
    std::vector<Aggregate> out;
    for (auto& [key, a] : groups) {
        if (by == GroupBy::Name) {
            auto nm = name(key);
            if (!nm)
                return nm.error();
            a.key = *nm;
        } else if (by == GroupBy::Kind) {
            a.key = std::string(traceKindName(TraceKind(key)));
        } else {
            a.key = std::to_string(key);
        }
        out.push_back(std::move(a));
    }
    std::sort(out.begin(), out.end(), [](const Aggregate& a, const Aggregate& b) {
        return a.total_ns > b.total_ns || (a.total_ns == b.total_ns && a.key < b.key);
    });
    return out;
}

Result<std::vector<StoredEvent>> TraceStore::steps(int64_t run) const
{
    std::vector<StoredEvent> out;
    auto r = forEachEvent(run, [&](const StoredEvent& e) {
        if (e.record.kind == TraceKind::Step)
            out.push_back(e);
    });
    if (!r)
        return r.error();
    std::stable_sort(out.begin(), out.end(), [](const StoredEvent& a, const StoredEvent& b) {
        return a.record.rank < b.record.rank || (a.record.rank == b.record.rank && a.record.start_ns < b.record.start_ns);
    });
    return out;
}

} // namespace partita
