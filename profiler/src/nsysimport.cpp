#include "partita/profiler/nsysimport.h"

#include "sqlitestmt.h"

#include <nlohmann/json.hpp>
#include <sqlite3.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <unordered_map>

namespace partita {

using detail::Stmt;

bool isSqliteFile(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    char head[16] = {};
    in.read(head, sizeof head);
    return in.gcount() == 16 && std::memcmp(head, "SQLite format 3\0", 16) == 0;
}

namespace {

// CUPTI_ActivityMemcpyKind (cupti_activity.h).
std::string memcpyName(int64_t kind)
{
    static const char* names[] = {"Memcpy Unknown", "Memcpy HtoD", "Memcpy DtoH", "Memcpy HtoA", "Memcpy AtoH", "Memcpy AtoA",
                                  "Memcpy AtoD",    "Memcpy DtoA", "Memcpy DtoD", "Memcpy HtoH", "Memcpy PtoP"};
    return kind >= 0 && kind < 11 ? names[kind] : "Memcpy kind " + std::to_string(kind);
}

class Export
{
public:
    ~Export()
    {
        if (m_db)
            sqlite3_close_v2(m_db);
    }

    Result<bool> open(const std::string& path)
    {
        m_path = path;
        if (!isSqliteFile(path))
            return Error{path, {}, "not an SQLite file (an Nsight Systems export is made with `nsys export --type sqlite`)"};
        // Read-only and immutable: the export is never written, even in a read-only folder.
        const std::string uri = "file:" + path + "?mode=ro&immutable=1";
        if (sqlite3_open_v2(uri.c_str(), &m_db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, nullptr) != SQLITE_OK)
            return Error{path, {}, std::string("cannot open: ") + (m_db ? sqlite3_errmsg(m_db) : "out of memory")};
        Stmt t(m_db, "SELECT name FROM sqlite_master WHERE type = 'table'");
        if (!t.ok())
            return Error{path, {}, std::string("unreadable database: ") + sqlite3_errmsg(m_db)};
        while (t.step() == SQLITE_ROW)
            m_tables.insert(t.text(0));
        return true;
    }

    bool has(const std::string& table) const { return m_tables.count(table) > 0; }

    std::set<std::string> columns(const std::string& table) const
    {
        std::set<std::string> out;
        Stmt q(m_db, ("PRAGMA table_info('" + table + "')").c_str());
        while (q.step() == SQLITE_ROW)
            out.insert(q.text(1));
        return out;
    }

    // "2.9.1 (EXPORT_META_DATA)"; an error when neither metadata table exists.
    Result<std::string> schema() const
    {
        for (const char* table : {"META_DATA_EXPORT", "EXPORT_META_DATA"}) {
            if (!has(table))
                continue;
            Stmt q(m_db, (std::string("SELECT value FROM ") + table + " WHERE name = 'EXPORT_SCHEMA_VERSION'").c_str());
            std::string v = q.step() == SQLITE_ROW ? q.text(0) : std::string("unknown");
            return v + " (" + table + ")";
        }
        return Error{m_path, {}, "not an Nsight Systems export: no META_DATA_EXPORT or EXPORT_META_DATA table"};
    }

    std::string str(int64_t id)
    {
        if (auto it = m_strings.find(id); it != m_strings.end())
            return it->second;
        std::string s;
        if (has("StringIds")) {
            Stmt q(m_db, "SELECT value FROM StringIds WHERE id = ?");
            q.bind(1, id);
            if (q.step() == SQLITE_ROW)
                s = q.text(0);
        }
        return m_strings.emplace(id, s).first->second;
    }

    sqlite3* db() const { return m_db; }

private:
    std::string m_path;
    sqlite3* m_db = nullptr;
    std::set<std::string> m_tables;
    std::unordered_map<int64_t, std::string> m_strings;
};

// One export's events into the run, as `rank`: GPU tracks per (device,
// stream), host tracks per thread, each table a method.
class FileReader
{
public:
    FileReader(Export& x, const std::string& file, int rank, RunWriter& w, NsysImportReport& report)
        : m_x(x), m_file(file), m_rank(rank), m_w(w), m_report(report)
    {
    }

    Result<bool> read()
    {
        if (m_x.has("ThreadNames")) {
            Stmt q(m_x.db(), "SELECT globalTid, nameId FROM ThreadNames");
            while (q.step() == SQLITE_ROW)
                m_threadNames[q.int64(0)] = m_x.str(q.int64(1));
        }
        for (auto part : {&FileReader::kernels, &FileReader::copies, &FileReader::runtime, &FileReader::nvtx})
            if (auto r = (this->*part)(); !r)
                return r;
        if (m_x.has("TARGET_INFO_GPU")) {
            Stmt q(m_x.db(), "SELECT name FROM TARGET_INFO_GPU");
            while (q.step() == SQLITE_ROW)
                m_report.gpus.push_back(q.text(0));
        }
        return true;
    }

private:
    Result<int64_t> gpuTrack(int64_t device, int64_t stream)
    {
        auto it = m_gpuTracks.find({device, stream});
        if (it != m_gpuTracks.end())
            return it->second;
        auto id = m_w.track(m_rank, m_nextTrack++, "GPU " + std::to_string(device) + " stream " + std::to_string(stream), true);
        if (!id)
            return id;
        m_gpuTracks[{device, stream}] = *id;
        return *id;
    }

    Result<int64_t> threadTrack(int64_t tid)
    {
        auto it = m_threadTracks.find(tid);
        if (it != m_threadTracks.end())
            return it->second;
        // globalTid packs the process and thread ids; the low 24 bits are the thread.
        std::string name = m_threadNames.count(tid) && !m_threadNames[tid].empty() ? m_threadNames[tid]
                                                                                  : "thread " + std::to_string(tid & 0xFFFFFF);
        auto id = m_w.track(m_rank, m_nextTrack++, name, false);
        if (!id)
            return id;
        m_threadTracks[tid] = *id;
        return *id;
    }

    Result<bool> put(Result<int64_t> track, const TraceRecord& r)
    {
        if (!track)
            return track.error();
        if (auto a = m_w.add(*track, r); !a)
            return a;
        ++m_report.counts[std::string(traceKindName(r.kind))];
        return true;
    }

    void missing(const std::string& table) { m_report.warnings.push_back(m_file + ": no " + table + " table"); }

    Result<bool> kernels()
    {
        const std::string kernels = "CUPTI_ACTIVITY_KIND_KERNEL";
        if (!m_x.has(kernels)) {
            missing(kernels);
            return true;
        }
        const auto cols = m_x.columns(kernels);
        const std::string nameCol = cols.count("demangledName") ? "demangledName"
                                    : cols.count("shortName")   ? "shortName"
                                                                : "mangledName";
        for (const char* need : {"start", "end", "deviceId", "streamId"})
            if (!cols.count(need))
                return Error{m_file, kernels, std::string("no column '") + need + "'"};
        const std::string sql = "SELECT start, end, deviceId, streamId, " +
                                std::string(cols.count("correlationId") ? "correlationId" : "-1") + ", " +
                                (cols.count(nameCol) ? nameCol : std::string("NULL")) + " FROM " + kernels + " ORDER BY start";
        Stmt q(m_x.db(), sql.c_str());
        while (q.step() == SQLITE_ROW) {
            TraceRecord r;
            r.kind = TraceKind::Kernel;
            r.start_ns = q.int64(0);
            r.dur_ns = q.int64(1) - q.int64(0);
            r.correlation = q.int64(4);
            r.name = m_x.str(q.int64(5));
            if (r.name.empty())
                r.name = "kernel";
            if (r.dur_ns < 0) {
                m_report.warnings.push_back(m_file + ": a kernel ends before it starts; skipped");
                continue;
            }
            if (auto p = put(gpuTrack(q.int64(2), q.int64(3)), r); !p)
                return p;
        }
        return true;
    }

    // Memory copies and sets.
    Result<bool> copies()
    {
        for (const std::string table : {"CUPTI_ACTIVITY_KIND_MEMCPY", "CUPTI_ACTIVITY_KIND_MEMSET"}) {
            if (!m_x.has(table)) {
                missing(table);
                continue;
            }
            const bool copy = table.find("MEMCPY") != std::string::npos;
            const auto cols = m_x.columns(table);
            const std::string sql = "SELECT start, end, deviceId, streamId, " +
                                    std::string(cols.count("correlationId") ? "correlationId" : "-1") + ", " +
                                    (cols.count("bytes") ? "bytes" : "0") + ", " +
                                    (copy && cols.count("copyKind") ? "copyKind" : "0") + " FROM " + table + " ORDER BY start";
            Stmt q(m_x.db(), sql.c_str());
            if (!q.ok())
                return Error{m_file, table, sqlite3_errmsg(m_x.db())};
            while (q.step() == SQLITE_ROW) {
                TraceRecord r;
                r.kind = copy ? TraceKind::Memcpy : TraceKind::Memset;
                r.start_ns = q.int64(0);
                r.dur_ns = std::max<int64_t>(0, q.int64(1) - q.int64(0));
                r.correlation = q.int64(4);
                r.bytes = q.int64(5);
                r.name = copy ? memcpyName(q.int64(6)) : "Memset";
                if (auto p = put(gpuTrack(q.int64(2), q.int64(3)), r); !p)
                    return p;
            }
        }
        return true;
    }

    // CUDA runtime calls.
    Result<bool> runtime()
    {
        const std::string runtime = "CUPTI_ACTIVITY_KIND_RUNTIME";
        if (!m_x.has(runtime)) {
            missing(runtime);
            return true;
        }
        Stmt q(m_x.db(), ("SELECT start, end, globalTid, correlationId, nameId FROM " + runtime + " ORDER BY start").c_str());
        if (!q.ok())
            return Error{m_file, runtime, sqlite3_errmsg(m_x.db())};
        while (q.step() == SQLITE_ROW) {
            TraceRecord r;
            r.kind = TraceKind::Runtime;
            r.start_ns = q.int64(0);
            r.dur_ns = std::max<int64_t>(0, q.int64(1) - q.int64(0));
            r.correlation = q.int64(3);
            r.name = m_x.str(q.int64(4));
            if (auto p = put(threadTrack(q.int64(2)), r); !p)
                return p;
        }
        return true;
    }

    // NVTX: push/pop and start/end ranges (eventType 59, 60) and marks (34);
    // domain and naming records are not timeline events.
    Result<bool> nvtx()
    {
        if (!m_x.has("NVTX_EVENTS")) {
            missing("NVTX_EVENTS");
            return true;
        }
        const auto cols = m_x.columns("NVTX_EVENTS");
        const std::string sql = std::string("SELECT start, end, eventType, text, ") + (cols.count("textId") ? "textId" : "NULL") +
                                ", globalTid FROM NVTX_EVENTS ORDER BY start";
        Stmt q(m_x.db(), sql.c_str());
        if (!q.ok())
            return Error{m_file, "NVTX_EVENTS", sqlite3_errmsg(m_x.db())};
        int64_t other = 0;
        while (q.step() == SQLITE_ROW) {
            const int64_t type = q.int64(2);
            if (type != 59 && type != 60 && type != 34) {
                ++other;
                continue;
            }
            TraceRecord r;
            r.kind = TraceKind::Annotation;
            r.start_ns = q.int64(0);
            r.dur_ns = type == 34 ? 0 : std::max<int64_t>(0, q.int64(1) - q.int64(0));
            r.name = q.text(3);
            if (r.name.empty())
                r.name = m_x.str(q.int64(4));
            if (r.name.empty())
                r.name = "NVTX range";
            if (auto p = put(threadTrack(q.int64(5)), r); !p)
                return p;
        }
        if (other)
            m_report.warnings.push_back(m_file + ": " + std::to_string(other) +
                                        " NVTX records that are not ranges or marks (domains, names) not stored");
        return true;
    }

    Export& m_x;
    const std::string& m_file;
    const int m_rank;
    RunWriter& m_w;
    NsysImportReport& m_report;
    std::map<std::pair<int64_t, int64_t>, int64_t> m_gpuTracks; // (device, stream) -> track id
    std::map<int64_t, int64_t> m_threadTracks;                   // globalTid -> track id
    std::unordered_map<int64_t, std::string> m_threadNames;
    int32_t m_nextTrack = 0;
};

} // namespace

Result<NsysImportReport> importNsysSqlite(TraceStore& store, const std::vector<std::string>& files,
                                          const NsysImportOptions& options)
{
    if (files.empty())
        return Error{{}, {}, "no Nsight Systems export given"};
    if (options.rank && files.size() > 1)
        return Error{{}, "--rank", "a rank applies to one file; several files take ranks in their order"};
    // Check every file before writing anything.
    std::vector<std::unique_ptr<Export>> exports;
    NsysImportReport report;
    for (const auto& f : files) {
        auto e = std::make_unique<Export>();
        if (auto r = e->open(f); !r)
            return r.error();
        auto v = e->schema();
        if (!v)
            return v.error();
        if (v->rfind("2.", 0) != 0 && v->rfind("3.", 0) != 0)
            report.warnings.push_back(f + ": export schema " + *v + " is newer than the 2.x and 3.x this importer knows");
        report.schema.push_back(*v);
        exports.push_back(std::move(e));
    }
    RunInfo info;
    info.name = options.name.empty() ? std::filesystem::path(files.front()).filename().string() : options.name;
    info.kind = RunKind::Imported;
    for (const auto& f : files)
        info.source += (info.source.empty() ? "" : " ") + f;
    auto w = store.beginRun(info);
    if (!w)
        return w.error();
    report.run_id = (*w)->runId();
    auto abandon = [&](Error e) -> Result<NsysImportReport> {
        w->reset();
        (void)store.deleteRun(report.run_id);
        return e;
    };
    for (size_t fi = 0; fi < exports.size(); ++fi)
        if (auto r = FileReader(*exports[fi], files[fi], options.rank ? *options.rank : int(fi), **w, report).read(); !r)
            return abandon(r.error());
    const std::string meta = nlohmann::json{{"nsys_schema", report.schema}, {"gpus", report.gpus}}.dump();
    if (auto f = (*w)->finish(meta); !f)
        return abandon(f.error());
    return report;
}

} // namespace partita
