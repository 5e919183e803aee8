#pragma once
// One rank of a user's training command (partita-cli run --command): started
// by a launcher (mpirun, srun, or alone), it gives the command the
// environment torch.distributed expects, as torchrun gives a script: RANK,
// LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT (and
// OMP_NUM_THREADS=1 when several ranks share a host and it is unset, as
// torchrun does). It reports start and end in the lines the launcher reads
// (launcher.h), passes the command's output through, and, when the command
// fails, says why on one line naming the rank and host: its exit code or
// signal and the last line it wrote to standard error.

#include <string>
#include <vector>

namespace partita {

struct RankEnvironment
{
    int rank = 0, local_rank = 0, world = 1, local_world = 1;
    std::string launcher; // "mpirun", "srun", or "none"
};

// Where this process sits in its job, from the launcher's environment
// (Open MPI's OMPI_COMM_WORLD_*, Slurm's SLURM_*); a lone process is rank 0 of 1.
RankEnvironment rankEnvironment();

struct RankExecOptions
{
    std::vector<std::string> command; // argv, first the program
    std::string master_addr = "127.0.0.1";
    int master_port = 29500;
    // One process per node running a torchrun line: instead of a rank's
    // environment, torchrun's own (PET_NNODES, PET_NODE_RANK,
    // PET_MASTER_ADDR, PET_MASTER_PORT: its flags' defaults), this process
    // being the node.
    bool per_node = false;
};

// Writes `text` and a newline to `fd` in one write() where it can (a line
// under PIPE_BUF is then whole on a pipe the ranks share: the launcher's
// stderr), retrying what a signal cut short.
void writeLine(int fd, const std::string& text);

// Runs the command as this rank and returns its exit status (127 when it
// cannot be started, 128 + N when killed by signal N). SIGTERM and SIGINT
// are passed on to the command; the command dies with this process.
int execTrainingRank(const RankExecOptions& options);

} // namespace partita
