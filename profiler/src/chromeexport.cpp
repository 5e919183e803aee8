// Chrome trace JSON out of a stored run (chromeimport.h): one process per
// rank, one thread per track, Kineto's category names and args, so that
// Perfetto, chrome://tracing and HTA open it. Split from chromeimport.cpp.
#include "partita/profiler/chromeimport.h"

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <set>
#include <string>
#include <string_view>

namespace partita {

namespace {

std::string_view categoryOf(TraceKind k, bool deviceTrack)
{
    switch (k) {
    case TraceKind::Kernel:
    case TraceKind::Collective:
    case TraceKind::P2P:
    case TraceKind::Compute: return "kernel";
    case TraceKind::Memcpy: return "gpu_memcpy";
    case TraceKind::Memset: return "gpu_memset";
    case TraceKind::Runtime: return "cuda_runtime";
    case TraceKind::CpuOp: return "cpu_op";
    case TraceKind::Step:
    case TraceKind::Annotation: return deviceTrack ? "gpu_user_annotation" : "user_annotation";
    }
    return "user_annotation";
}

void appendEscaped(std::string& out, std::string_view s)
{
    out += '"';
    for (char c : s) {
        switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        default:
            if (static_cast<unsigned char>(c) < 0x20) {
                char buf[8];
                std::snprintf(buf, sizeof buf, "\\u%04x", c);
                out += buf;
            } else {
                out += c;
            }
        }
    }
    out += '"';
}

void appendMicros(std::string& out, int64_t ns)
{
    if (ns < 0) {
        out += '-';
        ns = -ns;
    }
    out += std::to_string(ns / 1000);
    const int64_t frac = ns % 1000;
    if (frac) {
        char buf[8];
        std::snprintf(buf, sizeof buf, ".%03lld", static_cast<long long>(frac));
        out += buf;
    }
}

// Puts ",\n" before every event of the array but the first.
void appendSeparator(std::string& out, bool& first)
{
    if (!first)
        out += ",\n";
    first = false;
}

// The file's opening up to its event array: the run's name and kind, the
// rank when there is one, the clock offsets applied.
void appendHeader(std::string& out, const RunInfo& info, const std::set<int32_t>& ranks,
                  const std::map<int32_t, int64_t>* clockOffsets)
{
    out += "{\"schemaVersion\": 1, \"displayTimeUnit\": \"ns\", ";
    if (ranks.size() == 1)
        out += "\"distributedInfo\": {\"rank\": " + std::to_string(*ranks.begin()) + "}, ";
    out += "\"partita\": {\"run\": ";
    appendEscaped(out, info.name);
    out += ", \"kind\": \"" + std::string(runKindName(info.kind)) + "\"";
    if (clockOffsets && !clockOffsets->empty()) {
        out += ", \"clock_offsets_ns\": {";
        bool firstOffset = true;
        for (const auto& [rank, ns] : *clockOffsets) {
            out += (firstOffset ? "\"" : ", \"") + std::to_string(rank) + "\": " + std::to_string(ns);
            firstOffset = false;
        }
        out += "}";
    }
    out += "}, \"traceEvents\": [\n";
}

// Names each rank's process and each track's thread (metadata events),
// noting the tracks by id.
void appendNames(std::string& out, bool& first, const std::set<int32_t>& ranks, const std::vector<StoredTrack>& tracks,
                 std::unordered_map<int64_t, const StoredTrack*>& byId)
{
    for (int32_t r : ranks) {
        appendSeparator(out, first);
        out += "{\"ph\": \"M\", \"name\": \"process_name\", \"pid\": " + std::to_string(r) +
               ", \"tid\": 0, \"args\": {\"name\": \"rank " + std::to_string(r) + "\"}}";
    }
    for (const auto& t : tracks) {
        byId[t.id] = &t;
        appendSeparator(out, first);
        out += "{\"ph\": \"M\", \"name\": \"thread_name\", \"pid\": " + std::to_string(t.rank) +
               ", \"tid\": " + std::to_string(t.track) + ", \"args\": {\"name\": ";
        appendEscaped(out, t.name);
        out += "}}";
    }
}

// An event's args: our fields first, then the original args (a later
// duplicate key would win in most readers, so they are left out of ours).
void appendArgs(std::string& out, const StoredTrack& t, const TraceRecord& r, std::string_view orig)
{
    out += ", \"args\": {\"partita_kind\": \"";
    out += traceKindName(r.kind);
    out += '"';
    auto has = [&](std::string_view k) { return orig.find("\"" + std::string(k) + "\"") != std::string_view::npos; };
    if (t.device && !has("stream"))
        out += ", \"stream\": " + std::to_string(t.track);
    if (r.correlation >= 0 && !has("correlation"))
        out += ", \"correlation\": " + std::to_string(r.correlation);
    if (r.layer >= 0 && !has("layer"))
        out += ", \"layer\": " + std::to_string(r.layer);
    if (r.op >= 0 && !has("op"))
        out += ", \"op\": " + std::to_string(r.op);
    if (r.bytes && !has("bytes"))
        out += ", \"bytes\": " + std::to_string(r.bytes);
    if (r.flops > 0 && !has("flops")) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.17g", r.flops);
        out += ", \"flops\": ";
        out += buf;
    }
    if (orig.size() > 2) {
        std::string_view members = orig.substr(1, orig.size() - 2); // the object's members
        while (!members.empty() && std::isspace(static_cast<unsigned char>(members.front())))
            members.remove_prefix(1);
        if (!members.empty()) {
            out += ", ";
            out.append(members);
        }
    }
    out += "}";
}

// One stored event as a complete ("X") event, shifted by its rank's clock offset.
void appendEvent(std::string& out, const StoredTrack& t, const StoredEvent& e,
                 const std::map<int32_t, int64_t>* clockOffsets)
{
    const TraceRecord& r = e.record;
    out += "{\"ph\": \"X\", \"cat\": \"";
    out += categoryOf(r.kind, t.device);
    out += "\", \"name\": ";
    appendEscaped(out, r.name);
    out += ", \"pid\": " + std::to_string(t.rank) + ", \"tid\": " + std::to_string(t.track) + ", \"ts\": ";
    int64_t shift = 0;
    if (clockOffsets)
        if (auto o = clockOffsets->find(t.rank); o != clockOffsets->end())
            shift = o->second;
    appendMicros(out, r.start_ns - shift);
    out += ", \"dur\": ";
    appendMicros(out, r.dur_ns);
    appendArgs(out, t, r, e.args);
    out += "}";
}

} // namespace

Result<int64_t> exportChromeTrace(const TraceStore& store, int64_t run, const std::string& path,
                                  const std::map<int32_t, int64_t>* clockOffsets)
{
    auto info = store.run(run);
    if (!info)
        return info.error();
    auto tracks = store.tracks(run);
    if (!tracks)
        return tracks.error();
    const std::string tmp = path + ".partita-tmp";
    std::FILE* f = std::fopen(tmp.c_str(), "wb");
    if (!f)
        return Error{path, {}, std::string("cannot write: ") + std::strerror(errno)};
    std::string out;
    out.reserve(size_t(1) << 20);
    bool ok = true;
    auto spill = [&](bool force) {
        if (out.size() >= (size_t(1) << 20) || force) {
            ok = ok && std::fwrite(out.data(), 1, out.size(), f) == out.size();
            out.clear();
        }
    };
    std::set<int32_t> ranks;
    for (const auto& t : *tracks)
        ranks.insert(t.rank);
    appendHeader(out, *info, ranks, clockOffsets);
    bool first = true;
    std::unordered_map<int64_t, const StoredTrack*> byId;
    appendNames(out, first, ranks, *tracks, byId);
    int64_t count = 0;
    auto each = store.forEachEvent(run, [&](const StoredEvent& e) {
        const StoredTrack& t = *byId[e.track_id];
        appendSeparator(out, first);
        appendEvent(out, t, e, clockOffsets);
        ++count;
        spill(false);
    }, std::nullopt, true);
    out += "\n]}\n";
    spill(true);
    ok = std::fclose(f) == 0 && ok;
    if (!each) {
        std::remove(tmp.c_str());
        return each.error();
    }
    if (!ok) {
        std::remove(tmp.c_str());
        return Error{path, {}, "write failed (disk full?)"};
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0) {
        std::remove(tmp.c_str());
        return Error{path, {}, std::string("cannot replace: ") + std::strerror(errno)};
    }
    return count;
}
} // namespace partita
