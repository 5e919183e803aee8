#include "partita/executor/backend.h"

#include <cblas.h>

#include <algorithm>
#include <cstring>
#include <vector>

namespace partita {

std::string_view commGroupName(CommGroup g)
{
    switch (g) {
    case CommGroup::Tensor: return "tensor-parallel";
    case CommGroup::Expert: return "expert-parallel";
    case CommGroup::Data: return "data-parallel";
    case CommGroup::World: return "world";
    }
    return "?";
}

namespace {

class LoneCommunicator final : public Communicator
{
public:
    std::string name() const override { return "none (one rank)"; }
    int rank() const override { return 0; }
    int size() const override { return 1; }
    int groupSize(CommGroup) const override { return 1; }
    int groupRank(CommGroup) const override { return 0; }
    int hosts() const override { return 1; }
    Result<bool> collective(CommGroup, Collective, double, int, int) override { return true; }
    Result<bool> send(int peer, double, int) override
    {
        return Error{"plan", "send", "rank 0 is alone: there is no rank " + std::to_string(peer) + " to send to"};
    }
    Result<bool> recv(int peer, double, int) override
    {
        return Error{"plan", "recv", "rank 0 is alone: there is no rank " + std::to_string(peer) + " to receive from"};
    }
    Result<bool> completeSends() override { return true; }
    Result<bool> barrier() override { return true; }
    Result<bool> broadcastBytes(void*, size_t, int) override { return true; }
    int64_t clockOffsetNs() const override { return 0; }
    bool concurrent() const override { return true; }
    void abort(int) override {}
};

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

std::unique_ptr<Communicator> makeLoneCommunicator() { return std::make_unique<LoneCommunicator>(); }
std::unique_ptr<ComputeBackend> makeCpuCompute() { return std::make_unique<CpuCompute>(); }

} // namespace partita
