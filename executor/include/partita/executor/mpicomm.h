#pragma once
// The CPU backend's communicator: Open MPI collectives on MPI_Comm_split
// groups of the plan's mesh (tensor fastest, then data, then pipeline), the
// host clocks of all ranks aligned to rank 0 by ping-pong at start-up.

#include "partita/core/plan.h"
#include "partita/core/result.h"
#include "partita/executor/backend.h"

#include <memory>

namespace partita {

// The colour and key of a rank in each group of the plan's mesh, for
// MPI_Comm_split and ncclCommSplit alike: tensor (same stage, same data
// index), data (same stage, same tensor index), expert (`ep` consecutive data
// indices of one tensor index).
struct GroupSplit
{
    int color = 0, key = 0;
};
struct GroupSplits
{
    GroupSplit tensor, data, expert, context;
};
Result<GroupSplits> groupSplits(const Plan& plan, int rank);

// This rank's index among the ranks of its host, from the launcher's
// environment (Open MPI, Slurm); 0 when none says.
int localRankFromEnvironment();

// Whether this process was started by an MPI launcher (mpirun, srun).
bool startedByMpiLauncher();

// Initializes MPI (MPI_THREAD_MULTIPLE when the library offers it, so
// data-parallel synchronization runs beside compute) and builds the plan's
// groups. Fails, naming the cause, when the launcher started a different
// number of ranks than the plan has. MPI is finalized when the returned
// communicator is destroyed.
Result<std::unique_ptr<Communicator>> makeMpiCommunicator(const Plan& plan, int* argc, char*** argv);

// MPI_Allreduce of fp32 sums between the ranks the launcher started, as the
// CPU backend's data-parallel synchronization runs it: for each size from
// 64 KiB to 16 MiB, after warm-up, the median of seven calls, each timed by
// the slowest rank after a barrier. Initializes and finalizes MPI.
struct MpiAllreduceSweep
{
    int rank = 0, ranks = 1;
    std::string library;
    std::vector<std::pair<double, double>> samples; // (bytes, seconds)
};
Result<MpiAllreduceSweep> measureMpiAllreduce(int* argc, char*** argv);

} // namespace partita
