#pragma once
// How a project file stores a track's events (tracestore.cpp and the run
// writer, runwriter.cpp): blocks of events with their level-of-detail
// buckets, their arguments packed, and the reader that merges a track's
// blocks in time order.

#include "partita/core/result.h"

#include "blockcodec.h"
#include "sqlitestmt.h"

#include <sqlite3.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace partita::detail {

// Level-of-detail buckets: level k groups a track's events by
// floor(start / width_k) with width_k = 2^(10 + k) ns (1 us, 2 us, 4 us, ...
// about 19 hours at k = 36), after Perfetto's slice mipmap. Doubling widths
// let a viewport read buckets between half and one fold width wide. A level
// is kept only where it folds at least kMinFold events per bucket on
// average; finer zooms read the events themselves, as cheap there.
constexpr int kLevels = 36;
constexpr int64_t kMinFold = 2;
constexpr size_t kBlockEvents = 1024;  // events per stored block (a zoomed-in window decodes one or two)
constexpr const char* kReaderCache = "PRAGMA cache_size=-16384"; // 16 MiB for readers (timeline viewport queries)
constexpr size_t kBlockBuckets = 512;  // level-of-detail buckets per stored block (a viewport reads a few)
inline int64_t levelWidth(int k) { return int64_t(1) << (10 + k); }


// A block's arguments packed and back (tracestore.cpp).
std::string packArgs(const std::string& raw);
bool unpackArgs(std::string_view packed, std::string& raw);

// One track's events from the blocks that start in [from, to), in (start,
// id) order, with their arguments when asked. Blocks that overlap in time
// (events that arrived out of order) are merged with a heap of decoded
// blocks, so memory holds only the blocks open at the current time.
struct BlockCursor
{
    std::vector<BlockEvent> events;
    std::vector<std::string> args;
    size_t at = 0;
};

constexpr const char* kBlocksOfTrack = "SELECT id, start_ns FROM event_blocks WHERE track_id = ? AND start_ns >= ? "
                                       "AND start_ns < ? AND end_ns >= ? ORDER BY start_ns, first_id";
constexpr const char* kBlockEventsOnly = "SELECT events, NULL FROM event_blocks WHERE id = ?";

// One track's events pulled one at a time (several readers may be open at
// once: an analysis merges a rank's streams by time with them).
// `metaIn` and `loadIn`: statements prepared by the caller from the two
// above (the viewport keeps them), or null to prepare here.
// Blocks with a first start in [from, to) whose latest end is at or after
// `endFrom`: a viewport reaches back by the track's longest event for those
// that cross into it, and skips the blocks that end before it undecoded.
class TrackReader
{
public:
    TrackReader(sqlite3* db, std::string path, int64_t track, bool withArgs, Stmt* loadIn = nullptr)
        : m_db(db), m_path(std::move(path)), m_track(track), m_withArgs(withArgs), m_load(loadIn)
    {
    }
    TrackReader(const TrackReader&) = delete;
    TrackReader& operator=(const TrackReader&) = delete;

    // Lists the blocks to read; false (and error()) when the query fails.
    bool open(int64_t from, int64_t to, int64_t endFrom, Stmt* metaIn = nullptr)
    {
        m_stopAt = to; // events starting at `to` or later are never wanted: blocks stop decoding there
        std::optional<Stmt> ownMeta;
        if (!metaIn)
            metaIn = &ownMeta.emplace(m_db, kBlocksOfTrack);
        Stmt& meta = *metaIn;
        meta.reset();
        meta.bind(1, m_track).bind(2, from).bind(3, to).bind(4, endFrom);
        int rc;
        while ((rc = meta.step()) == SQLITE_ROW)
            m_blocks.emplace_back(meta.int64(0), meta.int64(1));
        meta.reset();
        if (rc != SQLITE_DONE)
            return fail(sqlite3_errmsg(m_db));
        if (!m_load || m_withArgs)
            m_load = &m_ownLoad.emplace(m_db, m_withArgs ? "SELECT events, args FROM event_blocks WHERE id = ?" : kBlockEventsOnly);
        return true;
    }

    // The next event in (start, id) order, valid until the next call; null
    // at the end or on a failure (error() then says which).
    const BlockEvent* next(std::string_view* args = nullptr)
    {
        if (m_current && m_heap.size() == 1 && m_current->at + 1 < m_current->events.size() &&
            (m_next == m_blocks.size() || m_blocks[m_next].second > m_current->events[m_current->at + 1].start)) {
            // The one open block goes on and no other starts before its next event: no heap to keep.
            ++m_current->at;
            return handOut(args);
        }
        if (m_current)
            advance();
        // Open every block that starts before the earliest pending event.
        while (m_next < m_blocks.size() &&
               (m_heap.empty() || m_blocks[m_next].second <= m_heap.front()->events[m_heap.front()->at].start)) {
            auto c = std::make_unique<BlockCursor>();
            if (!decode(m_blocks[m_next].first, *c)) {
                fail("a corrupt event block");
                return nullptr;
            }
            ++m_next;
            if (c->events.empty())
                continue;
            m_heap.push_back(c.get());
            std::push_heap(m_heap.begin(), m_heap.end(), later);
            m_owned.push_back(std::move(c));
        }
        if (m_heap.empty())
            return nullptr;
        std::pop_heap(m_heap.begin(), m_heap.end(), later);
        m_current = m_heap.back();
        return handOut(args);
    }

    const std::optional<Error>& error() const { return m_error; }

private:
    const BlockEvent* handOut(std::string_view* args)
    {
        if (args)
            *args = m_withArgs ? std::string_view(m_current->args[m_current->at]) : std::string_view();
        return &m_current->events[m_current->at];
    }

    static bool later(const BlockCursor* a, const BlockCursor* b)
    {
        const auto& x = a->events[a->at];
        const auto& y = b->events[b->at];
        return x.start > y.start || (x.start == y.start && x.id > y.id);
    }

    bool fail(const std::string& what)
    {
        m_error = Error{m_path, "track " + std::to_string(m_track), what};
        m_heap.clear();
        m_next = m_blocks.size();
        return false;
    }

    // Steps past the event handed out last: its block back on the heap, or freed when done.
    void advance()
    {
        BlockCursor* c = m_current;
        m_current = nullptr;
        if (++c->at < c->events.size()) {
            std::push_heap(m_heap.begin(), m_heap.end(), later);
            return;
        }
        m_heap.pop_back();
        for (auto& o : m_owned)
            if (o.get() == c) {
                o.reset();
                break;
            }
        m_owned.erase(std::remove(m_owned.begin(), m_owned.end(), nullptr), m_owned.end());
    }

    bool decode(int64_t rowId, BlockCursor& c)
    {
        Stmt& load = *m_load;
        load.reset();
        load.bind(1, rowId);
        bool ok = load.step() == SQLITE_ROW;
        m_has.clear();
        ok = ok && decodeEvents(load.blob(0), c.events, m_withArgs ? &m_has : nullptr, m_stopAt);
        if (ok && m_withArgs && !c.events.empty()) {
            const std::string_view packed = load.blob(1);
            m_raw.clear();
            ok = packed.empty() || unpackArgs(packed, m_raw);
            Reader r(m_raw);
            for (size_t i = 0; ok && i < c.events.size(); ++i)
                c.args.push_back(m_has[i] ? std::string(r.bytes(size_t(r.varint()))) : std::string());
            ok = ok && r.ok();
        }
        load.reset();
        return ok;
    }

    sqlite3* m_db;
    std::string m_path;
    int64_t m_track;
    bool m_withArgs;
    Stmt* m_load;
    std::optional<Stmt> m_ownLoad;
    int64_t m_stopAt = INT64_MAX;
    std::vector<std::pair<int64_t, int64_t>> m_blocks; // (row id, start)
    size_t m_next = 0;
    std::vector<std::unique_ptr<BlockCursor>> m_owned;
    std::vector<BlockCursor*> m_heap;
    BlockCursor* m_current = nullptr;
    std::optional<Error> m_error;
    std::vector<bool> m_has;
    std::string m_raw;
};

// The same, pushed: f(event, args) for each.
template <class F>
Result<bool> readEvents(sqlite3* db, const std::string& path, int64_t track, int64_t from, int64_t to, int64_t endFrom,
                        bool withArgs, F&& f, Stmt* metaIn = nullptr, Stmt* loadIn = nullptr)
{
    TrackReader reader(db, path, track, withArgs, loadIn);
    if (!reader.open(from, to, endFrom, metaIn))
        return *reader.error();
    std::string_view args;
    while (const BlockEvent* e = reader.next(&args))
        f(*e, args);
    if (reader.error())
        return *reader.error();
    return true;
}

} // namespace partita::detail
