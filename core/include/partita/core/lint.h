#pragma once
// Training configurations checked before anyone spends cluster time: what
// Megatron-LM, DeepSpeed, torchtitan or accelerate would refuse at start-up, and what they would run
// without a word although it is not what the user meant. Each finding names
// the flag or key, its value, the rule and a fix.

#include <string>
#include <vector>

namespace partita {

struct LintFinding
{
    enum class Kind
    {
        Refused,   // the framework stops at start-up
        Unnoticed, // the framework runs it, but not as written
    };
    Kind kind = Kind::Refused;
    std::string where;   // "--tensor-model-parallel-size", "/zero_optimization/stage"
    std::string message; // the value and the rule
    std::string fix;
};

// `world`: the GPUs the job runs on (0: torchrun's --nnodes x --nproc-per-node).
std::vector<LintFinding> lintMegatron(const std::string& text, int world = 0);
std::vector<LintFinding> lintDeepSpeed(const std::string& text, int world);
// A torchtitan v0.2.2 job TOML and an accelerate v1.14.0 config YAML
// (lintconfigs.cpp); `world`: the GPUs (0: unknown, the rules that need it
// are skipped).
std::vector<LintFinding> lintTorchtitan(const std::string& text, int world);
std::vector<LintFinding> lintAccelerate(const std::string& text, int world);

} // namespace partita
