// The timeline's ranks grouped by the run's mesh, offscreen: the mesh read
// from the run's meta (as `trace import --mesh` writes it) or its strategy
// document, the rows ordered by group (rows below: data-, tensor-parallel
// groups, pipelines), groups folded by default past 8 ranks, a click on a
// header unfolding it, a framed rank unfolding its group, and each group's
// busy shares, as the heat map gives them, on its header.
#include "timelineview.h"
#include "storetest.h"
#include "synthranks.h"

#include <QTemporaryDir>
#include <QTest>

#include <algorithm>

using namespace partita;

namespace {

// A synthesized run of `ranks` ranks (rank 3 slow), its mesh in the meta or its strategy's.
int64_t makeRun(TraceStore& s, int ranks, const std::string& mesh, bool viaStrategy)
{
    test::SynthOptions o;
    o.ranks = ranks;
    o.slow_rank = 3;
    o.slow_kernel = "ampere_sgemm_64x64_nt";
    o.slow_factor = 2.0;
    auto r = test::synthesizeRanks(s, test::dataParallelPattern(3, 2), o);
    if (!r)
        qFatal("%s", r.error().str().c_str());
    auto info = s.run(r->run_id);
    if (!mesh.empty()) {
        auto m = parseMesh(mesh);
        if (!m)
            qFatal("%s", m.error().str().c_str());
        if (viaStrategy) {
            auto doc = s.saveDocument("strategy", "s", R"({"name": "s", "mesh": {"dp": )" + std::to_string(m->dp) + R"(, "tp": )" +
                                                            std::to_string(m->tp) + R"(, "pp": )" + std::to_string(m->pp) + "}}");
            if (!doc)
                qFatal("%s", doc.error().str().c_str());
            info->strategy_id = doc->id;
        } else {
            info->meta = R"({"mesh": ")" + mesh + R"("})";
        }
        if (auto a = s.annotateRun(r->run_id, *info); !a)
            qFatal("%s", a.error().str().c_str());
    }
    return r->run_id;
}

std::vector<int> ranksShown(const TimelineView& v)
{
    std::vector<int> out;
    for (auto [group, id] : v.outline())
        if (!group)
            out.push_back(id);
    return out;
}

} // namespace

class TestTimelineGroups : public QObject
{
    Q_OBJECT
private slots:
    // The group header's busy line, one rank or several.
    void busyText_data()
    {
        QTest::addColumn<int>("ranks");
        QTest::addColumn<double>("least");
        QTest::addColumn<double>("most");
        QTest::addColumn<QString>("text");
        QTest::newRow("one rank") << 1 << 0.5 << 0.5 << "1 rank, 50 % busy";
        QTest::newRow("ranks alike") << 4 << 0.9 << 0.9 << "4 ranks, 90 % busy";
        QTest::newRow("ranks apart") << 8 << 0.4 << 0.62 << "8 ranks, 40–62 % busy";
    }
    void busyText()
    {
        QFETCH(int, ranks);
        QFETCH(double, least);
        QFETCH(double, most);
        QFETCH(QString, text);
        GroupBusy g;
        g.ranks.resize(size_t(ranks));
        g.least = least;
        g.most = most;
        QCOMPARE(groupBusyText(g), text);
    }

    void order_data()
    {
        QTest::addColumn<QString>("mesh");
        QTest::addColumn<bool>("viaStrategy");
        QTest::addColumn<int>("axis");
        QTest::addColumn<QList<int>>("ranks");
        QTest::addColumn<int>("groups");
        QTest::newRow("tensor groups (meta)") << "dp=2,tp=2,pp=2" << false << int(MeshAxis::Tensor)
                                              << QList<int>{0, 1, 2, 3, 4, 5, 6, 7} << 4;
        QTest::newRow("data groups (meta)") << "dp=2,tp=2,pp=2" << false << int(MeshAxis::Data) << QList<int>{0, 2, 1, 3, 4, 6, 5, 7}
                                            << 4;
        QTest::newRow("pipelines (strategy)") << "dp=2,tp=2,pp=2" << true << int(MeshAxis::Pipeline)
                                              << QList<int>{0, 4, 1, 5, 2, 6, 3, 7} << 4;
        QTest::newRow("data groups of 4 (strategy)") << "dp=4,pp=2" << true << int(MeshAxis::Data)
                                                     << QList<int>{0, 1, 2, 3, 4, 5, 6, 7} << 2;
    }
    void order()
    {
        QFETCH(QString, mesh);
        QFETCH(bool, viaStrategy);
        QFETCH(int, axis);
        QFETCH(QList<int>, ranks);
        QFETCH(int, groups);
        QTemporaryDir dir;
        auto s = test::openOrDie(dir.filePath("p.partita").toStdString());
        const int64_t run = makeRun(*s, 8, mesh.toStdString(), viaStrategy);
        TimelineView v;
        v.resize(1000, 600);
        v.setRun(s.get(), run);
        QVERIFY(v.mesh());
        QCOMPARE(QString::fromStdString(meshText(*v.mesh())), mesh);
        QVERIFY(v.canGroupBy(MeshAxis(axis)));
        v.setGroupBy(MeshAxis(axis));
        QCOMPARE(v.groupBy(), std::optional<MeshAxis>(MeshAxis(axis)));
        const std::vector<int> shown = ranksShown(v);
        QCOMPARE(QList<int>(shown.begin(), shown.end()), ranks); // 8 ranks: the groups start unfolded
        const auto outline = v.outline();
        QCOMPARE(int(std::count_if(outline.begin(), outline.end(), [](auto& e) { return e.first; })), groups);
        // Each group's busy shares: the heat map's, per rank.
        v.waitForGroups();
        const auto busy = v.groupBusy();
        QCOMPARE(int(busy.size()), groups);
        auto map = rankHeatMap(*s, run);
        QVERIFY(map);
        for (const auto& g : busy) {
            QCOMPARE(int(g.ranks.size()), 8 / groups);
            QVERIFY(g.least > 0 && g.least <= g.median && g.median <= g.most && g.most <= 1);
            double least = 1, most = 0;
            for (int32_t r : g.ranks) {
                QCOMPARE(v.groupOf(r), g.group);
                int64_t step = 0, idle = 0;
                for (const HeatCell& c : map->rows[size_t(r)].cells) {
                    step += c.step_ns();
                    idle += c.idle_ns;
                }
                least = std::min(least, 1.0 - double(idle) / double(step));
                most = std::max(most, 1.0 - double(idle) / double(step));
            }
            QCOMPARE(g.least, least);
            QCOMPARE(g.most, most);
        }
        // Back to the ranks in order.
        v.setGroupBy(std::nullopt);
        QCOMPARE(ranksShown(v), (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7}));
    }

    void foldingPastEightRanks()
    {
        QTemporaryDir dir;
        auto s = test::openOrDie(dir.filePath("p.partita").toStdString());
        const int64_t run = makeRun(*s, 16, "dp=4,tp=4", false);
        TimelineView v;
        v.resize(1000, 600);
        v.setRun(s.get(), run);
        v.show();
        QVERIFY(QTest::qWaitForWindowExposed(&v));
        v.setGroupBy(MeshAxis::Tensor);
        QVERIFY(ranksShown(v).empty()); // 4 groups, folded
        QCOMPARE(int(v.outline().size()), 4);
        v.waitForGroups();
        v.viewport()->repaint();
        QCOMPARE(v.groupsPainted(), 4);
        // A click on group 1's header unfolds it: ranks 4 to 7.
        const int y = TimelineView::kRuler + 36 + 10;
        QTest::mouseClick(v.viewport(), Qt::LeftButton, {}, QPoint(40, y));
        QCOMPARE(ranksShown(v), (std::vector<int>{4, 5, 6, 7}));
        QVERIFY(!v.groupCollapsed(1) && v.groupCollapsed(0));
        // Framing a rank elsewhere unfolds its group.
        v.showRange(13, 0, 1'000'000);
        QVERIFY(!v.groupCollapsed(3));
        const auto shown = ranksShown(v);
        QVERIFY(std::find(shown.begin(), shown.end(), 13) != shown.end());
    }

    void noMesh_data()
    {
        QTest::addColumn<QString>("mesh");
        QTest::addColumn<int>("axis");
        QTest::newRow("a run without a mesh") << "" << int(MeshAxis::Data);
        QTest::newRow("an axis the mesh lacks") << "dp=8" << int(MeshAxis::Tensor);
    }
    void noMesh()
    {
        QFETCH(QString, mesh);
        QFETCH(int, axis);
        QTemporaryDir dir;
        auto s = test::openOrDie(dir.filePath("p.partita").toStdString());
        const int64_t run = makeRun(*s, 8, mesh.toStdString(), false);
        TimelineView v;
        v.setRun(s.get(), run);
        QCOMPARE(bool(v.mesh()), !mesh.isEmpty());
        QVERIFY(!v.canGroupBy(MeshAxis(axis)));
        v.setGroupBy(MeshAxis(axis));
        QVERIFY(!v.groupBy());
        QCOMPARE(v.groupOf(3), -1);
        QCOMPARE(int(ranksShown(v).size()), 8);
    }
};

QTEST_MAIN(TestTimelineGroups)
#include "tst_timelinegroups.moc"
