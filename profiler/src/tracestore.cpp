#include "partita/profiler/tracestore.h"

#include "partita/core/units.h"

#include "blockcodec.h"
#include "sqlitestmt.h"

#include <sqlite3.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <system_error>
#include <thread>
#include <optional>
#include <ctime>
#include <fcntl.h>
#include <unistd.h>

namespace partita {

using detail::Stmt;

namespace {

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
int64_t levelWidth(int k) { return int64_t(1) << (10 + k); }

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS documents(
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    created TEXT NOT NULL,
    body TEXT NOT NULL,
    UNIQUE(kind, name, version));
CREATE TABLE IF NOT EXISTS strings(
    id INTEGER PRIMARY KEY,
    s TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS runs(
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    kind TEXT NOT NULL CHECK(kind IN ('predicted', 'measured', 'imported')),
    status TEXT NOT NULL CHECK(status IN ('complete', 'incomplete')),
    source TEXT NOT NULL DEFAULT '',
    host TEXT NOT NULL DEFAULT '',
    created TEXT NOT NULL,
    model_id INTEGER REFERENCES documents(id),
    cluster_id INTEGER REFERENCES documents(id),
    strategy_id INTEGER REFERENCES documents(id),
    meta TEXT NOT NULL DEFAULT '{}');
CREATE TABLE IF NOT EXISTS tracks(
    id INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    rank INTEGER NOT NULL,
    track INTEGER NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    device INTEGER NOT NULL DEFAULT 0,
    events INTEGER NOT NULL DEFAULT 0,
    start_ns INTEGER NOT NULL DEFAULT 0,
    end_ns INTEGER NOT NULL DEFAULT 0,
    max_dur_ns INTEGER NOT NULL DEFAULT 0,
    lod_levels INTEGER NOT NULL DEFAULT 0,
    UNIQUE(run_id, rank, track));
CREATE TABLE IF NOT EXISTS event_blocks(
    id INTEGER PRIMARY KEY,
    track_id INTEGER NOT NULL,
    start_ns INTEGER NOT NULL,
    last_ns INTEGER NOT NULL,
    end_ns INTEGER NOT NULL,
    first_id INTEGER NOT NULL,
    count INTEGER NOT NULL,
    events BLOB NOT NULL,
    args BLOB);
CREATE INDEX IF NOT EXISTS event_blocks_by_track ON event_blocks(track_id, start_ns);
CREATE TABLE IF NOT EXISTS lod_blocks(
    id INTEGER PRIMARY KEY,
    track_id INTEGER NOT NULL,
    level INTEGER NOT NULL,
    first_bucket INTEGER NOT NULL,
    last_bucket INTEGER NOT NULL,
    data BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS lod_blocks_by_track ON lod_blocks(track_id, level, first_bucket);
)sql";

// Arguments of a block: varint(raw size) + one zstd frame at level 1
// (schema 2). zlib at level 1 was 28 % of the instructions of importing a
// 35 MB Kineto trace (callgrind); zstd compresses faster and smaller.
// Schema 1 files hold zlib data there, told apart by zstd's frame magic.
std::string packArgs(const std::string& raw)
{
    struct CtxFree
    {
        void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
    };
    thread_local std::unique_ptr<ZSTD_CCtx, CtxFree> ctx(ZSTD_createCCtx());
    // Compressed into a buffer kept between calls: a fresh one sized to the
    // bound was zero-filled each time (2 % of an import's instructions).
    thread_local std::string frame;
    const size_t bound = ZSTD_compressBound(raw.size());
    if (frame.size() < bound)
        frame.resize(bound);
    const size_t size = ZSTD_compressCCtx(ctx.get(), frame.data(), bound, raw.data(), raw.size(), 1);
    if (ZSTD_isError(size))
        return {};
    std::string out;
    detail::putVarint(out, raw.size());
    out.append(frame, 0, size);
    return out;
}

bool unpackArgs(std::string_view packed, std::string& raw)
{
    detail::Reader r(packed);
    const uint64_t size = r.varint();
    if (!r.ok() || size > (uint64_t(1) << 31))
        return false;
    const size_t head = packed.size() - size_t(r.remaining());
    const std::string_view data = packed.substr(head);
    raw.resize(size_t(size));
    constexpr std::string_view kZstdMagic("\x28\xb5\x2f\xfd", 4);
    if (data.substr(0, 4) == kZstdMagic) {
        const size_t n = ZSTD_decompress(raw.data(), raw.size(), data.data(), data.size());
        return !ZSTD_isError(n) && n == size;
    }
    uLongf out = uLongf(size); // schema 1: zlib
    return uncompress(reinterpret_cast<Bytef*>(raw.data()), &out, reinterpret_cast<const Bytef*>(data.data()),
                      uLong(data.size())) == Z_OK &&
           out == size;
}

RunKind kindFromText(std::string_view s)
{
    return s == "predicted" ? RunKind::Predicted : s == "measured" ? RunKind::Measured : RunKind::Imported;
}

} // namespace

namespace {

// One track's events from the blocks that start in [from, to), in (start,
// id) order, with their arguments when asked. Blocks that overlap in time
// (events that arrived out of order) are merged with a heap of decoded
// blocks, so memory holds only the blocks open at the current time.
struct BlockCursor
{
    std::vector<detail::BlockEvent> events;
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
                        bool withArgs, F&& f, detail::Stmt* metaIn = nullptr, detail::Stmt* loadIn = nullptr)
{
    // Events starting at `to` or later are never wanted: blocks stop decoding there.
    const int64_t stopAt = to;
    auto fail = [&](const std::string& what) -> Result<bool> {
        return Error{path, "track " + std::to_string(track), what};
    };
    std::optional<detail::Stmt> ownMeta, ownLoad;
    if (!metaIn)
        metaIn = &ownMeta.emplace(db, kBlocksOfTrack);
    detail::Stmt& meta = *metaIn;
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
    detail::Stmt& load = *loadIn;
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
        if (!detail::decodeEvents(load.blob(0), c.events, withArgs ? &has : nullptr, stopAt)) {
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
            detail::Reader r(raw);
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

} // namespace

std::string_view runKindName(RunKind k)
{
    switch (k) {
    case RunKind::Predicted: return "predicted";
    case RunKind::Measured: return "measured";
    case RunKind::Imported: return "imported";
    }
    return "imported";
}

std::string_view runStatusName(RunStatus s) { return s == RunStatus::Complete ? "complete" : "incomplete"; }

// ---------------------------------------------------------------- store

Error TraceStore::sqlError(const std::string& where) const
{
    return Error{m_path, where, m_db ? sqlite3_errmsg(m_db) : "cannot open the database"};
}

Result<bool> TraceStore::exec(const char* sql) const
{
    char* msg = nullptr;
    if (sqlite3_exec(m_db, sql, nullptr, nullptr, &msg) != SQLITE_OK) {
        std::string m = msg ? msg : "unknown SQLite error";
        sqlite3_free(msg);
        return Error{m_path, "SQL", m};
    }
    return true;
}

Result<std::unique_ptr<TraceStore>> TraceStore::open(const std::string& path)
{
    std::unique_ptr<TraceStore> s(new TraceStore);
    s->m_path = path;
    if (sqlite3_open_v2(path.c_str(), &s->m_db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        nullptr) != SQLITE_OK)
        return s->sqlError("open");
    sqlite3_busy_timeout(s->m_db, 5000);
    // A file that is not a database fails on its first read, here.
    int version = 0;
    {
        Stmt q(s->m_db, "PRAGMA user_version");
        if (!q.ok())
            return Error{path, "open", std::string("not a Partita project (") + sqlite3_errmsg(s->m_db) + ")"};
        if (q.step() == SQLITE_ROW)
            version = q.int32(0);
    }
    if (version > kSchemaVersion)
        return Error{path, "schema", "written by a newer Partita (schema " + std::to_string(version) +
                                         ", this build reads up to " + std::to_string(kSchemaVersion) + ")"};
    for (const char* pragma : {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL", "PRAGMA foreign_keys=ON",
                               "PRAGMA temp_store=MEMORY", kReaderCache})
        if (auto r = s->exec(pragma); !r)
            return r.error();
    if (version == 0) {
        // A new file, or an SQLite file that is not ours: refuse foreign tables.
        Stmt t(s->m_db, "SELECT count(*) FROM sqlite_master WHERE type='table'");
        if (t.step() == SQLITE_ROW && t.int64(0) > 0)
            return Error{path, "schema", "an SQLite database that is not a Partita project (no schema version)"};
        if (auto r = s->exec("BEGIN"); !r)
            return r.error();
        if (auto r = s->exec(kSchema); !r)
            return r.error();
        if (auto r = s->exec(("PRAGMA user_version=" + std::to_string(kSchemaVersion)).c_str()); !r)
            return r.error();
        if (auto r = s->exec("COMMIT"); !r)
            return r.error();
    }
    // Migrations from older schema versions, one step per version.
    if (version == 1) {
        // 1 -> 2: argument blobs written from now on are zstd; zlib ones stay
        // and are still read (unpackArgs tells them apart), so only the
        // version changes.
        if (auto r = s->exec("PRAGMA user_version=2"); !r)
            return r.error();
        version = 2;
    }
    // Every table of this version must be there (a file from a development
    // build before the schema settled lacks some): refused, not half read.
    for (const char* table : {"documents", "strings", "runs", "tracks", "event_blocks", "lod_blocks"}) {
        Stmt t(s->m_db, "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?");
        t.bind(1, table);
        if (t.step() != SQLITE_ROW)
            return Error{path, "schema", std::string("schema ") + std::to_string(kSchemaVersion) + " without its table '" +
                                             table + "': written by an older development build of Partita; import "
                                             "its traces again into a new project"};
    }
    // Projects from before the application_id was set get it on opening.
    {
        Stmt q(s->m_db, "PRAGMA application_id");
        if (q.step() == SQLITE_ROW && q.int32(0) == 0)
            if (auto r = s->exec(("PRAGMA application_id=" + std::to_string(kApplicationId)).c_str()); !r)
                return r.error();
    }
    return s;
}

TraceStore::~TraceStore()
{
    m_trackInfo.reset();
    m_lodQuery.reset();
    m_rawQuery.reset();
    m_blockLoad.reset();
    if (m_db)
        sqlite3_close_v2(m_db);
}

detail::Stmt& TraceStore::cached(std::unique_ptr<detail::Stmt>& slot, const char* sql) const
{
    if (!slot)
        slot = std::make_unique<detail::Stmt>(m_db, sql);
    slot->reset();
    return *slot;
}

Result<Document> TraceStore::saveDocument(const std::string& kind, const std::string& name, const std::string& body)
{
    Document d;
    d.kind = kind;
    d.name = name;
    d.body = body;
    d.created = utcTimestamp();
    Stmt q(m_db, "INSERT INTO documents(kind, name, version, created, body) "
                 "VALUES(?1, ?2, (SELECT coalesce(max(version), 0) + 1 FROM documents WHERE kind=?1 AND name=?2), ?3, ?4) "
                 "RETURNING id, version");
    q.bind(1, kind).bind(2, name).bind(3, d.created).bind(4, body);
    if (q.step() != SQLITE_ROW)
        return sqlError("saving " + kind + " '" + name + "'");
    d.id = q.int64(0);
    d.version = q.int32(1);
    return d;
}

Result<std::vector<Document>> TraceStore::documents(const std::string& kind) const
{
    Stmt q(m_db, "SELECT id, kind, name, version, created, body FROM documents WHERE ?1 = '' OR kind = ?1 "
                 "ORDER BY kind, name, version DESC");
    q.bind(1, kind);
    std::vector<Document> out;
    int rc;
    while ((rc = q.step()) == SQLITE_ROW)
        out.push_back({q.int64(0), q.text(1), q.text(2), q.int32(3), q.text(4), q.text(5)});
    if (rc != SQLITE_DONE)
        return sqlError("documents");
    return out;
}

Result<Document> TraceStore::document(int64_t id) const
{
    Stmt q(m_db, "SELECT id, kind, name, version, created, body FROM documents WHERE id = ?1");
    q.bind(1, id);
    if (q.step() != SQLITE_ROW)
        return Error{m_path, "document " + std::to_string(id), "no such document"};
    return Document{q.int64(0), q.text(1), q.text(2), q.int32(3), q.text(4), q.text(5)};
}

Result<bool> TraceStore::renameDocuments(const std::string& kind, const std::string& from, const std::string& to)
{
    if (to.empty())
        return Error{m_path, kind + " '" + from + "'", "a name cannot be empty"};
    if (from == to)
        return true;
    Stmt taken(m_db, "SELECT count(*) FROM documents WHERE kind = ?1 AND name = ?2");
    taken.bind(1, kind).bind(2, to);
    if (taken.step() != SQLITE_ROW)
        return sqlError("renaming " + kind + " '" + from + "'");
    if (taken.int64(0) > 0)
        return Error{m_path, kind + " '" + from + "'", "'" + to + "' is already the name of a " + kind};
    Stmt q(m_db, "UPDATE documents SET name = ?3 WHERE kind = ?1 AND name = ?2");
    q.bind(1, kind).bind(2, from).bind(3, to);
    if (q.step() != SQLITE_DONE)
        return sqlError("renaming " + kind + " '" + from + "'");
    if (sqlite3_changes(m_db) == 0)
        return Error{m_path, kind + " '" + from + "'", "no such " + kind};
    return true;
}

Result<bool> TraceStore::deleteDocument(int64_t id)
{
    auto d = document(id);
    if (!d)
        return d.error();
    Stmt users(m_db, "SELECT id FROM runs WHERE model_id = ?1 OR cluster_id = ?1 OR strategy_id = ?1 ORDER BY id");
    users.bind(1, id);
    std::string ids;
    int n = 0;
    while (users.step() == SQLITE_ROW) {
        if (n++ < 10)
            ids += (ids.empty() ? "" : ", ") + std::to_string(users.int64(0));
    }
    if (n > 0)
        return Error{m_path, d->kind + " '" + d->name + "' v" + std::to_string(d->version),
                     std::to_string(n) + " run(s) were made with it (" + ids + (n > 10 ? ", ..." : "") +
                         "): delete them first, or keep it"};
    Stmt q(m_db, "DELETE FROM documents WHERE id = ?1");
    q.bind(1, id);
    if (q.step() != SQLITE_DONE)
        return sqlError("deleting document " + std::to_string(id));
    return true;
}

Result<std::unique_ptr<RunWriter>> TraceStore::beginRun(RunInfo info, int64_t commitEvery)
{
    if (info.created.empty())
        info.created = utcTimestamp();
    if (info.host.empty()) {
        char host[256] = {};
        if (gethostname(host, sizeof host - 1) == 0)
            info.host = host;
    }
    Stmt q(m_db, "INSERT INTO runs(name, kind, status, source, host, created, model_id, cluster_id, strategy_id, meta) "
                 "VALUES(?, ?, 'incomplete', ?, ?, ?, nullif(?, 0), nullif(?, 0), nullif(?, 0), ?) RETURNING id");
    q.bind(1, info.name)
        .bind(2, runKindName(info.kind))
        .bind(3, info.source)
        .bind(4, info.host)
        .bind(5, info.created)
        .bind(6, info.model_id)
        .bind(7, info.cluster_id)
        .bind(8, info.strategy_id)
        .bind(9, info.meta.empty() ? std::string("{}") : info.meta);
    if (q.step() != SQLITE_ROW)
        return sqlError("starting run '" + info.name + "'");
    const int64_t id = q.int64(0);
    q.reset();
    std::unique_ptr<RunWriter> w(new RunWriter(*this, id, std::max<int64_t>(1, commitEvery)));
    if (!w->m_st)
        return sqlError("preparing the ingest statements");
    // While a run is written, the WAL is checkpointed every 64 MiB instead of
    // SQLite's 4 MiB: each checkpoint syncs the disk, and a 35 MB Kineto
    // import spent a quarter of its wall time waiting on 11 of them. Commits
    // stay atomic; a killed writer's WAL is recovered on the next open.
    if (auto r = exec("PRAGMA wal_autocheckpoint=16384"); !r)
        return r.error();
    // And a 2 MiB page cache instead of the readers' 16 MiB: an import writes
    // its pages once, and the larger cache only held them (importing a 348 MB
    // Kineto trace: peak RSS 40.5 -> 25.7 MB, time unchanged, 3.1 s).
    if (auto r = exec("PRAGMA cache_size=-2048"); !r)
        return r.error();
    return w;
}

Result<int64_t> TraceStore::storeTrace(const Trace& trace, RunInfo info, const std::string& meta)
{
    auto w = beginRun(std::move(info));
    if (!w)
        return w.error();
    // A prediction's tracks are all device streams.
    std::unordered_map<int64_t, int64_t> ids;
    auto key = [](int32_t rank, int32_t track) { return (int64_t(rank) << 32) | uint32_t(track); };
    for (const auto& t : trace.tracks) {
        auto tr = (*w)->track(t.rank, t.track, t.name, true);
        if (!tr)
            return tr.error();
        ids[key(t.rank, t.track)] = *tr;
    }
    for (const auto& r : trace.records) {
        auto it = ids.find(key(r.rank, r.track));
        if (it == ids.end()) {
            auto tr = (*w)->track(r.rank, r.track, "track " + std::to_string(r.track), true);
            if (!tr)
                return tr.error();
            it = ids.emplace(key(r.rank, r.track), *tr).first;
        }
        if (auto a = (*w)->add(it->second, r); !a)
            return a.error();
    }
    if (auto f = (*w)->finish(meta); !f)
        return f.error();
    return (*w)->runId();
}

Result<std::vector<RunInfo>> TraceStore::runs() const
{
    Stmt q(m_db, "SELECT r.id, r.name, r.kind, r.status, r.source, r.host, r.created, coalesce(r.model_id, 0), "
                 "coalesce(r.cluster_id, 0), coalesce(r.strategy_id, 0), r.meta, "
                 "coalesce(sum(t.events), 0), coalesce(min(t.start_ns), 0), coalesce(max(t.end_ns), 0), "
                 "count(DISTINCT t.rank) FROM runs r LEFT JOIN tracks t ON t.run_id = r.id GROUP BY r.id ORDER BY r.id");
    // Track statistics are written when a run finishes; an incomplete run's come from its events.
    Stmt partial(m_db, "SELECT coalesce(sum(b.count), 0), coalesce(min(b.start_ns), 0), coalesce(max(b.end_ns), 0) "
                       "FROM event_blocks b JOIN tracks t ON b.track_id = t.id WHERE t.run_id = ?");
    std::vector<RunInfo> out;
    int rc;
    while ((rc = q.step()) == SQLITE_ROW) {
        RunInfo r;
        r.id = q.int64(0);
        r.name = q.text(1);
        r.kind = kindFromText(q.text(2));
        r.status = q.text(3) == "complete" ? RunStatus::Complete : RunStatus::Incomplete;
        r.source = q.text(4);
        r.host = q.text(5);
        r.created = q.text(6);
        r.model_id = q.int64(7);
        r.cluster_id = q.int64(8);
        r.strategy_id = q.int64(9);
        r.meta = q.text(10);
        r.events = q.int64(11);
        r.start_ns = q.int64(12);
        r.end_ns = q.int64(13);
        r.ranks = q.int32(14);
        if (r.status == RunStatus::Incomplete) {
            partial.reset();
            partial.bind(1, r.id);
            if (partial.step() == SQLITE_ROW) {
                r.events = partial.int64(0);
                r.start_ns = partial.int64(1);
                r.end_ns = partial.int64(2);
            }
        }
        out.push_back(std::move(r));
    }
    if (rc != SQLITE_DONE)
        return sqlError("listing runs");
    return out;
}

Result<RunInfo> TraceStore::run(int64_t id) const
{
    auto all = runs();
    if (!all)
        return all.error();
    for (auto& r : *all)
        if (r.id == id)
            return r;
    return Error{m_path, "run " + std::to_string(id), "no such run (partita-cli runs list shows the runs)"};
}

Result<bool> TraceStore::deleteRun(int64_t id)
{
    if (auto r = run(id); !r)
        return r.error();
    if (auto r = exec("BEGIN"); !r)
        return r;
    const std::string sid = std::to_string(id);
    for (const std::string& sql :
         {"DELETE FROM lod_blocks WHERE track_id IN (SELECT id FROM tracks WHERE run_id = " + sid + ")",
          "DELETE FROM event_blocks WHERE track_id IN (SELECT id FROM tracks WHERE run_id = " + sid + ")",
          "DELETE FROM tracks WHERE run_id = " + sid, "DELETE FROM runs WHERE id = " + sid})
        if (auto r = exec(sql.c_str()); !r) {
            (void)exec("ROLLBACK");
            return r;
        }
    return exec("COMMIT");
}

Result<bool> TraceStore::renameRun(int64_t id, const std::string& name)
{
    Stmt q(m_db, "UPDATE runs SET name = ? WHERE id = ?");
    q.bind(1, name).bind(2, id);
    if (q.step() != SQLITE_DONE)
        return sqlError("renaming run " + std::to_string(id));
    if (sqlite3_changes(m_db) == 0)
        return Error{m_path, "run " + std::to_string(id), "no such run"};
    return true;
}

Result<bool> TraceStore::annotateRun(int64_t id, const RunInfo& info)
{
    Stmt q(m_db, "UPDATE runs SET name = ?, kind = ?, status = ?, source = ?, host = ?, model_id = nullif(?, 0), "
                 "cluster_id = nullif(?, 0), strategy_id = nullif(?, 0), meta = ? WHERE id = ?");
    q.bind(1, info.name)
        .bind(2, runKindName(info.kind))
        .bind(3, info.status == RunStatus::Complete ? "complete" : "incomplete")
        .bind(4, info.source)
        .bind(5, info.host)
        .bind(6, info.model_id)
        .bind(7, info.cluster_id)
        .bind(8, info.strategy_id)
        .bind(9, info.meta.empty() ? std::string("{}") : info.meta)
        .bind(10, id);
    if (q.step() != SQLITE_DONE)
        return sqlError("annotating run " + std::to_string(id));
    if (sqlite3_changes(m_db) == 0)
        return Error{m_path, "run " + std::to_string(id), "no such run"};
    return true;
}

Result<std::vector<StoredTrack>> TraceStore::tracks(int64_t run) const
{
    Stmt q(m_db, "SELECT id, run_id, rank, track, name, device, events, start_ns, end_ns, max_dur_ns FROM tracks "
                 "WHERE run_id = ? ORDER BY rank, track");
    q.bind(1, run);
    std::vector<StoredTrack> out;
    int rc;
    while ((rc = q.step()) == SQLITE_ROW)
        out.push_back({q.int64(0), q.int64(1), q.int32(2), q.int32(3), q.text(4), q.int32(5) != 0, q.int64(6),
                       q.int64(7), q.int64(8), q.int64(9)});
    if (rc != SQLITE_DONE)
        return sqlError("tracks of run " + std::to_string(run));
    return out;
}

Result<std::string> TraceStore::name(int64_t nameId) const
{
    if (auto it = m_nameCache.find(nameId); it != m_nameCache.end())
        return it->second;
    Stmt q(m_db, "SELECT s FROM strings WHERE id = ?");
    q.bind(1, nameId);
    if (q.step() != SQLITE_ROW)
        return Error{m_path, "string " + std::to_string(nameId), "missing from the strings table"};
    return m_nameCache.emplace(nameId, q.text(0)).first->second;
}

bool TraceStore::prefetch() const
{
    const int fd = ::open(m_path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    const bool ok = posix_fadvise(fd, 0, 0, POSIX_FADV_WILLNEED) == 0;
    ::close(fd);
    return ok;
}

TraceStore::ReadScope::ReadScope(const TraceStore& s) : m_store(s)
{
    if (sqlite3_get_autocommit(s.m_db))
        m_began = s.exec("BEGIN").ok();
}

TraceStore::ReadScope::~ReadScope()
{
    if (m_began)
        (void)m_store.exec("COMMIT");
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
    int level = -1;
    for (int k = 0; k < kLevels; ++k)
        if ((levels >> k & 1) && double(levelWidth(k)) <= fold)
            level = k;
    auto push = [&](DrawItem it) {
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
    };
    if (level >= 0) {
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
                push(std::move(it));
            }
        }
        if (rc != SQLITE_DONE)
            return sqlError("viewport");
        return out;
    }
    std::vector<DrawItem> rows;
    rows.reserve(256);
    auto r = readEvents(m_db, m_path, track, t0 - maxDur, t1, t0, false, [&](const detail::BlockEvent& e, std::string_view) {
        if (e.start >= t1 || e.start + e.dur < t0 - 0)
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
        push(std::move(it));
    }
    return out;
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

Result<std::string> TraceStore::integrityCheck() const
{
    Stmt q(m_db, "PRAGMA integrity_check");
    std::string out;
    while (q.step() == SQLITE_ROW)
        out += (out.empty() ? "" : "\n") + q.text(0);
    if (out.empty())
        return sqlError("integrity_check");
    return out;
}

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

Result<bool> RunWriter::commitChunk()
{
    if (m_pending.empty()) {
        if (!m_inTransaction)
            return true;
        m_inTransaction = false; // names or tracks without events yet
        return m_store.exec("COMMIT");
    }
    orderChunk();
    const std::vector<uint32_t>& order = m_order;
    if (auto b = begin(); !b)
        return b;
    auto rollback = [&](const std::string& what) -> Result<bool> {
        Error e = m_store.sqlError(what);
        abandon();
        return e;
    };
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
        if (rc != SQLITE_DONE)
            return rollback("storing events of run " + std::to_string(m_run));
        TrackStats& st = m_stats[track];
        st.maxSpan = std::max(st.maxSpan, end - block.front().start);
        i = j;
    }
    // Track statistics as of this chunk, so that an interrupted run can be read.
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
            return rollback("updating track statistics");
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
        const int64_t trackId = entry.first;
        const TrackStats& st = entry.second;
        if (st.events == 0)
            continue;
        // Levels that cannot fold kMinFold events per bucket are not worth
        // storing; those finer than the mean spacing are not even tried.
        const int64_t cap = std::max<int64_t>(1, st.events / kMinFold);
        int top = 0;
        while (top < kLevels - 1 && levelWidth(top) < std::max<int64_t>(1, st.end - st.start))
            ++top;
        int bottom = 0;
        const double spacing = double(std::max<int64_t>(1, st.end - st.start)) / double(st.events);
        while (bottom < top && double(levelWidth(bottom)) < spacing * double(kMinFold))
            ++bottom;
        struct Level
        {
            detail::LodBucket cur;
            bool open = false, kept = true;
            std::vector<detail::LodBucket> rows; // not yet written
            int64_t written = 0;                 // buckets already in lod_blocks
        };
        std::vector<Level> levels(size_t(top + 1));
        bool writeFailed = false;
        auto writeRows = [&](int k, Level& l) {
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
        };
        // Buckets go out a block at a time, so memory stays at a block per level.
        auto close = [&](int k, Level& l) {
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
        };
        auto r = readEvents(db, m_store.m_path, trackId, INT64_MIN, INT64_MAX, INT64_MIN, false,
                            [&](const detail::BlockEvent& e, std::string_view) {
                                for (int k = bottom; k <= top; ++k) {
                                    Level& l = levels[size_t(k)];
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
                            });
        if (!r)
            return rollback(r.error());
        int64_t mask = 0;
        for (int k = bottom; k <= top; ++k) {
            Level& l = levels[size_t(k)];
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
        if (writeFailed)
            return rollback(m_store.sqlError("storing the level-of-detail table"));
        upd.bind(1, mask).bind(2, trackId);
        const int rc = upd.step();
        upd.reset();
        if (rc != SQLITE_DONE)
            return rollback(m_store.sqlError("updating track statistics"));
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
