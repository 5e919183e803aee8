#pragma once
// Shared by the run and profile sessions' tests and the dialogs that make
// them: a tiny GPT to run, and the check that a refused request stored
// nothing in its project.
#include "partita/core/modelio.h"
#include "partita/profiler/tracestore.h"

#include <QFile>
#include <QTest>

namespace test {

// GPT-2's shape at 2 layers of width 64: a step of milliseconds on a CPU.
inline partita::Model tinyGpt()
{
    auto m = partita::modelFromHfConfig(
        R"({"model_type": "gpt2", "n_embd": 64, "n_head": 4, "n_layer": 2, "n_positions": 64, "vocab_size": 512})");
    if (!m)
        qFatal("%s", m.error().str().c_str());
    return *m;
}

// The project (when the refusal came after it was created) holds no run.
inline void expectNothingStored(const QString& project)
{
    if (!QFile::exists(project))
        return;
    auto store = partita::TraceStore::open(project.toStdString());
    QVERIFY(store);
    auto runs = (*store)->runs();
    QVERIFY(runs);
    QCOMPARE(runs->size(), size_t(0));
}

} // namespace test
