#include "partita/executor/mpicomm.h"

#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <vector>

namespace partita {

Result<GroupSplits> groupSplits(const Plan& plan, int rank)
{
    if (plan.ep > 1 && plan.dp % plan.ep != 0)
        return Error{"plan", "mesh", "expert parallelism " + std::to_string(plan.ep) +
                                         " does not divide data parallelism " + std::to_string(plan.dp)};
    const RankClass* rc = rankClassOf(plan, rank);
    if (!rc)
        return Error{"plan", "classes", "no rank class holds rank " + std::to_string(rank)};
    // Ranks of a stage: tensor fastest, then context, then data (Megatron-LM's order).
    const int local = rank - rc->first_rank;
    const int cp = std::max(1, plan.cp);
    const int tpi = local % plan.tp, cpi = (local / plan.tp) % cp, dpi = local / (plan.tp * cp);
    const int ep = plan.ep > 1 ? plan.ep : 1;
    const int groupsPerEp = plan.dp / ep;
    GroupSplits g;
    g.tensor = {(rc->stage * plan.dp + dpi) * cp + cpi, tpi};
    g.data = {rc->stage * plan.tp + tpi, dpi * cp + cpi};
    g.expert = {((rc->stage * plan.tp + tpi) * cp + cpi) * groupsPerEp + dpi / ep, dpi % ep};
    g.context = {(rc->stage * plan.dp + dpi) * plan.tp + tpi, cpi};
    return g;
}

int localRankFromEnvironment()
{
    for (const char* v : {"OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", "MPI_LOCALRANKID"})
        if (const char* s = std::getenv(v))
            return std::max(0, std::atoi(s));
    return 0;
}

bool startedByMpiLauncher()
{
    for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE", "SLURM_PROCID"})
        if (std::getenv(v))
            return true;
    return false;
}

namespace {

int64_t steadyNs()
{
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

std::string mpiError(int code)
{
    char buf[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(code, buf, &len);
    return std::string(buf, size_t(std::max(0, len)));
}

class MpiCommunicator final : public Communicator
{
public:
    ~MpiCommunicator() override
    {
        static_cast<void>(completeSends());
        for (MPI_Comm* c : {&m_tensor, &m_expert, &m_data, &m_context, &m_node})
            if (*c != MPI_COMM_NULL)
                MPI_Comm_free(c);
        int finalized = 0;
        MPI_Finalized(&finalized);
        if (!finalized)
            MPI_Finalize();
    }

    Result<bool> init(const Plan& plan, int* argc, char*** argv)
    {
        int provided = MPI_THREAD_SINGLE;
        if (int rc = MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &provided); rc != MPI_SUCCESS)
            return Error{"MPI", "MPI_Init_thread", mpiError(rc)};
        // Failures come back as codes, so a rank can name what went wrong.
        MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
        m_concurrent = provided == MPI_THREAD_MULTIPLE;
        MPI_Comm_rank(MPI_COMM_WORLD, &m_rank);
        MPI_Comm_size(MPI_COMM_WORLD, &m_size);
        char version[MPI_MAX_LIBRARY_VERSION_STRING];
        int len = 0;
        MPI_Get_library_version(version, &len);
        m_name = std::string(version, size_t(std::max(0, len)));
        if (auto nl = m_name.find_first_of(",\n"); nl != std::string::npos)
            m_name.resize(nl);
        if (m_size != plan.world)
            return Error{"MPI", "rank " + std::to_string(m_rank),
                         "the launcher started " + std::to_string(m_size) + " ranks but the plan has " +
                             std::to_string(plan.world)};
        auto splits = groupSplits(plan, m_rank);
        if (!splits)
            return splits.error();
        struct Split
        {
            MPI_Comm* comm;
            GroupSplit split;
            const char* what;
        };
        const Split all[] = {
            {&m_tensor, splits->tensor, "tensor-parallel"},
            {&m_data, splits->data, "data-parallel"},
            {&m_expert, splits->expert, "expert-parallel"},
            {&m_context, splits->context, "context-parallel"},
        };
        for (const Split& s : all)
            if (int e = MPI_Comm_split(MPI_COMM_WORLD, s.split.color, s.split.key, s.comm); e != MPI_SUCCESS)
                return Error{"MPI", std::string("MPI_Comm_split of the ") + s.what + " group", mpiError(e)};
        for (MPI_Comm c : {m_tensor, m_data, m_expert, m_context})
            MPI_Comm_set_errhandler(c, MPI_ERRORS_RETURN);
        if (int e = MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, m_rank, MPI_INFO_NULL, &m_node);
            e != MPI_SUCCESS)
            return Error{"MPI", "MPI_Comm_split_type", mpiError(e)};
        int nodeRank = 0;
        MPI_Comm_rank(m_node, &nodeRank);
        int leader = nodeRank == 0 ? 1 : 0;
        if (int e = MPI_Allreduce(&leader, &m_hosts, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD); e != MPI_SUCCESS)
            return Error{"MPI", "counting hosts", mpiError(e)};
        return alignClocks();
    }

    std::string name() const override { return m_name; }
    int rank() const override { return m_rank; }
    int size() const override { return m_size; }
    int hosts() const override { return m_hosts; }
    bool concurrent() const override { return m_concurrent; }
    int64_t clockOffsetNs() const override { return m_offset; }
    int groupSize(CommGroup g) const override
    {
        int n = 1;
        MPI_Comm_size(comm(g), &n);
        return n;
    }
    int groupRank(CommGroup g) const override
    {
        int r = 0;
        MPI_Comm_rank(comm(g), &r);
        return r;
    }

    Result<bool> collective(CommGroup g, Collective c, double bytes, int elementBytes, int root) override
    {
        MPI_Comm cm = comm(g);
        int n = 1;
        MPI_Comm_size(cm, &n);
        if (n == 1 || bytes <= 0)
            return true;
        const MPI_Datatype type = elementBytes == 4 ? MPI_FLOAT : MPI_SHORT;
        const int eb = elementBytes == 4 ? 4 : 2;
        // Whole elements, divisible by the group size.
        const int64_t elems = std::max<int64_t>(n, int64_t(bytes / eb) / n * n);
        if (elems > int64_t(INT_MAX) / 2)
            return Error{"MPI", std::string(collectiveName(c)), "a collective of " + std::to_string(bytes) +
                                                                    " bytes exceeds MPI's count limit"};
        const int count = int(elems);
        const size_t total = size_t(elems) * size_t(eb);
        // Each group has its own buffers: the compute thread's tensor-parallel
        // collectives run while the data-parallel ones do.
        char* in = buffer(m_in[size_t(g)], total);
        char* out = buffer(m_out[size_t(g)], total);
        int e = MPI_SUCCESS;
        switch (c) {
        case Collective::AllReduce: e = MPI_Allreduce(in, out, count, type, MPI_SUM, cm); break;
        case Collective::ReduceScatter: e = MPI_Reduce_scatter_block(in, out, count / n, type, MPI_SUM, cm); break;
        case Collective::AllGather: e = MPI_Allgather(in, int(total / size_t(n)), MPI_BYTE, out, int(total / size_t(n)), MPI_BYTE, cm); break;
        case Collective::Broadcast: e = MPI_Bcast(in, int(total), MPI_BYTE, root, cm); break;
        case Collective::Reduce: e = MPI_Reduce(in, out, count, type, MPI_SUM, root, cm); break;
        case Collective::AllToAll: e = MPI_Alltoall(in, int(total / size_t(n)), MPI_BYTE, out, int(total / size_t(n)), MPI_BYTE, cm); break;
        }
        if (e != MPI_SUCCESS)
            return Error{"MPI", std::string(collectiveName(c)) + " on the " + std::string(commGroupName(g)) + " group",
                         mpiError(e)};
        return true;
    }

    Result<bool> send(int peer, double bytes, int tag) override
    {
        m_sendBufs.emplace_back(size_t(std::max(1.0, bytes)));
        m_requests.emplace_back();
        const int e = MPI_Isend(m_sendBufs.back().data(), int(m_sendBufs.back().size()), MPI_BYTE, peer,
                                tag % 32767, MPI_COMM_WORLD, &m_requests.back());
        if (e != MPI_SUCCESS)
            return Error{"MPI", "send to rank " + std::to_string(peer), mpiError(e)};
        return true;
    }
    Result<bool> recv(int peer, double bytes, int tag) override
    {
        char* b = buffer(m_recv, size_t(std::max(1.0, bytes)));
        const int e = MPI_Recv(b, int(std::max(1.0, bytes)), MPI_BYTE, peer, tag % 32767, MPI_COMM_WORLD,
                               MPI_STATUS_IGNORE);
        if (e != MPI_SUCCESS)
            return Error{"MPI", "receive from rank " + std::to_string(peer), mpiError(e)};
        return true;
    }
    Result<bool> completeSends() override
    {
        if (m_requests.empty())
            return true;
        const int e = MPI_Waitall(int(m_requests.size()), m_requests.data(), MPI_STATUSES_IGNORE);
        m_requests.clear();
        m_sendBufs.clear();
        if (e != MPI_SUCCESS)
            return Error{"MPI", "completing sends", mpiError(e)};
        return true;
    }
    Result<bool> barrier() override
    {
        if (int e = MPI_Barrier(MPI_COMM_WORLD); e != MPI_SUCCESS)
            return Error{"MPI", "barrier", mpiError(e)};
        return true;
    }
    Result<bool> broadcastBytes(void* data, size_t n, int root) override
    {
        if (int e = MPI_Bcast(data, int(n), MPI_BYTE, root, MPI_COMM_WORLD); e != MPI_SUCCESS)
            return Error{"MPI", "broadcast", mpiError(e)};
        return true;
    }
    void abort(int code) override { MPI_Abort(MPI_COMM_WORLD, code); }

private:
    MPI_Comm comm(CommGroup g) const
    {
        switch (g) {
        case CommGroup::Tensor: return m_tensor;
        case CommGroup::Expert: return m_expert;
        case CommGroup::Data: return m_data;
        case CommGroup::Context: return m_context;
        case CommGroup::World: break;
        }
        return MPI_COMM_WORLD;
    }
    static char* buffer(std::vector<char>& b, size_t n)
    {
        if (b.size() < n)
            b.assign(n, 1);
        return b.data();
    }

    // NTP-style: each rank exchanges timestamps with rank 0 and keeps the
    // estimate of the round trip that took least time.
    Result<bool> alignClocks()
    {
        constexpr int kRounds = 16;
        for (int r = 1; r < m_size; ++r) {
            if (m_rank == 0) {
                for (int i = 0; i < kRounds; ++i) {
                    int64_t t = 0;
                    if (int e = MPI_Recv(&t, 1, MPI_INT64_T, r, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE); e != MPI_SUCCESS)
                        return Error{"MPI", "clock alignment with rank " + std::to_string(r), mpiError(e)};
                    t = steadyNs();
                    if (int e = MPI_Send(&t, 1, MPI_INT64_T, r, 2, MPI_COMM_WORLD); e != MPI_SUCCESS)
                        return Error{"MPI", "clock alignment with rank " + std::to_string(r), mpiError(e)};
                }
            } else if (m_rank == r) {
                int64_t best = INT64_MAX;
                for (int i = 0; i < kRounds; ++i) {
                    int64_t t1 = steadyNs(), t0 = 0;
                    if (int e = MPI_Send(&t1, 1, MPI_INT64_T, 0, 1, MPI_COMM_WORLD); e != MPI_SUCCESS)
                        return Error{"MPI", "clock alignment with rank 0", mpiError(e)};
                    if (int e = MPI_Recv(&t0, 1, MPI_INT64_T, 0, 2, MPI_COMM_WORLD, MPI_STATUS_IGNORE); e != MPI_SUCCESS)
                        return Error{"MPI", "clock alignment with rank 0", mpiError(e)};
                    const int64_t t2 = steadyNs();
                    if (t2 - t1 < best) {
                        best = t2 - t1;
                        m_offset = t1 + (t2 - t1) / 2 - t0;
                    }
                }
            }
        }
        return true;
    }

    int m_rank = 0, m_size = 1, m_hosts = 1;
    bool m_concurrent = false;
    int64_t m_offset = 0;
    std::string m_name;
    MPI_Comm m_tensor = MPI_COMM_NULL, m_expert = MPI_COMM_NULL, m_data = MPI_COMM_NULL, m_context = MPI_COMM_NULL,
             m_node = MPI_COMM_NULL;
    std::vector<char> m_in[5], m_out[5], m_recv;
    std::vector<std::vector<char>> m_sendBufs;
    std::vector<MPI_Request> m_requests;
};

} // namespace

Result<std::unique_ptr<Communicator>> makeMpiCommunicator(const Plan& plan, int* argc, char*** argv)
{
    auto c = std::make_unique<MpiCommunicator>();
    if (auto r = c->init(plan, argc, argv); !r)
        return r.error();
    return std::unique_ptr<Communicator>(std::move(c));
}

Result<MpiAllreduceSweep> measureMpiAllreduce(int* argc, char*** argv)
{
    // The thread level the worker asks for: Open MPI's locking differs with it.
    int provided = MPI_THREAD_SINGLE;
    if (int rc = MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &provided); rc != MPI_SUCCESS)
        return Error{"MPI", "MPI_Init_thread", mpiError(rc)};
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MpiAllreduceSweep out;
    MPI_Comm_rank(MPI_COMM_WORLD, &out.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &out.ranks);
    char version[MPI_MAX_LIBRARY_VERSION_STRING];
    int len = 0;
    MPI_Get_library_version(version, &len);
    out.library = std::string(version, size_t(std::max(0, len)));
    if (auto nl = out.library.find_first_of(",\n"); nl != std::string::npos)
        out.library.resize(nl);
    for (size_t bytes = size_t(64) << 10; bytes <= (size_t(16) << 20); bytes *= 4) {
        std::vector<float> in(bytes / 4, 1.0f), res(bytes / 4, 0.0f);
        std::vector<double> times;
        for (int i = 0; i < 9; ++i) {
            MPI_Barrier(MPI_COMM_WORLD);
            const double t0 = MPI_Wtime();
            if (int e = MPI_Allreduce(in.data(), res.data(), int(in.size()), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
                e != MPI_SUCCESS) {
                MPI_Abort(MPI_COMM_WORLD, 3);
                return Error{"MPI", "MPI_Allreduce of " + std::to_string(bytes) + " bytes", mpiError(e)};
            }
            double t = MPI_Wtime() - t0, slowest = 0;
            MPI_Allreduce(&t, &slowest, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
            if (i >= 2) // two warm-up calls
                times.push_back(slowest);
        }
        std::sort(times.begin(), times.end());
        out.samples.emplace_back(double(bytes), times[times.size() / 2]);
    }
    MPI_Finalize();
    return out;
}

} // namespace partita
