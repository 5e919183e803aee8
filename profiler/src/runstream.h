#pragma once
// A stored run streamed for its analyses (analysis.cpp, analysisdiff.cpp):
// never a run's events at once. A scan finds the steps' names and which
// tracks hold host events; per rank, a host pass keeps the steps and the
// launches' correlation ids, then the rank's device streams are merged by
// time, a block at a time per stream.

#include "partita/core/result.h"
#include "partita/profiler/analysis.h"
#include "partita/profiler/tracestore.h"

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace partita::detail {

// One event as the analyses read it.
struct Ev
{
    int64_t start = 0, end = 0, corr = -1, id = 0, name = 0; // name: the store's string id
    int32_t layer = -1;
    int32_t track = 0; // the track's position in the run's track list
    TraceKind kind = TraceKind::Compute;
    bool device = false; // on a device track, of a device kind
};

// The union of intervals that arrive by start, merged as they come:
// touching ones merge (HTA merge_kernel_intervals).
struct Sweep
{
    int64_t lo = 0, hi = 0, total = 0;
    bool any = false;
    void add(int64_t s, int64_t e)
    {
        if (any && s <= hi) {
            hi = std::max(hi, e);
            return;
        }
        if (any)
            total += hi - lo;
        lo = s;
        hi = e;
        any = true;
    }
    int64_t length() const { return total + (any ? hi - lo : 0); }
};

struct RunScan
{
    std::vector<StoredTrack> tracks;
    std::vector<bool> host_events;            // per track: holds events no device runs (steps, CPU ops, launches)
    std::map<int, std::vector<int32_t>> ranks; // rank -> its tracks that hold events (positions)
    int distinct_step_names = 0;
    bool hta_rounding = false; // times read as HTA reads them: whole µs, start up, end down
};

Result<RunScan> scanRun(const TraceStore& store, int64_t run, bool htaRounding);

// A launch's correlation id, its first host event's start (in the order a
// run's events are read: track, then time) and its earliest.
struct Launch
{
    int64_t corr = 0, first_start = 0, min_start = 0;
};

struct RankHost
{
    std::vector<Ev> steps;       // by (start, id)
    std::vector<Launch> launches; // by correlation id
    const Launch* find(int64_t corr) const;
};

// The rank's host events: its steps and launches.
Result<RankHost> readHost(const TraceStore& store, const RunScan& scan, int rank);

// PyTorch's gloo process group runs each collective as an operator
// ("gloo:all_reduce", "gloo:broadcast", …) on a thread of its own, issued by
// an operator on the calling thread ("c10d::allreduce_", …;
// torch/csrc/distributed/c10d/ProcessGroupGloo.cpp, 1.13). Both give the
// collective's word ("allreduce"), `issued` saying which it was; anything
// else gives an empty string, gloo's sends and receives too (no peer named).
std::string glooCollective(std::string_view name, bool& issued);

// Every event of a rank's tracks (host and device), track by track in the
// store's order, each in (start, id) order.
Result<bool> forEachRankEvent(const TraceStore& store, const RunScan& scan, int rank, const std::function<void(const Ev&)>& f);

// The rank's device events merged across its streams by start; each
// stream's own in (start, id) order.
class DeviceMerge
{
public:
    static Result<std::unique_ptr<DeviceMerge>> open(const TraceStore& store, const RunScan& scan, int rank);
    ~DeviceMerge();
    // The next device event; false at the end or on a failure (error()).
    bool next(Ev& out);
    const std::optional<Error>& error() const { return m_error; }

private:
    DeviceMerge() = default;
    struct Stream;
    struct Head
    {
        int64_t start;
        Stream* stream;
    };
    static bool later(const Head& a, const Head& b) { return a.start > b.start; }
    bool refill(Stream& s);
    bool readDevice(Stream& s, Ev& out);
    std::vector<std::unique_ptr<Stream>> m_streams;
    std::vector<Head> m_heap; // streams with events left, by their next event's start
    std::optional<Error> m_error;
    bool m_hta = false;
};

// analyzeRun (analysis.cpp) of a run already scanned (with
// options.hta_rounding), with every device event's time per layer on all
// ranks, none left out, added to `allLayerNs` when given (the diff's).
Result<RunAnalysis> analyzeStreamed(const TraceStore& store, const RunScan& scan, int64_t run, const AnalysisOptions& options,
                                    std::map<int32_t, int64_t>* allLayerNs);

} // namespace partita::detail
