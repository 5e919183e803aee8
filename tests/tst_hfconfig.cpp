// Hugging Face config.json import: exact parameter counts, per-layer costs
// against the closed forms of Narayanan et al. 2021 and Korthikanti et al.
// 2022, and clear errors on bad configs.
#include "partita/core/modelio.h"

#include <QFile>
#include <QJsonDocument>
#include <QJsonObject>
#include <QTest>

using namespace partita;

namespace {

std::string readAll(const QString& path)
{
    QFile f(path);
    if (!f.open(QIODevice::ReadOnly))
        return {};
    return f.readAll().toStdString();
}

QString testData(const char* rel) { return QStringLiteral(PARTITA_TEST_DATA "/") + rel; }

Model load(const QString& path)
{
    auto m = loadModel(path.toStdString());
    if (!m)
        qFatal("%s", m.error().str().c_str());
    return std::move(m).value();
}

// Forward FLOPs of the layers whose names start with `prefix` and match a kind filter.
double flopsOf(const Model& m, int64_t b, int64_t s, const std::function<bool(const Layer&)>& pick)
{
    double f = 0;
    for (const auto& l : m.layers)
        if (pick(l))
            f += layerCostAt(l, b, s).forward_flops;
    return f;
}

} // namespace

class TestHfConfig : public QObject
{
    Q_OBJECT
private slots:
    void parameterCounts_data()
    {
        QTest::addColumn<QString>("path");
        QTest::addColumn<qlonglong>("parameters");
        QTest::addColumn<QString>("family");
        QTest::addColumn<qlonglong>("blocks");
        // ORACLES.md
        QTest::newRow("bert-base-uncased") << testData("hf/bert-base-uncased.json") << 109482240LL << "bert" << 12LL;
        QTest::newRow("gpt2") << testData("hf/gpt2.json") << 124439808LL << "gpt2" << 12LL;
        QTest::newRow("llama-2-7b") << testData("hf/llama-2-7b-hf.json") << 6738415616LL << "llama" << 32LL;
        // More of each family (tests/data/hf/README.md)
        QTest::newRow("bert-large") << testData("hf/bert-large-uncased.json") << 335141888LL << "bert" << 24LL;
        QTest::newRow("gpt2-medium") << testData("hf/gpt2-medium.json") << 354823168LL << "gpt2" << 24LL;
        QTest::newRow("gpt2-xl") << testData("hf/gpt2-xl.json") << 1557611200LL << "gpt2" << 48LL;
        QTest::newRow("llama-2-13b") << testData("hf/llama-2-13b-hf.json") << 13015864320LL << "llama" << 40LL;
        QTest::newRow("tinyllama-gqa") << testData("hf/tinyllama-1.1b.json") << 1100048384LL << "llama" << 22LL;
        QTest::newRow("llama-3.2-1b-tied") << testData("hf/llama-3.2-1b.json") << 1235814400LL << "llama" << 16LL;
        QTest::newRow("mistral-7b-gqa") << testData("hf/mistral-7b-v0.1.json") << 7241732096LL << "mistral" << 32LL;
        QTest::newRow("mixtral-8x7b-moe") << testData("hf/mixtral-8x7b-v0.1.json") << 46702792704LL << "mixtral" << 32LL;
        QTest::newRow("t5-small") << testData("hf/t5-small.json") << 60506624LL << "t5" << 12LL;
        QTest::newRow("t5-base") << testData("hf/t5-base.json") << 222903552LL << "t5" << 24LL;
        QTest::newRow("nemotron-4-340b-sq-relu") << testData("hf/nemotron-4-340b.json") << 341029195776LL << "nemotron" << 96LL;
        QTest::newRow("t5-v1_1-small-gated-untied") << testData("hf/t5-v1_1-small.json") << 76961152LL << "t5" << 16LL;
    }
    void parameterCounts()
    {
        QFETCH(QString, path);
        QFETCH(qlonglong, parameters);
        QFETCH(QString, family);
        QFETCH(qlonglong, blocks);
        QVERIFY2(QFile::exists(path), qPrintable("fixture missing: " + path));
        const Model m = load(path);
        QCOMPARE(qlonglong(m.parameterCount()), parameters);
        QCOMPARE(QString::fromStdString(m.family), family);
        QCOMPARE(qlonglong(m.dims.layers), blocks);
        QVERIFY(validateModel(m).empty());
        // Every embedding records that its gradient is sparse.
        int embeddings = 0;
        for (const auto& l : m.layers)
            if (l.kind == LayerKind::Embedding) {
                QVERIFY(l.sparse_grad);
                ++embeddings;
            }
        QCOMPARE(embeddings, 1);
    }

    // Matmul FLOPs of a GPT layer: 24bsh^2 + 4bs^2h (Narayanan et al. 2021, §5.1),
    // LM head 2bshV. Exact, since the importer counts 2 FLOPs per multiply-add.
    void gptMatmulFlopsMatchClosedForm_data()
    {
        QTest::addColumn<QString>("path");
        QTest::addColumn<qlonglong>("batch");
        QTest::addColumn<qlonglong>("seq");
        QTest::newRow("gpt2 b1 s1024") << testData("hf/gpt2.json") << 1LL << 1024LL;
        QTest::newRow("gpt2-xl b4 s512") << testData("hf/gpt2-xl.json") << 4LL << 512LL;
    }
    void gptMatmulFlopsMatchClosedForm()
    {
        QFETCH(QString, path);
        QFETCH(qlonglong, batch);
        QFETCH(qlonglong, seq);
        const Model m = load(path);
        const double h = double(m.dims.hidden), b = double(batch), s = double(seq), V = double(m.dims.vocab);
        const double perLayer = 24 * b * s * h * h + 4 * b * s * s * h;
        const double blocks = flopsOf(m, batch, seq, [](const Layer& l) {
            return !l.block.empty() && (l.kind == LayerKind::Linear || l.kind == LayerKind::AttentionCore);
        });
        QCOMPARE(blocks, perLayer * double(m.dims.layers));
        const double head = flopsOf(m, batch, seq, [](const Layer& l) { return l.kind == LayerKind::LMHead; });
        QCOMPARE(head, 2 * b * s * h * V);
        // Backward of a layer with weights is twice its forward (dgrad + wgrad).
        const Layer* fc1 = m.find("h.0.mlp.fc1");
        QVERIFY(fc1);
        const CostAt c = layerCostAt(*fc1, batch, seq);
        QCOMPARE(c.backward_flops, 2 * c.forward_flops);
    }

    // Activations a GPT layer keeps for backward with 16-bit activations and
    // dropout: 34sbh + 5as^2b bytes (Korthikanti et al. 2022, eq. 1).
    void gptActivationMemoryMatchesKorthikanti_data()
    {
        QTest::addColumn<QString>("path");
        QTest::addColumn<qlonglong>("batch");
        QTest::addColumn<qlonglong>("seq");
        QTest::newRow("gpt2 b1 s1024") << testData("hf/gpt2.json") << 1LL << 1024LL;
        QTest::newRow("gpt2-medium b8 s256") << testData("hf/gpt2-medium.json") << 8LL << 256LL;
    }
    void gptActivationMemoryMatchesKorthikanti()
    {
        QFETCH(QString, path);
        QFETCH(qlonglong, batch);
        QFETCH(qlonglong, seq);
        const Model m = load(path);
        const double h = double(m.dims.hidden), a = double(m.dims.heads), b = double(batch), s = double(seq);
        for (int block : {0, int(m.dims.layers) - 1}) {
            const std::string prefix = "h." + std::to_string(block);
            double bytes = 0;
            for (const auto& l : m.layers)
                if (l.block == prefix)
                    bytes += layerCostAt(l, batch, seq, 2).activation_bytes;
            QCOMPARE(bytes, 34 * s * b * h + 5 * a * s * s * b);
        }
    }

    // A config that leaves the dropout keys out trains with its family's
    // Hugging Face defaults: the same activations as the full config (BERT,
    // GPT-2, T5: 0.1; Llama: attention_dropout 0.0), noted where that adds
    // dropout; an explicit 0 keeps less.
    void dropoutDefaults_data()
    {
        QTest::addColumn<QString>("path");
        QTest::addColumn<QStringList>("keys");
        QTest::addColumn<bool>("noted");
        QTest::newRow("gpt2") << testData("hf/gpt2.json") << QStringList{"resid_pdrop", "attn_pdrop", "embd_pdrop"} << true;
        QTest::newRow("bert") << testData("hf/bert-base-uncased.json")
                              << QStringList{"hidden_dropout_prob", "attention_probs_dropout_prob"} << true;
        QTest::newRow("t5") << testData("hf/t5-small.json") << QStringList{"dropout_rate"} << true;
        QTest::newRow("llama-3.2 (0.0)") << testData("hf/llama-3.2-1b.json") << QStringList{"attention_dropout"} << false;
    }
    void dropoutDefaults()
    {
        QFETCH(QString, path);
        QFETCH(QStringList, keys);
        QFETCH(bool, noted);
        QFile f(path);
        QVERIFY(f.open(QIODevice::ReadOnly));
        const QJsonObject full = QJsonDocument::fromJson(f.readAll()).object();
        for (const QString& k : keys)
            QVERIFY2(full.contains(k), qPrintable(k)); // the row tests a key the real config has
        auto activations = [](const QJsonObject& config) {
            auto m = modelFromHfConfig(QJsonDocument(config).toJson().toStdString(), "config.json");
            if (!m)
                qFatal("%s", m.error().str().c_str());
            double bytes = 0;
            for (const auto& l : m->layers)
                bytes += layerCostAt(l, 2, 128, 2).activation_bytes;
            return std::make_pair(bytes, m->notes);
        };
        QJsonObject missing = full, zero = full;
        for (const QString& k : keys) {
            missing.remove(k);
            zero[k] = 0.0;
        }
        const auto [fullBytes, fullNotes] = activations(full);
        const auto [missingBytes, notes] = activations(missing);
        QCOMPARE(missingBytes, fullBytes);
        bool said = false;
        for (const auto& n : notes)
            said |= n.find(keys.front().toStdString() + " not given") != std::string::npos;
        QCOMPARE(said, noted);
        const double zeroBytes = activations(zero).first;
        if (noted)
            QVERIFY(zeroBytes < fullBytes);
        else
            QCOMPARE(zeroBytes, fullBytes);
    }

    // A config that names only its family is the family's config class with
    // its defaults, which transformers documents as the reference checkpoint:
    // the same parameters as that checkpoint's config.json, each default noted.
    void familyDefaults_data()
    {
        QTest::addColumn<QString>("modelType");
        QTest::addColumn<qlonglong>("parameters");
        QTest::newRow("bert: bert-base-uncased") << "bert" << 109482240LL;
        QTest::newRow("gpt2: gpt2") << "gpt2" << 124439808LL;
        QTest::newRow("t5: t5-small") << "t5" << 60506624LL;
        QTest::newRow("llama: LLaMA-7B, as llama-2-7b") << "llama" << 6738415616LL;
        QTest::newRow("mistral: Mistral-7B-v0.1") << "mistral" << 7241732096LL;
        QTest::newRow("mixtral: Mixtral-8x7B") << "mixtral" << 46702792704LL;
    }
    void familyDefaults()
    {
        QFETCH(QString, modelType);
        QFETCH(qlonglong, parameters);
        auto m = modelFromHfConfig(QString(R"({"model_type": "%1"})").arg(modelType).toStdString(), "config.json");
        QVERIFY2(m, m ? "" : m.error().str().c_str());
        QCOMPARE(qlonglong(m->parameterCount()), parameters);
        bool noted = false;
        for (const auto& n : m->notes)
            noted |= n.find("not given:") != std::string::npos && n.find("default") != std::string::npos;
        QVERIFY(noted);
    }

    void llamaGqaShapes()
    {
        const Model m = load(testData("hf/mistral-7b-v0.1.json"));
        const Layer* qkv = m.find("layers.0.attention.qkv");
        QVERIFY(qkv);
        QCOMPARE(qkv->params.size(), size_t(3));
        QCOMPARE(qkv->params[1].shape, (std::vector<int64_t>{1024, 4096})); // 8 kv heads x 128
        const Layer* core = m.find("layers.0.attention.core");
        QVERIFY(core);
        QCOMPARE(core->dims.heads, int64_t(32));
        QCOMPARE(core->dims.kv_heads, int64_t(8));
        QCOMPARE(core->dims.head_dim, int64_t(128));
        const Layer* head = m.find("lm_head");
        QVERIFY(head && head->tied_to.empty() && head->parameterCount() == 32000LL * 4096);
    }

    void mixtralActiveExperts()
    {
        const Model m = load(testData("hf/mixtral-8x7b-v0.1.json"));
        const Layer* ex = m.find("layers.0.moe.experts");
        QVERIFY(ex);
        QCOMPARE(ex->kind, LayerKind::MoEExperts);
        QCOMPARE(ex->params.size(), size_t(24));
        // Each token visits 2 of 8 experts: 2 x 3 matmuls of 4096 x 14336.
        QCOMPARE(double(layerCostAt(*ex, 1, 1).forward_flops), 2.0 * 3 * 2 * 4096 * 14336);
        const Layer* router = m.find("layers.0.moe.router");
        QVERIFY(router && router->kind == LayerKind::MoERouter && router->parameterCount() == 8 * 4096);
    }

    void t5EncoderDecoder()
    {
        const Model m = load(testData("hf/t5-small.json"));
        const Layer* kv = m.find("decoder.block.3.cross_attention.kv");
        QVERIFY(kv);
        QCOMPARE(kv->inputs, std::vector<std::string>{"encoder.final_layer_norm"});
        // Relative attention bias only in the first block of each stack.
        QCOMPARE(m.find("encoder.block.0.self_attention.core")->parameterCount(), int64_t(32 * 8));
        QCOMPARE(m.find("encoder.block.1.self_attention.core")->parameterCount(), int64_t(0));
        QCOMPARE(m.find("decoder.block.0.self_attention.core")->parameterCount(), int64_t(32 * 8));
        QCOMPARE(m.find("lm_head")->tied_to, std::string("shared"));
    }

    void gpt2TiedHeadAndMissingInner()
    {
        // n_inner null means 4 x n_embd.
        const std::string text = readAll(testData("hf/gpt2.json"));
        QVERIFY(!text.empty());
        auto m = modelFromHfConfig(text, "gpt2.json");
        QVERIFY(m);
        QCOMPARE(m->dims.ffn, int64_t(3072));
        QCOMPARE(m->find("lm_head")->tied_to, std::string("embeddings"));
        QCOMPARE(m->find("lm_head")->parameterCount(), int64_t(0));
    }

    void badConfigs_data()
    {
        QTest::addColumn<QString>("text");
        QTest::addColumn<QString>("where");
        QTest::addColumn<QString>("message");
        const QString gpt = R"({"model_type":"gpt2","vocab_size":50257,"n_embd":768,"n_layer":12,"n_head":12,"n_positions":1024%1})";
        QTest::newRow("empty") << "" << "" << "empty";
        QTest::newRow("truncated") << R"({"model_type": "gpt2", "n_embd": 7)" << "line 1" << "truncated";
        QTest::newRow("not json") << "model_type = gpt2" << "line 1, column 1" << "invalid JSON";
        QTest::newRow("array") << "[1,2]" << "/" << "expected an object";
        QTest::newRow("missing model_type") << R"({"n_embd": 768})" << "/model_type" << "missing required field";
        QTest::newRow("unknown type") << R"({"model_type": "bloom"})" << "/model_type" << "unsupported model_type 'bloom'";
        QTest::newRow("wrong type") << gpt.arg(R"(,"n_inner":"big")") << "/n_inner" << "expected an integer, found a string";
        QTest::newRow("negative") << R"({"model_type":"gpt2","vocab_size":-5,"n_embd":768})" << "/vocab_size" << "out of range";
        QTest::newRow("absurd") << R"({"model_type":"bert","vocab_size":30522,"hidden_size":1000000000})" << "/hidden_size" << "out of range";
        QTest::newRow("fractional") << gpt.arg(R"(,"n_inner":3072.5)") << "/n_inner" << "expected an integer";
        QTest::newRow("heads do not divide") << R"({"model_type":"gpt2","vocab_size":50257,"n_embd":768,"n_layer":12,"n_head":7,"n_positions":1024})" << "/n_embd" << "not divisible by n_head";
        QTest::newRow("gqa does not divide") << R"({"model_type":"llama","vocab_size":32000,"hidden_size":4096,"num_hidden_layers":2,"num_attention_heads":32,"num_key_value_heads":5,"intermediate_size":11008})" << "/num_attention_heads" << "not divisible by num_key_value_heads";
        QTest::newRow("top-k > experts") << R"({"model_type":"mixtral","vocab_size":32000,"hidden_size":4096,"num_hidden_layers":2,"num_attention_heads":32,"intermediate_size":14336,"num_local_experts":8,"num_experts_per_tok":9})" << "/num_experts_per_tok" << "exceeds num_local_experts";
        QTest::newRow("t5 bad ff") << R"({"model_type":"t5","vocab_size":32128,"d_model":512,"d_kv":64,"num_heads":8,"d_ff":2048,"num_layers":6,"feed_forward_proj":"swish-glu"})" << "/feed_forward_proj" << "unsupported";
        QTest::newRow("dropout out of range") << gpt.arg(R"(,"resid_pdrop":3)") << "/resid_pdrop" << "out of range";
    }
    void badConfigs()
    {
        QFETCH(QString, text);
        QFETCH(QString, where);
        QFETCH(QString, message);
        auto m = modelFromHfConfig(text.toStdString(), "config.json");
        QVERIFY(!m);
        const Error& e = m.error();
        QCOMPARE(QString::fromStdString(e.file), QStringLiteral("config.json"));
        QVERIFY2(QString::fromStdString(e.where).startsWith(where), e.str().c_str());
        QVERIFY2(QString::fromStdString(e.message).contains(message), e.str().c_str());
    }
};

QTEST_APPLESS_MAIN(TestHfConfig)
#include "tst_hfconfig.moc"
