#pragma once
// Launchers for a measured run: existing tools, not a home-made daemon.
//  - local: Open MPI's mpirun on this machine (oversubscribed when there are
//    more ranks than cores; --allow-run-as-root when running as root); one
//    rank is the worker alone, with no MPI job;
//  - ssh: mpirun starting its daemons over the system's OpenSSH in BatchMode
//    with host keys verified (never StrictHostKeyChecking=no); the ranks'
//    files are copied back with scp;
//  - slurm: srun, which Slurm's own daemons carry out.
// The launcher watches the ranks' progress lines, enforces a timeout, and
// turns a failure into one message naming the rank, its host and the cause.

#include "partita/core/clusterio.h"
#include "partita/core/result.h"

#include <atomic>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace partita {

enum class LauncherKind
{
    Local,
    Ssh,
    Slurm,
};
std::string_view launcherName(LauncherKind k);

struct LaunchSpec
{
    LauncherKind kind = LauncherKind::Local;
    int ranks = 1;
    std::vector<HostEntry> hosts; // ssh, slurm: where ranks go, in order, `slot_count` each (parseHostfile)
    std::string worker;           // partita-worker, an absolute path valid on every host
    std::string plan;             // plan JSON, a path valid on every host
    std::string out;              // folder the workers write into (on each host)
    std::string hostfile;         // ssh: where to write the mpirun hostfile
    std::string backend = "cpu";  // the workers' compute backend: cpu or cuda
    bool trace_device = true;     // cuda: CUPTI tracing (off: --no-cupti, step times only)
    int steps = 3, warmup = 1;
    double shape_scale = 1.0;
    double timeout_s = 600;       // the whole run, launch included
    double grace_s = 5;           // stopping: the time ranks started here have after SIGTERM to write what they hold
    int blas_threads = 1;         // OpenBLAS threads per rank
    // ssh and scp options, in the forms both accept: -F FILE, -i FILE, -o KEY=VALUE.
    std::vector<std::string> ssh_options;
    // When set, what every rank runs instead of the worker's plan run (argv,
    // first the program): partita-worker --exec-rank … for a user's command.
    std::vector<std::string> command;
    bool per_node = false; // `ranks` is the number of nodes: one process on each
    // The folder the launcher starts in (and with it every rank on this
    // machine; Open MPI starts remote ranks in the same path when it exists
    // there); empty: this process's.
    std::string working_dir;
};

// The command that starts every rank (argv, first the program). Checks the
// spec (ranks fit the hosts' slots, options in the accepted forms).
Result<std::vector<std::string>> launchCommand(const LaunchSpec& spec);
// The same launch for another worker command line (`worker` = argv, first the
// program): e.g. partita-worker --calibrate-mpi under mpirun.
Result<std::vector<std::string>> launchCommand(const LaunchSpec& spec, std::vector<std::string> worker);
std::string hostfileText(const LaunchSpec& spec);

struct RankProgress
{
    int rank = -1;
    std::string host;
    int pid = 0;
    int steps_done = 0; // measured steps reported
    bool warmup_done = false;
    bool done = false;
    std::string last_line;
};

struct LaunchResult
{
    bool ok = false;
    int exit_code = 0;
    bool timed_out = false;
    bool cancelled = false;
    double seconds = 0;
    // On failure: who and why, and the same in one line.
    int failed_rank = -1;
    std::string failed_host;
    std::string cause;
    std::string message;
    std::vector<RankProgress> ranks; // by rank
    std::string log;                 // everything the launcher and the ranks printed
};

// Runs the launch command and waits for it, calling `onLine` for every line
// of output (stderr lines flagged). A timeout or `cancel` terminates every
// rank: SIGTERM to the ranks started here, `grace_s` for them to exit, then
// SIGTERM to the launcher's process group and SIGKILL 5 s later.
LaunchResult runLaunch(const LaunchSpec& spec, const std::function<void(std::string_view line, bool err)>& onLine = {},
                       const std::atomic<bool>* cancel = nullptr);

// Reads the failure out of a launcher's output (Open MPI's and the workers'
// messages); exposed for tests.
void explainFailure(LaunchResult& r, const LaunchSpec& spec);

// ssh launcher: creates `remoteDir` on every host and copies the plan there
// as plan.json. Fails naming the first host that cannot be reached.
Result<bool> distributePlan(const LaunchSpec& spec, const std::string& localPlan, const std::string& remoteDir);

// ssh launcher: the folder on the hosts must be given; writes mpirun's
// hostfile for `spec` in `runDir` and sets spec.hostfile to it.
Result<bool> writeSshHostfile(LaunchSpec& spec, const std::string& runDir, const std::string& remoteDir);

// ssh launcher: creates `remoteDir` on every host. Fails naming the first
// host that cannot be reached.
Result<bool> makeRemoteDirs(const LaunchSpec& spec, const std::string& remoteDir);

// ssh launcher: copies every rank's files (`pattern`, a glob the remote shell
// expands: by default the worker's manifests and traces) from the hosts'
// `spec.out` into `localDir` with scp (what exists: a rank that died may have
// left less). Returns the hosts scp failed on, with the reason (a host where
// no rank ran has nothing to copy and is among them).
Result<std::vector<std::string>> collectRemoteFiles(const LaunchSpec& spec, const std::string& localDir,
                                                    const std::string& pattern = "rank-*");

} // namespace partita
