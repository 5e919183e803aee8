// core/tracedcommand: the command one rank runs with Partita's trace module
// put in front of its script, and what is refused (with why).
#include "partita/core/tracedcommand.h"

#include <QTest>

using namespace partita;

class TestTracedCommand : public QObject
{
    Q_OBJECT
private slots:
    void rewrites_data()
    {
        QTest::addColumn<QString>("command");
        QTest::addColumn<QStringList>("argv");
        const QStringList mod{"M.py", "--out", "D", "--schedule", "1,2,3"};
        QTest::newRow("script") << "python3 train.py --lr 3e-4" << (QStringList{"python3"} + mod + QStringList{"--", "train.py", "--lr", "3e-4"});
        QTest::newRow("interpreter path and options")
            << "/usr/bin/python3 -u -X dev train.py" << (QStringList{"/usr/bin/python3", "-u", "-X", "dev"} + mod + QStringList{"--", "train.py"});
        QTest::newRow("module") << "python3.11 -m trainer.main --cfg a.yaml"
                                << (QStringList{"python3.11"} + mod + QStringList{"-m", "trainer.main", "--cfg", "a.yaml"});
        QTest::newRow("environment first") << "NCCL_DEBUG=INFO python train.py"
                                           << (QStringList{"env", "NCCL_DEBUG=INFO", "python"} + mod + QStringList{"--", "train.py"});
        QTest::newRow("quoted words") << "python3 'my train.py' --name \"a b\""
                                      << (QStringList{"python3"} + mod + QStringList{"--", "my train.py", "--name", "a b"});
    }
    void rewrites()
    {
        QFETCH(QString, command);
        QFETCH(QStringList, argv);
        auto r = tracedCommand(command.toStdString(), "M.py", "D", ProfileSchedule{1, 2, 3});
        QVERIFY2(r, r ? "" : r.error().str().c_str());
        QStringList got;
        for (const std::string& w : *r)
            got << QString::fromStdString(w);
        QCOMPARE(got, argv);
    }

    // A torchrun line: run once per node, the module in front of the script
    // through torchrun's --no_python (every version's spelling).
    void torchrunLines_data()
    {
        QTest::addColumn<QString>("command");
        QTest::addColumn<QStringList>("argv"); // empty: refused
        QTest::addColumn<int>("perNode");      // torchrun's ranks per node (0: it decides); -1: not a torchrun line
        const QStringList mod{"--no_python", "python3", "M.py", "--out", "D", "--schedule", "1,2,3"};
        QTest::newRow("torchrun") << "torchrun --nproc_per_node 4 train.py --lr 1"
                                  << (QStringList{"torchrun", "--nproc_per_node", "4"} + mod + QStringList{"--", "train.py", "--lr", "1"})
                                  << 4;
        QTest::newRow("python -m torch.distributed.run, its options kept")
            << "/usr/bin/python3 -u -m torch.distributed.run --redirects 1 --tee=1 --nproc-per-node=2 --standalone t.py"
            << (QStringList{"/usr/bin/python3", "-u", "-m", "torch.distributed.run", "--redirects", "1", "--tee=1",
                            "--nproc-per-node=2", "--standalone", "--no_python", "/usr/bin/python3", "M.py", "--out", "D",
                            "--schedule", "1,2,3", "--", "t.py"})
            << 2;
        QTest::newRow("ranks per node decided by torchrun") << "torchrun --nproc_per_node=gpu t.py"
                                                            << (QStringList{"torchrun", "--nproc_per_node=gpu"} + mod + QStringList{"--", "t.py"})
                                                            << 0;
        QTest::newRow("a module") << "torchrun --nnodes 2 -m pkg.train --x"
                                  << (QStringList{"torchrun", "--nnodes", "2"} + mod + QStringList{"-m", "pkg.train", "--x"}) << 1;
        QTest::newRow("environment first") << "NCCL_DEBUG=INFO torchrun t.py"
                                           << (QStringList{"env", "NCCL_DEBUG=INFO", "torchrun"} + mod + QStringList{"--", "t.py"}) << 1;
        QTest::newRow("a rank's command is no torchrun line")
            << "python3 t.py" << (QStringList{"python3", "M.py", "--out", "D", "--schedule", "1,2,3", "--", "t.py"}) << -1;
        QTest::newRow("torchrun's own --no_python") << "torchrun --no_python ./a.out" << QStringList{} << 0;
        QTest::newRow("no script") << "torchrun --nproc_per_node 2" << QStringList{} << 0;
    }
    void torchrunLines()
    {
        QFETCH(QString, command);
        QFETCH(QStringList, argv);
        QFETCH(int, perNode);
        auto r = tracedLaunch(command.toStdString(), "M.py", "D", ProfileSchedule{1, 2, 3});
        if (argv.isEmpty()) {
            QVERIFY(!r);
            QVERIFY2(r.error().str().find("--command") == 0, r.error().str().c_str());
            return;
        }
        QVERIFY2(r, r ? "" : r.error().str().c_str());
        QStringList got;
        for (const std::string& w : r->argv)
            got << QString::fromStdString(w);
        QCOMPARE(got, argv);
        QCOMPARE(r->per_node, perNode >= 0);
        QCOMPARE(r->procs_per_node, perNode >= 0 ? perNode : 1);
    }

    void refuses_data()
    {
        QTest::addColumn<QString>("command");
        QTest::addColumn<QString>("message");
        QTest::newRow("empty") << "" << "no command given";
        QTest::newRow("only variables") << "A=1 B=2" << "no command given";
        QTest::newRow("a pipe") << "python3 train.py | tee log" << "without pipes";
        QTest::newRow("two commands") << "cd x; python3 train.py" << "one command";
        QTest::newRow("torchrun (once per node: tracedLaunch)") << "torchrun --nproc_per_node 8 train.py"
                                                                << "runs once per node";
        QTest::newRow("deepspeed") << "/opt/bin/deepspeed train.py" << "deepspeed starts ranks itself";
        QTest::newRow("srun") << "srun python3 train.py" << "srun starts ranks itself";
        QTest::newRow("not Python") << "./train.sh" << "'./train.sh' is not Python";
        QTest::newRow("-c") << "python3 -c 'print(1)'" << "python3 -c runs no training script";
        QTest::newRow("no script") << "python3 -u" << "no training script";
        QTest::newRow("-m without module") << "python3 -m" << "-m needs a module";
    }
    void refuses()
    {
        QFETCH(QString, command);
        QFETCH(QString, message);
        auto r = tracedCommand(command.toStdString(), "M.py", "D", ProfileSchedule{});
        QVERIFY(!r);
        const QString err = QString::fromStdString(r.error().str());
        QVERIFY2(err.contains(message), qPrintable(err));
        QVERIFY2(err.startsWith("--command"), qPrintable(err));
    }

    void configs_data()
    {
        QTest::addColumn<QString>("command");
        QTest::addColumn<QString>("framework"); // empty: none
        QTest::addColumn<QString>("file");
        QTest::newRow("DeepSpeed's flag") << "python3 train.py --deepspeed --deepspeed_config ds.json" << "deepspeed" << "ds.json";
        QTest::newRow("DeepSpeed's flag with =") << "python3 train.py --deepspeed-config=conf/ds.json" << "deepspeed"
                                                 << "conf/ds.json";
        QTest::newRow("Megatron flags") << "python3 pretrain_gpt.py --tensor-model-parallel-size 2 --num-layers 24"
                                        << "megatron" << "";
        QTest::newRow("Megatron with =") << "python3 pretrain_gpt.py --num-layers=24" << "megatron" << "";
        QTest::newRow("nothing said") << "python3 train.py --lr 3e-4" << "" << "";
        QTest::newRow("a flag without its file") << "python3 train.py --deepspeed_config" << "" << "";
    }
    void configs()
    {
        QFETCH(QString, command);
        QFETCH(QString, framework);
        QFETCH(QString, file);
        const auto c = configInCommand(command.toStdString());
        QCOMPARE(c.has_value(), !framework.isEmpty());
        if (c) {
            QCOMPARE(QString::fromStdString(c->framework), framework);
            QCOMPARE(QString::fromStdString(c->file), file);
        }
    }

    void schedules_data()
    {
        QTest::addColumn<QString>("text");
        QTest::addColumn<int>("active"); // 0: refused
        QTest::newRow("default") << "1,1,3" << 3;
        QTest::newRow("spaces") << " 0 , 2 , 5 " << 5;
        QTest::newRow("nothing recorded") << "1,1,0" << 0;
        QTest::newRow("two numbers") << "1,3" << 0;
        QTest::newRow("negative") << "-1,1,3" << 0;
        QTest::newRow("words") << "a,b,c" << 0;
    }
    void schedules()
    {
        QFETCH(QString, text);
        QFETCH(int, active);
        auto s = parseProfileSchedule(text.toStdString());
        QCOMPARE(bool(s), active > 0);
        if (s)
            QCOMPARE(s->active, active);
        else
            QVERIFY(s.error().str().find("--profile-steps") == 0);
    }
};

QTEST_APPLESS_MAIN(TestTracedCommand)
#include "tst_tracedcommand.moc"
