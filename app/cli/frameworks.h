#pragma once
// `partita-cli export` and `partita-cli import-config`: strategies to and
// from the frameworks people train with (Megatron-LM and DeepSpeed so far).

#include "simulate.h"

#include <string>

namespace partita::cli {

struct ExportCliOptions
{
    SimulateOptions base; // model, cluster and the strategy (file, preset or mesh flags)
    std::string format = "megatron", out;
    bool closest = false;
};

struct ImportCliOptions
{
    std::string input, format = "auto", out, modelOut, model, cluster, device, nodeTemplate;
    bool json = false;
};

struct LintCliOptions
{
    std::string input, format = "auto", model, cluster, device, nodeTemplate;
    double searchSeconds = 5;
};

int runExport(const ExportCliOptions& o);
// Exit 1 when the framework would refuse the configuration or it runs out of memory.
int runLintConfig(const LintCliOptions& o);
int runImportConfig(const ImportCliOptions& o);

} // namespace partita::cli
