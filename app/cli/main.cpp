// partita-cli: everything the workbench does, headless.
#include "inspect.h"

#include <CLI/CLI.hpp>

#include <iostream>

int main(int argc, char** argv)
{
    CLI::App app{"Partita: design, predict, run and profile distributed-training strategies (headless)"};
    app.require_subcommand(1);
    app.set_version_flag("--version", std::string("partita-cli ") + PARTITA_VERSION);

    partita::cli::InspectOptions opts;
    auto addCommon = [&](CLI::App* cmd) {
        cmd->add_option("target", opts.target,
                        "model file (.onnx, config.json, native .json), cluster file (.json, nvidia-smi topo -m "
                        "text, hostfile), cluster preset (NAME or NAME:NODES) or 'local'")
            ->required();
        cmd->add_option("--device", opts.device, "device preset of the GPUs in an nvidia-smi topo -m file");
        cmd->add_option("--node", opts.nodeTemplate, "cluster preset each host of a hostfile is made of");
        cmd->add_option("--as", opts.as, "read the target as a model or a cluster (default: by content)")
            ->check(CLI::IsMember({"model", "cluster"}));
    };

    CLI::App* inspect = app.add_subcommand("inspect", "Show what Partita reads from a model or a cluster");
    addCommon(inspect);
    inspect->add_option("--batch", opts.batch, "batch size for the costs (samples)")
        ->check(CLI::Range(int64_t(1), int64_t(1) << 30));
    inspect->add_option("--seq-len", opts.seqLen, "sequence length for the costs (default: the model's)")
        ->check(CLI::Range(int64_t(1), int64_t(1) << 24));
    inspect->add_flag("--json", opts.json, "print JSON instead of a table");

    std::string output;
    CLI::App* convert = app.add_subcommand("convert", "Write a model or a cluster in Partita's native JSON");
    addCommon(convert);
    convert->add_option("-o,--output", output, "output file (default: standard output)");

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        const int code = app.exit(e);
        return code == 0 ? 0 : 2;
    }
    if (*inspect)
        return partita::cli::runInspect(opts);
    if (*convert)
        return partita::cli::runConvert(opts, output);
    return 2;
}
