#pragma once
// A user's own training command profiled end to end (partita-cli run
// --command, the workbench's Profile a Training Command…): every rank runs
// the command through partita-worker --exec-rank (rankexec.h), started by a
// launcher (launcher.h), with Partita's trace module
// (resources/profiler/partita_trace.py) put in front of the script; each
// rank's trace is brought back and all are stored as one measured run of the
// project, kept and marked incomplete when a rank failed.

#include "partita/core/result.h"
#include "partita/core/tracedcommand.h"
#include "partita/executor/launcher.h"
#include "partita/profiler/tracestore.h"

#include <atomic>
#include <functional>
#include <string>
#include <vector>

namespace partita {

struct CommandRunOptions
{
    LaunchSpec launch;          // kind, ranks, hosts, worker, timeout, ssh options
    std::string command;        // what one rank runs
    std::string trace_module;   // partita_trace.py, a path valid on every host
    ProfileSchedule schedule;
    std::string master_addr;    // default: 127.0.0.1 (local), else the first host
    int master_port = 0;        // 0: a port free on this machine now
    std::string run_dir;        // local folder: traces/ (created)
    std::string remote_dir;     // ssh: the folder on every host for the traces
    RunInfo info;               // name, documents, source; kind and status are set here
    std::string meta_extra;     // JSON object merged into the run's meta
    std::function<void(std::string_view line, bool err)> on_line;
    const std::atomic<bool>* cancel = nullptr;
};

struct CommandRankResult
{
    int rank = -1;
    bool traced = false;        // its trace came back
    std::vector<double> step_s; // every optimizer step's wall time, as the trace module saw it
};

struct CommandRun
{
    int64_t run_id = 0;          // 0: no rank left a trace
    bool complete = false;       // the command succeeded on every rank and every rank's trace came back
    LaunchResult launch;
    std::vector<CommandRankResult> ranks;
    std::vector<std::string> warnings;
    std::string meta;            // the run's meta as stored (JSON object)
};

Result<CommandRun> executeCommandRun(TraceStore& store, const CommandRunOptions& options);

// A TCP port nobody listens on now (the kernel's choice), for MASTER_PORT.
Result<int> freeTcpPort();

} // namespace partita
