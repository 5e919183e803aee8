#include "partita/core/costmodel.h"

#include "jsonread.h"

#include <algorithm>
#include <cmath>

namespace partita {

namespace detail {
extern const char* const kMeasuredH200Calibration; // measuredcalibration.cpp, generated
}

using detail::json;
using detail::sub;

double EfficiencyCurve::at(double size) const
{
    if (points.empty())
        return 1.0;
    if (size <= points.front().first)
        return points.front().second;
    if (size >= points.back().first)
        return points.back().second;
    if (!interpolate) {
        double e = points.front().second;
        for (const auto& [x, y] : points)
            if (x <= size)
                e = y;
        return e;
    }
    for (size_t i = 1; i < points.size(); ++i) {
        const auto& [x1, y1] = points[i];
        if (size > x1)
            continue;
        const auto& [x0, y0] = points[i - 1];
        if (x0 <= 0)
            return y0 + (y1 - y0) * size / x1;
        const double t = (std::log(size) - std::log(x0)) / (std::log(x1) - std::log(x0));
        return y0 + t * (y1 - y0);
    }
    return points.back().second;
}

const EfficiencyCurve& Calibration::matmulFor(const std::string& precision) const
{
    auto it = matmul_by_precision.find(precision);
    return it != matmul_by_precision.end() ? it->second : matmul;
}

namespace {

// Efficiency tables of NVIDIA A100 80GB measured by NVIDIA and published with
// Calculon (Isaev et al., SC'23; calculon systems/a100_80g.json): matmul
// efficiency by GFLOP per op, memory-bound efficiency by MB per op, NVLink
// collectives at 60 % and InfiniBand at 90 % of link bandwidth. The tables
// are thresholds: an op gets the efficiency of the largest threshold not
// above its size.
Calibration a100Tables(const DeviceSpec& device)
{
    Calibration c;
    c.device = device.name;
    c.source = "A100 tables measured by NVIDIA, published with Calculon (Isaev et al. SC'23)";
    c.matmul.points = {{0, 0.1}, {1, 0.6}, {16, 0.9}, {128, 0.95}};
    c.memory.points = {{0, 0.3}, {1, 0.6}, {10, 0.75}, {100, 0.9}};
    // Calculon's "no_overlap" processing mode, in which these tables were
    // fitted: an op's compute time and memory time add up.
    c.additive = true;
    c.intra_link_efficiency = 0.6;
    c.inter_link_efficiency = 0.9;
    // CUDA kernel launch latency of a few microseconds (NVIDIA CUDA C++ Best
    // Practices Guide, "Kernel launch overhead"); 5 us used per op.
    c.kernel_overhead = 5e-6;
    return c;
}

// Fused attention on the H100 SXM5 in bf16, head dimension 128, as cuDNN and
// FlashAttention-2 ran it in Shah et al. 2024 (FlashAttention-3), Figures 5
// and 6: TFLOP/s by sequence length (512 ... 16k) over the datasheet's 989
// TFLOP/s. The backward's figure is without a causal mask (the paper shows no
// other).
void hopperFusedAttention(Calibration& c)
{
    auto curve = [](std::initializer_list<double> tflops) {
        EfficiencyCurve e;
        e.interpolate = true;
        double keys = 512;
        for (double t : tflops) {
            e.points.emplace_back(keys, t / 989.0);
            keys *= 2;
        }
        return e;
    };
    c.fused_attention["forward"] = curve({497, 574, 617, 609, 600, 595});
    c.fused_attention["forward_causal"] = curve({315, 410, 484, 518, 529, 539});
    c.fused_attention["backward"] = curve({305, 408, 465, 499, 518, 516});
    c.fused_attention["flash2_forward"] = curve({309, 350, 362, 368, 370, 370});
    c.fused_attention["flash2_forward_causal"] = curve({191, 260, 298, 319, 333, 335});
    c.fused_attention["flash2_backward"] = curve({214, 260, 291, 310, 318, 322});
    c.source += "; fused attention: cuDNN and FlashAttention-2 on an H100 SXM5 as published by Shah et al. 2024 "
                "(FlashAttention-3, Figs. 5-6)";
}

// Hopper SXM parts: the H200 measured here, and the H100 SXM5 with the same
// GH100 compute die (132 SMs at the same clocks, the same datasheet tensor
// peaks), whose memory efficiency is taken as the same fraction of its own
// datasheet bandwidth.
bool hopperSxm(const std::string& name)
{
    return name.find("H200") != std::string::npos || name.find("H100-SXM") != std::string::npos ||
           name.find("H100 80GB HBM3") != std::string::npos;
}

// The H100 SXM5 gets the H200 table's shape, scaled so that its best GEMM is
// what Bekman's MAMF finder published for an H100 SXM with CUDA 12.6 (the
// software generation of the runs people report: NeMo 24.x, Megatron-LM on
// PyTorch 2.x): 794.5 TFLOP/s bf16 (80.3 % of 989) and 1402.6 TFLOP/s fp8
// (70.9 % of 1979), the mean of 100 iterations after 50 warm-up ones over a
// shape sweep (stas00/ml-engineering 744d01e, compute/accelerator/README.md,
// "Maximum Achievable Matmul FLOPS comparison table"). Our H200 table was
// measured with CUDA 13.0 / cuBLAS 13.1 in millisecond bursts and peaks 6 %
// higher (85.2 % bf16, 78.3 % fp8).
void scaleToMamf(Calibration& c)
{
    auto scale = [](EfficiencyCurve& curve, double mamf) {
        double best = 0;
        for (const auto& p : curve.points)
            best = std::max(best, p.second);
        if (best <= mamf)
            return;
        for (auto& p : curve.points)
            p.second *= mamf / best;
    };
    constexpr double kBf16 = 794.5 / 989.0, kFp8 = 1402.6 / 1979.0;
    scale(c.matmul, kBf16);
    for (auto& [precision, curve] : c.matmul_by_precision)
        scale(curve, precision == "fp8" ? kFp8 : kBf16);
    c.source += "; GEMMs scaled to the published H100 SXM MAMF (Bekman, ml-engineering: 794.5 TFLOP/s bf16, "
                "1402.6 fp8, CUDA 12.6)";
}

} // namespace

Calibration defaultCalibration(const DeviceSpec& device)
{
    if (device.kind != "cpu" && hopperSxm(device.name)) {
        // tests/gpu/gpu-check.sh on an H200 (resources/calibration/nvidia-h200.json).
        // Parsed once: the simulator asks for it on every simulation (thousands in a search).
        static const Result<Calibration> parsed =
            calibrationFromJson(detail::kMeasuredH200Calibration, "resources/calibration/nvidia-h200.json");
        if (parsed) {
            Calibration measured = *parsed;
            measured.device = device.name;
            if (measured.fused_attention.empty())
                hopperFusedAttention(measured);
            if (device.name.find("H200") == std::string::npos) {
                measured.source += "; applied to " + device.name +
                                   ", whose GH100 die is the H200's (memory as a fraction of its own bandwidth)";
                scaleToMamf(measured);
            }
            return measured;
        }
    }
    Calibration c = a100Tables(device);
    if (device.kind == "cpu")
        c.source += " (applied to a CPU: no CPU measurement yet)";
    else if (device.name.find("A100") == std::string::npos)
        c.source += " (applied to " + device.name + ": no measurement of this device yet)";
    return c;
}

namespace {
EfficiencyCurve readCurve(const json& j, const std::string& path)
{
    EfficiencyCurve c;
    detail::asArray(j, path);
    if (j.empty())
        throw detail::FieldError(path, "an efficiency table needs at least one [size, efficiency] point");
    double last = 0;
    for (size_t i = 0; i < j.size(); ++i) {
        const std::string p = sub(path, i);
        const json& pt = detail::asArray(j[i], p);
        if (pt.size() != 2)
            throw detail::FieldError(p, "expected [size, efficiency]");
        const double x = detail::asNumber(pt[0], sub(p, size_t(0)), 0.0, 1e18);
        // Above 1 when caches beat the device's DRAM figure (CPUs, small ops).
        const double y = detail::asNumber(pt[1], sub(p, size_t(1)), 1e-6, 16.0);
        if (i > 0 && x <= last)
            throw detail::FieldError(sub(p, size_t(0)), "sizes must increase");
        last = x;
        c.points.emplace_back(x, y);
    }
    return c;
}
json writeCurve(const EfficiencyCurve& c)
{
    json a = json::array();
    for (const auto& [x, y] : c.points)
        a.push_back({x, y});
    return a;
}
} // namespace

Result<Calibration> calibrationFromJson(const std::string& text, const std::string& file)
{
    return detail::readDocument<Calibration>(
        text, file, "partita_calibration", 1, [&](const json& j) -> Result<Calibration> {
            Calibration c;
            c.device = detail::getString(j, "device", "");
            c.source = detail::getString(j, "source", "");
            c.matmul = readCurve(detail::field(j, "matmul_efficiency", ""), "/matmul_efficiency");
            c.memory = readCurve(detail::field(j, "memory_efficiency", ""), "/memory_efficiency");
            c.matmul.interpolate = c.memory.interpolate = detail::getBoolOr(j, "interpolate", "", true);
            if (j.contains("matmul_efficiency_by_precision")) {
                const json& by = detail::field(j, "matmul_efficiency_by_precision", "");
                if (!by.is_object())
                    throw detail::FieldError("/matmul_efficiency_by_precision", "expected an object of precision: table");
                for (const auto& [key, table] : by.items()) {
                    EfficiencyCurve curve = readCurve(table, "/matmul_efficiency_by_precision/" + key);
                    curve.interpolate = c.matmul.interpolate;
                    c.matmul_by_precision[key] = std::move(curve);
                }
            }
            if (j.contains("measured")) {
                const json& m = detail::field(j, "measured", "");
                if (!m.is_object())
                    throw detail::FieldError("/measured", "expected an object of strings");
                for (const auto& [key, value] : m.items()) {
                    if (!value.is_string())
                        throw detail::FieldError("/measured/" + key, "expected a string");
                    c.measured[key] = value.get<std::string>();
                }
            }
            c.intra_link_efficiency = detail::getNumberOr(j, "intra_link_efficiency", "", kMinLinkEfficiency, 1.0, 0.6);
            c.inter_link_efficiency = detail::getNumberOr(j, "inter_link_efficiency", "", kMinLinkEfficiency, 1.0, 0.9);
            c.kernel_overhead = detail::getNumberOr(j, "kernel_overhead_s", "", 0.0, 1.0, 5e-6);
            c.unaligned_matmul_factor = detail::getNumberOr(j, "unaligned_matmul_factor", "", 1e-3, 1.0, 1.0);
            if (j.contains("fused_attention_efficiency")) {
                const json& fa = detail::field(j, "fused_attention_efficiency", "");
                if (!fa.is_object())
                    throw detail::FieldError("/fused_attention_efficiency", "expected an object of pass: table");
                for (const auto& [key, table] : fa.items()) {
                    const std::string pass = key.rfind("flash2_", 0) == 0 ? key.substr(7) : key;
                    if (pass != "forward" && pass != "forward_causal" && pass != "backward")
                        throw detail::FieldError("/fused_attention_efficiency/" + key,
                                                 "expected \"forward\", \"forward_causal\" or \"backward\", "
                                                 "or one of them after \"flash2_\"");
                    EfficiencyCurve curve = readCurve(table, "/fused_attention_efficiency/" + key);
                    curve.interpolate = true;
                    c.fused_attention[key] = std::move(curve);
                }
            }
            const std::string combine = detail::getStringOr(j, "combine", "", "max");
            if (combine != "sum" && combine != "max")
                throw detail::FieldError("/combine", "expected \"sum\" or \"max\", found '" + combine + "'");
            c.additive = combine == "sum";
            return c;
        });
}

std::string calibrationToJson(const Calibration& c)
{
    json j{{"partita_calibration", 1},
           {"device", c.device},
           {"source", c.source},
           {"matmul_efficiency", writeCurve(c.matmul)},
           {"memory_efficiency", writeCurve(c.memory)},
           {"interpolate", c.matmul.interpolate},
           {"intra_link_efficiency", c.intra_link_efficiency},
           {"inter_link_efficiency", c.inter_link_efficiency},
           {"kernel_overhead_s", c.kernel_overhead},
           {"unaligned_matmul_factor", c.unaligned_matmul_factor},
           {"combine", c.additive ? "sum" : "max"}};
    if (!c.matmul_by_precision.empty()) {
        json by = json::object();
        for (const auto& [key, curve] : c.matmul_by_precision)
            by[key] = writeCurve(curve);
        j["matmul_efficiency_by_precision"] = by;
    }
    if (!c.fused_attention.empty()) {
        json fa = json::object();
        for (const auto& [key, curve] : c.fused_attention)
            fa[key] = writeCurve(curve);
        j["fused_attention_efficiency"] = fa;
    }
    if (!c.measured.empty())
        j["measured"] = c.measured;
    return j.dump(1) + "\n";
}

} // namespace partita
