// Chrome / Kineto trace import and export: real PyTorch-profiler traces
// recorded on this CPU, per-rank folders, phases B/E/i/M, exact 64-bit
// timestamps, round trips, and malformed files that fail with a clear
// message and leave the project as it was; apart
// (tst_chromeimport_third_party), HTA's traces with their GPU kernels.
#include "storetest.h"
#include "testdata.h"
#include "testmain.h"
#include "partita/profiler/analysis.h"
#include "partita/profiler/chromeimport.h"
#include "partita/profiler/tracestore.h"

#include <QDir>
#include <QTemporaryDir>
#include <QTest>

#include <zlib.h>

#include <fstream>
#include <map>

using namespace partita;
using partita::test::named;
using partita::test::openOrDie;

namespace {

using partita::test::thirdParty;
using partita::test::torchFacts;
using partita::test::torchTraces;

void write(const std::string& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

std::string readFile(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// The file gzip-compressed beside itself: PATH.gz.
std::string gzipCopy(const std::string& path)
{
    const std::string text = readFile(path), out = path + ".gz";
    gzFile f = gzopen(out.c_str(), "wb");
    gzwrite(f, text.data(), unsigned(text.size()));
    gzclose(f);
    return out;
}

std::string recorded(const char* set, int rank)
{
    return (torchTraces() + "/" + set + "/traces/rank" + QString::number(rank) + ".json").toStdString();
}

std::map<std::string, std::pair<int64_t, int64_t>> byName(const TraceStore& s, int64_t run)
{
    std::map<std::string, std::pair<int64_t, int64_t>> m;
    (void)s.forEachEvent(run, [&](const StoredEvent& e) {
        auto& x = m[std::string(traceKindName(e.record.kind)) + " " + e.record.name];
        ++x.first;
        x.second += e.record.dur_ns;
    });
    return m;
}

// import -> export -> import keeps every event, name, duration, kind and rank.
void checkRoundTrip(const std::string& trace)
{
    QTemporaryDir dir;
    auto s = openOrDie(dir.filePath("p.partita").toStdString());
    auto a = importChromeTrace(*s, {trace});
    QVERIFY2(a, a ? "" : a.error().str().c_str());
    const std::string out = dir.filePath("export.json").toStdString();
    auto n = exportChromeTrace(*s, a->run_id, out);
    QVERIFY2(n, n ? "" : n.error().str().c_str());
    auto b = importChromeTrace(*s, {out});
    QVERIFY2(b, b ? "" : b.error().str().c_str());
    QCOMPARE(b->counts, a->counts);
    QCOMPARE(b->ranks, a->ranks);
    QCOMPARE(byName(*s, b->run_id), byName(*s, a->run_id));
    QCOMPARE(s->run(b->run_id)->start_ns, s->run(a->run_id)->start_ns);
    QCOMPARE(s->tracks(b->run_id)->size(), s->tracks(a->run_id)->size());
}

} // namespace

class TestChromeImport : public QObject
{
    Q_OBJECT
private slots:
    // Debian's torch records without Kineto (the legacy profiler's export:
    // no categories, one "CPU functions" process): every operator is a CPU
    // op, ProfilerStep#N a step. Counts and total durations per name are
    // Python's reading of the same file (facts.json).
    void recordedTraces_data()
    {
        QTest::addColumn<QString>("set");
        QTest::addColumn<int>("rank");
        QTest::newRow("one process") << "one" << 0;
        QTest::newRow("DDP rank 0 of 2") << "two" << 0;
        QTest::newRow("DDP rank 1 of 2") << "two" << 1;
    }
    void recordedTraces()
    {
        QFETCH(QString, set);
        QFETCH(int, rank);
        PARTITA_REQUIRE_TORCH_TRACES();
        const QJsonObject facts = torchFacts(set, rank);
        QVERIFY(!facts.isEmpty());
        QTemporaryDir dir;
        auto s = openOrDie(dir.filePath("p.partita").toStdString());
        auto r = importChromeTrace(*s, {recorded(qPrintable(set), rank)});
        QVERIFY2(r, r ? "" : r.error().str().c_str());
        const QJsonObject byCat = facts["complete_events_by_cat"].toObject();
        const bool kineto = facts["kineto"].toBool();
        // The legacy export names no category: its record_function ranges
        // (the optimizer's, DDP's forward, module ranges) are annotations.
        auto isRange = [](const QString& n) {
            return n.startsWith("nn.Module: ") || n.startsWith("Optimizer.") || (n.endsWith(".forward") && !n.contains("::"));
        };
        int64_t ranges = 0;
        if (!kineto)
            for (const QString& n : facts["names"].toObject().keys())
                if (isRange(n))
                    ranges += facts["names"].toObject()[n].toArray()[0].toInt();
        QCOMPARE(r->counts["cpu_op"], int64_t(byCat[kineto ? "cpu_op" : ""].toInt()) - ranges);
        if (!kineto)
            QCOMPARE(r->counts["annotation"], ranges);
        QCOMPARE(r->counts["step"], int64_t(facts["profiler_steps"].toInt()));
        QCOMPARE(r->counts["kernel"], int64_t(byCat["kernel"].toInt()));
        // Per name, count and total duration as Python read them. (A Kineto
        // build's categories split these across kinds; its counts hold above.)
        const auto names = byName(*s, r->run_id);
        const QJsonObject expected = facts["names"].toObject();
        for (const QString& n : expected.keys()) {
            if (kineto)
                break;
            const QJsonArray countAndUs = expected[n].toArray();
            const auto it = names.find((isRange(n) ? "annotation " : "cpu_op ") + n.toStdString());
            QVERIFY2(it != names.end(), qPrintable(n));
            QCOMPARE(it->second.first, int64_t(countAndUs[0].toInt()));
            QCOMPARE(it->second.second, int64_t(countAndUs[1].toDouble()) * 1000);
        }
        auto run = s->run(r->run_id);
        QVERIFY(run && run->status == RunStatus::Complete && run->ranks == 1);
    }

    // The folder of a DDP job's rank traces is one run with both ranks.
    void recordedFolder()
    {
        PARTITA_REQUIRE_TORCH_TRACES();
        QTemporaryDir dir;
        auto s = openOrDie(dir.filePath("p.partita").toStdString());
        auto r = importChromeTrace(*s, {(torchTraces() + "/two/traces").toStdString()});
        QVERIFY2(r, r ? "" : r.error().str().c_str());
        QCOMPARE(r->ranks, (std::vector<int>{0, 1}));
        QCOMPARE(r->counts["step"], int64_t(torchFacts("two", 0)["profiler_steps"].toInt() +
                                            torchFacts("two", 1)["profiler_steps"].toInt()));
        QCOMPARE(s->run(r->run_id)->ranks, 2);
    }

    void roundTrip()
    {
        PARTITA_REQUIRE_TORCH_TRACES();
        checkRoundTrip(recorded("two", 0));
    }

    // A run of several ranks exported (one process per rank, pid = rank, no
    // distributedInfo) comes back with its ranks, every event on its own;
    // imported beside a file claiming one of its ranks, the later is left out.
    void multiRankRoundTrip_data()
    {
        QTest::addColumn<bool>("withClash");
        QTest::newRow("alone") << false;
        QTest::newRow("beside a file claiming rank 1") << true;
    }
    void multiRankRoundTrip()
    {
        QFETCH(bool, withClash);
        PARTITA_REQUIRE_TORCH_TRACES();
        QTemporaryDir dir;
        auto s = openOrDie(dir.filePath("p.partita").toStdString());
        auto a = importChromeTrace(*s, {(torchTraces() + "/two/traces").toStdString()});
        QVERIFY2(a, a ? "" : a.error().str().c_str());
        const std::string folder = dir.filePath("again").toStdString();
        QVERIFY(QDir().mkpath(QString::fromStdString(folder)));
        QVERIFY(exportChromeTrace(*s, a->run_id, folder + "/a-export.json"));
        if (withClash)
            write(folder + "/b-rank1.json", R"({"distributedInfo": {"rank": 1}, "traceEvents": [
                {"ph": "X", "cat": "kernel", "name": "k", "pid": 0, "tid": 7, "ts": 10, "dur": 5, "args": {"stream": 7}}]})");
        auto b = importChromeTrace(*s, {folder});
        QVERIFY2(b, b ? "" : b.error().str().c_str());
        QCOMPARE(b->ranks, (std::vector<int>{0, 1}));
        QCOMPARE(b->counts, a->counts);
        QCOMPARE(s->run(b->run_id)->ranks, 2);
        QCOMPARE(s->tracks(b->run_id)->size(), s->tracks(a->run_id)->size());
        // Per rank, every name's count and time.
        auto byRank = [&](int64_t run) {
            std::map<int64_t, int> rankOf;
            for (const StoredTrack& t : *s->tracks(run))
                rankOf[t.id] = t.rank;
            std::map<std::string, std::pair<int64_t, int64_t>> m;
            (void)s->forEachEvent(run, [&](const StoredEvent& e) {
                auto& x = m[std::to_string(rankOf[e.track_id]) + " " + e.record.name];
                ++x.first;
                x.second += e.record.dur_ns;
            });
            return m;
        };
        QCOMPARE(byRank(b->run_id), byRank(a->run_id));
        const bool said = std::any_of(b->left_out.begin(), b->left_out.end(), [](const std::string& l) {
            return l.find("b-rank1.json: claims rank 1, as") != std::string::npos && l.find("a-export.json does") != std::string::npos;
        });
        QCOMPARE(said, withClash);
    }

    // A file with Partita's object whose pids are not all ranks stays one
    // rank, every track of it (none left behind on a provisional rank).
    void exportLikeWithOtherPids()
    {
        QTemporaryDir dir;
        const std::string file = dir.filePath("mixed.json").toStdString();
        write(file, R"({"partita": {"run": "x", "kind": "imported"}, "traceEvents": [
            {"ph": "X", "cat": "kernel", "name": "k", "pid": 0, "tid": 7, "ts": 10, "dur": 5, "args": {"stream": 7}},
            {"ph": "X", "cat": "kernel", "name": "k", "pid": 1, "tid": 7, "ts": 12, "dur": 5, "args": {"stream": 7}},
            {"ph": "X", "cat": "cpu_op", "name": "op", "pid": "host", "tid": 1, "ts": 9, "dur": 5}]})");
        auto s = openOrDie(dir.filePath("p.partita").toStdString());
        auto r = importChromeTrace(*s, {file});
        QVERIFY2(r, r ? "" : r.error().str().c_str());
        QCOMPARE(r->ranks, (std::vector<int>{0}));
        auto tracks = s->tracks(r->run_id);
        QVERIFY(tracks);
        QCOMPARE(tracks->size(), size_t(3));
        for (const StoredTrack& t : *tracks)
            QCOMPARE(t.rank, 0);
    }

    void folderOfRanks()
    {
        QTemporaryDir dir;
        const std::string ranks = dir.filePath("ranks").toStdString();
        QVERIFY(QDir().mkpath(QString::fromStdString(ranks)));
        write(ranks + "/r0.json", R"({"distributedInfo": {"rank": 1}, "traceEvents": [
            {"ph": "X", "cat": "kernel", "name": "k", "pid": 0, "tid": 7, "ts": 10, "dur": 5, "args": {"stream": 7}}]})");
        write(ranks + "/r1.json", R"({"traceEvents": [
            {"ph": "X", "cat": "kernel", "name": "k", "pid": 0, "tid": 7, "ts": 12, "dur": 5, "args": {"stream": 7}}]})");
        write(ranks + "/notes.txt", "not a trace");
        auto s = openOrDie(dir.filePath("p.partita").toStdString());
        auto r = importChromeTrace(*s, {ranks});
        QVERIFY2(r, r ? "" : r.error().str().c_str());
        QCOMPARE(r->ranks, (std::vector<int>{1, 0})); // r1.json has no rank: the lowest unused
        QVERIFY(std::any_of(r->warnings.begin(), r->warnings.end(),
                            [](const std::string& w) { return w.find("no distributedInfo.rank") != std::string::npos; }));
        QCOMPARE(s->run(r->run_id)->ranks, 2);
    }

    // A folder of rank files, some of them wrong: the good ones imported,
    // each wrong one said (chunks of 16 events: a bad file's first events
    // are already stored when it fails, and are taken out again).
    void partialFolders_data()
    {
        QTest::addColumn<QStringList>("files");  // "name=rank" (a good file of 40 events), "name=junk", "name=cut:rank"
        QTest::addColumn<QList<int>>("ranks");   // the ranks imported
        QTest::addColumn<QStringList>("leftOut"); // what the report says was not
        QTest::newRow("a truncated rank") << QStringList{"r0=0", "r1=1", "r2=2", "r3=cut:3"} << QList<int>{0, 1, 2}
                                          << QStringList{"r3.json", "ends early", "no file holds rank 3 (of 4"};
        QTest::newRow("two files claim one rank") << QStringList{"a=0", "b=1", "c=1"} << QList<int>{0, 1}
                                                  << QStringList{"c.json: claims rank 1, as", "b.json does"};
        QTest::newRow("a missing rank") << QStringList{"r0=0", "r1=1", "r3=3"} << QList<int>{0, 1, 3}
                                        << QStringList{"no file holds rank 2 (of 4, the job's world_size)"};
        QTest::newRow("junk among them") << QStringList{"r0=0", "r1=1", "zz=junk"} << QList<int>{0, 1}
                                         << QStringList{"zz.json", "not a JSON object"};
        QTest::newRow("all present") << QStringList{"r0=0", "r1=1", "r2=2", "r3=3"} << QList<int>{0, 1, 2, 3} << QStringList{};
    }
    void partialFolders()
    {
        QFETCH(QStringList, files);
        QFETCH(QList<int>, ranks);
        QFETCH(QStringList, leftOut);
        QTemporaryDir dir;
        const std::string folder = dir.filePath("ranks").toStdString();
        QVERIFY(QDir().mkpath(QString::fromStdString(folder)));
        auto rankFile = [](int rank) {
            std::string t = R"({"distributedInfo": {"rank": )" + std::to_string(rank) + R"(, "world_size": 4}, "traceEvents": [)";
            for (int i = 0; i < 40; ++i)
                t += std::string(i ? "," : "") + R"({"ph": "X", "cat": "kernel", "name": "k", "pid": 0, "tid": 7, "ts": )" +
                     std::to_string(10 * i) + R"(, "dur": 5, "args": {"stream": 7}})";
            return t + "]}";
        };
        for (const QString& f : files) {
            const std::string name = folder + "/" + f.section('=', 0, 0).toStdString() + ".json";
            const QString what = f.section('=', 1);
            if (what == "junk")
                write(name, "hello, not a trace");
            else if (what.startsWith("cut:"))
                write(name, rankFile(what.mid(4).toInt()).substr(0, 1500));
            else
                write(name, rankFile(what.toInt()));
        }
        auto s = openOrDie(dir.filePath("p.partita").toStdString());
        TraceImportOptions o;
        o.commit_every = 16;
        auto r = importChromeTrace(*s, {folder}, o);
        QVERIFY2(r, r ? "" : r.error().str().c_str());
        std::vector<int> got = r->ranks;
        std::sort(got.begin(), got.end());
        QCOMPARE(got, std::vector<int>(ranks.begin(), ranks.end()));
        QString said;
        for (const std::string& l : r->left_out)
            said += QString::fromStdString(l) + "\n";
        for (const QString& l : leftOut)
            QVERIFY2(said.contains(l), qPrintable(said));
        if (leftOut.isEmpty())
            QVERIFY2(said.isEmpty(), qPrintable(said));
        // Only the good files' events, on their ranks; the store sound.
        auto run = s->run(r->run_id);
        QVERIFY(run);
        QCOMPARE(run->ranks, int(ranks.size()));
        QCOMPARE(run->events, int64_t(40 * ranks.size()));
        auto tracks = s->tracks(r->run_id);
        QVERIFY(tracks);
        for (const StoredTrack& t : *tracks)
            QVERIFY2(ranks.contains(t.rank), qPrintable(QString::number(t.rank)));
        QCOMPARE(*s->integrityCheck(), std::string("ok"));
        QVERIFY(analyzeRun(*s, r->run_id));
    }

    // Every file of a folder bad: nothing imported, the first failure named.
    void folderAllBad()
    {
        QTemporaryDir dir;
        const std::string folder = dir.filePath("ranks").toStdString();
        QVERIFY(QDir().mkpath(QString::fromStdString(folder)));
        write(folder + "/a.json", "nope");
        write(folder + "/b.json", R"({"traceEvents": [{"ph": )");
        auto s = openOrDie(dir.filePath("p.partita").toStdString());
        auto r = importChromeTrace(*s, {folder});
        QVERIFY(!r);
        const std::string e = r.error().str();
        QVERIFY2(e.find("a.json") != std::string::npos && e.find("every other file given failed too") != std::string::npos,
                 e.c_str());
        QVERIFY(s->runs()->empty());
    }

    void phasesAndTimestamps()
    {
        QTemporaryDir dir;
        const std::string f = dir.filePath("t.json").toStdString();
        // The JSON Array Format, B/E pairs, instants, metadata, 64-bit and fractional timestamps.
        write(f, R"([
            {"ph": "M", "name": "thread_name", "pid": 1, "tid": 2, "args": {"name": "main"}},
            {"ph": "B", "name": "outer", "cat": "user_annotation", "pid": 1, "tid": 2, "ts": 1661938466265032},
            {"ph": "X", "name": "inner", "cat": "cpu_op", "pid": 1, "tid": 2, "ts": 1661938466265033.25, "dur": 1.5},
            {"ph": "E", "pid": 1, "tid": 2, "ts": 1661938466265040},
            {"ph": "i", "name": "mark", "pid": 1, "tid": 2, "ts": 1661938466265041, "s": "t"},
            {"ph": "s", "name": "flow", "id": 1, "pid": 1, "tid": 2, "ts": 1661938466265041}
        ])");
        auto s = openOrDie(dir.filePath("p.partita").toStdString());
        auto r = importChromeTrace(*s, {f});
        QVERIFY2(r, r ? "" : r.error().str().c_str());
        QCOMPARE(r->skipped, int64_t(2)); // metadata and flow
        std::map<std::string, TraceRecord> ev;
        QVERIFY(s->forEachEvent(r->run_id, [&](const StoredEvent& e) { ev[e.record.name] = e.record; }));
        QCOMPARE(int(ev.size()), 3);
        QCOMPARE(ev["outer"].start_ns, int64_t(1661938466265032000));
        QCOMPARE(ev["outer"].dur_ns, int64_t(8000));
        QCOMPARE(ev["inner"].start_ns, int64_t(1661938466265033250));
        QCOMPARE(ev["inner"].dur_ns, int64_t(1500));
        QVERIFY(ev["inner"].kind == TraceKind::CpuOp);
        QVERIFY(ev["mark"].kind == TraceKind::Annotation && ev["mark"].dur_ns == 0);
        QCOMPARE(s->tracks(r->run_id)->front().name, std::string("main"));
    }

    // Gaps that HTA's users report are warnings, not failures.
    void toleratedGaps()
    {
        QTemporaryDir dir;
        const std::string f = dir.filePath("t.json").toStdString();
        write(f, R"({"traceEvents": [
            {"ph": "X", "name": "ok", "cat": "kernel", "pid": 0, "tid": 7, "ts": 1, "dur": 2},
            {"ph": "X", "name": "no args", "cat": "cpu_op", "pid": 1, "tid": 1, "ts": 1, "dur": 2},
            {"ph": "X", "name": "negative", "cat": "cpu_op", "pid": 1, "tid": 1, "ts": 1, "dur": -2},
            {"ph": "X", "name": "no dur", "cat": "cpu_op", "pid": 1, "tid": 1, "ts": 1},
            {"ph": "X", "name": "bad ts", "cat": "cpu_op", "pid": 1, "tid": 1, "ts": {"a": 1}, "dur": 1},
            {"ph": "Q", "name": "unknown phase", "pid": 1, "tid": 1, "ts": 1},
            {"ph": "E", "pid": 1, "tid": 9, "ts": 5},
            17,
            {"ph": "X", "name": 42, "cat": "cpu_op", "pid": "main", "tid": "t", "ts": "3", "dur": 1}
        ]})");
        auto s = openOrDie(dir.filePath("p.partita").toStdString());
        auto r = importChromeTrace(*s, {f});
        QVERIFY2(r, r ? "" : r.error().str().c_str());
        QCOMPARE(r->counts["kernel"], int64_t(1));
        QCOMPARE(r->counts["cpu_op"], int64_t(3)); // no args, no dur (instant), name 42
        QString all;
        for (const auto& w : r->warnings)
            all += QString::fromStdString(w) + "\n";
        for (const char* expected : {"negative duration", "without \"dur\"", "unreadable \"ts\"", "unknown phase 'Q'",
                                     "without a matching 'B'", "not event objects", "no distributedInfo.rank"})
            QVERIFY2(all.contains(expected), qPrintable(all));
    }

    void malformedFilesLoseNothing_data()
    {
        QTest::addColumn<QByteArray>("bytes");
        QTest::addColumn<QString>("message");
        QTest::newRow("empty file") << QByteArray() << "empty file";
        QTest::newRow("not JSON") << QByteArray("hello world") << "not a JSON object";
        QTest::newRow("truncated JSON") << QByteArray(R"({"traceEvents": [{"ph": "X", "ts": 1, "dur": 1}, {"ph": )")
                                        << "ends early";
        QTest::newRow("no traceEvents") << QByteArray(R"({"foo": [1, 2]})") << "no \"traceEvents\"";
        QTest::newRow("broken event") << QByteArray(R"({"traceEvents": [{"ph": "X", "ts": 1,, "dur": 1}]})")
                                      << "event at byte 17";
        QTest::newRow("two top-level values") << QByteArray(R"({"traceEvents": []} {"x": 1})") << "more than one";
    }
    void malformedFilesLoseNothing()
    {
        QFETCH(QByteArray, bytes);
        QFETCH(QString, message);
        QTemporaryDir dir;
        auto s = openOrDie(dir.filePath("p.partita").toStdString());
        PARTITA_REQUIRE_TORCH_TRACES();
        auto good = importChromeTrace(*s, {recorded("one", 0)});
        QVERIFY(good);
        const int64_t events = s->runs()->front().events;
        QVERIFY(events > 1000);
        const std::string f = dir.filePath("bad.json").toStdString();
        write(f, bytes.toStdString());
        auto r = importChromeTrace(*s, {f});
        QVERIFY(!r);
        const QString text = QString::fromStdString(r.error().str());
        QVERIFY2(text.contains("bad.json") && text.contains(message), qPrintable(text));
        auto runs = s->runs();
        QVERIFY(runs && runs->size() == 1 && runs->front().id == good->run_id);
        QCOMPARE(runs->front().events, events);
        QCOMPARE(*s->integrityCheck(), std::string("ok"));
    }

    void truncatedGzip()
    {
        PARTITA_REQUIRE_TORCH_TRACES();
        QTemporaryDir dir;
        const std::string plain = dir.filePath("rank1.json").toStdString();
        write(plain, readFile(recorded("two", 1)));
        const std::string gz = readFile(gzipCopy(plain));
        const std::string f = dir.filePath("cut.json.gz").toStdString();
        write(f, gz.substr(0, gz.size() / 2));
        auto s = openOrDie(dir.filePath("p.partita").toStdString());
        auto r = importChromeTrace(*s, {f});
        QVERIFY(!r);
        const QString text = QString::fromStdString(r.error().str());
        QVERIFY2(text.contains("cut.json.gz") && (text.contains("truncated") || text.contains("ends early")), qPrintable(text));
        QVERIFY(s->runs()->empty());
    }

    void missingInputs()
    {
        QTemporaryDir dir;
        auto s = openOrDie(dir.filePath("p.partita").toStdString());
        auto r = importChromeTrace(*s, {dir.filePath("nope.json").toStdString()});
        QVERIFY(!r && r.error().message.find("no such file") != std::string::npos);
        QVERIFY(QDir().mkpath(dir.filePath("empty")));
        auto e = importChromeTrace(*s, {dir.filePath("empty").toStdString()});
        QVERIFY(!e && e.error().message.find("no .json") != std::string::npos);
    }

    // The scanner that cuts the event array into elements skims 64-byte
    // blocks for quotes, backslashes and brackets (blocks of a read start at
    // the read's first byte), and the file arrives in 256 KiB reads: an
    // escaped quote or a bracket inside a string must neither end the string
    // nor the element, wherever it falls relative to a block or a read. The
    // row places the backslash (or bracket) `shift` bytes from the first
    // read's end.
    void escapesAcrossBlocksAndReads_data()
    {
        QTest::addColumn<int>("shift");
        QTest::addColumn<QString>("escaped");
        for (int shift : {-3, -2, -1, 0, 1, 15, 16, 17, 62, 63, 64, 65, 127, 128})
            for (const char* e : {"\\\"", "\\\\", "}"})
                QTest::newRow(qPrintable(QString("%1 at %2").arg(e).arg(shift))) << shift << QString(e);
    }
    void escapesAcrossBlocksAndReads()
    {
        QFETCH(int, shift);
        QFETCH(QString, escaped);
        const std::string esc = escaped.toStdString();
        constexpr size_t kRead = size_t(256) << 10; // FileImporter's read size (kReadBytes)
        std::string text = "{\"traceEvents\": [\n";
        int fillers = 0;
        auto event = [](const std::string& name, int ts) {
            return "{\"ph\": \"X\", \"cat\": \"cpu_op\", \"name\": \"" + name + "\", \"pid\": 1, \"tid\": 1, \"ts\": " +
                   std::to_string(ts) + ", \"dur\": 1, \"args\": {\"k\": \"{[\\\"]}\"}},\n";
        };
        const std::string head = "{\"ph\": \"X\", \"cat\": \"cpu_op\", \"name\": \"pad";
        // Fill up to where the probe event's escape lands at kRead + shift.
        while (text.size() + 4096 < kRead) {
            text += event("filler " + std::string(200, 'x'), fillers * 10);
            ++fillers;
        }
        const size_t target = size_t(int64_t(kRead) + shift);
        QVERIFY(target > text.size() + head.size());
        const size_t pad = target - text.size() - head.size();
        const std::string probe = "pad" + std::string(pad, 'y') + esc + "end";
        text += event(probe, fillers * 10);
        QCOMPARE(text.find(esc, target), target);
        text += event("after", fillers * 10 + 10);
        text.resize(text.size() - 2); // the last comma
        text += "\n]}\n";
        QTemporaryDir dir;
        const std::string f = dir.filePath("escapes.json").toStdString();
        write(f, text);
        auto s = openOrDie(dir.filePath("p.partita").toStdString());
        auto r = importChromeTrace(*s, {f});
        QVERIFY2(r, r ? "" : r.error().str().c_str());
        const auto names = byName(*s, r->run_id);
        std::string unescaped = probe;
        const std::string plainEsc = esc == "\\\"" ? "\"" : esc == "\\\\" ? "\\" : esc;
        unescaped.replace(unescaped.find(esc), esc.size(), plainEsc);
        QVERIFY2(names.count("cpu_op " + unescaped), "the probe event's name did not survive");
        QVERIFY(names.count("cpu_op after"));
        QCOMPARE(names.at("cpu_op filler " + std::string(200, 'x')).first, int64_t(fillers));
    }

    // The same trace gzip-compressed and plain gives the same run.
    void gzipAndPlainAgree()
    {
        PARTITA_REQUIRE_TORCH_TRACES();
        QTemporaryDir dir;
        const std::string plain = dir.filePath("plain.json").toStdString();
        write(plain, readFile(recorded("one", 0)));
        auto s = openOrDie(dir.filePath("p.partita").toStdString());
        auto a = importChromeTrace(*s, {gzipCopy(plain)});
        auto b = importChromeTrace(*s, {plain});
        QVERIFY(a && b);
        QCOMPARE(a->counts, b->counts);
        QCOMPARE(byName(*s, a->run_id), byName(*s, b->run_id));
    }
};

class TestChromeImportThirdParty : public QObject
{
    Q_OBJECT
private slots:
    // Counts read from the files with Python's json module (ph X by cat; the
    // 'i' instants as annotations; ProfilerStep#N as steps).
    void realTraces_data()
    {
        QTest::addColumn<QString>("file");
        QTest::addColumn<int>("rank");
        QTest::addColumn<int>("kernels");
        QTest::addColumn<int>("memcpy");
        QTest::addColumn<int>("runtime");
        QTest::addColumn<int>("cpuOps");
        QTest::addColumn<int>("steps");
        QTest::newRow("nccl_parser_config") << "nccl_parser_config-nccl_data.json.gz" << 0 << 2700 << 960 << 8740 << 14346 << 3;
        QTest::newRow("trace_diff control") << "trace_diff-control-control.json.gz" << 3 << 8568 << 228 << 24692 << 40506 << 6;
        QTest::newRow("trace_diff test") << "trace_diff-test-test.json.gz" << 1 << 9876 << 4856 << 21167 << 31236 << 6;
        QTest::newRow("trace_compare base") << "trace_compare-base-base.json.gz" << 1 << 6 << 6 << 5 << 6 << 2;
    }
    void realTraces()
    {
        QFETCH(QString, file);
        QFETCH(int, rank);
        QFETCH(int, kernels);
        QFETCH(int, memcpy);
        QFETCH(int, runtime);
        QFETCH(int, cpuOps);
        QFETCH(int, steps);
        PARTITA_REQUIRE_THIRD_PARTY("traces/" + file);
        QTemporaryDir dir;
        auto s = openOrDie(dir.filePath("p.partita").toStdString());
        auto r = importChromeTrace(*s, {thirdParty("traces/" + file).toStdString()});
        QVERIFY2(r, r ? "" : r.error().str().c_str());
        QCOMPARE(r->ranks, std::vector<int>{rank});
        QCOMPARE(r->counts["kernel"], int64_t(kernels));
        QCOMPARE(r->counts["memcpy"], int64_t(memcpy));
        QCOMPARE(r->counts["runtime"], int64_t(runtime));
        QCOMPARE(r->counts["cpu_op"], int64_t(cpuOps));
        QCOMPARE(r->counts["step"], int64_t(steps));
        auto run = s->run(r->run_id);
        QVERIFY(run && run->status == RunStatus::Complete && run->ranks == 1);
        // Every GPU event sits on a device track named after its stream.
        auto tracks = s->tracks(r->run_id);
        QVERIFY(tracks);
        bool gpuTrack = false;
        for (const auto& t : *tracks)
            if (t.device) {
                gpuTrack = true;
                QVERIFY2(QString::fromStdString(t.name).contains("stream"), t.name.c_str());
            }
        QVERIFY(gpuTrack);
    }

    // A GPU trace (kernels, memcpys, NCCL) survives export and import.
    void roundTripWithKernels()
    {
        PARTITA_REQUIRE_THIRD_PARTY("traces/nccl_parser_config-nccl_data.json.gz");
        checkRoundTrip(thirdParty("traces/nccl_parser_config-nccl_data.json.gz").toStdString());
    }
};

PARTITA_TEST_SPLIT_APPLESS_MAIN(TestChromeImport, TestChromeImportThirdParty, "--third-party")
#include "tst_chromeimport.moc"
