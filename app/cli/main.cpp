// partita-cli: everything the workbench does, headless. The commands'
// options are declared by group below; main parses the command line and
// runs the command given.
#include "completion.h"
#include "inspect.h"
#include "run.h"
#include "search.h"
#include "simulate.h"
#include "strategycmd.h"
#include "frameworks.h"
#include "trace.h"

#include <CLI/CLI.hpp>

#include <functional>
#include <iostream>
#include <utility>
#include <vector>

namespace {

using namespace partita::cli;

// Every command's options, alive while the command line is parsed and the
// command runs, and what running each command does.
struct Cli
{
    InspectOptions opts;
    std::string output;
    SimulateOptions so;
    SearchCliOptions sco;
    RunCliOptions ro;
    CalibrateCliOptions cco;
    bool presetsJson = false;
    StrategyCliOptions sto;
    bool atomsJson = false;
    ExportCliOptions exo;
    ImportCliOptions imo;
    LintCliOptions lio;
    TraceCliOptions tro;
    std::vector<std::pair<CLI::App*, std::function<int()>>> commands;
    void on(CLI::App* cmd, std::function<int()> run) { commands.emplace_back(cmd, std::move(run)); }
};

// Context parallelism and communication overlap, for simulate and run alike.

void addContextOptions(CLI::App* cmd, SimulateOptions& o)
{
    cmd->add_option("--cp", o.cp, "context-parallel degree: each sequence split over this many ranks")
        ->check(CLI::Range(1, 1 << 16));
    cmd->add_option("--cp-comm", o.cpComm,
                    "how context-parallel ranks exchange keys and values: p2p (a ring beside the attention; "
                    "the default) or all_gather (Megatron-LM's --cp-comm-type)")
        ->check(CLI::IsMember({"p2p", "all_gather"}));
    cmd->add_flag("--tp-comm-overlap", o.tpCommOverlap,
                  "run tensor-parallel all-gathers and reduce-scatters beside their GEMMs (Transformer Engine; "
                  "needs --sequence-parallel)");
    cmd->add_flag_callback("--overlap-grad-reduce", [&o] { o.overlapGradReduce = true; },
                           "reduce gradient buckets as soon as they are ready (the default)");
    cmd->add_flag_callback("--no-overlap-grad-reduce", [&o] { o.overlapGradReduce = false; },
                           "reduce every gradient bucket after the backward");
    cmd->add_flag("--overlap-param-gather", o.overlapParamGather,
                  "with --zero 1 or 2 (the distributed optimizer): gather the updated parameters beside the next "
                  "step's first forward");
}

// inspect, convert
void addModelCommands(CLI::App& app, Cli& cli)
{
    auto& opts = cli.opts;
    auto& output = cli.output;
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

    CLI::App* convert = app.add_subcommand("convert", "Write a model or a cluster in Partita's native JSON");
    addCommon(convert);
    convert->add_option("-o,--output", output, "output file (default: standard output)");
    cli.on(inspect, [&opts] { return runInspect(opts); });
    cli.on(convert, [&opts, &output] { return runConvert(opts, output); });
}

// simulate
void addSimulate(CLI::App& app, Cli& cli)
{
    auto& so = cli.so;
    CLI::App* sim = app.add_subcommand("simulate", "Predict step time, throughput, MFU and memory of a strategy");
    sim->add_option("--model", so.model, "model file")->required();
    sim->add_option("--cluster", so.cluster, "cluster file or preset (NAME or NAME:NODES)")->required();
    sim->add_option("--device", so.device, "device preset of the GPUs in an nvidia-smi topo -m file");
    sim->add_option("--node", so.nodeTemplate, "cluster preset each host of a hostfile is made of");
    auto* strat = sim->add_option("--strategy", so.strategy, "strategy JSON file (docs/formats.md)");
    auto* preset = sim->add_option("--preset", so.preset, "strategy preset (partita-cli presets)");
    strat->excludes(preset);
    sim->add_option("--tp", so.tp, "tensor-parallel degree")->check(CLI::Range(1, 1 << 16));
    sim->add_option("--pp", so.pp, "pipeline-parallel degree")->check(CLI::Range(1, 1 << 16));
    sim->add_option("--dp", so.dp, "data-parallel degree (default: devices / (tp x cp x pp))")->check(CLI::Range(1, 1 << 24));
    addContextOptions(sim, so);
    sim->add_option("--micro-batch", so.microBatch, "samples per micro-batch")->check(CLI::Range(int64_t(1), int64_t(1) << 30));
    sim->add_option("--global-batch", so.globalBatch, "samples per step (default: dp x micro-batch)")
        ->check(CLI::Range(int64_t(1), int64_t(1) << 40));
    sim->add_option("--interleave", so.interleave, "model chunks per device (interleaved 1F1B)")->check(CLI::Range(1, 1024));
    sim->add_option("--first-stage-layers", so.firstStageLayers,
                    "transformer blocks on the first pipeline stage (the rest split evenly between; Megatron-LM's "
                    "--decoder-first-pipeline-num-layers)")
        ->check(CLI::Range(1, 1 << 20));
    sim->add_option("--last-stage-layers", so.lastStageLayers, "transformer blocks on the last pipeline stage")
        ->check(CLI::Range(1, 1 << 20));
    sim->add_option("--recompute", so.recompute, "activation recomputation")
        ->check(CLI::IsMember({"none", "selective", "full"}));
    sim->add_flag("--sequence-parallel", so.sequenceParallel, "sequence parallelism (with tp > 1)");
    sim->add_option("--attention", so.attention,
                    "attention core: fused (FlashAttention at the device's best fused kernel; the default), flash2 "
                    "(FlashAttention-2's kernels, NVTE_FUSED_ATTN=0) or unfused")
        ->check(CLI::IsMember({"fused", "flash2", "unfused"}));
    sim->add_option("--zero", so.zero, "ZeRO stage")->check(CLI::Range(0, 3));
    sim->add_option("--dtype", so.dtype, "training precision (default: bf16 where the devices have bf16 tensor cores, else fp16)")
        ->check(CLI::IsMember({"fp16", "bf16", "fp32", "fp8"}));
    sim->add_option("--seq-len", so.seqLen, "sequence length (default: the model's)")
        ->check(CLI::Range(int64_t(1), int64_t(1) << 24));
    sim->add_option("--calibration", so.calibration, "calibration file with measured efficiencies");
    sim->add_option("--trace-out", so.traceOut, "write the predicted timeline as Chrome trace JSON (Perfetto)");
    sim->add_option("--project", so.project, "store the model, cluster, strategy and predicted timeline in this project");
    sim->add_option("--name", so.runName, "name of the predicted run in the project (default: the strategy's)");
    sim->add_option("--plan-out", so.planOut, "write the execution plan (JSON, docs/formats.md) the executors run");
    sim->add_flag("--json", so.json, "print JSON instead of a table");
    cli.on(sim, [&so] { return runSimulate(so); });
}

// search
void addSearch(CLI::App& app, Cli& cli)
{
    auto& sco = cli.sco;
    CLI::App* search = app.add_subcommand("search", "Search for a faster strategy with the simulator in the loop");
    search->add_option("--model", sco.model, "model file")->required();
    search->add_option("--cluster", sco.cluster, "cluster file or preset (NAME or NAME:NODES)")->required();
    search->add_option("--device", sco.device, "device preset of the GPUs in an nvidia-smi topo -m file");
    search->add_option("--node", sco.nodeTemplate, "cluster preset each host of a hostfile is made of");
    search->add_option("--budget-s", sco.budget, "time budget in seconds")->check(CLI::Range(0.01, 86400.0));
    search->add_option("--seed", sco.seed, "random seed (the result depends on seed and threads only)");
    search->add_option("--threads", sco.threads, "threads evaluating candidates")->check(CLI::Range(1, 256));
    search->add_option("--top", sco.top, "how many distinct strategies to report")->check(CLI::Range(1, 100));
    search->add_option("--objective", sco.objective, "what to optimize")->check(CLI::IsMember({"time", "throughput"}));
    search->add_option("--global-batch", sco.globalBatch, "samples per step (default: 4 per device)")
        ->check(CLI::Range(int64_t(1), int64_t(1) << 40));
    search->add_option("--seq-len", sco.seqLen, "sequence length (default: the model's)")
        ->check(CLI::Range(int64_t(1), int64_t(1) << 24));
    search->add_option("--dtype", sco.dtype, "training precision (default: bf16 where the devices have bf16 tensor cores, else fp16)")
        ->check(CLI::IsMember({"fp16", "bf16", "fp32", "fp8"}));
    search->add_option("--max-evals", sco.maxEvals, "stop after this many candidates (identical reruns on any machine)")
        ->check(CLI::Range(int64_t(1), int64_t(1) << 40));
    search->add_flag("--allow-powersgd", sco.allowPowerSgd,
                     "let per-layer refinement choose PowerSGD compression (lossy: training no longer computes the same)");
    search->add_flag("--allow-fp16-compression", sco.allowFp16Compression,
                     "with --dtype fp32: let the search send gradients as fp16 (lossy: training no longer computes the same)");
    search->add_flag("--allow-fp8", sco.allowFp8,
                     "on devices with FP8 (H100, H200): let the search train the GEMMs in FP8 (Transformer Engine's "
                     "recipe; training no longer computes the same)");
    search->add_option("--calibration", sco.calibration, "calibration file with measured efficiencies (partita-cli calibrate)");
    search->add_option("--out", sco.out, "write the best strategy (JSON)");
    search->add_flag("--json", sco.json, "print JSON instead of a table");
    cli.on(search, [&sco] { return runSearch(sco); });
}

// run
void addRun(CLI::App& app, Cli& cli)
{
    auto& ro = cli.ro;
    CLI::App* runCmd = app.add_subcommand("run", "Run a strategy for real, traced, and compare it with its prediction");
    runCmd->add_option("--model", ro.sim.model, "model file (with --command: optional, for layer names and the prediction)");
    runCmd->add_option("--cluster", ro.sim.cluster,
                       "cluster file or preset, or 'local': this machine, its ranks processes here (CPU backend)")
        ->required();
    runCmd->add_option("--device", ro.sim.device, "device preset of the GPUs in an nvidia-smi topo -m file");
    runCmd->add_option("--node", ro.sim.nodeTemplate, "cluster preset each host of a hostfile is made of");
    auto* rstrat = runCmd->add_option("--strategy", ro.sim.strategy, "strategy JSON file (docs/formats.md)");
    auto* rpreset = runCmd->add_option("--preset", ro.sim.preset, "strategy preset (partita-cli presets)");
    rstrat->excludes(rpreset);
    runCmd->add_option("--tp", ro.sim.tp, "tensor-parallel degree")->check(CLI::Range(1, 1 << 16));
    runCmd->add_option("--pp", ro.sim.pp, "pipeline-parallel degree")->check(CLI::Range(1, 1 << 16));
    runCmd->add_option("--dp", ro.sim.dp, "data-parallel degree (default: devices / (tp x cp x pp))")->check(CLI::Range(1, 1 << 24));
    addContextOptions(runCmd, ro.sim);
    runCmd->add_option("--ranks", ro.ranks, "with --cluster local: processes (default: dp x tp x cp x pp)")->check(CLI::Range(1, 4096));
    runCmd->add_flag("--remeasure", ro.remeasure, "with --cluster local: measure this machine again instead of reusing the project's figures");
    runCmd->add_option("--micro-batch", ro.sim.microBatch, "samples per micro-batch")->check(CLI::Range(int64_t(1), int64_t(1) << 30));
    runCmd->add_option("--global-batch", ro.sim.globalBatch, "samples per step (default: dp x micro-batch)")
        ->check(CLI::Range(int64_t(1), int64_t(1) << 40));
    runCmd->add_option("--interleave", ro.sim.interleave, "model chunks per device (interleaved 1F1B)")->check(CLI::Range(1, 1024));
    runCmd->add_option("--first-stage-layers", ro.sim.firstStageLayers, "transformer blocks on the first pipeline stage")
        ->check(CLI::Range(1, 1 << 20));
    runCmd->add_option("--last-stage-layers", ro.sim.lastStageLayers, "transformer blocks on the last pipeline stage")
        ->check(CLI::Range(1, 1 << 20));
    runCmd->add_option("--recompute", ro.sim.recompute, "activation recomputation")->check(CLI::IsMember({"none", "selective", "full"}));
    runCmd->add_flag("--sequence-parallel", ro.sim.sequenceParallel, "sequence parallelism (with tp > 1)");
    runCmd->add_option("--attention", ro.sim.attention,
                       "attention core: fused (FlashAttention at the device's best fused kernel; the default), flash2 "
                       "(FlashAttention-2's kernels, NVTE_FUSED_ATTN=0) or unfused")
        ->check(CLI::IsMember({"fused", "flash2", "unfused"}));
    runCmd->add_option("--zero", ro.sim.zero, "ZeRO stage")->check(CLI::Range(0, 3));
    runCmd->add_option("--dtype", ro.sim.dtype, "training precision (default: bf16 where the devices have bf16 tensor cores, else fp16)")
        ->check(CLI::IsMember({"fp16", "bf16", "fp32", "fp8"}));
    runCmd->add_option("--seq-len", ro.sim.seqLen, "sequence length (default: the model's)")->check(CLI::Range(int64_t(1), int64_t(1) << 24));
    runCmd->add_option("--calibration", ro.sim.calibration, "calibration file for the prediction (partita-cli calibrate)");
    runCmd->add_option("--backend", ro.backend, "where kernels run: cpu (OpenBLAS, MPI) or cuda (cuBLAS, NCCL, CUPTI)")
        ->check(CLI::IsMember({"cpu", "cuda"}));
    runCmd->add_flag("--no-cupti", ro.noCupti, "cuda: no CUPTI tracing (step times only; measures tracing's overhead)");
    runCmd->add_option("--launcher", ro.launcher, "how ranks start: mpirun here, mpirun over ssh, or Slurm's srun")
        ->check(CLI::IsMember({"local", "ssh", "slurm"}));
    runCmd->add_option("--hosts", ro.hosts, "hostfile (host [slots=N] per line) for the ssh and slurm launchers");
    runCmd->add_option("--ssh-config", ro.sshConfig, "ssh: client configuration file (ssh -F)");
    runCmd->add_option("--ssh-identity", ro.sshIdentity, "ssh: private key (ssh -i)");
    runCmd->add_option("--ssh-option", ro.sshOptions, "ssh: KEY=VALUE option (ssh -o), repeatable; host keys stay verified");
    runCmd->add_option("--remote-dir", ro.remoteDir, "ssh: folder on the hosts for the plan and the ranks' files (default /tmp)");
    runCmd->add_option("--worker", ro.worker, "partita-worker to start (default: the one beside partita-cli)");
    runCmd->add_option("--steps", ro.steps, "measured steps")->check(CLI::Range(1, 100000));
    runCmd->add_option("--warmup", ro.warmup, "warm-up steps, not traced")->check(CLI::Range(0, 100000));
    runCmd->add_option("--shape-scale", ro.shapeScale, "scale GEMM dimensions, memory traffic and messages by this (0, 1]; recorded")
        ->check(CLI::Range(1e-6, 1.0));
    runCmd->add_option("--timeout", ro.timeout, "seconds before every rank is terminated")->check(CLI::Range(1.0, 1e7));
    runCmd->add_option("--project", ro.sim.project, "project the measured run and its prediction go into")->required();
    runCmd->add_option("--name", ro.sim.runName, "run name (default: the strategy's)");
    runCmd->add_flag("--json", ro.sim.json, "print JSON (rank progress then goes to stderr)");
    runCmd->add_option("--command", ro.command,
                       "profile your own training instead of a plan: the command one rank runs (python3 train.py ARGS "
                       "or python3 -m MODULE ARGS), started once per rank with torchrun's environment and traced by "
                       "Partita's trace module");
    runCmd->add_option("--profile-steps", ro.profileSteps,
                       "with --command: optimizer steps to wait, warm up and record, WAIT,WARMUP,ACTIVE (default 1,1,3)");
    runCmd->add_option("--config", ro.config,
                       "with --command: the framework configuration the training runs with (Megatron-LM script or "
                       "YAML, DeepSpeed JSON, torchtitan TOML, accelerate YAML, Partita's PyTorch script), predicted "
                       "beside the run; without it, --strategy or --preset, the one the command names "
                       "(--deepspeed_config FILE, Megatron-LM's flags)");
    runCmd->add_option("--trace-module", ro.traceModule, "with --command: partita_trace.py to use (default: the installed one)");
    runCmd->add_option("--master-addr", ro.masterAddr,
                       "with --command: MASTER_ADDR (default: 127.0.0.1 with the local launcher, else the first host)");
    runCmd->add_option("--master-port", ro.masterPort, "with --command: MASTER_PORT (default: a free port)")
        ->check(CLI::Range(1, 65535));
    cli.on(runCmd, [&ro] { return runRun(ro); });
}

// calibrate
void addCalibrate(CLI::App& app, Cli& cli)
{
    auto& cco = cli.cco;
    CLI::App* calib = app.add_subcommand("calibrate", "Fit the cost model's efficiencies to a measured run, or measure this GPU");
    auto* cproject = calib->add_option("--project", cco.project, "project file");
    auto* crun = calib->add_option("--run", cco.run, "measured run id");
    calib->add_option("--out", cco.out, "write the calibration JSON here (default: standard output)");
    calib->add_flag("--json", cco.json, "print a JSON summary with the calibration");
    auto* cmeasure = calib->add_flag("--measure-gpu", cco.measureGpu,
                                     "measure this machine's GPU (GEMMs in bf16, fp16, fp8; memory copies; NCCL on 1 rank) "
                                     "with CUDA events instead of fitting a run");
    auto* cfrom = calib->add_option("--from-sweep", cco.fromSweep, "fit a saved GPU sweep (--sweep-out) instead of a run");
    auto* clocal = calib->add_flag("--local", cco.local,
                                   "measure this machine's CPU (OpenBLAS sgemm and copies by size, single-threaded; "
                                   "a few seconds) and cache it for run --cluster local");
    clocal->excludes(cproject, crun, cfrom, cmeasure);
    cmeasure->excludes(cproject, crun, cfrom);
    cfrom->excludes(cproject, crun);
    calib->add_option("--sweep-out", cco.sweepOut, "with --measure-gpu: also write the raw sweep (JSON) here")->needs(cmeasure);
    calib->add_option("--gpu", cco.gpu, "with --measure-gpu: the GPU's index")->check(CLI::Range(0, 1023))->needs(cmeasure);
    calib->add_flag("--quick", cco.quick, "with --measure-gpu: fewer shapes and sizes (a smoke run)")->needs(cmeasure);
    calib->add_flag("--no-nccl", cco.noNccl, "with --measure-gpu: no NCCL collectives")->needs(cmeasure);
    calib->add_option("--device", cco.device, "device preset whose datasheet peaks the GPU's efficiencies are of "
                                              "(default: the one matching the GPU's name)");
    calib->add_option("--precision", cco.precision, "the precision whose GEMM table is the default matmul curve")
        ->check(CLI::IsMember({"bf16", "fp16", "fp8"}));
    cli.on(calib, [&cco] { return runCalibrate(cco); });
}

// presets, strategy atoms|assign
void addStrategy(CLI::App& app, Cli& cli)
{
    auto& presetsJson = cli.presetsJson;
    auto& sto = cli.sto;
    auto& atomsJson = cli.atomsJson;
    CLI::App* presets = app.add_subcommand("presets", "List strategy, cluster and device presets");
    presets->add_flag("--json", presetsJson, "print JSON");

    CLI::App* stratCmd = app.add_subcommand("strategy", "Edit strategies layer by layer (the designer's drag and drop)");
    stratCmd->require_subcommand(1);
    CLI::App* satoms = stratCmd->add_subcommand("atoms", "List the strategy atoms that can be assigned to layers");
    satoms->add_flag("--json", atomsJson, "print JSON");
    CLI::App* sassign = stratCmd->add_subcommand("assign", "Assign an atom to layers and write the edited strategy");
    sassign->add_option("--model", sto.base.model, "model file")->required();
    sassign->add_option("--cluster", sto.base.cluster, "cluster file or preset (NAME or NAME:NODES)")->required();
    sassign->add_option("--device", sto.base.device, "device preset of the GPUs in an nvidia-smi topo -m file");
    sassign->add_option("--node", sto.base.nodeTemplate, "cluster preset each host of a hostfile is made of");
    auto* astrat = sassign->add_option("--strategy", sto.base.strategy, "strategy JSON file to edit");
    auto* apreset = sassign->add_option("--preset", sto.base.preset, "strategy preset to start from");
    astrat->excludes(apreset);
    sassign->add_option("--tp", sto.base.tp, "tensor-parallel degree (with a preset)")->check(CLI::Range(1, 1 << 16));
    sassign->add_option("--pp", sto.base.pp, "pipeline-parallel degree (with a preset)")->check(CLI::Range(1, 1 << 16));
    sassign->add_option("--global-batch", sto.base.globalBatch, "samples per step (with a preset)")
        ->check(CLI::Range(int64_t(1), int64_t(1) << 40));
    sassign->add_option("--micro-batch", sto.base.microBatch, "samples per micro-batch (with a preset)")
        ->check(CLI::Range(int64_t(1), int64_t(1) << 30));
    sassign->add_option("--layers", sto.layers, "layer names or globs ('h.*.mlp.fc1')")->required();
    sassign->add_option("--atom", sto.atom, "atom id (partita-cli strategy atoms)")->required();
    sassign->add_option("--stage", sto.stage, "pipeline stage (atom 'stage')")->check(CLI::Range(0, 1 << 16));
    sassign->add_option("--shards", sto.shards, "parameter-server shards (atom 'ps'; 0: one per node)")
        ->check(CLI::Range(0, 1 << 16));
    sassign->add_option("--compression", sto.compression, "gradient compression (all-reduce atoms)")
        ->check(CLI::IsMember({"none", "fp16", "powersgd"}));
    sassign->add_option("--out", sto.out, "write the strategy here (default: standard output)");
    sassign->add_flag("--json", sto.json, "print JSON");
    cli.on(presets, [&presetsJson] { return runPresets(presetsJson); });
    cli.on(satoms, [&atomsJson] { return runStrategyAtoms(atomsJson); });
    cli.on(sassign, [&sto] { return runStrategyAssign(sto); });
}

// export
void addExport(CLI::App& app, Cli& cli)
{
    auto& exo = cli.exo;
    CLI::App* exportCmd = app.add_subcommand("export", "Write a strategy as a framework's launch script or configuration");
    exportCmd->add_option("--model", exo.base.model, "model file")->required();
    exportCmd->add_option("--cluster", exo.base.cluster, "cluster file or preset (NAME or NAME:NODES)")->required();
    exportCmd->add_option("--device", exo.base.device, "device preset of the GPUs in an nvidia-smi topo -m file");
    exportCmd->add_option("--node", exo.base.nodeTemplate, "cluster preset each host of a hostfile is made of");
    auto* estrat = exportCmd->add_option("--strategy", exo.base.strategy, "strategy JSON file");
    auto* epreset = exportCmd->add_option("--preset", exo.base.preset, "strategy preset");
    estrat->excludes(epreset);
    exportCmd->add_option("--tp", exo.base.tp, "tensor-parallel degree")->check(CLI::Range(1, 1 << 16));
    exportCmd->add_option("--pp", exo.base.pp, "pipeline-parallel degree")->check(CLI::Range(1, 1 << 16));
    exportCmd->add_option("--dp", exo.base.dp, "data-parallel degree (default: devices / (tp x cp x pp))")
        ->check(CLI::Range(1, 1 << 24));
    addContextOptions(exportCmd, exo.base);
    exportCmd->add_option("--micro-batch", exo.base.microBatch, "samples per micro-batch")
        ->check(CLI::Range(int64_t(1), int64_t(1) << 30));
    exportCmd->add_option("--global-batch", exo.base.globalBatch, "samples per step (default: dp x micro-batch)")
        ->check(CLI::Range(int64_t(1), int64_t(1) << 40));
    exportCmd->add_option("--interleave", exo.base.interleave, "model chunks per device (interleaved 1F1B)")
        ->check(CLI::Range(1, 1024));
    exportCmd->add_option("--recompute", exo.base.recompute, "activation recomputation")
        ->check(CLI::IsMember({"none", "selective", "full"}));
    exportCmd->add_flag("--sequence-parallel", exo.base.sequenceParallel, "sequence parallelism (with tp > 1)");
    exportCmd->add_option("--zero", exo.base.zero, "ZeRO stage")->check(CLI::Range(0, 3));
    exportCmd->add_option("--dtype", exo.base.dtype, "training precision")->check(CLI::IsMember({"fp16", "bf16", "fp32", "fp8"}));
    exportCmd->add_option("--seq-len", exo.base.seqLen, "sequence length (default: the model's)")
        ->check(CLI::Range(int64_t(1), int64_t(1) << 24));
    exportCmd->add_option("--format", exo.format, "the framework")->check(CLI::IsMember({"megatron", "deepspeed", "horovod", "pytorch", "torchtitan", "accelerate"}));
    exportCmd->add_option("-o,--output", exo.out,
                          "megatron, horovod, pytorch: the script's file; deepspeed: a folder for ds_config.json, launch.sh and hostfile "
                          "(default: standard output)");
    exportCmd->add_flag("--closest", exo.closest,
                        "when the framework cannot run the strategy, write the closest it can and list the differences");
    cli.on(exportCmd, [&exo] { return runExport(exo); });
}

// import-config, lint-config
void addImportAndLint(CLI::App& app, Cli& cli)
{
    auto& imo = cli.imo;
    auto& lio = cli.lio;
    CLI::App* importCmd = app.add_subcommand("import-config", "Read a framework's launch script into a model and a strategy");
    importCmd->add_option("input", imo.input, "a Megatron-LM or horovodrun command line or launch script, a DeepSpeed ds_config.json, or a "
                                                "PyTorch script Partita exported")
        ->required();
    importCmd->add_option("--format", imo.format, "what the file is (auto: JSON is DeepSpeed's)")
        ->check(CLI::IsMember({"auto", "megatron", "deepspeed", "horovod", "pytorch", "torchtitan", "accelerate"}));
    importCmd->add_option("--model", imo.model, "with a DeepSpeed configuration or a horovodrun line: the model, for a prediction");
    importCmd->add_option("--cluster", imo.cluster, "cluster file or preset: the GPUs (else torchrun's flags), and a prediction");
    importCmd->add_option("--device", imo.device, "device preset of the GPUs in an nvidia-smi topo -m file");
    importCmd->add_option("--node", imo.nodeTemplate, "cluster preset each host of a hostfile is made of");
    importCmd->add_option("-o,--output", imo.out, "write the strategy (JSON) here (default: standard output)");
    importCmd->add_option("--model-out", imo.modelOut, "write the model (native JSON) here");

    CLI::App* lintCmd = app.add_subcommand("lint-config", "Check a Megatron-LM command line, a DeepSpeed configuration, a "
                                                          "torchtitan job TOML or an accelerate config before it runs: the "
                                                          "framework's rules, memory and a faster strategy");
    lintCmd->add_option("input", lio.input, "a Megatron-LM command line or launch script, a DeepSpeed ds_config.json, a "
                                            "torchtitan job TOML or an accelerate config YAML")
        ->required();
    lintCmd->add_option("--format", lio.format, "what the file is (auto: read from its text)")
        ->check(CLI::IsMember({"auto", "megatron", "deepspeed", "torchtitan", "accelerate"}));
    lintCmd->add_option("--cluster", lio.cluster, "cluster file or preset the job runs on (the data-parallel rules, a prediction)");
    lintCmd->add_option("--device", lio.device, "device preset of the GPUs in an nvidia-smi topo -m file");
    lintCmd->add_option("--node", lio.nodeTemplate, "cluster preset each host of a hostfile is made of");
    lintCmd->add_option("--model", lio.model, "with a DeepSpeed or accelerate configuration: the model");
    lintCmd->add_option("--search-s", lio.searchSeconds, "seconds of search for a faster strategy (0: none)")
        ->check(CLI::Range(0.0, 600.0));
    cli.on(importCmd, [&imo] { return runImportConfig(imo); });
    cli.on(lintCmd, [&lio] { return runLintConfig(lio); });
}

// --project and --json, which every trace and runs subcommand takes.
void addProjectOptions(CLI::App* cmd, TraceCliOptions& tro)
{
    cmd->add_option("--project", tro.project, "project file (*.partita; created when missing)")->required();
    cmd->add_flag("--json", tro.json, "print JSON");
}

// trace import: Chrome / Kineto traces or Nsight Systems exports into a project as a run
CLI::App* addTraceImport(CLI::App* trace, TraceCliOptions& tro)
{
    CLI::App* timport = trace->add_subcommand("import", "Import Chrome / PyTorch-profiler (Kineto) traces (plain or gzip) or Nsight Systems SQLite exports");
    timport->add_option("inputs", tro.inputs, "trace files, or folders of per-rank traces")->required();
    timport->add_option("--name", tro.name, "run name (default: the first file's name)");
    timport->add_option("--rank", tro.rank, "rank of a single Nsight Systems export (default: 0)");
    timport->add_option("--mesh", tro.mesh, "how the job laid out its ranks, as dp=4,tp=2,pp=2 (cp, ep too): the timeline groups ranks by it");
    addProjectOptions(timport, tro);
    return timport;
}

// trace export: a run as Chrome trace JSON
CLI::App* addTraceExport(CLI::App* trace, TraceCliOptions& tro)
{
    CLI::App* texport = trace->add_subcommand("export", "Write a run as Chrome trace JSON (Perfetto, chrome://tracing, HTA)");
    texport->add_option("--run", tro.runs, "run id")->required();
    texport->add_option("--format", tro.format, "output format")->check(CLI::IsMember({"chrome"}));
    texport->add_option("out", tro.out, "output file")->required();
    texport->add_flag("--align-clocks", tro.alignClocks, "shift each rank's times by its clock correction (trace stragglers' offsets)");
    addProjectOptions(texport, tro);
    return texport;
}

// trace stats: a run's temporal breakdown, overlap, kernels and idle time
CLI::App* addTraceStats(CLI::App* trace, TraceCliOptions& tro)
{
    CLI::App* tstats = trace->add_subcommand("stats", "Temporal breakdown, overlap, kernels, idle time, stragglers (HTA's definitions)");
    tstats->add_option("--run", tro.runs, "run id")->required();
    tstats->add_flag("--keep-last-step", tro.keepLastStep, "include the last profiler step (HTA leaves it out)");
    tstats->add_flag("--hta-rounding", tro.htaRounding, "whole microseconds as HTA reads them (default: nanoseconds)");
    addProjectOptions(tstats, tro);
    return tstats;
}

// trace diff: two runs compared
CLI::App* addTraceDiff(CLI::App* trace, TraceCliOptions& tro)
{
    CLI::App* tdiff = trace->add_subcommand("diff", "Compare two runs: ops diff (HTA), steps, layers, ranks");
    tdiff->add_option("--run", tro.runs, "run ids: --run A --run B")->required()->expected(1, 2);
    tdiff->add_option("--rank", tro.rank, "rank to compare (default: the smallest of each run)");
    tdiff->add_option("--iteration", tro.iteration, "profiler step to compare (default: the first of each run)");
    tdiff->add_option("--scope", tro.scope, "events compared by name")->check(CLI::IsMember({"cpu", "gpu", "all"}));
    addProjectOptions(tdiff, tro);
    return tdiff;
}

// trace stragglers: per step, the rank the others waited for
CLI::App* addTraceStragglers(CLI::App* trace, TraceCliOptions& tro)
{
    CLI::App* tstrag = trace->add_subcommand("stragglers", "Per step: which rank made the others wait at the collectives, by how much, and in which kernel and layer; the ranks' clocks aligned");
    tstrag->add_option("--run", tro.runs, "run id")->required();
    addProjectOptions(tstrag, tro);
    return tstrag;
}

// trace critical-path: the chain of work that set each step's length
CLI::App* addTraceCriticalPath(CLI::App* trace, TraceCliOptions& tro)
{
    CLI::App* tcrit = trace->add_subcommand("critical-path", "The chain of work that set each step's length, across ranks: host operators, launches, streams, syncs, collectives, send/recv");
    tcrit->add_option("--run", tro.runs, "run id")->required();
    tcrit->add_option("--step", tro.step, "the step at this place, from 0 (default: every step)");
    tcrit->add_option("--annotation", tro.annotation, "instead of a step: an event whose name contains this (HTA's annotation)");
    tcrit->add_option("--instance", tro.instance, "which of the --annotation's events, from 0");
    tcrit->add_flag("--no-segments", tro.noSegments, "only the sums, not the path's edges");
    addProjectOptions(tcrit, tro);
    return tcrit;
}

// trace memory: memory per rank and device over time
CLI::App* addTraceMemory(CLI::App* trace, TraceCliOptions& tro)
{
    CLI::App* tmem = trace->add_subcommand("memory", "Memory per rank and device over time from the profiler's [memory] records: peaks, and the predicted peak beside them");
    tmem->add_option("--run", tro.runs, "run id")->required();
    tmem->add_option("--points", tro.points, "with --json: the series, in at most this many points (peaks kept)")->check(CLI::Range(0, 1000000));
    addProjectOptions(tmem, tro);
    return tmem;
}

// trace heatmap: per rank and step, the figures furthest above their step's median
CLI::App* addTraceHeatmap(CLI::App* trace, TraceCliOptions& tro)
{
    CLI::App* theat = trace->add_subcommand("heatmap", "Per rank and step: step time, compute, exposed communication and idle time; the cells furthest above their step's median");
    theat->add_option("--run", tro.runs, "run id")->required();
    theat->add_option("--metric", tro.metric, "what ranks and cells are ordered by")
        ->check(CLI::IsMember({"step", "compute", "exposed-comm", "idle"}));
    theat->add_option("--top", tro.top, "ranks and cells listed (0: all)")->check(CLI::Range(0, 1000000));
    theat->add_option("--group-by", tro.groupBy, "also per group of the run's mesh: the ranks' least, median and most busy share")
        ->check(CLI::IsMember({"dp", "tp", "pp", "cp", "ep"}));
    addProjectOptions(theat, tro);
    return theat;
}

// trace events: the events behind a figure
CLI::App* addTraceEvents(CLI::App* trace, TraceCliOptions& tro)
{
    CLI::App* tevents = trace->add_subcommand("events", "The events behind a figure: those matching a name, layer, kernel class, rank and step, counted and timed, the first listed");
    tevents->add_option("--run", tro.runs, "run id")->required();
    tevents->add_option("--name", tro.eventName, "the exact event name (trace stats' kernels, trace diff's ops)");
    tevents->add_option("--layer", tro.layer, "events of this model layer (the layer id)");
    tevents->add_option("--class", tro.kernelClass,
                        "device events of this kernel class: computation, communication, memory, other, or non-compute (every class but computation)")
        ->check(CLI::IsMember({"computation", "communication", "memory", "other", "non-compute"}));
    tevents->add_option("--rank", tro.rank, "on this rank");
    tevents->add_option("--step", tro.step, "inside each rank's step at this place, from 0 (trace heatmap's columns)");
    tevents->add_flag("--device", tro.deviceOnly, "only events on device tracks (what trace stats' kernel rows count)");
    tevents->add_option("--limit", tro.top, "events listed, the earliest first")->check(CLI::Range(0, 1000000));
    addProjectOptions(tevents, tro);
    return tevents;
}

// trace import|export|stats|diff|stragglers|critical-path|memory|heatmap|events, runs list
void addTrace(CLI::App& app, Cli& cli)
{
    auto& tro = cli.tro;
    CLI::App* trace = app.add_subcommand("trace", "Import, export, analyze and compare timelines in a project");
    trace->require_subcommand(1);
    CLI::App* timport = addTraceImport(trace, tro);
    CLI::App* texport = addTraceExport(trace, tro);
    CLI::App* tstats = addTraceStats(trace, tro);
    CLI::App* tdiff = addTraceDiff(trace, tro);
    CLI::App* tstrag = addTraceStragglers(trace, tro);
    CLI::App* tcrit = addTraceCriticalPath(trace, tro);
    CLI::App* tmem = addTraceMemory(trace, tro);
    CLI::App* theat = addTraceHeatmap(trace, tro);
    CLI::App* tevents = addTraceEvents(trace, tro);
    CLI::App* runsCmd = app.add_subcommand("runs", "Runs stored in a project");
    runsCmd->require_subcommand(1);
    CLI::App* rlist = runsCmd->add_subcommand("list", "List the runs of a project");
    addProjectOptions(rlist, tro);
    cli.on(timport, [&tro] { return runTraceImport(tro); });
    cli.on(texport, [&tro] { return runTraceExport(tro); });
    cli.on(tstats, [&tro] { return runTraceStats(tro); });
    cli.on(tdiff, [&tro] { return runTraceDiff(tro); });
    cli.on(tstrag, [&tro] { return runTraceStragglers(tro); });
    cli.on(tcrit, [&tro] { return runTraceCriticalPath(tro); });
    cli.on(tmem, [&tro] { return runTraceMemory(tro); });
    cli.on(theat, [&tro] { return runTraceHeatmap(tro); });
    cli.on(tevents, [&tro] { return runTraceEvents(tro); });
    cli.on(rlist, [&tro] { return runRunsList(tro); });
}

} // namespace

int main(int argc, char** argv)
{
    CLI::App app{"Partita: design, predict, run and profile distributed-training strategies (headless)"};
    app.require_subcommand(1);
    app.set_version_flag("--version", std::string("partita-cli ") + PARTITA_VERSION_STRING);
    Cli cli;
    for (auto add : {addModelCommands, addSimulate, addSearch, addRun, addCalibrate, addStrategy, addExport, addImportAndLint,
                     addTrace})
        add(app, cli);
    std::string shell;
    CLI::App* completion = app.add_subcommand("completion", "Print a shell completion script for partita-cli");
    completion->add_option("shell", shell, "the shell")->required()->check(CLI::IsMember({"bash"}));

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        const int code = app.exit(e);
        return code == 0 ? 0 : 2;
    }
    if (*completion) {
        std::cout << bashCompletion(app);
        return 0;
    }
    for (const auto& [cmd, run] : cli.commands)
        if (*cmd)
            return run();
    return 2;
}
