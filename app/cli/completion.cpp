#include "completion.h"

#include <CLI/CLI.hpp>

#include <sstream>
#include <vector>

namespace partita::cli {
namespace {

// Allowed values of an option checked by CLI::IsMember: CLI11 describes that
// validator as "{a,b,c}", which is all a completion can read of it.
std::string choicesOf(CLI::Option& o)
{
    std::string d;
    try {
        d = o.get_validator()->get_description();
    } catch (const CLI::OptionNotFound&) {
        return {}; // no validator: any value
    }
    const size_t open = d.find('{'), close = d.rfind('}');
    if (open == std::string::npos || close == std::string::npos || close < open)
        return {};
    std::string words = d.substr(open + 1, close - open - 1);
    for (char& c : words)
        if (c == ',')
            c = ' ';
    return words;
}

struct Cases
{
    std::vector<std::string> paths;  // every command path: "partita-cli trace import"
    std::ostringstream values, words; // case arms: after a valued option; at a command
};

std::vector<CLI::App*> subcommandsOf(CLI::App& cmd)
{
    return cmd.get_subcommands([](CLI::App*) { return true; });
}

// CLI11's accessors for validators are not const: the walk takes the app as it is.
void walk(CLI::App& cmd, const std::string& path, Cases& c)
{
    c.paths.push_back(path);
    std::string words, positional; // positional: what a word not starting with '-' completes to
    for (CLI::App* sub : subcommandsOf(cmd))
        words += sub->get_name() + " ";
    for (CLI::Option* o : cmd.get_options()) {
        if (o->get_positional()) {
            const std::string choices = choicesOf(*o);
            positional = choices.empty() ? "_filedir" : "COMPREPLY=($(compgen -W \"" + choices + "\" -- \"$cur\"))";
            continue;
        }
        for (const std::string& l : o->get_lnames())
            words += "--" + l + " ";
        for (const std::string& s : o->get_snames())
            words += "-" + s + " ";
        if (o->get_items_expected_max() == 0)
            continue; // a flag takes no value
        const std::string choices = choicesOf(*o);
        for (const std::string& l : o->get_lnames())
            c.values << "        \"" << path << " --" << l << "\") "
                     << (choices.empty() ? "_filedir" : "COMPREPLY=($(compgen -W \"" + choices + "\" -- \"$cur\"))")
                     << "; return ;;\n";
    }
    c.words << "        \"" << path << "\") ";
    if (!positional.empty())
        c.words << "[[ $cur != -* ]] && { " << positional << "; return; }; ";
    c.words << "COMPREPLY=($(compgen -W \"" << words << "\" -- \"$cur\")); return ;;\n";
    for (CLI::App* sub : subcommandsOf(cmd))
        walk(*sub, path + " " + sub->get_name(), c);
}

} // namespace

std::string bashCompletion(CLI::App& app)
{
    Cases c;
    walk(app, "partita-cli", c);
    std::string paths;
    for (size_t i = 1; i < c.paths.size(); ++i)
        paths += (i > 1 ? "|\"" : "\"") + c.paths[i] + "\"";
    std::ostringstream s;
    s << "# bash completion for partita-cli: written by `partita-cli completion bash` from its own command line\n"
         "_partita_cli()\n"
         "{\n"
         "    local cur prev words cword i path=partita-cli\n"
         "    _init_completion || return\n"
         "    for ((i = 1; i < cword; i++)); do\n"
         "        case \"$path ${words[i]}\" in\n"
         "            "
      << paths
      << ") path=\"$path ${words[i]}\" ;;\n"
         "        esac\n"
         "    done\n"
         "    case \"$path $prev\" in\n"
      << c.values.str()
      << "    esac\n"
         "    case \"$path\" in\n"
      << c.words.str()
      << "    esac\n"
         "}\n"
         "complete -F _partita_cli partita-cli\n";
    return s.str();
}

} // namespace partita::cli
