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

namespace {

// One rank replaying its class's steps of the plan, step after step: the
// compute on this thread, data-parallel collectives on the communication
// thread (CommThread), every op recorded with its plan id.
class RankRunner
{
public:
    RankRunner(const Plan& plan, const WorkerOptions& o, ComputeBackend& compute, Communicator& comm)
        : m_plan(plan), m_o(o), m_compute(compute), m_comm(comm), m_rank(comm.rank()), m_rc(*rankClassOf(plan, m_rank)),
          m_local(m_rank - m_rc.first_rank), m_M(plan.micro_batches), m_dpSize(comm.groupSize(CommGroup::Data)),
          m_wB(plan.precision != Precision::FP32 ? 2 : 4), m_gB(plan.gradient_bytes),
          m_oB(plan.precision != Precision::FP32 ? 12 : 8), m_elemGrad(plan.gradient_bytes >= 4 ? 4 : 2),
          m_elemAct(plan.activation_bytes >= 4 ? 4 : 2), m_zero3(plan.zero_stage == 3 && m_dpSize > 1),
          m_offset(comm.clockOffsetNs()), m_device(compute.deviceTimed())
    {
        findReadyAfter();
        m_res.rank = m_rank;
        m_res.shape_scale = o.shape_scale;
        m_res.compute = compute.name();
        m_res.communicator = comm.name();
        m_res.overlapped = comm.concurrent() && m_dpSize > 1;
        m_res.trace.tracks = {{m_rank, 0, "compute"}, {m_rank, 1, "data-parallel comm"}, {m_rank, 2, "steps"}};
    }

    Result<WorkerResult> run()
    {
        for (int iter = 0; iter < m_o.warmup + m_o.steps; ++iter) {
            if (m_o.cancel && m_o.cancel->load())
                return Error{"worker", "rank " + std::to_string(m_rank), "cancelled"};
            if (auto r = runIteration(iter); !r)
                return r.error();
        }
        return std::move(m_res);
    }

private:
    // What one step posts and waits for.
    struct StepState
    {
        explicit StepState(bool threaded) : ct(threaded) {}
        CommThread ct;
        std::set<int32_t> ready;           // layers whose gradients are complete
        std::vector<size_t> pendingSyncs;  // Sync steps not posted yet
        std::map<size_t, int64_t> gathers; // ZeRO-3: step index -> its parameters' all-gather ticket
    };

    int64_t now() const { return steadyNs() - m_offset; }

    // Backward programs: after which kernel each layer's gradient is complete.
    void findReadyAfter()
    {
        for (size_t pi = 0; pi < m_plan.programs.size(); ++pi) {
            const Program& p = m_plan.programs[pi];
            if (p.phase != Phase::Backward)
                continue;
            std::map<int32_t, size_t> last;
            for (size_t ki = 0; ki < p.kernels.size(); ++ki)
                if (p.kernels[ki].layer >= 0)
                    last[p.kernels[ki].layer] = ki;
            for (auto [layer, ki] : last)
                m_readyAfter[int(pi)][ki].push_back(layer);
        }
    }

    // The virtual stage and direction of each transfer, for matching tags.
    int transferTag(size_t si) const
    {
        int program = -1;
        if (m_rc.steps[si].kind == StepKind::Send) {
            for (size_t j = si; j-- > 0;)
                if (m_rc.steps[j].kind == StepKind::Run) {
                    program = m_rc.steps[j].program;
                    break;
                }
        } else {
            for (size_t j = si + 1; j < m_rc.steps.size(); ++j)
                if (m_rc.steps[j].kind == StepKind::Run) {
                    program = m_rc.steps[j].program;
                    break;
                }
        }
        const Program& p = m_plan.programs[size_t(std::max(0, program))];
        const bool fwd = p.phase == Phase::Forward;
        int v = p.virtual_stage;
        if (m_rc.steps[si].kind == StepKind::Send)
            v += fwd ? 1 : -1;
        return int((int64_t(std::max(0, v)) * 2 + (fwd ? 0 : 1)) * m_M + m_rc.steps[si].micro);
    }

    void record(std::vector<TraceRecord>& into, int track, int64_t begin, TraceKind kind, std::string name, int32_t layer,
                int64_t op, double bytes, double flops)
    {
        m_compute.opEnd();
        ++m_ops;
        if (!m_measured)
            return;
        TraceRecord r;
        r.rank = m_rank;
        r.track = track;
        r.start_ns = begin;
        r.dur_ns = std::max<int64_t>(1, now() - begin);
        r.kind = kind;
        r.name = std::move(name);
        r.layer = layer;
        r.op = op;
        r.bytes = int64_t(bytes);
        r.flops = flops;
        if (m_device) { // device-timed backends: what each op is, for the device's records of it
            std::lock_guard lock(m_opInfoMu);
            m_opInfo[op] = std::move(r);
            return;
        }
        into.push_back(std::move(r));
    }

    // A data-parallel collective as a task of the communication thread.
    CommThread::Task dpTask(Collective c, double bytes, int elem, std::string name, int32_t layer, int64_t op, int root = 0)
    {
        return [this, c, bytes, elem, name = std::move(name), layer, op, root]() -> Result<bool> {
            const int64_t begin = now();
            m_compute.opBegin(op);
            auto r = m_comm.collective(CommGroup::Data, c, bytes, elem, root);
            if (!r) {
                m_compute.opEnd();
                return r;
            }
            record(m_commRecords, 1, begin, TraceKind::Collective, name, layer, op, bytes, 0);
            return true;
        };
    }

    Result<bool> postSync(StepState& ss, size_t si)
    {
        const Step& st = m_rc.steps[si];
        const double bytes = st.bytes;
        const int32_t layer = st.layers.empty() ? -1 : st.layers.front();
        const std::string what = std::to_string(st.layers.size()) + (st.layers.size() == 1 ? " layer " : " layers ") + megabytes(bytes);
        m_comm.dataReady(); // the gradients computed so far, before the collective reads them
        if (st.method == SyncMethod::ParameterServer) {
            // Servers on the workers: each shard reduced to its server and broadcast back.
            const int k = std::clamp(st.shards > 0 ? st.shards : m_comm.hosts(), 1, m_dpSize);
            for (int j = 0; j < k; ++j) {
                const int root = j * m_dpSize / k;
                ss.ct.post(dpTask(Collective::Reduce, bytes / k, m_elemGrad, "push " + what, layer, planOpId(int(si), 2 * j), root));
                ss.ct.post(dpTask(Collective::Broadcast, bytes / k, m_elemGrad, "pull " + what, layer, planOpId(int(si), 2 * j + 1), root));
            }
            return true;
        }
        if (st.sparse) { // every worker's rows (or SFB factors) to every worker
            ss.ct.post(dpTask(Collective::AllGather, bytes * m_dpSize, m_elemGrad, "all_gather " + what, layer, planOpId(int(si), 0)));
            return true;
        }
        const Collective c = m_plan.zero_stage >= 1 ? Collective::ReduceScatter : Collective::AllReduce;
        ss.ct.post(dpTask(c, bytes, m_elemGrad, std::string(collectiveName(c)) + " " + what, layer, planOpId(int(si), 0)));
        return true;
    }

    // Posts the Sync steps whose layers are all ready (or every one left).
    Result<bool> postReadySyncs(StepState& ss, bool all)
    {
        for (auto it = ss.pendingSyncs.begin(); it != ss.pendingSyncs.end();) {
            const Step& st = m_rc.steps[*it];
            const bool isReady =
                all || std::all_of(st.layers.begin(), st.layers.end(), [&](int32_t l) { return ss.ready.count(l) > 0; });
            if (!isReady) {
                ++it;
                continue;
            }
            if (m_dpSize > 1)
                if (auto r = postSync(ss, *it); !r)
                    return r;
            it = ss.pendingSyncs.erase(it);
        }
        return true;
    }

    // ZeRO-3: the gather of a pass's parameters, posted one pass ahead.
    void postGather(StepState& ss, size_t si)
    {
        const Program& p = m_plan.programs[size_t(m_rc.steps[si].program)];
        if (!m_zero3 || p.phase == Phase::Recompute || ss.gathers.count(si))
            return;
        m_comm.dataReady();
        ss.gathers[si] = ss.ct.post(dpTask(Collective::AllGather, p.params * m_wB, m_elemAct,
                                           "all_gather parameters " + std::string(phaseName(p.phase)) + " mb" +
                                               std::to_string(m_rc.steps[si].micro),
                                           -1, planOpId(int(si), kPreGather)));
    }

    std::optional<size_t> nextRun(size_t si) const
    {
        for (size_t j = si + 1; j < m_rc.steps.size(); ++j)
            if (m_rc.steps[j].kind == StepKind::Run)
                return j;
        return std::nullopt;
    }

    // One kernel of a program: compute, or a collective of its own group.
    Result<bool> runKernel(size_t si, size_t ki, const Program& p, int micro)
    {
        const Kernel& k = p.kernels[ki];
        const int64_t begin = now();
        if (k.kind == KernelKind::Collective) {
            // A context-parallel exchange the plan overlaps with its attention runs here
            // after it, on the compute stream: the executors do not overlap it yet.
            const CommGroup g = k.group == KernelGroup::Expert    ? CommGroup::Expert
                                : k.group == KernelGroup::Context ? CommGroup::Context
                                                                  : CommGroup::Tensor;
            if (m_comm.groupSize(g) > 1) {
                m_compute.opBegin(planOpId(int(si), int(ki)));
                if (auto r = m_comm.collective(g, k.coll, k.coll_bytes, m_elemAct); !r)
                    return r.error();
                record(m_res.trace.records, 0, begin, TraceKind::Collective, kernelEventName(m_plan, k, p.phase, micro), k.layer,
                       planOpId(int(si), int(ki)), k.coll_bytes, 0);
            }
            return true;
        }
        m_compute.opBegin(planOpId(int(si), int(ki)));
        if (k.kind == KernelKind::Gemm || k.kind == KernelKind::BatchedGemm) {
            // Backward kernels hold the two gradient GEMMs of each forward one.
            // A convolution's implicit GEMM carries no shape (0): a 1 x 1 x 1 stands for it.
            const int64_t batch = std::max<int64_t>(1, k.batch), m = std::max<int64_t>(1, k.m), n = std::max<int64_t>(1, k.n),
                          kk = std::max<int64_t>(1, k.k);
            for (int r = 0; r < std::max(1, k.ops); ++r)
                if (batch > 1)
                    m_compute.batchedGemm(m, n, kk, batch);
                else
                    m_compute.gemm(m, n, kk);
            if (k.bytes > 0 && k.mem_ops > 0)
                m_compute.memoryPass(k.bytes);
        } else {
            m_compute.memoryPass(k.bytes);
        }
        record(m_res.trace.records, 0, begin, TraceKind::Compute, kernelEventName(m_plan, k, p.phase, micro), k.layer,
               planOpId(int(si), int(ki)), k.bytes, k.flops);
        return true;
    }

    // A Run step: its program's kernels, posting each gradient bucket once
    // the last micro-batch completed its layers.
    Result<bool> runProgram(StepState& ss, size_t si)
    {
        const Step& st = m_rc.steps[si];
        const Program& p = m_plan.programs[size_t(st.program)];
        postGather(ss, si);
        if (auto g = ss.gathers.find(si); g != ss.gathers.end()) {
            if (auto w = ss.ct.wait(g->second); !w)
                return w.error();
            m_comm.joinData();
        }
        if (auto n = nextRun(si))
            postGather(ss, *n);
        const auto ra = m_readyAfter.find(st.program);
        const bool lastMicro = st.micro == m_M - 1;
        for (size_t ki = 0; ki < p.kernels.size(); ++ki) {
            if (auto r = runKernel(si, ki, p, st.micro); !r)
                return r;
            if (lastMicro && ra != m_readyAfter.end())
                if (auto lr = ra->second.find(ki); lr != ra->second.end()) {
                    ss.ready.insert(lr->second.begin(), lr->second.end());
                    if (auto r = postReadySyncs(ss, false); !r)
                        return r.error();
                }
        }
        if (m_zero3 && p.phase == Phase::Backward) { // this micro-batch's gradients, reduce-scattered
            m_comm.dataReady();
            ss.ct.post(dpTask(Collective::ReduceScatter, p.params * m_gB, m_elemGrad,
                              "reduce_scatter gradients mb" + std::to_string(st.micro), -1, planOpId(int(si), kPostScatter)));
        }
        return true;
    }

    Result<bool> transfer(size_t si)
    {
        const Step& st = m_rc.steps[si];
        const int peer = m_plan.classes[size_t(st.peer)].first_rank + m_local;
        const int64_t begin = now();
        const bool send = st.kind == StepKind::Send;
        m_compute.opBegin(planOpId(int(si), 0));
        auto r = send ? m_comm.send(peer, st.bytes, transferTag(si)) : m_comm.recv(peer, st.bytes, transferTag(si));
        if (!r)
            return r.error();
        record(m_res.trace.records, 0, begin, TraceKind::P2P,
               std::string(send ? "send mb" : "recv mb") + std::to_string(st.micro) + (send ? " to rank " : " from rank ") +
                   std::to_string(peer) + " " + megabytes(st.bytes),
               -1, planOpId(int(si), 0), st.bytes, 0);
        return true;
    }

    // After every gradient is synchronized: Adam, and ZeRO-1/2's gather of
    // the updated parameters.
    Result<bool> optimizer(StepState& ss, size_t si)
    {
        if (auto r = postReadySyncs(ss, true); !r)
            return r.error();
        if (auto w = ss.ct.drain(); !w)
            return w.error();
        m_comm.joinData();
        const int64_t begin = now();
        m_compute.opBegin(planOpId(int(si), 0));
        // Adam (mixed precision: fp32 master weights and two moments; Rajbhandari et al. 2019, §3.1), sharded by ZeRO.
        const double shard = m_plan.zero_stage >= 1 ? m_dpSize : 1;
        const double bytes = m_rc.parameters / shard * (2 * m_oB + m_gB + m_wB);
        m_compute.memoryPass(bytes);
        record(m_res.trace.records, 0, begin, TraceKind::Compute, "optimizer " + megabytes(bytes), -1, planOpId(int(si), 0), bytes, 0);
        if ((m_plan.zero_stage == 1 || m_plan.zero_stage == 2) && m_dpSize > 1) {
            const int64_t gb = now();
            const double pbytes = m_rc.parameters * m_wB;
            m_compute.opBegin(planOpId(int(si), kPostGather));
            if (auto r = m_comm.collective(CommGroup::Data, Collective::AllGather, pbytes, m_elemAct); !r)
                return r.error();
            record(m_res.trace.records, 1, gb, TraceKind::Collective, "all_gather parameters " + megabytes(pbytes), -1,
                   planOpId(int(si), kPostGather), pbytes, 0);
        }
        return true;
    }

    Result<bool> runIteration(int iter)
    {
        m_measured = iter >= m_o.warmup;
        // Every step starts together. Between steps this harness writes its
        // checkpoint (the trace so far) and a progress line, which take each
        // rank a different few milliseconds; without the barrier one rank's
        // late start would be charged to the other's first collective as
        // waiting, time that no training loop spends.
        if (auto b = m_comm.barrier(); !b)
            return b.error();
        StepState ss(m_comm.concurrent());
        const int64_t stepStart = now();
        m_ops = 0;
        for (size_t si = 0; si < m_rc.steps.size(); ++si)
            if (m_rc.steps[si].kind == StepKind::Sync)
                ss.pendingSyncs.push_back(si);
        for (size_t si = 0; si < m_rc.steps.size(); ++si) {
            Result<bool> r = true;
            switch (m_rc.steps[si].kind) {
            case StepKind::Run:
                r = runProgram(ss, si);
                break;
            case StepKind::Send:
            case StepKind::Recv:
                r = transfer(si);
                break;
            case StepKind::Sync:
                break; // posted when its gradients are ready
            case StepKind::Optimizer:
                r = optimizer(ss, si);
                break;
            }
            if (!r)
                return r;
        }
        if (auto r = postReadySyncs(ss, true); !r)
            return r.error();
        if (auto w = ss.ct.drain(); !w)
            return w.error();
        m_comm.joinData();
        if (auto w = m_comm.completeSends(); !w)
            return w.error();
        if (auto w = m_compute.synchronize(); !w)
            return w.error();
        const int64_t stepEnd = now();
        if (m_device)
            if (auto d = takeDeviceRecords(); !d)
                return d;
        finishIteration(iter, stepStart, stepEnd);
        return true;
    }

    // The device's records of this step, named and placed by the ops they belong to.
    Result<bool> takeDeviceRecords()
    {
        auto recs = m_compute.takeDeviceRecords(m_rank);
        if (!recs)
            return recs.error();
        if (m_measured) {
            // An op may launch several kernels (a backward's two GEMMs, a GEMM and its memory
            // pass): its FLOPs and bytes are shared among them, copies and memsets included (a
            // memory pass of B bytes is a copy of B/2: its record's name keeps the copy's size,
            // its bytes the op's share, so that an op's records add up to the plan's figures).
            std::map<int64_t, int> launches;
            for (const TraceRecord& r : *recs)
                ++launches[r.op];
            for (TraceRecord& r : *recs) {
                r.rank = m_rank;
                r.start_ns -= m_offset;
                if (auto it = m_opInfo.find(r.op); it != m_opInfo.end()) {
                    r.layer = it->second.layer;
                    const int n = launches[r.op];
                    r.flops = it->second.flops / n;
                    r.bytes = it->second.bytes / n;
                }
                if (r.track == 3 && std::none_of(m_res.trace.tracks.begin(), m_res.trace.tracks.end(),
                                                 [](const TraceTrack& t) { return t.track == 3; }))
                    m_res.trace.tracks.push_back({m_rank, 3, "other GPU stream"});
                m_res.trace.records.push_back(std::move(r));
            }
        }
        m_opInfo.clear();
        return true;
    }

    // A measured step's records, its step record and (now and then) a
    // checkpoint; the progress line for every step.
    void finishIteration(int iter, int64_t stepStart, int64_t stepEnd)
    {
        const double seconds = double(stepEnd - stepStart) * 1e-9;
        if (m_measured) {
            m_res.step_s.push_back(seconds);
            m_res.trace.records.insert(m_res.trace.records.end(), std::make_move_iterator(m_commRecords.begin()),
                                       std::make_move_iterator(m_commRecords.end()));
            m_commRecords.clear();
            TraceRecord step;
            step.rank = m_rank;
            step.track = 2;
            step.start_ns = stepStart;
            step.dur_ns = std::max<int64_t>(1, stepEnd - stepStart);
            step.kind = TraceKind::Step;
            step.name = "ProfilerStep#" + std::to_string(iter - m_o.warmup);
            m_res.trace.records.push_back(step);
            m_res.ops_per_step = m_ops.load();
            m_res.complete = iter + 1 == m_o.warmup + m_o.steps;
            // The checkpoint rewrites everything measured so far, so it grows
            // with the run: it is written while the time spent writing it stays
            // under a quarter of the measured run's, and after the last step
            // (a rank that dies keeps the steps of its last checkpoint).
            m_stepsNs += stepEnd - stepStart;
            if (m_o.checkpoint && (m_res.complete || 4 * m_checkpointNs <= m_stepsNs)) {
                const int64_t c0 = steadyNs();
                m_o.checkpoint(m_res);
                m_checkpointNs += steadyNs() - c0;
            }
        }
        if (m_o.progress)
            m_o.progress(iter, !m_measured, seconds);
    }

    const Plan& m_plan;
    const WorkerOptions& m_o;
    ComputeBackend& m_compute;
    Communicator& m_comm;
    const int m_rank;
    const RankClass& m_rc;
    const int m_local;
    const int64_t m_M;
    const int m_dpSize;
    const double m_wB, m_gB, m_oB; // bytes per weight, gradient and optimizer state
    const int m_elemGrad, m_elemAct;
    const bool m_zero3;
    const int64_t m_offset;
    const bool m_device;
    std::map<int, std::map<size_t, std::vector<int32_t>>> m_readyAfter; // program -> kernel -> layers
    WorkerResult m_res;
    std::vector<TraceRecord> m_commRecords; // written by the communication thread only
    bool m_measured = false;
    std::atomic<int64_t> m_ops{0}; // counted by both threads
    std::mutex m_opInfoMu;
    std::map<int64_t, TraceRecord> m_opInfo;
    int64_t m_stepsNs = 0, m_checkpointNs = 0; // measured steps' time, and the checkpoints'
};

} // namespace

Result<WorkerResult> runWorker(const Plan& full, const WorkerOptions& o, ComputeBackend& compute, Communicator& comm)
{
    if (!(o.shape_scale > 0 && o.shape_scale <= 1))
        return Error{"options", "shape_scale", "the shape scale must be in (0, 1]"};
    if (o.steps < 1 || o.warmup < 0)
        return Error{"options", "steps", "at least one measured step, and no negative warm-up"};
    // What runs: the plan at the shape scale, as its prediction is made (core/plan.h).
    const Plan plan = scalePlan(full, o.shape_scale);
    if (auto ok = checkPlanForWorker(plan, comm.rank(), comm.size()); !ok)
        return ok.error();
    RankRunner runner(plan, o, compute, comm);
    return runner.run();
}

} // namespace partita
