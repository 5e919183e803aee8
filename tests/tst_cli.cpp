// partita-cli end to end: exit codes, one-line errors, tables and JSON; apart
// (tst_cli_third_party), the trace commands on HTA's traces and an nsys export.
#include "clitest.h"
#include "testdata.h"
#include "testmain.h"

#include <QDir>
#include <QFileInfo>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <QTemporaryDir>
#include <QTest>


class TestCli : public QObject
{
    Q_OBJECT
private:
    QTemporaryDir m_tmp;
    QString write(const QString& name, const QByteArray& bytes)
    {
        const QString path = m_tmp.filePath(name);
        QFile f(path);
        f.open(QIODevice::WriteOnly | QIODevice::Truncate);
        f.write(bytes);
        return path;
    }

private slots:
    void initTestCase()
    {
        // run --cluster local caches this CPU's calibration: here, not in the home folder.
        qputenv("XDG_CACHE_HOME", m_tmp.filePath("cache").toUtf8());
    }

    void exitCodes_data()
    {
        QTest::addColumn<QStringList>("args");
        QTest::addColumn<int>("code");
        QTest::addColumn<QString>("out");
        QTest::addColumn<QString>("err");
        QTest::newRow("help") << QStringList{"--help"} << 0 << "inspect" << "";
        QTest::newRow("inspect help") << QStringList{"inspect", "--help"} << 0 << "--seq-len" << "";
        QTest::newRow("convert help") << QStringList{"convert", "--help"} << 0 << "--output" << "";
        QTest::newRow("no command") << QStringList{} << 2 << "" << "subcommand";
        QTest::newRow("bert table") << QStringList{"inspect", data("hf/bert-base-uncased.json")} << 0 << "109,482,240" << "";
        QTest::newRow("preset") << QStringList{"inspect", "dgx-h100:2"} << 0 << "16" << "";
        QTest::newRow("local") << QStringList{"inspect", "local"} << 0 << "Cluster" << "";
        QTest::newRow("topo") << QStringList{"inspect", data("topo/dgx-a100.txt"), "--device", "a100-sxm4-80gb"} << 0 << "nvlink x12" << "";
        QTest::newRow("hostfile") << QStringList{"inspect", data("hostfiles/openmpi.txt"), "--node", "dgx-h100"} << 0 << "node-a" << "";
        QTest::newRow("missing file") << QStringList{"inspect", "/nonexistent/model.json"} << 2 << "" << "/nonexistent/model.json: no such file";
        QTest::newRow("unknown preset") << QStringList{"inspect", "dgx-z9000"} << 2 << "" << "unknown cluster preset";
        QTest::newRow("bad batch") << QStringList{"inspect", data("hf/gpt2.json"), "--batch", "0"} << 2 << "" << "batch";
        QTest::newRow("bad as") << QStringList{"inspect", data("hf/gpt2.json"), "--as", "banana"} << 2 << "" << "banana";
        QTest::newRow("presets") << QStringList{"presets"} << 0 << "megatron" << "";
        QTest::newRow("simulate help") << QStringList{"simulate", "--help"} << 0 << "--sequence-parallel" << "";
        QTest::newRow("simulate table") << QStringList{"simulate", "--model", data("hf/gpt2.json"), "--cluster", "dgx-a100-80gb", "--tp", "2", "--pp", "2"} << 0 << "Step time" << "";
        QTest::newRow("simulate preset") << QStringList{"simulate", "--model", data("hf/bert-large-uncased.json"), "--cluster", "p3.16xlarge:4", "--preset", "horovod", "--global-batch", "256", "--micro-batch", "8"} << 0 << "exposed comm" << "";
        QTest::newRow("simulate strategy file") << QStringList{"simulate", "--model", data("hf/bert-large-uncased.json"), "--cluster", "p3.16xlarge:4", "--strategy", PARTITA_SOURCE_DIR "/resources/strategies/bert-large-adaptive-p3x4.json"} << 0 << "adaptive" << "";
        QTest::newRow("strategy atoms") << QStringList{"strategy", "atoms"} << 0 << "tp-column" << "";
        QTest::newRow("strategy assign") << QStringList{"strategy", "assign", "--model", data("hf/gpt2.json"), "--cluster", "p3.16xlarge:4", "--preset", "ddp", "--layers", "h.*.mlp.fc1", "--atom", "ps", "--shards", "4"} << 0 << "\"match\": \"h.11.mlp.fc1\"" << "";
        QTest::newRow("strategy assign refused") << QStringList{"strategy", "assign", "--model", data("hf/gpt2.json"), "--cluster", "p3.16xlarge:4", "--preset", "ddp", "--layers", "h.0.ln_1", "--atom", "sfb"} << 2 << "" << "layer 'h.0.ln_1': SFB refused: sufficient-factor broadcasting applies to fully-connected layers only";
        QTest::newRow("strategy assign no match") << QStringList{"strategy", "assign", "--model", data("hf/gpt2.json"), "--cluster", "p3.16xlarge:4", "--preset", "ddp", "--layers", "h.*.nope", "--atom", "ps"} << 2 << "" << "'h.*.nope' matches no layer";
        QTest::newRow("strategy assign bad atom") << QStringList{"strategy", "assign", "--model", data("hf/gpt2.json"), "--cluster", "p3.16xlarge:4", "--preset", "ddp", "--layers", "h.0.ln_1", "--atom", "zero-7"} << 2 << "" << "unknown atom 'zero-7'";
        QTest::newRow("simulate tp vs heads") << QStringList{"simulate", "--model", data("hf/gpt2.json"), "--cluster", "dgx-a100-80gb", "--tp", "8"} << 2 << "" << "does not divide its 12 attention heads";
        QTest::newRow("simulate tp vs devices") << QStringList{"simulate", "--model", data("hf/gpt2.json"), "--cluster", "dgx-a100-80gb", "--tp", "3"} << 2 << "" << "does not divide the cluster's 8 devices";
        QTest::newRow("simulate uneven stages") << QStringList{"simulate", "--model", data("hf/gpt2.json"), "--cluster", "dgx-a100-80gb", "--pp", "4", "--first-stage-layers", "2", "--last-stage-layers", "2"} << 0 << "Step time" << "";
        QTest::newRow("simulate uneven stages refused") << QStringList{"simulate", "--model", data("hf/gpt2.json"), "--cluster", "dgx-a100-80gb", "--pp", "4", "--first-stage-layers", "3", "--last-stage-layers", "2"} << 2 << "" << "leave 7 of the model's 12";
        QTest::newRow("simulate unknown preset") << QStringList{"simulate", "--model", data("hf/gpt2.json"), "--cluster", "dgx-a100-80gb", "--preset", "nope"} << 2 << "" << "unknown strategy preset";
        QTest::newRow("simulate strategy and preset") << QStringList{"simulate", "--model", data("hf/gpt2.json"), "--cluster", "dgx-a100-80gb", "--preset", "ddp", "--strategy", "x.json"} << 2 << "" << "excludes";
        QTest::newRow("search help") << QStringList{"search", "--help"} << 0 << "--budget-s" << "";
        QTest::newRow("search") << QStringList{"search", "--model", data("hf/gpt2.json"), "--cluster", "g4dn.12xlarge:2", "--global-batch", "32", "--max-evals", "60", "--budget-s", "20"} << 0 << "Best:" << "";
        QTest::newRow("search bad objective") << QStringList{"search", "--model", data("hf/gpt2.json"), "--cluster", "g4dn.12xlarge", "--objective", "fame"} << 2 << "" << "fame";
        QTest::newRow("export megatron") << QStringList{"export", "--model", data("hf/llama-2-7b-hf.json"), "--cluster", "dgx-h100:2", "--preset", "megatron", "--tp", "4", "--pp", "2", "--cp", "2", "--sequence-parallel", "--zero", "1"} << 0 << "--context-parallel-size 2" << "";
        QTest::newRow("export refused") << QStringList{"export", "--model", data("hf/gpt2.json"), "--cluster", "dgx-a100-80gb", "--preset", "ddp"} << 2 << "" << "layer 'embeddings' (sparse rows): Megatron-LM's embedding gradients are dense";
        QTest::newRow("export closest") << QStringList{"export", "--model", data("hf/gpt2.json"), "--cluster", "dgx-a100-80gb", "--preset", "ddp", "--closest"} << 0 << "# Changed to what Megatron-LM can run: embedding gradients: sparse rows -> dense" << "predicted step time";
        QTest::newRow("export an encoder") << QStringList{"export", "--model", data("hf/bert-base-uncased.json"), "--cluster", "dgx-a100-80gb", "--preset", "megatron", "--closest"} << 2 << "" << "decoder-only";
        QTest::newRow("export deepspeed") << QStringList{"export", "--format", "deepspeed", "--model", data("hf/gpt2-medium.json"), "--cluster", "dgx-a100-80gb:2", "--preset", "zero-3", "--global-batch", "64", "--micro-batch", "4"} << 0 << "\"stage3_prefetch_bucket_size\"" << "-o DIR";
        QTest::newRow("export deepspeed refused") << QStringList{"export", "--format", "deepspeed", "--model", data("hf/llama-2-7b-hf.json"), "--cluster", "dgx-h100:2", "--preset", "megatron", "--tp", "2", "--cp", "2", "--sequence-parallel"} << 2 << "" << "DeepSpeed: cp 2: DeepSpeed splits sequences with Ulysses";
        QTest::newRow("import deepspeed without a cluster") << QStringList{"import-config", data("frameworks/deepspeed-v0.18.9-keys.txt"), "--format", "deepspeed"} << 2 << "" << "give a cluster";
        QTest::newRow("export horovod") << QStringList{"export", "--format", "horovod", "--model", data("hf/bert-large-uncased.json"), "--cluster", "p3.16xlarge:4", "--preset", "horovod", "--global-batch", "256", "--micro-batch", "8"} << 0 << "horovodrun --num-proc 32" << "";
        QTest::newRow("export horovod refused") << QStringList{"export", "--format", "horovod", "--model", data("hf/gpt2.json"), "--cluster", "dgx-a100-80gb", "--preset", "zero-1"} << 2 << "" << "Horovod: zero_stage 1";
        QTest::newRow("lint a missing file") << QStringList{"lint-config", data("missing/launch.sh"), "--format", "megatron"} << 2 << "" << "missing/launch.sh: cannot open";
        QTest::newRow("import-config missing") << QStringList{"import-config", "/nonexistent/launch.sh"} << 2 << "" << "/nonexistent/launch.sh";
        QTest::newRow("topo without device") << QStringList{"inspect", data("topo/dgx-a100.txt")} << 2 << "" << "--device";
    }
    void exitCodes()
    {
        QFETCH(QStringList, args);
        QFETCH(int, code);
        QFETCH(QString, out);
        QFETCH(QString, err);
        const Run r = cli(args);
        QVERIFY2(r.code == code, qPrintable(QString("exit %1, stderr: %2").arg(r.code).arg(r.err)));
        QVERIFY2(r.out.contains(out), qPrintable(r.out.left(2000)));
        QVERIFY2(r.err.contains(err), qPrintable(r.err));
    }

    // Bad input: exit 2 and exactly one line naming the file, the place and the problem.
    void badInputOneLine_data()
    {
        QTest::addColumn<QString>("name");
        QTest::addColumn<QByteArray>("bytes");
        QTest::addColumn<QString>("expected");
        QTest::newRow("empty") << "empty.json" << QByteArray() << "empty.json: the file is empty";
        QTest::newRow("truncated") << "trunc.json" << QByteArray("{\"model_type\": \"gpt2\",\n \"n_embd\": ") << "trunc.json: line 2, column 12";
        QTest::newRow("wrong type") << "type.json" << QByteArray(R"({"model_type":"bert","vocab_size":"many"})") << "type.json: /vocab_size: expected an integer, found a string";
        QTest::newRow("unknown model") << "bloom.json" << QByteArray(R"({"model_type":"bloom"})") << "bloom.json: /model_type: unsupported model_type 'bloom'";
        QTest::newRow("non-onnx bytes") << "x.onnx" << QByteArray("\xff\xfe\x00\x01garbage", 11) << "x.onnx: not an ONNX model";
        QTest::newRow("bad cluster") << "c.json" << QByteArray(R"({"partita_cluster":1,"nodes":[{"devices":[{"preset":"a200"}]}]})") << "c.json: /nodes/0/devices/0/preset: unknown device preset";
        QTest::newRow("bad hostfile") << "hosts" << QByteArray("a slots=two\n") << "hosts: line 1: 'slots' needs an integer";
    }
    void badInputOneLine()
    {
        QFETCH(QString, name);
        QFETCH(QByteArray, bytes);
        QFETCH(QString, expected);
        const QString path = write(name, bytes);
        const Run r = cli({"inspect", path});
        QCOMPARE(r.code, 2);
        QVERIFY(r.out.isEmpty());
        QCOMPARE(r.err.count('\n'), 1);
        QVERIFY2(r.err.startsWith("partita-cli: error: "), qPrintable(r.err));
        QVERIFY2(r.err.contains(m_tmp.filePath(expected)), qPrintable(r.err + " / expected " + expected));
    }

    void modelJson()
    {
        const Run r = cli({"inspect", data("hf/llama-2-7b-hf.json"), "--json", "--batch", "2", "--seq-len", "4096"});
        QCOMPARE(r.code, 0);
        const QJsonObject j = QJsonDocument::fromJson(r.out.toUtf8()).object();
        QCOMPARE(j["parameters"].toInteger(), 6738415616LL);
        QCOMPARE(j["seq_len"].toInt(), 4096);
        QCOMPARE(j["batch"].toInt(), 2);
        QVERIFY(j["flops_per_token"].toDouble() > 2 * 6.7e9); // 2 FLOPs per parameter plus attention
        const QJsonArray layers = j["layers"].toArray();
        QVERIFY(layers.size() > 32 * 7);
        for (const auto& lv : layers) {
            const QJsonObject l = lv.toObject();
            for (const char* key : {"name", "kind", "parameters", "forward_flops", "activation_bytes"})
                QVERIFY2(l.contains(key), key);
        }
        QCOMPARE(layers[0].toObject()["kind"].toString(), QStringLiteral("embedding"));
        QVERIFY(layers[0].toObject()["sparse_grad"].toBool());
    }

    void clusterJson()
    {
        const Run r = cli({"inspect", "p3.16xlarge:2", "--json"});
        QCOMPARE(r.code, 0);
        const QJsonObject j = QJsonDocument::fromJson(r.out.toUtf8()).object();
        QCOMPARE(j["nodes"].toArray().size(), 2);
        QCOMPARE(j["devices"].toArray().size(), 16);
        // 28 GPU pairs per node plus one network entry per node.
        QCOMPARE(j["links"].toArray().size(), 2 * (28 + 1));
        QCOMPARE(j["devices"].toArray()[0].toObject()["peak_flops"].toObject()["fp16"].toDouble(), 125e12);
    }

    void simulateJson()
    {
        const QString trace = m_tmp.filePath("predicted.json");
        const QString plan = m_tmp.filePath("plan.json");
        const Run r = cli({"simulate", "--model", PARTITA_SOURCE_DIR "/tests/bench/megatron/gpt-22b.json", "--cluster",
                           "dgx-a100-80gb", "--tp", "8", "--global-batch", "4", "--micro-batch", "4", "--recompute",
                           "selective", "--sequence-parallel", "--dtype", "fp16", "--json", "--trace-out", trace,
                           "--plan-out", plan});
        QVERIFY2(r.code == 0, qPrintable(r.err));
        const QJsonObject j = QJsonDocument::fromJson(r.out.toUtf8()).object();
        for (const char* key : {"step_time_s", "throughput", "mfu", "oom", "breakdown", "memory"})
            QVERIFY2(j.contains(key), key);
        const QJsonObject mem = j["memory"].toObject();
        for (const char* key : {"parameters_optimizer_bytes", "activations_bytes", "peak_bytes"})
            QVERIFY2(mem.contains(key), key);
        QVERIFY(j["step_time_s"].toDouble() > 0.5 && j["step_time_s"].toDouble() < 2);
        QVERIFY(!j["oom"].toBool());
        QFile f(trace);
        QVERIFY(f.open(QIODevice::ReadOnly));
        const QJsonObject t = QJsonDocument::fromJson(f.readAll()).object();
        QVERIFY(t["traceEvents"].toArray().size() > 48 * 7);
        QFile pf(plan);
        QVERIFY(pf.open(QIODevice::ReadOnly));
        const QJsonObject pj = QJsonDocument::fromJson(pf.readAll()).object();
        QCOMPARE(pj["partita_plan"].toInt(), 1);
        QCOMPARE(pj["classes"].toArray().size(), 1);
    }

    // A strategy leaves as a Megatron-LM script and comes back as itself; the
    // model is rebuilt from the flags.
    void megatronRoundTrip()
    {
        const QString script = m_tmp.filePath("launch.sh"), back = m_tmp.filePath("back.json"),
                      model = m_tmp.filePath("back-model.json");
        const QStringList mesh{"--cluster", "dgx-h100:2", "--preset", "megatron", "--tp", "2", "--pp", "2",
                               "--sequence-parallel", "--zero", "1", "--global-batch", "64"};
        const Run e = cli(QStringList{"export", "--model", data("hf/llama-2-7b-hf.json"), "-o", script} + mesh);
        QVERIFY2(e.code == 0, qPrintable(e.err));
        QVERIFY(QFileInfo(script).isExecutable());
        const Run i = cli({"import-config", script, "-o", back, "--model-out", model, "--cluster", "dgx-h100:2"});
        QVERIFY2(i.code == 0, qPrintable(i.err));
        QVERIFY2(i.out.contains("dp 4 x tp 2 x cp 1 x pp 2 on 16 GPUs") && i.out.contains("Predicted"), qPrintable(i.out));
        const Run a = cli(QStringList{"simulate", "--model", data("hf/llama-2-7b-hf.json"), "--json"} + mesh);
        const Run b = cli({"simulate", "--model", model, "--cluster", "dgx-h100:2", "--strategy", back, "--json"});
        QVERIFY2(a.code == 0 && b.code == 0, qPrintable(a.err + b.err));
        QCOMPARE(QJsonDocument::fromJson(b.out.toUtf8()).object()["step_time_s"].toDouble(),
                 QJsonDocument::fromJson(a.out.toUtf8()).object()["step_time_s"].toDouble());
        QFile bad(m_tmp.filePath("bad.sh"));
        QVERIFY(bad.open(QIODevice::WriteOnly));
        bad.write("torchrun --nnodes 2 --nproc-per-node 8 pretrain_gpt.py --num-layers 4 --hidden-size 256 \\\n"
                  "  --num-attention-heads 4 --seq-length 128 --pipeline-model-parallel-size $PP\n");
        bad.close();
        const Run r = cli({"import-config", bad.fileName()});
        QCOMPARE(r.code, 2);
        QVERIFY2(r.err.contains("bad.sh: --pipeline-model-parallel-size: value '$PP' is a shell variable"), qPrintable(r.err));
    }

    // A data-parallel strategy leaves as a PyTorch script (tst_pytorch runs
    // it) and comes back from the script's CONFIG, predicting the same.
    void pytorchRoundTrip()
    {
        const QString script = m_tmp.filePath("train.py"), back = m_tmp.filePath("train.json"),
                      model = m_tmp.filePath("train-model.json");
        const QStringList how{"--cluster", "p3.16xlarge", "--dp", "8", "--zero", "1", "--dtype", "fp32",
                              "--global-batch", "32", "--seq-len", "512"};
        const Run e = cli(QStringList{"export", "--format", "pytorch", "--model", data("hf/gpt2.json"), "-o", script} + how);
        QVERIFY2(e.code == 0, qPrintable(e.err));
        const Run i = cli({"import-config", script, "-o", back, "--model-out", model, "--cluster", "p3.16xlarge"});
        QVERIFY2(i.code == 0, qPrintable(i.err));
        QVERIFY2(i.out.contains("Strategy   dp 8 x tp 1 x cp 1 x pp 1, ZeRO 1, fp32, global batch 32") && i.out.contains("sequence 512"),
                 qPrintable(i.out));
        const Run a = cli(QStringList{"simulate", "--model", data("hf/gpt2.json"), "--json"} + how);
        const Run b = cli({"simulate", "--model", model, "--cluster", "p3.16xlarge", "--strategy", back, "--seq-len",
                           "512", "--json"});
        QVERIFY2(a.code == 0 && b.code == 0, qPrintable(a.err + b.err));
        QCOMPARE(QJsonDocument::fromJson(b.out.toUtf8()).object()["step_time_s"].toDouble(),
                 QJsonDocument::fromJson(a.out.toUtf8()).object()["step_time_s"].toDouble());
        const Run refused = cli(QStringList{"export", "--format", "pytorch", "--model", data("hf/gpt2.json"), "--cluster",
                                            "p3.16xlarge", "--tp", "2", "--dp", "4"});
        QCOMPARE(refused.code, 2);
        QVERIFY2(refused.err.contains("take no DTensor parameters"), qPrintable(refused.err));
        // With FSDP2 (ZeRO-2) beside it, the DTensor plan is written, and reads back as tp 2 x dp 4.
        const Run tp = cli(QStringList{"export", "--format", "pytorch", "--model", data("hf/gpt2.json"), "--cluster",
                                       "p3.16xlarge", "--tp", "2", "--dp", "4", "--zero", "2", "--sequence-parallel",
                                       "--dtype", "fp32", "--global-batch", "32", "-o", script});
        QVERIFY2(tp.code == 0, qPrintable(tp.err));
        const Run tpBack = cli({"import-config", script, "-o", back, "--cluster", "p3.16xlarge"});
        QVERIFY2(tpBack.code == 0 && tpBack.out.contains("dp 4 x tp 2"), qPrintable(tpBack.out + tpBack.err));
    }

    // lint-config: every rule broken, exit 1; a clean job gets its prediction, exit 0.
    void lintConfig()
    {
        QFile bad(m_tmp.filePath("lint.sh"));
        QVERIFY(bad.open(QIODevice::WriteOnly));
        bad.write("torchrun --nnodes 2 --nproc-per-node 8 pretrain_gpt.py --num-layers 30 --hidden-size 4096 "
                  "--num-attention-heads 32 --seq-length 4096 --tensor-model-parallel-size 4 "
                  "--pipeline-model-parallel-size 4 --overlap-param-gather --bf16\n");
        bad.close();
        const Run r = cli({"lint-config", bad.fileName(), "--cluster", "dgx-h100:2"});
        QCOMPARE(r.code, 1);
        QVERIFY2(r.out.contains("--num-layers: Megatron-LM core_r0.10.0 refuses it: 30 layers do not divide over 4"), qPrintable(r.out));
        QVERIFY2(r.out.contains("--overlap-param-gather"), qPrintable(r.out));
        const QString script = m_tmp.filePath("lint-good.sh");
        const Run e = cli({"export", "--model", data("hf/llama-2-7b-hf.json"), "--cluster", "dgx-h100:2", "--preset", "megatron",
                           "--tp", "2", "--pp", "2", "--global-batch", "64", "-o", script});
        QVERIFY2(e.code == 0, qPrintable(e.err));
        const Run g = cli({"lint-config", script, "--cluster", "dgx-h100:2", "--search-s", "0"});
        QVERIFY2(g.code == 0, qPrintable(g.out + g.err));
        QVERIFY2(g.out.contains("accepts it") && g.out.contains("Partita predicts"), qPrintable(g.out));
    }

    // lint-config reads what export writes for torchtitan and accelerate: the
    // export is accepted and predicted; one broken key is refused, exit 1.
    void lintConfigFormats_data()
    {
        QTest::addColumn<QString>("format");
        QTest::addColumn<QString>("from");
        QTest::addColumn<QString>("to");
        QTest::addColumn<QString>("finding");
        QTest::newRow("torchtitan") << "torchtitan" << "tensor_parallel_degree = 2" << "tensor_parallel_degree = 2\nfsdp_shard = 2"
                                    << "parallelism.fsdp_shard: torchtitan v0.2.2 refuses it";
        QTest::newRow("accelerate") << "accelerate" << "num_processes: 16" << "num_processes: 32"
                                    << "num_processes: accelerate v1.14.0 refuses it: 32 processes on 16 GPUs";
    }
    void lintConfigFormats()
    {
        QFETCH(QString, format);
        QFETCH(QString, from);
        QFETCH(QString, to);
        QFETCH(QString, finding);
        const QString file = m_tmp.filePath("lint-" + format), model = m_tmp.filePath("l3.json");
        QFile mf(model);
        QVERIFY(mf.open(QIODevice::WriteOnly));
        mf.write(R"({"model_type": "llama", "hidden_size": 4096, "intermediate_size": 14336, "num_attention_heads": 32,
                     "num_key_value_heads": 8, "num_hidden_layers": 32, "vocab_size": 128256, "max_position_embeddings": 8192,
                     "rope_theta": 500000.0, "tie_word_embeddings": false})");
        mf.close();
        const Run e = cli({"export", "--model", model, "--cluster", "dgx-h100:2", "--tp", "2", "--sequence-parallel", "--zero", "3",
                           "--global-batch", "64", "--micro-batch", "1", "--format", format, "-o", file});
        QVERIFY2(e.code == 0, qPrintable(e.err));
        const Run g = cli({"lint-config", file, "--cluster", "dgx-h100:2", "--model", model, "--search-s", "0"});
        QVERIFY2(g.code == 0 && g.out.contains("accepts it") && g.out.contains("Partita predicts"), qPrintable(g.out + g.err));
        QFile f(file);
        QVERIFY(f.open(QIODevice::ReadOnly));
        QString text = QString::fromUtf8(f.readAll());
        f.close();
        QVERIFY2(text.contains(from), qPrintable(text));
        QVERIFY(f.open(QIODevice::WriteOnly | QIODevice::Truncate));
        f.write(text.replace(from, to).toUtf8());
        f.close();
        const Run b = cli({"lint-config", file, "--cluster", "dgx-h100:2", "--model", model, "--search-s", "0"});
        QCOMPARE(b.code, 1);
        QVERIFY2(b.out.contains(finding), qPrintable(b.out));
    }

    void searchJson()
    {
        const QString out = m_tmp.filePath("best.json");
        const Run r = cli({"search", "--model", data("hf/gpt2.json"), "--cluster", "g4dn.12xlarge:2", "--global-batch",
                           "32", "--max-evals", "80", "--budget-s", "30", "--json", "--out", out});
        QVERIFY2(r.code == 0, qPrintable(r.err));
        const QJsonObject j = QJsonDocument::fromJson(r.out.toUtf8()).object();
        for (const char* key : {"best", "top", "baselines", "evaluated", "elapsed_s"})
            QVERIFY2(j.contains(key), key);
        QVERIFY(j["best"].toObject().contains("step_time_s"));
        QVERIFY(j["best"].toObject().contains("strategy"));
        for (const auto& b : j["baselines"].toArray())
            QVERIFY(b.toObject().contains("name") && b.toObject().contains("step_time_s"));
        // The written strategy simulates to the reported step time.
        const Run s = cli({"simulate", "--model", data("hf/gpt2.json"), "--cluster", "g4dn.12xlarge:2", "--strategy", out, "--json"});
        QVERIFY2(s.code == 0, qPrintable(s.err));
        QCOMPARE(QJsonDocument::fromJson(s.out.toUtf8()).object()["step_time_s"].toDouble(),
                 j["best"].toObject()["step_time_s"].toDouble());
    }

    // trace import -> runs list -> stats -> diff -> export -> import, all as
    // JSON, on PyTorch traces recorded on this CPU (one process; DDP, 2 ranks).
    void traceCommands()
    {
        PARTITA_REQUIRE_TORCH_TRACES();
        const QString traces = partita::test::torchTraces();
        const QString project = m_tmp.filePath("trace.partita");
        const Run a = cli({"trace", "import", traces + "/one/traces/rank0.json", "--project", project, "--json"});
        QVERIFY2(a.code == 0, qPrintable(a.err));
        const QJsonObject ia = QJsonDocument::fromJson(a.out.toUtf8()).object();
        const QJsonObject facts = partita::test::torchFacts("one", 0);
        // Every event of the legacy export: operators, and its record_function ranges as annotations.
        QCOMPARE(ia["counts"].toObject()["cpu_op"].toInt() + ia["counts"].toObject()["annotation"].toInt(),
                 facts["complete_events_by_cat"].toObject()[""].toInt());
        QVERIFY(ia["counts"].toObject()["annotation"].toInt() > 0); // the optimizer's steps at least
        const int runA = ia["run_id"].toInt();
        const Run b = cli({"trace", "import", traces + "/two/traces", "--project", project, "--name", "DDP", "--json"});
        QVERIFY2(b.code == 0, qPrintable(b.err));
        const int runB = QJsonDocument::fromJson(b.out.toUtf8()).object()["run_id"].toInt();

        const Run list = cli({"runs", "list", "--project", project, "--json"});
        QCOMPARE(list.code, 0);
        const QJsonArray runs = QJsonDocument::fromJson(list.out.toUtf8()).array();
        QCOMPARE(runs.size(), 2);
        QCOMPARE(runs[1].toObject()["name"].toString(), QString("DDP"));
        QCOMPARE(runs[1].toObject()["status"].toString(), QString("complete"));
        QVERIFY(cli({"runs", "list", "--project", project}).out.contains("DDP"));

        const Run stats = cli({"trace", "stats", "--project", project, "--run", QString::number(runB), "--json"});
        QVERIFY2(stats.code == 0, qPrintable(stats.err));
        const QJsonArray ranks = QJsonDocument::fromJson(stats.out.toUtf8()).object()["ranks"].toArray();
        QCOMPARE(ranks.size(), 2);
        QCOMPARE(ranks[1].toObject()["rank"].toInt(), 1);

        const Run diff = cli({"trace", "diff", "--project", project, "--run", QString::number(runA), "--run",
                              QString::number(runB), "--scope", "cpu", "--json"});
        QVERIFY2(diff.code == 0, qPrintable(diff.err));
        QStringList added;
        for (const auto& v : QJsonDocument::fromJson(diff.out.toUtf8()).object()["ops"].toArray())
            if (v.toObject()["change"].toString() == "added")
                added << v.toObject()["name"].toString();
        QVERIFY2(added.contains("gloo:all_reduce"), qPrintable(added.join(", ")));

        const QString out = m_tmp.filePath("export.json");
        const Run ex = cli({"trace", "export", "--project", project, "--run", QString::number(runA), "--format", "chrome", out});
        QVERIFY2(ex.code == 0, qPrintable(ex.err));
        const Run again = cli({"trace", "import", out, "--project", project, "--json"});
        QVERIFY2(again.code == 0, qPrintable(again.err));
        QCOMPARE(QJsonDocument::fromJson(again.out.toUtf8()).object()["events"].toInt(), ia["events"].toInt());
    }

    // `partita-cli completion bash` under bash-completion, as an interactive
    // shell runs it: what TAB offers after the words typed.
    void bashCompletion_data()
    {
        QTest::addColumn<QString>("line");
        QTest::addColumn<QString>("offered");
        QTest::newRow("subcommand") << "partita-cli tr" << "trace";
        QTest::newRow("nested subcommands") << "partita-cli trace " << "import export stats diff stragglers critical-path memory heatmap events --help -h";
        QTest::newRow("option name") << "partita-cli simulate --rec" << "--recompute";
        QTest::newRow("option's allowed values") << "partita-cli simulate --recompute " << "none selective full";
        QTest::newRow("nested option values") << "partita-cli trace diff --scope g" << "gpu";
        QTest::newRow("shell") << "partita-cli completion " << "bash";
    }
    void bashCompletion()
    {
        QFETCH(QString, line);
        QFETCH(QString, offered);
        const QString setup = "/usr/share/bash-completion/bash_completion";
        QVERIFY2(QFile::exists(setup), "bash-completion is not installed (packaging/install-deps.sh installs it)");
        const Run script = cli({"completion", "bash"});
        QCOMPARE(script.code, 0);
        const QString path = write("completion.bash", script.out.toUtf8());
        const QString probe = QString(R"(source %1; source %2
read -ra COMP_WORDS <<< "$LINE"; [[ $LINE == *" " ]] && COMP_WORDS+=("")
COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 )); COMP_LINE=$LINE; COMP_POINT=${#LINE}
_partita_cli; echo "${COMPREPLY[*]}")").arg(setup, path);
        QProcess bash;
        QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
        env.insert("LINE", line);
        bash.setProcessEnvironment(env);
        bash.start("bash", {"-c", probe});
        QVERIFY(bash.waitForFinished(30000));
        QCOMPARE(QString::fromUtf8(bash.readAllStandardOutput()).trimmed(), offered);
    }

    void traceErrors_data()
    {
        QTest::addColumn<QStringList>("args");
        QTest::addColumn<QString>("err");
        QTest::newRow("missing trace") << QStringList{"trace", "import", "/nonexistent/t.json"} << "/nonexistent/t.json: no such file";
        QTest::newRow("unknown run") << QStringList{"trace", "stats", "--run", "99"} << "run 99: no such run";
        QTest::newRow("diff needs two") << QStringList{"trace", "diff", "--run", "1"} << "two --run";
        QTest::newRow("bad format") << QStringList{"trace", "export", "--run", "1", "--format", "svg", "x"} << "svg";
        QTest::newRow("project is not a database") << QStringList{"runs", "list"} << "not a database";
    }
    void traceErrors()
    {
        QFETCH(QStringList, args);
        QFETCH(QString, err);
        QString project = m_tmp.filePath("errors.partita");
        if (QString(QTest::currentDataTag()) == "project is not a database")
            project = write("text.partita", "just text, not SQLite at all, long enough to have a header");
        const Run r = cli(args + QStringList{"--project", project});
        QCOMPARE(r.code, 2);
        QVERIFY2(r.err.contains(err), qPrintable(r.err));
    }

    // A plan from simulate runs on partita-worker (one CPU rank); its trace
    // goes into a project like any other.
    void workerRunsAPlan()
    {
        const QString model = write("tiny-gpt2.json", R"({"model_type": "gpt2", "n_embd": 64, "n_head": 4, "n_layer": 2,
                                                         "n_positions": 64, "vocab_size": 512})");
        const QString cluster = write("one-device.json", R"({"partita_cluster": 1, "name": "one device",
                                                              "nodes": [{"devices": [{"preset": "a100-sxm4-80gb"}]}]})");
        const QString plan = m_tmp.filePath("tiny-plan.json");
        const Run sim = cli({"simulate", "--model", model, "--cluster", cluster, "--preset", "ddp", "--global-batch", "2",
                             "--seq-len", "64", "--plan-out", plan});
        QVERIFY2(sim.code == 0, qPrintable(sim.err));
        const QString out = m_tmp.filePath("worker-out");
        QProcess w;
        w.start(QStringLiteral(PARTITA_WORKER), {"--plan", plan, "--out", out, "--steps", "2", "--warmup", "1"});
        QVERIFY(w.waitForFinished(120000));
        const QString stdoutText = QString::fromUtf8(w.readAllStandardOutput());
        QVERIFY2(w.exitCode() == 0, qPrintable(QString::fromUtf8(w.readAllStandardError())));
        QVERIFY2(stdoutText.contains("rank 0 step 2/2"), qPrintable(stdoutText));
        QFile mf(out + "/rank-0.manifest.json");
        QVERIFY(mf.open(QIODevice::ReadOnly));
        const QJsonObject manifest = QJsonDocument::fromJson(mf.readAll()).object();
        QCOMPARE(manifest["step_s"].toArray().size(), 2);
        QCOMPARE(manifest["shape_scale"].toDouble(), 1.0);
        const Run imp = cli({"trace", "import", out + "/rank-0.trace.json", "--project", m_tmp.filePath("worker.partita"), "--json"});
        QVERIFY2(imp.code == 0, qPrintable(imp.err));
        QCOMPARE(QJsonDocument::fromJson(imp.out.toUtf8()).object()["counts"].toObject()["step"].toInt(), 2);

        QProcess bad;
        bad.start(QStringLiteral(PARTITA_WORKER), {"--plan", m_tmp.filePath("missing-plan.json"), "--out", out});
        QVERIFY(bad.waitForFinished(30000));
        QCOMPARE(bad.exitCode(), 2);
        QVERIFY(QString::fromUtf8(bad.readAllStandardError()).contains("missing-plan.json"));
    }

    // A measured run on this machine's CPU (2 ranks through mpirun), compared
    // with its prediction; calibrated from it; the calibration read back by
    // simulate and search.
    void runAndCalibrate()
    {
        const QString model = write("run-gpt2.json", R"({"model_type": "gpt2", "n_embd": 64, "n_head": 4, "n_layer": 2,
                                                        "n_positions": 64, "vocab_size": 512})");
        const QString project = m_tmp.filePath("run.partita");
        Run r = cli({"run", "--model", model, "--cluster", "local", "--ranks", "2", "--preset", "ddp", "--global-batch", "4",
                     "--seq-len", "64", "--steps", "2", "--warmup", "1", "--project", project, "--json"});
        QVERIFY2(r.code == 0, qPrintable(r.err));
        QVERIFY2(r.err.contains("rank 1 step 2/2"), qPrintable(r.err)); // progress goes to stderr with --json
        // This CPU's own calibration, measured once and cached, said so.
        QVERIFY2(r.err.contains("calibration: this machine's, measured now and cached in " + m_tmp.filePath("cache")),
                 qPrintable(r.err));
        const QJsonObject j = QJsonDocument::fromJson(r.out.toUtf8()).object();
        QVERIFY2(j["calibration"].toString().contains("measured on this machine"), qPrintable(r.out));
        const int runId = j["run_id"].toInt();
        QVERIFY(runId > 0);
        QCOMPARE(j["ranks"].toInt(), 2);
        QVERIFY(j["complete"].toBool());
        QVERIFY(j["measured_step_time_s"].toDouble() > 0);
        QVERIFY(j["predicted_step_time_s"].toDouble() > 0);
        const QJsonArray layers = j["layers"].toArray();
        QVERIFY(layers.size() > 5);
        int measuredLayers = 0;
        for (const auto& l : layers)
            measuredLayers += l.toObject()["measured_s"].toDouble() > 0;
        QVERIFY(measuredLayers > 5);
        // What the CPU backend did not run as the plan says, in the output, the run and its diff.
        const QJsonArray notPlanned = j["not_as_planned"].toArray();
        QVERIFY2(notPlanned.size() == 2 && notPlanned[0].toString().startsWith("bf16 GEMMs run as fp32") &&
                     notPlanned[1].toString().contains("MPI_Allreduce picks its own"),
                 qPrintable(r.out));
        QCOMPARE(j["shape_scale"].toDouble(), 1.0);
        r = cli({"trace", "diff", "--run", QString::number(j["predicted_run_id"].toInt()), "--run", QString::number(runId),
                 "--project", project});
        QVERIFY2(r.out.contains("B did not run as planned: bf16 GEMMs run as fp32"), qPrintable(r.out));
        // At half the shapes the run is predicted at half the shapes: faster than the full plan's prediction.
        Run half = cli({"run", "--model", model, "--cluster", "local", "--ranks", "2", "--preset", "ddp", "--global-batch", "4",
                        "--seq-len", "64", "--steps", "2", "--warmup", "1", "--shape-scale", "0.5", "--project", project, "--json"});
        QVERIFY2(half.code == 0, qPrintable(half.err));
        const QJsonObject h = QJsonDocument::fromJson(half.out.toUtf8()).object();
        QCOMPARE(h["shape_scale"].toDouble(), 0.5);
        QVERIFY2(h["predicted_step_time_s"].toDouble() < 0.8 * j["predicted_step_time_s"].toDouble(), qPrintable(half.out));
        r = cli({"runs", "list", "--project", project, "--json"});
        QVERIFY(r.out.contains("\"measured\""));
        QVERIFY2(r.out.contains("\"predicted_shape_scale\": 0.5"), qPrintable(r.out));
        // calibrate --local measures again into the same cache, and --out.
        const QString local = m_tmp.filePath("local.json");
        r = cli({"calibrate", "--local", "--out", local, "--json"});
        QVERIFY2(r.code == 0, qPrintable(r.err));
        const QJsonObject lc = QJsonDocument::fromJson(r.out.toUtf8()).object();
        QVERIFY(lc["cache"].toString().startsWith(m_tmp.filePath("cache")));
        QVERIFY(QFile::exists(lc["cache"].toString()));
        QVERIFY(QFile::exists(local));

        const QString cal = m_tmp.filePath("cal.json");
        r = cli({"calibrate", "--project", project, "--run", QString::number(runId), "--out", cal, "--json"});
        QVERIFY2(r.code == 0, qPrintable(r.err));
        const QJsonObject c = QJsonDocument::fromJson(r.out.toUtf8()).object();
        QVERIFY(c["gemm_ops"].toInt() > 0);
        QVERIFY(c["memory_ops"].toInt() > 0);
        QVERIFY(c["collectives"].toInt() > 0);
        QVERIFY(c["calibration"].toObject()["source"].toString().contains("fitted to measured run"));
        const QString cluster = write("four-a100.json", R"({"partita_cluster": 1, "name": "four", "nodes": [{"devices": [
            {"preset": "a100-sxm4-80gb"}, {"preset": "a100-sxm4-80gb"}], "intra": {"kind": "nvswitch", "bandwidth": "300 GB/s"}}]})");
        r = cli({"simulate", "--model", model, "--cluster", cluster, "--preset", "ddp", "--seq-len", "64", "--calibration", cal, "--json"});
        QVERIFY2(r.code == 0, qPrintable(r.err));
        QVERIFY(QJsonDocument::fromJson(r.out.toUtf8()).object()["calibration_source"].toString().contains("fitted"));
        r = cli({"search", "--model", model, "--cluster", cluster, "--seq-len", "64", "--calibration", cal, "--max-evals", "20", "--json"});
        QVERIFY2(r.code == 0, qPrintable(r.err));
    }

    void runRefusals_data()
    {
        QTest::addColumn<QStringList>("args");
        QTest::addColumn<QString>("err");
        QTest::newRow("cuda without a GPU") << QStringList{"run", "--backend", "cuda"} << "GPU";
        QTest::newRow("ssh without hosts") << QStringList{"run", "--launcher", "ssh"} << "needs --hosts";
        QTest::newRow("missing hostfile") << QStringList{"run", "--launcher", "ssh", "--hosts", "/nonexistent/hosts"}
                                          << "/nonexistent/hosts";
        QTest::newRow("unchecked host keys") << QStringList{"run", "--launcher", "ssh", "--hosts", "HOSTS", "--ssh-option",
                                                            "StrictHostKeyChecking=no"}
                                             << "host keys are always verified";
        QTest::newRow("calibrate a prediction") << QStringList{"calibrate", "--run", "1"} << "not a measured run";
    }
    void runRefusals()
    {
        QFETCH(QStringList, args);
        QFETCH(QString, err);
        const QString model = write("refuse-gpt2.json", R"({"model_type": "gpt2", "n_embd": 64, "n_head": 4, "n_layer": 2,
                                                          "n_positions": 64, "vocab_size": 512})");
        const QString hosts = write("hosts", "partita-node slots=2\n");
        const QString project = m_tmp.filePath("refusals.partita");
        args.replaceInStrings("HOSTS", hosts);
        if (args.first() == "run")
            args << "--model" << model << "--cluster" << "local" << "--ranks" << "2" << "--preset" << "ddp" << "--project"
                 << project;
        else
            QCOMPARE(cli({"simulate", "--model", model, "--cluster", "dgx-a100-80gb", "--preset", "ddp", "--project", project}).code, 0);
        if (args.first() == "calibrate")
            args << "--project" << project;
        const Run r = cli(args);
        QCOMPARE(r.code, 2);
        QVERIFY2(r.err.contains(err), qPrintable(r.err));
    }

    void convertRoundTrips()
    {
        const QString out = m_tmp.filePath("gpt2.partita.json");
        Run r = cli({"convert", data("hf/gpt2.json"), "-o", out});
        QCOMPARE(r.code, 0);
        r = cli({"inspect", out, "--json"});
        QCOMPARE(r.code, 0);
        QCOMPARE(QJsonDocument::fromJson(r.out.toUtf8()).object()["parameters"].toInteger(), 124439808LL);
        const QString cout = m_tmp.filePath("demo-cluster.json");
        QCOMPARE(cli({"convert", PARTITA_SOURCE_DIR "/resources/demo/cluster.json", "-o", cout}).code, 0);
        r = cli({"inspect", cout, "--json"});
        QCOMPARE(r.code, 0);
        QCOMPARE(QJsonDocument::fromJson(r.out.toUtf8()).object()["devices"].toArray().size(), 16);
    }
};

class TestCliThirdParty : public QObject
{
    Q_OBJECT
private slots:
    // The trace commands on HTA's traces, with HTA's asserted facts, and an nsys export
    // (runs list and the rest of the round are the own part's traceCommands).
    void traceCommands()
    {
        PARTITA_REQUIRE_THIRD_PARTY("traces/trace_compare-base-base.json.gz");
        PARTITA_REQUIRE_THIRD_PARTY("nsys/saxpy-mpi-cuda_nsys_perlmutter0.sqlite");
        QTemporaryDir tmp;
        const QString project = tmp.filePath("trace.partita");
        const Run a = cli({"trace", "import", partita::test::thirdParty("traces/trace_compare-base-base.json.gz"), "--project", project, "--json"});
        QVERIFY2(a.code == 0, qPrintable(a.err));
        const QJsonObject ia = QJsonDocument::fromJson(a.out.toUtf8()).object();
        QCOMPARE(ia["counts"].toObject()["cpu_op"].toInt(), 6);
        const int runA = ia["run_id"].toInt();
        const Run b = cli({"trace", "import", partita::test::thirdParty("traces/trace_compare-test-test.json.gz"), "--project", project,
                           "--name", "test side", "--json"});
        QVERIFY2(b.code == 0, qPrintable(b.err));
        const int runB = QJsonDocument::fromJson(b.out.toUtf8()).object()["run_id"].toInt();

        const Run stats = cli({"trace", "stats", "--project", project, "--run", QString::number(runA), "--json"});
        QVERIFY2(stats.code == 0, qPrintable(stats.err));
        const QJsonObject st = QJsonDocument::fromJson(stats.out.toUtf8()).object();
        const QJsonObject tb = st["temporal_breakdown"].toObject();
        QCOMPARE(tb["compute_pct"].toDouble(), 100.0);
        QCOMPARE(tb["idle_pct"].toDouble(), 0.0);
        QVERIFY(st["comm_comp_overlap_pct"].isNull());
        QCOMPARE(st["ranks"].toArray()[0].toObject()["rank"].toInt(), 1);

        const Run diff = cli({"trace", "diff", "--project", project, "--run", QString::number(runA), "--run",
                              QString::number(runB), "--scope", "cpu", "--iteration", "1010", "--json"});
        QVERIFY2(diff.code == 0, qPrintable(diff.err));
        QStringList added;
        for (const auto& v : QJsonDocument::fromJson(diff.out.toUtf8()).object()["ops"].toArray())
            if (v.toObject()["change"].toString() == "added")
                added << v.toObject()["name"].toString();
        QCOMPARE(added, (QStringList{"AddmmBackward0", "All2All_Pooled_Req", "CatBackward0"}));

        const QString out = tmp.filePath("export.json");
        const Run ex = cli({"trace", "export", "--project", project, "--run", QString::number(runB), "--format", "chrome", out});
        QVERIFY2(ex.code == 0, qPrintable(ex.err));
        QFile f(out);
        QVERIFY(f.open(QIODevice::ReadOnly));
        const QJsonObject chrome = QJsonDocument::fromJson(f.readAll()).object();
        QCOMPARE(chrome["distributedInfo"].toObject()["rank"].toInt(), 1);
        QVERIFY(chrome["traceEvents"].toArray().size() > 34);
        const Run again = cli({"trace", "import", out, "--project", project, "--json"});
        QVERIFY2(again.code == 0, qPrintable(again.err));
        QCOMPARE(QJsonDocument::fromJson(again.out.toUtf8()).object()["events"].toInt(), 34);

        const Run nsys = cli({"trace", "import", partita::test::thirdParty("nsys/saxpy-mpi-cuda_nsys_perlmutter0.sqlite"), "--project", project, "--json"});
        QVERIFY2(nsys.code == 0, qPrintable(nsys.err));
        QCOMPARE(QJsonDocument::fromJson(nsys.out.toUtf8()).object()["counts"].toObject()["kernel"].toInt(), 5);
    }
};

PARTITA_TEST_SPLIT_GUILESS_MAIN(TestCli, TestCliThirdParty, "--third-party")
#include "tst_cli.moc"
