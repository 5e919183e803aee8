#pragma once
// A user's training command as one rank runs it under Partita's trace module
// (resources/profiler/partita_trace.py), for partita-cli run --command.

#include "partita/core/result.h"

#include <optional>
#include <string>
#include <vector>

namespace partita {

struct ProfileSchedule
{
    int wait = 1, warmup = 1, active = 3; // optimizer steps
};

// "WAIT,WARMUP,ACTIVE" (WAIT, WARMUP >= 0, ACTIVE >= 1).
Result<ProfileSchedule> parseProfileSchedule(const std::string& text);

// What each launched process runs, the trace module put in front of the
// script (tracedCommand's rewrite), or for a torchrun line (`torchrun OPTS
// SCRIPT ARGS`, `python3 -m torch.distributed.run OPTS SCRIPT ARGS`) the
// line itself, run once per node, with `--no_python PYTHON MODULE --out DIR
// --schedule W,WU,A` before the script, so that torchrun starts each of the
// node's ranks under the module. Refused: torchrun's own --no-python (the
// module needs a Python script).
struct TracedCommand
{
    std::vector<std::string> argv;
    bool per_node = false;  // a torchrun line: one process per node starts that node's ranks
    int procs_per_node = 1; // ranks per launched process; 0: torchrun decides (--nproc_per_node auto, gpu, cpu)
};
Result<TracedCommand> tracedLaunch(const std::string& command, const std::string& module, const std::string& outDir,
                                   const ProfileSchedule& schedule);

// The command a rank runs, the trace module put in front of its script:
// `[VAR=VALUE...] python3 [OPTIONS] SCRIPT ARGS` (or `-m MODULE ARGS`)
// becomes `[env VAR=VALUE...] python3 [OPTIONS] MODULE --out DIR --schedule
// W,WU,A SCRIPT ARGS`. One command, words quoted as a shell does, with no
// pipes, redirections or `;`; a deepspeed, srun or mpirun line is refused
// (Partita starts the processes itself), naming what to give instead, and so
// is a torchrun line (tracedLaunch takes those).
Result<std::vector<std::string>> tracedCommand(const std::string& command, const std::string& module,
                                               const std::string& outDir, const ProfileSchedule& schedule);

// Where a training command says its own parallel configuration, for a
// prediction of the run it makes: a DeepSpeed configuration file it passes
// (`--deepspeed_config FILE`, `--deepspeed-config FILE`, `--deepspeed_config=FILE`)
// or Megatron-LM flags on the command line itself. nullopt when it says none.
struct CommandConfig
{
    std::string framework; // "deepspeed" or "megatron" (frameworks.h's names)
    std::string file;      // the configuration file; empty: the command line itself
};
std::optional<CommandConfig> configInCommand(const std::string& command);

} // namespace partita
