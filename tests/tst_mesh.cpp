// core/mesh: a mesh's parallel groups from its degrees. Every rank of the
// meshes below falls in the same groups as the executor's communicator
// splits (executor/mpicomm.h's groupSplits, what the ranks really use), the
// groups have the sizes their degrees say, and `--mesh` text parses or is
// refused with the reason.
#include "partita/core/mesh.h"
#include "partita/core/plan.h"
#include "partita/executor/mpicomm.h"

#include <QTest>

#include <map>
#include <set>

using namespace partita;

Q_DECLARE_METATYPE(MeshShape)

class TestMesh : public QObject
{
    Q_OBJECT
private slots:
    void asTheExecutorSplits_data()
    {
        QTest::addColumn<MeshShape>("mesh");
        QTest::newRow("dp 8") << MeshShape{8, 1, 1, 1, 1};
        QTest::newRow("tp 2 x pp 2") << MeshShape{1, 2, 2, 1, 1};
        QTest::newRow("dp 2 x tp 2 x pp 2") << MeshShape{2, 2, 2, 1, 1};
        QTest::newRow("dp 4 x cp 2 x tp 2") << MeshShape{4, 2, 1, 2, 1};
        QTest::newRow("dp 4 (ep 2) x tp 2 x pp 3") << MeshShape{4, 2, 3, 1, 2};
        QTest::newRow("dp 6 (ep 3) x cp 2 x tp 2 x pp 2") << MeshShape{6, 2, 2, 2, 3};
    }
    void asTheExecutorSplits()
    {
        QFETCH(MeshShape, mesh);
        Plan plan;
        plan.dp = mesh.dp;
        plan.tp = mesh.tp;
        plan.pp = mesh.pp;
        plan.cp = mesh.cp;
        plan.ep = mesh.ep;
        plan.world = mesh.world();
        const int perStage = mesh.world() / mesh.pp;
        for (int s = 0; s < mesh.pp; ++s)
            plan.classes.push_back(RankClass{s, s * perStage, perStage, 0, {}});
        // Two ranks share a group here exactly when they share a communicator there.
        const std::pair<MeshAxis, GroupSplit GroupSplits::*> axes[] = {{MeshAxis::Tensor, &GroupSplits::tensor},
                                                                       {MeshAxis::Data, &GroupSplits::data},
                                                                       {MeshAxis::Context, &GroupSplits::context},
                                                                       {MeshAxis::Expert, &GroupSplits::expert}};
        for (const auto& [axis, field] : axes) {
            std::map<int, std::set<int>> mine, theirs;
            for (int r = 0; r < mesh.world(); ++r) {
                auto g = groupSplits(plan, r);
                QVERIFY2(g, g ? "" : g.error().str().c_str());
                const MeshPlace p = meshPlace(mesh, axis, r);
                QVERIFY(p.group >= 0 && p.group < meshGroupCount(mesh, axis));
                mine[p.group].insert(r);
                theirs[((*g).*field).color].insert(r);
                QCOMPARE(p.index, ((*g).*field).key);
            }
            std::set<std::set<int>> a, b;
            for (auto& [k, v] : mine)
                a.insert(v);
            for (auto& [k, v] : theirs)
                b.insert(v);
            QVERIFY2(a == b, qPrintable(QString::fromStdString(meshAxisTitle(axis))));
            QCOMPARE(int(mine.size()), meshGroupCount(mesh, axis));
        }
        // A pipeline: one rank per stage, the same place in each.
        std::map<int, std::set<int>> pipes;
        for (int r = 0; r < mesh.world(); ++r) {
            const MeshPlace p = meshPlace(mesh, MeshAxis::Pipeline, r);
            QCOMPARE(p.index, r / perStage);
            pipes[p.group].insert(r);
        }
        QCOMPARE(int(pipes.size()), meshGroupCount(mesh, MeshAxis::Pipeline));
        for (auto& [g, ranks] : pipes)
            QCOMPARE(int(ranks.size()), mesh.pp);
        QCOMPARE(meshPlace(mesh, MeshAxis::Data, mesh.world()).group, -1);
    }

    void parse_data()
    {
        QTest::addColumn<QString>("text");
        QTest::addColumn<MeshShape>("mesh");
        QTest::addColumn<QString>("error");
        QTest::newRow("commas") << "dp=4,tp=2,pp=2" << MeshShape{4, 2, 2, 1, 1} << "";
        QTest::newRow("any order, spaces") << "pp=2 tp=2 dp=4" << MeshShape{4, 2, 2, 1, 1} << "";
        QTest::newRow("x between") << "dp=8x ep=4" << MeshShape{8, 1, 1, 1, 4} << "";
        QTest::newRow("context") << "cp=2,dp=2" << MeshShape{2, 1, 1, 2, 1} << "";
        QTest::newRow("no value") << "dp=,tp=2" << MeshShape{} << "'dp' has no whole number";
        QTest::newRow("no equals") << "dp4" << MeshShape{} << "expected name=degree";
        QTest::newRow("unknown axis") << "dp=2,sp=2" << MeshShape{} << "'sp' is not one of dp, tp, pp, cp, ep";
        QTest::newRow("zero") << "tp=0" << MeshShape{} << "tp must be at least 1";
        QTest::newRow("ep not dividing dp") << "dp=6,ep=4" << MeshShape{} << "ep=4 does not divide dp=6";
        QTest::newRow("empty") << "" << MeshShape{} << "no degrees given";
    }
    void parse()
    {
        QFETCH(QString, text);
        QFETCH(MeshShape, mesh);
        QFETCH(QString, error);
        auto m = parseMesh(text.toStdString());
        if (!error.isEmpty()) {
            QVERIFY(!m);
            QVERIFY2(QString::fromStdString(m.error().str()).contains(error), m.error().str().c_str());
            return;
        }
        QVERIFY2(m, m ? "" : m.error().str().c_str());
        QVERIFY(*m == mesh);
        auto again = parseMesh(meshText(*m));
        QVERIFY(again && *again == mesh);
    }
};

QTEST_GUILESS_MAIN(TestMesh)
#include "tst_mesh.moc"
