// The run writer of a project file (tracestore.h's RunWriter): chunks of
// events ordered by track and start, stored as blocks with their
// level-of-detail buckets, checkpointed on a connection of its own. Split
// from tracestore.cpp.
#include "partita/profiler/tracestore.h"

#include "storeblocks.h"

#include <sqlite3.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <fcntl.h>
#include <unistd.h>

namespace partita {

using detail::Stmt;
using namespace detail; // storeblocks.h

// ---------------------------------------------------------------- writer

struct RunWriter::Statements
{
    Stmt insertBlock, internName, insertTrack, trackStats;
    Statements(sqlite3* db)
        : insertBlock(db, "INSERT INTO event_blocks(track_id, start_ns, last_ns, end_ns, first_id, count, events, args) "
                          "VALUES(?, ?, ?, ?, ?, ?, ?, ?)"),
          internName(db, "INSERT INTO strings(s) VALUES(?) ON CONFLICT(s) DO UPDATE SET s = excluded.s RETURNING id"),
          insertTrack(db, "INSERT INTO tracks(run_id, rank, track, name, device) VALUES(?, ?, ?, ?, ?) "
                          "ON CONFLICT(run_id, rank, track) DO UPDATE SET name = CASE WHEN excluded.name = '' "
                          "THEN name ELSE excluded.name END, device = max(device, excluded.device) RETURNING id"),
          trackStats(db, "UPDATE tracks SET events = ?, start_ns = ?, end_ns = ?, max_dur_ns = ? WHERE id = ?")
    {
    }
    bool ok() const { return insertBlock.ok() && internName.ok() && insertTrack.ok() && trackStats.ok(); }
};

// Checkpoints the WAL on a connection and thread of its own after each
// chunk commits, so that the file syncs and page copies of checkpointing
// overlap the import instead of following it: closing a project after
// importing a 35 MB Kineto trace spent 33-36 ms (15 % of the import) copying
// and syncing the whole WAL. PASSIVE checkpoints wait for no reader or
// writer; durability is as before (synchronous=NORMAL: the WAL is synced
// before pages are copied, the database after).
struct RunWriter::Checkpointer
{
    sqlite3* db = nullptr;
    std::thread thread;
    std::mutex mutex;
    std::condition_variable cv;
    bool pending = false, stop = false;

    explicit Checkpointer(const char* file)
    {
        if (sqlite3_open_v2(file, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr) != SQLITE_OK ||
            sqlite3_exec(db, "PRAGMA synchronous=NORMAL", nullptr, nullptr, nullptr) != SQLITE_OK) {
            sqlite3_close(db);
            db = nullptr;
            return;
        }
        try {
            thread = std::thread([this] { loop(); });
        } catch (const std::system_error&) { // no thread: the project's close checkpoints, as before
            sqlite3_close(db);
            db = nullptr;
        }
    }
    ~Checkpointer()
    {
        {
            std::lock_guard lock(mutex);
            stop = true;
        }
        cv.notify_all();
        if (thread.joinable())
            thread.join();
        sqlite3_close(db);
    }
    bool running() const { return db != nullptr; }
    void request()
    {
        {
            std::lock_guard lock(mutex);
            pending = true;
        }
        cv.notify_all();
    }
    void loop()
    {
        std::unique_lock lock(mutex);
        for (;;) {
            cv.wait(lock, [&] { return pending || stop; });
            if (stop)
                return;
            pending = false;
            lock.unlock();
            (void)sqlite3_wal_checkpoint_v2(db, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
            lock.lock();
        }
    }
};

RunWriter::RunWriter(TraceStore& s, int64_t run, int64_t commitEvery)
    : m_store(s), m_run(run), m_commitEvery(commitEvery), m_nextId(run << 36)
{
    auto st = std::make_unique<Statements>(s.m_db);
    if (st->ok())
        m_st = std::move(st);
    // Only a database in a file, in WAL mode, has a WAL to checkpoint.
    const char* file = sqlite3_db_filename(s.m_db, "main");
    Stmt mode(s.m_db, "PRAGMA journal_mode");
    if (file && *file && mode.step() == SQLITE_ROW && mode.text(0) == "wal") {
        auto c = std::make_unique<Checkpointer>(file);
        if (c->running())
            m_checkpointer = std::move(c);
    }
}

RunWriter::~RunWriter()
{
    // Unfinished: keep what was written, the run stays marked incomplete.
    if (!m_finished)
        (void)commitChunk();
    m_checkpointer.reset();
    (void)m_store.exec("PRAGMA wal_autocheckpoint=1000"); // SQLite's default again
    (void)m_store.exec(kReaderCache);
}

// The chunk's order: grouped by track (stably: ids rise within a
// track), each track then put in time order if it is not already.
// Traces mostly list a track's events in order, and sorting the whole
// chunk was 8 % of importing a Kineto trace (callgrind). Only indices
// move (4 bytes an event, not the 96 of a Pending).
void RunWriter::orderChunk()
{
    std::vector<uint32_t>& order = m_order;
    std::vector<std::pair<int64_t, size_t>> tracks; // track id -> events, then first slot
    auto slotOf = [&](int64_t track) {
        auto it = std::lower_bound(tracks.begin(), tracks.end(), std::make_pair(track, size_t(0)));
        if (it == tracks.end() || it->first != track)
            it = tracks.insert(it, {track, 0});
        return size_t(it - tracks.begin());
    };
    int64_t lastTrack = INT64_MIN;
    size_t lastSlot = 0;
    for (const Pending& p : m_pending) {
        if (p.track != lastTrack) {
            lastTrack = p.track;
            lastSlot = slotOf(p.track);
        }
        ++tracks[lastSlot].second;
    }
    size_t at = 0;
    for (auto& t : tracks)
        at += std::exchange(t.second, at);
    order.resize(m_pending.size());
    lastTrack = INT64_MIN;
    for (size_t i = 0; i < m_pending.size(); ++i) {
        if (m_pending[i].track != lastTrack) {
            lastTrack = m_pending[i].track;
            lastSlot = slotOf(lastTrack);
        }
        order[tracks[lastSlot].second++] = uint32_t(i);
    }
    // Ids rise with the position in m_pending, so (start, position) is (start, id).
    const auto byTime = [this](uint32_t x, uint32_t y) {
        return m_pending[x].start < m_pending[y].start || (m_pending[x].start == m_pending[y].start && x < y);
    };
    // A track is mostly a few runs already in order (a Kineto thread
    // lists its operators, then its runtime calls, each in time order):
    // runs are merged pairwise, O(n log runs); many runs are sorted.
    std::vector<size_t> runs;
    size_t from = 0;
    for (const auto& t : tracks) {
        const auto b = order.begin() + ptrdiff_t(from);
        const size_t n = t.second - from;
        from = t.second;
        runs.assign(1, 0);
        for (size_t k = 1; k < n && runs.size() <= n / 16 + 1; ++k)
            if (byTime(b[ptrdiff_t(k)], b[ptrdiff_t(k - 1)]))
                runs.push_back(k);
        if (runs.size() == 1)
            continue;
        if (runs.size() > n / 16 + 1) {
            std::sort(b, b + ptrdiff_t(n), byTime);
            continue;
        }
        runs.push_back(n);
        while (runs.size() > 2) {
            size_t kept = 0;
            for (size_t r = 0; r + 1 < runs.size(); r += 2) {
                if (r + 2 < runs.size())
                    std::inplace_merge(b + ptrdiff_t(runs[r]), b + ptrdiff_t(runs[r + 1]), b + ptrdiff_t(runs[r + 2]),
                                       byTime);
                runs[kept++] = runs[r];
            }
            runs[kept++] = runs.back(); // the end
            runs.resize(kept);
        }
    }
}

namespace {

// Inserts one block of a track's events (and their packed arguments) ending
// at `end`; false if the insert failed.
bool insertBlock(Stmt& q, int64_t track, const std::vector<detail::BlockEvent>& block, const std::string& rawArgs,
                 int64_t end)
{
    const std::string events = detail::encodeEvents(block.data(), block.size());
    const std::string args = rawArgs.empty() ? std::string() : packArgs(rawArgs);
    q.bind(1, track)
        .bind(2, block.front().start)
        .bind(3, block.back().start)
        .bind(4, end)
        .bind(5, block.front().id)
        .bind(6, int64_t(block.size()))
        .bindBlob(7, events);
    if (args.empty())
        q.bindNull(8);
    else
        q.bindBlob(8, args);
    const int rc = q.step();
    q.reset();
    return rc == SQLITE_DONE;
}

} // namespace

// Stores the ordered chunk as blocks of at most kBlockEvents events of one
// track each, noting each track's longest block span. On failure the error,
// the transaction still open.
Result<bool> RunWriter::storeBlocks()
{
    const std::vector<uint32_t>& order = m_order;
    Stmt& q = m_st->insertBlock;
    std::vector<detail::BlockEvent> block;
    std::string rawArgs;
    for (size_t i = 0; i < order.size();) {
        const int64_t track = m_pending[order[i]].track;
        size_t j = i;
        while (j < order.size() && m_pending[order[j]].track == track && j - i < kBlockEvents)
            ++j;
        block.clear();
        rawArgs.clear();
        int64_t end = INT64_MIN;
        for (size_t k = i; k < j; ++k) {
            const Pending& p = m_pending[order[k]];
            detail::BlockEvent e;
            e.start = p.start;
            e.dur = p.dur;
            e.id = p.id;
            e.nameId = p.nameId;
            e.op = p.op;
            e.bytes = p.bytes;
            e.corr = p.corr;
            e.flops = p.flops;
            e.kind = p.kind;
            e.layer = p.layer;
            e.argsLen = p.argsLen;
            if (p.argsLen) {
                detail::putVarint(rawArgs, p.argsLen);
                rawArgs.append(m_args, size_t(p.argsAt), p.argsLen);
            }
            end = std::max(end, p.start + p.dur);
            block.push_back(e);
        }
        if (!insertBlock(q, track, block, rawArgs, end))
            return m_store.sqlError("storing events of run " + std::to_string(m_run));
        TrackStats& st = m_stats[track];
        st.maxSpan = std::max(st.maxSpan, end - block.front().start);
        i = j;
    }
    return true;
}

// Track statistics as of this chunk, so that an interrupted run can be read.
// On failure the error, the transaction still open.
Result<bool> RunWriter::storeTrackStats()
{
    Stmt& u = m_st->trackStats;
    for (const auto& entry : m_stats) {
        const TrackStats& st = entry.second;
        u.bind(1, st.events)
            .bind(2, st.events ? st.start : 0)
            .bind(3, st.events ? st.end : 0)
            .bind(4, std::max(st.maxDur, st.maxSpan))
            .bind(5, entry.first);
        const int rc = u.step();
        u.reset();
        if (rc != SQLITE_DONE)
            return m_store.sqlError("updating track statistics");
    }
    return true;
}

Result<bool> RunWriter::commitChunk()
{
    if (m_pending.empty()) {
        if (!m_inTransaction)
            return true;
        m_inTransaction = false; // names or tracks without events yet
        return m_store.exec("COMMIT");
    }
    orderChunk();
    if (auto b = begin(); !b)
        return b;
    if (auto s = storeBlocks(); !s) {
        abandon();
        return s;
    }
    if (auto s = storeTrackStats(); !s) {
        abandon();
        return s;
    }
    m_pending.clear();
    m_args.clear();
    m_inTransaction = false;
    if (auto c = m_store.exec("COMMIT"); !c)
        return c;
    if (m_checkpointer)
        m_checkpointer->request();
    return true;
}

Result<bool> RunWriter::begin()
{
    if (m_inTransaction)
        return true;
    if (auto b = m_store.exec("BEGIN"); !b)
        return b;
    m_inTransaction = true;
    return true;
}

void RunWriter::abandon()
{
    (void)m_store.exec("ROLLBACK");
    m_inTransaction = false;
    m_names.clear(); // names interned in the transaction are gone with it
    m_trackKey.clear();
}

Result<int64_t> RunWriter::intern(std::string_view s)
{
    if (auto it = m_names.find(s); it != m_names.end())
        return it->second;
    // Names (and tracks) go in with the chunk that first uses them, in its
    // transaction: one transaction a name rewrote the names table's pages
    // into the WAL each time (6.5 MB of WAL for a 2.2 MB database).
    if (auto b = begin(); !b)
        return b.error();
    Stmt& q = m_st->internName;
    q.reset();
    q.bind(1, s);
    if (q.step() != SQLITE_ROW)
        return m_store.sqlError("interning a name");
    const int64_t id = q.int64(0);
    q.reset();
    m_names.emplace(std::string(s), id);
    return id;
}

Result<int64_t> RunWriter::track(int32_t rank, int32_t track, std::string_view name, bool device)
{
    const int64_t key = (int64_t(rank) << 32) | uint32_t(track);
    if (auto it = m_trackKey.find(key); it != m_trackKey.end() && name.empty() && !device)
        return it->second;
    if (auto b = begin(); !b)
        return b.error();
    Stmt& q = m_st->insertTrack;
    q.reset();
    q.bind(1, m_run).bind(2, int64_t(rank)).bind(3, int64_t(track)).bind(4, name).bind(5, int64_t(device ? 1 : 0));
    if (q.step() != SQLITE_ROW)
        return m_store.sqlError("adding track " + std::to_string(rank) + "/" + std::to_string(track));
    const int64_t id = q.int64(0);
    q.reset();
    m_trackKey[key] = id;
    return id;
}

Result<bool> RunWriter::renameRank(int32_t from, int32_t to)
{
    Stmt q(m_store.m_db, "UPDATE tracks SET rank = ? WHERE run_id = ? AND rank = ?");
    q.bind(1, int64_t(to)).bind(2, m_run).bind(3, int64_t(from));
    if (q.step() != SQLITE_DONE)
        return m_store.sqlError("renumbering rank " + std::to_string(from) + " as " + std::to_string(to));
    std::unordered_map<int64_t, int64_t> keys;
    for (auto [k, id] : m_trackKey)
        keys[int32_t(k >> 32) == from ? ((int64_t(to) << 32) | uint32_t(k)) : k] = id;
    m_trackKey = std::move(keys);
    return true;
}

Result<bool> RunWriter::moveTrack(int32_t from, int32_t track, int32_t to)
{
    const int64_t key = (int64_t(from) << 32) | uint32_t(track);
    auto it = m_trackKey.find(key);
    if (it == m_trackKey.end())
        return Error{m_store.m_path, "run " + std::to_string(m_run), "no track " + std::to_string(track) + " of rank " + std::to_string(from)};
    Stmt q(m_store.m_db, "UPDATE tracks SET rank = ? WHERE id = ?");
    q.bind(1, int64_t(to)).bind(2, it->second);
    if (q.step() != SQLITE_DONE)
        return m_store.sqlError("moving track " + std::to_string(track) + " to rank " + std::to_string(to));
    const int64_t id = it->second;
    m_trackKey.erase(it);
    m_trackKey[(int64_t(to) << 32) | uint32_t(track)] = id;
    return true;
}

Result<bool> RunWriter::dropRank(int32_t rank)
{
    if (m_finished)
        return Error{m_store.m_path, "run " + std::to_string(m_run), "already finished"};
    if (auto c = commitChunk(); !c)
        return c;
    if (auto b = begin(); !b)
        return b;
    const std::string where = "run " + std::to_string(m_run) + ", rank " + std::to_string(rank);
    for (const char* sql : {"DELETE FROM event_blocks WHERE track_id IN (SELECT id FROM tracks WHERE run_id = ? AND rank = ?)",
                            "DELETE FROM tracks WHERE run_id = ? AND rank = ?"}) {
        Stmt q(m_store.m_db, sql);
        q.bind(1, m_run).bind(2, int64_t(rank));
        if (q.step() != SQLITE_DONE) {
            abandon();
            return m_store.sqlError("removing " + where);
        }
    }
    m_inTransaction = false;
    if (auto c = m_store.exec("COMMIT"); !c)
        return c;
    for (auto it = m_trackKey.begin(); it != m_trackKey.end();) {
        if (int32_t(it->first >> 32) == rank) {
            m_stats.erase(it->second);
            it = m_trackKey.erase(it);
        } else {
            ++it;
        }
    }
    return true;
}

Result<bool> RunWriter::add(int64_t trackId, const TraceRecord& r, std::string_view args)
{
    return add(trackId, r, r.name, args);
}

Result<bool> RunWriter::add(int64_t trackId, const TraceRecord& r, std::string_view name, std::string_view args)
{
    if (m_finished)
        return Error{m_store.m_path, "run " + std::to_string(m_run), "already finished"};
    auto nm = intern(name);
    if (!nm)
        return nm.error();
    if (!args.empty()) {
        // Commit before the argument text outgrows its buffer, so that the
        // buffer stays at kCommitArgsBytes instead of doubling past it.
        if (m_args.size() + args.size() > TraceStore::kCommitArgsBytes && !m_args.empty())
            if (auto c = commitChunk(); !c)
                return c;
        if (m_args.capacity() < TraceStore::kCommitArgsBytes)
            m_args.reserve(TraceStore::kCommitArgsBytes);
    }
    Pending p;
    p.track = trackId;
    p.start = r.start_ns;
    p.id = m_nextId++;
    p.dur = r.dur_ns;
    p.nameId = *nm;
    p.op = r.op;
    p.bytes = r.bytes;
    p.corr = r.correlation;
    p.flops = r.flops;
    p.kind = int32_t(r.kind);
    p.layer = r.layer;
    p.argsAt = m_args.size();
    p.argsLen = uint32_t(args.size());
    m_args.append(args);
    m_pending.push_back(p);
    TrackStats& st = m_stats[trackId];
    ++st.events;
    st.start = std::min(st.start, r.start_ns);
    st.end = std::max(st.end, r.start_ns + r.dur_ns);
    st.maxDur = std::max(st.maxDur, r.dur_ns);
    ++m_added;
    if (int64_t(m_pending.size()) >= m_commitEvery)
        return commitChunk();
    return true;
}

namespace {

// One level of a track's level-of-detail table while it is built.
struct LodLevel
{
    detail::LodBucket cur;
    bool open = false, kept = true;
    std::vector<detail::LodBucket> rows; // not yet written
    int64_t written = 0;                 // buckets already in lod_blocks
};

// The levels of a track of `events` events over [start, end) worth trying:
// levels that cannot fold kMinFold events per bucket are not worth storing;
// those finer than the mean spacing are not even tried. (bottom, top).
std::pair<int, int> lodLevelRange(int64_t events, int64_t start, int64_t end)
{
    int top = 0;
    while (top < kLevels - 1 && levelWidth(top) < std::max<int64_t>(1, end - start))
        ++top;
    int bottom = 0;
    const double spacing = double(std::max<int64_t>(1, end - start)) / double(events);
    while (bottom < top && double(levelWidth(bottom)) < spacing * double(kMinFold))
        ++bottom;
    return {bottom, top};
}

// The level-of-detail pass over one track's events: each level from bottom
// to top folds them into buckets, and drops out once it holds `cap` buckets.
// Buckets go out a block at a time, so memory stays at a block per level.
struct LodPass
{
    Stmt& put;
    int64_t trackId = 0, cap = 0;
    int bottom = 0, top = 0;
    std::vector<LodLevel> levels;
    bool writeFailed = false;

    // Writes level k's waiting buckets, kBlockBuckets to a row.
    void writeRows(int k, LodLevel& l)
    {
        for (size_t i = 0; i < l.rows.size(); i += kBlockBuckets) {
            const size_t n = std::min(kBlockBuckets, l.rows.size() - i);
            put.bind(1, trackId)
                .bind(2, int64_t(k))
                .bind(3, l.rows[i].bucket)
                .bind(4, l.rows[i + n - 1].bucket)
                .bindBlob(5, detail::encodeBuckets(&l.rows[i], n));
            writeFailed |= put.step() != SQLITE_DONE;
            put.reset();
            l.written += int64_t(n);
        }
        l.rows.clear();
    }

    // Closes level k's open bucket: queued, or the level dropped at its cap.
    void close(int k, LodLevel& l)
    {
        if (!l.open || !l.kept)
            return;
        l.open = false;
        if (l.written + int64_t(l.rows.size()) >= cap) {
            l.kept = false;
            l.rows = {};
            return;
        }
        l.rows.push_back(l.cur);
        if (l.rows.size() >= kBlockBuckets)
            writeRows(k, l);
    }

    // Folds one event (in time order) into each level's bucket.
    void add(const detail::BlockEvent& e)
    {
        for (int k = bottom; k <= top; ++k) {
            LodLevel& l = levels[size_t(k)];
            if (!l.kept)
                continue;
            const int64_t w = levelWidth(k);
            const int64_t idx = e.start >= 0 ? e.start / w : -((-e.start + w - 1) / w);
            if (!l.open || idx != l.cur.bucket) {
                close(k, l);
                if (!l.kept)
                    continue;
                l.cur = detail::LodBucket{};
                l.cur.bucket = idx;
                l.cur.start = e.start;
                l.cur.end = e.start + e.dur;
                l.cur.longestDur = -1;
                l.open = true;
            }
            ++l.cur.count;
            l.cur.end = std::max(l.cur.end, e.start + e.dur);
            if (e.dur > l.cur.longestDur) {
                l.cur.longestDur = e.dur;
                l.cur.longestId = e.id;
                l.cur.nameId = e.nameId;
                l.cur.kind = e.kind;
                l.cur.layer = e.layer;
            }
        }
    }

    // Closes and writes every level, deleting the rows of one dropped after
    // some were written; the mask of the levels stored.
    int64_t closeAll(Stmt& drop)
    {
        int64_t mask = 0;
        for (int k = bottom; k <= top; ++k) {
            LodLevel& l = levels[size_t(k)];
            close(k, l);
            if (l.kept) {
                writeRows(k, l);
                if (l.written > 0)
                    mask |= int64_t(1) << k;
            } else if (l.written > 0) { // dropped after some of it was written
                drop.bind(1, trackId).bind(2, int64_t(k));
                writeFailed |= drop.step() != SQLITE_DONE;
                drop.reset();
            }
        }
        return mask;
    }
};

} // namespace

// Builds and stores one track's level-of-detail table and its mask of
// levels. On failure the error, the transaction still open.
Result<bool> RunWriter::storeTrackLod(int64_t trackId, const TrackStats& st, Stmt& put, Stmt& upd, Stmt& drop)
{
    const int64_t cap = std::max<int64_t>(1, st.events / kMinFold);
    const auto [bottom, top] = lodLevelRange(st.events, st.start, st.end);
    LodPass pass{put, trackId, cap, bottom, top, std::vector<LodLevel>(size_t(top + 1))};
    auto r = readEvents(m_store.m_db, m_store.m_path, trackId, INT64_MIN, INT64_MAX, INT64_MIN, false,
                        [&](const detail::BlockEvent& e, std::string_view) { pass.add(e); });
    if (!r)
        return r.error();
    const int64_t mask = pass.closeAll(drop);
    if (pass.writeFailed)
        return m_store.sqlError("storing the level-of-detail table");
    upd.bind(1, mask).bind(2, trackId);
    const int rc = upd.step();
    upd.reset();
    if (rc != SQLITE_DONE)
        return m_store.sqlError("updating track statistics");
    return true;
}

Result<bool> RunWriter::finish(const std::string& meta)
{
    if (m_finished)
        return true;
    if (auto c = commitChunk(); !c)
        return c;
    sqlite3* db = m_store.m_db;
    if (auto b = begin(); !b)
        return b;
    auto rollback = [&](Error e) -> Result<bool> {
        abandon();
        return e;
    };
    Stmt put(db, "INSERT INTO lod_blocks(track_id, level, first_bucket, last_bucket, data) VALUES(?, ?, ?, ?, ?)");
    Stmt upd(db, "UPDATE tracks SET lod_levels = ? WHERE id = ?");
    Stmt drop(db, "DELETE FROM lod_blocks WHERE track_id = ? AND level = ?");
    if (!put.ok() || !upd.ok() || !drop.ok())
        return rollback(m_store.sqlError("preparing the level-of-detail pass"));
    for (const auto& entry : m_stats) {
        if (entry.second.events == 0)
            continue;
        if (auto t = storeTrackLod(entry.first, entry.second, put, upd, drop); !t)
            return rollback(t.error());
    }
    Stmt done(db, "UPDATE runs SET status = 'complete', meta = CASE WHEN ?1 = '' THEN meta ELSE ?1 END WHERE id = ?2");
    done.bind(1, meta).bind(2, m_run);
    if (done.step() != SQLITE_DONE)
        return rollback(m_store.sqlError("completing run " + std::to_string(m_run)));
    m_inTransaction = false;
    if (auto c = m_store.exec("COMMIT"); !c)
        return c;
    m_finished = true;
    m_checkpointer.reset(); // the rest is checkpointed with the store's next checkpoint or its close
    return true;
}

} // namespace partita
