// Strategy editing, the designer's drag and drop without the GUI: atoms
// assigned to layers, refused with the layer and the reason when the result
// would not resolve.
#include "partita/core/clusterio.h"
#include "partita/core/modelio.h"
#include "partita/core/strategyedit.h"

#include <QTest>

using namespace partita;

namespace {
Model gpt2()
{
    auto m = loadModel(PARTITA_TEST_DATA "/hf/gpt2.json");
    if (!m)
        qFatal("%s", m.error().str().c_str());
    return *m;
}
Strategy base(int dp, int tp, int pp, int zero = 0)
{
    Strategy s;
    s.name = "test";
    s.dp = dp;
    s.tp = tp;
    s.pp = pp;
    s.zero_stage = zero;
    s.global_batch = 8 * dp;
    s.micro_batch = 1;
    return s;
}
const LayerAssignment& assigned(const Strategy& s, const Model& m, const Cluster& c, const std::string& layer)
{
    static ResolvedStrategy r;
    auto rs = resolveStrategy(s, m, c);
    if (!rs)
        qFatal("%s", rs.error().str().c_str());
    r = *rs;
    for (size_t i = 0; i < m.layers.size(); ++i)
        if (m.layers[i].name == layer)
            return r.layers[i];
    qFatal("no layer %s", layer.c_str());
}
} // namespace

class TestStrategyEdit : public QObject
{
    Q_OBJECT
private slots:
    void atomsHaveUniqueIds()
    {
        QSet<QString> ids;
        for (const auto& a : strategyAtoms()) {
            QVERIFY(!a.description.empty());
            QVERIFY(!ids.contains(QString::fromStdString(a.id)));
            ids.insert(QString::fromStdString(a.id));
            QCOMPARE(atomFromId(a.id), std::optional<AtomKind>(a.kind));
        }
        QVERIFY(!atomFromId("zero-9"));
    }

    void assign_data()
    {
        QTest::addColumn<QString>("atom");
        QTest::addColumn<int>("tp");
        QTest::addColumn<int>("pp");
        QTest::addColumn<int>("zero");
        QTest::addColumn<QString>("layer");
        QTest::addColumn<int>("param"); // stage or shards
        QTest::addColumn<QString>("expect"); // what the layer resolves to, or "refused: <text in the reason>"
        QTest::newRow("ps") << "ps" << 1 << 1 << 0 << "h.3.mlp.fc1" << 2 << "sync ps 2";
        QTest::newRow("sfb on linear") << "sfb" << 1 << 1 << 0 << "h.0.mlp.fc2" << 0 << "sync sfb 0";
        QTest::newRow("hierarchical") << "allreduce-hierarchical" << 1 << 1 << 0 << "embeddings" << 0
                                      << "sync allreduce 0";
        QTest::newRow("no sync") << "nosync" << 1 << 1 << 0 << "h.0.ln_1" << 0 << "sync none 0";
        QTest::newRow("tp row") << "tp-row" << 2 << 1 << 0 << "h.1.mlp.fc1" << 0 << "tp row";
        QTest::newRow("replicated") << "tp-replicated" << 2 << 1 << 0 << "h.1.attention.qkv" << 0 << "tp replicated";
        QTest::newRow("stage") << "stage" << 1 << 2 << 0 << "h.11.mlp.fc2" << 1 << "stage 1";
        QTest::newRow("recompute") << "recompute-full" << 1 << 1 << 0 << "h.4.mlp.fc1" << 0 << "recompute full";
        QTest::newRow("sfb on a norm") << "sfb" << 1 << 1 << 0 << "h.0.ln_1" << 0 << "refused: fully-connected";
        QTest::newRow("tp with tp 1") << "tp-column" << 1 << 1 << 0 << "h.0.mlp.fc1" << 0
                                      << "refused: tensor-parallel degree is 1";
        QTest::newRow("stage out of range") << "stage" << 1 << 2 << 0 << "h.0.mlp.fc1" << 2 << "refused: does not exist";
        QTest::newRow("stage order") << "stage" << 1 << 2 << 0 << "embeddings" << 1 << "refused: reads";
        QTest::newRow("sync without params") << "ps" << 1 << 1 << 0 << "h.0.mlp.act" << 0
                                             << "refused: no parameters";
        QTest::newRow("ps with zero") << "ps" << 1 << 1 << 1 << "h.0.mlp.fc1" << 0 << "refused: ZeRO";
        QTest::newRow("unknown layer") << "ps" << 1 << 1 << 0 << "h.99.mlp.fc1" << 0 << "refused: not a layer";
    }
    void assign()
    {
        QFETCH(QString, atom);
        QFETCH(int, tp);
        QFETCH(int, pp);
        QFETCH(int, zero);
        QFETCH(QString, layer);
        QFETCH(int, param);
        QFETCH(QString, expect);
        const Model m = gpt2();
        const Cluster c = *clusterPreset("p3.16xlarge:4");
        const Strategy s = base(32 / (tp * pp), tp, pp, zero);
        QVERIFY2(resolveStrategy(s, m, c), "the base strategy resolves");
        Atom a;
        a.kind = *atomFromId(atom.toStdString());
        a.stage = param;
        a.ps_shards = param;
        auto r = assignAtom(s, m, c, {layer.toStdString()}, a);
        if (expect.startsWith("refused: ")) {
            QVERIFY(!r);
            const QString why = QString::fromStdString(r.error().str());
            QVERIFY2(why.contains(expect.mid(9)), qPrintable(why));
            QVERIFY2(why.contains(layer) || why.contains("layer"), qPrintable(why));
            return;
        }
        QVERIFY2(r, r ? "" : r.error().str().c_str());
        const LayerAssignment& la = assigned(*r, m, c, layer.toStdString());
        const QStringList e = expect.split(' ');
        if (e[0] == "sync") {
            QCOMPARE(QString::fromStdString(std::string(syncMethodName(la.sync.method))), e[1]);
            QCOMPARE(la.sync.ps_shards, e[2].toInt());
            if (atom == "allreduce-hierarchical")
                QCOMPARE(la.sync.algorithm, AllReduceAlgo::Hierarchical);
        } else if (e[0] == "tp") {
            QCOMPARE(QString::fromStdString(std::string(tpRoleName(la.tp_role))), e[1]);
        } else if (e[0] == "stage") {
            QCOMPARE(la.stage, e[1].toInt());
        } else if (e[0] == "recompute") {
            QCOMPARE(QString::fromStdString(std::string(recomputeName(la.recompute))), e[1]);
        }
        // Only the named layer changed.
        auto before = resolveStrategy(s, m, c);
        auto after = resolveStrategy(*r, m, c);
        int changed = 0;
        for (size_t i = 0; i < m.layers.size(); ++i) {
            const auto& x = before->layers[i];
            const auto& y = after->layers[i];
            if (!(x.sync == y.sync) || x.tp_role != y.tp_role || x.stage != y.stage || x.recompute != y.recompute) {
                ++changed;
                QCOMPARE(m.layers[i].name, layer.toStdString());
            }
        }
        QVERIFY(changed <= 1);
    }

    // Repeated edits of one layer keep one override, placed after any glob.
    void repeatedEditsDoNotPileUp()
    {
        const Model m = gpt2();
        const Cluster c = *clusterPreset("p3.16xlarge:4");
        Strategy s = base(32, 1, 1);
        LayerOverride glob;
        glob.pattern = "h.*.mlp.fc1";
        glob.sync = SyncAtom{};
        glob.sync->method = SyncMethod::None;
        s.layers.push_back(glob);
        Atom ps{AtomKind::ParameterServer};
        auto a = assignAtom(s, m, c, {"h.0.mlp.fc1", "h.1.mlp.fc1"}, ps);
        QVERIFY(a);
        auto b = assignAtom(*a, m, c, {"h.0.mlp.fc1"}, Atom{AtomKind::RecomputeFull});
        QVERIFY(b);
        auto d = assignAtom(*b, m, c, {"h.0.mlp.fc1"}, Atom{AtomKind::SFB});
        QVERIFY(d);
        QCOMPARE(d->layers.size(), size_t(3));
        QCOMPARE(d->layers.back().pattern, std::string("h.0.mlp.fc1"));
        const auto& la = assigned(*d, m, c, "h.0.mlp.fc1");
        QCOMPARE(la.sync.method, SyncMethod::SFB);
        QCOMPARE(la.recompute, Recompute::Full); // the earlier edit kept
        QCOMPARE(assigned(*d, m, c, "h.1.mlp.fc1").sync.method, SyncMethod::ParameterServer);
        QCOMPARE(assigned(*d, m, c, "h.2.mlp.fc1").sync.method, SyncMethod::None);
        QVERIFY(!assignAtom(s, m, c, {}, ps));
    }

    // A block or a selection: the atom goes to the layers it applies to.
    void severalLayers()
    {
        const Model m = gpt2();
        const Cluster c = *clusterPreset("p3.16xlarge:4");
        std::vector<std::string> block;
        for (const Layer& l : m.layers)
            if (l.block == "h.4")
                block.push_back(l.name);
        QCOMPARE(block.size(), size_t(8));
        auto ps = assignAtom(base(32, 1, 1), m, c, block, Atom{AtomKind::ParameterServer});
        QVERIFY2(ps, ps ? "" : ps.error().str().c_str());
        QCOMPARE(assigned(*ps, m, c, "h.4.mlp.fc1").sync.method, SyncMethod::ParameterServer);
        QCOMPARE(assigned(*ps, m, c, "h.4.ln_1").sync.method, SyncMethod::ParameterServer); // norms have weights
        QCOMPARE(ps->layers.size(), size_t(6)); // act and attention core: no parameters, no override
        auto sfb = assignAtom(base(32, 1, 1), m, c, block, Atom{AtomKind::SFB});
        QVERIFY(sfb);
        QCOMPARE(assigned(*sfb, m, c, "h.4.mlp.fc2").sync.method, SyncMethod::SFB);
        QCOMPARE(assigned(*sfb, m, c, "h.4.ln_2").sync.method, SyncMethod::AllReduce);
        auto col = assignAtom(base(16, 2, 1), m, c, block, Atom{AtomKind::TpReplicated});
        QVERIFY(col);
        QCOMPARE(col->layers.size(), size_t(8)); // replicated applies to every layer
        auto none = assignAtom(base(32, 1, 1), m, c, {"h.4.ln_1", "h.4.mlp.act"}, Atom{AtomKind::SFB});
        QVERIFY(!none);
        QVERIFY2(QString::fromStdString(none.error().str()).contains("applies to none of the 2 layers"),
                 none.error().str().c_str());
    }

    void labels_data()
    {
        QTest::addColumn<int>("method");
        QTest::addColumn<int>("shards");
        QTest::addColumn<QString>("label");
        QTest::newRow("allreduce") << int(SyncMethod::AllReduce) << 0 << "AllReduce";
        QTest::newRow("ps") << int(SyncMethod::ParameterServer) << 0 << "PS";
        QTest::newRow("ps 4") << int(SyncMethod::ParameterServer) << 4 << "PS ×4";
        QTest::newRow("none") << int(SyncMethod::None) << 0 << "none";
    }
    void labels()
    {
        QFETCH(int, method);
        QFETCH(int, shards);
        QFETCH(QString, label);
        SyncAtom a;
        a.method = SyncMethod(method);
        a.ps_shards = shards;
        QCOMPARE(QString::fromStdString(syncLabel(a)), label);
    }
};

QTEST_APPLESS_MAIN(TestStrategyEdit)
#include "tst_strategyedit.moc"
