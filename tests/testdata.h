#pragma once
// Where the tests find their inputs. The repository's own fixtures live in
// tests/data; real PyTorch-profiler traces are recorded on this CPU by the
// torch_traces CTest fixture (resources/demo/record_torch_trace.py); only
// checks against third-party figures read ../shared/data, which a clone may
// not have: they live in a unit's third-party part (testmain.h) and skip,
// naming what is absent.
#include <QFile>
#include <QFileInfo>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QString>
#include <QTest>

namespace partita::test {

inline QString testData(const QString& rel) { return QStringLiteral(PARTITA_TEST_DATA "/") + rel; }

inline QString thirdParty(const QString& rel) { return QStringLiteral(PARTITA_SHARED_DATA "/") + rel; }

// The folder the torch_traces fixture recorded into, or an empty string.
inline QString torchTraces()
{
    const QString dir = qEnvironmentVariable("PARTITA_TORCH_TRACES");
    return !dir.isEmpty() && QFileInfo::exists(dir + "/one/facts.json") && QFileInfo::exists(dir + "/two/facts.json")
               ? dir
               : QString();
}

// What Python's json module read back from a recorded trace (facts.json).
inline QJsonObject torchFacts(const QString& set, int rank)
{
    QFile f(torchTraces() + "/" + set + "/facts.json");
    if (!f.open(QIODevice::ReadOnly))
        return {};
    return QJsonDocument::fromJson(f.readAll()).object()["traces"].toArray()[rank].toObject();
}

} // namespace partita::test

// A check against third-party material: skipped, saying what is missing,
// where ../shared/data is not beside the checkout.
#define PARTITA_REQUIRE_THIRD_PARTY(rel)                                                                        \
    do {                                                                                                        \
        if (!QFileInfo::exists(partita::test::thirdParty(rel)))                                                 \
            QSKIP(qPrintable(QStringLiteral("third-party fixture %1 is absent (no ../shared/data beside the "  \
                                            "checkout)").arg(partita::test::thirdParty(rel))));                \
    } while (false)

// Recorded traces come from the project's own fixture: their absence fails.
#define PARTITA_REQUIRE_TORCH_TRACES()                                                                          \
    do {                                                                                                        \
        if (partita::test::torchTraces().isEmpty())                                                             \
            QFAIL("no recorded PyTorch traces: run through CTest (fixture torch_traces) or set "                \
                  "PARTITA_TORCH_TRACES to what resources/demo/record_torch_trace.py wrote");                   \
    } while (false)
