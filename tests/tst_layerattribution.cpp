// profiler/layerattribution: each step's top-level CPU operators given to
// the module range open over them (the innermost, or the one begun last
// where a leaf's backward range crosses an operator), GPU kernels to the
// range their launch was in, the optimizer's step shown but no layer's, the
// collectives outside the model shown and kept out of the share; the shares
// add up. Traces are written here, Kineto's format, and imported.
#include "partita/profiler/chromeimport.h"
#include "partita/profiler/layerattribution.h"
#include "storetest.h"

#include <QTemporaryDir>
#include <QTest>

#include <fstream>

using namespace partita;

namespace {

// "cat name ts dur [correlation]" per event, ts and dur in µs; cat is one of
// op (cpu_op), range (user_annotation), runtime (cuda_runtime), kernel.
std::string trace(const QStringList& events)
{
    std::string out = R"({"traceEvents": [)";
    bool first = true;
    for (const QString& e : events) {
        const QStringList f = e.split('|');
        const QString cat = f[0];
        const std::string kcat = cat == "op" ? "cpu_op" : cat == "range" ? "user_annotation" : cat == "runtime" ? "cuda_runtime" : "kernel";
        const bool gpu = cat == "kernel";
        std::string args = f.size() > 4 ? R"(, "args": {"correlation": )" + f[4].toStdString() +
                                              (gpu ? R"(, "stream": 7})" : "}")
                                        : "";
        out += std::string(first ? "" : ",") + R"({"ph": "X", "cat": ")" + kcat + R"(", "name": ")" + f[1].toStdString() +
               R"(", "pid": )" + (gpu ? "0" : "1") + R"(, "tid": )" + (gpu ? "7" : "1") + R"(, "ts": )" +
               f[2].toStdString() + R"(, "dur": )" + f[3].toStdString() + args + "}";
        first = false;
    }
    return out + R"(], "distributedInfo": {"rank": 0}})";
}

} // namespace

class TestLayerAttribution : public QObject
{
    Q_OBJECT
private slots:
    // Rows: the events, then each row's expected CPU time (µs per step) and
    // the share attributed.
    void attributes_data()
    {
        QTest::addColumn<QStringList>("events");
        QTest::addColumn<QStringList>("expected"); // "name=µs" or "name=µs/device"
        QTest::addColumn<double>("fraction");
        const QStringList forward{"range|ProfilerStep#1|0|100", "range|nn.Module: (Model)|0|100",
                                  "range|nn.Module: h.0|0|60", "range|nn.Module: h.0.qkv|5|20",
                                  "op|aten::addmm|5|20", "op|aten::mul|6|5", // nested: not counted twice
                                  "op|aten::softmax|30|20", "op|aten::add|70|20"};
        QTest::newRow("forward: innermost module, nested ops once, the model's own time not attributed")
            << forward << QStringList{"h.0.qkv=20", "h.0=20"} << 40.0 / 60.0;
        QTest::newRow("backward range begins inside an operator")
            << QStringList{"range|ProfilerStep#1|0|300", "op|autograd::engine::evaluate_function: X|100|50",
                           "range|nn.Module: lm_head [backward]|120|80", "op|aten::mm|160|30"}
            << QStringList{"lm_head=60"} << 60.0 / 80.0;
        QTest::newRow("the optimizer's step: shown, no layer's")
            << QStringList{"range|ProfilerStep#1|0|100", "range|nn.Module: fc|0|40", "op|aten::addmm|0|40",
                           "range|Optimizer.step#AdamW.step|50|40", "op|aten::add_|50|10", "op|aten::mul_|70|10"}
            << QStringList{"fc=40", "optimizer=20"} << 40.0 / 60.0;
        QTest::newRow("collectives outside the model: their own row, apart from the share")
            << QStringList{"range|ProfilerStep#1|0|200", "range|nn.Module: fc|0|60", "op|aten::addmm|0|40",
                           "op|c10d::allreduce_|40|20", // DDP's, inside the module: the module's
                           "op|aten::add_|60|20", "op|c10d::allreduce_|100|50", "op|record_param_comms|160|10",
                           "op|nccl:all_reduce|180|5", "op|aten::zeros|190|5"}
            << QStringList{"fc=60", "collectives outside the model=65"} << 60.0 / 85.0;
        QTest::newRow("kernels go to the range their launch was in")
            << QStringList{"range|ProfilerStep#1|0|100", "range|nn.Module: fc|0|40", "runtime|cudaLaunchKernel|10|5|7",
                           "kernel|sgemm|20|500|7", "runtime|cudaLaunchKernel|60|5|8", "kernel|other|70|30|8"}
            << QStringList{"fc=5/500"} << 5.0 / 10.0;
        QTest::newRow("outside steps: not counted")
            << QStringList{"range|ProfilerStep#1|100|100", "range|nn.Module: fc|0|300", "op|aten::addmm|0|50",
                           "op|aten::addmm|120|50", "op|aten::addmm|250|20"}
            << QStringList{"fc=50"} << 1.0;
        QTest::newRow("two steps: per step")
            << QStringList{"range|ProfilerStep#1|0|100", "range|ProfilerStep#2|100|100", "range|nn.Module: fc|0|200",
                           "op|aten::addmm|0|30", "op|aten::addmm|100|50"}
            << QStringList{"fc=40"} << 1.0;
    }
    void attributes()
    {
        QFETCH(QStringList, events);
        QFETCH(QStringList, expected);
        QFETCH(double, fraction);
        QTemporaryDir dir;
        const std::string file = dir.filePath("rank0.json").toStdString();
        std::ofstream(file) << trace(events);
        auto store = TraceStore::open(dir.filePath("p.partita").toStdString());
        QVERIFY(store);
        auto rep = importChromeTrace(**store, {file});
        QVERIFY2(rep, rep ? "" : rep.error().str().c_str());
        auto a = attributeToLayers(**store, rep->run_id, {});
        QVERIFY2(a, a ? "" : a.error().str().c_str());
        QCOMPARE(int(a->layers.size()), int(expected.size()));
        for (const QString& e : expected) {
            const QString name = e.section('=', 0, 0);
            const double host = e.section('=', 1).section('/', 0, 0).toDouble() * 1e-6;
            const double device = e.section('/', 1).toDouble() * 1e-6;
            auto it = std::find_if(a->layers.begin(), a->layers.end(), [&](const AttributedLayer& l) { return l.name == name.toStdString(); });
            QVERIFY2(it != a->layers.end(), qPrintable(name));
            QVERIFY2(std::abs(it->host_s - host) < 1e-9, qPrintable(QString("%1: %2 s").arg(name).arg(it->host_s)));
            QVERIFY2(std::abs(it->device_s - device) < 1e-9, qPrintable(QString("%1: device %2 s").arg(name).arg(it->device_s)));
        }
        QVERIFY2(std::abs(a->attributed_fraction - fraction) < 1e-9, qPrintable(QString::number(a->attributed_fraction)));
    }

    void noSteps()
    {
        QTemporaryDir dir;
        const std::string file = dir.filePath("rank0.json").toStdString();
        std::ofstream(file) << trace({"range|nn.Module: fc|0|40", "op|aten::addmm|0|40"});
        auto store = TraceStore::open(dir.filePath("p.partita").toStdString());
        QVERIFY(store);
        auto rep = importChromeTrace(**store, {file});
        QVERIFY(rep);
        auto a = attributeToLayers(**store, rep->run_id, {});
        QVERIFY(!a);
        QVERIFY(a.error().str().find("holds no steps") != std::string::npos);
    }
};

QTEST_APPLESS_MAIN(TestLayerAttribution)
#include "tst_layerattribution.moc"
