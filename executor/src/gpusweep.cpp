#include "partita/executor/gpusweep.h"

#include "partita/executor/cudaplugin.h"

#include "curvefit.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <map>
#include <optional>

namespace partita {

using json = nlohmann::json;

std::string gpuSweepToJson(const GpuSweep& s)
{
    json gemms = json::array(), copies = json::array(), colls = json::array();
    for (const GemmPoint& g : s.gemms)
        gemms.push_back({{"precision", g.precision}, {"shape", g.shape}, {"m", g.m}, {"n", g.n}, {"k", g.k},
                         {"seconds", g.seconds}, {"tflops", g.seconds > 0 ? g.flops() / g.seconds / 1e12 : 0.0}});
    for (const CopyPoint& c : s.copies)
        copies.push_back({{"bytes", c.bytes}, {"seconds", c.seconds}, {"gbps", c.seconds > 0 ? c.bytes / c.seconds / 1e9 : 0.0}});
    for (const CollectivePoint& c : s.collectives)
        colls.push_back({{"collective", c.collective}, {"bytes", c.bytes}, {"seconds", c.seconds},
                         {"kernels", c.kernels}, {"kernel_seconds", c.kernel_seconds}});
    const json j{{"partita_gpu_sweep", 1},
                 {"gpu", s.gpu},
                 {"driver", s.driver},
                 {"cuda_runtime", s.cuda_runtime},
                 {"cublas", s.cublas},
                 {"nccl", s.nccl},
                 {"cupti", s.cupti},
                 {"compute_capability", std::to_string(s.cc_major) + "." + std::to_string(s.cc_minor)},
                 {"multiprocessors", s.multiprocessors},
                 {"memory_bytes", s.memory_bytes},
                 {"date", s.date},
                 {"launch_overhead_s", s.launch_overhead_s},
                 {"gemms", gemms},
                 {"copies", copies},
                 {"collectives", colls},
                 {"notes", s.notes}};
    return j.dump(1) + "\n";
}

namespace {

double positive(const json& j, const char* key, const std::string& where)
{
    if (!j.contains(key) || !j[key].is_number())
        throw std::runtime_error(where + "/" + key + ": expected a number");
    const double v = j[key].get<double>();
    if (!(v > 0))
        throw std::runtime_error(where + "/" + key + ": expected a positive number, found " + std::to_string(v));
    return v;
}

GpuSweep readSweep(const json& j)
{
    if (!j.is_object() || j.value("partita_gpu_sweep", 0) != 1)
        throw std::runtime_error("not a GPU sweep (no \"partita_gpu_sweep\": 1)");
    GpuSweep s;
    s.gpu = j.value("gpu", "");
    if (s.gpu.empty())
        throw std::runtime_error("/gpu: the GPU's name is missing");
    s.driver = j.value("driver", "");
    s.cuda_runtime = j.value("cuda_runtime", "");
    s.cublas = j.value("cublas", "");
    s.nccl = j.value("nccl", "");
    s.cupti = j.value("cupti", "");
    s.date = j.value("date", "");
    s.multiprocessors = j.value("multiprocessors", 0);
    s.memory_bytes = j.value("memory_bytes", 0.0);
    const std::string cc = j.value("compute_capability", "0.0");
    s.cc_major = std::atoi(cc.c_str());
    s.cc_minor = cc.find('.') != std::string::npos ? std::atoi(cc.c_str() + cc.find('.') + 1) : 0;
    s.launch_overhead_s = j.value("launch_overhead_s", 0.0);
    for (size_t i = 0; i < j.value("gemms", json::array()).size(); ++i) {
        const json& g = j["gemms"][i];
        const std::string at = "/gemms/" + std::to_string(i);
        s.gemms.push_back({g.value("precision", ""), g.value("shape", ""), int64_t(positive(g, "m", at)),
                           int64_t(positive(g, "n", at)), int64_t(positive(g, "k", at)), positive(g, "seconds", at)});
        if (s.gemms.back().precision.empty())
            throw std::runtime_error(at + "/precision: missing");
    }
    for (size_t i = 0; i < j.value("copies", json::array()).size(); ++i) {
        const std::string at = "/copies/" + std::to_string(i);
        s.copies.push_back({positive(j["copies"][i], "bytes", at), positive(j["copies"][i], "seconds", at)});
    }
    for (const json& c : j.value("collectives", json::array()))
        s.collectives.push_back({c.value("collective", ""), c.value("bytes", 0.0), c.value("seconds", 0.0),
                                 c.value("kernels", std::vector<std::string>{}), c.value("kernel_seconds", 0.0)});
    s.notes = j.value("notes", std::vector<std::string>{});
    return s;
}

} // namespace

Result<GpuSweep> gpuSweepFromJson(const std::string& text, const std::string& file)
{
    try {
        return readSweep(json::parse(text));
    } catch (const std::exception& e) {
        return Error{file.empty() ? "GPU sweep" : file, {}, e.what()};
    }
}

namespace {

// The efficiency a 16-bit GEMM kept when a dimension was not a multiple of
// 8: the median over "unaligned" points of their FLOP rate over their
// "padded" twin's (the sweep measures them in pairs, in the same order).
// 16-bit only: the simulator's precisions (fp8 GEMMs need dimensions that
// are multiples of 16 anyway, and cuBLASLt refuses the others).
std::optional<double> unalignedFactor(const GpuSweep& s)
{
    std::map<std::string, std::vector<const GemmPoint*>> u, p;
    for (const GemmPoint& g : s.gemms)
        if (g.precision != "bf16" && g.precision != "fp16")
            continue;
        else if (g.shape == "unaligned")
            u[g.precision].push_back(&g);
        else if (g.shape == "padded")
            p[g.precision].push_back(&g);
    std::vector<double> ratios;
    for (const auto& [prec, us] : u)
        for (size_t i = 0; i < us.size() && i < p[prec].size(); ++i) {
            const GemmPoint &a = *us[i], &b = *p[prec][i];
            ratios.push_back((a.flops() / a.seconds) / (b.flops() / b.seconds));
        }
    if (ratios.empty())
        return std::nullopt;
    return std::clamp(detail::median(ratios), 1e-3, 1.0);
}

std::string secondsText(double s)
{
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3g", s);
    return buf;
}

} // namespace

Result<Calibration> calibrationFromSweep(const GpuSweep& s, const DeviceSpec& dev, const std::string& defaultPrecision)
{
    if (dev.memory_bandwidth <= 0)
        return Error{"device " + dev.name, "memory_bandwidth", "unknown: the sweep's efficiencies need the datasheet figure"};
    if (s.copies.empty())
        return Error{"GPU sweep of " + s.gpu, "copies", "no memory-bandwidth point"};
    // Only the links from the default (one GPU measures none); everything else from the sweep.
    const Calibration base = defaultCalibration(dev);
    Calibration cal;
    cal.device = dev.name;
    cal.intra_link_efficiency = base.intra_link_efficiency;
    cal.inter_link_efficiency = base.inter_link_efficiency;
    // 1. Memory: a copy of B/2 bytes is the backend's memory-bound op of B bytes.
    std::vector<detail::BinSample> mem;
    for (const CopyPoint& c : s.copies)
        mem.push_back({c.bytes / 1e6, c.bytes / dev.memory_bandwidth, c.seconds});
    cal.memory = detail::binnedCurve(mem);
    // 2. GEMMs per precision: the kernel's own time. The simulator adds an op's
    // memory traffic as its own pass, as the CUDA backend runs it (a GEMM,
    // then a copy of the op's bytes), so nothing is taken off here.
    std::map<std::string, std::vector<detail::BinSample>> byPrecision;
    std::vector<std::string> skipped;
    for (const GemmPoint& g : s.gemms) {
        const auto peak = dev.peak_flops.find(g.precision);
        if (peak == dev.peak_flops.end() || peak->second <= 0) {
            if (std::find(skipped.begin(), skipped.end(), g.precision) == skipped.end())
                skipped.push_back(g.precision);
            continue;
        }
        if (g.shape != "unaligned") // their cost is the factor below
            byPrecision[g.precision].push_back({g.flops() / 1e9, g.flops() / peak->second, g.seconds});
    }
    if (byPrecision.empty())
        return Error{"GPU sweep of " + s.gpu, "gemms", "no GEMM measured in a precision " + dev.name + " has a peak for"};
    for (auto& [p, samples] : byPrecision)
        cal.matmul_by_precision[p] = detail::binnedCurve(samples);
    auto def = cal.matmul_by_precision.find(defaultPrecision);
    cal.matmul = def != cal.matmul_by_precision.end() ? def->second : cal.matmul_by_precision.begin()->second;
    cal.matmul.interpolate = cal.memory.interpolate = true;
    // Launch overhead is inside the measured times of small ops: folded into the curves.
    cal.kernel_overhead = 0;
    if (const auto f = unalignedFactor(s))
        cal.unaligned_matmul_factor = *f;
    cal.additive = true;
    cal.source = "measured on " + s.gpu + " (driver " + s.driver + ", CUDA " + s.cuda_runtime + ", cuBLAS " + s.cublas +
                 ", " + s.date + ") by partita-cli calibrate --measure-gpu: " + std::to_string(s.gemms.size()) +
                 " GEMMs, " + std::to_string(s.copies.size()) + " copies; links not measured (one GPU): intra-node " +
                 std::to_string(int(cal.intra_link_efficiency * 100 + 0.5)) + " %, inter-node " +
                 std::to_string(int(cal.inter_link_efficiency * 100 + 0.5)) +
                 " % of link bandwidth, from the A100 tables (Calculon, Isaev et al. SC'23)";
    for (const std::string& p : skipped)
        cal.source += "; " + p + " GEMMs measured but " + dev.name + " lists no " + p + " peak";
    cal.measured = {{"gpu", s.gpu},     {"driver", s.driver}, {"cuda", s.cuda_runtime}, {"cublas", s.cublas},
                    {"nccl", s.nccl},   {"cupti", s.cupti},   {"date", s.date},
                    {"launch_overhead_s", secondsText(s.launch_overhead_s)}};
    return cal;
}

Result<GpuSweep> measureGpu(const GpuSweepOptions& options)
{
    auto p = cudaPlugin();
    if (!p)
        return p.error();
    return (*p)->measure_gpu(options);
}

} // namespace partita
