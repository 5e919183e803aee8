#pragma once
// The CPU backend's communicator: Open MPI collectives on MPI_Comm_split
// groups of the plan's mesh (tensor fastest, then data, then pipeline), the
// host clocks of all ranks aligned to rank 0 by ping-pong at start-up.

#include "partita/core/plan.h"
#include "partita/core/result.h"
#include "partita/executor/backend.h"

#include <memory>

namespace partita {

// Whether this process was started by an MPI launcher (mpirun, srun).
bool startedByMpiLauncher();

// Initializes MPI (MPI_THREAD_MULTIPLE when the library offers it, so
// data-parallel synchronization runs beside compute) and builds the plan's
// groups. Fails, naming the cause, when the launcher started a different
// number of ranks than the plan has. MPI is finalized when the returned
// communicator is destroyed.
Result<std::unique_ptr<Communicator>> makeMpiCommunicator(const Plan& plan, int* argc, char*** argv);

} // namespace partita
