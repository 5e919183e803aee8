// The project store: schema, documents, runs, viewport queries with level of
// detail, aggregates, and crash safety (a writer killed midway).
#include "storetest.h"
#include "partita/profiler/chromeimport.h"
#include "partita/profiler/tracestore.h"

#include <sqlite3.h>

#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QTemporaryDir>
#include <QTest>

#include <csignal>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <optional>
#include <sys/wait.h>
#include <unistd.h>

using namespace partita;
using partita::test::named;
using partita::test::openOrDie;

namespace {


// n events of `dur` ns every `period` ns on one track.
Trace regular(int64_t n, int64_t dur, int64_t period, int32_t rank = 0, int32_t track = 0)
{
    Trace t;
    t.tracks.push_back({rank, track, "stream " + std::to_string(track)});
    for (int64_t i = 0; i < n; ++i) {
        TraceRecord r;
        r.rank = rank;
        r.track = track;
        r.start_ns = i * period;
        r.dur_ns = dur;
        r.kind = TraceKind::Kernel;
        r.name = i % 2 ? "gemm" : "elementwise";
        r.layer = int32_t(i % 4);
        t.records.push_back(r);
    }
    return t;
}


} // namespace

class TestTraceStore : public QObject
{
    Q_OBJECT
private slots:
    void documentsAreVersioned()
    {
        QTemporaryDir dir;
        auto s = openOrDie(dir.filePath("p.partita").toStdString());
        auto a = s->saveDocument("strategy", "horovod", "{\"v\": 1}");
        auto b = s->saveDocument("strategy", "horovod", "{\"v\": 2}");
        auto c = s->saveDocument("model", "bert", "{}");
        QVERIFY(a && b && c);
        QCOMPARE(a->version, 1);
        QCOMPARE(b->version, 2);
        auto all = s->documents("strategy");
        QVERIFY(all);
        QCOMPARE(int(all->size()), 2);
        QCOMPARE(all->front().body, std::string("{\"v\": 2}"));
        auto one = s->document(a->id);
        QVERIFY(one && one->body == "{\"v\": 1}");
        QVERIFY(!s->document(9999));
    }

    // Renaming moves every version; deleting is refused while a run refers to a document.
    void documentsRenamedAndDeleted()
    {
        QTemporaryDir dir;
        auto s = openOrDie(dir.filePath("p.partita").toStdString());
        auto a = s->saveDocument("strategy", "adaptive", "{}");
        auto b = s->saveDocument("strategy", "adaptive", "{\"x\": 1}");
        auto other = s->saveDocument("strategy", "horovod", "{}");
        QVERIFY(a && b && other);
        QVERIFY(!s->renameDocuments("strategy", "adaptive", "horovod")); // taken
        QVERIFY(!s->renameDocuments("strategy", "nothing", "x"));
        QVERIFY(!s->renameDocuments("strategy", "adaptive", ""));
        QVERIFY(s->renameDocuments("strategy", "adaptive", "per-layer"));
        QCOMPARE(s->document(a->id)->name, std::string("per-layer"));
        QCOMPARE(s->document(b->id)->version, 2);
        RunInfo info;
        info.name = "uses b";
        info.strategy_id = b->id;
        auto run = s->storeTrace(regular(10, 1, 100), info);
        QVERIFY(run);
        auto refused = s->deleteDocument(b->id);
        QVERIFY(!refused);
        QVERIFY2(refused.error().message.find("1 run(s)") != std::string::npos, refused.error().str().c_str());
        QVERIFY(s->deleteDocument(a->id));
        QVERIFY(!s->document(a->id));
        QVERIFY(!s->deleteDocument(a->id)); // gone
        QVERIFY(s->deleteRun(*run));
        QVERIFY(s->deleteDocument(b->id));
        QCOMPARE(*s->integrityCheck(), std::string("ok"));
    }

    void runsRoundTrip()
    {
        QTemporaryDir dir;
        const std::string path = dir.filePath("p.partita").toStdString();
        int64_t id = 0;
        {
            auto s = openOrDie(path);
            RunInfo info;
            info.name = "predicted ddp";
            info.kind = RunKind::Predicted;
            auto r = s->storeTrace(regular(1000, 50, 100), info, "{\"step_time_s\": 0.5}");
            QVERIFY2(r, r ? "" : r.error().str().c_str());
            id = *r;
        }
        auto s = openOrDie(path); // reopened: everything persisted
        auto runs = s->runs();
        QVERIFY(runs && runs->size() == 1);
        const RunInfo& r = runs->front();
        QCOMPARE(r.id, id);
        QCOMPARE(r.name, std::string("predicted ddp"));
        QVERIFY(r.kind == RunKind::Predicted);
        QVERIFY(r.status == RunStatus::Complete);
        QCOMPARE(r.events, int64_t(1000));
        QCOMPARE(r.end_ns, int64_t(999 * 100 + 50));
        QCOMPARE(r.meta, std::string("{\"step_time_s\": 0.5}"));
        auto tracks = s->tracks(id);
        QVERIFY(tracks && tracks->size() == 1 && tracks->front().device);
        int64_t n = 0, lastStart = -1;
        bool ordered = true;
        QVERIFY(s->forEachEvent(id, [&](const StoredEvent& e) {
            ordered &= e.record.start_ns > lastStart;
            lastStart = e.record.start_ns;
            ++n;
        }));
        QVERIFY(ordered);
        QCOMPARE(n, int64_t(1000));
        auto byName = s->aggregate(id, GroupBy::Name);
        QVERIFY(byName && byName->size() == 2);
        QCOMPARE(byName->front().count, int64_t(500));
        QCOMPARE(byName->front().total_ns, int64_t(500 * 50));
        auto byLayer = s->aggregate(id, GroupBy::Layer);
        QVERIFY(byLayer && byLayer->size() == 4);
        QVERIFY(s->renameRun(id, "renamed"));
        QCOMPARE(s->run(id)->name, std::string("renamed"));
        QVERIFY(s->deleteRun(id));
        QVERIFY(s->runs()->empty());
        QVERIFY(!s->run(id));
        QCOMPARE(*s->integrityCheck(), std::string("ok"));
    }

    // Zoomed in, events come back as themselves with their nesting depth;
    // zoomed out, the cost follows the pixels: folded runs.
    void viewport_data()
    {
        QTest::addColumn<double>("nsPerPixel");
        QTest::addColumn<bool>("folded");
        QTest::newRow("zoomed in: 1 ns per pixel") << 1.0 << false;
        QTest::newRow("10 ns per pixel") << 10.0 << false;
        QTest::newRow("whole run on 1000 pixels") << 1e5 << true;
        QTest::newRow("far out: 1 ms per pixel") << 1e6 << true;
    }
    void viewport()
    {
        QFETCH(double, nsPerPixel);
        QFETCH(bool, folded);
        QTemporaryDir dir;
        auto s = openOrDie(dir.filePath("p.partita").toStdString());
        // 100,000 events of 50 ns every 1 us: 100 ms of trace.
        auto id = s->storeTrace(regular(100000, 50, 1000), RunInfo{});
        QVERIFY(id);
        const int64_t track = s->tracks(*id)->front().id;
        const int64_t t0 = 0, t1 = int64_t(nsPerPixel * 1000);
        auto items = s->viewport(track, t0, t1, nsPerPixel);
        QVERIFY2(items, items ? "" : items.error().str().c_str());
        QVERIFY(!items->empty());
        QVERIFY(items->size() <= 1000); // never more items than pixels
        int64_t events = 0;
        for (const DrawItem& it : *items) {
            QVERIFY(it.end_ns > t0 && it.start_ns < t1 + 1000);
            QVERIFY(it.end_ns >= it.start_ns);
            events += it.count;
        }
        const int64_t inWindow = std::min<int64_t>(100000, (t1 + 999) / 1000); // starts before t1
        if (folded) {
            QVERIFY(items->size() < size_t(inWindow));
            QVERIFY(std::any_of(items->begin(), items->end(), [](const DrawItem& d) { return d.count > 1; }));
            QVERIFY(std::abs(events - inWindow) <= inWindow / 50 + 2);
        } else {
            QCOMPARE(events, inWindow);
            QVERIFY(std::all_of(items->begin(), items->end(), [](const DrawItem& d) { return d.count == 1; }));
            QCOMPARE(*s->name(items->front().name_id), std::string("elementwise"));
        }
    }

    void nestingDepth()
    {
        QTemporaryDir dir;
        auto s = openOrDie(dir.filePath("p.partita").toStdString());
        Trace t;
        t.tracks.push_back({0, 0, "thread"});
        auto add = [&](int64_t start, int64_t dur, const char* name) {
            TraceRecord r;
            r.start_ns = start;
            r.dur_ns = dur;
            r.kind = TraceKind::CpuOp;
            r.name = name;
            t.records.push_back(r);
        };
        add(0, 1000, "outer");
        add(100, 500, "middle");
        add(200, 100, "inner");
        add(700, 100, "sibling");
        auto id = s->storeTrace(t, RunInfo{});
        QVERIFY(id);
        auto items = s->viewport(s->tracks(*id)->front().id, 0, 1000, 0.1);
        QVERIFY(items && items->size() == 4);
        QCOMPARE((*items)[0].depth, 0);
        QCOMPARE((*items)[1].depth, 1);
        QCOMPARE((*items)[2].depth, 2);
        QCOMPARE((*items)[3].depth, 1);
        // A window inside "inner" still sees it and its parents, which start before the window.
        auto inside = s->viewport(s->tracks(*id)->front().id, 250, 260, 0.01);
        QVERIFY(inside && inside->size() == 3);
        QCOMPARE(*s->name(inside->front().name_id), std::string("outer"));
    }

    // Events that arrive out of order, within a chunk or across chunks
    // (whose blocks then overlap in time), are read back in time order, and
    // events that start together in the order they were added. A chunk's
    // track is merged when it is a few runs in order (a Kineto thread lists
    // its operators, then its runtime calls) and sorted otherwise.
    void outOfOrderChunks_data()
    {
        QTest::addColumn<QString>("arrival");
        QTest::addColumn<int>("chunk");
        for (int chunk : {1000, 65536})
            for (const char* arrival : {"scrambled", "five runs", "five runs, ties", "descending", "in order"})
                QTest::newRow(qPrintable(QString("%1, chunks of %2").arg(arrival).arg(chunk))) << QString(arrival) << chunk;
    }
    void outOfOrderChunks()
    {
        QFETCH(QString, arrival);
        QFETCH(int, chunk);
        QTemporaryDir dir;
        auto s = openOrDie(dir.filePath("p.partita").toStdString());
        auto w = s->beginRun(named("shuffled", RunKind::Imported), chunk);
        QVERIFY(w);
        auto track = (*w)->track(0, 0, "stream 7", true);
        QVERIFY(track);
        // 10,000 events of 10 ns every 100 ns (with ties: two at each time).
        constexpr int64_t kEvents = 10000;
        const bool ties = arrival.endsWith("ties");
        std::vector<int64_t> order(kEvents);
        for (int64_t i = 0; i < kEvents; ++i) {
            if (arrival == "scrambled")
                order[size_t(i)] = (i * 7919) % kEvents;
            else if (arrival.startsWith("five runs")) // 0, 5, 10, ..., then 1, 6, 11, ...
                order[size_t(i)] = (i % (kEvents / 5)) * 5 + i / (kEvents / 5);
            else if (arrival == "descending")
                order[size_t(i)] = kEvents - 1 - i;
            else
                order[size_t(i)] = i;
        }
        int64_t seq = 0;
        for (int64_t i : order) {
            TraceRecord r;
            r.start_ns = (ties ? i / 2 : i) * 100;
            r.dur_ns = 10;
            r.kind = TraceKind::Kernel;
            r.name = "k" + std::to_string(i % 3);
            r.correlation = seq++; // the order of arrival
            QVERIFY((*w)->add(*track, r));
        }
        QVERIFY((*w)->finish());
        int64_t last = -1, lastSeq = -1, n = 0;
        bool ordered = true;
        QVERIFY(s->forEachEvent((*w)->runId(), [&](const StoredEvent& e) {
            if (ties && e.record.start_ns == last)
                ordered &= e.record.correlation > lastSeq;
            else
                ordered &= e.record.start_ns > last;
            last = e.record.start_ns;
            lastSeq = e.record.correlation;
            ++n;
        }));
        QVERIFY(ordered);
        QCOMPARE(n, kEvents);
        // Pulled a block at a time, the same events in the same order.
        std::vector<int64_t> pushed, pulled;
        QVERIFY(s->forEachEvent((*w)->runId(), [&](const StoredEvent& e) { pushed.push_back(e.id); }));
        auto stream = s->stream(*track);
        QVERIFY(stream);
        RawEvent raw;
        while ((*stream)->next(raw))
            pulled.push_back(raw.id);
        QVERIFY(!(*stream)->error());
        QVERIFY(pushed == pulled);
        if (ties)
            return;
        auto items = s->viewport(*track, 50'000, 60'000, 1.0);
        QVERIFY(items);
        QCOMPARE(int64_t(items->size()), int64_t(100));
        QCOMPARE(items->front().start_ns, int64_t(50'000));
        auto coarse = s->viewport(*track, 0, 1'000'000, 1000.0);
        QVERIFY(coarse && !coarse->empty());
        int64_t folded = 0;
        for (const auto& it : *coarse)
            folded += it.count;
        QCOMPARE(folded, kEvents);
    }

    // Streams of several tracks open at once, each in its own time order;
    // a damaged block ends its stream with an error that names the track.
    void streamsInterleave()
    {
        QTemporaryDir dir;
        const std::string path = dir.filePath("p.partita").toStdString();
        auto s = openOrDie(path);
        auto w = s->beginRun(named("two streams", RunKind::Imported), 1000);
        QVERIFY(w);
        auto a = (*w)->track(0, 0, "a", true), b = (*w)->track(0, 1, "b", true);
        QVERIFY(a && b);
        for (int64_t i = 0; i < 5000; ++i) {
            TraceRecord r;
            r.start_ns = i * 10;
            r.dur_ns = 5;
            r.kind = TraceKind::Kernel;
            r.name = "k";
            QVERIFY((*w)->add(i % 2 ? *a : *b, r));
        }
        QVERIFY((*w)->finish());
        auto sa = s->stream(*a), sb = s->stream(*b);
        QVERIFY(sa && sb);
        RawEvent ea, eb;
        int64_t n = 0, lastA = -1, lastB = -1;
        while ((*sa)->next(ea) && (*sb)->next(eb)) {
            QVERIFY(ea.start_ns > lastA && eb.start_ns > lastB);
            QCOMPARE(ea.start_ns, eb.start_ns + 10);
            lastA = ea.start_ns;
            lastB = eb.start_ns;
            n += 2;
        }
        QCOMPARE(n, int64_t(5000));
        // Damage the second block of track a.
        {
            sqlite3* db = nullptr;
            QCOMPARE(sqlite3_open(path.c_str(), &db), SQLITE_OK);
            const std::string sql = "UPDATE event_blocks SET events = x'ff00ff' WHERE id = (SELECT id FROM event_blocks WHERE "
                                    "track_id = " + std::to_string(*a) + " ORDER BY start_ns LIMIT 1 OFFSET 1)";
            QCOMPARE(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
            QCOMPARE(sqlite3_changes(db), 1);
            sqlite3_close(db);
        }
        auto again = s->stream(*a);
        QVERIFY(again);
        int64_t read = 0;
        while ((*again)->next(ea))
            ++read;
        QVERIFY2(read < 2500, qPrintable(QString::number(read)));
        QVERIFY((*again)->error());
        const std::string msg = (*again)->error()->str();
        QVERIFY2(msg.find("track " + std::to_string(*a)) != std::string::npos && msg.find("corrupt") != std::string::npos,
                 msg.c_str());
    }

    void refusesForeignFiles()
    {
        QTemporaryDir dir;
        const std::string text = dir.filePath("notes.txt").toStdString();
        std::ofstream(text) << "this is not a database, just some text that is long enough to be checked.\n";
        auto a = TraceStore::open(text);
        QVERIFY(!a);
        QVERIFY(QString::fromStdString(a.error().str()).contains("notes.txt"));
        // An SQLite file of some other program is refused, and left as it was.
        const std::string other = dir.filePath("other.db").toStdString();
        {
            sqlite3* db = nullptr;
            QCOMPARE(sqlite3_open(other.c_str(), &db), SQLITE_OK);
            QCOMPARE(sqlite3_exec(db, "CREATE TABLE t(x); INSERT INTO t VALUES(1);", nullptr, nullptr, nullptr), SQLITE_OK);
            sqlite3_close(db);
        }
        auto b = TraceStore::open(other);
        QVERIFY(!b);
        QVERIFY(QString::fromStdString(b.error().message).contains("not a Partita project"));
        // A fresh Partita file reopens fine.
        const std::string fresh = dir.filePath("fresh.partita").toStdString();
        QVERIFY(TraceStore::open(fresh));
        QVERIFY(TraceStore::open(fresh));
        // Our schema version but a table missing (a development build's file): refused, named.
        const std::string partial = dir.filePath("partial.partita").toStdString();
        {
            sqlite3* db = nullptr;
            QCOMPARE(sqlite3_open(partial.c_str(), &db), SQLITE_OK);
            QCOMPARE(sqlite3_exec(db, "CREATE TABLE documents(id); CREATE TABLE strings(id); CREATE TABLE runs(id); "
                                      "CREATE TABLE tracks(id); PRAGMA user_version=1;",
                                  nullptr, nullptr, nullptr),
                     SQLITE_OK);
            sqlite3_close(db);
        }
        auto c = TraceStore::open(partial);
        QVERIFY(!c);
        QVERIFY2(QString::fromStdString(c.error().message).contains("without its table 'event_blocks'"),
                 c.error().str().c_str());
    }

    // A schema 1 project (zlib-compressed arguments, written by the build
    // before zstd) opens as schema 2 and reads exactly as that build exported
    // it; runs added afterwards (zstd) read the same beside it.
    // A new project says what it is in SQLite's header: "PART" at byte 68,
    // which the desktop's MIME magic (packaging/desktop) reads.
    void newProjectsCarryTheApplicationId()
    {
        QTemporaryDir dir;
        const std::string path = dir.filePath("new.partita").toStdString();
        { auto s = openOrDie(path); }
        std::ifstream in(path, std::ios::binary);
        char header[72] = {};
        in.read(header, sizeof header);
        QCOMPARE(QByteArray(header, 16), QByteArray("SQLite format 3\0", 16));
        QCOMPARE(QByteArray(header + 68, 4), QByteArray("PART"));
    }

    void schema1FilesAreMigrated()
    {
        QTemporaryDir dir;
        const std::string path = dir.filePath("old.partita").toStdString();
        QVERIFY(QFile::copy(PARTITA_TEST_DATA "/store/schema1.partita", QString::fromStdString(path)));
        QFile::setPermissions(QString::fromStdString(path), QFile::ReadOwner | QFile::WriteOwner);
        auto readAll = [](const std::string& f) {
            std::ifstream in(f, std::ios::binary);
            return std::string(std::istreambuf_iterator<char>(in), {});
        };
        const std::string expected = readAll(PARTITA_TEST_DATA "/store/schema1-export.json");
        QVERIFY(expected.find("\"args\"") != std::string::npos);
        {
            auto s = openOrDie(path);
            const std::string out = dir.filePath("old.json").toStdString();
            QVERIFY(exportChromeTrace(*s, 1, out));
            QCOMPARE(readAll(out), expected);
            TraceImportOptions o;
            o.name = "schema 1 import";
            // The old run's own export, imported into the migrated store, exports
            // the same events (track names gain the rank: Partita's own export).
            auto again = importChromeTrace(*s, {PARTITA_TEST_DATA "/store/schema1-export.json"}, o);
            QVERIFY2(again, again ? "" : again.error().str().c_str());
            const std::string out2 = dir.filePath("new.json").toStdString();
            QVERIFY(exportChromeTrace(*s, again->run_id, out2));
            auto slices = [](const std::string& text) {
                QJsonArray kept;
                for (const auto& e : QJsonDocument::fromJson(QByteArray::fromStdString(text))["traceEvents"].toArray())
                    if (e.toObject()["ph"].toString() != "M")
                        kept.append(e);
                return kept;
            };
            QCOMPARE(slices(readAll(out2)).size(), 33);
            QCOMPARE(slices(readAll(out2)), slices(expected));
        }
        sqlite3* db = nullptr;
        QCOMPARE(sqlite3_open(path.c_str(), &db), SQLITE_OK);
        sqlite3_stmt* q = nullptr;
        QCOMPARE(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &q, nullptr), SQLITE_OK);
        QCOMPARE(sqlite3_step(q), SQLITE_ROW);
        QCOMPARE(sqlite3_column_int(q, 0), TraceStore::kSchemaVersion);
        sqlite3_finalize(q);
        // The migrated file carries the project's application_id (MIME magic).
        QCOMPARE(sqlite3_prepare_v2(db, "PRAGMA application_id", -1, &q, nullptr), SQLITE_OK);
        QCOMPARE(sqlite3_step(q), SQLITE_ROW);
        QCOMPARE(sqlite3_column_int(q, 0), TraceStore::kApplicationId);
        sqlite3_finalize(q);
        // The new run's arguments are zstd frames, the old run's zlib.
        QCOMPARE(sqlite3_prepare_v2(db,
                                    "SELECT t.run_id, substr(b.args, 2, 8) FROM event_blocks b JOIN tracks t ON "
                                    "t.id = b.track_id WHERE b.args IS NOT NULL",
                                    -1, &q, nullptr),
                 SQLITE_OK);
        int oldZlib = 0, oldZstd = 0, newZlib = 0, newZstd = 0;
        while (sqlite3_step(q) == SQLITE_ROW) {
            const std::string head(reinterpret_cast<const char*>(sqlite3_column_blob(q, 1)), size_t(sqlite3_column_bytes(q, 1)));
            const bool isZstd = head.find("\x28\xb5\x2f\xfd") != std::string::npos;
            if (sqlite3_column_int(q, 0) == 1)
                ++(isZstd ? oldZstd : oldZlib);
            else
                ++(isZstd ? newZstd : newZlib);
        }
        sqlite3_finalize(q);
        sqlite3_close(db);
        QCOMPARE(oldZstd, 0);
        QCOMPARE(newZlib, 0);
        QVERIFY(oldZlib > 0 && newZstd > 0);
    }

    // Prefetching asks the kernel to read the file ahead; a file gone from
    // under the store (deleted while open) is reported, nothing else changes.
    void prefetch()
    {
        QTemporaryDir dir;
        const std::string path = dir.filePath("p.partita").toStdString();
        auto s = openOrDie(path);
        auto run = s->storeTrace(regular(2000, 50, 100), named("r", RunKind::Predicted));
        QVERIFY(run);
        QVERIFY(s->prefetch());
        QCOMPARE(std::remove(path.c_str()), 0);
        QVERIFY(!s->prefetch());
        QCOMPARE(s->tracks(*run)->size(), size_t(1)); // the open connection still reads it
    }

    // A file-backed run is checkpointed on a connection and thread of the
    // writer's own while it is written. Whether or not another connection
    // reads meanwhile (here one holding a read transaction across several
    // chunks, which a checkpoint must not copy past), every event arrives, the
    // file checks out, and once the stores close no connection is left
    // behind: the last one to close removes the WAL.
    void backgroundCheckpoints_data()
    {
        QTest::addColumn<bool>("reader");
        QTest::newRow("no reader") << false;
        QTest::newRow("a reader meanwhile") << true;
    }
    void backgroundCheckpoints()
    {
        QFETCH(bool, reader);
        QTemporaryDir dir;
        const std::string path = dir.filePath("p.partita").toStdString();
        constexpr int64_t kEvents = 100000;
        {
            auto s = openOrDie(path);
            auto other = openOrDie(path);
            auto w = s->beginRun(named("chunks", RunKind::Imported), 2000);
            QVERIFY(w);
            auto track = (*w)->track(0, 0, "stream 7", true);
            QVERIFY(track);
            std::optional<TraceStore::ReadScope> scope;
            int64_t seen = 0;
            for (int64_t i = 0; i < kEvents; ++i) {
                TraceRecord r;
                r.start_ns = i * 100;
                r.dur_ns = 10;
                r.kind = TraceKind::Kernel;
                r.name = "k" + std::to_string(i % 5);
                QVERIFY((*w)->add(*track, r, "{\"i\": " + std::to_string(i) + "}"));
                if (reader && i % 10000 == 5000) { // a fresh snapshot, held over five chunks
                    scope.reset();
                    scope.emplace(*other);
                    auto runs = other->runs();
                    QVERIFY(runs && runs->size() == 1);
                    QVERIFY(runs->front().events >= seen);
                    seen = runs->front().events;
                }
            }
            QVERIFY((*w)->finish());
            w->reset();
            scope.reset();
            QCOMPARE(*s->integrityCheck(), std::string("ok"));
            auto runs = other->runs();
            QVERIFY(runs && runs->size() == 1);
            QCOMPARE(runs->front().events, kEvents);
            QVERIFY(runs->front().status == RunStatus::Complete);
            if (reader)
                QVERIFY(seen > 0);
            QVERIFY(QFile::exists(QString::fromStdString(path + "-wal")));
        }
        QVERIFY2(!QFile::exists(QString::fromStdString(path + "-wal")), "a connection was left open");
        auto s = openOrDie(path);
        int64_t n = 0;
        QVERIFY(s->forEachEvent(1, [&](const StoredEvent& e) {
            n += e.args == "{\"i\": " + std::to_string(e.record.start_ns / 100) + "}" ? 1 : 0;
        }, {}, true));
        QCOMPARE(n, kEvents);
    }

    // A process killed while importing leaves the project readable, earlier
    // runs intact, and the interrupted run marked incomplete.
    void crashSafety()
    {
        QTemporaryDir dir;
        const std::string path = dir.filePath("p.partita").toStdString();
        {
            auto s = openOrDie(path);
            QVERIFY(s->storeTrace(regular(5000, 50, 100), named("earlier", RunKind::Predicted)));
        }
        // A big Kineto-like trace to import.
        const std::string trace = dir.filePath("big.json").toStdString();
        {
            std::ofstream out(trace);
            out << "{\"distributedInfo\": {\"rank\": 0}, \"traceEvents\": [\n";
            for (int i = 0; i < 400000; ++i)
                out << (i ? ",\n" : "") << "{\"ph\": \"X\", \"cat\": \"kernel\", \"name\": \"k" << i % 7
                    << "\", \"pid\": 0, \"tid\": 7, \"ts\": " << i * 3 << ".5, \"dur\": 1.25, \"args\": {\"stream\": 7, "
                    << "\"correlation\": " << i << "}}";
            out << "\n]}\n";
        }
        const pid_t child = fork();
        if (child == 0) {
            auto s = TraceStore::open(path);
            if (!s)
                _exit(3);
            TraceImportOptions o;
            o.commit_every = 2000;
            (void)importChromeTrace(**s, {trace}, o);
            _exit(0);
        }
        QVERIFY(child > 0);
        // Wait until the child has committed part of its run, then kill it.
        bool seen = false;
        for (int i = 0; i < 6000 && !seen; ++i) {
            usleep(5000);
            auto s = TraceStore::open(path);
            if (!s)
                continue;
            auto runs = (*s)->runs();
            if (runs && runs->size() == 2 && runs->back().events >= 4000)
                seen = true;
        }
        ::kill(child, SIGKILL);
        int status = 0;
        waitpid(child, &status, 0);
        QVERIFY2(seen, "the importing child never committed a chunk");
        QVERIFY(WIFSIGNALED(status));
        auto s = openOrDie(path);
        QCOMPARE(*s->integrityCheck(), std::string("ok"));
        auto runs = s->runs();
        QVERIFY(runs && runs->size() == 2);
        QCOMPARE(runs->front().name, std::string("earlier"));
        QVERIFY(runs->front().status == RunStatus::Complete);
        QCOMPARE(runs->front().events, int64_t(5000));
        QVERIFY(runs->back().status == RunStatus::Incomplete);
        QVERIFY(runs->back().events < 400000);
        // The incomplete run can still be read and removed.
        int64_t n = 0;
        QVERIFY(s->forEachEvent(runs->back().id, [&](const StoredEvent&) { ++n; }));
        QCOMPARE(n, runs->back().events);
        QVERIFY(s->deleteRun(runs->back().id));
        QCOMPARE(*s->integrityCheck(), std::string("ok"));
    }
};

QTEST_APPLESS_MAIN(TestTraceStore)
#include "tst_tracestore.moc"
