// The training command of partita-cli run --command and its --profile-steps:
// any text gives a rank's argv (the trace module in front of a script), a
// torchrun line's, or an error naming --command / --profile-steps.
#include "partita/core/tracedcommand.h"

#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    const std::string text(reinterpret_cast<const char*>(data), size);
    auto argv = partita::tracedCommand(text, "M.py", "D", partita::ProfileSchedule{});
    if (argv) {
        // The module and its options always follow the interpreter, and the argv is never empty.
        bool module = false;
        for (const std::string& w : *argv)
            module = module || w == "M.py";
        if (argv->empty() || !module)
            __builtin_trap();
    } else if (argv.error().file != "--command") {
        __builtin_trap();
    }
    auto launch = partita::tracedLaunch(text, "M.py", "D", partita::ProfileSchedule{});
    if (launch && (launch->argv.empty() || launch->procs_per_node < 0))
        __builtin_trap();
    if (!launch && launch.error().file != "--command")
        __builtin_trap();
    auto s = partita::parseProfileSchedule(text);
    if (s && (s->active < 1 || s->wait < 0 || s->warmup < 0))
        __builtin_trap();
    return 0;
}
