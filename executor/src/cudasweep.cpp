// Inside the CUDA plugin: the GPU sweep of gpusweep.h, timed with CUDA events.
#include "cudainternal.h"
#include "cudatracer.h"

#include "partita/core/units.h"
#include "partita/executor/gpusweep.h"

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <cupti.h>
#include <nccl.h>

#include <algorithm>
#include <cstdint>
#include <ctime>
#include <fstream>
#include <functional>
#include <random>
#include <sstream>

namespace partita {

#define SWEEP_CUDA(call)                                                                                               \
    do {                                                                                                               \
        if (cudaError_t e_ = (call); e_ != cudaSuccess)                                                                \
            return Error{"CUDA", #call, cudaMessage(e_)};                                                              \
    } while (0)

// Device buffers filled with values of magnitude [1, 2) and random signs in
// the element format (random data: zeros would flatter the tensor cores).
Result<bool> fillRandom(void* dev, size_t bytes, int elementBits)
{
    const size_t chunk = std::min<size_t>(bytes, 16 << 20);
    std::vector<uint8_t> host(chunk);
    std::mt19937 rng(12345);
    for (size_t i = 0; i + 1 < chunk; i += 2) {
        const uint32_t r = rng();
        uint16_t v = 0;
        if (elementBits == 16) // bf16: 0x3F80 | mantissa; the fp16 reading of these bits is [1.5, 2) too
            v = uint16_t(0x3F80 | (r & 0x7F) | ((r >> 8) & 1) << 15);
        else                   // two e4m3 bytes: 0x38 | mantissa, sign
            v = uint16_t((0x38 | (r & 7) | ((r >> 3) & 1) << 7) | (0x38 | ((r >> 4) & 7) | ((r >> 7) & 1) << 7) << 8);
        host[i] = uint8_t(v & 0xFF);
        host[i + 1] = uint8_t(v >> 8);
    }
    for (size_t off = 0; off < bytes; off += chunk)
        SWEEP_CUDA(cudaMemcpy(static_cast<char*>(dev) + off, host.data(), std::min(chunk, bytes - off),
                              cudaMemcpyHostToDevice));
    return true;
}

namespace {

std::string versionString(int v, int major, int minor)
{
    return std::to_string(v / major) + "." + std::to_string(v % major / minor) + "." + std::to_string(v % minor);
}

// The kernel module's version (as nvidia-smi prints it), else the driver API's.
std::string driverVersion()
{
    std::ifstream f("/proc/driver/nvidia/version");
    std::string line;
    if (f && std::getline(f, line)) { // "NVRM version: NVIDIA UNIX ... Kernel Module ...  580.95.05  Release Build ..."
        std::istringstream words(line);
        std::string w;
        while (words >> w)
            if (std::isdigit(static_cast<unsigned char>(w[0])) && std::count(w.begin(), w.end(), '.') >= 1)
                return w;
    }
    int v = 0;
    cudaDriverGetVersion(&v);
    return "CUDA driver API " + versionString(v, 1000, 10);
}

// Seconds per launch of `launch`: warm-up launches, then `groups` groups of
// `repeats` back-to-back launches between two events; the median group's mean.
Result<double> timeLaunches(cudaStream_t st, int warmup, int repeats, const std::function<bool()>& launch)
{
    for (int i = 0; i < warmup; ++i)
        if (!launch())
            return Error{"GPU sweep", "launch", "the operation failed"};
    cudaEvent_t a = nullptr, b = nullptr;
    SWEEP_CUDA(cudaEventCreate(&a));
    SWEEP_CUDA(cudaEventCreate(&b));
    std::vector<double> per;
    bool ok = true;
    for (int g = 0; g < 3 && ok; ++g) {
        cudaEventRecord(a, st);
        for (int i = 0; i < repeats && ok; ++i)
            ok = launch();
        cudaEventRecord(b, st);
        cudaEventSynchronize(b);
        float ms = 0;
        cudaEventElapsedTime(&ms, a, b);
        per.push_back(double(ms) * 1e-3 / repeats);
    }
    cudaEventDestroy(a);
    cudaEventDestroy(b);
    if (const cudaError_t e = cudaGetLastError(); !ok || e != cudaSuccess)
        return Error{"GPU sweep", "launch", ok ? cudaMessage(e) : std::string("the operation failed")};
    std::sort(per.begin(), per.end());
    return per[per.size() / 2];
}

struct Shape
{
    const char* name;
    int64_t m, n, k;
};

// Square from tiny to 8192^3; transformer GEMMs (tokens x out x in) of
// GPT-2 small (h 768), a 7B-class (h 4096, ffn 11008) and a 70B-class model
// (h 8192, GQA 8 of 64 heads: qkv 10240, ffn 28672) at 1k and 8k tokens.
std::vector<Shape> sweepShapes(bool quick)
{
    std::vector<Shape> s;
    for (int64_t n = 64; n <= 8192; n *= quick ? 4 : 2)
        s.push_back({"square", n, n, n});
    struct Model
    {
        int64_t h, qkv, ffn;
    };
    const Model models[] = {{768, 3 * 768, 3072}, {4096, 3 * 4096, 11008}, {8192, 10240, 28672}};
    for (int64_t tokens : {int64_t(1024), int64_t(8192)}) {
        if (quick && tokens != 1024)
            continue;
        // GPT-2's vocabulary (50,257: no dimension a multiple of 8) against
        // it padded to 50,304, in the forward, input-gradient and
        // weight-gradient orientations of its output layer.
        for (const int64_t vocab : {int64_t(50257), int64_t(50304)}) {
            const char* name = vocab % 8 ? "unaligned" : "padded";
            s.push_back({name, tokens, vocab, 768});
            s.push_back({name, tokens, 768, vocab});
            s.push_back({name, 768, vocab, tokens});
        }
        for (const Model& md : models) {
            s.push_back({"qkv", tokens, md.qkv, md.h});
            s.push_back({"proj", tokens, md.h, md.h});
            s.push_back({"fc1", tokens, md.ffn, md.h});
            s.push_back({"fc2", tokens, md.h, md.ffn});
        }
    }
    return s;
}

struct Buffers
{
    void *a = nullptr, *b = nullptr, *c = nullptr, *work = nullptr;
    size_t workBytes = 32 << 20;
    ~Buffers()
    {
        for (void* p : {a, b, c, work})
            if (p)
                cudaFree(p);
    }
};

Result<bool> gemmSweep(GpuSweep& out, const GpuSweepOptions& o, cudaStream_t st, const std::string& precision,
                       cublasHandle_t blas, cublasLtHandle_t lt, Buffers& buf);

} // namespace

static Result<bool> cudaSweepGemms(GpuSweep& out, const GpuSweepOptions& o, cudaStream_t st)
{
    const std::vector<Shape> shapes = sweepShapes(o.quick);
    size_t a = 0, b = 0, c = 0;
    for (const Shape& s : shapes) {
        a = std::max(a, size_t(s.m * s.k) * 2);
        b = std::max(b, size_t(s.k * s.n) * 2);
        c = std::max(c, size_t(s.m * s.n) * 2);
    }
    Buffers buf;
    SWEEP_CUDA(cudaMalloc(&buf.a, a));
    SWEEP_CUDA(cudaMalloc(&buf.b, b));
    SWEEP_CUDA(cudaMalloc(&buf.c, c));
    SWEEP_CUDA(cudaMalloc(&buf.work, buf.workBytes));
    cublasHandle_t blas = nullptr;
    if (auto s = cublasCreate(&blas); s != CUBLAS_STATUS_SUCCESS)
        return Error{"cuBLAS", "cublasCreate", cublasGetStatusString(s)};
    cublasSetStream(blas, st);
    int v = 0;
    cublasGetVersion(blas, &v);
    out.cublas = versionString(v, 10000, 100);
    cublasLtHandle_t lt = nullptr;
    cublasLtCreate(&lt);
    std::vector<std::string> precisions{"bf16", "fp16"};
    const bool hasFp8 = out.cc_major * 10 + out.cc_minor >= 89;
    if (o.fp8 && hasFp8)
        precisions.push_back("fp8");
    else if (o.fp8)
        out.notes.push_back("fp8 not measured: compute capability " + std::to_string(out.cc_major) + "." +
                            std::to_string(out.cc_minor) + " has no fp8 tensor cores (8.9 and up)");
    Result<bool> r = true;
    for (const std::string& p : precisions) {
        if (r = fillRandom(buf.a, a, p == "fp8" ? 8 : 16); !r)
            break;
        if (r = fillRandom(buf.b, b, p == "fp8" ? 8 : 16); !r)
            break;
        if (auto g = gemmSweep(out, o, st, p, blas, lt, buf); !g)
            out.notes.push_back(p + " GEMMs stopped: " + g.error().str()); // the other precisions still count
    }
    cublasLtDestroy(lt);
    cublasDestroy(blas);
    return r;
}

namespace {

// fp8 (e4m3 inputs, bf16 output, fp32 accumulation) through cublasLt, in the
// layout Hopper's fp8 GEMMs need: A transposed ("TN").
Result<std::function<bool()>> fp8Launch(cublasLtHandle_t lt, cudaStream_t st, const Shape& s, Buffers& buf)
{
    struct Lt
    {
        cublasLtMatmulDesc_t op = nullptr;
        cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;
        cublasLtMatmulPreference_t pref = nullptr;
        cublasLtMatmulHeuristicResult_t algo{};
        ~Lt()
        {
            if (pref)
                cublasLtMatmulPreferenceDestroy(pref);
            for (auto* l : {a, b, d})
                if (l)
                    cublasLtMatrixLayoutDestroy(l);
            if (op)
                cublasLtMatmulDescDestroy(op);
        }
    };
    auto h = std::make_shared<Lt>();
    const cublasOperation_t t = CUBLAS_OP_T, n = CUBLAS_OP_N;
    bool ok = cublasLtMatmulDescCreate(&h->op, CUBLAS_COMPUTE_32F, CUDA_R_32F) == CUBLAS_STATUS_SUCCESS &&
              cublasLtMatmulDescSetAttribute(h->op, CUBLASLT_MATMUL_DESC_TRANSA, &t, sizeof t) == CUBLAS_STATUS_SUCCESS &&
              cublasLtMatmulDescSetAttribute(h->op, CUBLASLT_MATMUL_DESC_TRANSB, &n, sizeof n) == CUBLAS_STATUS_SUCCESS &&
              cublasLtMatrixLayoutCreate(&h->a, CUDA_R_8F_E4M3, uint64_t(s.k), uint64_t(s.m), s.k) == CUBLAS_STATUS_SUCCESS &&
              cublasLtMatrixLayoutCreate(&h->b, CUDA_R_8F_E4M3, uint64_t(s.k), uint64_t(s.n), s.k) == CUBLAS_STATUS_SUCCESS &&
              cublasLtMatrixLayoutCreate(&h->d, CUDA_R_16BF, uint64_t(s.m), uint64_t(s.n), s.m) == CUBLAS_STATUS_SUCCESS &&
              cublasLtMatmulPreferenceCreate(&h->pref) == CUBLAS_STATUS_SUCCESS &&
              cublasLtMatmulPreferenceSetAttribute(h->pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &buf.workBytes,
                                                   sizeof buf.workBytes) == CUBLAS_STATUS_SUCCESS;
    int found = 0;
    ok = ok && cublasLtMatmulAlgoGetHeuristic(lt, h->op, h->a, h->b, h->d, h->d, h->pref, 1, &h->algo, &found) ==
                   CUBLAS_STATUS_SUCCESS && found > 0;
    if (!ok)
        return Error{"cublasLt", "fp8 " + std::to_string(s.m) + "x" + std::to_string(s.n) + "x" + std::to_string(s.k),
                     "no fp8 algorithm for this shape"};
    Buffers* b = &buf;
    return std::function<bool()>([h, lt, st, b] {
        const float alpha = 1, beta = 0;
        return cublasLtMatmul(lt, h->op, &alpha, b->a, h->a, b->b, h->b, &beta, b->c, h->d, b->c, h->d, &h->algo.algo,
                              b->work, b->workBytes, st) == CUBLAS_STATUS_SUCCESS;
    });
}

Result<bool> gemmSweep(GpuSweep& out, const GpuSweepOptions& o, cudaStream_t st, const std::string& precision,
                       cublasHandle_t blas, cublasLtHandle_t lt, Buffers& buf)
{
    const cudaDataType_t type = precision == "fp16" ? CUDA_R_16F : CUDA_R_16BF;
    for (const Shape& s : sweepShapes(o.quick)) {
        std::function<bool()> launch;
        if (precision == "fp8") {
            auto l = fp8Launch(lt, st, s, buf);
            if (!l) {
                out.notes.push_back(l.error().str());
                continue;
            }
            launch = std::move(*l);
        } else {
            launch = [&, s] { // row-major C = A B as column-major C^T = B^T A^T, as the backend runs it
                const float alpha = 1, beta = 0;
                return cublasGemmEx(blas, CUBLAS_OP_N, CUBLAS_OP_N, int(s.n), int(s.m), int(s.k), &alpha, buf.b, type,
                                    int(s.n), buf.a, type, int(s.k), &beta, buf.c, type, int(s.n), CUBLAS_COMPUTE_32F,
                                    CUBLAS_GEMM_DEFAULT) == CUBLAS_STATUS_SUCCESS;
            };
        }
        // About a millisecond of launches per timed group at 500 TFLOP/s, at least `repeats`.
        const double flops = 2.0 * double(s.m) * double(s.n) * double(s.k);
        const int repeats = std::clamp(int(5e11 / std::max(flops, 1.0)), std::max(1, o.repeats / 4), o.quick ? 50 : 1000);
        auto t = timeLaunches(st, o.warmup, repeats, launch);
        if (!t)
            return t.error();
        out.gemms.push_back({precision, s.name, s.m, s.n, s.k, *t});
    }
    return true;
}

} // namespace

// Copies of 32 KiB to 2 GiB (64 KiB to 4 GiB moved) and the launch overhead.
static Result<bool> cudaSweepMemory(GpuSweep& out, const GpuSweepOptions& o, cudaStream_t st)
{
    const size_t largest = o.quick ? (size_t(64) << 20) : (size_t(2) << 30);
    void* mem = nullptr;
    SWEEP_CUDA(cudaMalloc(&mem, 2 * largest));
    std::unique_ptr<void, void (*)(void*)> owner(mem, [](void* p) { cudaFree(p); });
    SWEEP_CUDA(cudaMemset(mem, 1, 2 * largest));
    for (size_t n = 32 << 10; n <= largest; n *= 2) {
        const int repeats = std::clamp(int((size_t(1) << 30) / n), 3, 2000);
        auto t = timeLaunches(st, o.warmup, repeats, [&] {
            return cudaMemcpyAsync(static_cast<char*>(mem) + largest, mem, n, cudaMemcpyDeviceToDevice, st) ==
                   cudaSuccess;
        });
        if (!t)
            return t.error();
        out.copies.push_back({2.0 * double(n), *t});
    }
    auto t = timeLaunches(st, o.warmup, 1000, [&] { return cudaMemsetAsync(mem, 0, 4, st) == cudaSuccess; });
    if (!t)
        return t.error();
    out.launch_overhead_s = *t;
    return true;
}

namespace {

struct NcclCase
{
    const char* name;
    std::function<ncclResult_t(void* in, void* out, size_t elems, ncclComm_t c, cudaStream_t st)> issue;
};

std::vector<NcclCase> ncclCases()
{
    // bf16 elements, as the backend's collectives in a bf16 plan; on one rank
    // every group is the whole world, so sizes per rank are the whole array.
    return {
        {"all_reduce", [](void* i, void* o, size_t n, ncclComm_t c, cudaStream_t s) {
             return ncclAllReduce(i, o, n, ncclBfloat16, ncclSum, c, s); }},
        {"reduce_scatter", [](void* i, void* o, size_t n, ncclComm_t c, cudaStream_t s) {
             return ncclReduceScatter(i, o, n, ncclBfloat16, ncclSum, c, s); }},
        {"all_gather", [](void* i, void* o, size_t n, ncclComm_t c, cudaStream_t s) {
             return ncclAllGather(i, o, n, ncclBfloat16, c, s); }},
        {"broadcast", [](void* i, void* o, size_t n, ncclComm_t c, cudaStream_t s) {
             return ncclBroadcast(i, o, n, ncclBfloat16, 0, c, s); }},
        {"reduce", [](void* i, void* o, size_t n, ncclComm_t c, cudaStream_t s) {
             return ncclReduce(i, o, n, ncclBfloat16, ncclSum, 0, c, s); }},
        {"all_to_all", [](void* i, void* o, size_t n, ncclComm_t c, cudaStream_t s) {
             ncclGroupStart(); // the backend's all-to-all: a send and a receive per peer, here itself
             ncclSend(i, n, ncclBfloat16, 0, c, s);
             ncclRecv(o, n, ncclBfloat16, 0, c, s);
             return ncclGroupEnd(); }},
    };
}

} // namespace

// A 1-rank NCCL communicator and each collective the backend issues: timed
// with events, then one launch of each traced with CUPTI (what NCCL ran for it).
static Result<bool> cudaSweepNccl(GpuSweep& out, const GpuSweepOptions& o, cudaStream_t st, int device)
{
    int v = 0;
    ncclGetVersion(&v);
    out.nccl = versionString(v, 10000, 100);
    ncclComm_t comm = nullptr;
    if (auto e = ncclCommInitAll(&comm, 1, &device); e != ncclSuccess)
        return Error{"NCCL", "ncclCommInitAll (1 rank)", ncclMessage(e)};
    std::unique_ptr<ncclComm, ncclResult_t (*)(ncclComm_t)> owner(comm, ncclCommDestroy);
    const size_t largest = o.quick ? (size_t(16) << 20) : (size_t(256) << 20);
    void* buf = nullptr;
    SWEEP_CUDA(cudaMalloc(&buf, 2 * largest));
    std::unique_ptr<void, void (*)(void*)> bufOwner(buf, [](void* p) { cudaFree(p); });
    SWEEP_CUDA(cudaMemset(buf, 0, 2 * largest));
    void* dst = static_cast<char*>(buf) + largest;
    std::vector<size_t> sizes;
    for (size_t n = size_t(1) << 20; n <= largest; n *= 16)
        sizes.push_back(n);
    for (const NcclCase& c : ncclCases())
        for (size_t bytes : sizes) {
            auto t = timeLaunches(st, o.warmup, std::max(3, o.repeats / 2),
                                  [&] { return c.issue(buf, dst, bytes / 2, comm, st) == ncclSuccess; });
            if (!t)
                return Error{"NCCL", std::string(c.name) + " of " + std::to_string(bytes) + " B", t.error().str()};
            out.collectives.push_back({c.name, double(bytes), *t, {}, 0});
        }
    // Traced after the timing, so that CUPTI's overhead is not in the times.
    Tracer& tracer = Tracer::instance();
    if (auto t = tracer.start(CudaBackendOptions{}); !t)
        return t.error();
    size_t index = 0;
    for (const NcclCase& c : ncclCases())
        for (size_t bytes : sizes) {
            cuptiActivityPushExternalCorrelationId(CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM0, uint64_t(index++));
            const ncclResult_t e = c.issue(buf, dst, bytes / 2, comm, st);
            uint64_t last = 0;
            cuptiActivityPopExternalCorrelationId(CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM0, &last);
            if (e != ncclSuccess)
                return Error{"NCCL", std::string(c.name) + " (traced)", ncclMessage(e)};
        }
    SWEEP_CUDA(cudaStreamSynchronize(st));
    auto records = tracer.flush();
    if (!records)
        return records.error();
    for (const TraceRecord& r : *records)
        if (r.op >= 0 && size_t(r.op) < out.collectives.size()) {
            CollectivePoint& p = out.collectives[size_t(r.op)];
            p.kernels.push_back(r.name);
            p.kernel_seconds += double(r.dur_ns) * 1e-9;
        }
    return true;
}

Result<GpuSweep> measureGpuSweep(const GpuSweepOptions& o)
{
    GpuSweep out;
    out.date = utcTimestamp();
    int count = 0;
    if (const cudaError_t e = cudaGetDeviceCount(&count); e != cudaSuccess || count == 0)
        return Error{"CUDA", "GPU " + std::to_string(o.device),
                     e != cudaSuccess ? "no usable GPU: " + cudaMessage(e) : std::string("no GPU on this machine")};
    if (o.device >= count)
        return Error{"CUDA", "GPU " + std::to_string(o.device), "this machine has " + std::to_string(count) + " GPUs"};
    SWEEP_CUDA(cudaSetDevice(o.device));
    cudaDeviceProp prop{};
    SWEEP_CUDA(cudaGetDeviceProperties(&prop, o.device));
    out.gpu = prop.name;
    out.cc_major = prop.major;
    out.cc_minor = prop.minor;
    out.multiprocessors = prop.multiProcessorCount;
    out.memory_bytes = double(prop.totalGlobalMem);
    out.driver = driverVersion();
    int rt = 0;
    cudaRuntimeGetVersion(&rt);
    out.cuda_runtime = versionString(rt, 1000, 10);
    uint32_t cv = 0;
    cuptiGetVersion(&cv);
    out.cupti = "API " + std::to_string(cv);
    cudaStream_t st = nullptr;
    SWEEP_CUDA(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
    std::unique_ptr<CUstream_st, cudaError_t (*)(cudaStream_t)> owner(st, cudaStreamDestroy);
    if (auto r = cudaSweepMemory(out, o, st); !r)
        return r.error();
    if (auto r = cudaSweepGemms(out, o, st); !r)
        return r.error();
    if (o.nccl) {
        if (auto r = cudaSweepNccl(out, o, st, o.device); !r)
            out.notes.push_back("NCCL not measured: " + r.error().str());
    } else {
        out.notes.push_back("NCCL not measured (not asked for)");
    }
    return out;
}

} // namespace partita
