#pragma once
// A user's training command as one rank runs it under Partita's trace module
// (resources/profiler/partita_trace.py), for partita-cli run --command.

#include "partita/core/result.h"

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

} // namespace partita
