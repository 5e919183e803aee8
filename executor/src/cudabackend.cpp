#include "cudainternal.h"
#include "cudatracer.h"

#include "partita/executor/cuptirecords.h"
#include "partita/executor/mpicomm.h"

#include <cublas_v2.h>
#include <cuda.h>
#include <cuda_runtime_api.h>
#include <cupti.h>
#include <nccl.h>

#include <algorithm>
#include <tuple>
#include <chrono>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <new>
#include <optional>

namespace partita {

namespace {

std::string cublasMessage(cublasStatus_t s) { return cublasGetStatusString(s); }

class CudaBackendImpl final : public CudaBackend
{
public:
    CudaBackendImpl(const Plan& plan, Communicator& boot, const CudaBackendOptions& o)
        : m_plan(plan), m_boot(boot), m_opt(o)
    {
    }
    ~CudaBackendImpl() override
    {
        if (m_computeStream)
            cudaDeviceSynchronize();
        for (ncclComm_t* c : {&m_tensor, &m_data, &m_expert, &m_context, &m_world})
            if (*c)
                ncclCommDestroy(*c);
        if (m_blas)
            cublasDestroy(m_blas);
        for (void* p : {m_a, m_b, m_c, m_mem, m_coll[0], m_coll[1], m_coll[2], m_coll[3], m_coll[4], m_p2p})
            if (p)
                cudaFree(p);
    }

    Result<bool> init()
    {
        if (m_plan.precision == Precision::FP8)
            return Error{"CUDA backend", "plan precision fp8",
                         "FP8 plans are simulated only: this backend runs no FP8 GEMMs yet (use bf16 to run it)"};
        int devices = 0;
        if (auto e = cudaGetDeviceCount(&devices); e != cudaSuccess || devices == 0)
            return Error{"CUDA", "rank " + std::to_string(m_boot.rank()),
                         e != cudaSuccess ? "no usable GPU: " + cudaMessage(e) : std::string("no GPU on this host")};
        m_device = localRankFromEnvironment() % devices;
        if (auto e = cudaSetDevice(m_device); e != cudaSuccess)
            return Error{"CUDA", "cudaSetDevice(" + std::to_string(m_device) + ")", cudaMessage(e)};
        cudaDeviceProp prop{};
        cudaGetDeviceProperties(&prop, m_device);
        m_name = std::string("CUDA ") + prop.name + " (GPU " + std::to_string(m_device) + "), cuBLAS, NCCL " +
                 std::to_string(NCCL_MAJOR) + "." + std::to_string(NCCL_MINOR);
        if (m_opt.trace)
            if (auto t = Tracer::instance().start(m_opt); !t)
                return t.error();
        for (cudaStream_t* s : {&m_computeStream, &m_dataStream, &m_sendStream})
            if (auto e = cudaStreamCreateWithFlags(s, cudaStreamNonBlocking); e != cudaSuccess)
                return Error{"CUDA", "cudaStreamCreate", cudaMessage(e)};
        for (cudaEvent_t* ev : {&m_readyEvent, &m_dataDone, &m_sendReady, &m_sendDone})
            if (auto e = cudaEventCreateWithFlags(ev, cudaEventDisableTiming); e != cudaSuccess)
                return Error{"CUDA", "cudaEventCreate", cudaMessage(e)};
        if (m_opt.trace) {
            // No context: CUPTI then does not check the stream's (and libcuda stays a run-time dependency).
            uint32_t compute = 0, data = 0;
            cuptiGetStreamIdEx(nullptr, reinterpret_cast<CUstream>(m_computeStream), 0, &compute);
            cuptiGetStreamIdEx(nullptr, reinterpret_cast<CUstream>(m_dataStream), 0, &data);
            Tracer::instance().sink().setStreams(compute, data);
        }
        if (auto r = reserve(); !r)
            return r;
        if (auto s = cublasCreate(&m_blas); s != CUBLAS_STATUS_SUCCESS)
            return Error{"cuBLAS", "cublasCreate", cublasMessage(s)};
        cublasSetStream(m_blas, m_computeStream);
        // NCCL: rank 0's id to every rank through the MPI job, then one split per group.
        ncclUniqueId id{};
        if (m_boot.rank() == 0)
            if (auto e = ncclGetUniqueId(&id); e != ncclSuccess)
                return Error{"NCCL", "ncclGetUniqueId", ncclMessage(e)};
        if (auto b = m_boot.broadcastBytes(&id, sizeof id, 0); !b)
            return b.error();
        if (auto e = ncclCommInitRank(&m_world, m_boot.size(), id, m_boot.rank()); e != ncclSuccess)
            return Error{"NCCL", "ncclCommInitRank", ncclMessage(e)};
        auto splits = groupSplits(m_plan, m_boot.rank());
        if (!splits)
            return splits.error();
        const std::pair<ncclComm_t*, GroupSplit> groups[] = {
            {&m_tensor, splits->tensor}, {&m_data, splits->data}, {&m_expert, splits->expert},
            {&m_context, splits->context}};
        for (const auto& [comm, split] : groups)
            if (auto e = ncclCommSplit(m_world, split.color, split.key, comm, nullptr); e != ncclSuccess)
                return Error{"NCCL", "ncclCommSplit", ncclMessage(e)};
        m_type = m_plan.precision == Precision::FP32 ? CUDA_R_32F
                 : m_plan.precision == Precision::FP16 ? CUDA_R_16F
                                                       : CUDA_R_16BF;
        return true;
    }

    // ---- ComputeBackend
    std::string name() const override { return m_name; }
    void gemm(int64_t m, int64_t n, int64_t k) override
    {
        const size_t eb = elementBytes();
        if (!grow(m_a, m_aBytes, size_t(m * k) * eb) || !grow(m_b, m_bBytes, size_t(k * n) * eb) ||
            !grow(m_c, m_cBytes, size_t(m * n) * eb))
            return;
        const float alpha = 1, beta = 0;
        // Row-major C = A B as column-major C^T = B^T A^T.
        const cublasStatus_t st =
            cublasGemmEx(m_blas, CUBLAS_OP_N, CUBLAS_OP_N, int(n), int(m), int(k), &alpha, m_b, m_type, int(n), m_a, m_type,
                         int(k), &beta, m_c, m_type, int(n), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
        if (st != CUBLAS_STATUS_SUCCESS)
            fault(Error{"cuBLAS", "cublasGemmEx " + std::to_string(m) + "x" + std::to_string(n) + "x" + std::to_string(k),
                        cublasMessage(st)});
    }
    void batchedGemm(int64_t m, int64_t n, int64_t k, int64_t batch) override
    {
        const size_t eb = elementBytes();
        if (!grow(m_a, m_aBytes, size_t(m * k * batch) * eb) || !grow(m_b, m_bBytes, size_t(k * n * batch) * eb) ||
            !grow(m_c, m_cBytes, size_t(m * n * batch) * eb))
            return;
        const float alpha = 1, beta = 0;
        const cublasStatus_t st = cublasGemmStridedBatchedEx(
            m_blas, CUBLAS_OP_N, CUBLAS_OP_N, int(n), int(m), int(k), &alpha, m_b, m_type, int(n), k * n, m_a, m_type,
            int(k), m * k, &beta, m_c, m_type, int(n), m * n, int(batch), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
        if (st != CUBLAS_STATUS_SUCCESS)
            fault(Error{"cuBLAS", "cublasGemmStridedBatchedEx " + std::to_string(batch) + " x " + std::to_string(m) + "x" +
                                      std::to_string(n) + "x" + std::to_string(k),
                        cublasMessage(st)});
    }
    void memoryPass(double bytes) override
    {
        const size_t n = size_t(std::max(1.0, bytes / 2));
        if (!grow(m_mem, m_memBytes, 2 * n))
            return;
        if (auto e = cudaMemcpyAsync(static_cast<char*>(m_mem) + n, m_mem, n, cudaMemcpyDeviceToDevice, m_computeStream);
            e != cudaSuccess)
            fault(Error{"CUDA", "memory pass", cudaMessage(e)});
    }
    bool deviceTimed() const override { return true; }
    void opBegin(int64_t op) override
    {
        if (m_opt.trace)
            cuptiActivityPushExternalCorrelationId(CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM0, uint64_t(op));
    }
    void opEnd() override
    {
        uint64_t last = 0;
        if (m_opt.trace)
            cuptiActivityPopExternalCorrelationId(CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM0, &last);
    }
    Result<bool> synchronize() override
    {
        if (auto e = cudaDeviceSynchronize(); e != cudaSuccess)
            return Error{"CUDA", "rank " + std::to_string(m_boot.rank()), cudaMessage(e)};
        std::lock_guard lock(m_faultMu);
        if (m_fault)
            return faultError();
        return true;
    }
    Result<std::vector<TraceRecord>> takeDeviceRecords(int) override
    {
        if (!m_opt.trace)
            return std::vector<TraceRecord>{};
        return Tracer::instance().flush();
    }
    int64_t cuptiOverheadNs() const override { return Tracer::instance().sink().overheadNs(); }

    // ---- Communicator
    int rank() const override { return m_boot.rank(); }
    int size() const override { return m_boot.size(); }
    int hosts() const override { return m_boot.hosts(); }
    int64_t clockOffsetNs() const override { return m_boot.clockOffsetNs(); }
    bool concurrent() const override { return true; }
    void abort(int code) override { m_boot.abort(code); }
    Result<bool> broadcastBytes(void* data, size_t n, int root) override { return m_boot.broadcastBytes(data, n, root); }
    Result<bool> barrier() override
    {
        if (auto s = synchronize(); !s)
            return s;
        return m_boot.barrier();
    }
    int groupSize(CommGroup g) const override
    {
        int n = 1;
        ncclCommCount(comm(g), &n);
        return n;
    }
    int groupRank(CommGroup g) const override
    {
        int r = 0;
        ncclCommUserRank(comm(g), &r);
        return r;
    }
    Result<bool> collective(CommGroup g, Collective c, double bytes, int elementBytes, int root) override
    {
        ncclComm_t cm = comm(g);
        const int n = groupSize(g);
        if (n == 1 || bytes <= 0)
            return true;
        const ncclDataType_t type = elementBytes >= 4 ? ncclFloat32
                                    : m_plan.precision == Precision::FP16 ? ncclFloat16
                                                                          : ncclBfloat16;
        const size_t eb = elementBytes >= 4 ? 4 : 2;
        const size_t elems = std::max<size_t>(size_t(n), size_t(bytes / double(eb)) / size_t(n) * size_t(n));
        const size_t total = elems * eb;
        const int slot = int(g);
        if (!grow(m_coll[slot], m_collBytes[slot], 2 * total))
            return faultError();
        char* in = static_cast<char*>(m_coll[slot]);
        char* out = in + total;
        // Data-parallel traffic on its own stream; the rest blocks the compute stream, as the plan says.
        cudaStream_t st = g == CommGroup::Data ? m_dataStream : m_computeStream;
        ncclResult_t e = ncclSuccess;
        switch (c) {
        case Collective::AllReduce: e = ncclAllReduce(in, out, elems, type, ncclSum, cm, st); break;
        case Collective::ReduceScatter: e = ncclReduceScatter(in, out, elems / size_t(n), type, ncclSum, cm, st); break;
        case Collective::AllGather: e = ncclAllGather(in, out, elems / size_t(n), type, cm, st); break;
        case Collective::Broadcast: e = ncclBroadcast(in, out, elems, type, root, cm, st); break;
        case Collective::Reduce: e = ncclReduce(in, out, elems, type, ncclSum, root, cm, st); break;
        case Collective::AllToAll: {
            const size_t block = elems / size_t(n);
            ncclGroupStart();
            for (int peer = 0; peer < n; ++peer) {
                ncclSend(in + size_t(peer) * block * eb, block, type, peer, cm, st);
                ncclRecv(out + size_t(peer) * block * eb, block, type, peer, cm, st);
            }
            e = ncclGroupEnd();
            break;
        }
        }
        if (e != ncclSuccess)
            return Error{"NCCL", std::string(collectiveName(c)) + " on the " + std::string(commGroupName(g)) + " group",
                         ncclMessage(e)};
        return true;
    }
    Result<bool> send(int peer, double bytes, int) override
    {
        const size_t n = size_t(std::max(1.0, bytes));
        if (!grow(m_p2p, m_p2pBytes, 2 * n))
            return faultError();
        // The send stream starts when the compute stream has produced what is sent.
        cudaEventRecord(m_sendReady, m_computeStream);
        cudaStreamWaitEvent(m_sendStream, m_sendReady, 0);
        if (auto e = ncclSend(m_p2p, n, ncclChar, peer, m_world, m_sendStream); e != ncclSuccess)
            return Error{"NCCL", "send to rank " + std::to_string(peer), ncclMessage(e)};
        return true;
    }
    Result<bool> recv(int peer, double bytes, int) override
    {
        const size_t n = size_t(std::max(1.0, bytes));
        if (!grow(m_p2p, m_p2pBytes, 2 * n))
            return faultError();
        if (auto e = ncclRecv(static_cast<char*>(m_p2p) + n, n, ncclChar, peer, m_world, m_computeStream); e != ncclSuccess)
            return Error{"NCCL", "receive from rank " + std::to_string(peer), ncclMessage(e)};
        return true;
    }
    Result<bool> completeSends() override
    {
        cudaEventRecord(m_sendDone, m_sendStream);
        cudaStreamWaitEvent(m_computeStream, m_sendDone, 0);
        return true;
    }
    void dataReady() override
    {
        cudaEventRecord(m_readyEvent, m_computeStream);
        cudaStreamWaitEvent(m_dataStream, m_readyEvent, 0);
    }
    void joinData() override
    {
        cudaEventRecord(m_dataDone, m_dataStream);
        cudaStreamWaitEvent(m_computeStream, m_dataDone, 0);
    }

private:
    size_t elementBytes() const { return m_plan.precision == Precision::FP32 ? 4 : 2; }
    // Every buffer at the size of the largest op of this rank's class, before
    // the first step (growing later would wait for the device mid-step).
    Result<bool> reserve()
    {
        const RankClass* rc = rankClassOf(m_plan, m_boot.rank());
        if (!rc)
            return Error{"plan", "classes", "no rank class holds rank " + std::to_string(m_boot.rank())};
        const size_t eb = elementBytes();
        size_t a = 1, b = 1, c = 1, mem = 1, coll = 1, p2p = 1;
        for (const Step& st : rc->steps) {
            if (st.kind == StepKind::Run)
                for (const Kernel& k : m_plan.programs[size_t(st.program)].kernels) {
                    const size_t batch = size_t(std::max<int64_t>(1, k.batch)); // strided-batched: all at once
                    a = std::max(a, size_t(k.m * k.k) * eb * batch);
                    b = std::max(b, size_t(k.k * k.n) * eb * batch);
                    c = std::max(c, size_t(k.m * k.n) * eb * batch);
                    mem = std::max(mem, size_t(k.bytes) + 2);
                    coll = std::max(coll, 2 * size_t(k.coll_bytes) + 16);
                }
            if (st.kind == StepKind::Send || st.kind == StepKind::Recv)
                p2p = std::max(p2p, 2 * size_t(st.bytes) + 2);
            if (st.kind == StepKind::Sync)
                coll = std::max(coll, 2 * size_t(st.bytes) * size_t(std::max(1, m_plan.dp * m_plan.cp)) + 16);
        }
        const double params = rc->parameters;
        mem = std::max(mem, size_t(params * 40) + 2);     // the optimizer's pass
        coll = std::max(coll, 2 * size_t(params * 4) + 16); // ZeRO's parameter gathers
        for (auto [ptr, have, need] : {std::tuple{&m_a, &m_aBytes, a}, std::tuple{&m_b, &m_bBytes, b},
                                       std::tuple{&m_c, &m_cBytes, c}, std::tuple{&m_mem, &m_memBytes, mem},
                                       std::tuple{&m_p2p, &m_p2pBytes, p2p}})
            if (!grow(*ptr, *have, need))
                return faultError();
        for (int g = 0; g < 5; ++g)
            if (!grow(m_coll[g], m_collBytes[g], g == int(CommGroup::World) ? 16 : coll))
                return faultError();
        // GEMM inputs as data, not zeros: on an H200, bf16 GEMMs on zeros ran
        // ~10 % faster than on random values (less power drawn).
        for (auto [ptr, bytes] : {std::pair{m_a, m_aBytes}, std::pair{m_b, m_bBytes}})
            if (auto f = fillRandom(ptr, bytes, 16); !f)
                return f.error();
        return true;
    }
    Error faultError()
    {
        std::lock_guard lock(m_faultMu);
        return m_fault ? *m_fault : Error{"CUDA", "rank " + std::to_string(m_boot.rank()), "unknown failure"};
    }
    ncclComm_t comm(CommGroup g) const
    {
        switch (g) {
        case CommGroup::Tensor: return m_tensor;
        case CommGroup::Expert: return m_expert;
        case CommGroup::Data: return m_data;
        case CommGroup::Context: return m_context;
        case CommGroup::World: break;
        }
        return m_world;
    }
    // Device buffers grow to the largest op; growing waits for the device.
    bool grow(void*& p, size_t& have, size_t need)
    {
        if (need <= have)
            return true;
        cudaDeviceSynchronize();
        if (p)
            cudaFree(p);
        p = nullptr;
        have = 0;
        if (auto e = cudaMalloc(&p, need); e != cudaSuccess) {
            fault(Error{"CUDA", "cudaMalloc of " + std::to_string(need) + " bytes", cudaMessage(e)});
            return false;
        }
        cudaMemset(p, 0, need);
        have = need;
        return true;
    }
    void fault(Error e)
    {
        std::lock_guard lock(m_faultMu);
        if (!m_fault)
            m_fault = std::move(e);
    }

    const Plan& m_plan;
    Communicator& m_boot;
    CudaBackendOptions m_opt;
    std::string m_name;
    int m_device = 0;
    cudaStream_t m_computeStream = nullptr, m_dataStream = nullptr, m_sendStream = nullptr;
    cudaEvent_t m_readyEvent = nullptr, m_dataDone = nullptr, m_sendReady = nullptr, m_sendDone = nullptr;
    cublasHandle_t m_blas = nullptr;
    cudaDataType_t m_type = CUDA_R_16BF;
    ncclComm_t m_world = nullptr, m_tensor = nullptr, m_data = nullptr, m_expert = nullptr, m_context = nullptr;
    void *m_a = nullptr, *m_b = nullptr, *m_c = nullptr, *m_mem = nullptr, *m_p2p = nullptr;
    void* m_coll[5] = {nullptr, nullptr, nullptr, nullptr, nullptr};
    size_t m_aBytes = 0, m_bBytes = 0, m_cBytes = 0, m_memBytes = 0, m_p2pBytes = 0;
    size_t m_collBytes[5] = {0, 0, 0, 0, 0};
    std::mutex m_faultMu;
    std::optional<Error> m_fault;
};

} // namespace

Result<std::unique_ptr<CudaBackend>> createCudaBackend(const Plan& plan, Communicator& bootstrap,
                                                       const CudaBackendOptions& options)
{
    auto b = std::make_unique<CudaBackendImpl>(plan, bootstrap, options);
    if (auto r = b->init(); !r)
        return r.error();
    return std::unique_ptr<CudaBackend>(std::move(b));
}

} // namespace partita
