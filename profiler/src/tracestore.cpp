#include "partita/profiler/tracestore.h"

#include "partita/core/units.h"

#include "blockcodec.h"
#include "storeblocks.h"
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
using namespace detail; // storeblocks.h

namespace {

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

RunKind kindFromText(std::string_view s)
{
    return s == "predicted" ? RunKind::Predicted : s == "measured" ? RunKind::Measured : RunKind::Imported;
}

} // namespace

namespace detail {

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

} // namespace detail

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

} // namespace partita
