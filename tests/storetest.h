#pragma once
// Helpers shared by the tests of the project store and what reads into it.
#include "partita/profiler/chromeimport.h"
#include "partita/profiler/tracestore.h"

#include <QTemporaryDir>

#include <QTest>

#include <fstream>
#include <memory>
#include <string>
#include <vector>

namespace partita::test {

inline std::unique_ptr<TraceStore> openOrDie(const std::string& path)
{
    auto s = TraceStore::open(path);
    if (!s)
        qFatal("%s", s.error().str().c_str());
    return std::move(*s);
}

inline RunInfo named(const std::string& name, RunKind kind)
{
    RunInfo r;
    r.name = name;
    r.kind = kind;
    return r;
}

// A Chrome trace given as text, written into `dir` and imported: the run's id.
inline int64_t importText(TraceStore& s, const QTemporaryDir& dir, const std::string& text)
{
    const std::string path = dir.filePath("t.json").toStdString();
    std::ofstream(path) << text;
    auto imp = importChromeTrace(s, {path});
    if (!imp)
        qFatal("%s", imp.error().str().c_str());
    return imp->run_id;
}

// Hand-made runs: events by rank, track (named "GPU 0 stream N" on a device,
// "thread N" on the host), kind, name and times in microseconds.
struct HandEvent
{
    int rank;
    int32_t track;
    bool device;
    TraceKind kind;
    std::string name;
    int64_t start_us, dur_us;
    int64_t corr = -1;
    int32_t layer = -1;
};

inline int64_t storeEvents(TraceStore& s, const std::vector<HandEvent>& evs)
{
    auto w = s.beginRun(named("hand-made", RunKind::Imported));
    if (!w)
        qFatal("%s", w.error().str().c_str());
    for (const HandEvent& e : evs) {
        const std::string track = e.device ? "GPU 0 stream " + std::to_string(e.track) : "thread " + std::to_string(e.track);
        auto id = (*w)->track(e.rank, e.track, track, e.device);
        if (!id)
            qFatal("%s", id.error().str().c_str());
        TraceRecord r;
        r.rank = e.rank;
        r.track = e.track;
        r.kind = e.kind;
        r.name = e.name;
        r.start_ns = e.start_us * 1000;
        r.dur_ns = e.dur_us * 1000;
        r.correlation = e.corr;
        r.layer = e.layer;
        if (auto a = (*w)->add(*id, r); !a)
            qFatal("%s", a.error().str().c_str());
    }
    if (auto f = (*w)->finish(); !f)
        qFatal("%s", f.error().str().c_str());
    return (*w)->runId();
}

} // namespace partita::test
