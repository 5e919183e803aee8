#include "partita/profiler/memory.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <limits>
#include <map>
#include <unordered_map>

namespace partita {

namespace {

std::string deviceName(int type, int id)
{
    if (type == 0)
        return "cpu";
    if (type == 1)
        return "cuda:" + std::to_string(id);
    return "device type " + std::to_string(type) + ":" + std::to_string(id);
}

int64_t intArg(const nlohmann::json& a, const char* key, int64_t otherwise)
{
    auto it = a.find(key);
    return it != a.end() && it->is_number() ? it->get<int64_t>() : otherwise;
}

// One series being read: its figures, and per time bucket the samples that
// keep its shape (first, lowest, highest, last).
struct Series
{
    MemorySeries s;
    struct Bucket
    {
        bool any = false;
        MemorySample first, low, high, last;
    };
    std::vector<Bucket> buckets;
    std::vector<MemorySample> all; // from every track holding the device's records, put in time order at the end

    void add(const MemorySample& m, size_t bucket)
    {
        if (s.samples++ == 0)
            s.first_allocated = m.allocated;
        s.last_allocated = m.allocated;
        if (m.allocated > s.peak_allocated || s.samples == 1) {
            s.peak_allocated = m.allocated;
            s.peak_allocated_at_ns = m.t_ns;
        }
        if (m.reserved > s.peak_reserved || s.samples == 1) {
            s.peak_reserved = m.reserved;
            s.peak_reserved_at_ns = m.t_ns;
        }
        if (buckets.empty())
            return;
        Bucket& b = buckets[std::min(bucket, buckets.size() - 1)];
        if (!b.any) {
            b = {true, m, m, m, m};
            return;
        }
        if (m.allocated < b.low.allocated)
            b.low = m;
        if (m.allocated > b.high.allocated)
            b.high = m;
        b.last = m;
    }

    void finish()
    {
        for (const Bucket& b : buckets) {
            if (!b.any)
                continue;
            std::vector<MemorySample> four{b.first, b.low, b.high, b.last};
            std::stable_sort(four.begin(), four.end(), [](const MemorySample& x, const MemorySample& y) { return x.t_ns < y.t_ns; });
            for (const MemorySample& m : four)
                if (s.points.empty() || s.points.back().t_ns != m.t_ns || s.points.back().allocated != m.allocated)
                    s.points.push_back(m);
        }
    }
};

std::optional<double> peakOf(const std::string& meta)
{
    auto j = nlohmann::json::parse(meta.empty() ? std::string("{}") : meta, nullptr, false);
    if (!j.is_object())
        return std::nullopt;
    auto it = j.find("peak_memory_bytes");
    if (it == j.end() || !it->is_number() || it->get<double>() <= 0)
        return std::nullopt;
    return it->get<double>();
}

// The prediction beside the run: its own figure when predicted, else its
// predicted run's.
void predicted(const TraceStore& store, const RunInfo& info, MemoryReport& rep)
{
    if (info.kind == RunKind::Predicted) {
        rep.predicted_peak_bytes = peakOf(info.meta);
        rep.predicted_run = rep.predicted_peak_bytes ? info.id : 0;
        return;
    }
    auto j = nlohmann::json::parse(info.meta.empty() ? std::string("{}") : info.meta, nullptr, false);
    if (!j.is_object() || !j.contains("predicted_run") || !j["predicted_run"].is_number_integer())
        return;
    auto p = store.run(j["predicted_run"].get<int64_t>());
    if (!p)
        return;
    rep.predicted_peak_bytes = peakOf(p->meta);
    rep.predicted_run = rep.predicted_peak_bytes ? p->id : 0;
    if (!rep.predicted_peak_bytes)
        rep.notes.push_back("its prediction (run " + std::to_string(p->id) + ") names no peak memory");
}

// The host tracks that hold `[memory]` records (a pass over their names).
Result<std::vector<StoredTrack>> memoryTracks(const TraceStore& store, const std::vector<StoredTrack>& tracks)
{
    std::unordered_map<int64_t, bool> isMemory;
    std::vector<StoredTrack> out;
    for (const StoredTrack& t : tracks) {
        if (t.device || t.events == 0)
            continue;
        auto s = store.stream(t.id);
        if (!s)
            return s.error();
        RawEvent e;
        bool found = false;
        while (!found && (*s)->next(e)) {
            if (e.kind != TraceKind::Annotation || e.dur_ns != 0)
                continue;
            auto [it, added] = isMemory.try_emplace(e.name_id, false);
            if (added) {
                auto n = store.name(e.name_id);
                if (!n)
                    return n.error();
                it->second = *n == "[memory]";
            }
            found = it->second;
        }
        if ((*s)->error())
            return *(*s)->error();
        if (found)
            out.push_back(t);
    }
    return out;
}

} // namespace

Result<MemoryReport> readMemory(const TraceStore& store, int64_t run, int maxPoints)
{
    auto info = store.run(run);
    if (!info)
        return info.error();
    TraceStore::ReadScope scope(store);
    auto tracks = store.tracks(run);
    if (!tracks)
        return tracks.error();
    MemoryReport rep;
    predicted(store, *info, rep);
    int64_t t0 = std::numeric_limits<int64_t>::max(), t1 = std::numeric_limits<int64_t>::min();
    for (const StoredTrack& t : *tracks)
        if (t.events > 0) {
            t0 = std::min(t0, t.start_ns);
            t1 = std::max(t1, t.end_ns);
        }
    auto holding = memoryTracks(store, *tracks);
    if (!holding)
        return holding.error();
    const size_t buckets = maxPoints > 0 ? size_t(std::max(1, maxPoints / 4)) : 0;
    std::map<std::tuple<int, int, int>, Series> series; // (rank, type, id)
    int64_t unreadable = 0;
    for (const StoredTrack& t : *holding) {
        auto r = store.forEachEvent(
            run,
            [&](const StoredEvent& e) {
                if (e.record.name != "[memory]" || e.record.kind != TraceKind::Annotation)
                    return;
                auto a = nlohmann::json::parse(e.args.empty() ? std::string("{}") : e.args, nullptr, false);
                if (!a.is_object() || !a.contains("Total Allocated")) {
                    ++unreadable;
                    return;
                }
                const int type = int(intArg(a, "Device Type", 0)), id = int(intArg(a, "Device Id", -1));
                auto [it, added] = series.try_emplace({t.rank, type, id});
                Series& s = it->second;
                if (added) {
                    s.s.rank = t.rank;
                    s.s.device_type = type;
                    s.s.device_id = id;
                    s.s.device = deviceName(type, id);
                    s.s.track_id = t.id;
                    s.buckets.resize(buckets);
                }
                s.all.push_back({e.record.start_ns, intArg(a, "Total Allocated", 0), intArg(a, "Total Reserved", 0)});
            },
            t.id, true);
        if (!r)
            return r.error();
    }
    for (auto& [key, s] : series) {
        std::stable_sort(s.all.begin(), s.all.end(), [](const MemorySample& a, const MemorySample& b) { return a.t_ns < b.t_ns; });
        for (const MemorySample& m : s.all)
            s.add(m, t1 > t0 ? size_t(double(m.t_ns - t0) / double(t1 - t0 + 1) * double(buckets)) : 0);
        std::vector<MemorySample>().swap(s.all);
        s.finish();
        rep.series.push_back(std::move(s.s));
    }
    if (unreadable > 0)
        rep.notes.push_back(std::to_string(unreadable) + " [memory] records without \"Total Allocated\", left out");
    if (rep.series.empty())
        rep.notes.push_back("no [memory] records: record them with torch.profiler.profile(profile_memory=True) under Kineto "
                            "(the legacy autograd profiler, as Debian's torch 1.13 runs on the CPU, writes none)");
    return rep;
}

} // namespace partita
