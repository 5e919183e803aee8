#include "partita/core/tracedcommand.h"

#include "shellwords.h"

#include <algorithm>
#include <cstdlib>
#include <regex>

namespace partita {

namespace {

std::string baseName(const std::string& p)
{
    const size_t slash = p.rfind('/');
    return slash == std::string::npos ? p : p.substr(slash + 1);
}

bool isAssignment(const std::string& w)
{
    static const std::regex re(R"([A-Za-z_][A-Za-z0-9_]*=.*)");
    return std::regex_match(w, re);
}

} // namespace

Result<ProfileSchedule> parseProfileSchedule(const std::string& text)
{
    static const std::regex re(R"(\s*(\d{1,6})\s*,\s*(\d{1,6})\s*,\s*(\d{1,6})\s*)");
    std::smatch m;
    if (!std::regex_match(text, m, re))
        return Error{"--profile-steps", text, "expected three whole numbers WAIT,WARMUP,ACTIVE (optimizer steps)"};
    ProfileSchedule s{std::stoi(m[1]), std::stoi(m[2]), std::stoi(m[3])};
    if (s.active < 1)
        return Error{"--profile-steps", text, "ACTIVE, the steps recorded, must be at least 1"};
    return s;
}

Result<std::vector<std::string>> tracedCommand(const std::string& command, const std::string& module,
                                               const std::string& outDir, const ProfileSchedule& schedule)
{
    const Error where{"--command", command, ""};
    auto refuse = [&](const std::string& why) { return Error{where.file, where.where, why}; };
    for (const char c : {'|', '<', '>', '&', '`', '$'})
        if (command.find(c) != std::string::npos)
            return refuse(std::string("one command without pipes, redirections or shell expansions ('") + c +
                          "'): put them in a script and give python3 SCRIPT");
    std::vector<std::string> words = detail::shellWords(command);
    while (!words.empty() && words.back() == "\n")
        words.pop_back();
    if (std::find(words.begin(), words.end(), "\n") != words.end())
        return refuse("one command, on one line, without ';'");
    std::vector<std::string> out;
    size_t i = 0;
    for (; i < words.size() && isAssignment(words[i]); ++i) {
        if (out.empty())
            out.push_back("env");
        out.push_back(words[i]);
    }
    if (i == words.size())
        return refuse("no command given");
    const std::string prog = baseName(words[i]);
    if (prog == "deepspeed" || prog == "srun" || prog == "mpirun" || prog == "accelerate")
        return refuse(prog + " starts ranks itself, and so does Partita (one process per rank, with the "
                             "environment torchrun gives a script; or a torchrun line, once per node): give the "
                             "command one rank runs, e.g. 'python3 train.py ARGS', and the ranks with --ranks or --hosts");
    if (prog == "torchrun")
        return refuse("a torchrun line runs once per node (tracedLaunch), not once per rank");
    static const std::regex python(R"(python[0-9.]*)");
    if (!std::regex_match(prog, python))
        return refuse("the command must run Python (python3 SCRIPT ARGS or python3 -m MODULE ARGS), so that "
                      "Partita's trace module can go in front of the script; '" + words[i] + "' is not Python");
    out.push_back(words[i++]);
    // The interpreter's own options; those with a value take the next word.
    std::vector<std::string> pyOpts;
    std::string moduleName;
    for (; i < words.size() && words[i].size() > 1 && words[i][0] == '-'; ++i) {
        const std::string& w = words[i];
        if (w == "-c")
            return refuse("python3 -c runs no training script: give python3 SCRIPT ARGS");
        if (w == "-m") {
            if (i + 1 >= words.size())
                return refuse("-m needs a module");
            moduleName = words[++i];
            ++i;
            break;
        }
        pyOpts.push_back(w);
        if ((w == "-X" || w == "-W" || w == "--check-hash-based-pycs") && i + 1 < words.size())
            pyOpts.push_back(words[++i]);
    }
    if (moduleName.empty() && i >= words.size())
        return refuse("no training script after " + prog);
    out.insert(out.end(), pyOpts.begin(), pyOpts.end());
    out.insert(out.end(), {module, "--out", outDir, "--schedule",
                           std::to_string(schedule.wait) + "," + std::to_string(schedule.warmup) + "," +
                               std::to_string(schedule.active)});
    if (!moduleName.empty())
        out.insert(out.end(), {"-m", moduleName});
    else
        out.push_back("--");
    out.insert(out.end(), words.begin() + long(i), words.end());
    return out;
}

namespace {

// torchrun's options that take no value; every other option takes one.
bool torchrunFlag(const std::string& name)
{
    for (const char* f : {"--standalone", "-m", "--module", "--no_python", "--no-python", "--run_path", "--run-path"})
        if (name == f)
            return true;
    return false;
}

} // namespace

Result<TracedCommand> tracedLaunch(const std::string& command, const std::string& module, const std::string& outDir,
                                   const ProfileSchedule& schedule)
{
    std::vector<std::string> words = detail::shellWords(command);
    while (!words.empty() && words.back() == "\n")
        words.pop_back();
    size_t i = 0;
    while (i < words.size() && isAssignment(words[i]))
        ++i;
    // torchrun, or python3 [OPTIONS] -m torch.distributed.run.
    std::vector<std::string> launcher(words.begin(), words.begin() + long(std::min(i + 1, words.size())));
    std::string python = "python3";
    size_t j = i + 1;
    bool torchrun = i < words.size() && baseName(words[i]) == "torchrun";
    static const std::regex pythonRe(R"(python[0-9.]*)");
    if (!torchrun && i < words.size() && std::regex_match(baseName(words[i]), pythonRe)) {
        size_t k = i + 1;
        while (k < words.size() && words[k] != "-m" && words[k].size() > 1 && words[k][0] == '-')
            ++k;
        if (k + 1 < words.size() && words[k] == "-m" && words[k + 1] == "torch.distributed.run") {
            torchrun = true;
            python = words[i];
            launcher.assign(words.begin(), words.begin() + long(k + 2));
            j = k + 2;
        }
    }
    if (!torchrun) {
        auto argv = tracedCommand(command, module, outDir, schedule);
        if (!argv)
            return argv.error();
        return TracedCommand{std::move(*argv), false, 1};
    }
    for (char c : {'|', '<', '>', '&', '`', '$', ';'})
        if (command.find(c) != std::string::npos)
            return Error{"--command", command, std::string("one command without pipes, redirections, ';' or shell "
                                                           "expansions ('") + c + "')"};
    TracedCommand out;
    out.per_node = true;
    out.argv = launcher;
    if (!out.argv.empty() && i > 0)
        out.argv.insert(out.argv.begin(), "env");
    bool moduleMode = false;
    for (; j < words.size() && words[j].size() > 1 && words[j][0] == '-'; ++j) {
        const std::string& w = words[j];
        if (w == "--")
            break;
        const std::string name = w.substr(0, w.find('='));
        if (name == "--no_python" || name == "--no-python")
            return Error{"--command", command, "torchrun's --no-python runs a program, not a Python script: Partita's "
                                               "trace module goes in front of a script"};
        if (name == "-m" || name == "--module") {
            moduleMode = true;
            continue;
        }
        out.argv.push_back(w);
        if (!torchrunFlag(name) && w.find('=') == std::string::npos && j + 1 < words.size())
            out.argv.push_back(words[++j]);
        const std::string value = w.find('=') != std::string::npos ? w.substr(w.find('=') + 1) : out.argv.back();
        if (name == "--nproc_per_node" || name == "--nproc-per-node") {
            char* end = nullptr;
            const long n = std::strtol(value.c_str(), &end, 10);
            out.procs_per_node = end != value.c_str() && *end == 0 && n > 0 && n < 65536 ? int(n) : 0;
        }
    }
    if (j < words.size() && words[j] == "--")
        ++j;
    if (j >= words.size())
        return Error{"--command", command, "no training script after torchrun's options"};
    out.argv.insert(out.argv.end(), {"--no_python", python, module, // the spelling every torchrun knows
                                     "--out", outDir, "--schedule",
                                     std::to_string(schedule.wait) + "," + std::to_string(schedule.warmup) + "," +
                                         std::to_string(schedule.active)});
    if (moduleMode)
        out.argv.push_back("-m");
    else
        out.argv.push_back("--");
    out.argv.insert(out.argv.end(), words.begin() + long(j), words.end());
    return out;
}

std::optional<CommandConfig> configInCommand(const std::string& command)
{
    const std::vector<std::string> words = detail::shellWords(command);
    for (size_t i = 0; i < words.size(); ++i)
        for (const std::string flag : {"--deepspeed_config", "--deepspeed-config"}) {
            if (words[i] == flag && i + 1 < words.size())
                return CommandConfig{"deepspeed", words[i + 1]};
            if (words[i].rfind(flag + "=", 0) == 0)
                return CommandConfig{"deepspeed", words[i].substr(flag.size() + 1)};
        }
    // Megatron-LM's parallel flags (its model's are read with them).
    for (const std::string& w : words)
        for (const char* flag : {"--tensor-model-parallel-size", "--pipeline-model-parallel-size", "--num-layers",
                                 "--context-parallel-size"})
            if (w == flag || w.rfind(std::string(flag) + "=", 0) == 0)
                return CommandConfig{"megatron", {}};
    return std::nullopt;
}

} // namespace partita
