#include "partita/executor/cpubackend.h"

#include "partita/executor/localmachine.h"

#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <vector>

namespace partita {

namespace {

class CpuCompute final : public ComputeBackend
{
public:
    std::string name() const override
    {
        const char* cfg = openblas_get_config();
        return std::string("OpenBLAS ") + (cfg ? cfg : "");
    }
    void gemm(int64_t m, int64_t n, int64_t k) override
    {
        ensure(m_a, size_t(m * k), 1.0f / 1024);
        ensure(m_b, size_t(k * n), 1.0f / 1024);
        ensure(m_c, size_t(m * n), 0.0f);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(m), int(n), int(k), 1.0f, m_a.data(), int(k),
                    m_b.data(), int(n), 0.0f, m_c.data(), int(n));
    }
    void memoryPass(double bytes) override
    {
        // Read n bytes, write n bytes, with the C library's optimized copy:
        // the traffic of an elementwise kernel, whatever the build type.
        const size_t n = size_t(std::max(1.0, bytes / 2));
        if (m_mem.size() < 2 * n)
            m_mem.assign(2 * n, 1);
        std::memcpy(m_mem.data() + n, m_mem.data(), n);
    }

private:
    static void ensure(std::vector<float>& v, size_t n, float fill)
    {
        if (v.size() < n)
            v.assign(n, fill);
    }
    std::vector<float> m_a, m_b, m_c;
    std::vector<char> m_mem;
};

} // namespace

std::unique_ptr<ComputeBackend> makeCpuCompute() { return std::make_unique<CpuCompute>(); }

Result<WorkerResult> runCpuWorker(const Plan& plan, const WorkerOptions& o)
{
    auto compute = makeCpuCompute();
    auto comm = makeLoneCommunicator();
    return runWorker(plan, o, *compute, *comm);
}

namespace {

double secondsSince(std::chrono::steady_clock::time_point t)
{
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

} // namespace

Cluster localCpuCluster(int ranks)
{
    ranks = std::max(1, ranks);
    const LocalMachine lm = detectLocalMachine();
    const int cores = std::max(1, lm.cpu.cores);
    openblas_set_num_threads(1);
    // sgemm: a square size large enough to reach the core's steady rate.
    constexpr int n = 512;
    std::vector<float> a(size_t(n) * n, 1.0f / 512), b(size_t(n) * n, 1.0f / 512), c(size_t(n) * n, 0.0f);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n);
    double best = 0;
    for (int rep = 0; rep < 5; ++rep) {
        const auto t = std::chrono::steady_clock::now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n);
        best = std::max(best, 2.0 * n * n * n / secondsSince(t));
    }
    // Memory: copies of 64 MiB (read 64, write 64), as the CPU backend's memory passes do.
    const size_t bytes = size_t(64) << 20;
    std::vector<char> src(bytes, 1), dst(bytes, 0);
    double copyBw = 0;
    for (int rep = 0; rep < 4; ++rep) {
        const auto t = std::chrono::steady_clock::now();
        std::memcpy(dst.data(), src.data(), bytes);
        copyBw = std::max(copyBw, double(bytes) / secondsSince(t));
    }
    const double bw = 2 * copyBw; // bytes read and written
    const double share = std::min(1.0, double(cores) / double(ranks));
    char buf[256];
    std::snprintf(buf, sizeof buf,
                  "measured on this machine: one core does %.1f GFLOP/s (OpenBLAS sgemm %dx%dx%d) and moves %.1f GB/s; "
                  "%d ranks on %d cores get %.2f of that each",
                  best / 1e9, n, n, n, bw / 1e9, ranks, cores, share);
    DeviceSpec dev = lm.cpu;
    dev.name = "cpu rank";
    dev.kind = "cpu";
    dev.cores = 1;
    for (const char* dt : {"fp32", "bf16", "fp16"})
        dev.peak_flops[dt] = best * share;
    dev.memory_bandwidth = bw * share;
    dev.memory_bytes = lm.cpu.memory_bytes / ranks;
    dev.source = buf;
    Cluster cl;
    cl.name = localCpuClusterName(ranks);
    cl.source = "detected and measured on this machine";
    Node node;
    node.name = lm.cluster.nodes.empty() ? "localhost" : lm.cluster.nodes.front().name;
    node.devices.assign(size_t(ranks), dev);
    std::snprintf(buf, sizeof buf,
                  "measured memcpy of 64 MiB on one core (%.1f GB/s, shared by %d ranks); latency assumed 1 us "
                  "(Open MPI shared memory is of that order; calibrate to measure it)",
                  copyBw / 1e9, ranks);
    node.intra = LinkSpec{LinkKind::SharedMemory, copyBw * share, 1e-6, 0, buf};
    cl.nodes.push_back(std::move(node));
    return cl;
}

} // namespace partita
