#pragma once
// Straggler root cause: in a multi-rank run, which rank made the others wait
// at each collective, by how much on every other rank, and what that rank
// was doing longer than the others before it (kernel and layer). A per-rank
// step time hides this: the collective evens the ranks out, the fast ones
// spending the difference inside it.
//
// Collectives are the ranks' communication kernels (analysis.h's classes),
// matched across ranks by their order: ranks are taken to run the same
// collectives in the same order, as data-parallel and symmetric hybrid jobs
// do; matching stops, with a note, where the names part. A collective ends
// when its last rank arrives, on every rank at once: the ranks' clocks are
// aligned on those ends (each rank's offset, the median difference from the
// first rank's, is reported), and a rank's arrival is its kernel's start on
// the aligned clock.

#include "partita/core/result.h"
#include "partita/profiler/tracestore.h"

#include <cstdint>
#include <string>
#include <vector>

namespace partita {

struct ClockCorrection
{
    int rank = 0;
    int64_t offset_ns = 0; // subtracted from the rank's times to align them
    int64_t spread_ns = 0; // how far its collectives' ends still differ after (the largest)
};

// The collective of one step that cost the most waiting, and its cause.
struct StepStraggler
{
    int64_t step = -1;           // the step's place on the late rank, from 0 (-1: the run has no steps)
    int late_rank = 0;
    int64_t wait_caused_ns = 0;  // over the step's collectives: what the late ranks made the others wait, summed
    int collectives = 0;         // the step's matched collectives
    // The worst collective: the one the late rank arrived last at by the most.
    std::string collective;
    int64_t collective_index = 0; // its place among the run's matched collectives
    int64_t worst_wait_ns = 0;    // the others' wait at it, summed
    std::vector<int64_t> wait_ns; // each rank's wait at it (by rank order; 0 for the late one)
    // On the late rank's own clock (the store's times): the stretch looked
    // into (from the previous collective's end) and the collective itself.
    int64_t window_start_ns = 0, collective_start_ns = 0, collective_end_ns = 0;
    // What the late rank did longer before it than the median of the others
    // did in the same stretch (since the previous collective ended).
    std::string kernel;
    int32_t layer = -1;
    int64_t excess_ns = 0;
};

struct RankBlame
{
    int rank = 0;
    int64_t wait_caused_ns = 0; // summed over the collectives it arrived last at
    int64_t late_count = 0;     // how many
    int64_t waited_ns = 0;      // how long it waited for others
};

struct StragglerReport
{
    int ranks = 0;
    int64_t matched = 0; // collectives matched on every rank
    std::vector<ClockCorrection> clocks;
    std::vector<StepStraggler> steps;
    std::vector<RankBlame> blame; // by rank
    std::vector<std::string> notes;
};

// Fails on a run that does not exist; a run with fewer than two ranks or no
// communication kernels gives a report with a note saying so.
Result<StragglerReport> findStragglers(const TraceStore& store, int64_t run);

} // namespace partita
