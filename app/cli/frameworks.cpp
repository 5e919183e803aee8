#include "frameworks.h"

#include "common.h"

#include "partita/core/clusterio.h"
#include "partita/core/megatron.h"
#include "partita/core/modelio.h"
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

int runExport(const ExportCliOptions& o)
{
    auto in = loadStrategyInputs(o.base);
    if (!in)
        return fail(in.error());
    const Model* model = &in->model;
    const Cluster* cluster = &in->cluster;
    const Strategy* strategy = &in->strategy;
    ExportHeader h;
    h.version = PARTITA_VERSION_STRING;
    h.strategy = strategy->name;
    h.cluster = cluster->name;
    auto asked = predict(*model, *cluster, *strategy, o.base.seqLen);
    if (!asked)
        return fail(asked.error());
    h.step_time_s = asked->step_time;
    h.peak_memory_bytes = asked->memory.peak;
    auto ex = exportMegatron(*model, *cluster, *strategy, o.base.seqLen, h, o.closest);
    if (!ex)
        return fail(ex.error());
    if (!ex->differences.empty()) {
        // The closest strategy is another one: predict it too, and say how they differ.
        auto near = predict(*model, *cluster, ex->exported, o.base.seqLen);
        if (!near)
            return fail(near.error());
        h.step_time_s = near->step_time;
        h.peak_memory_bytes = near->memory.peak;
        ex = exportMegatron(*model, *cluster, *strategy, o.base.seqLen, h, true); // the header names the closest's prediction
        if (!ex)
            return fail(ex.error());
        std::cerr << "Megatron-LM cannot run strategy '" << strategy->name << "' as it is; the closest it can:\n";
        for (const auto& d : megatronRefusals(*model, *strategy))
            std::cerr << "  was: " << d << "\n";
        std::cerr << "  predicted step time " << asked->step_time << " s -> " << near->step_time << " s, peak memory "
                  << asked->memory.peak / 1073741824.0 << " -> " << near->memory.peak / 1073741824.0 << " GiB\n";
    }
    return writeText(o.out, ex->script, true);
}

int runImportConfig(const ImportCliOptions& o)
{
    auto text = readTextFile(o.input);
    if (!text)
        return fail(text.error());
    if (o.format != "auto" && o.format != "megatron")
        return fail(Error{o.input, "--format", "'" + o.format + "' is not read yet (megatron)"});
    int world = 0;
    std::optional<Cluster> cluster;
    if (!o.cluster.empty()) {
        auto c = loadCluster(o.cluster, ClusterLoadOptions{o.device, o.nodeTemplate});
        if (!c)
            return fail(c.error());
        cluster = *c;
        world = c->deviceCount();
    }
    auto in = importMegatron(*text, o.input, world);
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
    if (cluster) {
        auto r = predict(in->model, *cluster, in->strategy, in->seq_len);
        if (!r)
            return fail(r.error());
        std::cout << "Predicted  " << r->step_time << " s per step on " << cluster->name << ", peak memory "
                  << r->memory.peak / 1073741824.0 << " GiB per GPU" << (r->oom ? " (OUT OF MEMORY)" : "") << "\n";
    }
    return 0;
}

} // namespace partita::cli
