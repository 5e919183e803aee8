// Native model JSON: exact round trips and clear errors on malformed files.
#include "partita/core/modelio.h"

#include <QDir>
#include <QTest>

using namespace partita;

class TestModelJson : public QObject
{
    Q_OBJECT
private slots:
    void roundTrip_data()
    {
        QTest::addColumn<QString>("path");
        for (const QString& f : QDir(PARTITA_TEST_DATA "/hf").entryList({"*.json"}))
            QTest::newRow(qPrintable(f)) << QStringLiteral(PARTITA_TEST_DATA "/hf/") + f;
        QTest::newRow("bundled demo") << QStringLiteral(PARTITA_SOURCE_DIR "/resources/demo/model.json");
    }
    void roundTrip()
    {
        QFETCH(QString, path);
        auto m = loadModel(path.toStdString());
        QVERIFY2(m, m ? "" : m.error().str().c_str());
        const std::string once = modelToJson(*m);
        auto back = modelFromJson(once, "roundtrip.json");
        QVERIFY2(back, back ? "" : back.error().str().c_str());
        QVERIFY(*back == *m);
        QCOMPARE(modelToJson(*back), once);
    }

    void costsAndFields()
    {
        Model m;
        m.name = "tiny";
        m.family = "native";
        m.seq_len = 8;
        Layer emb;
        emb.name = "emb";
        emb.kind = LayerKind::Embedding;
        emb.sparse_grad = true;
        emb.params = {TensorSpec{"emb.weight", {100, 16}, DType::BF16}};
        emb.cost.output_elems_per_token = 16;
        Layer fc;
        fc.name = "fc";
        fc.kind = LayerKind::Linear;
        fc.inputs = {"emb"};
        fc.params = {TensorSpec{"fc.weight", {32, 16}, DType::BF16}};
        fc.cost.flops_per_token = 2 * 16 * 32;
        fc.cost.flops_per_seq2 = 7;
        fc.cost.saved_elems_per_token = 16;
        fc.cost.mask_bytes_per_token = 32;
        fc.source_nodes = {"/fc/MatMul", "/fc/Add"};
        m.layers = {emb, fc};
        const std::string text = modelToJson(m);
        auto back = modelFromJson(text);
        QVERIFY(back);
        QVERIFY(*back == m);
        QCOMPARE(back->parameterCount(), int64_t(100 * 16 + 32 * 16));
        const CostAt c = layerCostAt(back->layers[1], 2, 8, 2);
        QCOMPARE(c.forward_flops, 2.0 * 8 * (2 * 16 * 32) + 2.0 * 64 * 7);
        QCOMPARE(c.activation_bytes, 16.0 * (16 * 2 + 32));
    }

    void malformed_data()
    {
        QTest::addColumn<QString>("text");
        QTest::addColumn<QString>("where");
        QTest::addColumn<QString>("message");
        const QString layer = R"({"partita_model":1,"layers":[%1]})";
        QTest::newRow("empty") << "  \n" << "" << "empty";
        QTest::newRow("truncated") << R"({"partita_model":1,"layers":[{"name":"a")" << "line 1" << "ends early";
        QTest::newRow("second line") << "{\"partita_model\":1,\n  \"layers\": [,]}" << "line 2, column 14" << "invalid JSON";
        QTest::newRow("no layers field") << R"({"partita_model":1})" << "/layers" << "missing required field";
        QTest::newRow("layers not array") << R"({"partita_model":1,"layers":{}})" << "/layers" << "expected an array";
        QTest::newRow("no layers") << R"({"partita_model":1,"layers":[]})" << "/layers" << "no layers";
        QTest::newRow("newer version") << R"({"partita_model":7,"layers":[]})" << "/partita_model" << "newer";
        QTest::newRow("unknown kind") << layer.arg(R"({"name":"a","kind":"magic"})") << "/layers/0/kind" << "unknown layer kind 'magic'";
        QTest::newRow("missing name") << layer.arg(R"({"kind":"linear"})") << "/layers/0/name" << "missing";
        QTest::newRow("negative dim") << layer.arg(R"({"name":"a","kind":"linear","params":[{"name":"w","shape":[4,-1]}]})") << "/layers/0/params/0/shape/1" << "out of range";
        QTest::newRow("absurd dim") << layer.arg(R"({"name":"a","kind":"linear","params":[{"name":"w","shape":[1e15]}]})") << "/layers/0/params/0/shape/0" << "out of range";
        QTest::newRow("too many elements") << layer.arg(R"({"name":"a","kind":"linear","params":[{"name":"w","shape":[1000000000,1000000000]}]})") << "/layers/0/params/0/shape" << "2^50";
        QTest::newRow("empty shape") << layer.arg(R"({"name":"a","kind":"linear","params":[{"name":"w","shape":[]}]})") << "/layers/0/params/0/shape" << "at least one";
        QTest::newRow("bad dtype") << layer.arg(R"({"name":"a","kind":"linear","params":[{"name":"w","shape":[2],"dtype":"fp5"}]})") << "/layers/0/params/0/dtype" << "unknown dtype";
        QTest::newRow("negative cost") << layer.arg(R"({"name":"a","kind":"linear","cost":{"flops_per_token":-3}})") << "/layers/0/cost/flops_per_token" << "out of range";
        QTest::newRow("string cost") << layer.arg(R"({"name":"a","kind":"linear","cost":{"flops_per_token":"3"}})") << "/layers/0/cost/flops_per_token" << "found a string";
        QTest::newRow("dangling input") << layer.arg(R"({"name":"a","kind":"linear","inputs":["zzz"]})") << "/layers" << "input 'zzz' is not an earlier layer";
        QTest::newRow("duplicate") << layer.arg(R"({"name":"a","kind":"linear"},{"name":"a","kind":"norm"})") << "/layers" << "duplicate";
        QTest::newRow("bad tie") << layer.arg(R"({"name":"a","kind":"linear","tied_to":"a"})") << "/layers" << "tied_to";
        QTest::newRow("bool as int") << layer.arg(R"({"name":"a","kind":"linear","sparse_grad":1})") << "/layers/0/sparse_grad" << "true or false";
    }
    void malformed()
    {
        QFETCH(QString, text);
        QFETCH(QString, where);
        QFETCH(QString, message);
        auto m = modelFromJson(text.toStdString(), "m.json");
        QVERIFY(!m);
        QCOMPARE(QString::fromStdString(m.error().file), QStringLiteral("m.json"));
        QVERIFY2(QString::fromStdString(m.error().where).startsWith(where), m.error().str().c_str());
        QVERIFY2(QString::fromStdString(m.error().message).contains(message), m.error().str().c_str());
    }

    void loadModelPicksFormat_data()
    {
        QTest::addColumn<QString>("content");
        QTest::addColumn<QString>("message");
        QTest::newRow("json without keys") << R"({"hello": 1})" << "not a model";
        QTest::newRow("binary garbage") << QString::fromLatin1("\x01\x02\xff\xfe garbage") << "not an ONNX model";
        QTest::newRow("json array") << "[]" << "expected a JSON object";
    }
    void loadModelPicksFormat()
    {
        QFETCH(QString, content);
        QFETCH(QString, message);
        const QString path = QDir::temp().filePath("partita-tst-modeljson.bin");
        QFile f(path);
        QVERIFY(f.open(QIODevice::WriteOnly | QIODevice::Truncate));
        f.write(content.toLatin1());
        f.close();
        auto m = loadModel(path.toStdString());
        QVERIFY(!m);
        QVERIFY2(QString::fromStdString(m.error().message).contains(message), m.error().str().c_str());
        QCOMPARE(QString::fromStdString(m.error().file), path);
        QFile::remove(path);
    }

    void missingFile()
    {
        auto m = loadModel("/nonexistent/partita/model.json");
        QVERIFY(!m);
        QVERIFY(QString::fromStdString(m.error().message).contains("No such file"));
    }
};

QTEST_APPLESS_MAIN(TestModelJson)
#include "tst_modeljson.moc"
