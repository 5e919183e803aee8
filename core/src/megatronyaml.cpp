// Megatron-LM's YAML configuration (--yaml-cfg), read as the command line it
// stands for. At core_r0.10.0, megatron/training/yaml_arguments.py loads the
// file into the arguments namespace and ignores argparse's: its top level
// and its language_model and model_parallel sections hold the arguments by
// their destination names (examples/gpt3/gpt_config.yaml), which are the
// flags' names with '-' for '_', except language_model's TransformerConfig
// fields (activation_func, num_query_groups, add_bias_linear, fp8, and
// ffn_hidden_size's default), written as the flags that mean the same.
#include "partita/core/megatron.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdlib>
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

// A scalar as YAML reads it: null, a boolean (YAML 1.1's yes/no/on/off too), or text.
struct Scalar
{
    bool unset = false, isBool = false, value = false;
    std::string text;
};
Scalar scalarOf(const YAML::Node& n)
{
    Scalar s;
    s.text = n.Scalar();
    s.unset = n.IsNull() || s.text.empty() || s.text == "null" || s.text == "~";
    bool b = false;
    if (!s.unset && YAML::convert<bool>::decode(n, b))
        s.isBool = true, s.value = b;
    return s;
}

// One argument of the file as a flag, into `args`; lists and mappings have no flag.
void addFlag(const std::string& key, const YAML::Node& value, std::string& args, std::vector<std::string>& skipped)
{
    if (!value.IsScalar()) {
        if (!value.IsNull())
            skipped.push_back(key);
        return;
    }
    const Scalar v = scalarOf(value);
    if (v.unset || (v.isBool && !v.value))
        return; // unset, or a switch that is off
    std::string flag = "--" + key;
    std::replace(flag.begin(), flag.end(), '_', '-');
    args += " " + flag + (v.isBool ? "" : " " + quoted(v.text));
}

// language_model holds TransformerConfig's fields, which yaml_arguments.py
// turns into the model (core_transformer_config_from_yaml): those that are
// no flag of the same name are written as the flags that mean the same.
// Returns false for a field that is an ordinary argument.
bool modelField(const std::string& k, const YAML::Node& v, const YAML::Node& section, std::string& args)
{
    const Scalar s = v.IsScalar() ? scalarOf(v) : Scalar{true};
    if (k == "fp8") { // the format, or null for none
        if (!s.unset && !s.isBool)
            args += " --fp8-format " + quoted(s.text);
        return true;
    }
    if (k == "activation_func") { // swiglu, squaredrelu or gelu
        if (s.text == "swiglu")
            args += " --swiglu";
        else if (s.text == "squaredrelu")
            args += " --squared-relu";
        return true;
    }
    if (k == "num_query_groups") {
        if (!s.unset)
            args += " --group-query-attention --num-query-groups " + quoted(s.text);
        return true;
    }
    if (k == "add_bias_linear") {
        if (s.isBool && !s.value)
            args += " --disable-bias-linear";
        return true;
    }
    if (k == "ffn_hidden_size" && s.unset) {
        // yaml_arguments.py's default: 4h, or for swiglu int((4h x 2/3) / 64) x 64.
        const YAML::Node h = section["hidden_size"], act = section["activation_func"];
        if (h && h.IsScalar()) {
            const long long hidden = std::atoll(h.Scalar().c_str());
            const bool swiglu = act && act.IsScalar() && act.Scalar() == "swiglu";
            const long long ffn = swiglu ? (long long)((4.0 * double(hidden) * 2 / 3) / 64) * 64 : 4 * hidden;
            if (hidden > 0 && hidden < (1LL << 30))
                args += " --ffn-hidden-size " + std::to_string(ffn);
        }
        return true;
    }
    return k == "gated_linear_unit"; // implied by activation_func
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
                    if (key != "language_model" || !modelField(k, sub.second, top.second, args))
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
    if (!fs::is_regular_file(path, ec))
        return Error{file, "--yaml-cfg", path.string() + ": no such file (a relative path is read beside " + file + ")"};
    if (fs::file_size(path, ec) > (4u << 20))
        return Error{file, "--yaml-cfg", path.string() + ": larger than 4 MiB, not a Megatron-LM configuration"};
    std::ifstream in(path);
    std::stringstream yaml;
    yaml << in.rdbuf();
    auto command = megatronYamlCommand(yaml.str(), path.string(), parsed.nnodes, parsed.nproc, notes);
    // The script's environment still chooses Transformer Engine's attention.
    if (command && text.find("NVTE_FUSED_ATTN=0") != std::string::npos)
        *command = "export NVTE_FUSED_ATTN=0\n" + *command;
    return command;
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
