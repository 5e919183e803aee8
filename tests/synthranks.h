#pragma once
// Many ranks made from one: a source rank's device events (a real trace's,
// or a pattern) replayed on N ranks with per-rank clock skew, per-kernel
// jitter and one slow rank, the way a data-parallel job behaves: compute
// kernels stretch a rank's timeline, and each collective ends on every rank
// when its last rank arrives (the early ranks' collective kernels last
// longer: they wait inside them). For the tests and benchmarks of the
// many-rank analyses; what it writes is synthetic, and its run is named so.

#include "partita/core/trace.h"
#include "partita/profiler/analysis.h"
#include "partita/profiler/tracestore.h"

#include <algorithm>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace partita::test {

struct SynthOptions
{
    int ranks = 8;
    int slow_rank = -1;          // -1: none
    std::string slow_kernel;     // the slow rank's kernels of this name run longer
    int32_t slow_layer = -1;     // only in this layer (-1: in every layer)
    double slow_factor = 1.0;
    int64_t max_skew_ns = 0;     // each rank's clock offset, uniform in [-max, max] (rank 0: 0)
    double jitter = 0;           // each compute kernel's duration x (1 + uniform[-jitter, jitter])
    uint64_t seed = 1;
};

struct SynthRun
{
    int64_t run_id = 0;
    std::vector<int64_t> skew_ns; // per rank, as applied
};

namespace detail {

// By start; a step before the kernels that start with it.
inline void sortByStart(std::vector<TraceRecord>& source)
{
    std::stable_sort(source.begin(), source.end(), [](const TraceRecord& a, const TraceRecord& b) {
        return a.start_ns < b.start_ns ||
               (a.start_ns == b.start_ns && a.kind == TraceKind::Step && b.kind != TraceKind::Step);
    });
}

// Each rank's clock offset: rank 0's is 0, the others' uniform in [-max_skew_ns, max_skew_ns].
inline std::vector<int64_t> rankSkews(const SynthOptions& o, std::mt19937_64& rng,
                                      std::uniform_real_distribution<double>& unit)
{
    std::vector<int64_t> skew;
    for (int r = 0; r < o.ranks; ++r)
        skew.push_back(r == 0 ? 0 : int64_t(unit(rng) * double(o.max_skew_ns)));
    return skew;
}

// One synthesis under way: the run being written, and each rank's tracks, lag and open step.
struct RankSynth
{
    RankSynth(const SynthOptions& options, RunWriter& writer, const std::vector<int64_t>& skews,
              std::mt19937_64& random, std::uniform_real_distribution<double>& uniform)
        : o(options), w(writer), skew(skews), rng(random), unit(uniform), tracks(size_t(options.ranks)),
          delay(size_t(options.ranks), 0), stepStart(size_t(options.ranks))
    {
    }

    const SynthOptions& o;
    RunWriter& w;
    const std::vector<int64_t>& skew;
    std::mt19937_64& rng;
    std::uniform_real_distribution<double>& unit;
    std::vector<std::vector<int64_t>> tracks;
    std::vector<int64_t> delay; // each rank's lag behind the source's timeline
    std::optional<TraceRecord> step;
    std::vector<int64_t> stepStart;
};

// The stored track of rank `r`'s copy of `e`'s track, made on first use.
inline Result<int64_t> trackOf(RankSynth& s, int r, const TraceRecord& e)
{
    auto& t = s.tracks[size_t(r)];
    if (t.size() <= size_t(e.track))
        t.resize(size_t(e.track) + 1, -1);
    if (t[size_t(e.track)] < 0) {
        const bool device = e.kind != TraceKind::Step;
        auto id = s.w.track(r, e.track, device ? "stream " + std::to_string(e.track) : "steps", device);
        if (!id)
            return id.error();
        t[size_t(e.track)] = *id;
    }
    return t[size_t(e.track)];
}

// Writes `x` on rank `r`'s copy of its track.
inline Result<bool> writeOnRank(RankSynth& s, int r, const TraceRecord& x)
{
    auto id = trackOf(s, r, x);
    if (!id)
        return id.error();
    if (auto a = s.w.add(*id, x); !a)
        return a.error();
    return true;
}

// A step is written when the source passes its end, stretched by what
// the rank lagged meanwhile.
inline Result<bool> closeStep(RankSynth& s)
{
    for (int r = 0; s.step && r < s.o.ranks; ++r) {
        TraceRecord x = *s.step;
        x.rank = r;
        x.start_ns = s.stepStart[size_t(r)];
        x.dur_ns = s.step->start_ns + s.step->dur_ns + s.delay[size_t(r)] + s.skew[size_t(r)] - x.start_ns;
        if (auto a = writeOnRank(s, r, x); !a)
            return a.error();
    }
    s.step.reset();
    return true;
}

// Closes the open step and opens `e`, starting on each rank where that rank's lag and skew put it.
inline Result<bool> openStep(RankSynth& s, const TraceRecord& e)
{
    if (auto c = closeStep(s); !c)
        return c.error();
    s.step = e;
    for (int r = 0; r < s.o.ranks; ++r)
        s.stepStart[size_t(r)] = e.start_ns + s.delay[size_t(r)] + s.skew[size_t(r)];
    return true;
}

// Replays one device event on every rank: a collective ends when its last rank arrives, a compute kernel
// is jittered (and slowed on the slow rank), and each rank's lag follows.
inline Result<bool> replayOnRanks(RankSynth& s, const TraceRecord& e)
{
    const SynthOptions& o = s.o;
    const bool coll = classifyKernel(e.name, e.kind) == KernelClass::Communication;
    int64_t latest = INT64_MIN;
    if (coll)
        for (int r = 0; r < o.ranks; ++r)
            latest = std::max(latest, e.start_ns + s.delay[size_t(r)]);
    for (int r = 0; r < o.ranks; ++r) {
        TraceRecord x = e;
        x.rank = r;
        x.start_ns = e.start_ns + s.delay[size_t(r)];
        if (coll) {
            // Arrives at its own time; ends when the last rank's copy does.
            x.dur_ns = latest + e.dur_ns - x.start_ns;
            s.delay[size_t(r)] = latest - e.start_ns;
        } else if (isDeviceKind(e.kind)) {
            double f = 1 + o.jitter * s.unit(s.rng);
            if (r == o.slow_rank && e.name == o.slow_kernel && (o.slow_layer < 0 || e.layer == o.slow_layer))
                f *= o.slow_factor;
            x.dur_ns = std::max<int64_t>(1, int64_t(double(e.dur_ns) * f));
            s.delay[size_t(r)] += x.dur_ns - e.dur_ns;
        }
        x.start_ns += s.skew[size_t(r)];
        if (auto a = writeOnRank(s, r, x); !a)
            return a.error();
    }
    return true;
}

// Replays the sorted source, then closes the last step.
inline Result<bool> replaySource(RankSynth& s, const std::vector<TraceRecord>& source)
{
    for (const TraceRecord& e : source) {
        if (s.step && e.start_ns >= s.step->start_ns + s.step->dur_ns)
            if (auto c = closeStep(s); !c)
                return c.error();
        if (e.kind == TraceKind::Step) {
            if (auto c = openStep(s, e); !c)
                return c.error();
            continue;
        }
        if (auto c = replayOnRanks(s, e); !c)
            return c.error();
    }
    return closeStep(s);
}

} // namespace detail

// `source`: one rank's device events and steps (TraceKind::Step), any
// order; communication kernels (by classifyKernel) are the collectives.
inline Result<SynthRun> synthesizeRanks(TraceStore& store, std::vector<TraceRecord> source, const SynthOptions& o)
{
    detail::sortByStart(source);
    std::mt19937_64 rng(o.seed);
    std::uniform_real_distribution<double> unit(-1.0, 1.0);
    SynthRun out;
    out.skew_ns = detail::rankSkews(o, rng, unit);
    RunInfo info;
    info.name = "synthetic: " + std::to_string(o.ranks) + " ranks";
    info.kind = RunKind::Imported;
    auto w = store.beginRun(info);
    if (!w)
        return w.error();
    detail::RankSynth s(o, **w, out.skew_ns, rng, unit);
    if (auto c = detail::replaySource(s, source); !c)
        return c.error();
    if (auto f = (*w)->finish(); !f)
        return f.error();
    out.run_id = (*w)->runId();
    return out;
}

// A stored run's rank as a source: its device events and its steps.
inline Result<std::vector<TraceRecord>> sourceFromRun(const TraceStore& store, int64_t run, int rank = 0)
{
    auto tracks = store.tracks(run);
    if (!tracks)
        return tracks.error();
    std::vector<TraceRecord> out;
    for (const StoredTrack& t : *tracks) {
        if (t.rank != rank)
            continue;
        auto r = store.forEachEvent(run, [&](const StoredEvent& e) {
            if ((t.device && isDeviceKind(e.record.kind)) || e.record.kind == TraceKind::Step)
                out.push_back(e.record);
        }, t.id);
        if (!r)
            return r.error();
    }
    return out;
}

// A data-parallel step pattern: `layers` layers of a GEMM and an
// elementwise kernel (layer ids set) forward and backward, each backward
// layer's gradients all-reduced by NCCL on a second stream, `steps` steps.
inline std::vector<TraceRecord> dataParallelPattern(int layers, int steps)
{
    std::vector<TraceRecord> out;
    int64_t t = 0;
    auto kernel = [&](const std::string& name, int32_t layer, int64_t dur, int32_t track = 7) {
        TraceRecord k;
        k.track = track;
        k.start_ns = t;
        k.dur_ns = dur;
        k.kind = TraceKind::Kernel;
        k.name = name;
        k.layer = layer;
        out.push_back(k);
        t += dur + 2'000;
    };
    for (int s = 0; s < steps; ++s) {
        const int64_t stepStart = t;
        for (int l = 0; l < layers; ++l) {
            kernel("ampere_sgemm_128x64_tn", l, 120'000);
            kernel("vectorized_elementwise_kernel", l, 20'000);
        }
        for (int l = layers - 1; l >= 0; --l) {
            kernel("ampere_sgemm_64x64_nt", l, 240'000);
            kernel("ncclDevKernel_AllReduce_Sum_f32_RING_LL", l, 60'000, 20);
        }
        TraceRecord step;
        step.track = 1;
        step.start_ns = stepStart;
        step.dur_ns = t - stepStart;
        step.kind = TraceKind::Step;
        step.name = "ProfilerStep#" + std::to_string(s);
        out.push_back(step);
    }
    return out;
}

} // namespace partita::test
