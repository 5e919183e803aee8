// Native model JSON: the format documented in docs/formats.md.
#include "jsonread.h"
#include "partita/core/modelio.h"

namespace partita {

using detail::json;
using detail::sub;

namespace {

constexpr int kFormatVersion = 1;
constexpr int64_t kMaxDim = int64_t(1) << 40; // no real tensor dimension comes near 10^12
constexpr int64_t kMaxCoef = int64_t(1) << 62;
constexpr int64_t kMaxParams = int64_t(1) << 50; // 10^15 parameters

struct DimField
{
    const char* key;
    int64_t LayerDims::*member;
};
constexpr DimField kLayerDims[] = {
    {"in_features", &LayerDims::in_features},
    {"out_features", &LayerDims::out_features},
    {"heads", &LayerDims::heads},
    {"kv_heads", &LayerDims::kv_heads},
    {"head_dim", &LayerDims::head_dim},
    {"experts", &LayerDims::experts},
    {"top_k", &LayerDims::top_k},
    {"vocab", &LayerDims::vocab},
    {"causal", &LayerDims::causal},
};
struct ModelDimField
{
    const char* key;
    int64_t ModelDims::*member;
};
constexpr ModelDimField kModelDims[] = {
    {"hidden", &ModelDims::hidden},     {"layers", &ModelDims::layers}, {"heads", &ModelDims::heads},
    {"kv_heads", &ModelDims::kv_heads}, {"ffn", &ModelDims::ffn},       {"vocab", &ModelDims::vocab},
    {"experts", &ModelDims::experts},   {"top_k", &ModelDims::top_k},
};
struct CostField
{
    const char* key;
    int64_t LayerCost::*member;
};
constexpr CostField kCost[] = {
    {"flops_per_token", &LayerCost::flops_per_token},
    {"flops_per_seq2", &LayerCost::flops_per_seq2},
    {"flops_per_sample", &LayerCost::flops_per_sample},
    {"saved_elems_per_token", &LayerCost::saved_elems_per_token},
    {"saved_elems_per_seq2", &LayerCost::saved_elems_per_seq2},
    {"mask_bytes_per_token", &LayerCost::mask_bytes_per_token},
    {"mask_bytes_per_seq2", &LayerCost::mask_bytes_per_seq2},
    {"saved_elems_per_sample", &LayerCost::saved_elems_per_sample},
    {"output_elems_per_token", &LayerCost::output_elems_per_token},
    {"io_elems_per_token", &LayerCost::io_elems_per_token},
    {"io_elems_per_seq2", &LayerCost::io_elems_per_seq2},
};

DType readDType(const json& j, const std::string& path)
{
    const std::string s = detail::asString(j, path);
    auto t = parseDType(s);
    if (!t)
        throw detail::FieldError(path, "unknown dtype '" + s + "'");
    return *t;
}

std::vector<std::string> readStrings(const json& j, const std::string& path)
{
    std::vector<std::string> out;
    const json& arr = detail::asArray(j, path);
    for (size_t i = 0; i < arr.size(); ++i)
        out.push_back(detail::asString(arr[i], sub(path, i)));
    return out;
}

Layer readLayer(const json& j, const std::string& path)
{
    detail::asObject(j, path);
    Layer l;
    l.name = detail::getString(j, "name", path);
    if (l.name.empty())
        throw detail::FieldError(sub(path, "name"), "layer name is empty");
    const std::string kind = detail::getString(j, "kind", path);
    auto k = parseLayerKind(kind);
    if (!k)
        throw detail::FieldError(sub(path, "kind"), "unknown layer kind '" + kind + "'");
    l.kind = *k;
    l.block = detail::getStringOr(j, "block", path, {});
    if (const json* in = detail::optField(j, "inputs"))
        l.inputs = readStrings(*in, sub(path, "inputs"));
    if (const json* ps = detail::optField(j, "params")) {
        const std::string ppath = sub(path, "params");
        detail::asArray(*ps, ppath);
        for (size_t i = 0; i < ps->size(); ++i) {
            const json& pj = (*ps)[i];
            const std::string pp = sub(ppath, i);
            detail::asObject(pj, pp);
            TensorSpec t;
            t.name = detail::getString(pj, "name", pp);
            const json& shape = detail::asArray(detail::field(pj, "shape", pp), sub(pp, "shape"));
            if (shape.empty())
                throw detail::FieldError(sub(pp, "shape"), "a parameter needs at least one dimension");
            int64_t numel = 1;
            for (size_t d = 0; d < shape.size(); ++d) {
                const int64_t v = detail::asInt(shape[d], sub(sub(pp, "shape"), d), 1, kMaxDim);
                if (numel > kMaxParams / v)
                    throw detail::FieldError(sub(pp, "shape"), "the tensor has more than 2^50 elements");
                numel *= v;
                t.shape.push_back(v);
            }
            if (const json* dt = detail::optField(pj, "dtype"))
                t.dtype = readDType(*dt, sub(pp, "dtype"));
            l.params.push_back(std::move(t));
        }
    }
    l.tied_to = detail::getStringOr(j, "tied_to", path, {});
    l.sparse_grad = detail::getBoolOr(j, "sparse_grad", path, false);
    if (const json* d = detail::optField(j, "dims")) {
        const std::string dp = sub(path, "dims");
        detail::asObject(*d, dp);
        for (const auto& f : kLayerDims)
            l.dims.*f.member = detail::getIntOr(*d, f.key, dp, 0, kMaxDim, 0);
    }
    if (const json* c = detail::optField(j, "cost")) {
        const std::string cp = sub(path, "cost");
        detail::asObject(*c, cp);
        for (const auto& f : kCost)
            l.cost.*f.member = detail::getIntOr(*c, f.key, cp, 0, kMaxCoef, 0);
    }
    if (const json* s = detail::optField(j, "source_nodes"))
        l.source_nodes = readStrings(*s, sub(path, "source_nodes"));
    return l;
}

json writeLayer(const Layer& l)
{
    json j;
    j["name"] = l.name;
    j["kind"] = std::string(layerKindName(l.kind));
    if (!l.block.empty())
        j["block"] = l.block;
    j["inputs"] = l.inputs;
    json params = json::array();
    for (const auto& p : l.params)
        params.push_back({{"name", p.name}, {"shape", p.shape}, {"dtype", std::string(dtypeName(p.dtype))}});
    j["params"] = std::move(params);
    if (!l.tied_to.empty())
        j["tied_to"] = l.tied_to;
    if (l.sparse_grad)
        j["sparse_grad"] = true;
    json dims = json::object();
    for (const auto& f : kLayerDims)
        if (l.dims.*f.member != 0)
            dims[f.key] = l.dims.*f.member;
    if (!dims.empty())
        j["dims"] = std::move(dims);
    json cost = json::object();
    for (const auto& f : kCost)
        if (l.cost.*f.member != 0)
            cost[f.key] = l.cost.*f.member;
    j["cost"] = std::move(cost);
    if (!l.source_nodes.empty())
        j["source_nodes"] = l.source_nodes;
    return j;
}

} // namespace

std::string modelToJson(const Model& m)
{
    json j;
    j["partita_model"] = kFormatVersion;
    j["name"] = m.name;
    j["family"] = m.family;
    j["param_dtype"] = std::string(dtypeName(m.param_dtype));
    j["sequence"] = m.sequence;
    j["seq_len"] = m.seq_len;
    json dims = json::object();
    for (const auto& f : kModelDims)
        if (m.dims.*f.member != 0)
            dims[f.key] = m.dims.*f.member;
    j["dims"] = std::move(dims);
    json layers = json::array();
    for (const auto& l : m.layers)
        layers.push_back(writeLayer(l));
    j["layers"] = std::move(layers);
    if (!m.notes.empty())
        j["notes"] = m.notes;
    return j.dump(1) + "\n";
}

Result<Model> modelFromJson(const std::string& text, const std::string& file)
{
    return detail::readDocument<Model>(
        text, file, "partita_model", kFormatVersion, [&](const json& j) -> Result<Model> {
            Model m;
            m.name = detail::getStringOr(j, "name", "", {});
            m.family = detail::getStringOr(j, "family", "", "native");
            if (const json* dt = detail::optField(j, "param_dtype"))
                m.param_dtype = readDType(*dt, "/param_dtype");
            m.sequence = detail::getBoolOr(j, "sequence", "", true);
            m.seq_len = detail::getIntOr(j, "seq_len", "", 1, kMaxDim, 1);
            if (const json* d = detail::optField(j, "dims")) {
                detail::asObject(*d, "/dims");
                for (const auto& f : kModelDims)
                    m.dims.*f.member = detail::getIntOr(*d, f.key, "/dims", 0, kMaxDim, 0);
            }
            const json& layers = detail::asArray(detail::field(j, "layers", ""), "/layers");
            int64_t total = 0;
            for (size_t i = 0; i < layers.size(); ++i) {
                m.layers.push_back(readLayer(layers[i], sub("/layers", i)));
                total += m.layers.back().parameterCount();
                if (total > kMaxParams)
                    throw detail::FieldError(sub("/layers", i), "the model has more than 2^50 parameters");
            }
            if (const json* notes = detail::optField(j, "notes"))
                m.notes = readStrings(*notes, "/notes");
            if (std::string problem = validateModel(m); !problem.empty())
                return Error{file, "/layers", problem};
            return m;
        });
}

} // namespace partita
