#pragma once
// Helpers shared by the tests of the project store and what reads into it.
#include "partita/profiler/chromeimport.h"
#include "partita/profiler/tracestore.h"

#include <QTemporaryDir>

#include <QTest>

#include <fstream>
#include <memory>
#include <string>

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

} // namespace partita::test
