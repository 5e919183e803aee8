// modelFromOnnx, second half: the nodes grouped into layers (by module scope
// when the exporter wrote scoped names, else around the nodes that own
// weights), groups that depend on each other both ways merged, the layers
// ordered, and each layer's parameters, inputs and costs.
#ifdef PARTITA_HAVE_ONNX

#include "onnxreader.h"

#include <algorithm>

namespace partita::detail {

namespace {

bool related(const std::string& a, const std::string& b)
{
    auto under = [](const std::string& x, const std::string& y) {
        return x.size() > y.size() && x.compare(0, y.size(), y) == 0 && x[y.size()] == '/';
    };
    return a == b || under(a, b) || under(b, a);
}

} // namespace

// The most recent producer of a node's inputs: a residual add joins the
// branch it closes, not the trunk it started from (which would make the
// layers depend on each other both ways).
int OnnxReader::latestProducer(const onnx::NodeProto& node) const
{
    int latest = -1;
    for (const auto& in : node.input()) {
        auto it = m_producer.find(in);
        if (it != m_producer.end())
            latest = std::max(latest, it->second);
    }
    return latest;
}

// Scopes open for new nodes. A scope closes when a node of an unrelated
// scope (neither its ancestor nor its descendant) comes, so a module called
// twice (block 0's and block 1's "/ln_1") gives two layers.
void OnnxReader::groupNodes()
{
    int scoped = 0, computeNodes = 0;
    for (int i = 0; i < m_n; ++i) {
        const auto& node = g().node(i);
        if (m_isStatic[size_t(i)])
            continue;
        ++computeNodes;
        if (node.name().find('/') != std::string::npos)
            ++scoped;
    }
    m_useScopes = computeNodes > 0 && scoped * 2 >= computeNodes;
    m_groupOf.assign(size_t(m_n), -1);
    std::vector<std::pair<std::string, int>> openScopes;
    auto newGroup = [&](const std::string& key) {
        m_groups.push_back(OnnxGroup{key, {}});
        return int(m_groups.size()) - 1;
    };
    for (int i = 0; i < m_n; ++i) {
        const auto& node = g().node(i);
        if (m_isStatic[size_t(i)])
            continue;
        const std::string& op = node.op_type();
        int gi = -1;
        if (m_useScopes) {
            const size_t slash = node.name().rfind('/');
            const std::string scope = slash == std::string::npos ? std::string() : node.name().substr(0, slash);
            if (!scope.empty()) {
                std::erase_if(openScopes, [&](const auto& o) { return !related(o.first, scope); });
                for (const auto& [s, id] : openScopes)
                    if (s == scope)
                        gi = id;
                if (gi < 0) {
                    gi = newGroup(scope);
                    openScopes.emplace_back(scope, gi);
                }
            }
        } else {
            const bool anchor = op == "Conv" || op == "ConvTranspose" || op == "Gemm" || isPool(op) ||
                                isNormOp(op) || isRecurrent(op) || op == "Attention" ||
                                ((op == "MatMul" || op == "Gather" || op == "Einsum") && hasParamInput(node));
            if (anchor)
                gi = newGroup(m_nodeName[size_t(i)]);
        }
        if (gi < 0 && m_useScopes && isPool(op))
            gi = newGroup(m_nodeName[size_t(i)]); // a functional pooling call is a layer of its own
        if (gi < 0) {
            // Parameter-free glue (and unscoped nodes) join the layer of their input.
            const int p = latestProducer(node);
            gi = p >= 0 && m_groupOf[size_t(p)] >= 0 ? m_groupOf[size_t(p)] : newGroup(m_nodeName[size_t(i)]);
        }
        m_groupOf[size_t(i)] = gi;
        m_groups[size_t(gi)].nodes.push_back(i);
    }
    for (int i = 0; i < m_n; ++i)
        for (const auto& in : g().node(i).input())
            m_consumersOf[in].push_back(i);
}

// Groups of a scope can depend on each other both ways (a cycle between
// layers): strongly connected groups are merged (Tarjan's algorithm,
// iterative: graphs of thousands of groups would overflow a recursive one).
// Merged groups keep the key of their earliest member.
void OnnxReader::mergeCycles()
{
    const int G = int(m_groups.size());
    m_edges.assign(size_t(G), {});
    for (int i = 0; i < m_n; ++i) {
        if (m_groupOf[size_t(i)] < 0)
            continue;
        for (const auto& in : g().node(i).input()) {
            auto it = m_producer.find(in);
            if (it != m_producer.end() && m_groupOf[size_t(it->second)] >= 0 && m_groupOf[size_t(it->second)] != m_groupOf[size_t(i)])
                m_edges[size_t(m_groupOf[size_t(it->second)])].insert(m_groupOf[size_t(i)]);
        }
    }
    m_comp.assign(size_t(G), -1);
    std::vector<int> low(static_cast<size_t>(G)), idx(static_cast<size_t>(G), -1), stack;
    std::vector<bool> onStack(size_t(G), false);
    int counter = 0;
    for (int s = 0; s < G; ++s) {
        if (idx[size_t(s)] >= 0)
            continue;
        std::vector<std::pair<int, std::set<int>::const_iterator>> work{{s, m_edges[size_t(s)].begin()}};
        idx[size_t(s)] = low[size_t(s)] = counter++;
        stack.push_back(s);
        onStack[size_t(s)] = true;
        while (!work.empty()) {
            auto& [v, it] = work.back();
            if (it != m_edges[size_t(v)].end()) {
                const int w = *it++;
                if (idx[size_t(w)] < 0) {
                    idx[size_t(w)] = low[size_t(w)] = counter++;
                    stack.push_back(w);
                    onStack[size_t(w)] = true;
                    work.emplace_back(w, m_edges[size_t(w)].begin());
                } else if (onStack[size_t(w)]) {
                    low[size_t(v)] = std::min(low[size_t(v)], idx[size_t(w)]);
                }
                continue;
            }
            if (low[size_t(v)] == idx[size_t(v)]) {
                int w;
                do {
                    w = stack.back();
                    stack.pop_back();
                    onStack[size_t(w)] = false;
                    m_comp[size_t(w)] = m_comps;
                } while (w != v);
                ++m_comps;
            }
            const int done = v;
            work.pop_back();
            if (!work.empty())
                low[size_t(work.back().first)] = std::min(low[size_t(work.back().first)], low[size_t(done)]);
        }
    }
    m_merged.assign(size_t(m_comps), {});
    m_firstNode.assign(size_t(m_comps), m_n);
    for (int gi = 0; gi < G; ++gi) {
        OnnxGroup& m = m_merged[size_t(m_comp[size_t(gi)])];
        const int first = m_groups[size_t(gi)].nodes.front();
        if (first < m_firstNode[size_t(m_comp[size_t(gi)])]) {
            m_firstNode[size_t(m_comp[size_t(gi)])] = first;
            m.key = m_groups[size_t(gi)].key;
        }
        m.nodes.insert(m.nodes.end(), m_groups[size_t(gi)].nodes.begin(), m_groups[size_t(gi)].nodes.end());
    }
}

// Static nodes (constants, shape arithmetic, weight views) belong to the
// layer of the first node that reads them, found backwards through chains;
// nodes stay in graph order.
void OnnxReader::attachStatic()
{
    for (int i = m_n - 1; i >= 0; --i) {
        if (!m_isStatic[size_t(i)] || m_groupOf[size_t(i)] >= 0)
            continue;
        for (const auto& o : g().node(i).output()) {
            auto it = m_consumersOf.find(o);
            if (it == m_consumersOf.end())
                continue;
            for (int j : it->second)
                if (m_groupOf[size_t(j)] >= 0) {
                    m_groupOf[size_t(i)] = m_groupOf[size_t(j)];
                    break;
                }
            if (m_groupOf[size_t(i)] >= 0)
                break;
        }
        if (m_groupOf[size_t(i)] >= 0)
            m_merged[size_t(m_comp[size_t(m_groupOf[size_t(i)])])].nodes.push_back(i);
    }
    for (auto& m : m_merged)
        std::sort(m.nodes.begin(), m.nodes.end());
    m_layerOfNode.assign(size_t(m_n), -1);
    for (const auto& go : g().output())
        m_graphOutputs.insert(go.name());
    for (int c = 0; c < m_comps; ++c)
        for (int i : m_merged[size_t(c)].nodes)
            m_layerOfNode[size_t(i)] = c;
}

// Kahn's algorithm over the merged groups, ties broken by first node (a
// stable, readable order).
void OnnxReader::orderLayers()
{
    std::vector<std::set<int>> cedges(static_cast<size_t>(m_comps));
    std::vector<int> indeg(size_t(m_comps), 0);
    for (size_t gi = 0; gi < m_edges.size(); ++gi)
        for (int w : m_edges[gi]) {
            const int a = m_comp[gi], b = m_comp[size_t(w)];
            if (a != b && cedges[size_t(a)].insert(b).second)
                ++indeg[size_t(b)];
        }
    std::set<std::pair<int, int>> ready;
    for (int c = 0; c < m_comps; ++c)
        if (indeg[size_t(c)] == 0)
            ready.insert({m_firstNode[size_t(c)], c});
    while (!ready.empty()) {
        const int c = ready.begin()->second;
        ready.erase(ready.begin());
        m_order.push_back(c);
        for (int w : cedges[size_t(c)])
            if (--indeg[size_t(w)] == 0)
                ready.insert({m_firstNode[size_t(w)], w});
    }
}

Result<Model> OnnxReader::buildLayers()
{
    Model m;
    m.family = "onnx";
    m.name = g().name().empty() ? (m_proto.producer_name().empty() ? "onnx" : m_proto.producer_name()) : g().name();
    m.sequence = false;
    m.seq_len = 1;
    std::set<std::string> usedNames;
    m_layerName.assign(size_t(m_comps), {});
    std::unordered_set<std::string> claimed; // parameters already owned by a layer
    std::optional<DType> paramType;
    for (int c : m_order)
        m.layers.push_back(buildLayer(c, usedNames, claimed, paramType));
    if (m_order.size() != size_t(m_comps))
        return Error{m_file, "graph", "the ONNX graph has a cycle"};
    if (m.layers.empty())
        return Error{m_file, "graph", "the ONNX graph has only Constant nodes"};
    m.param_dtype = paramType.value_or(DType::F32);
    m.notes = std::move(m_notes);
    if (std::string problem = validateModel(m); !problem.empty())
        return Error{m_file, "graph", "could not group the graph into layers: " + problem};
    return m;
}

// A node's inputs: parameters (owned by the first layer that reads them,
// tied in the others), activations read (their size), the layers they come from.
void OnnxReader::addInputs(Layer& l, int c, const onnx::NodeProto& node, OnnxLayerSums& sums,
                           std::unordered_set<std::string>& claimed, std::optional<DType>& paramType)
{
    for (int k = 0; k < node.input_size(); ++k) {
        const std::string& in = node.input(k);
        if (in.empty())
            continue;
        if (isParam(in)) {
            const std::string& r = root(in);
            if (claimed.insert(r).second) {
                const TensorInfo& ti = m_info[r];
                TensorSpec t{r, ti.dims, fromOnnxType(ti.elemType).value_or(DType::F32)};
                if (!paramType)
                    paramType = t.dtype;
                l.params.push_back(std::move(t));
            } else if (l.tied_to.empty() && m_paramOwnerNode[r] >= 0) {
                const int owner = m_layerOfNode[size_t(m_paramOwnerNode[r])];
                if (owner != c && !m_layerName[size_t(owner)].empty())
                    l.tied_to = m_layerName[size_t(owner)];
            }
            continue;
        }
        if (m_weights.count(in))
            continue;
        sums.io += double(m_info[in].numel());
        auto p = m_producer.find(in);
        if (p != m_producer.end()) {
            const int from = m_layerOfNode[size_t(p->second)];
            if (from != c && from >= 0 &&
                std::find(sums.inputs.begin(), sums.inputs.end(), m_layerName[size_t(from)]) == sums.inputs.end())
                sums.inputs.push_back(m_layerName[size_t(from)]);
        }
    }
}

// A node's FLOPs, saved activations and dropout mask by its operator.
void OnnxReader::addCost(const onnx::NodeProto& node, OnnxLayerSums& sums)
{
    const std::string& op = node.op_type();
    double outNumel = 0;
    for (const auto& o : node.output())
        if (!o.empty())
            outNumel += double(m_info[o].numel());
    sums.io += outNumel;
    const bool weightIn = hasParamInput(node);
    auto dataNumel = [&](int k) {
        return k < node.input_size() && !node.input(k).empty() ? double(m_info[node.input(k)].numel()) : 0.0;
    };
    auto lastDim = [&](int k) -> int64_t {
        if (k >= node.input_size())
            return 0;
        const auto& d = m_info[node.input(k)].dims;
        return d.empty() || d.back() <= 0 ? 0 : d.back();
    };
    if (op == "MatMul" || op == "Gemm") {
        int64_t K = lastDim(0);
        if (op == "Gemm") {
            for (const auto& a : node.attribute())
                if (a.name() == "transA" && a.i() != 0 && node.input_size() > 0) {
                    const auto& d = m_info[node.input(0)].dims;
                    K = d.size() == 2 && d[0] > 0 ? d[0] : K;
                }
        }
        sums.flops += 2 * outNumel * double(K);
        if (weightIn)
            sums.paramMatMul = true;
        else
            sums.actMatMul = true;
        for (int k = 0; k < std::min(node.input_size(), 2); ++k)
            if (!isParam(node.input(k)))
                sums.saved += dataNumel(k);
    } else if (op == "Conv" || op == "ConvTranspose") {
        // The weights' second dimension is already per group (ONNX:
        // Conv [Cout, Cin/group, k...], ConvTranspose [Cin, Cout/group, k...]).
        double kernel = 1;
        if (node.input_size() > 1) {
            const auto& wd = m_info[node.input(1)].dims;
            for (size_t d = 2; d < wd.size(); ++d)
                kernel *= double(std::max<int64_t>(1, wd[d]));
            if (op == "Conv") {
                const int64_t cinPerGroup = wd.size() > 1 ? std::max<int64_t>(1, wd[1]) : 1;
                sums.flops += 2 * outNumel * double(cinPerGroup) * kernel;
            } else {
                const int64_t coutPerGroup = wd.size() > 1 ? std::max<int64_t>(1, wd[1]) : 1;
                sums.flops += 2 * dataNumel(0) * double(coutPerGroup) * kernel;
            }
        }
        sums.saved += dataNumel(0);
    } else if (op == "Gather" && weightIn) {
        sums.paramGather = true;
    } else if (op == "Dropout") {
        sums.mask += outNumel;
    } else if (isActivationOp(op) || op == "Softmax" || op == "LogSoftmax" || isNormOp(op) || isPool(op)) {
        sums.saved += dataNumel(0);
        sums.flops += outNumel * (isNormOp(op) ? 5 : 1);
    } else if (op != "Reshape" && op != "Transpose" && op != "Squeeze" && op != "Unsqueeze" && op != "Flatten" &&
               op != "Shape" && op != "Cast" && op != "Identity" && op != "Concat" && op != "Slice" && op != "Split" &&
               op != "Gather") {
        sums.flops += outNumel; // elementwise arithmetic: one FLOP per output element
    }
}

// What leaves the layer: outputs read by another layer or by the graph.
double OnnxReader::externalOutputs(int c) const
{
    double out = 0;
    for (int i : m_merged[size_t(c)].nodes)
        for (const auto& o : g().node(i).output()) {
            if (o.empty())
                continue;
            bool external = m_graphOutputs.count(o) > 0;
            if (auto it = m_consumersOf.find(o); it != m_consumersOf.end())
                for (int j : it->second)
                    external |= m_layerOfNode[size_t(j)] != c && m_layerOfNode[size_t(j)] >= 0;
            if (!external)
                continue;
            auto ti = m_info.find(o); // an unknown shape counts as one element, as TensorInfo{}.numel() does
            out += ti != m_info.end() ? double(ti->second.numel()) : 1.0;
        }
    return out;
}

namespace {

LayerKind kindOf(const OnnxLayerSums& s)
{
    const auto& ops = s.ops;
    if (ops.count("Conv") || ops.count("ConvTranspose"))
        return LayerKind::Conv;
    if (s.paramGather && !s.paramMatMul)
        return LayerKind::Embedding;
    if (s.paramMatMul || ops.count("Gemm") || std::any_of(ops.begin(), ops.end(), isRecurrent))
        return LayerKind::Linear;
    if (s.actMatMul && (ops.count("Softmax") || ops.count("Div") || ops.count("Mul")))
        return LayerKind::AttentionCore;
    if (std::any_of(ops.begin(), ops.end(), isNormOp) || (ops.count("ReduceMean") && (ops.count("Sqrt") || ops.count("Pow"))))
        return LayerKind::Norm;
    if (std::any_of(ops.begin(), ops.end(), isPool))
        return LayerKind::Pool;
    if (std::any_of(ops.begin(), ops.end(), isActivationOp))
        return LayerKind::Activation;
    if (ops.count("SoftmaxCrossEntropyLoss") || ops.count("NegativeLogLikelihoodLoss"))
        return LayerKind::Loss;
    return s.actMatMul ? LayerKind::AttentionCore : LayerKind::Elementwise;
}

} // namespace

// Merged group `c` as a layer: its name (the scope's dotted module name,
// made unique), block, parameters, inputs, kind, dimensions and costs.
Layer OnnxReader::buildLayer(int c, std::set<std::string>& usedNames, std::unordered_set<std::string>& claimed,
                             std::optional<DType>& paramType)
{
    const OnnxGroup& grp = m_merged[size_t(c)];
    Layer l;
    std::string base = dotted(grp.key);
    if (base.empty())
        base = m_nodeName[size_t(grp.nodes.front())];
    std::string name = base;
    for (int k = 2; usedNames.count(name); ++k)
        name = base + "#" + std::to_string(k);
    usedNames.insert(name);
    m_layerName[size_t(c)] = name;
    l.name = name;
    if (m_useScopes)
        l.block = dotted(blockOf(grp.key));
    OnnxLayerSums sums;
    for (int i : grp.nodes) {
        const auto& node = g().node(i);
        l.source_nodes.push_back(m_nodeName[size_t(i)]);
        if (m_isStatic[size_t(i)])
            continue;
        sums.ops.insert(node.op_type());
        addInputs(l, c, node, sums, claimed, paramType);
        addCost(node, sums);
    }
    const double out = externalOutputs(c);
    l.kind = kindOf(sums);
    l.sparse_grad = l.kind == LayerKind::Embedding;
    if (l.kind == LayerKind::Embedding && !l.params.empty() && l.params.front().shape.size() == 2) {
        l.dims.vocab = l.params.front().shape[0];
        l.dims.out_features = l.params.front().shape[1];
    }
    if (l.kind == LayerKind::Linear && !l.params.empty() && l.params.front().shape.size() == 2) {
        l.dims.in_features = l.params.front().shape[0];
        l.dims.out_features = l.params.front().shape[1];
    }
    l.inputs = std::move(sums.inputs);
    // Costs were summed in double: absurd shapes clamp instead of overflowing.
    auto perSample = [&](double v) { return int64_t(std::min(v / double(m_batch), 4e18)); };
    l.cost.flops_per_token = perSample(sums.flops);
    l.cost.saved_elems_per_token = perSample(sums.saved);
    l.cost.mask_bytes_per_token = perSample(sums.mask);
    l.cost.io_elems_per_token = perSample(sums.io);
    l.cost.output_elems_per_token = perSample(out);
    return l;
}

} // namespace partita::detail

#endif
