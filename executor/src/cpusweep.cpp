// This machine's CPU measured as the CPU backend runs a plan (partita_cpu):
// single-threaded OpenBLAS sgemm over sizes, the C library's copy over sizes,
// each while every other core does the same work (a run puts one rank on each
// core, and the ranks share the caches and the memory bus), fitted into a
// calibration (`partita-cli calibrate --local`).
#include "partita/core/units.h"
#include "partita/executor/cpubackend.h"
#include "partita/executor/localmachine.h"

#include <cblas.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <ctime>
#include <functional>
#include <thread>
#include <unistd.h>
#include <vector>

namespace partita {

namespace {

// Seconds per call: three groups of back-to-back calls, each at least
// `minGroup` seconds long, the median group's mean.
double timeCalls(double minGroup, const std::function<void()>& call)
{
    call(); // warm: pages touched, caches and OpenBLAS's buffers set up
    std::vector<double> per;
    for (int g = 0; g < 3; ++g) {
        int calls = 0;
        const auto t0 = std::chrono::steady_clock::now();
        double elapsed = 0;
        do {
            call();
            ++calls;
            elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        } while (elapsed < minGroup);
        per.push_back(elapsed / calls);
    }
    std::sort(per.begin(), per.end());
    return per[1];
}

// Seconds per call with the caches cold, as a run's memory passes find them
// (a training step moves tens of MB between two touches of the same data): a
// 64 MiB buffer is written before each timed call; the median of `reps`.
double timeColdCalls(int reps, const std::function<void()>& call)
{
    static std::vector<char> evict(size_t(64) << 20);
    call(); // pages touched
    std::vector<double> per;
    for (int r = 0; r < reps; ++r) {
        for (size_t i = 0; i < evict.size(); i += 64)
            evict[i] = char(evict[i] + 1);
        const auto t0 = std::chrono::steady_clock::now();
        call();
        per.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    std::sort(per.begin(), per.end());
    return per[per.size() / 2];
}

// `measure()`, while `neighbours` threads each run `work(i)` in a loop: the
// other cores busy as the other ranks of a run keep them.
double withNeighbours(int neighbours, const std::function<void(int)>& work, const std::function<double()>& measure)
{
    std::atomic<bool> stop{false};
    std::vector<std::thread> pool;
    for (int i = 0; i < neighbours; ++i)
        pool.emplace_back([&, i] {
            while (!stop.load(std::memory_order_relaxed))
                work(i);
        });
    const double t = measure();
    stop = true;
    for (auto& th : pool)
        th.join();
    return t;
}

} // namespace

GpuSweep measureCpuSweep(bool quick)
{
    const LocalMachine lm = detectLocalMachine();
    GpuSweep s;
    s.gpu = lm.cpu.name.empty() ? std::string("CPU") : lm.cpu.name;
    const char* cfg = openblas_get_config();
    s.driver = cfg ? cfg : "OpenBLAS";
    s.cublas = s.driver;
    s.date = utcTimestamp();
    s.multiprocessors = lm.cpu.cores;
    openblas_set_num_threads(1); // one thread per rank, as the worker runs
    const double minGroup = quick ? 0.005 : 0.02;
    std::vector<GemmPoint> shapes;
    for (int64_t n = 16; n <= (quick ? 256 : 1024); n *= 2)
        shapes.push_back({"fp32", "square", n, n, n, 0});
    // Transformer GEMMs (tokens x out x in) of small models, as CPU runs train them.
    for (int64_t tokens : {int64_t(128), int64_t(512), int64_t(2048)})
        for (int64_t h : {int64_t(128), int64_t(768)}) {
            if (quick && (tokens > 512 || h > 128))
                continue;
            shapes.push_back({"fp32", "qkv", tokens, 3 * h, h, 0});
            shapes.push_back({"fp32", "proj", tokens, h, h, 0});
            shapes.push_back({"fp32", "fc1", tokens, 4 * h, h, 0});
            shapes.push_back({"fp32", "fc2", tokens, h, 4 * h, 0});
        }
    const int neighbours = std::max(0, lm.cpu.cores - 1);
    struct Operands
    {
        std::vector<float> a, b, c;
        void size(const GemmPoint& g)
        {
            a.assign(size_t(g.m * g.k), 1.0f / 1024);
            b.assign(size_t(g.k * g.n), 1.0f / 1024);
            c.assign(size_t(g.m * g.n), 0.0f);
        }
        void run(const GemmPoint& g)
        {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(g.m), int(g.n), int(g.k), 1.0f, a.data(),
                        int(g.k), b.data(), int(g.n), 0.0f, c.data(), int(g.n));
        }
    };
    std::vector<Operands> ops(size_t(neighbours) + 1);
    for (GemmPoint g : shapes) {
        for (Operands& o : ops)
            o.size(g);
        g.seconds = withNeighbours(neighbours, [&](int i) { ops[size_t(i) + 1].run(g); },
                                   [&] { return timeCalls(minGroup, [&] { ops[0].run(g); }); });
        s.gemms.push_back(g);
    }
    // Copies of n bytes (2n moved), as the CPU backend's memory passes: those
    // that fit the core's L2 from warm caches (the backend reuses one buffer),
    // larger ones from cold caches; the neighbours copy up to 32 MiB each (the
    // bus is shared).
    const long l2Reported = ::sysconf(_SC_LEVEL2_CACHE_SIZE);
    const size_t l2 = l2Reported > 0 ? size_t(l2Reported) : size_t(1) << 20;
    const size_t largest = quick ? (size_t(16) << 20) : (size_t(256) << 20), theirs = size_t(32) << 20;
    std::vector<char> mem(2 * largest, 1);
    std::vector<std::vector<char>> other(size_t(neighbours), std::vector<char>(2 * theirs, 1));
    for (size_t n = 16 << 10; n <= largest; n *= 4) {
        const size_t m = std::min(n, theirs);
        const double t = withNeighbours(
            neighbours, [&](int i) { std::memcpy(other[size_t(i)].data() + m, other[size_t(i)].data(), m); },
            [&] {
                auto copy = [&] { std::memcpy(mem.data() + largest, mem.data(), n); };
                return 2 * n <= l2 ? timeCalls(minGroup, copy) : timeColdCalls(quick ? 3 : 7, copy);
            });
        s.copies.push_back({2.0 * double(n), t});
    }
    s.notes.push_back("CPU: single-threaded OpenBLAS sgemm (every plan dtype runs in fp32 on the CPU backend) and memcpy "
                      "(from cold caches beyond L2), each with the other " + std::to_string(neighbours) + " cores doing the same");
    return s;
}

Result<Calibration> localCpuCalibration(bool quick)
{
    // Fitted against one rank's device (share 1): a run with more ranks than
    // cores shares the peak, and the simulator divides it, not the efficiency.
    const Cluster one = localCpuCluster(1);
    const GpuSweep sweep = measureCpuSweep(quick);
    auto cal = calibrationFromSweep(sweep, one.nodes.front().devices.front(), "fp32");
    if (!cal)
        return cal.error();
    cal->device = "cpu rank";
    const DeviceSpec& ref = one.nodes.front().devices.front();
    cal->measured["reference_peak_flops"] = std::to_string(ref.peak_flops.at("fp32"));
    cal->measured["reference_memory_bandwidth"] = std::to_string(ref.memory_bandwidth);
    cal->measured["cores"] = std::to_string(sweep.multiprocessors);
    cal->measured["blas"] = sweep.driver;
    cal->source = "measured on this machine (" + sweep.gpu + ", " + sweep.driver + ", " + sweep.date +
                  ") by partita-cli calibrate --local: " + std::to_string(sweep.gemms.size()) +
                  " single-threaded sgemm sizes, " + std::to_string(sweep.copies.size()) + " copy sizes (cold beyond L2), every core busy";
    return cal;
}

} // namespace partita
