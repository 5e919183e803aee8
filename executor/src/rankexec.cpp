#include "partita/executor/rankexec.h"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fcntl.h>
#include <iostream>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace partita {

namespace {

int envInt(const char* name, int fallback)
{
    const char* v = std::getenv(name);
    if (!v || !*v)
        return fallback;
    char* end = nullptr;
    const long n = std::strtol(v, &end, 10);
    return end != v && n >= 0 && n < (1 << 24) ? int(n) : fallback;
}

std::string hostName()
{
    char host[256] = {};
    gethostname(host, sizeof host - 1);
    return host;
}

volatile sig_atomic_t g_child = 0;
volatile sig_atomic_t g_stopped = 0;
void forward(int sig)
{
    g_stopped = sig;
    if (g_child > 0)
        kill(pid_t(g_child), sig);
}

// The line of a failing command's standard error that says why: the last
// one that is not Partita's progress or blank (Python's exception line).
std::string lastWords(const std::deque<std::string>& lines)
{
    for (auto it = lines.rbegin(); it != lines.rend(); ++it) {
        std::string l = *it;
        while (!l.empty() && (l.back() == '\r' || l.back() == ' '))
            l.pop_back();
        if (l.empty() || l.rfind("rank ", 0) == 0)
            continue;
        return l.size() > 400 ? l.substr(0, 400) + "…" : l;
    }
    return {};
}

} // namespace

RankEnvironment rankEnvironment()
{
    RankEnvironment e;
    if (std::getenv("OMPI_COMM_WORLD_RANK")) {
        e.launcher = "mpirun";
        e.rank = envInt("OMPI_COMM_WORLD_RANK", 0);
        e.world = envInt("OMPI_COMM_WORLD_SIZE", 1);
        e.local_rank = envInt("OMPI_COMM_WORLD_LOCAL_RANK", 0);
        e.local_world = envInt("OMPI_COMM_WORLD_LOCAL_SIZE", 1);
    } else if (std::getenv("SLURM_PROCID")) {
        e.launcher = "srun";
        e.rank = envInt("SLURM_PROCID", 0);
        e.world = envInt("SLURM_NTASKS", envInt("SLURM_NPROCS", 1));
        e.local_rank = envInt("SLURM_LOCALID", 0);
        // SLURM_STEP_TASKS_PER_NODE reads "2" or "2(x3),1": the first count is this layout's common case.
        e.local_world = envInt("SLURM_STEP_TASKS_PER_NODE", envInt("SLURM_NTASKS_PER_NODE", 1));
    } else {
        e.launcher = "none";
    }
    return e;
}

namespace {

// torchrun's contract for a script, or for a torchrun line its own flags' defaults.
void setRankEnvironment(const RankExecOptions& o, const RankEnvironment& env)
{
    if (o.per_node) { // torchrun reads its flags' defaults from PET_*
        setenv("PET_NNODES", std::to_string(env.world).c_str(), 1);
        setenv("PET_NODE_RANK", std::to_string(env.rank).c_str(), 1);
        setenv("PET_MASTER_ADDR", o.master_addr.c_str(), 1);
        setenv("PET_MASTER_PORT", std::to_string(o.master_port).c_str(), 1);
        return;
    }
    setenv("RANK", std::to_string(env.rank).c_str(), 1);
    setenv("LOCAL_RANK", std::to_string(env.local_rank).c_str(), 1);
    setenv("WORLD_SIZE", std::to_string(env.world).c_str(), 1);
    setenv("LOCAL_WORLD_SIZE", std::to_string(env.local_world).c_str(), 1);
    setenv("MASTER_ADDR", o.master_addr.c_str(), 1);
    setenv("MASTER_PORT", std::to_string(o.master_port).c_str(), 1);
    if (env.local_world > 1)
        setenv("OMP_NUM_THREADS", "1", 0); // torchrun's default when ranks share a host
}

// The child: standard error into `errFd`, the command exec'd; its errno
// written to `execFd` when it cannot be (the pipe closes on exec).
[[noreturn]] void execChild(const std::vector<std::string>& command, pid_t parent, int errFd, int execFd)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL); // the command dies with its rank
    if (getppid() != parent)
        _exit(137);
    dup2(errFd, 2);
    close(errFd);
    std::vector<std::string> args = command;
    std::vector<char*> argv;
    for (std::string& a : args)
        argv.push_back(a.data());
    argv.push_back(nullptr);
    execvp(argv[0], argv.data());
    const int e = errno;
    [[maybe_unused]] auto n = write(execFd, &e, sizeof e);
    _exit(127);
}

// The command's standard error passed through to ours; its last lines kept.
// One line to fd in one write(): ranks' workers share the launcher's
// pipes, and a line written piece by piece (iostreams to an unbuffered
// stderr) was cut by another rank's output in between, so the launcher
// could not read which rank failed.
void sayError(const std::string& who, const std::string& what) { writeLine(2, "partita-worker: error: " + who + ": " + what); }

std::deque<std::string> relayErrors(int fd)
{
    std::deque<std::string> tail;
    std::string partial;
    char buf[8192];
    for (;;) {
        const ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        [[maybe_unused]] auto w = write(2, buf, size_t(n));
        partial.append(buf, size_t(n));
        for (size_t nl; (nl = partial.find('\n')) != std::string::npos; partial.erase(0, nl + 1)) {
            tail.push_back(partial.substr(0, nl));
            if (tail.size() > 40)
                tail.pop_front();
        }
    }
    if (!partial.empty())
        tail.push_back(partial);
    return tail;
}

} // namespace

void writeLine(int fd, const std::string& text)
{
    const std::string line = text + "\n";
    size_t done = 0;
    while (done < line.size()) {
        const ssize_t n = write(fd, line.data() + done, line.size() - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        done += size_t(n);
    }
}

int execTrainingRank(const RankExecOptions& o)
{
    const RankEnvironment env = rankEnvironment();
    const std::string host = hostName();
    const std::string who = "rank " + std::to_string(env.rank) + " on " + host;
    if (o.command.empty()) {
        sayError(who, "no command to run");
        return 2;
    }
    setRankEnvironment(o, env);
    int errPipe[2], execPipe[2];
    if (pipe(errPipe) != 0 || pipe2(execPipe, O_CLOEXEC) != 0) {
        sayError(who, std::string("pipe: ") + std::strerror(errno));
        return 2;
    }
    const pid_t parent = getpid();
    const pid_t pid = fork();
    if (pid == 0) {
        close(errPipe[0]);
        close(execPipe[0]);
        execChild(o.command, parent, errPipe[1], execPipe[1]);
    }
    close(errPipe[1]);
    close(execPipe[1]);
    if (pid < 0) {
        sayError(who, std::string("fork: ") + std::strerror(errno));
        return 2;
    }
    g_child = pid;
    std::signal(SIGTERM, forward);
    std::signal(SIGINT, forward);
    int execErrno = 0;
    const bool execFailed = read(execPipe[0], &execErrno, sizeof execErrno) == ssize_t(sizeof execErrno);
    close(execPipe[0]);
    if (!execFailed)
        writeLine(1, "rank " + std::to_string(env.rank) + " host " + host + " pid " + std::to_string(getpid()) + " started: " +
                       std::to_string(env.world) + " ranks, " + o.command.front());
    const std::deque<std::string> tail = relayErrors(errPipe[0]);
    close(errPipe[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    g_child = 0;
    if (execFailed) {
        sayError(who, "cannot run " + o.command.front() + ": " + std::strerror(execErrno));
        return 127;
    }
    const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (code == 0) {
        writeLine(1, "rank " + std::to_string(env.rank) + " done: the command exited with code 0");
        return 0;
    }
    std::string cause = WIFEXITED(status) ? "the command exited with code " + std::to_string(code)
                                          : "the command was killed by signal " + std::to_string(WTERMSIG(status)) +
                                                " (" + strsignal(WTERMSIG(status)) + ")";
    if (g_stopped)
        cause += ", stopped by the launcher";
    if (const std::string why = lastWords(tail); !why.empty())
        cause += ": " + why;
    sayError(who, cause);
    return code;
}

} // namespace partita
