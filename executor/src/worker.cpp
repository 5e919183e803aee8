#include "partita/executor/worker.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

namespace partita {

int64_t planOpId(int step, int kernel) { return int64_t(step) * 100000 + kernel; }

namespace {

int64_t steadyNs()
{
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

std::string megabytes(double bytes)
{
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3g MB", bytes / 1e6);
    return buf;
}

// The communication thread: runs posted tasks in order. Without a
// thread-safe communicator, tasks run where they are posted.
class CommThread
{
public:
    using Task = std::function<Result<bool>()>;
    explicit CommThread(bool threaded)
    {
        if (threaded)
            m_thread = std::thread([this] { loop(); });
    }
    ~CommThread()
    {
        {
            std::lock_guard lock(m_mu);
            m_stop = true;
        }
        m_cv.notify_all();
        if (m_thread.joinable())
            m_thread.join();
    }
    int64_t post(Task t)
    {
        if (!m_thread.joinable()) {
            if (auto r = t(); !r && !m_error)
                m_error = r.error();
            return ++m_posted;
        }
        std::lock_guard lock(m_mu);
        m_queue.push_back(std::move(t));
        m_cv.notify_all();
        return ++m_posted;
    }
    // Waits until task `ticket` (and every one before it) has run.
    Result<bool> wait(int64_t ticket)
    {
        std::unique_lock lock(m_mu);
        m_done_cv.wait(lock, [&] { return m_done >= ticket || m_error || !m_thread.joinable(); });
        if (m_error)
            return *m_error;
        return true;
    }
    Result<bool> drain() { return wait(m_posted); }

private:
    void loop()
    {
        std::unique_lock lock(m_mu);
        for (;;) {
            m_cv.wait(lock, [&] { return m_stop || !m_queue.empty(); });
            if (m_queue.empty())
                return;
            Task t = std::move(m_queue.front());
            m_queue.pop_front();
            lock.unlock();
            auto r = t();
            lock.lock();
            if (!r && !m_error)
                m_error = r.error();
            ++m_done;
            m_done_cv.notify_all();
        }
    }

    std::thread m_thread;
    std::mutex m_mu;
    std::condition_variable m_cv, m_done_cv;
    std::deque<Task> m_queue;
    int64_t m_posted = 0, m_done = 0;
    std::optional<Error> m_error;
    bool m_stop = false;
};


} // namespace

Result<bool> checkPlanForWorker(const Plan& plan, int rank, int worldSize)
{
    if (plan.world != worldSize)
        return Error{"plan", "world", "the plan has " + std::to_string(plan.world) + " ranks but " +
                                          std::to_string(worldSize) + (worldSize == 1 ? " was" : " were") +
                                          " started" + (worldSize == 1 ? " (plans of several ranks run under an MPI launcher: partita-cli run)" : "")};
    const RankClass* rc = rankClassOf(plan, rank);
    if (!rc)
        return Error{"plan", "classes", "no rank class holds rank " + std::to_string(rank)};
    for (size_t i = 0; i < rc->steps.size(); ++i) {
        const Step& st = rc->steps[i];
        const std::string where = "classes/" + std::to_string(rc->stage) + "/steps/" + std::to_string(i);
        if (st.kind == StepKind::Run && (st.program < 0 || size_t(st.program) >= plan.programs.size()))
            return Error{"plan", where, "runs program " + std::to_string(st.program) + ", which does not exist"};
        if ((st.kind == StepKind::Send || st.kind == StepKind::Recv) &&
            (st.peer < 0 || size_t(st.peer) >= plan.classes.size() || plan.classes[size_t(st.peer)].count != rc->count))
            return Error{"plan", where, "exchanges with class " + std::to_string(st.peer) + ", which does not match this one"};
    }
    return true;
}

Result<WorkerResult> runWorker(const Plan& full, const WorkerOptions& o, ComputeBackend& compute, Communicator& comm)
{
    if (!(o.shape_scale > 0 && o.shape_scale <= 1))
        return Error{"options", "shape_scale", "the shape scale must be in (0, 1]"};
    // What runs: the plan at the shape scale, as its prediction is made (core/plan.h).
    const Plan plan = scalePlan(full, o.shape_scale);
    if (o.steps < 1 || o.warmup < 0)
        return Error{"options", "steps", "at least one measured step, and no negative warm-up"};
    const int rank = comm.rank();
    if (auto ok = checkPlanForWorker(plan, rank, comm.size()); !ok)
        return ok.error();
    const RankClass& rc = *rankClassOf(plan, rank);
    const int local = rank - rc.first_rank;
    const int64_t M = plan.micro_batches;
    const int dpSize = comm.groupSize(CommGroup::Data);
    const bool mixed = plan.precision != Precision::FP32;
    const double wB = mixed ? 2 : 4, gB = plan.gradient_bytes, oB = mixed ? 12 : 8;
    const int elemGrad = plan.gradient_bytes >= 4 ? 4 : 2;
    const int elemAct = plan.activation_bytes >= 4 ? 4 : 2;
    const bool zero3 = plan.zero_stage == 3 && dpSize > 1;

    // Backward programs: after which kernel each layer's gradient is complete.
    std::map<int, std::map<size_t, std::vector<int32_t>>> readyAfter; // program -> kernel -> layers
    for (size_t pi = 0; pi < plan.programs.size(); ++pi) {
        const Program& p = plan.programs[pi];
        if (p.phase != Phase::Backward)
            continue;
        std::map<int32_t, size_t> last;
        for (size_t ki = 0; ki < p.kernels.size(); ++ki)
            if (p.kernels[ki].layer >= 0)
                last[p.kernels[ki].layer] = ki;
        for (auto [layer, ki] : last)
            readyAfter[int(pi)][ki].push_back(layer);
    }
    // The virtual stage and direction of each transfer, for matching tags.
    auto transferTag = [&](size_t si) {
        int program = -1;
        if (rc.steps[si].kind == StepKind::Send) {
            for (size_t j = si; j-- > 0;)
                if (rc.steps[j].kind == StepKind::Run) {
                    program = rc.steps[j].program;
                    break;
                }
        } else {
            for (size_t j = si + 1; j < rc.steps.size(); ++j)
                if (rc.steps[j].kind == StepKind::Run) {
                    program = rc.steps[j].program;
                    break;
                }
        }
        const Program& p = plan.programs[size_t(std::max(0, program))];
        const bool fwd = p.phase == Phase::Forward;
        int v = p.virtual_stage;
        if (rc.steps[si].kind == StepKind::Send)
            v += fwd ? 1 : -1;
        return int((int64_t(std::max(0, v)) * 2 + (fwd ? 0 : 1)) * M + rc.steps[si].micro);
    };

    WorkerResult res;
    res.rank = rank;
    res.shape_scale = o.shape_scale;
    res.compute = compute.name();
    res.communicator = comm.name();
    res.overlapped = comm.concurrent() && dpSize > 1;
    res.trace.tracks = {{rank, 0, "compute"}, {rank, 1, "data-parallel comm"}, {rank, 2, "steps"}};
    const int64_t offset = comm.clockOffsetNs();
    auto now = [&] { return steadyNs() - offset; };
    std::vector<TraceRecord> commRecords; // written by the communication thread only
    bool measured = false;
    std::atomic<int64_t> ops{0}; // counted by both threads

    // Device-timed backends: what each op is, for the device's records of it.
    const bool device = compute.deviceTimed();
    std::mutex opInfoMu;
    std::map<int64_t, TraceRecord> opInfo;
    auto record = [&](std::vector<TraceRecord>& into, int track, int64_t begin, TraceKind kind, std::string name,
                      int32_t layer, int64_t op, double bytes, double flops) {
        compute.opEnd();
        ++ops;
        if (!measured)
            return;
        TraceRecord r;
        r.rank = rank;
        r.track = track;
        r.start_ns = begin;
        r.dur_ns = std::max<int64_t>(1, now() - begin);
        r.kind = kind;
        r.name = std::move(name);
        r.layer = layer;
        r.op = op;
        r.bytes = int64_t(bytes);
        r.flops = flops;
        if (device) {
            std::lock_guard lock(opInfoMu);
            opInfo[op] = std::move(r);
            return;
        }
        into.push_back(std::move(r));
    };
    // A data-parallel collective as a task of the communication thread.
    auto dpTask = [&](Collective c, double bytes, int elem, std::string name, int32_t layer, int64_t op,
                      int root = 0) -> CommThread::Task {
        return [&, c, bytes, elem, name = std::move(name), layer, op, root]() -> Result<bool> {
            const int64_t begin = now();
            compute.opBegin(op);
            auto r = comm.collective(CommGroup::Data, c, bytes, elem, root);
            if (!r) {
                compute.opEnd();
                return r;
            }
            record(commRecords, 1, begin, TraceKind::Collective, name, layer, op, bytes, 0);
            return true;
        };
    };

    int64_t stepsNs = 0, checkpointNs = 0; // measured steps' time, and the checkpoints'
    for (int iter = 0; iter < o.warmup + o.steps; ++iter) {
        if (o.cancel && o.cancel->load())
            return Error{"worker", "rank " + std::to_string(rank), "cancelled"};
        measured = iter >= o.warmup;
        // Every step starts together. Between steps this harness writes its
        // checkpoint (the trace so far) and a progress line, which take each
        // rank a different few milliseconds; without the barrier one rank's
        // late start would be charged to the other's first collective as
        // waiting, time that no training loop spends.
        if (auto b = comm.barrier(); !b)
            return b.error();
        CommThread ct(comm.concurrent());
        const int64_t stepStart = now();
        ops = 0;
        std::set<int32_t> ready;
        std::vector<size_t> pendingSyncs;
        for (size_t si = 0; si < rc.steps.size(); ++si)
            if (rc.steps[si].kind == StepKind::Sync)
                pendingSyncs.push_back(si);
        auto postSync = [&](size_t si) -> Result<bool> {
            const Step& st = rc.steps[si];
            const double bytes = st.bytes;
            const int32_t layer = st.layers.empty() ? -1 : st.layers.front();
            const std::string what = std::to_string(st.layers.size()) + (st.layers.size() == 1 ? " layer " : " layers ") +
                                     megabytes(bytes);
            comm.dataReady(); // the gradients computed so far, before the collective reads them
            if (st.method == SyncMethod::ParameterServer) {
                // Servers on the workers: each shard reduced to its server and broadcast back.
                const int k = std::clamp(st.shards > 0 ? st.shards : comm.hosts(), 1, dpSize);
                for (int j = 0; j < k; ++j) {
                    const int root = j * dpSize / k;
                    ct.post(dpTask(Collective::Reduce, bytes / k, elemGrad, "push " + what, layer, planOpId(int(si), 2 * j), root));
                    ct.post(dpTask(Collective::Broadcast, bytes / k, elemGrad, "pull " + what, layer, planOpId(int(si), 2 * j + 1), root));
                }
                return true;
            }
            if (st.sparse) { // every worker's rows (or SFB factors) to every worker
                ct.post(dpTask(Collective::AllGather, bytes * dpSize, elemGrad, "all_gather " + what, layer, planOpId(int(si), 0)));
                return true;
            }
            const Collective c = plan.zero_stage >= 1 ? Collective::ReduceScatter : Collective::AllReduce;
            ct.post(dpTask(c, bytes, elemGrad, std::string(collectiveName(c)) + " " + what, layer, planOpId(int(si), 0)));
            return true;
        };
        auto postReadySyncs = [&](bool all) -> Result<bool> {
            for (auto it = pendingSyncs.begin(); it != pendingSyncs.end();) {
                const Step& st = rc.steps[*it];
                const bool isReady = all || std::all_of(st.layers.begin(), st.layers.end(),
                                                        [&](int32_t l) { return ready.count(l) > 0; });
                if (!isReady) {
                    ++it;
                    continue;
                }
                if (dpSize > 1)
                    if (auto r = postSync(*it); !r)
                        return r;
                it = pendingSyncs.erase(it);
            }
            return true;
        };
        // ZeRO-3: the gather of a pass's parameters, posted one pass ahead.
        std::map<size_t, int64_t> gathers; // step index -> ticket
        auto postGather = [&](size_t si) {
            const Program& p = plan.programs[size_t(rc.steps[si].program)];
            if (!zero3 || p.phase == Phase::Recompute || gathers.count(si))
                return;
            comm.dataReady();
            gathers[si] = ct.post(dpTask(Collective::AllGather, p.params * wB, elemAct,
                                         "all_gather parameters " + std::string(phaseName(p.phase)) + " mb" +
                                             std::to_string(rc.steps[si].micro),
                                         -1, planOpId(int(si), kPreGather)));
        };
        auto nextRun = [&](size_t si) -> std::optional<size_t> {
            for (size_t j = si + 1; j < rc.steps.size(); ++j)
                if (rc.steps[j].kind == StepKind::Run)
                    return j;
            return std::nullopt;
        };

        for (size_t si = 0; si < rc.steps.size(); ++si) {
            const Step& st = rc.steps[si];
            switch (st.kind) {
            case StepKind::Run: {
                const Program& p = plan.programs[size_t(st.program)];
                postGather(si);
                if (auto g = gathers.find(si); g != gathers.end()) {
                    if (auto w = ct.wait(g->second); !w)
                        return w.error();
                    comm.joinData();
                }
                if (auto n = nextRun(si))
                    postGather(*n);
                const auto ra = readyAfter.find(st.program);
                const bool lastMicro = st.micro == M - 1;
                for (size_t ki = 0; ki < p.kernels.size(); ++ki) {
                    const Kernel& k = p.kernels[ki];
                    const int64_t begin = now();
                    if (k.kind == KernelKind::Collective) {
                        // A context-parallel exchange the plan overlaps with its attention runs here
                        // after it, on the compute stream: the executors do not overlap it yet.
                        const CommGroup g = k.group == KernelGroup::Expert    ? CommGroup::Expert
                                            : k.group == KernelGroup::Context ? CommGroup::Context
                                                                              : CommGroup::Tensor;
                        if (comm.groupSize(g) > 1) {
                            compute.opBegin(planOpId(int(si), int(ki)));
                            if (auto r = comm.collective(g, k.coll, k.coll_bytes, elemAct); !r)
                                return r.error();
                            record(res.trace.records, 0, begin, TraceKind::Collective,
                                   kernelEventName(plan, k, p.phase, st.micro), k.layer, planOpId(int(si), int(ki)),
                                   k.coll_bytes, 0);
                        }
                    } else {
                        compute.opBegin(planOpId(int(si), int(ki)));
                        if (k.kind == KernelKind::Gemm || k.kind == KernelKind::BatchedGemm) {
                            // Backward kernels hold the two gradient GEMMs of each forward one.
                            const int64_t batch = std::max<int64_t>(1, k.batch);
                            for (int r = 0; r < std::max(1, k.ops); ++r)
                                if (batch > 1)
                                    compute.batchedGemm(k.m, k.n, k.k, batch);
                                else
                                    compute.gemm(k.m, k.n, k.k);
                            if (k.bytes > 0 && k.mem_ops > 0)
                                compute.memoryPass(k.bytes);
                        } else {
                            compute.memoryPass(k.bytes);
                        }
                        record(res.trace.records, 0, begin, TraceKind::Compute, kernelEventName(plan, k, p.phase, st.micro),
                               k.layer, planOpId(int(si), int(ki)), k.bytes, k.flops);
                    }
                    if (lastMicro && ra != readyAfter.end())
                        if (auto lr = ra->second.find(ki); lr != ra->second.end()) {
                            ready.insert(lr->second.begin(), lr->second.end());
                            if (auto r = postReadySyncs(false); !r)
                                return r.error();
                        }
                }
                if (zero3 && p.phase == Phase::Backward) { // this micro-batch's gradients, reduce-scattered
                    comm.dataReady();
                    ct.post(dpTask(Collective::ReduceScatter, p.params * gB, elemGrad,
                                   "reduce_scatter gradients mb" + std::to_string(st.micro), -1,
                                   planOpId(int(si), kPostScatter)));
                }
                break;
            }
            case StepKind::Send:
            case StepKind::Recv: {
                const int peer = plan.classes[size_t(st.peer)].first_rank + local;
                const int64_t begin = now();
                const bool send = st.kind == StepKind::Send;
                compute.opBegin(planOpId(int(si), 0));
                auto r = send ? comm.send(peer, st.bytes, transferTag(si)) : comm.recv(peer, st.bytes, transferTag(si));
                if (!r)
                    return r.error();
                record(res.trace.records, 0, begin, TraceKind::P2P,
                       std::string(send ? "send mb" : "recv mb") + std::to_string(st.micro) + (send ? " to rank " : " from rank ") +
                           std::to_string(peer) + " " + megabytes(st.bytes),
                       -1, planOpId(int(si), 0), st.bytes, 0);
                break;
            }
            case StepKind::Sync:
                break; // posted when its gradients are ready
            case StepKind::Optimizer: {
                if (auto r = postReadySyncs(true); !r)
                    return r.error();
                if (auto w = ct.drain(); !w)
                    return w.error();
                comm.joinData();
                const int64_t begin = now();
                compute.opBegin(planOpId(int(si), 0));
                // Adam (mixed precision: fp32 master weights and two moments; Rajbhandari et al. 2019, §3.1), sharded by ZeRO.
                const double shard = plan.zero_stage >= 1 ? dpSize : 1;
                const double bytes = rc.parameters / shard * (2 * oB + gB + wB);
                compute.memoryPass(bytes);
                record(res.trace.records, 0, begin, TraceKind::Compute, "optimizer " + megabytes(bytes), -1,
                       planOpId(int(si), 0), bytes, 0);
                if ((plan.zero_stage == 1 || plan.zero_stage == 2) && dpSize > 1) {
                    const int64_t gb = now();
                    const double pbytes = rc.parameters * wB;
                    compute.opBegin(planOpId(int(si), kPostGather));
                    if (auto r = comm.collective(CommGroup::Data, Collective::AllGather, pbytes, elemAct); !r)
                        return r.error();
                    record(res.trace.records, 1, gb, TraceKind::Collective, "all_gather parameters " + megabytes(pbytes),
                           -1, planOpId(int(si), kPostGather), pbytes, 0);
                }
                break;
            }
            }
        }
        if (auto r = postReadySyncs(true); !r)
            return r.error();
        if (auto w = ct.drain(); !w)
            return w.error();
        comm.joinData();
        if (auto w = comm.completeSends(); !w)
            return w.error();
        if (auto w = compute.synchronize(); !w)
            return w.error();
        const int64_t stepEnd = now();
        if (device) {
            // The device's records of this step, named and placed by the ops they belong to.
            auto recs = compute.takeDeviceRecords(rank);
            if (!recs)
                return recs.error();
            if (measured) {
                // An op may launch several kernels (a backward's two GEMMs, a GEMM and its memory
                // pass): its FLOPs and bytes are shared among them, copies and memsets included (a
                // memory pass of B bytes is a copy of B/2: its record's name keeps the copy's size,
                // its bytes the op's share, so that an op's records add up to the plan's figures).
                std::map<int64_t, int> launches;
                for (const TraceRecord& r : *recs)
                    ++launches[r.op];
                for (TraceRecord& r : *recs) {
                    r.rank = rank;
                    r.start_ns -= offset;
                    if (auto it = opInfo.find(r.op); it != opInfo.end()) {
                        r.layer = it->second.layer;
                        const int n = launches[r.op];
                        r.flops = it->second.flops / n;
                        r.bytes = it->second.bytes / n;
                    }
                    if (r.track == 3 && std::none_of(res.trace.tracks.begin(), res.trace.tracks.end(),
                                                     [](const TraceTrack& t) { return t.track == 3; }))
                        res.trace.tracks.push_back({rank, 3, "other GPU stream"});
                    res.trace.records.push_back(std::move(r));
                }
            }
            opInfo.clear();
        }
        const double seconds = double(stepEnd - stepStart) * 1e-9;
        if (measured) {
            res.step_s.push_back(seconds);
            res.trace.records.insert(res.trace.records.end(), std::make_move_iterator(commRecords.begin()),
                                     std::make_move_iterator(commRecords.end()));
            commRecords.clear();
            TraceRecord step;
            step.rank = rank;
            step.track = 2;
            step.start_ns = stepStart;
            step.dur_ns = std::max<int64_t>(1, stepEnd - stepStart);
            step.kind = TraceKind::Step;
            step.name = "ProfilerStep#" + std::to_string(iter - o.warmup);
            res.trace.records.push_back(step);
            res.ops_per_step = ops.load();
            res.complete = iter + 1 == o.warmup + o.steps;
            // The checkpoint rewrites everything measured so far, so it grows
            // with the run: it is written while the time spent writing it stays
            // under a quarter of the measured run's, and after the last step
            // (a rank that dies keeps the steps of its last checkpoint).
            stepsNs += stepEnd - stepStart;
            if (o.checkpoint && (res.complete || 4 * checkpointNs <= stepsNs)) {
                const int64_t c0 = steadyNs();
                o.checkpoint(res);
                checkpointNs += steadyNs() - c0;
            }
        }
        if (o.progress)
            o.progress(iter, !measured, seconds);
    }
    return res;
}

} // namespace partita
