// Megatron-LM's YAML configuration (--yaml-cfg), read as the command line it
// stands for. At core_r0.10.0, megatron/training/yaml_arguments.py loads the
// file into the arguments namespace and ignores argparse's: its top level
// and its language_model and model_parallel sections hold the arguments by
// their destination names (examples/gpt3/gpt_config.yaml), which are the
// flags' names with '-' for '_'. language_model.fp8 is --fp8-format's value.
#include "partita/core/megatron.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace partita {

namespace {

std::string quoted(const std::string& v)
{
    if (!v.empty() && v.find_first_of(" \t\n'\"\\$`") == std::string::npos)
        return v;
    std::string out = "'";
    for (char c : v)
        out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out + "'";
}

// One key of the file as a flag, into `args`; lists and mappings have no flag.
void addFlag(const std::string& key, const YAML::Node& value, std::string& args, std::vector<std::string>& skipped)
{
    if (!value.IsScalar()) {
        if (!value.IsNull())
            skipped.push_back(key);
        return;
    }
    const std::string v = value.Scalar();
    if (v.empty() || v == "null" || v == "~" || v == "False" || v == "false")
        return; // unset, or a switch that is off
    std::string flag = "--" + key;
    std::replace(flag.begin(), flag.end(), '_', '-');
    args += " " + flag + (v == "True" || v == "true" ? "" : " " + quoted(v));
}

} // namespace

Result<std::string> megatronYamlCommand(const std::string& yaml, const std::string& file, int nnodes, int nproc,
                                        std::vector<std::string>* notes)
{
    YAML::Node root;
    try {
        root = YAML::Load(yaml);
    } catch (const YAML::Exception& e) {
        return Error{file, "line " + std::to_string(e.mark.line + 1), e.msg};
    }
    if (!root.IsMap())
        return Error{file, "/", "expected a mapping of Megatron-LM's arguments"};
    std::string args;
    std::vector<std::string> skipped;
    try {
        for (const auto& top : root) {
            const std::string key = top.first.as<std::string>("");
            if ((key == "language_model" || key == "model_parallel") && top.second.IsMap()) {
                for (const auto& sub : top.second) {
                    const std::string k = sub.first.as<std::string>("");
                    if (key == "language_model" && k == "fp8") { // the format, or null for none
                        if (sub.second.IsScalar() && sub.second.Scalar() != "null" && !sub.second.Scalar().empty())
                            args += " --fp8-format " + quoted(sub.second.Scalar());
                        continue;
                    }
                    addFlag(k, sub.second, args, skipped);
                }
                continue;
            }
            addFlag(key, top.second, args, skipped);
        }
    } catch (const YAML::Exception& e) {
        return Error{file, "line " + std::to_string(e.mark.line + 1), e.msg};
    }
    if (notes) {
        notes->push_back("arguments read from " + file +
                         " (--yaml-cfg: Megatron-LM ignores the command line's own with it)");
        if (!skipped.empty()) {
            std::string list;
            for (const auto& k : skipped)
                list += (list.empty() ? "" : ", ") + k;
            notes->push_back("lists and sections in " + file + " not read as flags: " + list);
        }
    }
    std::ostringstream o;
    if (nnodes > 0 || nproc > 0)
        o << "torchrun --nnodes " << std::max(1, nnodes) << " --nproc-per-node " << std::max(1, nproc) << " ";
    o << "pretrain_gpt.py" << args << "\n";
    return o.str();
}

bool isMegatronYaml(const std::string& text)
{
    return text.find("language_model:") != std::string::npos && text.find("model_parallel:") != std::string::npos;
}

Result<std::string> megatronCommand(const std::string& text, const std::string& file, std::vector<std::string>* notes)
{
    if (isMegatronYaml(text))
        return megatronYamlCommand(text, file, 0, 0, notes);
    const MegatronFlags parsed = megatronFlags(text);
    const auto it = parsed.flags.find("--yaml-cfg");
    if (it == parsed.flags.end())
        return text;
    if (it->second.empty() || it->second.find('$') != std::string::npos)
        return Error{file, "--yaml-cfg", "'" + it->second + "' is not a file name: give the YAML's path"};
    namespace fs = std::filesystem;
    fs::path path(it->second);
    if (path.is_relative()) // torchrun's working folder is unknown: the script's own
        path = fs::path(file).parent_path() / path;
    std::error_code ec;
    if (!fs::is_regular_file(path, ec) || fs::file_size(path, ec) > (4u << 20))
        return Error{file, "--yaml-cfg", path.string() + ": no such file (a relative path is read beside " + file + ")"};
    std::ifstream in(path);
    std::stringstream yaml;
    yaml << in.rdbuf();
    return megatronYamlCommand(yaml.str(), path.string(), parsed.nnodes, parsed.nproc, notes);
}

Result<MegatronImport> importMegatronWithYaml(const std::string& text, const std::string& file, int world)
{
    std::vector<std::string> notes;
    auto command = megatronCommand(text, file, &notes);
    if (!command)
        return command.error();
    auto out = importMegatron(*command, file, world);
    if (out)
        out->notes.insert(out->notes.begin(), notes.begin(), notes.end());
    return out;
}

} // namespace partita
