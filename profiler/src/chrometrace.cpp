#include "partita/profiler/chrometrace.h"

#include "partita/core/fileio.h"

#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <set>

namespace partita {

std::string traceToChromeJson(const Trace& t)
{
    using nlohmann::json;
    json events = json::array();
    std::set<int32_t> ranks;
    for (const auto& tr : t.tracks) {
        ranks.insert(tr.rank);
        events.push_back({{"ph", "M"}, {"name", "thread_name"}, {"pid", tr.rank}, {"tid", tr.track},
                          {"args", {{"name", tr.name}}}});
    }
    for (const auto& r : t.records)
        ranks.insert(r.rank);
    for (int32_t rank : ranks)
        events.push_back({{"ph", "M"}, {"name", "process_name"}, {"pid", rank}, {"args", {{"name", "rank " + std::to_string(rank)}}}});
    for (const auto& r : t.records) {
        json args = {{"partita_kind", std::string(traceKindName(r.kind))}}; // what the importer reads back
        if (r.layer >= 0)
            args["layer"] = r.layer;
        if (r.op >= 0)
            args["op"] = r.op;
        if (r.bytes)
            args["bytes"] = r.bytes;
        if (r.flops > 0)
            args["flops"] = r.flops;
        // Timestamps in microseconds with nanosecond fractions.
        events.push_back({{"ph", "X"},
                          {"name", r.name},
                          {"cat", std::string(traceKindName(r.kind))},
                          {"pid", r.rank},
                          {"tid", r.track},
                          {"ts", double(r.start_ns) / 1e3},
                          {"dur", double(r.dur_ns) / 1e3},
                          {"args", std::move(args)}});
    }
    json doc{{"traceEvents", std::move(events)}, {"displayTimeUnit", "ns"}};
    if (ranks.size() == 1) // one rank per file, as PyTorch's profiler writes them
        doc["distributedInfo"] = {{"rank", *ranks.begin()}};
    return doc.dump() + "\n";
}

Result<bool> writeChromeTrace(const Trace& trace, const std::string& path)
{
    return writeFileAtomically(path, traceToChromeJson(trace));
}

} // namespace partita
