// ONNX ModelProto -> Model through Debian's libonnx. The many small nodes of an
// exported network are grouped into layers (by module scope when the exporter
// wrote scoped names, else around the nodes that own weights), keeping the
// node -> layer mapping in Layer::source_nodes.
#include "partita/core/modelio.h"

#ifndef PARTITA_HAVE_ONNX

namespace partita {
bool onnxSupported() { return false; }
Result<Model> modelFromOnnx(const std::string&, const std::string& file)
{
    return Error{file, {}, "this Partita was built without libonnx: ONNX models cannot be read "
                           "(install libonnx-dev and libprotobuf-dev, then reconfigure)"};
}
} // namespace partita

#else

#include <onnx/checker.h>
#include <onnx/onnx_pb.h>
#include <onnx/shape_inference/implementation.h>

#include "onnxfold.h"

#include <algorithm>
#include <cstring>
#include <functional>
#include <map>
#include <set>
#include <unordered_map>
#include <unordered_set>

namespace partita {

bool onnxSupported() { return true; }

namespace {

constexpr int64_t kMaxNodes = 5'000'000;

struct TensorInfo
{
    std::vector<int64_t> dims; // -1: unknown
    int32_t elemType = 0;
    bool known = false;

    // Saturates at 2^62 rather than overflow on absurd shapes.
    int64_t numel() const
    {
        int64_t n = 1;
        for (int64_t d : dims) {
            const int64_t f = d > 0 ? d : 1; // unknown (symbolic) dimensions count as 1: costs are per sample and per token
            if (__builtin_mul_overflow(n, f, &n) || n > (int64_t(1) << 62))
                return int64_t(1) << 62;
        }
        return n;
    }
};

std::optional<DType> fromOnnxType(int32_t t)
{
    using TP = onnx::TensorProto;
    switch (t) {
    case TP::FLOAT: return DType::F32;
    case TP::FLOAT16: return DType::F16;
    case TP::BFLOAT16: return DType::BF16;
    case TP::DOUBLE: return DType::F64;
    case TP::INT64: return DType::I64;
    case TP::INT32: return DType::I32;
    case TP::INT8: return DType::I8;
    case TP::UINT8: return DType::U8;
    case TP::BOOL: return DType::Bool;
    default: return std::nullopt;
    }
}

bool floatingType(int32_t t)
{
    using TP = onnx::TensorProto;
    return t == TP::FLOAT || t == TP::FLOAT16 || t == TP::BFLOAT16 || t == TP::DOUBLE;
}

TensorInfo infoFromType(const onnx::TypeProto& type)
{
    TensorInfo info;
    if (!type.has_tensor_type())
        return info;
    const auto& tt = type.tensor_type();
    info.elemType = tt.elem_type();
    if (!tt.has_shape())
        return info;
    info.known = true;
    for (const auto& d : tt.shape().dim())
        info.dims.push_back(d.has_dim_value() && d.dim_value() > 0 ? d.dim_value() : -1);
    return info;
}

TensorInfo infoFromTensor(const onnx::TensorProto& t)
{
    TensorInfo info;
    info.known = true;
    info.elemType = t.data_type();
    for (int64_t d : t.dims())
        info.dims.push_back(d);
    return info;
}

// Inputs that configure an op rather than carry weights, even when they are float tensors.
bool isConfigInput(const std::string& op, int index)
{
    static const std::map<std::string, std::set<int>> kConfig{
        {"BatchNormalization", {3, 4}}, // running mean and variance: buffers, not trained
        {"Resize", {1, 2, 3}},          {"Upsample", {1}},  {"Clip", {1, 2}}, {"Pad", {1, 2}},
        {"Reshape", {1}},               {"Expand", {1}},    {"Tile", {1}},    {"Slice", {1, 2, 3, 4}},
        {"ConstantOfShape", {0}},       {"Range", {0, 1, 2}},
    };
    auto it = kConfig.find(op);
    return it != kConfig.end() && it->second.count(index);
}

bool isPool(const std::string& op)
{
    return op == "MaxPool" || op == "AveragePool" || op == "GlobalAveragePool" || op == "GlobalMaxPool" ||
           op == "LpPool" || op == "GlobalLpPool" || op == "MaxRoiPool" || op == "RoiAlign";
}
bool isNormOp(const std::string& op)
{
    return op == "BatchNormalization" || op == "LayerNormalization" || op == "InstanceNormalization" ||
           op == "GroupNormalization" || op == "LpNormalization" || op == "SimplifiedLayerNormalization" ||
           op == "SkipLayerNormalization";
}
bool isActivationOp(const std::string& op)
{
    static const std::set<std::string> k{"Relu", "Clip", "LeakyRelu", "PRelu",    "Elu",         "Selu",  "Gelu",
                                         "Erf",      "Sigmoid",   "Tanh",     "HardSigmoid", "HardSwish",
                                         "Softplus", "Softsign",  "Mish",     "Celu",        "ThresholdedRelu"};
    return k.count(op) > 0;
}
bool isRecurrent(const std::string& op) { return op == "LSTM" || op == "GRU" || op == "RNN"; }

// Components like "layer.3", "h.11", "layers.0", "layer1.0" mark a repeated block.
std::string blockOf(const std::string& scope)
{
    size_t end = std::string::npos;
    size_t pos = 0;
    while (pos <= scope.size()) {
        size_t next = scope.find('/', pos);
        if (next == std::string::npos)
            next = scope.size();
        const std::string comp = scope.substr(pos, next - pos);
        const size_t dot = comp.rfind('.');
        if (dot != std::string::npos && dot + 1 < comp.size() &&
            std::all_of(comp.begin() + long(dot) + 1, comp.end(), [](char c) { return c >= '0' && c <= '9'; }))
            end = next;
        pos = next + 1;
    }
    return end == std::string::npos ? std::string() : scope.substr(0, end);
}

// "/features/features.18/features.18.2" -> "features.18.2": PyTorch's exporter
// writes each scope component as the module's full name when it knows it, so a
// component that extends its parent replaces it.
std::string dotted(const std::string& scope)
{
    std::vector<std::string> parts;
    size_t pos = 0;
    while (pos <= scope.size()) {
        size_t next = scope.find('/', pos);
        if (next == std::string::npos)
            next = scope.size();
        std::string comp = scope.substr(pos, next - pos);
        if (!comp.empty()) {
            if (!parts.empty() && comp.size() > parts.back().size() &&
                comp.compare(0, parts.back().size() + 1, parts.back() + ".") == 0)
                parts.back() = comp;
            else
                parts.push_back(comp);
        }
        pos = next + 1;
    }
    std::string out;
    for (const auto& p : parts)
        out += (out.empty() ? "" : ".") + p;
    return out;
}

struct Group
{
    std::string key;
    std::vector<int> nodes;
};


} // namespace

Result<Model> modelFromOnnx(const std::string& bytes, const std::string& file)
{
    if (bytes.empty())
        return Error{file, {}, "the file is empty"};
    onnx::ModelProto proto;
    if (!proto.ParseFromString(bytes))
        return Error{file, {}, "not an ONNX model: the bytes do not decode as an ONNX ModelProto (protobuf)"};
    if (!proto.has_graph() || proto.ir_version() <= 0)
        return Error{file, {}, "not an ONNX model: no graph or no ir_version in the protobuf message"};
    if (proto.graph().node_size() == 0)
        return Error{file, "graph", "the ONNX graph has no nodes"};
    if (proto.graph().node_size() > kMaxNodes)
        return Error{file, "graph", "the ONNX graph has more than 5,000,000 nodes"};

    std::vector<std::string> notes;
    // Shape inference where value_info is missing, on a copy in which small
    // integer subgraphs (the shape arithmetic exporters emit before a Reshape)
    // are folded into initializers: ONNX's inference reads shapes from
    // initializers but does not evaluate such chains itself. Failures leave
    // shapes unknown, never abort.
    // Every value is defined once (single static assignment): a graph input,
    // an initializer or a node output. ONNX's shape inference reads out of
    // bounds on graphs that break this (found by fuzzing), so they are refused.
    {
        std::unordered_set<std::string> inputs, initializers, outputs;
        for (const auto& t : proto.graph().initializer())
            if (!initializers.insert(t.name()).second)
                return Error{file, "initializer '" + t.name() + "'", "defined twice"};
        for (const auto& v : proto.graph().input())
            if (!inputs.insert(v.name()).second)
                return Error{file, "graph input '" + v.name() + "'", "defined twice"};
        for (int i = 0; i < proto.graph().node_size(); ++i)
            for (const auto& o : proto.graph().node(i).output()) {
                if (o.empty())
                    continue;
                if (!outputs.insert(o).second || inputs.count(o) || initializers.count(o))
                    return Error{file, "node " + std::to_string(i) + " (" + proto.graph().node(i).op_type() + ")",
                                 "output '" + o + "' is already defined (ONNX graphs assign each value once)"};
            }
    }
    // Window attributes ONNX's shape inference divides by or loops over
    // (a zero stride crashed it under fuzzing): positive sizes, non-negative pads.
    for (int i = 0; i < proto.graph().node_size(); ++i) {
        const auto& node = proto.graph().node(i);
        for (const auto& a : node.attribute()) {
            const bool positive = a.name() == "strides" || a.name() == "dilations" || a.name() == "kernel_shape";
            const bool nonNegative = a.name() == "pads" || a.name() == "output_padding";
            const std::string where = "node '" + (node.name().empty() ? std::to_string(i) : node.name()) + "' (" +
                                      node.op_type() + ")";
            for (int k = 0; k < a.ints_size(); ++k)
                if ((positive && a.ints(k) < 1) || (nonNegative && a.ints(k) < 0))
                    return Error{file, where, "attribute " + a.name() + " has " + std::to_string(a.ints(k)) +
                                                  " at position " + std::to_string(k) +
                                                  (positive ? " (must be at least 1)" : " (must not be negative)")};
            if (a.name() == "group" && a.type() == onnx::AttributeProto::INT && a.i() < 1)
                return Error{file, where, "attribute group is " + std::to_string(a.i()) + " (must be at least 1)"};
        }
    }
    // ONNX's shape inference trusts each node to match its operator's schema;
    // run it only when the ONNX checker accepts every node (inputs, outputs,
    // attribute types), and keep going without inferred shapes otherwise.
    onnx::ModelProto inferred = proto;
    bool checked = true;
    try {
        onnx::checker::CheckerContext ctx;
        ctx.set_ir_version(int(proto.ir_version()));
        std::unordered_map<std::string, int> opsets;
        for (const auto& o : proto.opset_import())
            opsets[o.domain()] = int(o.version());
        if (opsets.empty())
            opsets[""] = 1;
        ctx.set_opset_imports(opsets);
        onnx::checker::LexicalScopeContext scope;
        for (const auto& node : proto.graph().node())
            onnx::checker::check_node(node, ctx, scope);
    } catch (const std::exception& e) {
        checked = false;
        std::string why = e.what();
        if (const size_t nl = why.find('\n'); nl != std::string::npos)
            why.erase(nl);
        notes.push_back("the ONNX checker rejects a node (" + why + "): shapes come from value_info only");
    }
    if (checked) {
        detail::foldIntegerConstants(*inferred.mutable_graph());
        try {
            std::unordered_map<std::string, onnx::TensorShapeProto> generated;
            onnx::shape_inference::InferShapes(inferred, onnx::OpSchemaRegistry::Instance(),
                                               onnx::ShapeInferenceOptions(false, 0, true), &generated);
        } catch (const std::exception& e) {
            notes.push_back(std::string("shape inference stopped early: ") + e.what());
        }
    }
    const onnx::GraphProto& g = proto.graph();

    std::unordered_map<std::string, TensorInfo> info;
    std::unordered_set<std::string> weights; // initializers and Constant outputs
    std::unordered_map<std::string, const onnx::TensorProto*> weightProto;
    // Weights of absurd size (a dimension over 2^40 or over 2^50 elements) are refused.
    auto absurd = [](const onnx::TensorProto& t) {
        double n = 1;
        for (int64_t d : t.dims()) {
            if (d < 0 || d > (int64_t(1) << 40))
                return true;
            n *= double(d);
        }
        return n > double(int64_t(1) << 50);
    };
    for (const auto& t : g.initializer()) {
        if (absurd(t))
            return Error{file, "initializer '" + t.name() + "'", "has a negative or absurd shape"};
        info[t.name()] = infoFromTensor(t);
        weights.insert(t.name());
        weightProto[t.name()] = &t;
    }
    for (const auto& v : g.input())
        if (!weights.count(v.name()))
            info[v.name()] = infoFromType(v.type());
    for (const auto& v : inferred.graph().value_info())
        info[v.name()] = infoFromType(v.type());
    for (const auto& v : inferred.graph().output())
        if (!info.count(v.name()) || !info[v.name()].known)
            info[v.name()] = infoFromType(v.type());

    const int n = g.node_size();
    std::vector<std::string> nodeName(static_cast<size_t>(n));
    std::unordered_map<std::string, int> producer;
    // Static nodes compute only from constants (shape arithmetic, a Transpose of
    // a weight): their outputs are constants too. A view of a weight aliases it,
    // so the layer that reads the view owns the parameter.
    std::vector<bool> isStatic(static_cast<size_t>(n), false);
    std::unordered_map<std::string, std::string> alias;
    auto root = [&](const std::string& t) -> const std::string& {
        auto it = alias.find(t);
        return it == alias.end() ? t : it->second;
    };
    static const std::set<std::string> kViewOps{"Transpose", "Cast",    "Identity", "Reshape",
                                                "Unsqueeze", "Squeeze", "Flatten",  "DequantizeLinear"};
    for (int i = 0; i < n; ++i) {
        const auto& node = g.node(i);
        nodeName[size_t(i)] = node.name().empty() ? node.op_type() + "#" + std::to_string(i) : node.name();
        if (node.op_type() == "Constant") {
            isStatic[size_t(i)] = true;
            for (const auto& a : node.attribute()) {
                if (a.name() == "value" && a.has_t() && absurd(a.t()))
                    return Error{file, "node '" + nodeName[size_t(i)] + "' (Constant)", "has a negative or absurd shape"};
                if (a.name() == "value" && a.has_t() && node.output_size() == 1) {
                    info[node.output(0)] = infoFromTensor(a.t());
                    weightProto[node.output(0)] = &a.t();
                }
            }
            for (const auto& o : node.output())
                weights.insert(o);
            continue;
        }
        const bool allConstant =
            node.input_size() > 0 &&
            std::all_of(node.input().begin(), node.input().end(),
                        [&](const std::string& in) { return in.empty() || weights.count(in) > 0; });
        if (allConstant && node.op_type().find("Random") == std::string::npos) {
            isStatic[size_t(i)] = true;
            for (const auto& o : node.output()) {
                weights.insert(o);
                if (kViewOps.count(node.op_type()))
                    alias[o] = root(node.input(0));
            }
            continue;
        }
        for (const auto& o : node.output())
            if (!o.empty())
                producer[o] = i;
    }

    // Every input must be defined by a node, a graph input or an initializer.
    std::unordered_set<std::string> defined(weights.begin(), weights.end());
    for (const auto& v : g.input())
        defined.insert(v.name());
    for (const auto& node : g.node())
        for (const auto& o : node.output())
            defined.insert(o);
    for (int i = 0; i < n; ++i)
        for (const auto& in : g.node(i).input())
            if (!in.empty() && !defined.count(in))
                return Error{file, "node '" + nodeName[size_t(i)] + "' (" + g.node(i).op_type() + ")",
                             "reads '" + in + "', which no node, graph input or initializer defines"};

    // Which weight tensors are trainable parameters: floating, more than one
    // element, and read by some node as a data input (not as a shape, scale or
    // running statistic).
    std::unordered_map<std::string, int> paramOwnerNode;
    for (int i = 0; i < n; ++i) {
        const auto& node = g.node(i);
        if (isStatic[size_t(i)])
            continue;
        for (int k = 0; k < node.input_size(); ++k) {
            const std::string& in = root(node.input(k));
            if (!weights.count(in) || isConfigInput(node.op_type(), k))
                continue;
            const TensorInfo& ti = info[in];
            if (!floatingType(ti.elemType) || ti.numel() <= 1)
                continue;
            paramOwnerNode.try_emplace(in, i);
        }
    }
    auto isParam = [&](const std::string& t) { return paramOwnerNode.count(root(t)) > 0; };

    // The batch dimension of the first non-weight graph input, to report costs per sample.
    int64_t batch = 1;
    for (const auto& v : g.input()) {
        if (weights.count(v.name()))
            continue;
        const TensorInfo& ti = info[v.name()];
        if (ti.known && !ti.dims.empty() && ti.dims[0] > 1)
            batch = ti.dims[0];
        break;
    }
    if (batch > 1)
        notes.push_back("exported with batch " + std::to_string(batch) + "; costs are divided by it (per sample)");
    // Symbolic dimensions other than the batch count as 1: say so, since a
    // symbolic sequence length turns per-sample costs into per-token ones.
    std::set<std::string> symbolic;
    for (const auto& v : g.input()) {
        if (weights.count(v.name()) || !v.type().has_tensor_type())
            continue;
        const auto& dims = v.type().tensor_type().shape().dim();
        for (int d = 1; d < dims.size(); ++d)
            if (!dims[d].has_dim_value())
                symbolic.insert(dims[d].dim_param().empty() ? "?" : dims[d].dim_param());
    }
    if (!symbolic.empty()) {
        std::string names;
        for (const auto& s : symbolic)
            names += (names.empty() ? "'" : ", '") + s + "'";
        notes.push_back("symbolic input dimension(s) " + names +
                        " taken as 1: export with fixed shapes for costs at your sizes");
    }

    // ---- grouping ---------------------------------------------------------------
    int scoped = 0, computeNodes = 0;
    for (int i = 0; i < n; ++i) {
        const auto& node = g.node(i);
        if (isStatic[size_t(i)])
            continue;
        ++computeNodes;
        if (node.name().find('/') != std::string::npos)
            ++scoped;
    }
    const bool useScopes = computeNodes > 0 && scoped * 2 >= computeNodes;

    // The most recent producer of a node's inputs: a residual add joins the
    // branch it closes, not the trunk it started from (which would make the
    // layers depend on each other both ways).
    auto latestProducer = [&](const onnx::NodeProto& node) -> int {
        int latest = -1;
        for (const auto& in : node.input()) {
            auto it = producer.find(in);
            if (it != producer.end())
                latest = std::max(latest, it->second);
        }
        return latest;
    };
    auto hasParamInput = [&](const onnx::NodeProto& node) {
        return std::any_of(node.input().begin(), node.input().end(), [&](const std::string& in) { return isParam(in); });
    };

    std::vector<int> groupOf(static_cast<size_t>(n), -1);
    std::vector<Group> groups;
    // Scopes open for new nodes. A scope closes when a node of an unrelated
    // scope (neither its ancestor nor its descendant) comes, so a module
    // called twice (block 0's and block 1's "/ln_1") gives two layers.
    std::vector<std::pair<std::string, int>> openScopes;
    auto related = [](const std::string& a, const std::string& b) {
        auto under = [](const std::string& x, const std::string& y) {
            return x.size() > y.size() && x.compare(0, y.size(), y) == 0 && x[y.size()] == '/';
        };
        return a == b || under(a, b) || under(b, a);
    };
    auto newGroup = [&](const std::string& key) {
        groups.push_back(Group{key, {}});
        return int(groups.size()) - 1;
    };
    for (int i = 0; i < n; ++i) {
        const auto& node = g.node(i);
        if (isStatic[size_t(i)])
            continue;
        const std::string& op = node.op_type();
        int gi = -1;
        if (useScopes) {
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
                gi = newGroup(nodeName[size_t(i)]);
        }
        if (gi < 0 && useScopes && isPool(op))
            gi = newGroup(nodeName[size_t(i)]); // a functional pooling call is a layer of its own
        if (gi < 0) {
            // Parameter-free glue (and unscoped nodes) join the layer of their input.
            const int p = latestProducer(node);
            gi = p >= 0 && groupOf[size_t(p)] >= 0 ? groupOf[size_t(p)] : newGroup(nodeName[size_t(i)]);
        }
        groupOf[size_t(i)] = gi;
        groups[size_t(gi)].nodes.push_back(i);
    }

    std::unordered_map<std::string, std::vector<int>> consumersOf;
    for (int i = 0; i < n; ++i)
        for (const auto& in : g.node(i).input())
            consumersOf[in].push_back(i);

    // Groups of a scope can depend on each other both ways (a cycle between
    // layers). Merge strongly connected groups (Tarjan), then order topologically.
    const int G = int(groups.size());
    std::vector<std::set<int>> edges(static_cast<size_t>(G));
    for (int i = 0; i < n; ++i) {
        if (groupOf[size_t(i)] < 0)
            continue;
        for (const auto& in : g.node(i).input()) {
            auto it = producer.find(in);
            if (it != producer.end() && groupOf[size_t(it->second)] >= 0 &&
                groupOf[size_t(it->second)] != groupOf[size_t(i)])
                edges[size_t(groupOf[size_t(it->second)])].insert(groupOf[size_t(i)]);
        }
    }
    std::vector<int> comp(static_cast<size_t>(G), -1), low(static_cast<size_t>(G)), idx(static_cast<size_t>(G), -1), stack;
    std::vector<bool> onStack(static_cast<size_t>(G), false);
    int counter = 0, comps = 0;
    // Iterative Tarjan: graphs of thousands of groups would overflow a recursive one.
    for (int s = 0; s < G; ++s) {
        if (idx[size_t(s)] >= 0)
            continue;
        std::vector<std::pair<int, std::set<int>::const_iterator>> work{{s, edges[size_t(s)].begin()}};
        idx[size_t(s)] = low[size_t(s)] = counter++;
        stack.push_back(s);
        onStack[size_t(s)] = true;
        while (!work.empty()) {
            auto& [v, it] = work.back();
            if (it != edges[size_t(v)].end()) {
                const int w = *it++;
                if (idx[size_t(w)] < 0) {
                    idx[size_t(w)] = low[size_t(w)] = counter++;
                    stack.push_back(w);
                    onStack[size_t(w)] = true;
                    work.emplace_back(w, edges[size_t(w)].begin());
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
                    comp[size_t(w)] = comps;
                } while (w != v);
                ++comps;
            }
            const int done = v;
            work.pop_back();
            if (!work.empty())
                low[size_t(work.back().first)] = std::min(low[size_t(work.back().first)], low[size_t(done)]);
        }
    }
    // Merged groups keep the key of their earliest member; nodes stay in graph order.
    std::vector<Group> merged(static_cast<size_t>(comps));
    std::vector<int> firstNode(static_cast<size_t>(comps), n);
    for (int gi = 0; gi < G; ++gi) {
        Group& m = merged[size_t(comp[size_t(gi)])];
        const int first = groups[size_t(gi)].nodes.front();
        if (first < firstNode[size_t(comp[size_t(gi)])]) {
            firstNode[size_t(comp[size_t(gi)])] = first;
            m.key = groups[size_t(gi)].key;
        }
        m.nodes.insert(m.nodes.end(), groups[size_t(gi)].nodes.begin(), groups[size_t(gi)].nodes.end());
    }
    // Static nodes (constants, shape arithmetic, weight views) belong to the
    // layer of the first node that reads them, found backwards through chains.
    for (int i = n - 1; i >= 0; --i) {
        if (!isStatic[size_t(i)] || groupOf[size_t(i)] >= 0)
            continue;
        for (const auto& o : g.node(i).output()) {
            auto it = consumersOf.find(o);
            if (it == consumersOf.end())
                continue;
            for (int j : it->second)
                if (groupOf[size_t(j)] >= 0) {
                    groupOf[size_t(i)] = groupOf[size_t(j)];
                    break;
                }
            if (groupOf[size_t(i)] >= 0)
                break;
        }
        if (groupOf[size_t(i)] >= 0)
            merged[size_t(comp[size_t(groupOf[size_t(i)])])].nodes.push_back(i);
    }
    for (auto& m : merged)
        std::sort(m.nodes.begin(), m.nodes.end());
    std::vector<int> layerOfNode(static_cast<size_t>(n), -1);
    std::unordered_set<std::string> graphOutputs;
    for (const auto& go : g.output())
        graphOutputs.insert(go.name());
    for (int c = 0; c < comps; ++c)
        for (int i : merged[size_t(c)].nodes)
            layerOfNode[size_t(i)] = c;
    // Kahn's algorithm over merged groups, ties broken by first node (stable, readable order).
    std::vector<std::set<int>> cedges(static_cast<size_t>(comps));
    std::vector<int> indeg(static_cast<size_t>(comps), 0);
    for (int gi = 0; gi < G; ++gi)
        for (int w : edges[size_t(gi)]) {
            const int a = comp[size_t(gi)], b = comp[size_t(w)];
            if (a != b && cedges[size_t(a)].insert(b).second)
                ++indeg[size_t(b)];
        }
    std::set<std::pair<int, int>> ready;
    for (int c = 0; c < comps; ++c)
        if (indeg[size_t(c)] == 0)
            ready.insert({firstNode[size_t(c)], c});
    std::vector<int> order;
    while (!ready.empty()) {
        const int c = ready.begin()->second;
        ready.erase(ready.begin());
        order.push_back(c);
        for (int w : cedges[size_t(c)])
            if (--indeg[size_t(w)] == 0)
                ready.insert({firstNode[size_t(w)], w});
    }

    // ---- layers ----------------------------------------------------------------
    Model m;
    m.family = "onnx";
    m.name = g.name().empty() ? (proto.producer_name().empty() ? "onnx" : proto.producer_name()) : g.name();
    m.sequence = false;
    m.seq_len = 1;
    std::set<std::string> usedNames;
    std::vector<std::string> layerName(static_cast<size_t>(comps));
    std::unordered_set<std::string> claimed; // parameters already owned by a layer
    std::optional<DType> paramType;

    for (int c : order) {
        const Group& grp = merged[size_t(c)];
        Layer l;
        std::string base = dotted(grp.key);
        if (base.empty())
            base = nodeName[size_t(grp.nodes.front())];
        std::string name = base;
        for (int k = 2; usedNames.count(name); ++k)
            name = base + "#" + std::to_string(k);
        usedNames.insert(name);
        layerName[size_t(c)] = name;
        l.name = name;
        if (useScopes)
            l.block = dotted(blockOf(grp.key));

        std::set<std::string> ops;
        bool paramMatMul = false, actMatMul = false, paramGather = false;
        double flops = 0, saved = 0, mask = 0, io = 0;
        std::vector<std::string> inputs;
        for (int i : grp.nodes) {
            const auto& node = g.node(i);
            const std::string& op = node.op_type();
            l.source_nodes.push_back(nodeName[size_t(i)]);
            if (isStatic[size_t(i)])
                continue;
            ops.insert(op);
            for (int k = 0; k < node.input_size(); ++k) {
                const std::string& in = node.input(k);
                if (in.empty())
                    continue;
                if (isParam(in)) {
                    const std::string& r = root(in);
                    if (claimed.insert(r).second) {
                        const TensorInfo& ti = info[r];
                        TensorSpec t{r, ti.dims, fromOnnxType(ti.elemType).value_or(DType::F32)};
                        if (!paramType)
                            paramType = t.dtype;
                        l.params.push_back(std::move(t));
                    } else if (l.tied_to.empty() && paramOwnerNode[r] >= 0) {
                        const int owner = layerOfNode[size_t(paramOwnerNode[r])];
                        if (owner != c && !layerName[size_t(owner)].empty())
                            l.tied_to = layerName[size_t(owner)];
                    }
                    continue;
                }
                if (weights.count(in))
                    continue;
                io += info[in].numel();
                auto p = producer.find(in);
                if (p != producer.end()) {
                    const int from = layerOfNode[size_t(p->second)];
                    if (from != c && from >= 0 &&
                        std::find(inputs.begin(), inputs.end(), layerName[size_t(from)]) == inputs.end())
                        inputs.push_back(layerName[size_t(from)]);
                }
            }
            double outNumel = 0;
            for (const auto& o : node.output())
                if (!o.empty())
                    outNumel += info[o].numel();
            io += outNumel;
            const bool weightIn = hasParamInput(node);
            auto dataNumel = [&](int k) {
                return k < node.input_size() && !node.input(k).empty() ? double(info[node.input(k)].numel()) : 0.0;
            };
            auto lastDim = [&](int k) -> int64_t {
                if (k >= node.input_size())
                    return 0;
                const auto& d = info[node.input(k)].dims;
                return d.empty() || d.back() <= 0 ? 0 : d.back();
            };
            if (op == "MatMul" || op == "Gemm") {
                int64_t K = lastDim(0);
                if (op == "Gemm") {
                    for (const auto& a : node.attribute())
                        if (a.name() == "transA" && a.i() != 0 && node.input_size() > 0) {
                            const auto& d = info[node.input(0)].dims;
                            K = d.size() == 2 && d[0] > 0 ? d[0] : K;
                        }
                }
                flops += 2 * outNumel * double(K);
                if (weightIn)
                    paramMatMul = true;
                else
                    actMatMul = true;
                for (int k = 0; k < std::min(node.input_size(), 2); ++k)
                    if (!isParam(node.input(k)))
                        saved += dataNumel(k);
            } else if (op == "Conv" || op == "ConvTranspose") {
                // The weights' second dimension is already per group (ONNX:
                // Conv [Cout, Cin/group, k...], ConvTranspose [Cin, Cout/group, k...]).
                double kernel = 1;
                if (node.input_size() > 1) {
                    const auto& wd = info[node.input(1)].dims;
                    for (size_t d = 2; d < wd.size(); ++d)
                        kernel *= double(std::max<int64_t>(1, wd[d]));
                    if (op == "Conv") {
                        const int64_t cinPerGroup = wd.size() > 1 ? std::max<int64_t>(1, wd[1]) : 1;
                        flops += 2 * outNumel * double(cinPerGroup) * kernel;
                    } else {
                        const int64_t coutPerGroup = wd.size() > 1 ? std::max<int64_t>(1, wd[1]) : 1;
                        flops += 2 * dataNumel(0) * double(coutPerGroup) * kernel;
                    }
                }
                saved += dataNumel(0);
            } else if (op == "Gather" && weightIn) {
                paramGather = true;
            } else if (op == "Dropout") {
                mask += outNumel;
            } else if (isActivationOp(op) || op == "Softmax" || op == "LogSoftmax" || isNormOp(op) || isPool(op)) {
                saved += dataNumel(0);
                flops += outNumel * (isNormOp(op) ? 5 : 1);
            } else if (op != "Reshape" && op != "Transpose" && op != "Squeeze" && op != "Unsqueeze" &&
                       op != "Flatten" && op != "Shape" && op != "Cast" && op != "Identity" && op != "Concat" &&
                       op != "Slice" && op != "Split" && op != "Gather") {
                flops += outNumel; // elementwise arithmetic: one FLOP per output element
            }
        }
        // What leaves the layer: outputs read by another layer or by the graph.
        double out = 0;
        for (int i : grp.nodes)
            for (const auto& o : g.node(i).output()) {
                if (o.empty())
                    continue;
                bool external = graphOutputs.count(o) > 0;
                if (auto it = consumersOf.find(o); it != consumersOf.end())
                    for (int j : it->second)
                        external |= layerOfNode[size_t(j)] != c && layerOfNode[size_t(j)] >= 0;
                if (external)
                    out += info[o].numel();
            }

        if (ops.count("Conv") || ops.count("ConvTranspose"))
            l.kind = LayerKind::Conv;
        else if (paramGather && !paramMatMul)
            l.kind = LayerKind::Embedding;
        else if (paramMatMul || ops.count("Gemm") || std::any_of(ops.begin(), ops.end(), isRecurrent))
            l.kind = LayerKind::Linear;
        else if (actMatMul && (ops.count("Softmax") || ops.count("Div") || ops.count("Mul")))
            l.kind = LayerKind::AttentionCore;
        else if (std::any_of(ops.begin(), ops.end(), isNormOp) ||
                 (ops.count("ReduceMean") && (ops.count("Sqrt") || ops.count("Pow"))))
            l.kind = LayerKind::Norm;
        else if (std::any_of(ops.begin(), ops.end(), isPool))
            l.kind = LayerKind::Pool;
        else if (std::any_of(ops.begin(), ops.end(), isActivationOp))
            l.kind = LayerKind::Activation;
        else if (ops.count("SoftmaxCrossEntropyLoss") || ops.count("NegativeLogLikelihoodLoss"))
            l.kind = LayerKind::Loss;
        else if (actMatMul)
            l.kind = LayerKind::AttentionCore;
        else
            l.kind = LayerKind::Elementwise;
        l.sparse_grad = l.kind == LayerKind::Embedding;
        if (l.kind == LayerKind::Embedding && !l.params.empty() && l.params.front().shape.size() == 2) {
            l.dims.vocab = l.params.front().shape[0];
            l.dims.out_features = l.params.front().shape[1];
        }
        if (l.kind == LayerKind::Linear && !l.params.empty() && l.params.front().shape.size() == 2) {
            l.dims.in_features = l.params.front().shape[0];
            l.dims.out_features = l.params.front().shape[1];
        }
        l.inputs = std::move(inputs);
        // Costs were summed in double: absurd shapes clamp instead of overflowing.
        auto perSample = [&](double v) { return int64_t(std::min(v / double(batch), 4e18)); };
        l.cost.flops_per_token = perSample(flops);
        l.cost.saved_elems_per_token = perSample(saved);
        l.cost.mask_bytes_per_token = perSample(mask);
        l.cost.io_elems_per_token = perSample(io);
        l.cost.output_elems_per_token = perSample(out);
        m.layers.push_back(std::move(l));
    }
    if (order.size() != size_t(comps))
        return Error{file, "graph", "the ONNX graph has a cycle"};
    if (m.layers.empty())
        return Error{file, "graph", "the ONNX graph has only Constant nodes"};
    m.param_dtype = paramType.value_or(DType::F32);
    m.notes = std::move(notes);
    if (std::string problem = validateModel(m); !problem.empty())
        return Error{file, "graph", "could not group the graph into layers: " + problem};
    return m;
}

} // namespace partita

#endif
