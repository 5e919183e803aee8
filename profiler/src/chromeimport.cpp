#include "partita/profiler/chromeimport.h"

#include "rankfiles.h"

#include "chromefields.h"
#include "chromescanner.h"

#include <simdjson.h>
#include <zlib.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <future>
#include <mutex>
#include <system_error>
#include <memory>
#include <optional>
#include <set>
#include <unordered_map>

namespace partita {

namespace fs = std::filesystem;
namespace od = simdjson::ondemand;
using detail::Batch;
using detail::Parsed;
using detail::Scanner;
using namespace detail; // chromefields.h
using namespace std::string_view_literals;

namespace {

struct Warnings
{
    std::map<std::string, int64_t> counts;
    void add(const std::string& what, int64_t n = 1) { counts[what] += n; }
};

// Reads of the file (decompressed), and the elements a batch gathers before
// it is handed to the helper thread: three batches are alive at a time (being
// filled, parsed, stored), so they are kept small for the import's peak memory.
constexpr size_t kReadBytes = size_t(256) << 10;
constexpr size_t kBatchBytes = size_t(512) << 10;

// Reads one file into the run under a provisional rank.
class FileImporter
{
public:
    // `writeLock`: held while this file's events go into `w`, when other
    // files are read into it at the same time (null: this one alone).
    FileImporter(RunWriter& w, const std::string& path, int32_t provisionalRank, TraceImportReport& report,
                 const std::atomic<bool>* cancel, std::mutex* writeLock = nullptr)
        : m_w(w), m_path(path), m_rank(provisionalRank), m_report(report), m_cancel(cancel), m_writeLock(writeLock)
    {
    }

    std::optional<int> rank;  // from distributedInfo
    std::optional<int> world; // distributedInfo.world_size, where given
    std::vector<std::pair<int32_t, int>> spread; // Partita's export of several ranks: track number -> rank (its pid)

    Result<bool> run()
    {
        gzFile f = gzopen(m_path.c_str(), "rb");
        if (!f)
            return Error{m_path, {}, std::string("cannot open: ") + std::strerror(errno)};
        struct Close
        {
            gzFile f;
            ~Close() { gzclose(f); }
        } close{f};
        gzbuffer(f, 1 << 18);
        std::vector<char> buf(kReadBytes);
        Scanner sc;
        // The batch on the helper thread, and a spare whose buffers the next one reuses.
        auto parsing = std::make_unique<Batch>(), spare = std::make_unique<Batch>();
        // Declared after the batches: destroyed first, which waits for the
        // helper thread, whichever way this function returns.
        std::future<void> inFlight;
        // Hands the scanner's whole elements to the helper thread and stores
        // the batch it parsed before, if any.
        auto handOff = [&]() -> Result<bool> {
            std::unique_ptr<Batch> done;
            if (inFlight.valid()) {
                inFlight.get();
                done = std::move(parsing);
                parsing = std::move(spare);
            }
            if (sc.complete > 0) {
                if (!parsing)
                    parsing = std::make_unique<Batch>();
                sc.take(*parsing);
                auto job = [this, b = parsing.get()] { parse(*b); };
                try {
                    inFlight = std::async(std::launch::async, job);
                } catch (const std::system_error&) { // no thread to be had: parsed when waited for
                    inFlight = std::async(std::launch::deferred, job);
                }
            }
            if (!done)
                return true;
            auto r = store(*done);
            spare = std::move(done);
            return r;
        };
        for (;;) {
            if (m_cancel && m_cancel->load())
                return Error{m_path, {}, "import cancelled"};
            const int n = gzread(f, buf.data(), unsigned(buf.size()));
            if (n < 0) {
                int code = 0;
                std::string msg = gzerror(f, &code);
                return Error{m_path, "byte " + std::to_string(sc.offset()), "unreadable compressed data (" + msg + ")"};
            }
            if (n == 0) {
                int code = 0;
                const char* msg = gzerror(f, &code);
                if (code != Z_OK && code != Z_STREAM_END)
                    return Error{m_path, "byte " + std::to_string(sc.offset()),
                                 "truncated or corrupt gzip (" + std::string(msg) + ")"};
                break;
            }
            if (!sc.feed(buf.data(), size_t(n)))
                return Error{m_path, "byte " + std::to_string(sc.offset()), sc.error()};
            if (sc.complete >= kBatchBytes)
                if (auto r = handOff(); !r)
                    return r;
        }
        m_report.bytes_read += sc.offset();
        if (sc.empty())
            return Error{m_path, {}, "empty file: no trace events"};
        if (!sc.finished())
            return Error{m_path, "byte " + std::to_string(sc.offset()),
                         "the JSON ends early (truncated file?): an object or array is not closed"};
        if (!sc.sawEvents())
            return Error{m_path, {}, "no \"traceEvents\" array: not a Chrome trace"};
        // The last elements, then the batch they follow.
        for (int k = 0; k < 2; ++k)
            if (auto r = handOff(); !r)
                return r;
        if (sc.notObjects)
            m_warn.add("array elements that are not event objects, skipped", sc.notObjects);
        if (auto r = readSkeleton(sc.skeleton); !r)
            return r;
        return finishFile();
    }

    Warnings& warnings() { return m_warn; }

private:
    struct Open
    {
        std::string name, args;
        TraceKind kind;
        int64_t start;
    };
    struct TrackInfo
    {
        int64_t id = 0;
        int32_t number = 0;
        bool gpu = false;
        bool partita = false; // written by Partita (events carry partita_kind): its thread names are track names
        std::string pid, tid;
        int64_t stream = -1;
    };

    // On the helper thread: reads the batch's elements out (touches only the
    // batch and the parser).
    void parse(Batch& b)
    {
        b.events.clear();
        b.strings.clear();
        b.error.reset();
        if (b.length == 0)
            return;
        b.text.append(simdjson::SIMDJSON_PADDING, ' ');
        const char* end = b.text.data() + b.text.size();
        od::document_stream stream;
        const size_t window = std::max<size_t>(size_t(1) << 18, b.largest + 64);
        // No stage-1 worker thread of simdjson's own: it waits for work
        // spinning in sched_yield, which cost more than it saved (0.57 s vs
        // 0.39 s median of 7 imports of a 35 MB Kineto trace on the 2-core
        // development machine).
        m_parser.threaded = false;
        auto err = m_parser.iterate_many(b.text.data(), b.length, window).get(stream);
        if (err) {
            b.error = Error{m_path, {}, std::string("JSON: ") + simdjson::error_message(err)};
            return;
        }
        for (auto it = stream.begin(); it != stream.end(); ++it) {
            auto docRef = *it;
            if (docRef.error()) {
                b.error = parseError(b, it.current_index(), simdjson::error_message(docRef.error()));
                return;
            }
            Parsed e;
            if (auto r = read(docRef.value_unsafe(), end, b, e); !r) {
                b.error = parseError(b, it.current_index(), r.error().message);
                return;
            }
            b.events.push_back(e);
        }
        if (stream.truncated_bytes())
            b.error = Error{m_path, {}, "an event object is cut short"};
    }

    Error parseError(const Batch& b, size_t batchPos, const std::string& what) const
    {
        auto it = std::upper_bound(b.starts.begin(), b.starts.end(), std::make_pair(batchPos, INT64_MAX));
        const int64_t off = it == b.starts.begin() ? 0 : std::prev(it)->second;
        return Error{m_path, "event at byte " + std::to_string(off), what};
    }

    static void keep(Batch& b, std::string_view s, uint32_t (&at)[2])
    {
        at[0] = uint32_t(b.strings.size());
        at[1] = uint32_t(s.size());
        b.strings.append(s);
    }
    static void keepRaw(Batch& b, od::value v, uint32_t (&at)[2]) { keep(b, trimToken(v.raw_json_token()), at); }

    // One event element, on the helper thread.
    Result<bool> read(od::document_reference doc, const char* end, Batch& b, Parsed& e)
    {
        od::object obj;
        if (doc.get_object().get(obj))
            return Error{{}, {}, "an event is not a JSON object"};
        for (auto fieldResult : obj) {
            od::field field;
            if (std::move(fieldResult).get(field))
                return Error{{}, {}, "unreadable key"};
            std::string_view key;
            if (!keyOf(field, end, key))
                return Error{{}, {}, "unreadable key"};
            od::value v = field.value();
            const Field f = fieldOf(key);
            if (f == Field::Other)
                continue;
            std::string_view s;
            if (f == Field::Ph) {
                if (v.get_string().get(s))
                    return Error{{}, {}, "\"ph\" is not a string"};
                keep(b, s, e.ph);
            } else if (f == Field::Cat) {
                if (v.get_string().get(s))
                    s = {};
                e.hasCat = true;
                e.catKind = kindFromCategory(s, e.catGpu);
                e.catTrace = s == "Trace"sv; // Kineto's whole-trace span
                e.catGpuAnnotation = s == "gpu_user_annotation"sv;
            } else if (f == Field::Name) {
                if (v.get_string().get(s)) {
                    keepRaw(b, v, e.name);
                    e.nonStringName = true;
                } else {
                    keep(b, s, e.name);
                }
            } else if (f == Field::Pid) {
                keepRaw(b, v, e.pid);
            } else if (f == Field::Tid) {
                keepRaw(b, v, e.tid);
            } else if (f == Field::Ts) {
                e.hasTs = true;
                const auto ts = microsToNs(v.raw_json_token());
                e.badTs = !ts;
                e.ts = ts.value_or(0);
            } else if (f == Field::Dur) {
                e.hasDur = true;
                const auto dur = microsToNs(v.raw_json_token());
                e.durOk = dur.has_value();
                e.dur = dur.value_or(0);
            } else if (f == Field::Args) {
                // One pass: the fields wanted are read on the way, and the
                // object's text (stored as the event's arguments) runs from its
                // '{' to where the reader stands once past its '}'.
                const char* argsFrom = v.raw_json_token().data();
                od::object args;
                if (v.get_object().get(args))
                    continue; // not an object: ignored
                for (auto afResult : args) {
                    od::field af;
                    std::string_view ak;
                    if (std::move(afResult).get(af))
                        return Error{{}, {}, "unreadable \"args\""};
                    // Most arguments are not wanted, and their first letter says so.
                    if (!kArgInitial[uint8_t(*af.key().raw())])
                        continue;
                    if (!keyOf(af, end, ak))
                        return Error{{}, {}, "unreadable \"args\""};
                    const Arg a = argOf(ak);
                    if (a == Arg::Other)
                        continue;
                    od::value av = af.value();
                    int64_t iv = 0;
                    double dv = 0;
                    std::string_view sv;
                    switch (a) {
                    case Arg::Stream:
                        if (!av.get_int64().get(iv))
                            e.stream = iv;
                        break;
                    case Arg::Correlation:
                        if (!av.get_int64().get(iv))
                            e.correlation = iv;
                        break;
                    case Arg::Nelems:
                        if (!av.get_int64().get(iv))
                            e.nelems = iv;
                        break;
                    case Arg::Dtype:
                        if (!av.get_string().get(sv))
                            e.dtype = dtypeBytes(sv);
                        break;
                    case Arg::Name:
                        if (!av.get_string().get(sv))
                            keep(b, sv, e.metaName);
                        break;
                    case Arg::PartitaKind:
                        if (!av.get_string().get(sv))
                            e.ownKind = kindFromName(sv);
                        break;
                    case Arg::Layer:
                        if (!av.get_int64().get(iv))
                            e.layer = iv;
                        break;
                    case Arg::Op:
                        if (!av.get_int64().get(iv))
                            e.op = iv;
                        break;
                    case Arg::Bytes:
                        if (!av.get_int64().get(iv))
                            e.bytes = iv;
                        break;
                    case Arg::Flops:
                        if (!av.get_double().get(dv))
                            e.flops = dv;
                        break;
                    case Arg::Other:
                        break;
                    }
                }
                const char* argsTo = nullptr;
                if (doc.current_location().get(argsTo) || argsTo < argsFrom)
                    return Error{{}, {}, "unreadable \"args\""};
                e.args = std::string_view(argsFrom, size_t(argsTo - argsFrom));
                while (!e.args.empty() && e.args.back() != '}')
                    e.args.remove_suffix(1);
            }
        }
        return true;
    }

    // On the importer's thread: the batch's events in order, then the error
    // that stopped its reading, if one did.
    std::unique_lock<std::mutex> lockWriter() { return m_writeLock ? std::unique_lock(*m_writeLock) : std::unique_lock<std::mutex>(); }

    Result<bool> store(const Batch& b)
    {
        const auto locked = lockWriter();
        for (const Parsed& e : b.events)
            if (auto r = event(b, e); !r)
                return r;
        if (b.error)
            return *b.error;
        return true;
    }

    Result<bool> event(const Batch& b, const Parsed& e)
    {
        const std::string_view name = b.str(e.name);
        if (e.nonStringName)
            m_warn.add("non-string names, kept as written");
        if (e.ph[1] == 0) { // no "ph", or an empty one
            m_warn.add("events without \"ph\", skipped");
            return true;
        }
        std::string& pid = m_pid;
        std::string& tid = m_tid;
        pid.assign(b.str(e.pid));
        tid.assign(b.str(e.tid));
        const std::string_view ph = b.str(e.ph);
        const char phase = ph.front();
        if (phase == 'M') {
            ++m_report.skipped;
            if (name == "process_name"sv)
                m_processNames[pid] = b.str(e.metaName);
            else if (name == "thread_name"sv)
                m_threadNames[pid + "/" + tid] = b.str(e.metaName);
            return true;
        }
        if (phase == 's' || phase == 't' || phase == 'f' || phase == 'C' || phase == 'P' || phase == 'O' ||
            phase == 'N' || phase == 'D' || phase == 'b' || phase == 'e' || phase == 'n') {
            ++m_report.skipped; // flows, counters, samples, objects, async: not timeline slices here
            return true;
        }
        if (phase != 'X' && phase != 'B' && phase != 'E' && phase != 'i' && phase != 'I' && phase != 'R') {
            m_warn.add("events with unknown phase '" + std::string(ph) + "', skipped");
            return true;
        }
        if (!e.hasTs || e.badTs) {
            m_warn.add(e.hasTs ? "events with an unreadable \"ts\", skipped" : "events without \"ts\", skipped");
            return true;
        }
        bool gpu = e.catGpu;
        TraceKind kind = e.catKind;
        // PyTorch's profiler without Kineto (the legacy autograd profiler's
        // export, as Debian's torch writes it) names no category: every
        // event of its "CPU functions" process is an operator or a
        // record_function range on a CPU thread.
        if (!e.hasCat && pid == "\"CPU functions\""sv)
            kind = isLegacyAnnotation(name) ? TraceKind::Annotation : TraceKind::CpuOp;
        if (e.stream >= 0 && (kind == TraceKind::Kernel || kind == TraceKind::Memcpy || kind == TraceKind::Memset))
            gpu = true;
        m_ownKind = e.ownKind.has_value();
        if (e.ownKind) {
            kind = *e.ownKind;
            gpu = isDeviceKind(kind) || e.catGpuAnnotation;
        }
        if (e.catTrace) {
            ++m_report.skipped;
            return true;
        }
        if (name.substr(0, 13) == "ProfilerStep#"sv || (e.ownKind && *e.ownKind == TraceKind::Step))
            kind = TraceKind::Step;
        TraceRecord r;
        r.kind = kind;
        r.start_ns = e.ts;
        r.correlation = e.correlation;
        r.layer = int32_t(e.layer);
        r.op = e.op;
        r.bytes = e.bytes ? e.bytes : (e.nelems >= 0 && e.dtype ? e.nelems * e.dtype : 0);
        r.flops = e.flops;
        if (phase == 'B') {
            m_open[pid + "/" + tid].push_back({std::string(name), std::string(e.args), kind, e.ts});
            return true;
        }
        if (phase == 'E') {
            auto& stack = m_open[pid + "/" + tid];
            if (stack.empty()) {
                m_warn.add("'E' events without a matching 'B', skipped");
                return true;
            }
            Open o = std::move(stack.back());
            stack.pop_back();
            r.kind = o.kind;
            r.start_ns = o.start;
            r.dur_ns = e.ts - o.start;
            if (r.dur_ns < 0) {
                m_warn.add("'E' events before their 'B', skipped");
                return true;
            }
            return store(pid, tid, gpu, e.stream, r, o.name, o.args);
        }
        if (phase == 'X') {
            int64_t dur = e.dur;
            if (!e.hasDur || !e.durOk) {
                m_warn.add(e.hasDur ? "'X' events with an unreadable \"dur\", stored as instants"
                                    : "'X' events without \"dur\", stored as instants");
                dur = 0;
            }
            if (dur < 0) {
                m_warn.add("events with a negative duration, skipped");
                return true;
            }
            r.dur_ns = dur;
        } else {
            r.dur_ns = 0; // instant
            if (r.kind != TraceKind::Step)
                r.kind = TraceKind::Annotation;
        }
        return store(pid, tid, gpu, e.stream, r, name, e.args);
    }

    Result<bool> store(const std::string& pid, const std::string& tid, bool gpu, int64_t stream, const TraceRecord& r,
                       std::string_view name, std::string_view args)
    {
        std::string& key = m_trackKey;
        key.assign(gpu ? "g" : "c");
        key += pid;
        key += '/';
        key += tid;
        auto it = m_tracks.find(key);
        if (it == m_tracks.end()) {
            TrackInfo t;
            t.number = int32_t(m_tracks.size());
            t.gpu = gpu;
            t.pid = pid;
            t.tid = tid;
            t.stream = stream;
            auto id = m_w.track(m_rank, t.number, {}, gpu);
            if (!id)
                return id.error();
            t.id = *id;
            it = m_tracks.emplace(key, t).first;
        }
        it->second.partita = it->second.partita || m_ownKind;
        ++m_kindCounts[size_t(r.kind)];
        return m_w.add(it->second.id, r, name, args);
    }

    Result<bool> readSkeleton(std::string& text)
    {
        if (text.empty())
            return true;
        simdjson::dom::parser p;
        simdjson::dom::element root;
        if (p.parse(text).get(root)) {
            m_warn.add("unreadable top-level metadata, ignored");
            return true;
        }
        simdjson::dom::element info, own;
        m_partitaExport = root.is_object() && !root["partita"].get(own) && own.is_object();
        if (root.is_object() && !root["distributedInfo"].get(info)) {
            int64_t rk = 0;
            if (!info["rank"].get_int64().get(rk) && rk >= 0 && rk < (1 << 20))
                rank = int(rk);
            else
                m_warn.add("\"distributedInfo\" without a readable \"rank\"");
            int64_t ws = 0;
            if (!info["world_size"].get_int64().get(ws) && ws > 0 && ws <= (1 << 20))
                world = int(ws);
        }
        return true;
    }

    Result<bool> finishFile()
    {
        const auto locked = lockWriter();
        for (size_t k = 0; k < m_kindCounts.size(); ++k)
            if (m_kindCounts[k])
                m_report.counts[std::string(traceKindName(TraceKind(k)))] += m_kindCounts[k];
        int64_t unclosed = 0;
        for (auto& [key, stack] : m_open)
            unclosed += int64_t(stack.size());
        if (unclosed)
            m_warn.add("'B' events never closed by an 'E', skipped", unclosed);
        // Track names, now that every metadata event has been read.
        for (auto& [key, t] : m_tracks) {
            std::string name;
            if (auto n = m_threadNames.find(t.pid + "/" + t.tid); n != m_threadNames.end() && !n->second.empty())
                name = n->second;
            if (t.partita && !name.empty()) {
                // Partita's own names ("compute", "GPU 0 stream 7", "rank 1 / steps") stay, under the rank.
                auto p = m_processNames.find(t.pid);
                if (p != m_processNames.end() && !p->second.empty() && name.rfind("GPU ", 0) != 0 &&
                    name.find(" / ") == std::string::npos)
                    name = p->second + " / " + name;
                if (auto r = m_w.track(m_rank, t.number, name, t.gpu); !r)
                    return r.error();
                continue;
            }
            if (t.gpu) {
                const std::string stream = t.stream >= 0 ? std::to_string(t.stream) : t.tid;
                name = "GPU " + t.pid + " stream " + stream + (name.empty() || name.rfind("stream", 0) == 0 ? "" : " " + name);
            } else if (name.empty()) {
                name = "thread " + t.tid;
            }
            if (auto p = m_processNames.find(t.pid); p != m_processNames.end() && !t.gpu && !p->second.empty())
                name = p->second + " / " + name;
            if (auto r = m_w.track(m_rank, t.number, name, t.gpu); !r)
                return r.error();
        }
        spreadRanks();
        return true;
    }

    // Partita's export of a run of several ranks gives no distributedInfo
    // and one process per rank, its pid the rank: each track is its pid's.
    void spreadRanks()
    {
        if (!m_partitaExport || rank)
            return;
        std::vector<std::pair<int32_t, std::string>> pids;
        for (const auto& [key, t] : m_tracks)
            pids.emplace_back(t.number, t.pid);
        spread = detail::ranksByPid(pids);
    }

    RunWriter& m_w;
    std::string m_path;
    int32_t m_rank;
    bool m_partitaExport = false; // the file has Partita's own "partita" object
    TraceImportReport& m_report;
    const std::atomic<bool>* m_cancel;
    std::mutex* m_writeLock;
    od::parser m_parser; // the helper thread's
    Warnings m_warn;
    std::string m_pid, m_tid, m_trackKey;
    std::array<int64_t, 16> m_kindCounts{};
    bool m_ownKind = false; // the event being stored carried partita_kind
    std::unordered_map<std::string, TrackInfo> m_tracks;
    std::unordered_map<std::string, std::vector<Open>> m_open;
    std::unordered_map<std::string, std::string> m_processNames, m_threadNames;
};

// Reads file i into `w` under the provisional rank -1 - i.
detail::FileOutcome readFile(RunWriter& w, const std::string& file, size_t i, const TraceImportOptions& options,
                             std::mutex* writeLock)
{
    detail::FileOutcome o;
    FileImporter fi(w, file, -1 - int32_t(i), o.part, options.cancel, writeLock);
    if (auto r = fi.run(); !r) {
        o.error = r.error();
        return o;
    }
    o.rank = fi.rank;
    o.world = fi.world;
    o.spread = std::move(fi.spread);
    for (const auto& [what, n] : fi.warnings().counts)
        o.warnings.emplace_back(what, n);
    return o;
}

} // namespace

Result<TraceImportReport> importChromeTrace(TraceStore& store, const std::vector<std::string>& paths,
                                            const TraceImportOptions& options)
{
    auto files = detail::listInputs(paths);
    if (!files)
        return files.error();
    TraceImportReport report;
    RunInfo info;
    info.name = options.name.empty() ? fs::path(files->front()).filename().string() : options.name;
    info.kind = options.kind;
    for (const auto& f : *files)
        info.source += (info.source.empty() ? "" : " ") + f;
    auto w = store.beginRun(info, options.commit_every);
    if (!w)
        return w.error();
    report.run_id = (*w)->runId();
    auto abandon = [&](Error e) -> Result<TraceImportReport> {
        w->reset();
        (void)store.deleteRun(report.run_id);
        return e;
    };
    // Several files (a rank each) are read at once, a few at a time; one
    // that cannot be read is left out and said so, the others imported. One
    // file alone fails the import.
    const bool several = files->size() > 1;
    std::vector<detail::FileOutcome> outcomes = detail::readAll(files->size(), several, [&](size_t i, std::mutex* lock) {
        return readFile(**w, (*files)[i], i, options, lock);
    });
    std::vector<std::optional<int>> ranks;
    std::vector<std::vector<std::pair<int32_t, int>>> spread(files->size());
    std::vector<bool> kept(files->size(), true);
    std::optional<Error> firstFailure;
    int world = 0;
    const bool cancelled = options.cancel && options.cancel->load();
    for (size_t i = 0; i < files->size(); ++i) {
        detail::FileOutcome& o = outcomes[i];
        report.skipped += o.part.skipped;
        report.bytes_read += o.part.bytes_read;
        if (o.error && (!several || cancelled))
            return abandon(*o.error);
        if (o.error) {
            if (auto d = (*w)->dropRank(-1 - int32_t(i)); !d)
                return abandon(d.error());
            kept[i] = false;
            ranks.push_back(std::nullopt);
            report.left_out.push_back(o.error->str());
            firstFailure = firstFailure ? firstFailure : o.error;
            continue;
        }
        spread[i] = std::move(o.spread);
        const bool given = !o.rank && spread[i].empty() && i < options.file_ranks.size() && options.file_ranks[i] >= 0;
        ranks.push_back(given ? std::optional<int>(options.file_ranks[i]) : o.rank);
        world = std::max(world, o.world.value_or(0));
        for (const auto& [what, n] : o.warnings)
            report.warnings.push_back((*files)[i] + ": " + what + (n > 1 ? " (" + std::to_string(n) + ")" : ""));
        if (!ranks.back() && spread[i].empty())
            report.warnings.push_back((*files)[i] + ": no distributedInfo.rank; rank given by file order");
    }
    if (std::none_of(kept.begin(), kept.end(), [](bool k) { return k; }))
        return abandon(Error{firstFailure->file, firstFailure->where,
                             firstFailure->message + " (and every other file given failed too: nothing imported)"});
    if (auto r = detail::settleRanks(**w, *files, ranks, spread, kept, world, report); !r)
        return abandon(r.error());
    for (size_t i = 0; i < files->size(); ++i) // what was imported: the files kept
        if (kept[i])
            for (const auto& [k, n] : outcomes[i].part.counts)
                report.counts[k] += n;
    for (const std::string& l : report.left_out)
        report.warnings.push_back(l);
    std::string meta = "{\"warnings\": " + std::to_string(report.warnings.size()) + "}";
    if (auto r = (*w)->finish(meta); !r)
        return abandon(r.error());
    return report;
}

} // namespace partita
