// A GPU's measured tables (executor/gpusweep.h), without a GPU: the sweep's
// JSON reads back what was written and refuses malformed files naming the
// place; the fit recovers the efficiencies synthetic timings were made from,
// per precision, in the simulator's own formulas; a calibration with
// per-precision curves round-trips, and the simulator takes the strategy's
// precision's curve. On the sweep measured on an H200 (tests/data/gpu/h200):
// the calibration the library uses for Hopper SXM GPUs is what the fit makes
// of it.
#include "testdata.h"
#include "partita/core/clusterio.h"
#include "partita/core/fileio.h"
#include "partita/core/modelio.h"
#include "partita/core/simulator.h"
#include "partita/executor/gpusweep.h"

#include <QTest>

#include <algorithm>

#include <cmath>

using namespace partita;

namespace {

DeviceSpec h200() { return *devicePreset("h200-sxm"); }

// The memory efficiency the synthetic copies are timed at: 30 % below 1 MB, 90 % from 64 MB.
double memEff(double mb) { return mb < 1 ? 0.3 : mb < 64 ? 0.6 : 0.9; }

// Timings as a GPU with these efficiencies would give them: a GEMM's kernel
// time at its efficiency; unaligned GEMMs at `unaligned` times their padded twin's rate.
GpuSweep synthetic(const std::vector<std::pair<std::string, double>>& precisionEff, double unaligned = 0)
{
    const DeviceSpec d = h200();
    GpuSweep s;
    s.gpu = "NVIDIA H200";
    s.driver = "580.159.04";
    s.cuda_runtime = "13.0.0";
    s.cublas = "13.0.0";
    s.date = "2026-12-04T18:00:00Z";
    s.cc_major = 9;
    for (double bytes = 65536; bytes <= 4.0 * (1ull << 30); bytes *= 2)
        s.copies.push_back({bytes, bytes / (d.memory_bandwidth * memEff(bytes / 1e6))});
    for (const auto& [p, eff] : precisionEff)
        for (int64_t n : {1024, 4096, 8192}) {
            GemmPoint g{p, "square", n, n, n, 0};
            g.seconds = g.flops() / (d.peak_flops.at(p) * eff);
            s.gemms.push_back(g);
        }
    if (unaligned > 0)
        for (int64_t tokens : {1024, 8192}) {
            GemmPoint u{"bf16", "unaligned", tokens, 50257, 768, 0}, p{"bf16", "padded", tokens, 50304, 768, 0};
            p.seconds = p.flops() / (d.peak_flops.at("bf16") * 0.7); // its own rate: not in the curve's bins
            u.seconds = u.flops() / (d.peak_flops.at("bf16") * 0.7 * unaligned);
            s.gemms.push_back(u);
            s.gemms.push_back(p);
        }
    s.collectives.push_back({"all_reduce", 1 << 20, 2e-5, {"ncclDevKernel_AllReduce"}, 1.5e-5});
    return s;
}

} // namespace

class TestGpuSweep : public QObject
{
    Q_OBJECT
private slots:
    void roundTrip()
    {
        const GpuSweep s = synthetic({{"bf16", 0.8}, {"fp8", 0.6}});
        auto back = gpuSweepFromJson(gpuSweepToJson(s), "sweep.json");
        QVERIFY2(back, back ? "" : back.error().str().c_str());
        QCOMPARE(back->gpu, s.gpu);
        QCOMPARE(back->driver, s.driver);
        QCOMPARE(back->cc_major, 9);
        QCOMPARE(back->gemms.size(), s.gemms.size());
        QCOMPARE(back->gemms[4].precision, s.gemms[4].precision);
        QCOMPARE(back->gemms[4].seconds, s.gemms[4].seconds);
        QCOMPARE(back->copies.size(), s.copies.size());
        QCOMPARE(back->collectives.size(), size_t(1));
        QCOMPARE(back->collectives[0].kernels, s.collectives[0].kernels);
    }

    void malformed_data()
    {
        QTest::addColumn<QString>("text");
        QTest::addColumn<QString>("message");
        QTest::newRow("not JSON") << "{" << "sweep.json";
        QTest::newRow("another document") << R"({"partita_calibration": 1})" << "not a GPU sweep";
        QTest::newRow("no GPU name") << R"({"partita_gpu_sweep": 1})" << "/gpu";
        QTest::newRow("negative time")
            << R"({"partita_gpu_sweep": 1, "gpu": "G", "gemms": [{"precision": "bf16", "m": 8, "n": 8, "k": 8, "seconds": -1}]})"
            << "/gemms/0/seconds";
        QTest::newRow("no m") << R"({"partita_gpu_sweep": 1, "gpu": "G", "gemms": [{"precision": "bf16", "n": 8, "k": 8, "seconds": 1}]})"
                              << "/gemms/0/m";
        QTest::newRow("copy without bytes") << R"({"partita_gpu_sweep": 1, "gpu": "G", "copies": [{"seconds": 1}]})"
                                            << "/copies/0/bytes";
    }
    void malformed()
    {
        QFETCH(QString, text);
        QFETCH(QString, message);
        auto s = gpuSweepFromJson(text.toStdString(), "sweep.json");
        QVERIFY(!s);
        QVERIFY2(QString::fromStdString(s.error().str()).contains(message), s.error().str().c_str());
        QVERIFY2(QString::fromStdString(s.error().str()).contains("sweep.json"), s.error().str().c_str());
    }

    // The fit gives back the efficiencies the timings were made with.
    void fit_data()
    {
        QTest::addColumn<double>("bf16");
        QTest::addColumn<double>("fp8"); // 0: not measured
        QTest::newRow("bf16 at 80 %") << 0.8 << 0.0;
        QTest::newRow("bf16 at 45 %") << 0.45 << 0.0;
        QTest::newRow("bf16 at 75 %, fp8 at 55 %") << 0.75 << 0.55;
    }
    void fit()
    {
        QFETCH(double, bf16);
        QFETCH(double, fp8);
        std::vector<std::pair<std::string, double>> eff{{"bf16", bf16}};
        if (fp8 > 0)
            eff.emplace_back("fp8", fp8);
        auto cal = calibrationFromSweep(synthetic(eff), h200());
        QVERIFY2(cal, cal ? "" : cal.error().str().c_str());
        for (double mb : {0.1, 10.0, 1000.0})
            QVERIFY2(std::abs(cal->memory.at(mb) - memEff(mb)) < 1e-9, qPrintable(QString::number(cal->memory.at(mb))));
        for (double gflop : {2.1, 137.4, 1099.5}) { // the three squares
            QVERIFY2(std::abs(cal->matmulFor("bf16").at(gflop) - bf16) < 1e-9, qPrintable(QString::number(gflop)));
            QVERIFY(std::abs(cal->matmul.at(gflop) - bf16) < 1e-9); // the default precision's curve
            if (fp8 > 0)
                QVERIFY(std::abs(cal->matmulFor("fp8").at(gflop) - fp8) < 1e-9);
        }
        QCOMPARE(cal->matmul_by_precision.count("fp8"), size_t(fp8 > 0));
        QCOMPARE(cal->measured.at("driver"), std::string("580.159.04"));
        QVERIFY(cal->source.find("NVIDIA H200") != std::string::npos);
        QCOMPARE(cal->kernel_overhead, 0.0);
        QCOMPARE(cal->unaligned_matmul_factor, 1.0); // not measured
        // What is written is read back, per-precision curves and provenance included.
        auto back = calibrationFromJson(calibrationToJson(*cal), "cal.json");
        QVERIFY2(back, back ? "" : back.error().str().c_str());
        QVERIFY(*back == *cal);
    }

    // The unaligned GEMMs' rate over their padded twins' becomes the factor.
    void unalignedFactor_data()
    {
        QTest::addColumn<double>("factor");
        QTest::newRow("a fifth of the rate") << 0.2;
        QTest::newRow("no loss") << 1.0;
    }
    void unalignedFactor()
    {
        QFETCH(double, factor);
        auto cal = calibrationFromSweep(synthetic({{"bf16", 0.8}}, factor), h200());
        QVERIFY2(cal, cal ? "" : cal.error().str().c_str());
        QVERIFY2(std::abs(cal->unaligned_matmul_factor - factor) < 1e-9, qPrintable(QString::number(cal->unaligned_matmul_factor)));
        auto back = calibrationFromJson(calibrationToJson(*cal), "cal.json");
        QVERIFY(back && back->unaligned_matmul_factor == cal->unaligned_matmul_factor);
    }

    void refusals_data()
    {
        QTest::addColumn<int>("what");
        QTest::addColumn<QString>("message");
        QTest::newRow("no copies") << 0 << "no memory-bandwidth point";
        QTest::newRow("no bandwidth") << 1 << "memory_bandwidth";
        QTest::newRow("no peak for the GEMMs' precision") << 2 << "no GEMM measured";
    }
    void refusals()
    {
        QFETCH(int, what);
        QFETCH(QString, message);
        GpuSweep s = synthetic({{"bf16", 0.8}});
        DeviceSpec d = h200();
        if (what == 0)
            s.copies.clear();
        if (what == 1)
            d.memory_bandwidth = 0;
        if (what == 2)
            d.peak_flops.erase("bf16");
        auto cal = calibrationFromSweep(s, d);
        QVERIFY(!cal);
        QVERIFY2(QString::fromStdString(cal.error().str()).contains(message), cal.error().str().c_str());
    }

    void calibrationFileRefusals_data()
    {
        QTest::addColumn<QString>("extra");
        QTest::addColumn<QString>("message");
        QTest::newRow("tables not an object") << R"("matmul_efficiency_by_precision": [1])" << "/matmul_efficiency_by_precision";
        QTest::newRow("bad table") << R"("matmul_efficiency_by_precision": {"fp8": [[1, 0]]})"
                                   << "/matmul_efficiency_by_precision/fp8";
        QTest::newRow("provenance not strings") << R"("measured": {"date": 5})" << "/measured/date";
    }
    void calibrationFileRefusals()
    {
        QFETCH(QString, extra);
        QFETCH(QString, message);
        const QString text = QString(R"({"partita_calibration": 1, "device": "d", "source": "s", "matmul_efficiency": [[0, 0.5]],
                                         "memory_efficiency": [[0, 0.5]], %1})").arg(extra);
        auto c = calibrationFromJson(text.toStdString(), "cal.json");
        QVERIFY(!c);
        QVERIFY2(QString::fromStdString(c.error().str()).contains(message), c.error().str().c_str());
    }

    // The strategy's precision picks its measured curve; one without keeps `matmul`.
    void simulatorPicksPrecision_data()
    {
        QTest::addColumn<QString>("precision");
        QTest::addColumn<bool>("slower");
        QTest::newRow("bf16: its own curve at 25 %") << "bf16" << true;
        QTest::newRow("fp16: no curve, the plain one at 90 %") << "fp16" << false;
    }
    void simulatorPicksPrecision()
    {
        QFETCH(QString, precision);
        QFETCH(bool, slower);
        auto m = modelFromHfConfig(R"({"model_type": "gpt2", "n_embd": 1024, "n_head": 16, "n_layer": 4,
                                       "n_positions": 1024, "vocab_size": 50257})");
        QVERIFY(m);
        Cluster c = *clusterPreset("dgx-h100");
        c.nodes[0].devices.resize(1);
        Strategy s;
        s.global_batch = 8;
        s.micro_batch = 8;
        s.precision = precision == "bf16" ? Precision::BF16 : Precision::FP16;
        Calibration plain = defaultCalibration(c.nodes[0].devices[0]);
        plain.matmul.points = {{0, 0.9}};
        Calibration withBf16 = plain;
        withBf16.matmul_by_precision["bf16"].points = {{0, 0.25}};
        SimOptions a, b;
        a.calibration = plain;
        b.calibration = withBf16;
        auto ra = simulate(*m, c, s, a);
        auto rb = simulate(*m, c, s, b);
        QVERIFY2(ra && rb, ra ? (rb ? "" : rb.error().str().c_str()) : ra.error().str().c_str());
        QCOMPARE(rb->step_time > ra->step_time * 1.5, slower);
        if (!slower)
            QCOMPARE(rb->step_time, ra->step_time);
    }

    // A GEMM with a dimension that is no multiple of 8 (16-bit elements) costs
    // the factor; aligned ones do not.
    void simulatorUnaligned_data()
    {
        QTest::addColumn<int>("vocab");
        QTest::addColumn<bool>("slower");
        QTest::newRow("GPT-2's 50,257") << 50257 << true;
        QTest::newRow("padded to 50,304") << 50304 << false;
    }
    void simulatorUnaligned()
    {
        QFETCH(int, vocab);
        QFETCH(bool, slower);
        auto m = modelFromHfConfig(QString(R"({"model_type": "gpt2", "n_embd": 768, "n_head": 12, "n_layer": 2,
                                               "n_positions": 1024, "vocab_size": %1})").arg(vocab).toStdString());
        QVERIFY(m);
        Cluster c = *clusterPreset("dgx-h100");
        c.nodes[0].devices.resize(1);
        Strategy s;
        s.global_batch = 8;
        s.micro_batch = 8;
        Calibration aligned = defaultCalibration(c.nodes[0].devices[0]);
        aligned.unaligned_matmul_factor = 1;
        Calibration costly = aligned;
        costly.unaligned_matmul_factor = 0.2;
        SimOptions a, b;
        a.calibration = aligned;
        b.calibration = costly;
        auto ra = simulate(*m, c, s, a);
        auto rb = simulate(*m, c, s, b);
        QVERIFY(ra && rb);
        QCOMPARE(rb->step_time > ra->step_time * 1.2, slower);
        if (!slower)
            QCOMPARE(rb->step_time, ra->step_time);
    }

    // resources/calibration/nvidia-h200.json is the fit of the sweep measured
    // on the H200, and the default for the Hopper SXM parts; others keep the
    // A100 tables.
    void measuredDefaults_data()
    {
        QTest::addColumn<QString>("preset");
        QTest::addColumn<bool>("measured");
        QTest::addColumn<QString>("source");
        QTest::newRow("H200: measured on it") << "h200-sxm" << true << "measured on NVIDIA H200";
        QTest::newRow("H100 SXM5: the same die") << "h100-sxm5" << true << "applied to H100-SXM5-80GB";
        QTest::newRow("A100: Calculon's tables") << "a100-sxm4-80gb" << false << "Calculon";
        QTest::newRow("V100: Calculon's tables, said so") << "v100-sxm2-32gb" << false << "no measurement of this device";
    }
    void measuredDefaults()
    {
        QFETCH(QString, preset);
        QFETCH(bool, measured);
        QFETCH(QString, source);
        auto sweepText = readTextFile(partita::test::testData("gpu/h200/sweep.json").toStdString());
        QVERIFY2(sweepText, sweepText ? "" : sweepText.error().str().c_str());
        auto sweep = gpuSweepFromJson(*sweepText, "sweep.json");
        QVERIFY2(sweep, sweep ? "" : sweep.error().str().c_str());
        QCOMPARE(sweep->gpu, std::string("NVIDIA H200"));
        auto fitted = calibrationFromSweep(*sweep, h200());
        QVERIFY2(fitted, fitted ? "" : fitted.error().str().c_str());
        const QString file = partita::test::testData("../../resources/calibration/nvidia-h200.json");
        auto fileText = readTextFile(file.toStdString());
        QVERIFY(fileText);
        auto committed = calibrationFromJson(*fileText, file.toStdString());
        QVERIFY2(committed, committed ? "" : committed.error().str().c_str());
        QVERIFY2(*committed == *fitted, "the committed calibration is not what the committed sweep gives: "
                                        "partita-cli calibrate --from-sweep tests/data/gpu/h200/sweep.json --out FILE");
        const Calibration d = defaultCalibration(*devicePreset(preset.toStdString()));
        QCOMPARE(d.memory == committed->memory && d.unaligned_matmul_factor == committed->unaligned_matmul_factor,
                 measured);
        // The H100 keeps the H200's GEMM curve shape, scaled so its best point
        // is the published H100 MAMF (bf16 794.5, fp8 1402.6 TFLOP/s).
        auto best = [](const EfficiencyCurve& e) {
            double b = 0;
            for (const auto& p : e.points)
                b = std::max(b, p.second);
            return b;
        };
        if (preset == "h100-sxm5") {
            QCOMPARE(best(d.matmul), 794.5 / 989.0);
            QCOMPARE(best(d.matmulFor("fp8")), 1402.6 / 1979.0);
            const double ratio = d.matmul.points[10].second / committed->matmul.points[10].second;
            QCOMPARE(ratio, (794.5 / 989.0) / best(committed->matmul));
        } else {
            QCOMPARE(d.matmul == committed->matmul, measured);
        }
        QVERIFY2(QString::fromStdString(d.source).contains(source), d.source.c_str());
    }
};

QTEST_APPLESS_MAIN(TestGpuSweep)
#include "tst_gpusweep.moc"
