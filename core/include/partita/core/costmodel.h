#pragma once
// Device and network efficiencies the simulator's roofline uses, with their
// sources. A calibration file (measured tables) overrides them.

#include "partita/core/cluster.h"
#include "partita/core/result.h"

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace partita {

// Efficiency as a function of an operation's size: either a step function
// (the efficiency of the largest point not above the size, as threshold
// tables are published) or interpolated linearly in log(size) between points
// (measured sweeps); clamped at the ends.
struct EfficiencyCurve
{
    std::vector<std::pair<double, double>> points; // (size, fraction of peak), size ascending
    bool interpolate = false;
    double at(double size) const;
    bool operator==(const EfficiencyCurve&) const = default;
};

// The smallest link efficiency a calibration may hold: below 0.1 % of a
// link's bandwidth a measured collective says the run was starved (of CPU,
// of network), not what the link achieves.
inline constexpr double kMinLinkEfficiency = 1e-3;

struct Calibration
{
    std::string device;
    std::string source;
    EfficiencyCurve matmul; // size: GFLOP of one matmul -> fraction of peak FLOP/s
    // Measured per precision ("bf16", "fp16", "fp8", ...): where the
    // strategy's precision has a curve, it replaces `matmul`.
    std::map<std::string, EfficiencyCurve> matmul_by_precision;
    EfficiencyCurve memory; // size: MB moved by one memory-bound op -> fraction of memory bandwidth
    double intra_link_efficiency = 0; // fraction of intra-node link bandwidth a collective achieves
    double inter_link_efficiency = 0; // same for NICs
    double kernel_overhead = 0;       // seconds per launched op
    // The fraction of its efficiency a GEMM keeps when a dimension is not a
    // multiple of 16 bytes of elements (cuBLAS then takes slower kernels):
    // 1 where not measured.
    double unaligned_matmul_factor = 1.0;
    // Fused attention kernels (FlashAttention, cuDNN) by the keys one kernel
    // sees (tokens) -> fraction of peak FLOP/s, per "forward",
    // "forward_causal" (FLOPs counted after skipping masked blocks) and
    // "backward", and the same three prefixed "flash2_" for FlashAttention-2
    // (Attention::Flash2); where absent, attention runs at the matmul curve.
    std::map<std::string, EfficiencyCurve> fused_attention;
    bool additive = true;             // an op's compute and memory times add up ("sum") or overlap ("max")
    // Where the tables were measured: gpu, driver, cuda, cublas, nccl, cupti, date, command.
    std::map<std::string, std::string> measured;
    // The matmul curve for a precision ("bf16"...): its own where measured, else `matmul`.
    const EfficiencyCurve& matmulFor(const std::string& precision) const;
    bool operator==(const Calibration&) const = default;
};

// The default calibration for a device (by name), with its sources.
Calibration defaultCalibration(const DeviceSpec& device);
Result<Calibration> calibrationFromJson(const std::string& text, const std::string& file = {});
std::string calibrationToJson(const Calibration& c);

} // namespace partita
