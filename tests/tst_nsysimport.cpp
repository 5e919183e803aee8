// Nsight Systems SQLite exports: a 3.x export built here from the documented
// schema (META_DATA_EXPORT, tables missing), files that are not exports;
// apart (tst_nsysimport_third_party), the real 2.x export of ../shared/data/nsys.
#include "storetest.h"
#include "testdata.h"
#include "testmain.h"
#include "partita/profiler/analysis.h"
#include "partita/profiler/nsysimport.h"
#include "partita/profiler/tracestore.h"

#include <sqlite3.h>

#include <QTemporaryDir>
#include <QTest>

#include <fstream>

using namespace partita;
using partita::test::named;
using partita::test::openOrDie;

namespace {

const QString kExport = "nsys/saxpy-mpi-cuda_nsys_perlmutter0.sqlite";


void makeDb(const std::string& path, const char* sql)
{
    sqlite3* db = nullptr;
    QCOMPARE(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    char* err = nullptr;
    const int rc = sqlite3_exec(db, sql, nullptr, nullptr, &err);
    if (rc != SQLITE_OK)
        qFatal("%s", err);
    sqlite3_close(db);
}

} // namespace

class TestNsysImport : public QObject
{
    Q_OBJECT
private slots:
    // Schema 3.x keeps its metadata in META_DATA_EXPORT; absent tables are warnings.
    void newerSchemaMissingTables()
    {
        QTemporaryDir dir;
        const std::string f = dir.filePath("new.sqlite").toStdString();
        makeDb(f, R"sql(
            CREATE TABLE META_DATA_EXPORT(name TEXT, value TEXT);
            INSERT INTO META_DATA_EXPORT VALUES('EXPORT_SCHEMA_VERSION', '3.11.0');
            CREATE TABLE StringIds(id INTEGER PRIMARY KEY, value TEXT);
            INSERT INTO StringIds VALUES(1, 'ncclDevKernel_AllReduce_Sum_f32_RING_LL(ncclDevComm *, unsigned long, ncclWork *)');
            INSERT INTO StringIds VALUES(2, 'ampere_bf16_s16816gemm');
            CREATE TABLE CUPTI_ACTIVITY_KIND_KERNEL(start INTEGER, end INTEGER, deviceId INTEGER, streamId INTEGER,
                correlationId INTEGER, globalPid INTEGER, demangledName INTEGER, shortName INTEGER);
            INSERT INTO CUPTI_ACTIVITY_KIND_KERNEL VALUES(1000, 5000, 0, 7, 1, 1, 2, 2);
            INSERT INTO CUPTI_ACTIVITY_KIND_KERNEL VALUES(3000, 9000, 0, 13, 2, 1, 1, 1);
        )sql");
        auto s = openOrDie(dir.filePath("p.partita").toStdString());
        NsysImportOptions o;
        o.rank = 3;
        auto r = importNsysSqlite(*s, {f}, o);
        QVERIFY2(r, r ? "" : r.error().str().c_str());
        QCOMPARE(r->schema, std::vector<std::string>{"3.11.0 (META_DATA_EXPORT)"});
        QCOMPARE(r->counts["kernel"], int64_t(2));
        QCOMPARE(int(r->warnings.size()), 4); // no MEMCPY, MEMSET, RUNTIME, NVTX_EVENTS
        auto tracks = s->tracks(r->run_id);
        QVERIFY(tracks && tracks->size() == 2 && tracks->front().rank == 3 && tracks->front().device);
        auto a = analyzeRun(*s, r->run_id);
        QVERIFY(a);
        QCOMPARE(a->ranks.front().temporal.span_ns, int64_t(8000));
        QCOMPARE(*a->ranks.front().comm_comp_overlap_pct, 33.33); // 2 us of the 6 us all-reduce overlap the GEMM
    }

    void notAnExport_data()
    {
        QTest::addColumn<QString>("what");
        QTest::addColumn<QString>("message");
        QTest::newRow("text file") << "text" << "not an SQLite file";
        QTest::newRow("other SQLite database") << "sqlite" << "not an Nsight Systems export";
        QTest::newRow("missing file") << "missing" << "not an SQLite file";
    }
    void notAnExport()
    {
        QFETCH(QString, what);
        QFETCH(QString, message);
        QTemporaryDir dir;
        const std::string f = dir.filePath("input.sqlite").toStdString();
        if (what == "text")
            std::ofstream(f) << "hello";
        else if (what == "sqlite")
            makeDb(f, "CREATE TABLE t(x);");
        auto s = openOrDie(dir.filePath("p.partita").toStdString());
        auto r = importNsysSqlite(*s, {f});
        QVERIFY(!r);
        const QString text = QString::fromStdString(r.error().str());
        QVERIFY2(text.contains("input.sqlite") && text.contains(message), qPrintable(text));
        QVERIFY(s->runs()->empty());
    }
};

class TestNsysImportThirdParty : public QObject
{
    Q_OBJECT
private slots:
    void realExport()
    {
        PARTITA_REQUIRE_THIRD_PARTY(kExport);
        QTemporaryDir dir;
        auto s = openOrDie(dir.filePath("p.partita").toStdString());
        auto r = importNsysSqlite(*s, {partita::test::thirdParty(kExport).toStdString()});
        QVERIFY2(r, r ? "" : r.error().str().c_str());
        QCOMPARE(r->schema, std::vector<std::string>{"2.9.1 (EXPORT_META_DATA)"});
        QCOMPARE(r->gpus, std::vector<std::string>{"NVIDIA A100-SXM4-40GB"});
        QCOMPARE(r->counts["kernel"], int64_t(5));
        QCOMPARE(r->counts["memcpy"], int64_t(15));
        QCOMPARE(r->counts["runtime"], int64_t(95));
        // 24 NVTX records: 22 ranges, plus a domain and a thread name.
        QCOMPARE(r->counts["annotation"], int64_t(22));
        auto run = s->run(r->run_id);
        QVERIFY(run && run->status == RunStatus::Complete);
        QVERIFY(run->meta.find("A100-SXM4-40GB") != std::string::npos);
        // Kernels are linked to their launches and analyzable.
        auto a = analyzeRun(*s, r->run_id);
        QVERIFY(a && a->ranks.size() == 1);
        QCOMPARE(a->ranks.front().device_events, int64_t(20));
        QVERIFY(a->ranks.front().temporal.compute_pct > 0);
        bool saxpy = false;
        for (const auto& k : a->kernels)
            saxpy |= k.name.rfind("saxpy", 0) == 0 && k.count == 5 && k.cls == KernelClass::Computation;
        QVERIFY(saxpy);
    }
};

PARTITA_TEST_SPLIT_APPLESS_MAIN(TestNsysImport, TestNsysImportThirdParty, "--third-party")
#include "tst_nsysimport.moc"
