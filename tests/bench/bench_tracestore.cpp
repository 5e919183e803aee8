// Trace store benchmarks, as JSON on stdout. Every figure is compared with a
// baseline measured in the same run on the same machine:
//  - ingest: RunWriter vs a minimal raw sqlite3 insert loop of the same rows;
//  - Kineto import: partita-cli trace import vs Python's json.load of the
//    same file (MB/s), and the import's peak RSS vs the database it makes
//    (also less the RSS of the idle CLI process, import_rss_over_db);
//  - viewport: a 10 M-event, 64-track run; query + fold per frame at every
//    zoom level, worst case;
//  - analysis: partita-cli trace stats of that run and trace diff of it and
//    a second one like it (wall time, peak RSS), vs one scan of the same
//    rows in the raw sqlite3 table;
//  - many ranks: a 256-rank run made by tests/synthranks.h from HTA's NCCL
//    trace (or, without ../shared, from a data-parallel pattern), one rank
//    slow: trace stats, trace stragglers and trace critical-path, their cost per event vs trace
//    stats' per event on the 10 M-event one-rank run.
// Usage: bench_tracestore PARTITA_CLI WORKDIR [--events N] [--traces DIR] [--viewport-only | --analysis-only]
#include "partita/profiler/chromeimport.h"
#include "partita/profiler/tracestore.h"

#include "synthranks.h"

#include <nlohmann/json.hpp>
#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <string>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

using namespace partita;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

double now()
{
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

struct Row
{
    int32_t track;
    int64_t start, dur;
    int kind;
    int name;
    int32_t layer;
};

// 64 tracks of GPU-like kernels: durations 1-60 us, gaps 0-20 us, 40 names.
std::vector<Row> makeRows(int64_t n, int tracks, uint64_t seed = 7)
{
    std::mt19937_64 rng(seed);
    std::vector<int64_t> clock(size_t(tracks), 0);
    std::vector<Row> rows;
    rows.reserve(size_t(n));
    for (int64_t i = 0; i < n; ++i) {
        const int t = int(i % tracks);
        const int64_t dur = 1000 + int64_t(rng() % 59000);
        const int64_t gap = int64_t(rng() % 20000);
        rows.push_back({t, clock[size_t(t)] + gap, dur, int(TraceKind::Kernel), int(rng() % 40), int32_t(rng() % 48)});
        clock[size_t(t)] += gap + dur;
    }
    return rows;
}

std::vector<std::string> names()
{
    std::vector<std::string> n;
    for (int i = 0; i < 40; ++i)
        n.push_back("kernel_" + std::to_string(i) + "_ampere_bf16_s16816gemm_relu_f2f_tn");
    return n;
}

// Adds the rows to `w`'s run, 64 device tracks on rank 0.
void addRows(RunWriter& w, const std::vector<Row>& rows)
{
    const auto nm = names();
    std::vector<int64_t> trackIds;
    for (int t = 0; t < 64; ++t)
        trackIds.push_back(*w.track(0, t, "stream " + std::to_string(t), true));
    TraceRecord rec;
    rec.kind = TraceKind::Kernel;
    for (const Row& r : rows) {
        rec.start_ns = r.start;
        rec.dur_ns = r.dur;
        rec.name = nm[size_t(r.name)];
        rec.layer = r.layer;
        (void)w.add(trackIds[size_t(r.track)], rec);
    }
}

// Runs a command, returns {wall seconds, peak RSS in bytes, exit code}.
struct Proc
{
    double seconds = 0;
    int64_t peak_rss = 0;
    int code = -1;
};
Proc runProcess(const std::vector<std::string>& argv)
{
    const double t0 = now();
    const pid_t pid = fork();
    if (pid == 0) {
        std::vector<char*> a;
        for (const auto& s : argv)
            a.push_back(const_cast<char*>(s.c_str()));
        a.push_back(nullptr);
        int devnull = ::open("/dev/null", O_WRONLY);
        dup2(devnull, 1);
        execv(a[0], a.data());
        _exit(127);
    }
    int status = 0;
    rusage ru{};
    wait4(pid, &status, 0, &ru);
    Proc p;
    p.seconds = now() - t0;
    p.peak_rss = int64_t(ru.ru_maxrss) * 1024;
    p.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return p;
}

json ingestBench(const std::string& dir, int64_t n)
{
    const auto rows = makeRows(n, 64);
    const auto nm = names();
    // Raw: the same rows, one prepared INSERT in one transaction, the same
    // table and index, WAL.
    const std::string rawPath = dir + "/raw.sqlite";
    fs::remove(rawPath);
    sqlite3* db = nullptr;
    sqlite3_open(rawPath.c_str(), &db);
    sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                     "CREATE TABLE events(id INTEGER PRIMARY KEY, track_id INTEGER NOT NULL, start_ns INTEGER NOT NULL,"
                     " dur_ns INTEGER NOT NULL, kind INTEGER NOT NULL, name_id INTEGER NOT NULL, layer INTEGER, op INTEGER,"
                     " bytes INTEGER, flops REAL, correlation INTEGER, args TEXT);"
                     "CREATE INDEX events_by_track ON events(track_id, start_ns);",
                 nullptr, nullptr, nullptr);
    double t0 = now();
    sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr);
    sqlite3_stmt* st = nullptr;
    sqlite3_prepare_v2(db, "INSERT INTO events(track_id, start_ns, dur_ns, kind, name_id, layer) VALUES(?, ?, ?, ?, ?, ?)",
                       -1, &st, nullptr);
    for (const Row& r : rows) {
        sqlite3_bind_int64(st, 1, r.track + 1);
        sqlite3_bind_int64(st, 2, r.start);
        sqlite3_bind_int64(st, 3, r.dur);
        sqlite3_bind_int64(st, 4, r.kind);
        sqlite3_bind_int64(st, 5, r.name + 1);
        sqlite3_bind_int64(st, 6, r.layer);
        sqlite3_step(st);
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
    const double raw = now() - t0;
    sqlite3_close(db);

    const std::string path = dir + "/ingest.partita";
    fs::remove(path);
    fs::remove(path + "-wal");
    auto store = TraceStore::open(path);
    if (!store)
        return {{"error", store.error().str()}};
    t0 = now();
    auto w = (*store)->beginRun(RunInfo{});
    addRows(**w, rows);
    const double adds = now() - t0;
    const double t1 = now();
    (void)(*w)->finish();
    const double lod = now() - t1;
    return {{"events", n},
            {"raw_sqlite_s", raw},
            {"raw_events_per_s", double(n) / raw},
            {"store_ingest_s", adds},
            {"store_events_per_s", double(n) / adds},
            {"ratio_vs_raw", raw / adds},
            {"lod_build_s", lod},
            {"store_with_lod_events_per_s", double(n) / (adds + lod)},
            {"ratio_with_lod_vs_raw", raw / (adds + lod)},
            {"db_bytes", int64_t(fs::file_size(path))}};
}

json viewportBench(const std::string& dir)
{
    // Reuses the ingest database when it holds 10 M events, else makes one.
    const std::string path = dir + "/ingest.partita";
    auto store = TraceStore::open(path);
    if (!store)
        return {{"error", store.error().str()}};
    auto runs = (*store)->runs();
    if (!runs || runs->empty())
        return {{"error", "no run"}};
    const RunInfo run = runs->back();
    auto tracks = (*store)->tracks(run.id);
    const int64_t span = run.end_ns - run.start_ns;
    const double pixels = 1920;
    std::mt19937_64 rng(3);
    json levels = json::array();
    double worstFrame = 0, worstTrack = 0;
    for (double window = double(span); window >= 10'000; window /= 4) {
        std::vector<double> frames;
        int64_t items = 0;
        double trackMax = 0;
        for (int f = 0; f < 10; ++f) {
            const int64_t t0 = run.start_ns + int64_t(double(rng() % 1000000) / 1e6 * std::max(0.0, double(span) - window));
            const int64_t t1 = t0 + int64_t(window);
            const double f0 = now();
            for (const auto& t : *tracks) {
                const double q0 = now();
                auto v = (*store)->viewport(t.id, t0, t1, window / pixels);
                trackMax = std::max(trackMax, now() - q0);
                if (v)
                    items += int64_t(v->size());
            }
            frames.push_back(now() - f0);
        }
        std::sort(frames.begin(), frames.end());
        worstFrame = std::max(worstFrame, frames.back());
        worstTrack = std::max(worstTrack, trackMax);
        levels.push_back({{"window_s", window * 1e-9},
                          {"median_frame_ms", frames[frames.size() / 2] * 1e3},
                          {"worst_frame_ms", frames.back() * 1e3},
                          {"worst_track_ms", trackMax * 1e3},
                          {"items_per_frame", double(items) / double(frames.size())}});
    }
    return {{"events", run.events},
            {"tracks", tracks->size()},
            {"pixels", pixels},
            {"levels", levels},
            {"worst_frame_ms_64_tracks", worstFrame * 1e3},
            {"worst_single_track_ms", worstTrack * 1e3}};
}

json importBench(const std::string& cli, const std::string& dir, const std::string& traces)
{
    json out = json::array();
    // The largest real trace, plain and gzip, and a synthetic one 10x its size.
    std::vector<std::pair<std::string, std::string>> files;
    const std::string gz = traces + "/trace_diff-control-control.json.gz";
    if (!fs::exists(gz))
        return out;
    const std::string plain = dir + "/trace_diff-control.json";
    std::system(("gzip -dc '" + gz + "' > '" + plain + "'").c_str());
    files.emplace_back("trace_diff-control (real, plain)", plain);
    files.emplace_back("trace_diff-control (real, gzip)", gz);
    // Synthetic: the real events repeated 10 times at the same timestamps, so
    // that every track's blocks overlap (the readers' worst case).
    const std::string big = dir + "/synthetic-10x.json";
    {
        std::ifstream in(plain);
        std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        const size_t a = text.find("\"traceEvents\"");
        const size_t open = text.find('[', a);
        const size_t close = text.rfind(']');
        const std::string events = text.substr(open + 1, close - open - 1);
        std::ofstream o(big);
        o << text.substr(0, open + 1);
        for (int k = 0; k < 10; ++k)
            o << (k ? "," : "") << events;
        o << text.substr(close);
    }
    files.emplace_back("synthetic 10x (plain)", big);
    // What the CLI process holds before it reads anything (libraries, the
    // ONNX and CUDA runtimes): on a small trace it outweighs the database.
    const Proc idle = runProcess({cli, "--version"});
    for (const auto& [label, file] : files) {
        const std::string db = dir + "/import.partita";
        fs::remove(db);
        fs::remove(db + "-wal");
        fs::remove(db + "-shm");
        // Python reads the same bytes: json.load on the plain file, through gzip for .gz.
        const std::string py = file.size() > 3 && file.substr(file.size() - 3) == ".gz"
                                   ? "import gzip,json,sys; json.load(gzip.open(sys.argv[1]))"
                                   : "import json,sys; json.load(open(sys.argv[1]))";
        // Median of three, the two taking turns, so that a burst of load on
        // the shared machine (or the file just written) does not decide.
        std::vector<Proc> imps, pys;
        for (int rep = 0; rep < 3; ++rep) {
            fs::remove(db);
            fs::remove(db + "-wal");
            fs::remove(db + "-shm");
            imps.push_back(runProcess({cli, "trace", "import", file, "--project", db}));
            pys.push_back(runProcess({"/usr/bin/python3", "-c", py, file}));
        }
        auto median = [](std::vector<Proc> v) {
            std::sort(v.begin(), v.end(), [](const Proc& a, const Proc& b) { return a.seconds < b.seconds; });
            return v[v.size() / 2];
        };
        const Proc imp = median(imps);
        const Proc pyRun = median(pys);
        const double mb = double(fs::file_size(file.substr(file.size() - 3) == ".gz" ? plain : file)) / 1e6;
        const int64_t dbBytes = fs::exists(db) ? int64_t(fs::file_size(db)) : 0;
        out.push_back({{"file", label},
                       {"json_mb", mb},
                       {"partita_s", imp.seconds},
                       {"partita_mb_per_s", mb / imp.seconds},
                       {"partita_exit", imp.code},
                       {"python_json_load_s", pyRun.seconds},
                       {"python_mb_per_s", mb / pyRun.seconds},
                       {"speedup_vs_python", pyRun.seconds / imp.seconds},
                       {"peak_rss_mb", double(imp.peak_rss) / 1e6},
                       {"db_mb", double(dbBytes) / 1e6},
                       {"peak_rss_over_db", dbBytes ? double(imp.peak_rss) / double(dbBytes) : 0.0},
                       {"cli_idle_rss_mb", double(idle.peak_rss) / 1e6},
                       {"import_rss_over_db", dbBytes ? double(imp.peak_rss - idle.peak_rss) / double(dbBytes) : 0.0},
                       {"peak_rss_over_json", double(imp.peak_rss) / (mb * 1e6)}});
    }
    return out;
}

// The analyses on the 10 M-event run (and a second, for the diff): each a
// process as a user runs it. Baseline: one scan of the same rows, in the
// raw table ingestBench made (every column the analysis reads, in table
// order: the cheapest read of those rows there is).
json analysisBench(const std::string& cli, const std::string& dir, int64_t n)
{
    const std::string path = dir + "/ingest.partita";
    sqlite3* db = nullptr;
    sqlite3_open((dir + "/raw.sqlite").c_str(), &db);
    sqlite3_stmt* st = nullptr;
    sqlite3_prepare_v2(db, "SELECT track_id, start_ns, dur_ns, kind, name_id, layer FROM events",
                       -1, &st, nullptr);
    double t0 = now();
    int64_t rows = 0, sum = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        sum += sqlite3_column_int64(st, 2) + sqlite3_column_int64(st, 5);
        ++rows;
    }
    const double scan = now() - t0;
    sqlite3_finalize(st);
    sqlite3_close(db);
    const Proc stats = runProcess({cli, "trace", "stats", "--project", path, "--run", "1", "--json"});
    // A second run like the first (another seed), written once.
    {
        auto store = TraceStore::open(path);
        if (!store)
            return {{"error", store.error().str()}};
        auto runs = (*store)->runs();
        if (runs && runs->size() < 2) {
            auto w = (*store)->beginRun(RunInfo{});
            addRows(**w, makeRows(n, 64, 11));
            (void)(*w)->finish();
        }
    }
    const Proc diff = runProcess({cli, "trace", "diff", "--project", path, "--run", "1", "--run", "2", "--json"});
    return {{"events_per_run", n},
            {"raw_scan_rows", rows},
            {"raw_scan_s", scan},
            {"raw_scan_checksum", sum},
            {"stats_s", stats.seconds},
            {"stats_peak_rss_mb", double(stats.peak_rss) / 1e6},
            {"stats_exit", stats.code},
            {"stats_over_raw_scan", stats.seconds / scan},
            {"diff_s", diff.seconds},
            {"diff_peak_rss_mb", double(diff.peak_rss) / 1e6},
            {"diff_exit", diff.code},
            {"diff_over_raw_scan", diff.seconds / scan}};
}

json manyRanksBench(const std::string& cli, const std::string& dir, const std::string& traces, double statsNsPerEvent)
{
    const std::string path = dir + "/ranks256.partita";
    fs::remove(path);
    auto store = TraceStore::open(path);
    if (!store)
        return {{"error", store.error().str()}};
    std::vector<TraceRecord> source;
    std::string from = "data-parallel pattern (48 layers, 8 steps)";
    const std::string real = traces + "/nccl_parser_config-nccl_data.json.gz";
    if (fs::exists(real)) {
        auto imp = importChromeTrace(**store, {real});
        auto src = imp ? test::sourceFromRun(**store, imp->run_id) : Result<std::vector<TraceRecord>>(imp.error());
        if (!src)
            return {{"error", src.error().str()}};
        source = std::move(*src);
        from = "nccl_parser_config-nccl_data.json.gz";
    } else {
        source = test::dataParallelPattern(48, 8);
    }
    std::map<std::string, int64_t> compute;
    for (const TraceRecord& r : source)
        if (isDeviceKind(r.kind) && classifyKernel(r.name, r.kind) == KernelClass::Computation)
            compute[r.name] += r.dur_ns;
    test::SynthOptions o;
    o.ranks = 256;
    o.slow_rank = 201;
    o.slow_kernel = std::max_element(compute.begin(), compute.end(), [](auto& a, auto& b) { return a.second < b.second; })->first;
    o.slow_factor = 1.3;
    o.max_skew_ns = 500'000;
    o.jitter = 0.02;
    const double t0 = now();
    auto run = test::synthesizeRanks(**store, source, o);
    if (!run)
        return {{"error", run.error().str()}};
    const double written = now() - t0;
    auto runInfo = (*store)->run(run->run_id);
    const int64_t events = runInfo ? runInfo->events : 0;
    store->reset();
    const std::string id = std::to_string(run->run_id);
    const Proc stats = runProcess({cli, "trace", "stats", "--project", path, "--run", id, "--json"});
    const Proc strag = runProcess({cli, "trace", "stragglers", "--project", path, "--run", id, "--json"});
    const Proc crit = runProcess({cli, "trace", "critical-path", "--project", path, "--run", id, "--json", "--no-segments"});
    const Proc heat = runProcess({cli, "trace", "heatmap", "--project", path, "--run", id, "--json", "--metric", "compute", "--top", "3"});
    auto perEvent = [&](const Proc& p) { return events ? p.seconds * 1e9 / double(events) : 0.0; };
    return {{"source", from},
            {"ranks", o.ranks},
            {"events", events},
            {"synthesize_s", written},
            {"stats_s", stats.seconds},
            {"stats_peak_rss_mb", double(stats.peak_rss) / 1e6},
            {"stats_exit", stats.code},
            {"stragglers_s", strag.seconds},
            {"stragglers_peak_rss_mb", double(strag.peak_rss) / 1e6},
            {"stragglers_exit", strag.code},
            {"critical_path_s", crit.seconds},
            {"critical_path_peak_rss_mb", double(crit.peak_rss) / 1e6},
            {"critical_path_exit", crit.code},
            {"heatmap_s", heat.seconds},
            {"heatmap_peak_rss_mb", double(heat.peak_rss) / 1e6},
            {"heatmap_exit", heat.code},
            {"heatmap_per_event_vs_one_rank_stats", statsNsPerEvent > 0 ? perEvent(heat) / statsNsPerEvent : 0.0},
            {"critical_path_per_event_vs_one_rank_stats", statsNsPerEvent > 0 ? perEvent(crit) / statsNsPerEvent : 0.0},
            {"stats_ns_per_event", perEvent(stats)},
            {"stats_per_event_vs_one_rank", statsNsPerEvent > 0 ? perEvent(stats) / statsNsPerEvent : 0.0},
            {"stragglers_per_event_vs_one_rank_stats", statsNsPerEvent > 0 ? perEvent(strag) / statsNsPerEvent : 0.0}};
}

// Import plus analysis of each real trace, as a user runs them (two
// processes), to set beside HTA's load-and-analyze times in the traces'
// README (measured on this machine).
json analyzeBench(const std::string& cli, const std::string& dir, const std::string& traces)
{
    json out = json::array();
    for (const char* f : {"nccl_parser_config-nccl_data.json.gz", "trace_diff-control-control.json.gz",
                          "trace_diff-test-test.json.gz", "trace_compare-base-base.json.gz", "trace_compare-test-test.json.gz"}) {
        const std::string file = traces + "/" + f;
        if (!fs::exists(file))
            continue;
        const std::string db = dir + "/analyze.partita";
        fs::remove(db);
        fs::remove(db + "-wal");
        fs::remove(db + "-shm");
        const Proc imp = runProcess({cli, "trace", "import", file, "--project", db});
        const Proc st = runProcess({cli, "trace", "stats", "--project", db, "--run", "1", "--json"});
        out.push_back({{"file", f},
                       {"import_s", imp.seconds},
                       {"stats_s", st.seconds},
                       {"total_s", imp.seconds + st.seconds},
                       {"exit", imp.code == 0 && st.code == 0 ? 0 : 1}});
    }
    return out;
}

} // namespace

int main(int argc, char** argv)
{
    if (argc < 3) {
        std::cerr << "usage: bench_tracestore PARTITA_CLI WORKDIR [--events N] [--traces DIR] [--viewport-only | --analysis-only]\n";
        return 2;
    }
    const std::string cli = argv[1], dir = argv[2];
    int64_t events = 10'000'000;
    std::string traces = "../shared/data/traces";
    bool viewportOnly = false, analysisOnly = false; // reuse WORKDIR/ingest.partita (and raw.sqlite) from an earlier run
    for (int i = 3; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--viewport-only")
            viewportOnly = true;
        else if (a == "--analysis-only")
            analysisOnly = true;
        else if (a == "--events" && i + 1 < argc)
            events = std::stoll(argv[++i]);
        else if (a == "--traces" && i + 1 < argc)
            traces = argv[++i];
    }
    if (analysisOnly) {
        const json a = analysisBench(cli, dir, events);
        std::cout << json{{"analysis", a}, {"many_ranks", manyRanksBench(cli, dir, traces, a.value("stats_s", 0.0) * 1e9 / double(events))}}.dump(2)
                  << "\n";
        return 0;
    }
    if (viewportOnly) {
        std::cout << json{{"viewport", viewportBench(dir)}}.dump(2) << "\n";
        return 0;
    }
    fs::create_directories(dir);
    json j;
    j["ingest"] = ingestBench(dir, events);
    std::cerr << "ingest done\n";
    j["viewport"] = viewportBench(dir);
    std::cerr << "viewport done\n";
    j["analysis"] = analysisBench(cli, dir, events);
    std::cerr << "analysis done\n";
    j["many_ranks"] = manyRanksBench(cli, dir, traces, j["analysis"].value("stats_s", 0.0) * 1e9 / double(events));
    std::cerr << "many ranks done\n";
    j["kineto_import"] = importBench(cli, dir, traces);
    j["import_and_analyze"] = analyzeBench(cli, dir, traces);
    std::cout << j.dump(2) << "\n";
    return 0;
}
