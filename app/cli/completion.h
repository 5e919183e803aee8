#pragma once
// `partita-cli completion bash`: a bash completion script made from the
// command line's own definition, so it cannot drift from it.
#include <string>

namespace CLI {
class App;
}

namespace partita::cli {

// The script: subcommands, then each (sub)command's options; option values
// complete from their allowed set where the command line has one, else as files.
std::string bashCompletion(CLI::App& app);

} // namespace partita::cli
