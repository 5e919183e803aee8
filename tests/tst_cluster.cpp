// Clusters: presets from datasheets, native JSON, nvidia-smi topo -m, hostfiles.
#include "partita/core/clusterio.h"

#include <QFile>
#include <QTest>

using namespace partita;

namespace {
std::string readAll(const QString& path)
{
    QFile f(path);
    if (!f.open(QIODevice::ReadOnly))
        qFatal("cannot read %s", qPrintable(path));
    return f.readAll().toStdString();
}
QString data(const char* rel) { return QStringLiteral(PARTITA_TEST_DATA "/") + rel; }
constexpr double GiB = 1073741824.0;
} // namespace

class TestCluster : public QObject
{
    Q_OBJECT
private slots:
    void presets_data()
    {
        QTest::addColumn<QString>("spec");
        QTest::addColumn<int>("nodes");
        QTest::addColumn<int>("devices");
        QTest::addColumn<QString>("dtype");
        QTest::addColumn<double>("peak");
        QTest::addColumn<double>("memory");
        QTest::addColumn<double>("memBandwidth");
        QTest::addColumn<double>("nicTotal"); // bytes/s per node, all NICs
        // Figures: ORACLES.md "Hardware (vendor datasheets)" and AWS instance types.
        QTest::newRow("dgx-a100-80gb") << "dgx-a100-80gb" << 1 << 8 << "bf16" << 312e12 << 80 * GiB << 2039e9 << 8 * 25e9;
        QTest::newRow("dgx-h100 x4") << "dgx-h100:4" << 4 << 32 << "bf16" << 989e12 << 80 * GiB << 3350e9 << 8 * 50e9;
        QTest::newRow("p3.16xlarge x16") << "p3.16xlarge:16" << 16 << 128 << "fp16" << 125e12 << 16 * GiB << 900e9 << 25e9 / 8;
        QTest::newRow("p4d.24xlarge") << "p4d.24xlarge" << 1 << 8 << "bf16" << 312e12 << 40 * GiB << 1555e9 << 400e9 / 8;
        QTest::newRow("p5.48xlarge") << "p5.48xlarge:2" << 2 << 16 << "bf16" << 989e12 << 80 * GiB << 3350e9 << 3200e9 / 8;
        QTest::newRow("g4dn.12xlarge x4") << "g4dn.12xlarge:4" << 4 << 16 << "fp16" << 65e12 << 16 * GiB << 320e9 << 50e9 / 8;
    }
    void presets()
    {
        QFETCH(QString, spec);
        QFETCH(int, nodes);
        QFETCH(int, devices);
        QFETCH(QString, dtype);
        QFETCH(double, peak);
        QFETCH(double, memory);
        QFETCH(double, memBandwidth);
        QFETCH(double, nicTotal);
        auto c = clusterPreset(spec.toStdString());
        QVERIFY2(c, c ? "" : c.error().str().c_str());
        QCOMPARE(int(c->nodes.size()), nodes);
        QCOMPARE(c->deviceCount(), devices);
        QVERIFY(validateCluster(*c).empty());
        const DeviceSpec& d = c->nodes.back().devices.front();
        QCOMPARE(d.peak_flops.at(dtype.toStdString()), peak);
        QCOMPARE(double(d.memory_bytes), memory);
        QCOMPARE(d.memory_bandwidth, memBandwidth);
        QVERIFY(!d.source.empty());
        const NicSpec& nic = c->nodes.front().nic;
        QCOMPARE(nic.count * nic.link.bandwidth, nicTotal);
        QVERIFY(!nic.link.source.empty() && !c->nodes.front().intra.source.empty());
        // Presets survive the native format unchanged.
        auto back = clusterFromJson(clusterToJson(*c));
        QVERIFY2(back, back ? "" : back.error().str().c_str());
        QVERIFY(back->nodes == c->nodes);
    }

    void badPresets_data()
    {
        QTest::addColumn<QString>("spec");
        QTest::addColumn<QString>("message");
        QTest::newRow("unknown") << "dgx-z9000" << "unknown cluster preset";
        QTest::newRow("zero nodes") << "dgx-h100:0" << "from 1 to 100000";
        QTest::newRow("not a number") << "dgx-h100:four" << "from 1 to 100000";
        QTest::newRow("trailing junk") << "dgx-h100:4x" << "from 1 to 100000";
    }
    void badPresets()
    {
        QFETCH(QString, spec);
        QFETCH(QString, message);
        auto c = clusterPreset(spec.toStdString());
        QVERIFY(!c);
        QVERIFY2(QString::fromStdString(c.error().message).contains(message), c.error().str().c_str());
    }

    void nvlinkFigures()
    {
        // NVLink per GPU, per direction = half the datasheet's bidirectional figure.
        QCOMPARE(clusterPreset("dgx-a100-80gb")->nodes[0].linkBetween(0, 5).bandwidth, 300e9);
        QCOMPARE(clusterPreset("dgx-h100")->nodes[0].linkBetween(2, 7).bandwidth, 450e9);
        const Node p3 = clusterPreset("p3.16xlarge")->nodes[0];
        QCOMPARE(p3.linkBetween(0, 3).bandwidth, 50e9); // NV2
        QCOMPARE(p3.linkBetween(0, 1).bandwidth, 25e9); // NV1
        QCOMPARE(p3.linkBetween(0, 5).kind, LinkKind::CrossCPU);
        // Six NVLinks per V100.
        for (int g = 0; g < 8; ++g) {
            int lanes = 0;
            for (int o = 0; o < 8; ++o)
                if (o != g)
                    lanes += p3.linkBetween(g, o).lanes;
            QCOMPARE(lanes, 6);
        }
    }

    void demoClusterLoads()
    {
        auto c = loadCluster(PARTITA_SOURCE_DIR "/resources/demo/cluster.json");
        QVERIFY2(c, c ? "" : c.error().str().c_str());
        QCOMPARE(int(c->nodes.size()), 2);
        QCOMPARE(c->deviceCount(), 16);
        QCOMPARE(c->nodes[1].name, std::string("node-1"));
        QCOMPARE(c->nodes[0].nic.link.bandwidth, 25e9);     // "200 Gb/s"
        QCOMPARE(c->nodes[0].intra.latency, 0.47e-6);       // "0.47 us"
        QCOMPARE(c->nodes[0].devices[3].peak_flops.at("bf16"), 312e12);
        auto again = clusterFromJson(clusterToJson(*c), "");
        QVERIFY(again);
        QVERIFY(again->nodes == c->nodes);
    }

    void malformedJson_data()
    {
        QTest::addColumn<QString>("text");
        QTest::addColumn<QString>("where");
        QTest::addColumn<QString>("message");
        const QString node = R"({"partita_cluster":1,"nodes":[%1]})";
        QTest::newRow("empty") << "" << "" << "empty";
        QTest::newRow("truncated") << R"({"partita_cluster":1,"nodes":[)" << "line 1" << "ends early";
        QTest::newRow("no nodes") << R"({"partita_cluster":1,"nodes":[]})" << "/nodes" << "no nodes";
        QTest::newRow("no version") << R"({"nodes":[]})" << "/partita_cluster" << "missing";
        QTest::newRow("no devices") << node.arg(R"({"name":"a"})") << "/nodes/0/devices" << "missing";
        QTest::newRow("zero devices") << node.arg(R"({"name":"a","devices":[]})") << "/nodes" << "no devices";
        QTest::newRow("unknown preset") << node.arg(R"({"devices":[{"preset":"a200"}]})") << "/nodes/0/devices/0/preset" << "unknown device preset";
        QTest::newRow("bad unit") << node.arg(R"({"devices":[{"name":"g","memory":"80 furlongs"}]})") << "/nodes/0/devices/0/memory" << "unknown unit 'furlongs'";
        QTest::newRow("negative flops") << node.arg(R"({"devices":[{"name":"g","peak_flops":{"bf16":-1}}]})") << "/nodes/0/devices/0/peak_flops/bf16" << "out of range";
        QTest::newRow("bad link kind") << node.arg(R"({"devices":[{"preset":"t4","count":2}],"intra":{"kind":"carrier-pigeon","bandwidth":1}})") << "/nodes/0/intra/kind" << "unknown link kind";
        QTest::newRow("no intra bandwidth") << node.arg(R"({"devices":[{"preset":"t4","count":2}]})") << "/nodes" << "no intra-node link";
        QTest::newRow("link to nowhere") << node.arg(R"({"devices":[{"preset":"t4","count":2}],"intra":{"kind":"pcie","bandwidth":"16 GB/s"},"links":[{"a":0,"b":5,"kind":"nvlink","bandwidth":1}]})") << "/nodes" << "does not have";
        QTest::newRow("multi-node without nic") << node.arg(R"({"count":2,"devices":[{"preset":"t4"}]})") << "/nodes" << "needs NICs";
        QTest::newRow("too many devices") << node.arg(R"({"devices":[{"preset":"t4","count":5000}]})") << "/nodes/0/devices/0/count" << "out of range";
        QTest::newRow("bad kind") << node.arg(R"({"devices":[{"name":"x","kind":"tpu"}]})") << "/nodes/0/devices/0/kind" << "gpu";
        QTest::newRow("number past double") << node.arg(R"({"devices":[{"name":"g","memory_bandwidth":4.7e995}]})") << "" << "number overflow";
    }
    void malformedJson()
    {
        QFETCH(QString, text);
        QFETCH(QString, where);
        QFETCH(QString, message);
        auto c = clusterFromJson(text.toStdString(), "c.json");
        QVERIFY(!c);
        QCOMPARE(QString::fromStdString(c.error().file), QStringLiteral("c.json"));
        QVERIFY2(QString::fromStdString(c.error().where).startsWith(where), c.error().str().c_str());
        QVERIFY2(QString::fromStdString(c.error().message).contains(message), c.error().str().c_str());
    }

    void topoMatchesPreset()
    {
        // The p3.16xlarge topology read from nvidia-smi equals the preset's hybrid cube-mesh.
        auto node = nodeFromNvidiaSmiTopo(readAll(data("topo/p3.16xlarge.txt")), *devicePreset("v100-sxm2-16gb"));
        QVERIFY2(node, node ? "" : node.error().str().c_str());
        const Node preset = clusterPreset("p3.16xlarge")->nodes[0];
        QCOMPARE(node->devices.size(), size_t(8));
        for (int a = 0; a < 8; ++a)
            for (int b = a + 1; b < 8; ++b) {
                QCOMPARE(node->linkBetween(a, b).kind, preset.linkBetween(a, b).kind);
                QCOMPARE(node->linkBetween(a, b).bandwidth, preset.linkBetween(a, b).bandwidth);
                QCOMPARE(node->linkBetween(a, b).lanes, preset.linkBetween(a, b).lanes);
            }
        QCOMPARE(node->nic.count, 0);
    }

    void topoDgxA100()
    {
        auto c = loadCluster(data("topo/dgx-a100.txt").toStdString(), {"a100-sxm4-80gb", {}});
        QVERIFY2(c, c ? "" : c.error().str().c_str());
        const Node& n = c->nodes[0];
        QCOMPARE(n.devices.size(), size_t(8));
        QCOMPARE(n.nic.count, 10);
        QCOMPARE(n.linkBetween(1, 6).kind, LinkKind::NVLink);
        QCOMPARE(n.linkBetween(1, 6).lanes, 12);
        QCOMPARE(n.linkBetween(1, 6).bandwidth, 300e9);
    }

    void topoPcie()
    {
        auto node = nodeFromNvidiaSmiTopo(readAll(data("topo/pcie-4gpu.txt")), *devicePreset("t4"));
        QVERIFY2(node, node ? "" : node.error().str().c_str());
        QCOMPARE(node->linkBetween(0, 1).kind, LinkKind::PCIe);
        QCOMPARE(node->linkBetween(0, 2).kind, LinkKind::CrossCPU);
        QCOMPARE(node->linkBetween(2, 3).kind, LinkKind::PCIe);
        QCOMPARE(node->linkBetween(0, 1).bandwidth, 15.75e9);
    }

    void topoErrors_data()
    {
        QTest::addColumn<QString>("text");
        QTest::addColumn<QString>("device");
        QTest::addColumn<QString>("message");
        QTest::newRow("not topo") << "hello world\n" << "a100-sxm4-80gb" << "no header line";
        QTest::newRow("header only") << "\tGPU0\tGPU1\tCPU Affinity\n" << "a100-sxm4-80gb" << "not followed by any GPU row";
        QTest::newRow("short row") << "\tGPU0\tGPU1\nGPU0\t X \tNV4\nGPU1\tNV4\n" << "a100-sxm4-80gb" << "has 1 cells";
        QTest::newRow("asymmetric") << "\tGPU0\tGPU1\nGPU0\t X \tNV4\nGPU1\tPIX\t X \n" << "a100-sxm4-80gb" << "not symmetric";
        QTest::newRow("unknown cell") << "\tGPU0\tGPU1\nGPU0\t X \tWARP\nGPU1\tWARP\t X \n" << "a100-sxm4-80gb" << "unknown link 'WARP'";
        QTest::newRow("bad diagonal") << "\tGPU0\tGPU1\nGPU0\tNV1\tNV1\nGPU1\tNV1\t X \n" << "a100-sxm4-80gb" << "diagonal";
        QTest::newRow("missing rows") << "\tGPU0\tGPU1\tGPU2\nGPU0\t X \tNV1\tNV1\nGPU1\tNV1\t X \tNV1\n" << "a100-sxm4-80gb" << "names 3 GPUs but 2";
        QTest::newRow("nvlink on t4") << "\tGPU0\tGPU1\nGPU0\t X \tNV2\nGPU1\tNV2\t X \n" << "t4" << "has no NVLink";
        QTest::newRow("rows out of order") << "\tGPU0\tGPU1\nGPU1\t X \tNV4\nGPU0\tNV4\t X \n" << "a100-sxm4-80gb" << "expected row GPU0";
    }
    void topoErrors()
    {
        QFETCH(QString, text);
        QFETCH(QString, device);
        QFETCH(QString, message);
        auto node = nodeFromNvidiaSmiTopo(text.toStdString(), *devicePreset(device.toStdString()), "topo.txt");
        QVERIFY(!node);
        QCOMPARE(QString::fromStdString(node.error().file), QStringLiteral("topo.txt"));
        QVERIFY2(QString::fromStdString(node.error().message).contains(message), node.error().str().c_str());
    }

    void hostfiles_data()
    {
        QTest::addColumn<QString>("file");
        QTest::addColumn<QStringList>("hosts");
        QTest::addColumn<QList<int>>("slotCounts");
        QTest::newRow("openmpi") << "hostfiles/openmpi.txt" << QStringList{"node-a", "node-b"} << QList<int>{8, 8};
        QTest::newRow("deepspeed, repeated host adds") << "hostfiles/deepspeed.txt" << QStringList{"worker-1", "worker-2"} << QList<int>{8, 4};
    }
    void hostfiles()
    {
        QFETCH(QString, file);
        QFETCH(QStringList, hosts);
        QFETCH(QList<int>, slotCounts);
        auto h = parseHostfile(readAll(data(qPrintable(file))));
        QVERIFY2(h, h ? "" : h.error().str().c_str());
        QCOMPARE(int(h->size()), hosts.size());
        for (int i = 0; i < hosts.size(); ++i) {
            QCOMPARE(QString::fromStdString((*h)[size_t(i)].host), hosts[i]);
            QCOMPARE((*h)[size_t(i)].slot_count, slotCounts[i]);
        }
        auto c = loadCluster(data(qPrintable(file)).toStdString(), {{}, "dgx-a100-80gb"});
        QVERIFY2(c, c ? "" : c.error().str().c_str());
        QCOMPARE(int(c->nodes.size()), hosts.size());
        QCOMPARE(int(c->nodes[0].devices.size()), slotCounts[0]);
    }

    void hostfileErrors_data()
    {
        QTest::addColumn<QString>("text");
        QTest::addColumn<QString>("where");
        QTest::addColumn<QString>("message");
        QTest::newRow("empty") << "# nothing\n\n" << "" << "no hosts";
        QTest::newRow("bad slots") << "a slots=8\nb slots=x\n" << "line 2" << "integer from 1 to 65536";
        QTest::newRow("zero slots") << "a slots=0\n" << "line 1" << "integer from 1 to 65536";
        QTest::newRow("unknown key") << "a slots=2 gpus=4\n" << "line 1" << "unknown key 'gpus'";
        QTest::newRow("no equals") << "a 8\n" << "line 1" << "expected key=value";
        QTest::newRow("max below slots") << "a slots=8 max_slots=4\n" << "line 1" << "less than slots";
        QTest::newRow("bad host") << "a;rm slots=1\n" << "line 1" << "not a host name";
    }
    void hostfileErrors()
    {
        QFETCH(QString, text);
        QFETCH(QString, where);
        QFETCH(QString, message);
        auto h = parseHostfile(text.toStdString(), "hosts");
        QVERIFY(!h);
        QVERIFY2(QString::fromStdString(h.error().where).startsWith(where), h.error().str().c_str());
        QVERIFY2(QString::fromStdString(h.error().message).contains(message), h.error().str().c_str());
    }

    void loaderNeedsHardwareFacts()
    {
        auto topo = loadCluster(data("topo/dgx-a100.txt").toStdString());
        QVERIFY(!topo);
        QVERIFY(QString::fromStdString(topo.error().message).contains("--device"));
        auto hosts = loadCluster(data("hostfiles/openmpi.txt").toStdString());
        QVERIFY(!hosts);
        QVERIFY(QString::fromStdString(hosts.error().message).contains("--node"));
        auto missing = loadCluster("/nonexistent/cluster.json");
        QVERIFY(!missing);
        QVERIFY(QString::fromStdString(missing.error().message).contains("no such file"));
    }
};

QTEST_APPLESS_MAIN(TestCluster)
#include "tst_cluster.moc"
