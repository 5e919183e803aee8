#include "partita/executor/launcher.h"

#include "launchprogress.h"

#include "partita/core/fileio.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <poll.h>
#include <regex>
#include <set>
#include <sys/wait.h>
#include <unistd.h>

namespace partita {

std::string_view launcherName(LauncherKind k)
{
    switch (k) {
    case LauncherKind::Local: return "local";
    case LauncherKind::Ssh: return "ssh";
    case LauncherKind::Slurm: return "slurm";
    }
    return "?";
}

namespace {

std::string shellQuote(const std::string& s)
{
    if (!s.empty() && s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./=:,@+") ==
                          std::string::npos)
        return s;
    std::string q = "'";
    for (char c : s)
        q += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return q + "'";
}

std::vector<std::string> workerArgs(const LaunchSpec& s)
{
    char scale[32];
    std::snprintf(scale, sizeof scale, "%.17g", s.shape_scale);
    std::vector<std::string> a{s.worker,  "--plan",   s.plan,   "--out",         s.out,  "--steps", std::to_string(s.steps),
                               "--warmup", std::to_string(s.warmup), "--shape-scale", scale, "--backend", s.backend};
    if (s.backend == "cuda" && !s.trace_device)
        a.push_back("--no-cupti");
    return a;
}

// ssh options must be spelled so that scp reads them the same way.
Result<bool> checkSshOptions(const std::vector<std::string>& o)
{
    for (size_t i = 0; i < o.size(); ++i) {
        if (o[i] != "-F" && o[i] != "-i" && o[i] != "-o")
            return Error{"ssh options", o[i], "expected -F FILE, -i FILE or -o KEY=VALUE (forms scp reads too)"};
        if (i + 1 >= o.size())
            return Error{"ssh options", o[i], "needs a value"};
        const std::string& v = o[++i];
        std::string lower = v;
        std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return char(std::tolower(c)); });
        if (lower.find("stricthostkeychecking=no") != std::string::npos ||
            lower.find("stricthostkeychecking no") != std::string::npos ||
            lower.find("userknownhostsfile=/dev/null") != std::string::npos)
            return Error{"ssh options", v, "host keys are always verified: add the hosts to known_hosts instead"};
    }
    return true;
}

std::vector<std::string> sshBase(const LaunchSpec& s)
{
    std::vector<std::string> a{"-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes"};
    a.insert(a.end(), s.ssh_options.begin(), s.ssh_options.end());
    return a;
}

// Runs a command to completion (stdin from /dev/null); its exit code.
int runQuiet(std::vector<std::string> cmd, std::string* err = nullptr)
{
    int errPipe[2];
    if (pipe(errPipe) != 0)
        return -1;
    std::vector<char*> argv; // made before the fork (runLaunch says why)
    for (std::string& a : cmd)
        argv.push_back(a.data());
    argv.push_back(nullptr);
    const pid_t pid = fork();
    if (pid == 0) {
        const int devnull = ::open("/dev/null", 0);
        dup2(devnull, 0);
        dup2(errPipe[1], 2);
        close(errPipe[0]);
        execvp(argv[0], argv.data());
        _exit(127);
    }
    close(errPipe[1]);
    std::string text;
    char buf[4096];
    for (ssize_t n; (n = read(errPipe[0], buf, sizeof buf)) > 0;)
        text.append(buf, size_t(n));
    close(errPipe[0]);
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) < 0)
        return -1;
    if (err) {
        while (!text.empty() && (text.back() == '\n' || text.back() == '\r'))
            text.pop_back();
        *err = text;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

} // namespace

std::string hostfileText(const LaunchSpec& spec)
{
    std::string t = "# written by partita-cli run\n";
    for (const HostEntry& h : spec.hosts)
        t += h.host + " slots=" + std::to_string(h.slot_count) + "\n";
    return t;
}

Result<std::vector<std::string>> launchCommand(const LaunchSpec& s)
{
    if (!s.command.empty())
        return launchCommand(s, s.command);
    if (s.worker.empty() || s.plan.empty() || s.out.empty())
        return Error{"launch", "worker", "the worker, the plan and the output folder are required"};
    return launchCommand(s, workerArgs(s));
}

Result<std::vector<std::string>> launchCommand(const LaunchSpec& s, std::vector<std::string> worker)
{
    if (s.ranks < 1)
        return Error{"launch", "ranks", "at least one rank"};
    if (s.kind != LauncherKind::Local) {
        if (s.hosts.empty())
            return Error{"launch", "hosts", std::string("the ") + std::string(launcherName(s.kind)) +
                                                " launcher needs hosts (--hosts FILE)"};
        int slots = 0;
        for (const HostEntry& h : s.hosts)
            slots += h.slot_count;
        if (slots < s.ranks)
            return Error{"launch", "hosts", "the hosts offer " + std::to_string(slots) + " slots for " +
                                                std::to_string(s.ranks) + " ranks"};
    }
    std::vector<std::string> cmd;
    const std::string blas = "OPENBLAS_NUM_THREADS=" + std::to_string(std::max(1, s.blas_threads));
    if (s.kind == LauncherKind::Local && s.ranks == 1) {
        // One rank here needs no MPI job: the worker alone runs one-rank plans
        // (a workstation with one GPU and no Open MPI runs too).
        cmd = {"env", blas};
        for (std::string& a : worker)
            cmd.push_back(std::move(a));
        return cmd;
    }
    switch (s.kind) {
    case LauncherKind::Local:
    case LauncherKind::Ssh:
        cmd = {"mpirun", "-np", std::to_string(s.ranks)};
        if (geteuid() == 0)
            cmd.push_back("--allow-run-as-root"); // Open MPI refuses root without it
        // Ranks time-share the cores when there are more ranks than cores; no
        // binding, so the OS spreads them. Each rank's communication thread
        // waits inside MPI beside its compute thread: polling that yields
        // leaves the core to compute (on a 2-core VM, 2 CPU ranks: median
        // step 15.4 ms yielding, 18.9 ms busy-polling, 5 runs each).
        cmd.insert(cmd.end(), {"--oversubscribe", "--bind-to", "none", "--mca", "mpi_yield_when_idle", "1", "-x", blas});
        if (s.per_node)
            cmd.insert(cmd.end(), {"--map-by", "ppr:1:node"});
        if (s.kind == LauncherKind::Ssh) {
            if (auto ok = checkSshOptions(s.ssh_options); !ok)
                return ok.error();
            if (s.hostfile.empty())
                return Error{"launch", "hostfile", "the ssh launcher needs a path for the hostfile"};
            std::string agent = "ssh";
            for (const std::string& a : sshBase(s))
                agent += " " + a;
            cmd.insert(cmd.end(), {"--hostfile", s.hostfile, "--mca", "plm_rsh_agent", agent, "--mca",
                                   "plm_rsh_no_tree_spawn", "1", "--mca", "orte_keep_fqdn_hostnames", "1"});
        }
        break;
    case LauncherKind::Slurm: {
        std::string nodes;
        for (const HostEntry& h : s.hosts)
            nodes += (nodes.empty() ? "" : ",") + h.host;
        const int minutes = std::max(1, int((s.timeout_s + 59) / 60));
        cmd = {"srun",
               "--nodes=" + std::to_string(s.hosts.size()),
               "--nodelist=" + nodes,
               "--ntasks=" + std::to_string(s.ranks),
               "--kill-on-bad-exit=1",
               "--time=" + std::to_string(minutes),
               "--export=ALL," + blas,
               "--mpi=pmix"};
        if (s.per_node)
            cmd.push_back("--ntasks-per-node=1");
        break;
    }
    }
    for (std::string& a : worker)
        cmd.push_back(std::move(a));
    return cmd;
}

namespace detail {

void updateProgress(LaunchResult& r, const std::string& line)
{
    static const std::regex started(R"(^rank (\d+) host (\S+) pid (\d+) started)");
    static const std::regex step(R"(^rank (\d+) (warm-up|step) (\d+)/(\d+))");
    static const std::regex done(R"(^rank (\d+) done:)");
    std::smatch m;
    auto at = [&](int rank) -> RankProgress& {
        if (rank >= int(r.ranks.size()))
            r.ranks.resize(size_t(rank) + 1);
        RankProgress& p = r.ranks[size_t(rank)];
        p.rank = rank;
        return p;
    };
    if (std::regex_search(line, m, started)) {
        RankProgress& p = at(std::stoi(m[1]));
        p.host = m[2];
        p.pid = std::stoi(m[3]);
        p.last_line = line;
    } else if (std::regex_search(line, m, step)) {
        RankProgress& p = at(std::stoi(m[1]));
        if (m[2] == "step")
            p.steps_done = std::stoi(m[3]);
        else if (m[3] == m[4])
            p.warmup_done = true;
        p.last_line = line;
    } else if (std::regex_search(line, m, done)) {
        RankProgress& p = at(std::stoi(m[1]));
        p.done = true;
        p.last_line = line;
    }
}

std::string signalName(int sig)
{
    const char* d = strsignal(sig);
    return "signal " + std::to_string(sig) + (d ? std::string(" (") + d + ")" : "");
}

} // namespace detail

namespace {

using detail::signalName;
using detail::updateProgress;

// Ranks started here that outlived their launcher (Open MPI puts them in
// process groups of their own; a stopped one ignores its SIGTERM): killed by
// the pids they reported, after checking that each is still a partita-worker.
void killLeftoverRanks(const LaunchResult& r)
{
    for (const RankProgress& p : r.ranks) {
        if (p.pid <= 0)
            continue;
        std::ifstream cmd("/proc/" + std::to_string(p.pid) + "/cmdline");
        std::string argv0;
        std::getline(cmd, argv0, '\0');
        if (argv0.find("partita-worker") == std::string::npos)
            continue;
        kill(p.pid, SIGKILL);
        kill(p.pid, SIGCONT);
    }
}

// The pids of the ranks started here that are still partita-worker processes.
std::vector<int> localRankPids(const LaunchResult& r)
{
    std::vector<int> pids;
    for (const RankProgress& p : r.ranks) {
        if (p.pid <= 0 || p.done)
            continue;
        std::ifstream cmd("/proc/" + std::to_string(p.pid) + "/cmdline");
        std::string argv0;
        std::getline(cmd, argv0, '\0');
        if (argv0.find("partita-worker") != std::string::npos)
            pids.push_back(p.pid);
    }
    return pids;
}

// Running (a zombie waiting for its parent has exited).
bool alive(int pid)
{
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!std::getline(stat, line))
        return false;
    const size_t close = line.rfind(')');
    return close != std::string::npos && close + 2 < line.size() && line[close + 2] != 'Z';
}

// Forks the launcher: the child puts itself in a process group of its own,
// writes to the pipes and runs argv in spec.working_dir; the child's pid, or
// -1. The child of a threaded process may only make async-signal-safe
// calls: everything it uses (argv, the error texts) is made before the fork.
pid_t forkLauncher(const LaunchSpec& spec, const std::vector<char*>& argv, const std::string& cannotRun,
                   const std::string& cannotEnter, const int outPipe[2], const int errPipe[2])
{
    const pid_t pid = fork();
    if (pid == 0) {
        setpgid(0, 0); // the launcher and everything it starts locally: one group to terminate
        dup2(outPipe[1], 1);
        dup2(errPipe[1], 2);
        close(outPipe[0]);
        close(errPipe[0]);
        const bool entered = spec.working_dir.empty() || chdir(spec.working_dir.c_str()) == 0;
        if (entered)
            execvp(argv[0], argv.data());
        const std::string& what = entered ? cannotRun : cannotEnter;
        const char* why = std::strerror(errno);
        [[maybe_unused]] auto n = write(2, what.data(), what.size());
        n = write(2, why, std::strlen(why));
        n = write(2, "\n", 1);
        _exit(127);
    }
    return pid;
}

// The launcher's stdout and stderr, read as they come: each whole line goes
// to the log, the ranks' progress and onLine (err: from stderr).
struct LauncherOutput
{
    LaunchResult& r;
    const std::function<void(std::string_view, bool)>& onLine;
    std::string partial[2];
    bool open[2] = {true, true};
    int fds[2] = {-1, -1};

    bool anyOpen() const { return open[0] || open[1]; }

    // Hands on the whole lines of one pipe's buffer (and the rest, flushing).
    void deliver(int which, bool flush)
    {
        std::string& buf = partial[which];
        size_t nl;
        while ((nl = buf.find('\n')) != std::string::npos || (flush && !buf.empty())) {
            const std::string line = nl == std::string::npos ? buf : buf.substr(0, nl);
            buf.erase(0, nl == std::string::npos ? buf.size() : nl + 1);
            r.log += line + "\n";
            updateProgress(r, line);
            if (onLine)
                onLine(line, which == 1);
        }
    }

    // Waits up to 200 ms for output, then reads what came from each open pipe.
    void readReady()
    {
        pollfd p[2];
        int n = 0;
        int map[2];
        for (int i = 0; i < 2; ++i)
            if (open[i]) {
                p[n] = {fds[i], POLLIN, 0};
                map[n++] = i;
            }
        const int ready = poll(p, nfds_t(n), 200);
        for (int k = 0; k < n && ready > 0; ++k)
            if (p[k].revents & (POLLIN | POLLHUP | POLLERR)) {
                char buf[65536];
                const ssize_t got = read(p[k].fd, buf, sizeof buf);
                if (got <= 0) {
                    open[map[k]] = false;
                    deliver(map[k], true);
                } else {
                    partial[map[k]].append(buf, size_t(got));
                    deliver(map[k], false);
                }
            }
    }
};

// Stopping: the ranks started here first (SIGTERM, which the worker and a
// user's command under partita-worker --exec-rank turn into writing what
// they hold), given `grace_s` to exit; then the launcher's group (Open
// MPI's mpirun kills its ranks at once), SIGKILL 5 s later.
struct LauncherStop
{
    enum class Stop { Running, Ranks, Launcher, Killed } stop = Stop::Running;
    double deadline = 0;
    std::vector<int> stopping;

    // Takes the next stopping step due `elapsed` seconds into the run, if any.
    void advance(LaunchResult& r, const LaunchSpec& spec, pid_t pid, double elapsed, const std::atomic<bool>* cancel)
    {
        if (stop == Stop::Running && (elapsed > spec.timeout_s || (cancel && cancel->load()))) {
            r.timed_out = elapsed > spec.timeout_s;
            r.cancelled = !r.timed_out;
            stopping = spec.kind == LauncherKind::Local ? localRankPids(r) : std::vector<int>{};
            for (int rank : stopping)
                kill(rank, SIGTERM);
            stop = Stop::Ranks;
            deadline = elapsed + spec.grace_s;
        }
        if (stop == Stop::Ranks && (elapsed > deadline || std::none_of(stopping.begin(), stopping.end(), alive))) {
            kill(-pid, SIGTERM);
            stop = Stop::Launcher;
            deadline = elapsed + 5;
        } else if (stop == Stop::Launcher && elapsed > deadline) {
            kill(-pid, SIGKILL);
            stop = Stop::Killed;
        }
    }
};

// Follows the launcher until both its pipes close, stopping it at the
// timeout or on cancel.
void followLauncher(LaunchResult& r, const LaunchSpec& spec, pid_t pid, const int fds[2],
                    std::chrono::steady_clock::time_point t0,
                    const std::function<void(std::string_view, bool)>& onLine, const std::atomic<bool>* cancel)
{
    LauncherOutput out{r, onLine, {}, {true, true}, {fds[0], fds[1]}};
    LauncherStop stop;
    while (out.anyOpen()) {
        out.readReady();
        const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        stop.advance(r, spec, pid, elapsed, cancel);
    }
}

// Judges a finished run: a launcher that succeeded must have every rank
// report its end; a failure is explained from the log.
void concludeLaunch(LaunchResult& r, const LaunchSpec& spec)
{
    r.ok = r.exit_code == 0 && !r.timed_out && !r.cancelled;
    if (r.ok) {
        for (int i = 0; i < spec.ranks; ++i)
            if (i >= int(r.ranks.size()) || !r.ranks[size_t(i)].done) {
                r.ok = false;
                r.failed_rank = i;
                r.cause = "the launcher succeeded but the rank did not report its end";
                r.message = "rank " + std::to_string(i) + ": " + r.cause;
                return;
            }
        return;
    }
    explainFailure(r, spec);
}

} // namespace

LaunchResult runLaunch(const LaunchSpec& spec, const std::function<void(std::string_view, bool)>& onLine,
                       const std::atomic<bool>* cancel)
{
    LaunchResult r;
    auto cmd = launchCommand(spec);
    if (!cmd) {
        r.cause = cmd.error().str();
        r.message = r.cause;
        return r;
    }
    int outPipe[2], errPipe[2];
    if (pipe(outPipe) != 0 || pipe(errPipe) != 0) {
        r.cause = std::string("pipe: ") + std::strerror(errno);
        r.message = r.cause;
        return r;
    }
    // Everything the child needs is made before the fork: a process with
    // other threads (the workbench's) may only make async-signal-safe calls
    // between fork and exec.
    std::vector<char*> argv;
    for (std::string& a : *cmd)
        argv.push_back(a.data());
    argv.push_back(nullptr);
    const std::string cannotRun = std::string("cannot run ") + argv[0] + ": ";
    const std::string cannotEnter = "cannot enter " + spec.working_dir + ": ";
    const auto t0 = std::chrono::steady_clock::now();
    const pid_t pid = forkLauncher(spec, argv, cannotRun, cannotEnter, outPipe, errPipe);
    close(outPipe[1]);
    close(errPipe[1]);
    if (pid < 0) {
        close(outPipe[0]);
        close(errPipe[0]);
        r.cause = std::string("fork: ") + std::strerror(errno);
        r.message = r.cause;
        return r;
    }
    setpgid(pid, pid);
    const int fds[2] = {outPipe[0], errPipe[0]};
    followLauncher(r, spec, pid, fds, t0, onLine, cancel);
    close(outPipe[0]);
    close(errPipe[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    kill(-pid, SIGKILL); // anything of the group left behind
    if (spec.kind == LauncherKind::Local)
        killLeftoverRanks(r);
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    concludeLaunch(r, spec);
    return r;
}

Result<std::vector<std::string>> collectRemoteFiles(const LaunchSpec& spec, const std::string& localDir,
                                                    const std::string& pattern)
{
    if (spec.kind != LauncherKind::Ssh)
        return std::vector<std::string>{};
    if (auto ok = checkSshOptions(spec.ssh_options); !ok)
        return ok.error();
    // Every host of the hostfile: the ranks report their own host names,
    // which need not be the names ssh reaches them by.
    std::vector<std::string> unreachable;
    for (const HostEntry& h : spec.hosts) {
        std::vector<std::string> cmd{"scp", "-q"};
        for (const std::string& a : sshBase(spec))
            cmd.push_back(a);
        // The files of every rank on that host; a glob the remote shell expands.
        cmd.push_back(h.host + ":" + shellQuote(spec.out) + "/" + pattern);
        cmd.push_back(localDir + "/");
        std::string err;
        // A host where no rank ran has nothing to copy: scp fails there too.
        if (const int rc = runQuiet(cmd, &err); rc != 0)
            unreachable.push_back(h.host + " (scp exited with " + std::to_string(rc) + (err.empty() ? "" : ": " + err) + ")");
    }
    return unreachable;
}

Result<bool> writeSshHostfile(LaunchSpec& spec, const std::string& runDir, const std::string& remoteDir)
{
    if (remoteDir.empty())
        return Error{"launch", "remote folder", "the ssh launcher needs a folder on the hosts"};
    spec.hostfile = (std::filesystem::path(runDir) / "hostfile").string();
    return writeFileAtomically(spec.hostfile, hostfileText(spec));
}

Result<bool> makeRemoteDirs(const LaunchSpec& spec, const std::string& remoteDir)
{
    if (auto ok = checkSshOptions(spec.ssh_options); !ok)
        return ok.error();
    for (const HostEntry& h : spec.hosts) {
        std::vector<std::string> mk{"ssh"};
        for (auto& a : sshBase(spec))
            mk.push_back(a);
        mk.insert(mk.end(), {h.host, "mkdir -p " + shellQuote(remoteDir)});
        std::string err;
        if (int rc = runQuiet(mk, &err); rc != 0)
            return Error{"host " + h.host, "ssh", "cannot reach the host (ssh exited with " + std::to_string(rc) + ")" +
                                                      (err.empty() ? "" : ": " + err)};
    }
    return true;
}

// ssh launcher: the plan goes to every host's folder first.
Result<bool> distributePlan(const LaunchSpec& spec, const std::string& localPlan, const std::string& remoteDir)
{
    if (auto made = makeRemoteDirs(spec, remoteDir); !made)
        return made.error();
    for (const HostEntry& h : spec.hosts) {
        std::string err;
        std::vector<std::string> cp{"scp", "-q"};
        for (auto& a : sshBase(spec))
            cp.push_back(a);
        cp.insert(cp.end(), {localPlan, h.host + ":" + remoteDir + "/plan.json"});
        if (int rc = runQuiet(cp, &err); rc != 0)
            return Error{"host " + h.host, "scp", "cannot copy the plan (scp exited with " + std::to_string(rc) + ")" +
                                                      (err.empty() ? "" : ": " + err)};
    }
    return true;
}

} // namespace partita
