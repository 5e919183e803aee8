// The execution plan's JSON (docs/formats.md, "Execution plan JSON"): what
// partita-worker reads, written and read back field by field.
#include "partita/core/plan.h"

#include "jsonread.h"

#include <algorithm>
#include <map>

namespace partita {

using detail::json;
using detail::sub;

// ---- JSON ---------------------------------------------------------------------

namespace {

template <class E>
E readNamed(const json& j, const std::string& path, std::string_view (*nameOf)(E), int count)
{
    const std::string s = detail::asString(j, path);
    for (int i = 0; i < count; ++i)
        if (nameOf(E(i)) == s)
            return E(i);
    throw detail::FieldError(path, "unknown value '" + s + "'");
}

json writeKernel(const Kernel& k)
{
    json j{{"layer", k.layer}, {"kind", kernelKindName(k.kind)}};
    if (k.kind == KernelKind::Collective) {
        j["collective"] = collectiveName(k.coll);
        j["bytes"] = k.coll_bytes;
        j["group"] = kernelGroupName(k.group);
        if (k.overlapped)
            j["overlapped"] = true;
        return j;
    }
    j["flops"] = k.flops;
    j["ops"] = k.ops;
    j["bytes"] = k.bytes;
    j["mem_ops"] = k.mem_ops;
    if (k.m || k.n || k.k)
        j["shape"] = {k.batch, k.m, k.n, k.k};
    return j;
}

Kernel readKernel(const json& j, const std::string& path)
{
    Kernel k;
    k.layer = int32_t(detail::getInt(j, "layer", path, -1, 1 << 30));
    k.kind = readNamed<KernelKind>(detail::field(j, "kind", path), sub(path, "kind"), kernelKindName, 4);
    if (k.kind == KernelKind::Collective) {
        k.coll = readNamed<Collective>(detail::field(j, "collective", path), sub(path, "collective"),
                                       collectiveName, 6);
        k.coll_bytes = detail::asNumber(detail::field(j, "bytes", path), sub(path, "bytes"), 0, 1e18);
        if (detail::optField(j, "group"))
            k.group = readNamed<KernelGroup>(detail::field(j, "group", path), sub(path, "group"), kernelGroupName, 3);
        k.overlapped = detail::getBoolOr(j, "overlapped", path, false);
        k.ops = 0;
        return k;
    }
    k.flops = detail::getNumberOr(j, "flops", path, 0, 1e24, 0);
    k.ops = int(detail::getIntOr(j, "ops", path, 0, 1 << 20, 1));
    k.bytes = detail::getNumberOr(j, "bytes", path, 0, 1e18, 0);
    k.mem_ops = int(detail::getIntOr(j, "mem_ops", path, 0, 1 << 20, 0));
    if (const json* sh = detail::optField(j, "shape")) {
        const std::string sp = sub(path, "shape");
        detail::asArray(*sh, sp);
        if (sh->size() != 4)
            throw detail::FieldError(sp, "expected [batch, m, n, k]");
        k.batch = detail::asInt((*sh)[0], sub(sp, size_t(0)), 1, int64_t(1) << 40);
        k.m = detail::asInt((*sh)[1], sub(sp, size_t(1)), 0, int64_t(1) << 40);
        k.n = detail::asInt((*sh)[2], sub(sp, size_t(2)), 0, int64_t(1) << 40);
        k.k = detail::asInt((*sh)[3], sub(sp, size_t(3)), 0, int64_t(1) << 40);
    }
    return k;
}

} // namespace

std::string planToJson(const Plan& p)
{
    json j;
    j["partita_plan"] = 1;
    j["strategy"] = p.strategy;
    j["world"] = p.world;
    j["mesh"] = {{"dp", p.dp}, {"tp", p.tp}, {"pp", p.pp}, {"ep", p.ep}, {"cp", p.cp}};
    j["virtual_stages"] = p.virtual_stages;
    j["micro_batches"] = p.micro_batches;
    j["micro_batch"] = p.micro_batch;
    j["seq_len"] = p.seq_len;
    j["precision"] = precisionName(p.precision);
    j["activation_bytes"] = p.activation_bytes;
    j["gradient_bytes"] = p.gradient_bytes;
    j["zero_stage"] = p.zero_stage;
    json programs = json::array();
    for (const auto& pr : p.programs) {
        json ks = json::array();
        for (const auto& k : pr.kernels)
            ks.push_back(writeKernel(k));
        programs.push_back({{"virtual_stage", pr.virtual_stage},
                            {"phase", phaseName(pr.phase)},
                            {"params", pr.params},
                            {"kernels", std::move(ks)}});
    }
    j["programs"] = std::move(programs);
    j["layer_names"] = p.layer_names;
    json classes = json::array();
    for (const auto& rc : p.classes) {
        json steps = json::array();
        for (const auto& st : rc.steps) {
            json sj{{"kind", stepKindName(st.kind)}};
            switch (st.kind) {
            case StepKind::Run:
                sj["program"] = st.program;
                sj["micro"] = st.micro;
                break;
            case StepKind::Send:
            case StepKind::Recv:
                sj["peer"] = st.peer;
                sj["micro"] = st.micro;
                sj["bytes"] = st.bytes;
                break;
            case StepKind::Sync:
                sj["method"] = syncMethodName(st.method);
                sj["algorithm"] = allReduceAlgoName(st.algorithm);
                sj["layers"] = st.layers;
                sj["bytes"] = st.bytes;
                if (st.sparse)
                    sj["sparse"] = true;
                if (st.shards > 0)
                    sj["shards"] = st.shards;
                break;
            case StepKind::Optimizer:
                break;
            }
            steps.push_back(std::move(sj));
        }
        classes.push_back({{"stage", rc.stage},
                           {"first_rank", rc.first_rank},
                           {"count", rc.count},
                           {"parameters", rc.parameters},
                           {"steps", std::move(steps)}});
    }
    j["classes"] = std::move(classes);
    return j.dump(1) + "\n";
}

namespace {

// Reads the plan's scalar settings: strategy, world, mesh, batches, precision and ZeRO stage.
void readPlanSettings(const json& j, Plan& p)
{
    p.strategy = detail::getStringOr(j, "strategy", "", {});
    p.world = int(detail::getInt(j, "world", "", 1, 1 << 24));
    const json& mesh = detail::asObject(detail::field(j, "mesh", ""), "/mesh");
    p.dp = int(detail::getInt(mesh, "dp", "/mesh", 1, 1 << 24));
    p.tp = int(detail::getInt(mesh, "tp", "/mesh", 1, 1 << 16));
    p.pp = int(detail::getInt(mesh, "pp", "/mesh", 1, 1 << 16));
    p.ep = int(detail::getInt(mesh, "ep", "/mesh", 1, 1 << 16));
    p.cp = int(detail::getIntOr(mesh, "cp", "/mesh", 1, 1 << 16, 1));
    if (int64_t(p.dp) * p.tp * p.pp * p.cp != p.world)
        throw detail::FieldError("/mesh", "dp x tp x cp x pp differs from world");
    p.virtual_stages = int(detail::getInt(j, "virtual_stages", "", 1, 1 << 20));
    p.micro_batches = detail::getInt(j, "micro_batches", "", 1, int64_t(1) << 32);
    p.micro_batch = detail::getInt(j, "micro_batch", "", 1, int64_t(1) << 32);
    p.seq_len = detail::getInt(j, "seq_len", "", 1, int64_t(1) << 24);
    const std::string prec = detail::getString(j, "precision", "");
    p.precision = prec == "fp32"   ? Precision::FP32
                  : prec == "fp16" ? Precision::FP16
                  : prec == "fp8"  ? Precision::FP8
                                   : Precision::BF16;
    if (prec != "fp32" && prec != "fp16" && prec != "bf16" && prec != "fp8")
        throw detail::FieldError("/precision", "unknown precision '" + prec + "'");
    p.activation_bytes = int(detail::getInt(j, "activation_bytes", "", 1, 8));
    p.gradient_bytes = int(detail::getInt(j, "gradient_bytes", "", 1, 8));
    p.zero_stage = int(detail::getInt(j, "zero_stage", "", 0, 3));
}

// Reads the layers' names where the plan has them.
void readLayerNames(const json& j, Plan& p)
{
    if (j.contains("layer_names")) { // optional: plans written before it name no layers
        const json& names = detail::asArray(j.at("layer_names"), "/layer_names");
        for (size_t i = 0; i < names.size(); ++i) {
            if (!names[i].is_string())
                throw detail::FieldError("/layer_names/" + std::to_string(i), "expected a string");
            p.layer_names.push_back(names[i].get<std::string>());
        }
    }
}

// Reads one program (at `pp`) of the plan `p`: its virtual stage, phase, parameters and kernels.
Program readProgram(const json& pj, const std::string& pp, const Plan& p)
{
    Program pr;
    pr.virtual_stage = int(detail::getInt(pj, "virtual_stage", pp, 0, p.virtual_stages - 1));
    pr.phase = readNamed<Phase>(detail::field(pj, "phase", pp), sub(pp, "phase"), phaseName, 3);
    pr.params = detail::getNumberOr(pj, "params", pp, 0, 1e18, 0);
    const json& ks = detail::asArray(detail::field(pj, "kernels", pp), sub(pp, "kernels"));
    for (size_t k = 0; k < ks.size(); ++k)
        pr.kernels.push_back(readKernel(ks[k], sub(sub(pp, "kernels"), k)));
    return pr;
}

// Reads one step (at `sp`) of a rank class, checking its program, micro-batch and peer against the plan `p`.
Step readStep(const json& sj, const std::string& sp, const Plan& p)
{
    Step st;
    st.kind = readNamed<StepKind>(detail::field(sj, "kind", sp), sub(sp, "kind"), stepKindName, 5);
    switch (st.kind) {
    case StepKind::Run:
        st.program = int(detail::getInt(sj, "program", sp, 0, int64_t(p.programs.size()) - 1));
        st.micro = int(detail::getInt(sj, "micro", sp, 0, p.micro_batches - 1));
        break;
    case StepKind::Send:
    case StepKind::Recv:
        st.peer = int(detail::getInt(sj, "peer", sp, 0, p.pp - 1));
        st.micro = int(detail::getInt(sj, "micro", sp, 0, p.micro_batches - 1));
        st.bytes = detail::asNumber(detail::field(sj, "bytes", sp), sub(sp, "bytes"), 0, 1e18);
        break;
    case StepKind::Sync: {
        st.method = readNamed<SyncMethod>(detail::field(sj, "method", sp), sub(sp, "method"), syncMethodName, 4);
        st.algorithm =
            readNamed<AllReduceAlgo>(detail::field(sj, "algorithm", sp), sub(sp, "algorithm"), allReduceAlgoName, 3);
        const json& ls = detail::asArray(detail::field(sj, "layers", sp), sub(sp, "layers"));
        for (size_t q = 0; q < ls.size(); ++q)
            st.layers.push_back(int32_t(detail::asInt(ls[q], sub(sub(sp, "layers"), q), 0, 1 << 30)));
        st.bytes = detail::getNumberOr(sj, "bytes", sp, 0, 1e18, 0);
        st.sparse = detail::getBoolOr(sj, "sparse", sp, false);
        st.shards = int(detail::getIntOr(sj, "shards", sp, 0, 1 << 20, 0));
        break;
    }
    case StepKind::Optimizer:
        break;
    }
    return st;
}

// Reads one rank class (at `cp`) of the plan `p`: its stage, ranks, parameters and steps.
RankClass readRankClass(const json& cj, const std::string& cp, const Plan& p)
{
    RankClass rc;
    rc.stage = int(detail::getInt(cj, "stage", cp, 0, p.pp - 1));
    rc.first_rank = int(detail::getInt(cj, "first_rank", cp, 0, p.world - 1));
    rc.count = int(detail::getInt(cj, "count", cp, 1, p.world));
    rc.parameters = detail::getNumberOr(cj, "parameters", cp, 0, 1e18, 0);
    const json& steps = detail::asArray(detail::field(cj, "steps", cp), sub(cp, "steps"));
    for (size_t k = 0; k < steps.size(); ++k)
        rc.steps.push_back(readStep(steps[k], sub(sub(cp, "steps"), k), p));
    return rc;
}

} // namespace

Result<Plan> planFromJson(const std::string& text, const std::string& file)
{
    return detail::readDocument<Plan>(text, file, "partita_plan", 1, [&](const json& j) -> Result<Plan> {
        Plan p;
        readPlanSettings(j, p);
        readLayerNames(j, p);
        const json& programs = detail::asArray(detail::field(j, "programs", ""), "/programs");
        for (size_t i = 0; i < programs.size(); ++i)
            p.programs.push_back(readProgram(programs[i], sub("/programs", i), p));
        const json& classes = detail::asArray(detail::field(j, "classes", ""), "/classes");
        if (int(classes.size()) != p.pp)
            throw detail::FieldError("/classes", "expected one rank class per pipeline stage");
        for (size_t i = 0; i < classes.size(); ++i)
            p.classes.push_back(readRankClass(classes[i], sub("/classes", i), p));
        return p;
    });
}

} // namespace partita
