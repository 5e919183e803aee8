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

// `metaIn` and `loadIn`: statements prepared by the caller from the two above
// (the viewport keeps them), or null to prepare here.
// Blocks with a first start in [from, to) whose latest end is at or after
// `endFrom`: a viewport reaches back by the track's longest event for those
// that cross into it, and skips the blocks that end before it undecoded.
template <class F>
Result<bool> readEvents(sqlite3* db, const std::string& path, int64_t track, int64_t from, int64_t to, int64_t endFrom,
                        bool withArgs, F&& f, Stmt* metaIn = nullptr, Stmt* loadIn = nullptr)
{
    // Events starting at `to` or later are never wanted: blocks stop decoding there.
    const int64_t stopAt = to;
    auto fail = [&](const std::string& what) -> Result<bool> {
        return Error{path, "track " + std::to_string(track), what};
    };
    std::optional<Stmt> ownMeta, ownLoad;
    if (!metaIn)
        metaIn = &ownMeta.emplace(db, kBlocksOfTrack);
    Stmt& meta = *metaIn;
    meta.reset();
    meta.bind(1, track).bind(2, from).bind(3, to).bind(4, endFrom);
    std::vector<std::pair<int64_t, int64_t>> blocks; // (row id, start)
    int rc;
    while ((rc = meta.step()) == SQLITE_ROW)
        blocks.emplace_back(meta.int64(0), meta.int64(1));
    if (rc != SQLITE_DONE)
        return fail(sqlite3_errmsg(db));
    meta.reset();
    if (!loadIn || withArgs)
        loadIn = &ownLoad.emplace(db, withArgs ? "SELECT events, args FROM event_blocks WHERE id = ?" : kBlockEventsOnly);
    Stmt& load = *loadIn;
    std::vector<bool> has;
    std::string raw;
    auto decode = [&](int64_t rowId, BlockCursor& c) -> bool {
        load.reset();
        load.bind(1, rowId);
        if (load.step() != SQLITE_ROW) {
            load.reset();
            return false;
        }
        has.clear();
        if (!decodeEvents(load.blob(0), c.events, withArgs ? &has : nullptr, stopAt)) {
            load.reset();
            return false;
        }
        if (c.events.empty()) {
            load.reset();
            return true; // every event of the block starts past the window
        }
        if (withArgs) {
            const std::string_view packed = load.blob(1);
            raw.clear();
            if (!packed.empty() && !unpackArgs(packed, raw)) {
                load.reset();
                return false;
            }
            Reader r(raw);
            for (size_t i = 0; i < c.events.size(); ++i)
                c.args.push_back(has[i] ? std::string(r.bytes(size_t(r.varint()))) : std::string());
            if (!r.ok()) {
                load.reset();
                return false;
            }
        }
        load.reset();
        return true;
    };
    auto later = [](const BlockCursor* a, const BlockCursor* b) {
        const auto& x = a->events[a->at];
        const auto& y = b->events[b->at];
        return x.start > y.start || (x.start == y.start && x.id > y.id);
    };
    std::vector<std::unique_ptr<BlockCursor>> owned;
    std::vector<BlockCursor*> heap;
    size_t next = 0;
    for (;;) {
        // Open every block that starts before the earliest pending event.
        while (next < blocks.size() && (heap.empty() || blocks[next].second <= heap.front()->events[heap.front()->at].start)) {
            auto c = std::make_unique<BlockCursor>();
            if (!decode(blocks[next].first, *c))
                return fail("a corrupt event block");
            ++next;
            if (c->events.empty())
                continue;
            heap.push_back(c.get());
            std::push_heap(heap.begin(), heap.end(), later);
            owned.push_back(std::move(c));
        }
        if (heap.empty())
            break;
        std::pop_heap(heap.begin(), heap.end(), later);
        BlockCursor* c = heap.back();
        f(c->events[c->at], withArgs ? std::string_view(c->args[c->at]) : std::string_view());
        if (++c->at < c->events.size()) {
            std::push_heap(heap.begin(), heap.end(), later);
        } else {
            heap.pop_back();
            for (auto& o : owned)
                if (o.get() == c) {
                    o.reset(); // done: free it
                    break;
                }
            owned.erase(std::remove(owned.begin(), owned.end(), nullptr), owned.end());
        }
    }
    return true;
}


} // namespace partita::detail
