#pragma once
// A GPU measured on its own: the tables a calibration file holds, timed with
// CUDA events on one GPU (the CUDA plugin, libpartita_cuda.so, measures;
// everything else here is plain C++ and runs, and is tested, without a GPU).
//  - GEMMs through cuBLAS in each precision (bf16 and fp16 with cublasGemmEx,
//    as the CUDA backend runs them; fp8 e4m3 with cublasLtMatmul where the GPU
//    has it, compute capability 8.9 and up), square and transformer-shaped;
//  - memory bandwidth: device-to-device copies from 64 KiB to 4 GiB, the
//    backend's memory-bound op;
//  - the launch overhead of a tiny op;
//  - NCCL on a 1-rank communicator: each collective the backend issues, timed
//    and traced with CUPTI (the kernels NCCL launched for it).
//  - GPT-2's output layer with its 50,257-word vocabulary against it padded
//    to 50,304: what a dimension that is no multiple of 8 costs.
// calibrationFromSweep fits the cost model's curves to it as the CUDA backend
// runs a plan: a GEMM's kernel time gives its matmul efficiency (the
// simulator adds the op's memory traffic as a pass of its own, as the backend
// runs it), a copy's time the memory efficiency.

#include "partita/core/cluster.h"
#include "partita/core/costmodel.h"
#include "partita/core/result.h"

#include <cstdint>
#include <string>
#include <vector>

namespace partita {

struct GpuSweepOptions
{
    int device = 0;
    bool quick = false; // fewer shapes and repetitions (a smoke run)
    int warmup = 3;     // untimed launches per point
    int repeats = 20;   // timed launches per point (the median of per-launch times is kept)
    bool fp8 = true;    // where the GPU has it
    bool nccl = true;   // 1-rank collectives, traced with CUPTI
};

struct GemmPoint
{
    std::string precision; // bf16, fp16, fp8
    std::string shape;     // "square", "qkv", "proj", "fc1", "fc2"; "unaligned" and its "padded" twin
    int64_t m = 0, n = 0, k = 0;
    double seconds = 0;    // median of the timed launches
    double flops() const { return 2.0 * double(m) * double(n) * double(k); }
};

struct CopyPoint
{
    double bytes = 0;   // read + written (a copy of bytes / 2)
    double seconds = 0; // median
};

struct CollectivePoint
{
    std::string collective; // all_reduce, all_gather, reduce_scatter, broadcast, reduce, all_to_all
    double bytes = 0;       // the whole array, as the backend counts it
    double seconds = 0;     // median, CUDA events
    std::vector<std::string> kernels; // what CUPTI saw launched for it (one traced launch)
    double kernel_seconds = 0;        // those kernels' summed device time
};

struct GpuSweep
{
    std::string gpu;          // the runtime's name
    std::string driver;       // driver version (nvidia-smi's form where known)
    std::string cuda_runtime, cublas, nccl, cupti;
    int cc_major = 0, cc_minor = 0, multiprocessors = 0;
    double memory_bytes = 0;
    std::string date;         // UTC, ISO 8601
    std::vector<GemmPoint> gemms;
    std::vector<CopyPoint> copies;
    double launch_overhead_s = 0; // per tiny op, launched back to back
    std::vector<CollectivePoint> collectives;
    std::vector<std::string> notes; // what was not measured, and why
};

std::string gpuSweepToJson(const GpuSweep& s);
Result<GpuSweep> gpuSweepFromJson(const std::string& text, const std::string& file = {});

// The calibration this GPU's measurements give `device` (its datasheet peaks
// and bandwidth): memory efficiency by MB moved, matmul efficiency by GFLOP
// per GEMM for each precision measured (`matmul_by_precision`), `default_precision`'s
// as the plain matmul curve, the unaligned-GEMM factor (the median ratio of
// "unaligned" to "padded" FLOP rates), and the measurement's provenance (GPU,
// driver, versions, date). The launch overhead is inside the small ops'
// times (kernel_overhead 0). Link efficiencies stay the default's: one GPU
// measures no link.
Result<Calibration> calibrationFromSweep(const GpuSweep& sweep, const DeviceSpec& device,
                                         const std::string& default_precision = "bf16");

// Measures this machine's GPU through the CUDA plugin (cudaplugin.h): an
// error when the plugin, the CUDA libraries or a GPU is missing.
Result<GpuSweep> measureGpu(const GpuSweepOptions& options);

} // namespace partita
