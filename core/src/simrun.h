#pragma once
// One simulation of a plan (simulator.cpp's simulatePlan), step by named
// step: the programs' kernel times, the activations each stage keeps, the
// pipeline schedule run rank class by rank class, when each gradient is
// ready, the gradient synchronization (simsync.cpp), the optimizer, memory,
// the critical device's breakdown, throughput, and the predicted trace.
// Each step reads what the steps before it left in the members.

#include "partita/core/simulator.h"

#include "simcost.h"

#include <map>
#include <tuple>
#include <vector>

namespace partita::sim {

class PlanRun
{
public:
    PlanRun(const Plan& plan, const Model& m, const Cluster& c, const Strategy& s, const SimOptions& o, const ResolvedStrategy& r,
            Ctx x);

    void programTimes();
    void activations();
    Result<bool> schedule();
    void gradientReady();
    void gradientSync(); // simsync.cpp
    void optimizer();
    void memory();
    void breakdown();
    void throughput();
    void trace();

    SimResult res;

private:
    // A program run on a stage's device.
    struct Ran
    {
        int program;
        int micro;
        double start, end;
    };
    // What one PS-synchronized variable moves: bytes per push, pushers.
    struct PsVolume
    {
        double perPush = 0, pushersPerNode = 1, pushers = 1, intra = 0;
    };
    struct PsPhase
    {
        double first = -1, last = 0, lastOwn = 0, duration = 0;
        bool stale = true;
        bool any = false;
    };
    struct Bucket
    {
        const Step* step; // null: the parameter-server phase
        double ready;
        double duration;
    };

    double p2pTime(int fromClass, int toClass, double bytes) const;
    bool pending(int d) const;
    bool stepOnce(int d); // the stage's next step, when it can run
    void runProgram(int d, const Step& st);
    // simsync.cpp
    double sparseRows(const Layer& l, double tokens) const;
    PsVolume psVolume(size_t i) const;
    double layerSync(size_t i) const;
    PsPhase psPhase(const std::vector<const Step*>& steps);
    std::vector<Bucket> buckets(int d, std::vector<const Step*>& psSteps);
    double bucketTime(const Bucket& bk);
    void traceSync(int d, const Bucket& bk, double start, double t, size_t psVariables);

    const Plan& plan;
    const Model& m;
    const Cluster& c;
    const Strategy& s;
    const SimOptions& o;
    const ResolvedStrategy& r;
    const Node& node;
    Ctx x;
    const int pp, V;
    const int64_t M;
    const size_t L, P;

    // programTimes
    std::vector<double> progTime, progTp;
    std::vector<std::vector<double>> kTime;
    std::vector<int> fwdOf, bwdOf, recOf;
    // activations
    std::vector<double> savedOf;
    // schedule
    double paramBytes = 2, gradBytesZero = 2;
    int dpAll = 1;
    GroupShape dpg;
    std::vector<double> devFree, busy, tpBusy, commFree, zeroWait, lastStart;
    std::map<std::tuple<int, int, bool>, double> arrived; // sends in flight: (receiving virtual stage, micro-batch, forward?) -> arrival
    std::vector<size_t> ptr;
    std::vector<std::vector<Ran>> ran;
    std::vector<double> vStageParams, bwdStartLast;
    // gradientReady, gradientSync
    std::vector<double> layerReady;
    int gradBytes = 2;
    double tokensPerWorker = 0;
    std::vector<double> syncEnd, staleBound;
    // optimizer
    double wB = 2, gB = 2, oB = 12;
    std::vector<double> stepEnd, optTime, gatherAfter;
    double stepTime = 0;
    int critical = 0;
};

} // namespace partita::sim
