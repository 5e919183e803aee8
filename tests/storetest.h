#pragma once
// Helpers shared by the tests of the project store and what reads into it.
#include "partita/profiler/tracestore.h"

#include <QTest>

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

} // namespace partita::test
