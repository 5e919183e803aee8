#pragma once
// Ranks of a PyTorch program started as the tests start them: Debian's
// python3 (where python3-torch lives), one process per rank with the
// torch.distributed environment (bookworm's torchrun fails on Python 3.11).

#include <QProcess>
#include <QStringList>

#include <csignal>

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
        env.insert("PYTHONFAULTHANDLER", "1"); // a rank stopped by rankFailures prints its Python stacks
        procs.back()->setProcessEnvironment(env);
        procs.back()->start(kSystemPython, args);
    }
    for (auto& p : procs)
        p->waitForFinished(timeoutMs);
    return procs;
}

// Empty when every rank exited 0; otherwise, for each rank that did not, how
// it ended (still running, a signal, an exit code) and its standard error.
// A rank still running is stopped with SIGABRT first, so that Python's fault
// handler writes where each of its threads was (unless it hung in the
// interpreter's finalization, where the handler is off).
// Reads the ranks' standard error: call it before reading it elsewhere.
inline QString rankFailures(const std::vector<std::unique_ptr<QProcess>>& procs)
{
    QString out;
    for (size_t r = 0; r < procs.size(); ++r) {
        QProcess& p = *procs[r];
        QString how;
        if (p.state() != QProcess::NotRunning) {
            ::kill(pid_t(p.processId()), SIGABRT);
            p.waitForFinished(10000);
            how = "still running (stopped with SIGABRT)";
        }
        else if (p.exitStatus() == QProcess::CrashExit)
            how = "killed by a signal (" + p.errorString() + ")";
        else if (p.exitCode() != 0)
            how = "exit code " + QString::number(p.exitCode());
        else
            continue;
        out += QString("rank %1: %2; stderr:\n%3\n").arg(r).arg(how, QString::fromUtf8(p.readAllStandardError()));
    }
    return out;
}

} // namespace partita::test
