// Per-layer choices: layers grouped into classes by their role in a block,
// the alternatives each class may take, and the explanation of a candidate
// as its difference from the best preset.
#include "searcher.h"

#include <algorithm>
#include <cctype>

namespace partita::searchimpl {

// Layers with weights, grouped by their role in a repeated block: the
// query projection of every encoder layer is one class, so the per-layer
// choices stay few however deep the model is. A class is addressed by one
// glob ("encoder.layer.*.attention.self.query") when that glob matches
// exactly its members, else by its members' names.
void Searcher::buildLayerClasses()
{
    std::map<std::string, size_t> byKey;
    for (size_t i = 0; i < m_model.layers.size(); ++i) {
        const Layer& l = m_model.layers[i];
        if (l.params.empty())
            continue;
        std::string key = l.name;
        if (!l.block.empty() && l.name.rfind(l.block, 0) == 0) {
            std::string tmpl;
            for (size_t k = 0; k < l.block.size();) {
                if (std::isdigit(static_cast<unsigned char>(l.block[k]))) {
                    while (k < l.block.size() && std::isdigit(static_cast<unsigned char>(l.block[k])))
                        ++k;
                    tmpl += '*';
                } else {
                    tmpl += l.block[k++];
                }
            }
            key = tmpl + l.name.substr(l.block.size());
        }
        auto [it, added] = byKey.emplace(key, m_classes.size());
        if (added) {
            LayerClass c;
            c.key = key;
            c.kind = l.kind;
            c.sparse = l.sparse_grad;
            c.fc = (l.kind == LayerKind::Linear || l.kind == LayerKind::LMHead) && l.dims.in_features &&
                   l.dims.out_features;
            m_classes.push_back(c);
        }
        m_classes[it->second].members.push_back(i);
    }
    for (LayerClass& c : m_classes) {
        size_t matched = 0;
        bool exact = true;
        for (size_t i = 0; i < m_model.layers.size() && exact; ++i)
            if (globMatch(c.key, m_model.layers[i].name)) {
                ++matched;
                exact = std::binary_search(c.members.begin(), c.members.end(), i);
            }
        if (exact && matched == c.members.size()) {
            c.patterns = {c.key};
        } else {
            for (size_t i : c.members)
                c.patterns.push_back(m_model.layers[i].name);
            // A name with glob characters that matches other layers cannot be addressed alone.
            for (const auto& p : c.patterns)
                for (size_t i = 0; i < m_model.layers.size(); ++i)
                    if (globMatch(p, m_model.layers[i].name) &&
                        !std::binary_search(c.members.begin(), c.members.end(), i))
                        c.patterns.clear();
        }
    }
    m_classes.erase(std::remove_if(m_classes.begin(), m_classes.end(), [](const LayerClass& c) { return c.patterns.empty(); }),
                    m_classes.end());
}

// The per-layer alternatives for one class on top of a global strategy:
// all-reduce algorithm and compression, parameter server shard count,
// placement and local aggregation, sufficient-factor broadcasting for
// fully-connected layers, and vocabulary-parallel or replicated
// embeddings and heads. Option 0 keeps the global choice.
std::vector<ClassOption> Searcher::classOptions(const LayerClass& c, const Strategy& base) const
{
    std::vector<ClassOption> out(1);
    const int nodes = int(m_cluster.nodes.size());
    if (base.dp > 1) {
        SyncAtom a0;
        a0.sparse = c.sparse;
        std::vector<std::pair<Compression, std::string>> comps{{Compression::None, ""}};
        if (*m_opt.precision == Precision::FP32 && m_opt.allow_fp16_compression)
            comps.emplace_back(Compression::FP16, ", fp16 on the wire");
        if (m_opt.allow_powersgd && base.zero_stage == 0 && !c.sparse)
            comps.emplace_back(Compression::PowerSGD, ", PowerSGD rank 4");
        std::vector<AllReduceAlgo> algos{AllReduceAlgo::Ring, AllReduceAlgo::Tree};
        if (nodes > 1)
            algos.push_back(AllReduceAlgo::Hierarchical);
        for (AllReduceAlgo algo : algos)
            for (const auto& [comp, ctext] : comps) {
                SyncAtom a = a0;
                a.method = SyncMethod::AllReduce;
                a.algorithm = algo;
                a.compression = comp;
                out.push_back({a, {}, "all-reduce " + std::string(allReduceAlgoName(algo)) + ctext});
                if (c.sparse && comp == Compression::None && algo == AllReduceAlgo::Ring) {
                    a.sparse = false;
                    out.push_back({a, {}, "all-reduce ring, dense"});
                }
            }
        if (base.zero_stage == 0 && nodes > 1) {
            std::vector<int> shards;
            for (int k = 1; k < nodes; k *= 2)
                shards.push_back(k);
            shards.push_back(nodes);
            for (int k : shards)
                for (PsPlacement place : {PsPlacement::LoadBalanced, PsPlacement::RoundRobin}) {
                    if (k == nodes && place != PsPlacement::LoadBalanced)
                        continue; // every server holds a shard: placement does not matter
                    for (bool local : {true, false}) {
                        if (!local && m_perNode == 1)
                            continue;
                        SyncAtom a = a0;
                        a.method = SyncMethod::ParameterServer;
                        a.ps_shards = k;
                        a.ps_placement = place;
                        a.ps_local_replication = local;
                        out.push_back({a, {},
                                       "PS " + std::to_string(k) + (k == 1 ? " shard" : " shards") +
                                           (k < nodes ? ", " + std::string(psPlacementName(place)) : "") +
                                           (local ? ", local replication" : "")});
                    }
                }
        }
        if (c.fc && base.tp == 1 && base.zero_stage == 0) {
            SyncAtom a = a0;
            a.method = SyncMethod::SFB;
            out.push_back({a, {}, "sufficient-factor broadcasting"});
        }
    }
    if (base.tp > 1 && (c.kind == LayerKind::Embedding || c.kind == LayerKind::LMHead))
        out.push_back({{}, TpRole::Replicated, "replicated instead of vocabulary-parallel"});
    return out;
}

Strategy Searcher::applyClasses(Strategy s, const std::vector<std::vector<ClassOption>>& opts, const std::vector<int>& genes) const
{
    for (size_t c = 0; c < genes.size(); ++c) {
        if (genes[c] == 0)
            continue;
        const ClassOption& o = opts[c][size_t(genes[c])];
        for (const auto& pattern : m_classes[c].patterns) {
            LayerOverride lo;
            lo.pattern = pattern;
            lo.sync = o.sync;
            lo.tp_role = o.tp;
            s.layers.push_back(lo);
        }
    }
    return s;
}

std::string Searcher::explain(const Strategy& s, const Strategy& base, bool haveBase) const
{
    std::vector<std::string> diffs;
    auto add = [&](const std::string& what, const std::string& from, const std::string& to) {
        if (from != to)
            diffs.push_back(what + " " + (haveBase ? from + " -> " : "") + to);
    };
    add("mesh dp x tp x pp", std::to_string(base.dp) + "x" + std::to_string(base.tp) + "x" + std::to_string(base.pp),
        std::to_string(s.dp) + "x" + std::to_string(s.tp) + "x" + std::to_string(s.pp));
    add("context parallel", std::to_string(base.cp), std::to_string(s.cp));
    add("micro-batch", std::to_string(base.micro_batch), std::to_string(s.micro_batch));
    add("global batch", std::to_string(base.global_batch), std::to_string(s.global_batch));
    add("interleave", std::to_string(base.interleave), std::to_string(s.interleave));
    add("precision", std::string(precisionName(base.precision)), std::string(precisionName(s.precision)));
    auto stages = [](const Strategy& st) {
        return st.first_stage_blocks ? std::to_string(st.first_stage_blocks) + " blocks first, " +
                                           std::to_string(st.last_stage_blocks) + " last"
                                     : std::string("even");
    };
    add("pipeline stages", stages(base), stages(s));
    add("recompute", std::string(recomputeName(base.recompute)), std::string(recomputeName(s.recompute)));
    add("sequence parallel", base.sequence_parallel ? "on" : "off", s.sequence_parallel ? "on" : "off");
    add("tensor-parallel overlap", base.tp_comm_overlap ? "on" : "off", s.tp_comm_overlap ? "on" : "off");
    add("parameter gather overlap", base.overlap_param_gather ? "on" : "off", s.overlap_param_gather ? "on" : "off");
    add("ZeRO", std::to_string(base.zero_stage), std::to_string(s.zero_stage));
    auto syncText = [](const SyncAtom& a) {
        std::string t(syncMethodName(a.method));
        if (a.method == SyncMethod::AllReduce)
            t += " " + std::string(allReduceAlgoName(a.algorithm));
        if (a.method == SyncMethod::ParameterServer && a.ps_local_replication)
            t += " (local replication)";
        if (a.compression != Compression::None)
            t += " " + std::string(compressionName(a.compression));
        return t;
    };
    add("gradient sync", syncText(base.sync), syncText(s.sync));
    add("bucket", std::to_string(base.bucket_bytes >> 20) + " MB", std::to_string(s.bucket_bytes >> 20) + " MB");
    auto embText = [&](const Strategy& st) -> std::string {
        for (const auto& o : st.layers)
            if (!m_embeddings.empty() && o.pattern == m_embeddings.front() && o.sync)
                return syncText(*o.sync) + (o.sync->sparse ? " of touched rows" : " dense");
        return syncText(st.sync) + (st.sync.sparse ? " of touched rows" : " dense");
    };
    if (!m_embeddings.empty())
        add("embeddings", embText(base), embText(s));
    if (!m_fcLayers.empty()) {
        for (const auto& o : s.layers)
            if (o.pattern == m_fcLayers.front() && o.sync) {
                diffs.push_back("fully-connected layers: " + syncText(*o.sync));
                break;
            }
    }
    const bool balanced = std::any_of(s.layers.begin(), s.layers.end(), [](const LayerOverride& o) { return o.stage.has_value(); });
    if (balanced)
        diffs.push_back("pipeline stages cut by layer times (dynamic programming) instead of equal block counts");
    std::string out;
    for (const auto& d : diffs)
        out += (out.empty() ? "" : "; ") + d;
    return out.empty() ? "same settings as the best preset" : out;
}

} // namespace partita::searchimpl
