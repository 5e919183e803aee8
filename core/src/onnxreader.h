#pragma once
// modelFromOnnx's steps (onnximport.cpp: the graph checked, shapes inferred,
// tensors and parameters found; onnxlayers.cpp: nodes grouped into layers,
// the groups ordered, each layer's parameters and costs). Internal to core,
// built only with libonnx.

#include "partita/core/model.h"
#include "partita/core/result.h"

#include <onnx/onnx_pb.h>

#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace partita::detail {

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

std::optional<DType> fromOnnxType(int32_t t);
bool isPool(const std::string& op);
bool isNormOp(const std::string& op);
bool isActivationOp(const std::string& op);
bool isRecurrent(const std::string& op);
std::string blockOf(const std::string& scope);
std::string dotted(const std::string& scope);

struct OnnxGroup
{
    std::string key;
    std::vector<int> nodes;
};

// What a layer's nodes add up to, read node by node.
struct OnnxLayerSums
{
    std::set<std::string> ops;
    bool paramMatMul = false, actMatMul = false, paramGather = false;
    double flops = 0, saved = 0, mask = 0, io = 0;
    std::vector<std::string> inputs; // the layers it reads from
};

class OnnxReader
{
public:
    OnnxReader(onnx::ModelProto proto, const std::string& file) : m_proto(std::move(proto)), m_file(file) {}
    OnnxReader(const OnnxReader&) = delete;            // holds pointers into its own proto
    OnnxReader& operator=(const OnnxReader&) = delete;
    Result<Model> read();

private:
    const onnx::GraphProto& g() const { return m_proto.graph(); }
    // onnximport.cpp
    Result<bool> checkStructure();
    void inferShapes();
    Result<bool> readTensors();
    Result<bool> readNodes();
    Result<bool> checkInputsDefined();
    void findParameters();
    void noteBatchAndSymbols();
    const std::string& root(const std::string& t) const;
    bool isParam(const std::string& t) const;
    bool hasParamInput(const onnx::NodeProto& node) const;
    // onnxlayers.cpp
    void groupNodes();
    int latestProducer(const onnx::NodeProto& node) const;
    void mergeCycles();
    void attachStatic();
    void orderLayers();
    Result<Model> buildLayers();
    Layer buildLayer(int c, std::set<std::string>& usedNames, std::unordered_set<std::string>& claimed,
                     std::optional<DType>& paramType);
    void addInputs(Layer& l, int c, const onnx::NodeProto& node, OnnxLayerSums& sums, std::unordered_set<std::string>& claimed,
                   std::optional<DType>& paramType);
    void addCost(const onnx::NodeProto& node, OnnxLayerSums& sums);
    double externalOutputs(int c) const;

    onnx::ModelProto m_proto, m_inferred;
    const std::string& m_file;
    std::vector<std::string> m_notes;
    // Tensors: shapes, the weights (initializers, constants and what only
    // constants feed), views of weights, producers, parameters.
    std::unordered_map<std::string, TensorInfo> m_info;
    std::unordered_set<std::string> m_weights;
    std::unordered_map<std::string, const onnx::TensorProto*> m_weightProto;
    std::unordered_map<std::string, std::string> m_alias;
    std::unordered_map<std::string, int> m_producer;
    std::unordered_map<std::string, int> m_paramOwnerNode;
    int m_n = 0;
    std::vector<std::string> m_nodeName;
    std::vector<bool> m_isStatic;
    int64_t m_batch = 1;
    // Grouping: nodes into groups, groups merged where they depend on each
    // other both ways (components), components in order.
    bool m_useScopes = false;
    std::vector<int> m_groupOf;
    std::vector<OnnxGroup> m_groups;
    std::unordered_map<std::string, std::vector<int>> m_consumersOf;
    std::vector<std::set<int>> m_edges;
    std::vector<int> m_comp;
    int m_comps = 0;
    std::vector<OnnxGroup> m_merged;
    std::vector<int> m_firstNode, m_layerOfNode, m_order;
    std::unordered_set<std::string> m_graphOutputs;
    std::vector<std::string> m_layerName;
};

} // namespace partita::detail
