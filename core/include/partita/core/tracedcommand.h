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

// The command a rank runs, the trace module put in front of its script:
// `[VAR=VALUE...] python3 [OPTIONS] SCRIPT ARGS` (or `-m MODULE ARGS`)
// becomes `[env VAR=VALUE...] python3 [OPTIONS] MODULE --out DIR --schedule
// W,WU,A SCRIPT ARGS`. One command, words quoted as a shell does, with no
// pipes, redirections or `;`; a torchrun, deepspeed or srun line is refused
// (Partita starts one process per rank itself), naming what to give instead.
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
