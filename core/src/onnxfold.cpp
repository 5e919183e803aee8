// Small integer subgraphs of an ONNX graph (shapes, indices, sizes computed
// from constants) folded into initializers, so that the importer sees the
// shapes they stand for (onnxfold.h). Split from onnximport.cpp.
#ifdef PARTITA_HAVE_ONNX

#include "onnxfold.h"

#include <onnx/onnx_pb.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace partita::detail {

namespace {


struct IntTensor
{
    std::vector<int64_t> dims;
    std::vector<int64_t> v;
};

constexpr size_t kMaxFoldElements = 1 << 16;

std::optional<IntTensor> readInts(const onnx::TensorProto& t)
{
    using TP = onnx::TensorProto;
    IntTensor r;
    int64_t numel = 1;
    for (int64_t d : t.dims()) {
        if (d < 0 || d > int64_t(kMaxFoldElements))
            return std::nullopt;
        r.dims.push_back(d);
        numel *= d;
    }
    if (numel > int64_t(kMaxFoldElements) || t.data_location() == TP::EXTERNAL)
        return std::nullopt;
    if (t.data_type() == TP::INT64) {
        if (t.int64_data_size() == numel) {
            r.v.assign(t.int64_data().begin(), t.int64_data().end());
        } else if (t.raw_data().size() == size_t(numel) * 8) {
            r.v.resize(size_t(numel));
            std::memcpy(r.v.data(), t.raw_data().data(), size_t(numel) * 8); // ONNX raw data is little-endian
        } else {
            return std::nullopt;
        }
    } else if (t.data_type() == TP::INT32) {
        if (t.int32_data_size() == numel) {
            r.v.assign(t.int32_data().begin(), t.int32_data().end());
        } else if (t.raw_data().size() == size_t(numel) * 4) {
            std::vector<int32_t> tmp(static_cast<size_t>(numel));
            std::memcpy(tmp.data(), t.raw_data().data(), size_t(numel) * 4);
            r.v.assign(tmp.begin(), tmp.end());
        } else {
            return std::nullopt;
        }
    } else {
        return std::nullopt;
    }
    return r;
}

const onnx::AttributeProto* attr(const onnx::NodeProto& n, const char* name)
{
    for (const auto& a : n.attribute())
        if (a.name() == name)
            return &a;
    return nullptr;
}

int64_t numelOf(const std::vector<int64_t>& dims)
{
    int64_t n = 1;
    for (int64_t d : dims)
        n *= d;
    return n;
}

// The axes a node names: its second input where known, else its `axes` attribute.
std::optional<std::vector<int64_t>> axesOf(const onnx::NodeProto& node, const std::vector<const IntTensor*>& in)
{
    if (in.size() > 1 && in[1])
        return in[1]->v;
    if (const auto* a = attr(node, "axes"))
        return std::vector<int64_t>(a->ints().begin(), a->ints().end());
    return std::nullopt;
}

// A Constant node's value, from whichever of its attributes holds integers.
std::optional<IntTensor> evalConstant(const onnx::NodeProto& node)
{
    if (const auto* a = attr(node, "value"); a && a->has_t())
        return readInts(a->t());
    if (const auto* a = attr(node, "value_int"))
        return IntTensor{{}, {a->i()}};
    if (const auto* a = attr(node, "value_ints"))
        return IntTensor{{a->ints_size()}, {a->ints().begin(), a->ints().end()}};
    return std::nullopt;
}

// Unsqueeze: `x` with size-1 dimensions inserted at the axes.
std::optional<IntTensor> evalUnsqueeze(const onnx::NodeProto& node, const std::vector<const IntTensor*>& in,
                                       const IntTensor& x)
{
    auto axes = axesOf(node, in);
    if (!axes)
        return std::nullopt;
    IntTensor r = x;
    const int64_t rank = int64_t(x.dims.size() + axes->size());
    std::vector<int64_t> ax = *axes;
    for (auto& a : ax)
        a = a < 0 ? a + rank : a;
    std::sort(ax.begin(), ax.end());
    for (int64_t a : ax) {
        if (a < 0 || a > int64_t(r.dims.size()))
            return std::nullopt;
        r.dims.insert(r.dims.begin() + a, 1);
    }
    return r;
}

// Squeeze: `x` without the dimensions at the axes (without the axes, without every size-1 one).
std::optional<IntTensor> evalSqueeze(const onnx::NodeProto& node, const std::vector<const IntTensor*>& in,
                                     const IntTensor& x)
{
    IntTensor r = x;
    auto axes = axesOf(node, in);
    std::vector<int64_t> dims;
    for (size_t d = 0; d < x.dims.size(); ++d) {
        bool drop = false;
        if (axes) {
            for (int64_t a : *axes)
                drop |= (a < 0 ? a + int64_t(x.dims.size()) : a) == int64_t(d);
        } else {
            drop = x.dims[d] == 1;
        }
        if (!drop)
            dims.push_back(x.dims[d]);
    }
    r.dims = dims;
    return r;
}

// Concat of known vectors, end to end.
std::optional<IntTensor> evalConcat(const std::vector<const IntTensor*>& in)
{
    IntTensor r;
    for (const IntTensor* t : in) {
        if (!t || t->dims.size() != 1)
            return std::nullopt;
        r.v.insert(r.v.end(), t->v.begin(), t->v.end());
    }
    r.dims = {int64_t(r.v.size())};
    return r;
}

// Gather from the vector `x` at the second input's indices.
std::optional<IntTensor> evalGather(const std::vector<const IntTensor*>& in, const IntTensor& x)
{
    if (in.size() < 2 || !in[1] || x.dims.size() != 1)
        return std::nullopt;
    IntTensor r{in[1]->dims, {}};
    for (int64_t i : in[1]->v) {
        const int64_t k = i < 0 ? i + int64_t(x.v.size()) : i;
        if (k < 0 || k >= int64_t(x.v.size()))
            return std::nullopt;
        r.v.push_back(x.v[size_t(k)]);
    }
    return r;
}

// Add, Sub, Mul or Div of `x` and the second input, element by element or against a scalar.
std::optional<IntTensor> evalArithmetic(const std::string& op, const std::vector<const IntTensor*>& in,
                                        const IntTensor& x)
{
    if (in.size() < 2 || !in[1])
        return std::nullopt;
    const IntTensor& y = *in[1];
    const bool xs = x.v.size() == 1, ys = y.v.size() == 1;
    if (!(xs || ys || x.v.size() == y.v.size()))
        return std::nullopt;
    IntTensor r = x.v.size() >= y.v.size() ? x : y;
    for (size_t i = 0; i < r.v.size(); ++i) {
        const int64_t a = x.v[xs ? 0 : i], b = y.v[ys ? 0 : i];
        if (op == "Div" && b == 0)
            return std::nullopt;
        r.v[i] = op == "Add" ? a + b : op == "Sub" ? a - b : op == "Mul" ? a * b : a / b;
    }
    return r;
}

// Slice of the vector `x` with one start and one end, step 1.
std::optional<IntTensor> evalSlice(const std::vector<const IntTensor*>& in, const IntTensor& x)
{
    if (!(x.dims.size() == 1 && in.size() >= 3 && in[1] && in[2]))
        return std::nullopt;
    if (in[1]->v.size() != 1 || in[2]->v.size() != 1)
        return std::nullopt;
    const int64_t n = int64_t(x.v.size());
    const int64_t step = in.size() > 4 && in[4] && !in[4]->v.empty() ? in[4]->v[0] : 1;
    if (step != 1)
        return std::nullopt;
    auto clampIdx = [n](int64_t i) { return std::clamp(i < 0 ? i + n : i, int64_t(0), n); };
    const int64_t b = clampIdx(in[1]->v[0]), e = clampIdx(in[2]->v[0]);
    IntTensor r;
    for (int64_t i = b; i < e; ++i)
        r.v.push_back(x.v[size_t(i)]);
    r.dims = {int64_t(r.v.size())};
    return r;
}

// Evaluates one node on known integer inputs; nullopt when it cannot.
std::optional<IntTensor> evalInt(const onnx::NodeProto& node, const std::vector<const IntTensor*>& in)
{
    const std::string& op = node.op_type();
    if (op == "Constant")
        return evalConstant(node);
    if (in.empty() || !in[0])
        return std::nullopt;
    const IntTensor& x = *in[0];
    if (op == "Identity" || op == "Cast") {
        if (op == "Cast") {
            const auto* to = attr(node, "to");
            if (!to || (to->i() != onnx::TensorProto::INT64 && to->i() != onnx::TensorProto::INT32))
                return std::nullopt;
        }
        return x;
    }
    if (op == "Unsqueeze")
        return evalUnsqueeze(node, in, x);
    if (op == "Squeeze")
        return evalSqueeze(node, in, x);
    if (op == "Concat")
        return evalConcat(in);
    if (op == "Gather")
        return evalGather(in, x);
    if (op == "Add" || op == "Sub" || op == "Mul" || op == "Div")
        return evalArithmetic(op, in, x);
    if (op == "Slice")
        return evalSlice(in, x);
    return std::nullopt;
}

} // namespace

// Replaces nodes that compute small integer tensors from constants by
// initializers holding their values. Returns how many nodes it folded.
int foldIntegerConstants(onnx::GraphProto& g)
{
    std::unordered_map<std::string, IntTensor> known;
    for (const auto& t : g.initializer())
        if (auto v = readInts(t))
            known.emplace(t.name(), std::move(*v));
    std::vector<bool> drop(size_t(g.node_size()), false);
    std::vector<std::string> produced;
    int folded = 0;
    for (int i = 0; i < g.node_size(); ++i) {
        const auto& node = g.node(i);
        if (node.output_size() != 1)
            continue;
        std::vector<const IntTensor*> in;
        bool ok = true;
        for (const auto& name : node.input()) {
            if (name.empty()) {
                in.push_back(nullptr);
                continue;
            }
            auto it = known.find(name);
            if (it == known.end()) {
                ok = false;
                break;
            }
            in.push_back(&it->second);
        }
        if (!ok)
            continue;
        auto r = evalInt(node, in);
        if (!r || r->v.size() != size_t(numelOf(r->dims)) || r->v.size() > kMaxFoldElements)
            continue;
        known[node.output(0)] = std::move(*r);
        produced.push_back(node.output(0));
        drop[size_t(i)] = true;
        ++folded;
    }
    if (!folded)
        return 0;
    google::protobuf::RepeatedPtrField<onnx::NodeProto> kept;
    for (int i = 0; i < g.node_size(); ++i)
        if (!drop[size_t(i)])
            *kept.Add() = g.node(i);
    g.mutable_node()->Swap(&kept);
    for (const auto& name : produced) {
        const IntTensor& t = known[name];
        onnx::TensorProto* init = g.add_initializer();
        init->set_name(name);
        init->set_data_type(onnx::TensorProto::INT64);
        for (int64_t d : t.dims)
            init->add_dims(d);
        for (int64_t v : t.v)
            init->add_int64_data(v);
    }
    return folded;
}

} // namespace partita::detail

#endif
