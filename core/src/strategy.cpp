#include "partita/core/strategy.h"

#include "jsonread.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <set>
#include <unordered_map>

namespace partita {

using detail::json;
using detail::sub;

namespace {

template <class E, size_t N>
using Names = std::array<std::pair<E, std::string_view>, N>;

constexpr Names<Precision, 4> kPrecision{
    {{Precision::FP32, "fp32"}, {Precision::FP16, "fp16"}, {Precision::BF16, "bf16"}, {Precision::FP8, "fp8"}}};
constexpr Names<PipelineSchedule, 3> kSchedule{{{PipelineSchedule::GPipe, "gpipe"},
                                                {PipelineSchedule::OneFOneB, "1f1b"},
                                                {PipelineSchedule::Interleaved, "interleaved"}}};
constexpr Names<Recompute, 3> kRecompute{
    {{Recompute::None, "none"}, {Recompute::Selective, "selective"}, {Recompute::Full, "full"}}};
constexpr Names<Attention, 3> kAttention{
    {{Attention::Fused, "fused"}, {Attention::Unfused, "unfused"}, {Attention::Flash2, "flash2"}}};
constexpr Names<ContextComm, 2> kContextComm{{{ContextComm::P2P, "p2p"}, {ContextComm::AllGather, "all_gather"}}};
constexpr Names<SyncMethod, 4> kSync{{{SyncMethod::AllReduce, "allreduce"},
                                      {SyncMethod::ParameterServer, "ps"},
                                      {SyncMethod::SFB, "sfb"},
                                      {SyncMethod::None, "none"}}};
constexpr Names<AllReduceAlgo, 3> kAlgo{{{AllReduceAlgo::Ring, "ring"},
                                         {AllReduceAlgo::Tree, "tree"},
                                         {AllReduceAlgo::Hierarchical, "hierarchical"}}};
constexpr Names<Compression, 3> kCompression{
    {{Compression::None, "none"}, {Compression::FP16, "fp16"}, {Compression::PowerSGD, "powersgd"}}};
constexpr Names<TpRole, 4> kTpRole{{{TpRole::Auto, "auto"},
                                    {TpRole::Replicated, "replicated"},
                                    {TpRole::Column, "column"},
                                    {TpRole::Row, "row"}}};
constexpr Names<PsPlacement, 3> kPlacement{{{PsPlacement::LoadBalanced, "load-balanced"},
                                            {PsPlacement::RoundRobin, "round-robin"},
                                            {PsPlacement::SingleServer, "single"}}};

template <class E, size_t N>
std::string_view nameOf(const Names<E, N>& names, E e)
{
    for (const auto& [v, n] : names)
        if (v == e)
            return n;
    return "?";
}

template <class E, size_t N>
E readEnum(const Names<E, N>& names, const json& j, const std::string& path)
{
    const std::string s = detail::asString(j, path);
    for (const auto& [v, n] : names)
        if (n == s)
            return v;
    std::string known;
    for (const auto& [v, n] : names)
        known += (known.empty() ? "" : ", ") + std::string(n);
    throw detail::FieldError(path, "unknown value '" + s + "' (expected " + known + ")");
}

SyncAtom readAtom(const json& j, const std::string& path, SyncAtom a)
{
    detail::asObject(j, path);
    static const std::set<std::string> kKeys{
        "method",       "algorithm",         "bucket",    "compression", "powersgd_rank", "ps_shards",
        "ps_placement", "local_replication", "staleness", "sparse"};
    for (const auto& [k, v] : j.items())
        if (!kKeys.count(k))
            throw detail::FieldError(sub(path, k.c_str()), "unknown field '" + k + "'");
    if (const json* v = detail::optField(j, "method"))
        a.method = readEnum(kSync, *v, sub(path, "method"));
    if (const json* v = detail::optField(j, "algorithm"))
        a.algorithm = readEnum(kAlgo, *v, sub(path, "algorithm"));
    a.bucket = int(detail::getIntOr(j, "bucket", path, -1, 1 << 20, a.bucket));
    if (const json* v = detail::optField(j, "compression"))
        a.compression = readEnum(kCompression, *v, sub(path, "compression"));
    a.powersgd_rank = int(detail::getIntOr(j, "powersgd_rank", path, 1, 1 << 16, a.powersgd_rank));
    a.ps_shards = int(detail::getIntOr(j, "ps_shards", path, 0, 1 << 20, a.ps_shards));
    if (const json* v = detail::optField(j, "ps_placement"))
        a.ps_placement = readEnum(kPlacement, *v, sub(path, "ps_placement"));
    a.ps_local_replication = detail::getBoolOr(j, "local_replication", path, a.ps_local_replication);
    a.staleness = int(detail::getIntOr(j, "staleness", path, 0, 1 << 20, a.staleness));
    a.sparse = detail::getBoolOr(j, "sparse", path, a.sparse);
    return a;
}

json writeAtom(const SyncAtom& a)
{
    return json{{"method", nameOf(kSync, a.method)},
                {"algorithm", nameOf(kAlgo, a.algorithm)},
                {"bucket", a.bucket},
                {"compression", nameOf(kCompression, a.compression)},
                {"powersgd_rank", a.powersgd_rank},
                {"ps_shards", a.ps_shards},
                {"ps_placement", nameOf(kPlacement, a.ps_placement)},
                {"local_replication", a.ps_local_replication},
                {"staleness", a.staleness},
                {"sparse", a.sparse}};
}

} // namespace

std::string_view precisionName(Precision p)
{
    return nameOf(kPrecision, p);
}

Precision defaultPrecision(const Cluster& c)
{
    if (c.nodes.empty() || c.nodes.front().devices.empty())
        return Precision::BF16;
    const auto& peaks = c.nodes.front().devices.front().peak_flops;
    return peaks.count("bf16") ? Precision::BF16 : peaks.count("fp16") ? Precision::FP16 : Precision::FP32;
}
std::string_view scheduleName(PipelineSchedule s)
{
    return nameOf(kSchedule, s);
}
std::string_view recomputeName(Recompute r)
{
    return nameOf(kRecompute, r);
}
std::string_view attentionName(Attention a)
{
    return nameOf(kAttention, a);
}
std::string_view contextCommName(ContextComm c)
{
    return nameOf(kContextComm, c);
}
std::string_view syncMethodName(SyncMethod m)
{
    return nameOf(kSync, m);
}
std::string_view allReduceAlgoName(AllReduceAlgo a)
{
    return nameOf(kAlgo, a);
}
std::string_view compressionName(Compression c)
{
    return nameOf(kCompression, c);
}
std::string_view tpRoleName(TpRole r)
{
    return nameOf(kTpRole, r);
}
std::string_view psPlacementName(PsPlacement p)
{
    return nameOf(kPlacement, p);
}

bool globMatch(std::string_view pattern, std::string_view text)
{
    // Iterative wildcard match with backtracking to the last '*'.
    size_t p = 0, t = 0, star = std::string_view::npos, mark = 0;
    while (t < text.size()) {
        if (p < pattern.size() && (pattern[p] == '?' || pattern[p] == text[t])) {
            ++p;
            ++t;
        } else if (p < pattern.size() && pattern[p] == '*') {
            star = p++;
            mark = t;
        } else if (star != std::string_view::npos) {
            p = star + 1;
            t = ++mark;
        } else {
            return false;
        }
    }
    while (p < pattern.size() && pattern[p] == '*')
        ++p;
    return p == pattern.size();
}

std::string strategyToJson(const Strategy& s)
{
    json j;
    j["partita_strategy"] = 1;
    j["name"] = s.name;
    j["precision"] = nameOf(kPrecision, s.precision);
    j["fp32_grad_accumulation"] = s.fp32_grad_accumulation;
    j["global_batch"] = s.global_batch;
    j["micro_batch"] = s.micro_batch;
    j["mesh"] = {{"dp", s.dp}, {"tp", s.tp}, {"pp", s.pp}, {"ep", s.ep}, {"cp", s.cp}};
    if (s.cp > 1)
        j["cp_comm"] = nameOf(kContextComm, s.cp_comm);
    j["schedule"] = nameOf(kSchedule, s.schedule);
    j["interleave"] = s.interleave;
    if (s.first_stage_blocks > 0)
        j["first_stage_blocks"] = s.first_stage_blocks;
    if (s.last_stage_blocks > 0)
        j["last_stage_blocks"] = s.last_stage_blocks;
    j["recompute"] = nameOf(kRecompute, s.recompute);
    j["attention"] = nameOf(kAttention, s.attention);
    j["sequence_parallel"] = s.sequence_parallel;
    if (s.tp_comm_overlap)
        j["tp_comm_overlap"] = true;
    if (!s.overlap_grad_reduce)
        j["overlap_grad_reduce"] = false;
    if (s.overlap_param_gather)
        j["overlap_param_gather"] = true;
    j["zero_stage"] = s.zero_stage;
    j["bucket_bytes"] = s.bucket_bytes;
    j["sync"] = writeAtom(s.sync);
    json layers = json::array();
    for (const auto& o : s.layers) {
        json lj{{"match", o.pattern}};
        if (o.sync)
            lj["sync"] = writeAtom(*o.sync);
        if (o.tp_role)
            lj["tp"] = nameOf(kTpRole, *o.tp_role);
        if (o.stage)
            lj["stage"] = *o.stage;
        if (o.recompute)
            lj["recompute"] = nameOf(kRecompute, *o.recompute);
        layers.push_back(std::move(lj));
    }
    j["layers"] = std::move(layers);
    return j.dump(1) + "\n";
}

Result<Strategy> strategyFromJson(const std::string& text, const std::string& file)
{
    return detail::readDocument<Strategy>(
        text, file, "partita_strategy", 1, [&](const json& j) -> Result<Strategy> {
            Strategy s;
            s.name = detail::getStringOr(j, "name", "", {});
            if (const json* v = detail::optField(j, "precision"))
                s.precision = readEnum(kPrecision, *v, "/precision");
            s.fp32_grad_accumulation = detail::getBoolOr(j, "fp32_grad_accumulation", "", false);
            s.global_batch = detail::getInt(j, "global_batch", "", 1, int64_t(1) << 32);
            s.micro_batch = detail::getIntOr(j, "micro_batch", "", 1, int64_t(1) << 32, 1);
            if (const json* m = detail::optField(j, "mesh")) {
                detail::asObject(*m, "/mesh");
                s.dp = int(detail::getIntOr(*m, "dp", "/mesh", 1, 1 << 24, 1));
                s.tp = int(detail::getIntOr(*m, "tp", "/mesh", 1, 1 << 16, 1));
                s.pp = int(detail::getIntOr(*m, "pp", "/mesh", 1, 1 << 16, 1));
                s.ep = int(detail::getIntOr(*m, "ep", "/mesh", 1, 1 << 16, 1));
                s.cp = int(detail::getIntOr(*m, "cp", "/mesh", 1, 1 << 16, 1));
            }
            if (const json* v = detail::optField(j, "cp_comm"))
                s.cp_comm = readEnum(kContextComm, *v, "/cp_comm");
            if (const json* v = detail::optField(j, "schedule"))
                s.schedule = readEnum(kSchedule, *v, "/schedule");
            s.interleave = int(detail::getIntOr(j, "interleave", "", 1, 1024, 1));
            s.first_stage_blocks = int(detail::getIntOr(j, "first_stage_blocks", "", 0, 1 << 20, 0));
            s.last_stage_blocks = int(detail::getIntOr(j, "last_stage_blocks", "", 0, 1 << 20, 0));
            if (const json* v = detail::optField(j, "recompute"))
                s.recompute = readEnum(kRecompute, *v, "/recompute");
            if (const json* v = detail::optField(j, "attention"))
                s.attention = readEnum(kAttention, *v, "/attention");
            s.sequence_parallel = detail::getBoolOr(j, "sequence_parallel", "", false);
            s.tp_comm_overlap = detail::getBoolOr(j, "tp_comm_overlap", "", false);
            s.overlap_grad_reduce = detail::getBoolOr(j, "overlap_grad_reduce", "", true);
            s.overlap_param_gather = detail::getBoolOr(j, "overlap_param_gather", "", false);
            s.zero_stage = int(detail::getIntOr(j, "zero_stage", "", 0, 3, 0));
            s.bucket_bytes = detail::getIntOr(j, "bucket_bytes", "", 1, int64_t(1) << 40, s.bucket_bytes);
            if (const json* v = detail::optField(j, "sync"))
                s.sync = readAtom(*v, "/sync", s.sync);
            if (const json* ls = detail::optField(j, "layers")) {
                detail::asArray(*ls, "/layers");
                for (size_t i = 0; i < ls->size(); ++i) {
                    const std::string p = sub("/layers", i);
                    const json& lj = (*ls)[i];
                    detail::asObject(lj, p);
                    LayerOverride o;
                    o.pattern = detail::getString(lj, "match", p);
                    if (o.pattern.empty())
                        throw detail::FieldError(sub(p, "match"), "empty pattern");
                    if (const json* v = detail::optField(lj, "sync"))
                        o.sync = readAtom(*v, sub(p, "sync"), s.sync);
                    if (const json* v = detail::optField(lj, "tp"))
                        o.tp_role = readEnum(kTpRole, *v, sub(p, "tp"));
                    if (detail::optField(lj, "stage"))
                        o.stage = int(detail::getInt(lj, "stage", p, 0, 1 << 20));
                    if (const json* v = detail::optField(lj, "recompute"))
                        o.recompute = readEnum(kRecompute, *v, sub(p, "recompute"));
                    s.layers.push_back(std::move(o));
                }
            }
            return s;
        });
}

namespace {

TpRole autoRole(const Model& m, const Layer& l, const std::unordered_map<std::string_view, size_t>& indexOf)
{
    auto inputKind = [&](LayerKind k) {
        for (const auto& in : l.inputs)
            if (auto it = indexOf.find(in); it != indexOf.end() && m.layers[it->second].kind == k)
                return true;
        return false;
    };
    switch (l.kind) {
    case LayerKind::Linear:
        return inputKind(LayerKind::AttentionCore) || inputKind(LayerKind::Activation) ? TpRole::Row
                                                                                       : TpRole::Column;
    case LayerKind::LMHead:
    case LayerKind::AttentionCore:
    case LayerKind::Activation:
        return TpRole::Column;
    case LayerKind::Embedding:  // vocabulary-parallel: partial outputs are summed
    case LayerKind::MoEExperts: // each expert's FFN split as a column/row pair
        return TpRole::Row;
    default:
        return TpRole::Replicated;
    }
}

std::string layerAt(const Layer& l)
{
    return "layer '" + l.name + "'";
}

} // namespace

namespace {

// The stage of each of `blocks` transformer blocks over V virtual stages:
// even, or the first and last stages given their counts and the rest split
// evenly between (Megatron-LM's uneven first and last pipeline stages).
Result<std::vector<int>> stagesOfBlocks(const Strategy& s, int blocks, int V)
{
    std::vector<int> stage(size_t(blocks), 0);
    const int first = s.first_stage_blocks, last = s.last_stage_blocks;
    if (first == 0 && last == 0) {
        for (int b = 0; b < blocks; ++b)
            stage[size_t(b)] = int(int64_t(b) * V / blocks);
        return stage;
    }
    const std::string where = s.name.empty() ? "strategy" : "strategy '" + s.name + "'";
    if (s.interleave > 1)
        return Error{where, "first_stage_blocks/last_stage_blocks", "uneven first and last stages need interleave = 1"};
    const int middleStages = V - 2, middle = blocks - first - last;
    if (first < 1 || last < 1 || middle < 0 || (middleStages == 0 && middle != 0) ||
        (middleStages > 0 && (middle < middleStages || middle % middleStages != 0)))
        return Error{where, "first_stage_blocks/last_stage_blocks",
                     std::to_string(first) + " blocks on the first stage and " + std::to_string(last) +
                         " on the last leave " + std::to_string(middle) + " of the model's " + std::to_string(blocks) +
                         " for the " + std::to_string(middleStages) +
                         " stages between: they must be given both, at least one each, and leave a multiple of "
                         "the stages between (at least one block each)"};
    for (int b = 0; b < blocks; ++b)
        stage[size_t(b)] = b < first ? 0 : b >= blocks - last ? V - 1 : 1 + (b - first) / (middle / middleStages);
    return stage;
}

} // namespace

namespace {

// A strategy resolved against a model and cluster, step by named step: the
// mesh and batch checks, the per-layer settings (defaults, then overrides
// in order), the tensor-parallel roles and what they need, then the
// pipeline stages. Each step fails with the place and the reason.
class Resolver
{
public:
    Resolver(const Strategy& s, const Model& m, const Cluster& c)
        : s(s), m(m), c(c), where(s.name.empty() ? "strategy" : "strategy '" + s.name + "'"), L(m.layers.size())
    {
        r.strategy = s;
    }
    ResolvedStrategy r;

    Result<bool> mesh();
    Result<bool> overrides();
    Result<bool> roles();
    Result<bool> stages();

private:
    Error fail(const std::string& place, const std::string& why) const { return Error{where, place, why}; }
    Result<bool> roleOf(size_t i);
    Result<std::vector<int>> defaultStages();

    const Strategy& s;
    const Model& m;
    const Cluster& c;
    const std::string where;
    const size_t L;
    std::unordered_map<std::string_view, size_t> indexOf;
    std::vector<int> explicitStage;
    std::vector<std::optional<TpRole>> role;
};

// The mesh against the cluster, the batches, the schedule and the flags that need each other.
Result<bool> Resolver::mesh()
{
    if (s.dp < 1 || s.tp < 1 || s.pp < 1 || s.cp < 1 || s.ep < 1 || s.interleave < 1)
        return fail("mesh", "every degree (dp, tp, pp, cp, ep, interleave) must be at least 1");
    if (s.micro_batch < 1 || s.global_batch < 1)
        return fail("global_batch", "the global batch and the micro-batch must be at least 1 sample");
    const int64_t world = int64_t(s.dp) * s.tp * s.pp * s.cp;
    if (world != c.deviceCount())
        return fail("mesh", (s.cp > 1 ? "dp x tp x cp x pp = " : "dp x tp x pp = ") + std::to_string(s.dp) + " x " +
                                std::to_string(s.tp) + " x " + (s.cp > 1 ? std::to_string(s.cp) + " x " : "") +
                                std::to_string(s.pp) + " = " + std::to_string(world) + ", but the cluster has " +
                                std::to_string(c.deviceCount()) + " devices");
    if (s.cp > 1 && !m.sequence)
        return fail("mesh", "context parallelism splits sequences, but model '" + m.name + "' has none");
    if (s.global_batch % (s.micro_batch * s.dp) != 0)
        return fail("global_batch",
                    "global batch " + std::to_string(s.global_batch) +
                        " is not a multiple of micro-batch x dp = " + std::to_string(s.micro_batch * s.dp));
    r.micro_batches = s.global_batch / (s.micro_batch * s.dp);
    const int chunks = s.schedule == PipelineSchedule::Interleaved ? s.interleave : 1;
    if (s.schedule == PipelineSchedule::Interleaved) {
        if (s.pp < 2)
            return fail("schedule", "the interleaved schedule needs pp >= 2");
        if (s.interleave < 2)
            return fail("interleave", "the interleaved schedule needs interleave >= 2 model chunks");
        if (r.micro_batches % s.pp != 0)
            return fail("schedule", "the interleaved schedule needs the micro-batch count (" +
                                        std::to_string(r.micro_batches) + ") to be a multiple of pp (" +
                                        std::to_string(s.pp) + ")");
    } else if (s.interleave != 1) {
        return fail("interleave", "interleave > 1 needs \"schedule\": \"interleaved\"");
    }
    r.virtual_stages = s.pp * chunks;
    if ((s.first_stage_blocks > 0 || s.last_stage_blocks > 0) && s.pp < 2)
        return fail("first_stage_blocks/last_stage_blocks", "uneven first and last stages need pipeline stages (pp > 1)");
    if (s.ep > 1) {
        if (s.dp % s.ep != 0)
            return fail("mesh", "expert-parallel degree " + std::to_string(s.ep) + " does not divide dp " +
                                    std::to_string(s.dp));
        if (m.dims.experts == 0)
            return fail("mesh", "ep > 1 but the model has no experts");
        if (m.dims.experts % s.ep != 0)
            return fail("mesh", "expert-parallel degree " + std::to_string(s.ep) + " does not divide " +
                                    std::to_string(m.dims.experts) + " experts");
    }
    if (s.sequence_parallel && s.tp == 1)
        r.warnings.push_back("sequence parallelism has no effect with tp = 1");
    if (s.tp_comm_overlap && (!s.sequence_parallel || s.tp == 1))
        return fail("tp_comm_overlap", "overlapping tensor-parallel communication with GEMMs needs tp > 1 and "
                                       "sequence parallelism (its all-gathers and reduce-scatters are what overlap)");
    if (s.overlap_param_gather && s.zero_stage != 1 && s.zero_stage != 2)
        return fail("overlap_param_gather", "overlapping the parameter all-gather needs a sharded optimizer "
                                            "(ZeRO stage 1 or 2: Megatron-LM's distributed optimizer)");
    const int perNode = c.nodes.empty() ? 1 : int(c.nodes.front().devices.size());
    if (s.tp > perNode)
        r.warnings.push_back("tensor-parallel groups of " + std::to_string(s.tp) + " span nodes of " +
                             std::to_string(perNode) + " devices");
    if (s.pp > 1 && r.micro_batches < s.pp)
        r.warnings.push_back("fewer micro-batches (" + std::to_string(r.micro_batches) +
                             ") than pipeline stages (" + std::to_string(s.pp) +
                             "): most of the step is bubble");
    return true;
}

// Per-layer settings: defaults, then overrides in order.
Result<bool> Resolver::overrides()
{
    indexOf.reserve(L);
    for (size_t i = 0; i < L; ++i)
        indexOf.emplace(m.layers[i].name, i);
    r.layers.resize(L);
    explicitStage.assign(L, -1);
    role.assign(L, std::nullopt);
    for (size_t i = 0; i < L; ++i) {
        r.layers[i].sync = s.sync;
        r.layers[i].recompute = s.recompute;
    }
    for (size_t k = 0; k < s.layers.size(); ++k) {
        const LayerOverride& o = s.layers[k];
        bool matched = false;
        const bool wildcard = o.pattern.find_first_of("*?") != std::string::npos;
        size_t first = 0, last = L;
        if (!wildcard) { // an exact name: one lookup instead of a scan
            auto it = indexOf.find(o.pattern);
            first = it == indexOf.end() ? L : it->second;
            last = it == indexOf.end() ? L : it->second + 1;
        }
        for (size_t i = first; i < last; ++i) {
            if (wildcard && !globMatch(o.pattern, m.layers[i].name))
                continue;
            matched = true;
            if (o.sync)
                r.layers[i].sync = *o.sync;
            if (o.tp_role)
                role[i] = *o.tp_role;
            if (o.stage)
                explicitStage[i] = *o.stage;
            if (o.recompute)
                r.layers[i].recompute = *o.recompute;
        }
        if (!matched)
            return fail("/layers/" + std::to_string(k) + "/match",
                        "pattern '" + o.pattern + "' matches no layer");
    }
    return true;
}

// Tensor-parallel roles and the divisibility they need.
Result<bool> Resolver::roles()
{
    for (size_t i = 0; i < L; ++i)
        if (auto ok = roleOf(i); !ok)
            return ok;
    return true;
}

Result<bool> Resolver::roleOf(size_t i)
{
    const Layer& l = m.layers[i];
    TpRole tr = role[i].value_or(TpRole::Auto);
    if (tr == TpRole::Auto)
        tr = s.tp > 1 ? autoRole(m, l, indexOf) : TpRole::Replicated;
    if (s.tp == 1)
        tr = TpRole::Replicated;
    if (tr != TpRole::Replicated) {
        if (l.kind == LayerKind::Conv || l.kind == LayerKind::Pool)
            return fail(layerAt(l),
                        "tensor parallelism of convolutions is not supported: mark it replicated");
        if (l.dims.heads && l.dims.heads % s.tp)
            return fail(layerAt(l), "tensor-parallel degree " + std::to_string(s.tp) +
                                        " does not divide its " + std::to_string(l.dims.heads) +
                                        " attention heads");
        if (l.dims.kv_heads && l.dims.kv_heads % s.tp)
            return fail(layerAt(l), "tensor-parallel degree " + std::to_string(s.tp) +
                                        " does not divide its " + std::to_string(l.dims.kv_heads) +
                                        " key/value heads");
        if (l.kind == LayerKind::Linear || l.kind == LayerKind::MoERouter) {
            const int64_t dim = tr == TpRole::Column ? l.dims.out_features : l.dims.in_features;
            if (dim && dim % s.tp)
                return fail(layerAt(l), std::string(tr == TpRole::Column ? "output" : "input") +
                                            " size " + std::to_string(dim) +
                                            " is not divisible by tensor-parallel degree " +
                                            std::to_string(s.tp));
        }
        if ((l.kind == LayerKind::LMHead || l.kind == LayerKind::Embedding) && l.dims.vocab % s.tp)
            r.warnings.push_back(layerAt(l) + ": vocabulary " + std::to_string(l.dims.vocab) +
                                 " is padded to a multiple of tp");
    }
    r.layers[i].tp_role = tr;
    const SyncAtom& a = r.layers[i].sync;
    if (a.method == SyncMethod::SFB && l.kind != LayerKind::Linear && l.kind != LayerKind::LMHead &&
        l.parameterCount() > 0)
        return fail(layerAt(l),
                    "sufficient-factor broadcasting applies to fully-connected layers only (this is " +
                        std::string(layerKindName(l.kind)) + ")");
    if (a.method == SyncMethod::ParameterServer && s.zero_stage > 0 && l.parameterCount() > 0)
        return fail(layerAt(l),
                    "ZeRO sharding and a parameter server both own the optimizer state: choose one");
    if (a.compression == Compression::PowerSGD && a.method != SyncMethod::AllReduce)
        return fail(layerAt(l), "PowerSGD compression needs all-reduce synchronization");
    return true;
}

// Each layer's stage before explicit ones: transformer blocks split evenly
// (layers before the first block go to the first stage, after the last to
// the last), or layers split by forward FLOPs when there are no blocks.
Result<std::vector<int>> Resolver::defaultStages()
{
    const int V = r.virtual_stages;
    std::vector<int> stage(L, 0);
    if (V <= 1)
        return stage;
    std::vector<std::string> blocks;
    for (const auto& l : m.layers)
        if (!l.block.empty() && (blocks.empty() || blocks.back() != l.block) &&
            std::find(blocks.begin(), blocks.end(), l.block) == blocks.end())
            blocks.push_back(l.block);
    if (!blocks.empty()) {
        if (int(blocks.size()) < V)
            return fail("mesh", std::to_string(V) + " pipeline stages but the model has only " +
                                    std::to_string(blocks.size()) + " blocks");
        if (blocks.size() % size_t(V) && s.first_stage_blocks == 0 && s.last_stage_blocks == 0)
            r.warnings.push_back(std::to_string(blocks.size()) + " blocks do not split evenly over " +
                                 std::to_string(V) + " stages");
        auto blockStage = stagesOfBlocks(s, int(blocks.size()), V);
        if (!blockStage)
            return blockStage.error();
        int current = 0;
        bool seenBlock = false;
        for (size_t i = 0; i < L; ++i) {
            const auto& l = m.layers[i];
            if (!l.block.empty()) {
                current = (*blockStage)[size_t(std::find(blocks.begin(), blocks.end(), l.block) - blocks.begin())];
                seenBlock = true;
            } else if (seenBlock) {
                current = V - 1;
            }
            stage[i] = current;
        }
        return stage;
    }
    if (s.first_stage_blocks > 0 || s.last_stage_blocks > 0)
        return fail("first_stage_blocks/last_stage_blocks", "the model has no transformer blocks to count");
    double total = 0;
    std::vector<double> f(L);
    for (size_t i = 0; i < L; ++i)
        total += f[i] = std::max(1.0, layerCostAt(m.layers[i], 1, m.seq_len).forward_flops);
    double before = 0;
    for (size_t i = 0; i < L; ++i) {
        stage[i] = std::min(V - 1, int((before + f[i] / 2) / total * V));
        before += f[i];
    }
    return stage;
}

// Pipeline stages: explicit where given, else the default split; no stage
// reads from a later one, and none is empty.
Result<bool> Resolver::stages()
{
    const int V = r.virtual_stages;
    auto stage = defaultStages();
    if (!stage)
        return stage.error();
    for (size_t i = 0; i < L; ++i) {
        if (explicitStage[i] >= 0) {
            if (explicitStage[i] >= V)
                return fail(layerAt(m.layers[i]), "stage " + std::to_string(explicitStage[i]) +
                                                      " does not exist (" + std::to_string(V) +
                                                      " virtual stages)");
            (*stage)[i] = explicitStage[i];
        }
        r.layers[i].stage = (*stage)[i];
    }
    std::vector<int> perStage(size_t(V), 0);
    for (size_t i = 0; i < L; ++i) {
        ++perStage[size_t((*stage)[i])];
        for (const auto& in : m.layers[i].inputs) {
            const int ps = r.layers[indexOf.at(in)].stage;
            if (ps > (*stage)[i])
                return fail(layerAt(m.layers[i]), "stage " + std::to_string((*stage)[i]) + " reads '" + in +
                                                      "' from a later stage " + std::to_string(ps));
        }
    }
    for (int v = 0; v < V; ++v)
        if (perStage[size_t(v)] == 0)
            return fail("stage " + std::to_string(v), "a pipeline stage with no layers");
    return true;
}

} // namespace

Result<ResolvedStrategy> resolveStrategy(const Strategy& s, const Model& m, const Cluster& c)
{
    if (std::string unlike = unlikeNodes(c); !unlike.empty())
        return Error{"cluster '" + c.name + "'", {}, unlike};
    Resolver res(s, m, c);
    for (auto step : {&Resolver::mesh, &Resolver::overrides, &Resolver::roles, &Resolver::stages})
        if (auto ok = (res.*step)(); !ok)
            return ok.error();
    return std::move(res.r);
}

} // namespace partita
