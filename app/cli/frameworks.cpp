#include "frameworks.h"

#include "common.h"

#include "partita/core/clusterio.h"
#include "partita/core/deepspeed.h"
#include "partita/core/frameworks.h"
#include "partita/core/horovod.h"
#include "partita/core/lint.h"
#include "partita/core/search.h"
#include "partita/core/megatron.h"
#include "partita/core/modelio.h"
#include "partita/core/pytorch.h"
#include "partita/core/simulator.h"
#include "partita/core/units.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <optional>

namespace partita::cli {

namespace {

Result<SimResult> predict(const Model& m, const Cluster& c, const Strategy& s, int64_t seq)
{
    SimOptions so;
    so.seq_len = seq;
    return simulate(m, c, s, so);
}

int writeText(const std::string& path, const std::string& text, bool executable)
{
    if (path.empty()) {
        std::cout << text;
        return 0;
    }
    if (auto w = writeFileAtomically(path, text); !w)
        return fail(w.error());
    if (executable)
        std::filesystem::permissions(path, std::filesystem::perms::owner_exec | std::filesystem::perms::group_exec |
                                               std::filesystem::perms::others_exec,
                                     std::filesystem::perm_options::add);
    return 0;
}

} // namespace

namespace {

// The framework --format names (the CLI checks the name).
Framework formatOf(const std::string& format) { return frameworkFromName(format).value_or(Framework::Megatron); }

// "Predicted  T s per step on C, peak memory M GiB per GPU" for an imported strategy.
int printPrediction(const Model& m, const Cluster& c, const Strategy& s, int64_t seq = 0)
{
    auto r = predict(m, c, s, seq);
    if (!r)
        return fail(r.error());
    std::cout << "Predicted  " << r->step_time << " s per step on " << c.name << ", peak memory "
              << r->memory.peak / 1073741824.0 << " GiB per GPU" << (r->oom ? " (OUT OF MEMORY)" : "") << "\n";
    return 0;
}

int printPrediction(const std::string& modelPath, const Cluster& c, const Strategy& s)
{
    auto m = loadModel(modelPath);
    if (!m)
        return fail(m.error());
    return printPrediction(*m, c, s);
}

} // namespace

int runExport(const ExportCliOptions& o)
{
    auto in = loadStrategyInputs(o.base);
    if (!in)
        return fail(in.error());
    const Model& model = in->model;
    const Cluster& cluster = in->cluster;
    const Strategy& strategy = in->strategy;
    const Framework fw = formatOf(o.format);
    const std::string framework = fw == Framework::DeepSpeed ? "DeepSpeed"
                                  : fw == Framework::Horovod ? "Horovod"
                                  : fw == Framework::PyTorch ? "The PyTorch script"
                                                             : "Megatron-LM";
    ExportHeader h;
    h.version = PARTITA_VERSION_STRING;
    h.strategy = strategy.name;
    h.cluster = cluster.name;
    auto asked = predict(model, cluster, strategy, o.base.seqLen);
    if (!asked)
        return fail(asked.error());
    h.step_time_s = asked->step_time;
    h.peak_memory_bytes = asked->memory.peak;
    auto w = exportFramework(fw, model, cluster, strategy, o.base.seqLen, h, o.closest);
    if (!w)
        return fail(w.error());
    if (!w->differences.empty()) {
        // The closest strategy is another one: predict it too, and say how they differ.
        auto near = predict(model, cluster, w->exported, o.base.seqLen);
        if (!near)
            return fail(near.error());
        h.step_time_s = near->step_time;
        h.peak_memory_bytes = near->memory.peak;
        w = exportFramework(fw, model, cluster, strategy, o.base.seqLen, h, true); // headed by the closest's prediction
        if (!w)
            return fail(w.error());
        std::cerr << framework << " cannot run strategy '" << strategy.name << "' as it is; the closest it can:\n";
        for (const auto& d : frameworkRefusals(fw, model, strategy))
            std::cerr << "  was: " << d << "\n";
        for (const auto& d : w->differences)
            std::cerr << "  now: " << d << "\n";
        std::cerr << "  predicted step time " << asked->step_time << " s -> " << near->step_time << " s, peak memory "
                  << asked->memory.peak / 1073741824.0 << " -> " << near->memory.peak / 1073741824.0 << " GiB\n";
    }
    for (const auto& n : w->notes)
        std::cerr << "note: " << n << "\n";
    if (w->files.size() == 1)
        return writeText(o.out, w->files.front().second, true);
    if (o.out.empty()) { // the configuration on standard output, the rest said
        std::cout << w->files.front().second;
        std::cerr << "(give -o DIR for " << w->files[1].first << " and " << w->files[2].first << " as well)\n";
        return 0;
    }
    std::error_code ec;
    std::filesystem::create_directories(o.out, ec);
    if (ec)
        return fail(Error{o.out, {}, "cannot create the folder: " + ec.message()});
    for (const auto& [name, text] : w->files)
        if (int rc = writeText(o.out + "/" + name, text, name.size() > 3 && name.substr(name.size() - 3) == ".sh"); rc)
            return rc;
    std::cout << "wrote " << o.out << "/{";
    for (size_t i = 0; i < w->files.size(); ++i)
        std::cout << (i ? "," : "") << w->files[i].first;
    std::cout << "}\n";
    return 0;
}

namespace {

// A horovodrun line: a data-parallel strategy, predicted with --model and --cluster.
int importHorovodLine(const ImportCliOptions& o, const std::string& text, const std::optional<Cluster>& cluster)
{
    auto in = importHorovod(text, o.input);
    if (!in)
        return fail(in.error());
    if (int rc = writeText(o.out, strategyToJson(in->strategy), false); rc != 0)
        return rc;
    if (o.out.empty())
        return 0;
    const Strategy& s = in->strategy;
    std::cout << "Strategy   dp " << s.dp << ", " << syncMethodName(s.sync.method) << " "
              << allReduceAlgoName(s.sync.algorithm) << ", fusion " << s.bucket_bytes / (1 << 20) << " MB, global batch "
              << s.global_batch << ", written to " << o.out << "\n";
    for (const auto& n : in->notes)
        std::cout << "note: " << n << "\n";
    return cluster && !o.model.empty() ? printPrediction(o.model, *cluster, s) : 0;
}

// A configuration read through importFramework (DeepSpeed, accelerate, the
// PyTorch script, torchtitan): its model where it says one (else --model's)
// and its strategy, predicted with --cluster.
int importThrough(const ImportCliOptions& o, const std::string& text, const std::optional<Cluster>& cluster, Framework fw)
{
    auto in = importFramework(fw, text, o.input, cluster ? cluster->deviceCount() : 0);
    if (!in)
        return fail(in.error());
    if (in->model && !o.modelOut.empty())
        if (int rc = writeText(o.modelOut, modelToJson(*in->model), false); rc != 0)
            return rc;
    if (int rc = writeText(o.out, strategyToJson(in->strategy), false); rc != 0)
        return rc;
    if (o.out.empty())
        return 0;
    const Strategy& s = in->strategy;
    if (in->model)
        std::cout << "Model      " << in->model->name << ", " << withThousands(in->model->parameterCount())
                  << " parameters, sequence " << in->seq_len << "\n";
    std::cout << "Strategy   dp " << s.dp << " x tp " << s.tp << " x cp " << s.cp << " x pp " << s.pp << ", ZeRO "
              << s.zero_stage << ", " << precisionName(s.precision) << ", global batch " << s.global_batch
              << ", written to " << o.out << "\n";
    for (const auto& n : in->notes)
        std::cout << "note: " << n << "\n";
    if (!cluster)
        return 0;
    if (in->model)
        return printPrediction(*in->model, *cluster, s, in->seq_len);
    return o.model.empty() ? 0 : printPrediction(o.model, *cluster, s);
}

} // namespace

int runImportConfig(const ImportCliOptions& o)
{
    auto text = readTextFile(o.input);
    if (!text)
        return fail(text.error());
    std::optional<Cluster> cluster;
    if (!o.cluster.empty()) {
        auto c = loadCluster(o.cluster, ClusterLoadOptions{o.device, o.nodeTemplate});
        if (!c)
            return fail(c.error());
        cluster = *c;
    }
    const size_t first = text->find_first_not_of(" \t\r\n");
    const bool json = first != std::string::npos && (*text)[first] == '{';
    // Auto: what the text is; else JSON is read as DeepSpeed's and the rest as
    // Megatron-LM's, whose errors then say what is missing.
    const Framework fw = o.format != "auto" ? formatOf(o.format)
                                            : detectFramework(*text).value_or(json ? Framework::DeepSpeed : Framework::Megatron);
    if (fw == Framework::Horovod)
        return importHorovodLine(o, *text, cluster);
    if (fw != Framework::Megatron)
        return importThrough(o, *text, cluster, fw);
    auto in = importMegatronWithYaml(*text, o.input, cluster ? cluster->deviceCount() : 0);
    if (!in)
        return fail(in.error());
    if (!o.modelOut.empty())
        if (int rc = writeText(o.modelOut, modelToJson(in->model), false); rc != 0)
            return rc;
    if (int rc = writeText(o.out, strategyToJson(in->strategy), false); rc != 0)
        return rc;
    if (o.out.empty())
        return 0;
    std::cout << "Model      " << in->model.name << ", " << withThousands(in->model.parameterCount())
              << " parameters, sequence " << in->seq_len << "\n"
              << "Strategy   dp " << in->strategy.dp << " x tp " << in->strategy.tp << " x cp " << in->strategy.cp
              << " x pp " << in->strategy.pp << " on " << in->world << " GPUs, written to " << o.out << "\n";
    for (const auto& n : in->notes)
        std::cout << "note: " << n << "\n";
    return cluster ? printPrediction(in->model, *cluster, in->strategy, in->seq_len) : 0;
}


namespace {

// The strategy a configuration runs, and its model, for the prediction.
struct Configured
{
    Model model;
    Strategy strategy;
    int64_t seq = 0;
};

Result<Configured> configured(const LintCliOptions& o, const std::string& text, Framework fw, const Cluster& c)
{
    Configured out;
    auto in = importFramework(fw, text, o.input, c.deviceCount());
    if (!in)
        return in.error();
    if (in->model) {
        out.model = *in->model;
        out.seq = in->seq_len;
    } else {
        if (o.model.empty())
            return Error{o.input, "--model",
                         std::string(frameworkTitle(fw)) + "'s configuration does not say the model: give --model for a prediction"};
        auto m = loadModel(o.model);
        if (!m)
            return m.error();
        out.model = *m;
    }
    out.strategy = in->strategy;
    return out;
}

std::vector<LintFinding> lintFor(Framework fw, const std::string& text, int world)
{
    switch (fw) {
    case Framework::DeepSpeed: return lintDeepSpeed(text, world);
    case Framework::Torchtitan: return lintTorchtitan(text, world);
    case Framework::Accelerate: return lintAccelerate(text, world);
    default: return lintMegatron(text, world);
    }
}

} // namespace

int runLintConfig(const LintCliOptions& o)
{
    auto text = readTextFile(o.input);
    if (!text)
        return fail(text.error());
    const size_t first = text->find_first_not_of(" \t\r\n");
    const bool json = first != std::string::npos && (*text)[first] == '{';
    const Framework fw = o.format != "auto" ? formatOf(o.format)
                                            : detectFramework(*text).value_or(json ? Framework::DeepSpeed : Framework::Megatron);
    if (fw == Framework::Horovod || fw == Framework::PyTorch)
        return fail(Error{o.input, "--format", std::string(frameworkTitle(fw)) +
                                                   ": lint-config reads Megatron-LM, DeepSpeed, torchtitan and accelerate "
                                                   "configurations (import-config reads this one)"});
    std::optional<Cluster> cluster;
    if (!o.cluster.empty()) {
        auto c = loadCluster(o.cluster, ClusterLoadOptions{o.device, o.nodeTemplate});
        if (!c)
            return fail(c.error());
        cluster = *c;
    }
    const int world = cluster ? cluster->deviceCount() : 0;
    if (fw == Framework::Megatron) { // a YAML configuration, or --yaml-cfg: the arguments Megatron-LM reads
        auto command = megatronCommand(*text, o.input);
        if (!command)
            return fail(command.error());
        *text = *command;
    }
    const auto findings = lintFor(fw, *text, world);
    const std::string framework(frameworkTitle(fw));
    int refused = 0;
    for (const auto& f : findings) {
        const bool r = f.kind == LintFinding::Kind::Refused;
        refused += r;
        std::cout << o.input << ": " << f.where << ": " << (r ? framework + " refuses it: " : "runs, but not as written: ")
                  << f.message << " (fix: " << f.fix << ")\n";
    }
    if (findings.empty())
        std::cout << o.input << ": " << framework << " accepts it\n";
    if (!cluster) {
        std::cout << "(give --cluster for the data-parallel rules and a prediction)\n";
        return refused ? 1 : 0;
    }
    if (refused)
        return 1;
    auto cfg = configured(o, *text, fw, *cluster);
    if (!cfg)
        return fail(cfg.error());
    SimOptions so;
    so.seq_len = cfg->seq;
    auto r = simulate(cfg->model, *cluster, cfg->strategy, so);
    if (!r)
        return fail(r.error());
    std::cout << "Partita predicts " << r->step_time << " s per step on " << cluster->name << ", peak memory "
              << r->memory.peak / 1073741824.0 << " GiB per GPU of " << r->memory.capacity / 1073741824.0 << "\n";
    if (r->oom)
        std::cout << o.input << ": the job runs out of GPU memory on " << cluster->name
                  << " (fix: more model parallelism, recomputation or ZeRO; see the suggestion below)\n";
    SearchOptions sopt;
    sopt.global_batch = cfg->strategy.global_batch;
    sopt.seq_len = cfg->seq;
    sopt.precision = cfg->strategy.precision;
    sopt.budget_s = o.searchSeconds;
    sopt.threads = 2;
    if (o.searchSeconds > 0) {
        auto best = searchStrategy(cfg->model, *cluster, sopt);
        if (best && best->best.step_time > 0 && (r->oom || best->best.step_time < 0.99 * r->step_time))
            std::cout << "Suggestion (" << o.searchSeconds << " s of search): " << best->best.step_time << " s per step ("
                      << (r->oom ? "fits" : std::to_string(r->step_time / best->best.step_time).substr(0, 4) + "x faster")
                      << "), written as its difference from the best preset: " << best->best.explanation << "\n";
        else if (best)
            std::cout << "The search found nothing 1 % faster in " << o.searchSeconds << " s.\n";
    }
    return r->oom ? 1 : 0;
}

} // namespace partita::cli
