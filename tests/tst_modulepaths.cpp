// core/modulepaths: a framework's module paths resolved to the layer names
// Partita's model readers give (Hugging Face GPT-2 and Llama, torchtitan,
// Megatron, Partita's own PyTorch export), wrappers stripped, the model
// itself no layer, and a module's own time given to the one layer under it
// that no module stands for.
#include "partita/core/modelio.h"
#include "partita/core/modulepaths.h"

#include <QTest>

using namespace partita;

namespace {

std::vector<std::string> layerNames(const char* config)
{
    auto m = modelFromHfConfig(config, "config.json");
    if (!m)
        qFatal("%s", m.error().str().c_str());
    std::vector<std::string> names;
    for (const Layer& l : m->layers)
        names.push_back(l.name);
    return names;
}

const char* const kGpt2 = R"({"model_type": "gpt2", "n_embd": 64, "n_layer": 2, "n_head": 4, "vocab_size": 256,
                              "n_positions": 64})";
const char* const kLlama = R"({"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
                               "num_key_value_heads": 2, "intermediate_size": 128, "vocab_size": 256,
                               "max_position_embeddings": 64})";

} // namespace

class TestModulePaths : public QObject
{
    Q_OBJECT
private slots:
    void stripsWrappers_data()
    {
        QTest::addColumn<QString>("path");
        QTest::addColumn<QString>("stripped");
        QTest::newRow("DDP") << "module.transformer.h.0" << "transformer.h.0";
        QTest::newRow("compile and FSDP") << "_orig_mod._fsdp_wrapped_module.layers.3.mlp" << "layers.3.mlp";
        QTest::newRow("checkpoint wrapper") << "layers.1._checkpoint_wrapped_module.attention" << "layers.1.attention";
        QTest::newRow("the model itself") << "module" << "";
        QTest::newRow("nothing to strip") << "lm_head" << "lm_head";
    }
    void stripsWrappers()
    {
        QFETCH(QString, path);
        QFETCH(QString, stripped);
        QCOMPARE(QString::fromStdString(stripModuleWrappers(path.toStdString())), stripped);
    }

    // Rows: the model, the module paths the run recorded, the path asked
    // about, and the layer (or module path, or nothing) its time goes to.
    void matches_data()
    {
        QTest::addColumn<QString>("model");
        QTest::addColumn<QStringList>("recorded");
        QTest::addColumn<QString>("path");
        QTest::addColumn<QString>("name");
        QTest::addColumn<bool>("isLayer");
        const QStringList hfGpt2{"transformer.wte", "transformer.h.0.attn", "transformer.h.0.attn.c_attn",
                                 "transformer.h.0.attn.c_proj", "transformer.h.0.mlp", "transformer.h.0.mlp.c_fc",
                                 "transformer.h.0.mlp.act", "transformer.h.0.mlp.c_proj", "lm_head"};
        const QStringList export_{"h.0.attention", "h.0.attention.qkv", "h.0.attention.out", "h.0.mlp",
                                  "h.0.mlp.fc1", "h.0.mlp.fc2"};
        QTest::newRow("HF GPT-2 qkv") << "gpt2" << hfGpt2 << "transformer.h.0.attn.c_attn" << "h.0.attention.qkv" << true;
        QTest::newRow("HF GPT-2 attention out") << "gpt2" << hfGpt2 << "module.transformer.h.0.attn.c_proj"
                                                << "h.0.attention.out" << true;
        QTest::newRow("HF GPT-2 mlp out, not the attention's") << "gpt2" << hfGpt2 << "transformer.h.0.mlp.c_proj"
                                                               << "h.0.mlp.fc2" << true;
        QTest::newRow("HF GPT-2 embeddings") << "gpt2" << hfGpt2 << "transformer.wte" << "embeddings" << true;
        QTest::newRow("attention's own time is its core") << "gpt2" << hfGpt2 << "transformer.h.0.attn"
                                                          << "h.0.attention.core" << true;
        QTest::newRow("mlp's own time: act has a module, so no layer") << "gpt2" << hfGpt2 << "transformer.h.0.mlp"
                                                                       << "transformer.h.0.mlp" << false;
        QTest::newRow("export: mlp's own time is its activation") << "gpt2" << export_ << "h.0.mlp" << "h.0.mlp.act" << true;
        QTest::newRow("export names are the layers") << "gpt2" << export_ << "h.0.attention.qkv" << "h.0.attention.qkv" << true;
        QTest::newRow("HF Llama q_proj") << "llama" << QStringList{} << "model.layers.1.self_attn.q_proj"
                                         << "layers.1.attention.qkv" << true;
        QTest::newRow("HF Llama gate") << "llama" << QStringList{} << "model.layers.0.mlp.gate_proj"
                                       << "layers.0.mlp.gate_up" << true;
        QTest::newRow("HF Llama down") << "llama" << QStringList{} << "model.layers.0.mlp.down_proj" << "layers.0.mlp.down"
                                       << true;
        QTest::newRow("HF Llama norm") << "llama" << QStringList{} << "model.norm" << "norm" << true;
        QTest::newRow("torchtitan wq") << "llama" << QStringList{} << "layers.0.attention.wq" << "layers.0.attention.qkv"
                                       << true;
        QTest::newRow("torchtitan w2") << "llama" << QStringList{} << "layers.1.feed_forward.w2" << "layers.1.mlp.down"
                                       << true;
        QTest::newRow("torchtitan norms") << "llama" << QStringList{} << "layers.1.ffn_norm"
                                          << "layers.1.post_attention_layernorm" << true;
        QTest::newRow("Megatron qkv") << "llama" << QStringList{} << "decoder.layers.0.self_attention.linear_qkv"
                                      << "layers.0.attention.qkv" << true;
        QTest::newRow("the loss range") << "llama" << QStringList{} << "loss" << "loss" << true;
        QTest::newRow("the model itself") << "gpt2" << hfGpt2 << "(GPT2LMHeadModel)" << "" << false;
        QTest::newRow("its container") << "gpt2" << hfGpt2 << "transformer" << "" << false;
        QTest::newRow("a module that is no layer") << "gpt2" << hfGpt2 << "transformer.h.0" << "transformer.h.0" << false;
        QTest::newRow("no model: the path") << "" << hfGpt2 << "module.transformer.h.0.attn.c_attn"
                                            << "transformer.h.0.attn.c_attn" << false;
    }
    void matches()
    {
        QFETCH(QString, model);
        QFETCH(QStringList, recorded);
        QFETCH(QString, path);
        QFETCH(QString, name);
        QFETCH(bool, isLayer);
        const std::vector<std::string> layers =
            model == "gpt2" ? layerNames(kGpt2) : model == "llama" ? layerNames(kLlama) : std::vector<std::string>{};
        std::vector<std::string> paths;
        for (const QString& p : recorded)
            paths.push_back(p.toStdString());
        const ModulePathMatcher matcher(layers, paths);
        const ModuleMatch m = matcher.match(path.toStdString());
        QCOMPARE(QString::fromStdString(m.name), name);
        QCOMPARE(m.layer >= 0, isLayer);
        if (isLayer)
            QCOMPARE(QString::fromStdString(layers[size_t(m.layer)]), name);
    }
};

QTEST_APPLESS_MAIN(TestModulePaths)
#include "tst_modulepaths.moc"
