// Detection of the local machine.
#include "partita/executor/localmachine.h"

#include <QTest>
#include <QThread>

#include <unistd.h>

using namespace partita;

class TestLocalMachine : public QObject
{
    Q_OBJECT
private slots:
    void detectsCpu()
    {
        const LocalMachine lm = detectLocalMachine();
        QCOMPARE(lm.cpu.kind, std::string("cpu"));
        QCOMPARE(lm.cpu.cores, int(::sysconf(_SC_NPROCESSORS_ONLN)));
        QVERIFY(lm.cpu.memory_bytes > 0);
        QVERIFY(!lm.cpu.name.empty());
        QCOMPARE(lm.cluster.nodes.size(), size_t(1));
        QVERIFY(validateCluster(lm.cluster).empty());
        // Unknown figures are said to be unknown, never guessed.
        QVERIFY(lm.cpu.peak_flops.empty());
    }
    void gpusOrReason()
    {
        const LocalMachine lm = detectLocalMachine();
        const auto& devices = lm.cluster.nodes[0].devices;
        const bool gpu = !devices.empty() && devices[0].kind == "gpu";
        if (gpu) {
            QVERIFY(devices[0].memory_bytes > 0);
            QVERIFY(devices[0].cores > 0);
            return;
        }
        // No GPU: a note says why (no CUDA plugin, and why, or what the runtime answered).
        bool explained = false;
        for (const auto& n : lm.notes)
            explained |= n.find(cudaBackendAvailable() ? "no GPU" : "GPUs are not detected: ") != std::string::npos;
        QVERIFY(explained);
        QCOMPARE(devices[0].kind, std::string("cpu"));
    }
};

QTEST_APPLESS_MAIN(TestLocalMachine)
#include "tst_localmachine.moc"
