#pragma once
// The executor's backend interface. A rank replays its part of a plan through
// three parts: a compute backend (GEMMs of the plan's shapes, memory-bound
// passes of the plan's bytes), a communicator (collectives on the rank's
// tensor-, expert- and data-parallel groups, point-to-point transfers with
// the neighbouring pipeline stages) and the tracer, which the worker drives
// (host clock on the CPU backend; CUPTI on the CUDA backend, whose ops are
// asynchronous: the worker tags each op so that the device's records map
// back to it, and reads the records after each step).

#include "partita/core/plan.h"
#include "partita/core/result.h"
#include "partita/core/trace.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace partita {

enum class CommGroup
{
    Tensor, // same stage, same data-parallel index
    Expert, // `ep` consecutive data-parallel ranks of one tensor index
    Data,    // same stage, same tensor index: data- and context-parallel ranks together
    World,
    Context, // same stage, tensor and data index: one sequence's context-parallel ranks
};
std::string_view commGroupName(CommGroup g);

class ComputeBackend
{
public:
    virtual ~ComputeBackend() = default;
    virtual std::string name() const = 0;
    // One matmul of m x n x k (row-major, no transposes) in the backend's dtype.
    virtual void gemm(int64_t m, int64_t n, int64_t k) = 0;
    // `batch` independent matmuls of one shape (attention's QK^T and PV), as
    // frameworks issue them: one strided-batched launch where the backend has
    // one, else one after another.
    virtual void batchedGemm(int64_t m, int64_t n, int64_t k, int64_t batch)
    {
        for (int64_t i = 0; i < batch; ++i)
            gemm(m, n, k);
    }
    // A pass over `bytes` of memory, half read, half written.
    virtual void memoryPass(double bytes) = 0;

    // Asynchronous backends (a GPU): ops are timed on the device, not by the
    // host around the call. The worker then brackets every op it issues,
    // on whichever thread, with opBegin/opEnd (so the device's records carry
    // the plan op id), synchronizes at the end of each step, and takes the
    // device's records.
    virtual bool deviceTimed() const { return false; }
    virtual void opBegin(int64_t op) {}
    virtual void opEnd() {}
    virtual Result<bool> synchronize() { return true; }
    // Device records since the last call (op ids filled from the tags),
    // timestamps on this host's steady clock.
    virtual Result<std::vector<TraceRecord>> takeDeviceRecords(int rank) { return std::vector<TraceRecord>{}; }
};

class Communicator
{
public:
    virtual ~Communicator() = default;
    virtual std::string name() const = 0;
    virtual int rank() const = 0;
    virtual int size() const = 0;
    virtual int groupSize(CommGroup g) const = 0;
    virtual int groupRank(CommGroup g) const = 0;
    // Distinct hosts the world spans.
    virtual int hosts() const = 0;
    // `bytes` is the whole array (the nccl-tests convention): all-reduce
    // reduces `bytes`, all-gather's result and reduce-scatter's input are
    // `bytes`, all-to-all exchanges `bytes` in all. Reductions sum elements of
    // `elementBytes` (2 or 4). `root` is a rank of the group.
    virtual Result<bool> collective(CommGroup g, Collective c, double bytes, int elementBytes, int root = 0) = 0;
    // Point-to-point with a world rank: sends are posted and complete by
    // `completeSends` (so two stages sending to each other never deadlock);
    // receives block.
    virtual Result<bool> send(int peer, double bytes, int tag) = 0;
    virtual Result<bool> recv(int peer, double bytes, int tag) = 0;
    virtual Result<bool> completeSends() = 0;
    virtual Result<bool> barrier() = 0;
    // Rank `root`'s `n` bytes to every rank (bootstrapping other libraries, such as NCCL's unique id).
    virtual Result<bool> broadcastBytes(void* data, size_t n, int root) = 0;
    // This rank's steady clock minus rank 0's, in ns (0 on rank 0), measured
    // at start-up by ping-pong with rank 0: the trace of every rank is on
    // rank 0's time base.
    virtual int64_t clockOffsetNs() const = 0;
    // Whether collectives may run on a second thread while the first computes.
    virtual bool concurrent() const = 0;
    // Terminates every rank (after a local failure that peers would wait on).
    virtual void abort(int code) = 0;

    // Stream-ordered communicators (NCCL): a data-parallel collective is
    // issued on a communication stream, which must first wait for what the
    // compute stream has done so far (dataReady, called on the compute
    // thread when the collective is posted), and the compute stream must wait
    // for the communication stream before using its results (joinData,
    // called on the compute thread after the worker waited for the posted
    // collectives). Both are no-ops for blocking communicators.
    virtual void dataReady() {}
    virtual void joinData() {}
};

// One rank alone: every group has one member, collectives are no-ops, and
// sends or receives are errors.
std::unique_ptr<Communicator> makeLoneCommunicator();

} // namespace partita
