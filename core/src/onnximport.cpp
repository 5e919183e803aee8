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
#include <onnx/shape_inference/implementation.h>

#include "onnxfold.h"
#include "onnxreader.h"

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

}

namespace detail {

namespace {

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

// Weights of absurd size (a dimension over 2^40 or over 2^50 elements) are refused.
bool absurd(const onnx::TensorProto& t)
{
    double n = 1;
    for (int64_t d : t.dims()) {
        if (d < 0 || d > (int64_t(1) << 40))
            return true;
        n *= double(d);
    }
    return n > double(int64_t(1) << 50);
}

} // namespace

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

// Every value is defined once (single static assignment): a graph input, an
// initializer or a node output. ONNX's shape inference reads out of bounds on
// graphs that break this (found by fuzzing), so they are refused. So are
// window attributes it divides by or loops over (a zero stride crashed it
// under fuzzing): sizes must be positive, pads not negative.
Result<bool> OnnxReader::checkStructure()
{
    const std::string& file = m_file;
    const onnx::ModelProto& proto = m_proto;
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
    return true;
}

// Shape inference where value_info is missing, on a copy in which small
// integer subgraphs (the shape arithmetic exporters emit before a Reshape)
// are folded into initializers: ONNX's inference reads shapes from
// initializers but does not evaluate such chains itself. It trusts each node
// to match its operator's schema, so it runs only when the ONNX checker
// accepts every node; failures leave shapes unknown, never abort.
void OnnxReader::inferShapes()
{
    const onnx::ModelProto& proto = m_proto;
    m_inferred = proto;
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
        m_notes.push_back("the ONNX checker rejects a node (" + why + "): shapes come from value_info only");
    }
    if (checked) {
        detail::foldIntegerConstants(*m_inferred.mutable_graph());
        try {
            std::unordered_map<std::string, onnx::TensorShapeProto> generated;
            onnx::shape_inference::InferShapes(m_inferred, onnx::OpSchemaRegistry::Instance(),
                                               onnx::ShapeInferenceOptions(false, 0, true), &generated);
        } catch (const std::exception& e) {
            m_notes.push_back(std::string("shape inference stopped early: ") + e.what());
        }
    }
}

// Shapes and types: the initializers', the graph inputs', what inference found.
Result<bool> OnnxReader::readTensors()
{
    for (const auto& t : g().initializer()) {
        if (absurd(t))
            return Error{m_file, "initializer '" + t.name() + "'", "has a negative or absurd shape"};
        m_info[t.name()] = infoFromTensor(t);
        m_weights.insert(t.name());
        m_weightProto[t.name()] = &t;
    }
    for (const auto& v : g().input())
        if (!m_weights.count(v.name()))
            m_info[v.name()] = infoFromType(v.type());
    for (const auto& v : m_inferred.graph().value_info())
        m_info[v.name()] = infoFromType(v.type());
    for (const auto& v : m_inferred.graph().output())
        if (!m_info.count(v.name()) || !m_info[v.name()].known)
            m_info[v.name()] = infoFromType(v.type());
    return true;
}

const std::string& OnnxReader::root(const std::string& t) const
{
    auto it = m_alias.find(t);
    return it == m_alias.end() ? t : it->second;
}

// Static nodes compute only from constants (shape arithmetic, a Transpose of
// a weight): their outputs are constants too. A view of a weight aliases it,
// so the layer that reads the view owns the parameter.
Result<bool> OnnxReader::readNodes()
{
    static const std::set<std::string> kViewOps{"Transpose", "Cast",    "Identity", "Reshape",
                                                "Unsqueeze", "Squeeze", "Flatten",  "DequantizeLinear"};
    m_n = g().node_size();
    m_nodeName.assign(size_t(m_n), {});
    m_isStatic.assign(size_t(m_n), false);
    for (int i = 0; i < m_n; ++i) {
        const auto& node = g().node(i);
        m_nodeName[size_t(i)] = node.name().empty() ? node.op_type() + "#" + std::to_string(i) : node.name();
        if (node.op_type() == "Constant") {
            m_isStatic[size_t(i)] = true;
            for (const auto& a : node.attribute()) {
                if (a.name() == "value" && a.has_t() && absurd(a.t()))
                    return Error{m_file, "node '" + m_nodeName[size_t(i)] + "' (Constant)", "has a negative or absurd shape"};
                if (a.name() == "value" && a.has_t() && node.output_size() == 1) {
                    m_info[node.output(0)] = infoFromTensor(a.t());
                    m_weightProto[node.output(0)] = &a.t();
                }
            }
            for (const auto& o : node.output())
                m_weights.insert(o);
            continue;
        }
        const bool allConstant =
            node.input_size() > 0 &&
            std::all_of(node.input().begin(), node.input().end(),
                        [&](const std::string& in) { return in.empty() || m_weights.count(in) > 0; });
        if (allConstant && node.op_type().find("Random") == std::string::npos) {
            m_isStatic[size_t(i)] = true;
            for (const auto& o : node.output()) {
                m_weights.insert(o);
                if (kViewOps.count(node.op_type()))
                    m_alias[o] = root(node.input(0));
            }
            continue;
        }
        for (const auto& o : node.output())
            if (!o.empty())
                m_producer[o] = i;
    }
    return true;
}

// Every input must be defined by a node, a graph input or an initializer.
Result<bool> OnnxReader::checkInputsDefined()
{
    std::unordered_set<std::string> defined(m_weights.begin(), m_weights.end());
    for (const auto& v : g().input())
        defined.insert(v.name());
    for (const auto& node : g().node())
        for (const auto& o : node.output())
            defined.insert(o);
    for (int i = 0; i < m_n; ++i)
        for (const auto& in : g().node(i).input())
            if (!in.empty() && !defined.count(in))
                return Error{m_file, "node '" + m_nodeName[size_t(i)] + "' (" + g().node(i).op_type() + ")",
                             "reads '" + in + "', which no node, graph input or initializer defines"};
    return true;
}

// Which weight tensors are trainable parameters: floating, more than one
// element, and read by some node as a data input (not as a shape, scale or
// running statistic).
void OnnxReader::findParameters()
{
    for (int i = 0; i < m_n; ++i) {
        const auto& node = g().node(i);
        if (m_isStatic[size_t(i)])
            continue;
        for (int k = 0; k < node.input_size(); ++k) {
            const std::string& in = root(node.input(k));
            if (!m_weights.count(in) || isConfigInput(node.op_type(), k))
                continue;
            const TensorInfo& ti = m_info[in];
            if (!floatingType(ti.elemType) || ti.numel() <= 1)
                continue;
            m_paramOwnerNode.try_emplace(in, i);
        }
    }
}

bool OnnxReader::isParam(const std::string& t) const { return m_paramOwnerNode.count(root(t)) > 0; }

bool OnnxReader::hasParamInput(const onnx::NodeProto& node) const
{
    return std::any_of(node.input().begin(), node.input().end(), [&](const std::string& in) { return isParam(in); });
}

// The batch dimension of the first non-weight graph input, to report costs
// per sample; symbolic dimensions other than the batch count as 1: said so,
// since a symbolic sequence length turns per-sample costs into per-token ones.
void OnnxReader::noteBatchAndSymbols()
{
    for (const auto& v : g().input()) {
        if (m_weights.count(v.name()))
            continue;
        const TensorInfo& ti = m_info[v.name()];
        if (ti.known && !ti.dims.empty() && ti.dims[0] > 1)
            m_batch = ti.dims[0];
        break;
    }
    if (m_batch > 1)
        m_notes.push_back("exported with batch " + std::to_string(m_batch) + "; costs are divided by it (per sample)");
    std::set<std::string> symbolic;
    for (const auto& v : g().input()) {
        if (m_weights.count(v.name()) || !v.type().has_tensor_type())
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
        m_notes.push_back("symbolic input dimension(s) " + names +
                          " taken as 1: export with fixed shapes for costs at your sizes");
    }
}

Result<Model> OnnxReader::read()
{
    if (auto r = checkStructure(); !r)
        return r.error();
    inferShapes();
    if (auto r = readTensors(); !r)
        return r.error();
    if (auto r = readNodes(); !r)
        return r.error();
    if (auto r = checkInputsDefined(); !r)
        return r.error();
    findParameters();
    noteBatchAndSymbols();
    groupNodes();
    mergeCycles();
    attachStatic();
    orderLayers();
    return buildLayers();
}

} // namespace detail

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
    detail::OnnxReader reader(std::move(proto), file);
    return reader.read();
}

} // namespace partita

#endif
