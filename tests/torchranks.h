#pragma once
// Ranks of a PyTorch program started as the tests start them: Debian's
// python3 (where python3-torch lives), one process per rank with the
// torch.distributed environment (bookworm's torchrun fails on Python 3.11).

#include <QProcess>
#include <QStringList>

#include <memory>
#include <vector>

namespace partita::test {

inline const char* const kSystemPython = "/usr/bin/python3";

inline bool hasSystemTorch()
{
    QProcess p;
    p.start(kSystemPython, {"-c", "import torch"});
    return p.waitForFinished(60000) && p.exitStatus() == QProcess::NormalExit && p.exitCode() == 0;
}

// `world` processes of `python3 ARGS`, RANK 0..world-1 on one free port;
// returns them finished (or after `timeoutMs`).
inline std::vector<std::unique_ptr<QProcess>> runTorchRanks(int world, const QStringList& args, int timeoutMs = 240000)
{
    QProcess portProc;
    portProc.start(kSystemPython, {"-c", "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); "
                                         "print(s.getsockname()[1])"});
    portProc.waitForFinished(30000);
    const QString port = QString::fromUtf8(portProc.readAllStandardOutput()).trimmed();
    std::vector<std::unique_ptr<QProcess>> procs;
    for (int r = 0; r < world; ++r) {
        procs.push_back(std::make_unique<QProcess>());
        QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
        env.insert("RANK", QString::number(r));
        env.insert("LOCAL_RANK", QString::number(r));
        env.insert("WORLD_SIZE", QString::number(world));
        env.insert("LOCAL_WORLD_SIZE", QString::number(world));
        env.insert("MASTER_ADDR", "127.0.0.1");
        env.insert("MASTER_PORT", port);
        env.insert("OMP_NUM_THREADS", "1");
        procs.back()->setProcessEnvironment(env);
        procs.back()->start(kSystemPython, args);
    }
    for (auto& p : procs)
        p->waitForFinished(timeoutMs);
    return procs;
}

} // namespace partita::test
