#include "partita/profiler/tracestore.h"

#include "sqlitestmt.h"

#include <sqlite3.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <ctime>
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
CREATE TABLE IF NOT EXISTS events(
    track_id INTEGER NOT NULL,
    start_ns INTEGER NOT NULL,
    id INTEGER NOT NULL,
    dur_ns INTEGER NOT NULL,
    kind INTEGER NOT NULL,
    name_id INTEGER NOT NULL,
    layer INTEGER,
    op INTEGER,
    bytes INTEGER,
    flops REAL,
    correlation INTEGER,
    PRIMARY KEY(track_id, start_ns, id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS event_args(
    id INTEGER PRIMARY KEY,
    args TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS lod(
    track_id INTEGER NOT NULL,
    level INTEGER NOT NULL,
    bucket INTEGER NOT NULL,
    start_ns INTEGER NOT NULL,
    end_ns INTEGER NOT NULL,
    count INTEGER NOT NULL,
    longest_id INTEGER NOT NULL,
    longest_dur INTEGER NOT NULL,
    name_id INTEGER NOT NULL,
    kind INTEGER NOT NULL,
    layer INTEGER,
    PRIMARY KEY(track_id, level, bucket)) WITHOUT ROWID;
)sql";

std::string nowUtc()
{
    std::time_t t = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

RunKind kindFromText(std::string_view s)
{
    return s == "predicted" ? RunKind::Predicted : s == "measured" ? RunKind::Measured : RunKind::Imported;
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
                               "PRAGMA temp_store=MEMORY", "PRAGMA cache_size=-16384"})
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
    // Migrations from older schema versions go here, one step per version.
    return s;
}

TraceStore::~TraceStore()
{
    m_trackInfo.reset();
    m_lodQuery.reset();
    m_rawQuery.reset();
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
    d.created = nowUtc();
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

Result<std::unique_ptr<RunWriter>> TraceStore::beginRun(RunInfo info, int64_t commitEvery)
{
    if (info.created.empty())
        info.created = nowUtc();
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
    Stmt partial(m_db, "SELECT count(*), coalesce(min(e.start_ns), 0), coalesce(max(e.start_ns + e.dur_ns), 0) "
                       "FROM events e JOIN tracks t ON e.track_id = t.id WHERE t.run_id = ?");
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
         {"DELETE FROM lod WHERE track_id IN (SELECT id FROM tracks WHERE run_id = " + sid + ")",
          "DELETE FROM event_args WHERE id >= (" + sid + " << 36) AND id < ((" + sid + " + 1) << 36)",
          "DELETE FROM events WHERE track_id IN (SELECT id FROM tracks WHERE run_id = " + sid + ")",
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
        Stmt& q = cached(m_lodQuery, "SELECT start_ns, end_ns, count, longest_id, longest_dur, name_id, kind, "
                                     "coalesce(layer, -1) FROM lod WHERE track_id = ? AND level = ? AND bucket >= ? "
                                     "AND bucket <= ? ORDER BY bucket");
        q.bind(1, track).bind(2, int64_t(level)).bind(3, (t0 - maxDur) / w - 1).bind(4, t1 / w + 1);
        int rc;
        while ((rc = q.step()) == SQLITE_ROW) {
            DrawItem it;
            it.start_ns = q.int64(0);
            it.end_ns = q.int64(1);
            if (it.end_ns <= t0 || it.start_ns >= t1)
                continue;
            it.count = q.int64(2);
            it.event_id = q.int64(3);
            const int64_t longest = q.int64(4);
            it.name_id = q.int64(5);
            it.kind = TraceKind(q.int32(6));
            it.layer = q.int32(7);
            if (it.count > 1 && double(longest) >= fold) {
                // A wide event inside the bucket is drawn as itself.
                it.count = 1;
            }
            push(std::move(it));
        }
        if (rc != SQLITE_DONE)
            return sqlError("viewport");
        return out;
    }
    Stmt& q = cached(m_rawQuery, "SELECT id, start_ns, dur_ns, kind, name_id, coalesce(layer, -1) FROM events "
                                 "WHERE track_id = ? AND start_ns >= ? AND start_ns < ? ORDER BY start_ns, id");
    q.bind(1, track).bind(2, t0 - maxDur).bind(3, t1);
    std::vector<DrawItem> rows;
    int rc;
    while ((rc = q.step()) == SQLITE_ROW) {
        DrawItem it;
        it.event_id = q.int64(0);
        it.start_ns = q.int64(1);
        it.end_ns = it.start_ns + q.int64(2);
        it.kind = TraceKind(q.int32(3));
        it.name_id = q.int64(4);
        it.layer = q.int32(5);
        rows.push_back(it);
    }
    if (rc != SQLITE_DONE)
        return sqlError("viewport");
    // Events that start together: the enclosing (longer) one first.
    std::stable_sort(rows.begin(), rows.end(), [](const DrawItem& a, const DrawItem& b) {
        return a.start_ns < b.start_ns || (a.start_ns == b.start_ns && a.end_ns > b.end_ns);
    });
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
    Stmt q(m_db, withArgs ? "SELECT e.id, e.start_ns, e.dur_ns, e.kind, e.name_id, coalesce(e.layer, -1), "
                            "coalesce(e.op, -1), coalesce(e.bytes, 0), coalesce(e.flops, 0), coalesce(e.correlation, -1), "
                            "coalesce(a.args, '') FROM events e LEFT JOIN event_args a ON a.id = e.id "
                            "WHERE e.track_id = ? ORDER BY e.start_ns, e.id"
                          : "SELECT id, start_ns, dur_ns, kind, name_id, coalesce(layer, -1), coalesce(op, -1), "
                            "coalesce(bytes, 0), coalesce(flops, 0), coalesce(correlation, -1), '' "
                            "FROM events WHERE track_id = ? ORDER BY start_ns, id");
    for (const StoredTrack& t : *ts) {
        if (track && *track != t.id)
            continue;
        q.reset();
        q.bind(1, t.id);
        StoredEvent e;
        e.track_id = t.id;
        e.record.rank = t.rank;
        e.record.track = t.track;
        int rc;
        while ((rc = q.step()) == SQLITE_ROW) {
            e.id = q.int64(0);
            e.record.start_ns = q.int64(1);
            e.record.dur_ns = q.int64(2);
            e.record.kind = TraceKind(q.int32(3));
            auto nm = name(q.int64(4));
            if (!nm)
                return nm.error();
            e.record.name = *nm;
            e.record.layer = q.int32(5);
            e.record.op = q.int64(6);
            e.record.bytes = q.int64(7);
            e.record.flops = q.dbl(8);
            e.record.correlation = q.int64(9);
            e.args = q.text(10);
            f(e);
        }
        if (rc != SQLITE_DONE)
            return sqlError("events of run " + std::to_string(run));
    }
    return true;
}

Result<std::vector<Aggregate>> TraceStore::aggregate(int64_t run, GroupBy by, std::optional<TraceKind> kind) const
{
    const char* key = by == GroupBy::Name ? "e.name_id" : by == GroupBy::Kind ? "e.kind" : "coalesce(e.layer, -1)";
    const std::string sql = std::string("SELECT ") + key +
                            ", count(*), sum(e.dur_ns), coalesce(sum(e.bytes), 0), coalesce(sum(e.flops), 0) "
                            "FROM events e JOIN tracks t ON e.track_id = t.id WHERE t.run_id = ?1 "
                            "AND (?2 < 0 OR e.kind = ?2) GROUP BY 1 ORDER BY 3 DESC";
    Stmt q(m_db, sql.c_str());
    q.bind(1, run).bind(2, kind ? int64_t(*kind) : int64_t(-1));
    std::vector<Aggregate> out;
    int rc;
    while ((rc = q.step()) == SQLITE_ROW) {
        Aggregate a;
        if (by == GroupBy::Name) {
            auto nm = name(q.int64(0));
            if (!nm)
                return nm.error();
            a.key = *nm;
        } else if (by == GroupBy::Kind) {
            a.key = std::string(traceKindName(TraceKind(q.int32(0))));
        } else {
            a.key = std::to_string(q.int64(0));
        }
        a.count = q.int64(1);
        a.total_ns = q.int64(2);
        a.bytes = q.int64(3);
        a.flops = q.dbl(4);
        out.push_back(std::move(a));
    }
    if (rc != SQLITE_DONE)
        return sqlError("aggregating run " + std::to_string(run));
    return out;
}

Result<std::vector<StoredEvent>> TraceStore::steps(int64_t run) const
{
    std::vector<StoredEvent> out;
    Stmt q(m_db, "SELECT e.id, e.track_id, t.rank, t.track, e.start_ns, e.dur_ns, e.name_id FROM events e "
                 "JOIN tracks t ON e.track_id = t.id WHERE t.run_id = ? AND e.kind = ? ORDER BY t.rank, e.start_ns");
    q.bind(1, run).bind(2, int64_t(TraceKind::Step));
    int rc;
    while ((rc = q.step()) == SQLITE_ROW) {
        StoredEvent e;
        e.id = q.int64(0);
        e.track_id = q.int64(1);
        e.record.rank = q.int32(2);
        e.record.track = q.int32(3);
        e.record.start_ns = q.int64(4);
        e.record.dur_ns = q.int64(5);
        e.record.kind = TraceKind::Step;
        auto nm = name(q.int64(6));
        if (!nm)
            return nm.error();
        e.record.name = *nm;
        out.push_back(std::move(e));
    }
    if (rc != SQLITE_DONE)
        return sqlError("steps of run " + std::to_string(run));
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
    Stmt insertEvent, insertArgs, internName, insertTrack;
    Statements(sqlite3* db)
        : insertEvent(db, "INSERT INTO events(track_id, start_ns, id, dur_ns, kind, name_id, layer, op, bytes, flops, "
                          "correlation) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
          insertArgs(db, "INSERT INTO event_args(id, args) VALUES(?, ?)"),
          internName(db, "INSERT INTO strings(s) VALUES(?) ON CONFLICT(s) DO UPDATE SET s = excluded.s RETURNING id"),
          insertTrack(db, "INSERT INTO tracks(run_id, rank, track, name, device) VALUES(?, ?, ?, ?, ?) "
                          "ON CONFLICT(run_id, rank, track) DO UPDATE SET name = CASE WHEN excluded.name = '' "
                          "THEN name ELSE excluded.name END, device = max(device, excluded.device) RETURNING id")
    {
    }
    bool ok() const { return insertEvent.ok() && insertArgs.ok() && internName.ok() && insertTrack.ok(); }
};

RunWriter::RunWriter(TraceStore& s, int64_t run, int64_t commitEvery)
    : m_store(s), m_run(run), m_commitEvery(commitEvery), m_nextId(run << 36)
{
    auto st = std::make_unique<Statements>(s.m_db);
    if (st->ok())
        m_st = std::move(st);
    m_pending.reserve(size_t(std::min<int64_t>(commitEvery, 1 << 20)));
}

RunWriter::~RunWriter()
{
    // Unfinished: keep what was written, the run stays marked incomplete.
    if (!m_finished)
        (void)commitChunk();
}

Result<bool> RunWriter::commitChunk()
{
    if (m_pending.empty())
        return true;
    std::sort(m_pending.begin(), m_pending.end(), [](const Pending& a, const Pending& b) {
        return a.track < b.track || (a.track == b.track && (a.start < b.start || (a.start == b.start && a.id < b.id)));
    });
    if (auto b = m_store.exec("BEGIN"); !b)
        return b;
    Stmt& q = m_st->insertEvent;
    for (const Pending& p : m_pending) {
        q.bind(1, p.track).bind(2, p.start).bind(3, p.id).bind(4, p.dur).bind(5, int64_t(p.kind)).bind(6, p.nameId);
        if (p.layer >= 0)
            q.bind(7, int64_t(p.layer));
        else
            q.bindNull(7);
        if (p.op >= 0)
            q.bind(8, p.op);
        else
            q.bindNull(8);
        if (p.bytes)
            q.bind(9, p.bytes);
        else
            q.bindNull(9);
        if (p.flops)
            q.bind(10, p.flops);
        else
            q.bindNull(10);
        if (p.corr >= 0)
            q.bind(11, p.corr);
        else
            q.bindNull(11);
        const int rc = q.step();
        q.reset();
        if (rc != SQLITE_DONE) {
            (void)m_store.exec("ROLLBACK");
            return m_store.sqlError("storing an event of run " + std::to_string(m_run));
        }
    }
    // Arguments in id order: appends to their table.
    Stmt& a = m_st->insertArgs;
    std::vector<const Pending*> withArgs;
    for (const Pending& p : m_pending)
        if (p.argsLen)
            withArgs.push_back(&p);
    std::sort(withArgs.begin(), withArgs.end(), [](const Pending* x, const Pending* y) { return x->id < y->id; });
    for (const Pending* p : withArgs) {
        a.bind(1, p->id).bind(2, std::string_view(m_args).substr(size_t(p->argsAt), p->argsLen));
        const int rc = a.step();
        a.reset();
        if (rc != SQLITE_DONE) {
            (void)m_store.exec("ROLLBACK");
            return m_store.sqlError("storing event arguments of run " + std::to_string(m_run));
        }
    }
    m_pending.clear();
    m_args.clear();
    return m_store.exec("COMMIT");
}

Result<int64_t> RunWriter::intern(std::string_view s)
{
    if (auto it = m_names.find(s); it != m_names.end())
        return it->second;
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
    if (m_finished)
        return Error{m_store.m_path, "run " + std::to_string(m_run), "already finished"};
    auto nm = intern(r.name);
    if (!nm)
        return nm.error();
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
    if (auto b = m_store.exec("BEGIN"); !b)
        return b;
    auto rollback = [&](Error e) -> Result<bool> {
        (void)m_store.exec("ROLLBACK");
        return e;
    };
    Stmt scan(db, "SELECT id, start_ns, dur_ns, kind, name_id, coalesce(layer, -1) FROM events WHERE track_id = ? "
                  "ORDER BY start_ns, id");
    Stmt put(db, "INSERT INTO lod(track_id, level, bucket, start_ns, end_ns, count, longest_id, longest_dur, name_id, "
                 "kind, layer) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, nullif(?, -1))");
    Stmt drop(db, "DELETE FROM lod WHERE track_id = ? AND level = ?");
    Stmt upd(db, "UPDATE tracks SET events = ?, start_ns = ?, end_ns = ?, max_dur_ns = ?, lod_levels = ? WHERE id = ?");
    if (!scan.ok() || !put.ok() || !drop.ok() || !upd.ok())
        return rollback(m_store.sqlError("preparing the level-of-detail pass"));
    struct Bucket
    {
        int64_t index = INT64_MIN, start = 0, end = 0, count = 0, longestId = 0, longestDur = -1, nameId = 0;
        int32_t kind = 0, layer = -1;
        int64_t rows = 0;
        bool kept = true;
    };
    for (auto& entry : m_stats) {
        const int64_t trackId = entry.first; // (not a structured binding: lambdas below capture it)
        const TrackStats& st = entry.second;
        // Levels that cannot fold kMinFold events per bucket are not worth storing.
        const int64_t cap = std::max<int64_t>(1, st.events / kMinFold);
        std::array<Bucket, kLevels> b{};
        int64_t levels = 0;
        auto flush = [&](int k) -> bool {
            Bucket& x = b[size_t(k)];
            if (x.count == 0 || !x.kept)
                return true;
            if (++x.rows > cap) {
                x.kept = false;
                return true;
            }
            put.reset();
            put.bind(1, trackId)
                .bind(2, int64_t(k))
                .bind(3, x.index)
                .bind(4, x.start)
                .bind(5, x.end)
                .bind(6, x.count)
                .bind(7, x.longestId)
                .bind(8, x.longestDur)
                .bind(9, x.nameId)
                .bind(10, int64_t(x.kind))
                .bind(11, int64_t(x.layer));
            return put.step() == SQLITE_DONE;
        };
        // Levels whose one bucket covers the whole track end the ladder.
        int top = 0;
        while (top < kLevels - 1 && levelWidth(top) < std::max<int64_t>(1, st.end - st.start))
            ++top;
        // Levels finer than the track's mean spacing cannot fold kMinFold
        // events per bucket on average: they are not even tried.
        int bottom = 0;
        const double spacing = double(std::max<int64_t>(1, st.end - st.start)) / double(std::max<int64_t>(1, st.events));
        while (bottom < top && double(levelWidth(bottom)) < spacing * double(kMinFold))
            ++bottom;
        scan.reset();
        scan.bind(1, trackId);
        int rc;
        while ((rc = scan.step()) == SQLITE_ROW) {
            const int64_t id = scan.int64(0), s = scan.int64(1), d = scan.int64(2);
            for (int k = bottom; k <= top; ++k) {
                Bucket& x = b[size_t(k)];
                if (!x.kept)
                    continue;
                const int64_t idx = s >= 0 ? s / levelWidth(k) : -((-s + levelWidth(k) - 1) / levelWidth(k));
                if (idx != x.index) {
                    if (!flush(k))
                        return rollback(m_store.sqlError("storing the level-of-detail table"));
                    x.index = idx;
                    x.start = s;
                    x.end = s + d;
                    x.count = 0;
                    x.longestDur = -1;
                }
                ++x.count;
                x.end = std::max(x.end, s + d);
                if (d > x.longestDur) {
                    x.longestDur = d;
                    x.longestId = id;
                    x.nameId = scan.int64(4);
                    x.kind = scan.int32(3);
                    x.layer = scan.int32(5);
                }
            }
        }
        if (rc != SQLITE_DONE)
            return rollback(m_store.sqlError("reading events for the level-of-detail table"));
        for (int k = bottom; k <= top; ++k) {
            if (!flush(k))
                return rollback(m_store.sqlError("storing the level-of-detail table"));
            if (b[size_t(k)].kept && b[size_t(k)].rows > 0) {
                levels |= int64_t(1) << k;
            } else if (b[size_t(k)].rows > 0) {
                drop.reset();
                drop.bind(1, trackId).bind(2, int64_t(k));
                if (drop.step() != SQLITE_DONE)
                    return rollback(m_store.sqlError("pruning the level-of-detail table"));
            }
        }
        upd.reset();
        upd.bind(1, st.events)
            .bind(2, st.events ? st.start : 0)
            .bind(3, st.events ? st.end : 0)
            .bind(4, st.maxDur)
            .bind(5, levels)
            .bind(6, trackId);
        if (upd.step() != SQLITE_DONE)
            return rollback(m_store.sqlError("updating track statistics"));
    }
    Stmt done(db, "UPDATE runs SET status = 'complete', meta = CASE WHEN ?1 = '' THEN meta ELSE ?1 END WHERE id = ?2");
    done.bind(1, meta).bind(2, m_run);
    if (done.step() != SQLITE_DONE)
        return rollback(m_store.sqlError("completing run " + std::to_string(m_run)));
    if (auto c = m_store.exec("COMMIT"); !c)
        return c;
    m_finished = true;
    return true;
}

} // namespace partita
