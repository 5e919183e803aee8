// The search's walk: every preset as a baseline, then the genome space
// exhaustively when it is small, else by simulated annealing from seeds, with
// per-layer refinement of the best global genomes; never worse than the best
// preset. See searcher.h for the parts.
#include "searcher.h"

#include <algorithm>
#include <cmath>
#include <thread>

namespace partita {

namespace searchimpl {

bool Searcher::userCancelled() const { return m_opt.cancel && m_opt.cancel->load(); }

bool Searcher::cancelled(const Walk& w) const
{
    return userCancelled() || (m_opt.max_evaluations > 0 && w.res.evaluated >= m_opt.max_evaluations);
}

void Searcher::report(const Walk& w) const
{
    if (!m_opt.progress)
        return;
    SearchProgress p;
    p.evaluated = w.res.evaluated;
    const double best = std::min(w.top.empty() ? kInf : w.top.front().score, w.bestPresetScore);
    if (std::isfinite(best)) {
        p.best_step_time = m_opt.objective == Objective::Time ? best : 0;
        p.best_samples_per_s = m_opt.objective == Objective::Throughput ? 1 / best : 0;
    }
    p.elapsed_s = w.elapsed();
    m_opt.progress(p);
}

void Searcher::insertTop(Walk& w, Ranked r) const
{
    w.top.push_back(std::move(r));
    std::stable_sort(w.top.begin(), w.top.end(), [](const Ranked& a, const Ranked& b) { return a.score < b.score; });
    if (w.top.size() > size_t(std::max(1, m_opt.top_k)))
        w.top.pop_back();
}

void Searcher::record(Walk& w, const Genome& g, const Evaluated& e) const
{
    w.seen.emplace(g.key(), e.score);
    if (std::isfinite(e.score))
        insertTop(w, {e.score, e.candidate, g, w.elapsed(), {}});
}

// A batch evaluated in parallel; results are used in batch order, so the
// outcome depends on the seed and the thread count only.
std::vector<Evaluated> Searcher::evalBatch(const std::vector<Genome>& batch) const
{
    const int threads = std::max(1, m_opt.threads);
    std::vector<Evaluated> out(batch.size());
    if (threads == 1 || batch.size() == 1) {
        for (size_t i = 0; i < batch.size(); ++i)
            out[i] = evaluate(batch[i]);
        return out;
    }
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t)
        pool.emplace_back([&, t] {
            for (size_t i = size_t(t); i < batch.size(); i += size_t(threads))
                out[i] = evaluate(batch[i]);
        });
    for (auto& th : pool)
        th.join();
    return out;
}

std::vector<Evaluated> Searcher::evalStrategies(const std::vector<Strategy>& batch) const
{
    std::vector<Evaluated> out(batch.size());
    std::vector<std::thread> pool;
    const int n = std::min<int>(std::max(1, m_opt.threads), int(batch.size()));
    for (int t = 1; t < n; ++t)
        pool.emplace_back([&, t] {
            for (size_t i = size_t(t); i < batch.size(); i += size_t(n))
                out[i] = evaluateStrategy(batch[i]);
        });
    for (size_t i = 0; i < batch.size(); i += size_t(std::max(1, n)))
        out[i] = evaluateStrategy(batch[i]);
    for (auto& th : pool)
        th.join();
    return out;
}

// Baselines: every preset at the same global batch (Megatron-LM over the
// tensor and pipeline degrees that fit).
void Searcher::baselines(Walk& w) const
{
    SimOptions so;
    so.seq_len = m_opt.seq_len;
    so.calibration = m_opt.calibration;
    std::vector<std::pair<std::string, PresetOptions>> presets;
    for (const auto& p : strategyPresets()) {
        PresetOptions po;
        po.global_batch = m_globalBatch;
        po.precision = m_opt.precision;
        po.micro_batch = std::max<int64_t>(1, m_globalBatch / m_devices);
        if (p.name != "megatron") {
            presets.emplace_back(p.name, po);
            continue;
        }
        for (int t : space().tp)
            for (int pp : {1, 2, 4}) {
                if (m_devices % (t * pp) || (pp > 1 && m_blocks.size() % size_t(pp)))
                    continue;
                PresetOptions mp = po;
                mp.tp = t;
                mp.pp = pp;
                mp.micro_batch = 1;
                mp.recompute = Recompute::Selective;
                mp.sequence_parallel = t > 1;
                presets.emplace_back("megatron tp" + std::to_string(t) + " pp" + std::to_string(pp), mp);
            }
    }
    for (const auto& [name, po] : presets) {
        Baseline b;
        b.name = name;
        b.step_time = kInf;
        auto s = strategyPreset(name.rfind("megatron", 0) == 0 ? "megatron" : name, m_model, m_cluster, po);
        auto r = s ? simulate(m_model, m_cluster, *s, so) : Result<SimResult>(s.error());
        w.res.evaluated += s ? 1 : 0;
        if (!r) {
            b.why = r.error().message;
        } else if (r->oom) {
            b.why = "out of memory";
        } else {
            b.step_time = r->step_time;
            const double score = m_opt.objective == Objective::Time ? r->step_time : 1.0 / r->samples_per_s;
            if (score < w.bestPresetScore) {
                w.bestPresetScore = score;
                w.bestPreset = Candidate{*s, r->step_time, r->samples_per_s, r->mfu, r->memory.peak, {}};
                w.bestPreset.strategy.name = name;
                w.res.best_preset = name;
            }
        }
        w.res.baselines.push_back(std::move(b));
    }
    w.presetsDone = w.elapsed();
}

// The plausible genomes, when the raw space is small enough to list.
void Searcher::listSpace(Walk& w) const
{
    const Space& sp = w.sp;
    w.res.space_size = sp.size();
    w.listed = w.res.space_size <= 4'000'000;
    if (!w.listed)
        return;
    for (int a : sp.tp) for (int b : sp.pp) for (int c : sp.interleave) for (int d : sp.gbScale)
    for (int64_t e : sp.micro) for (int f : sp.recompute) for (int g : sp.sp) for (int h : sp.zero)
    for (int i : sp.emb) for (int j : sp.dense) for (int k : sp.bucket) for (int l : sp.fp16)
    for (int bal : sp.balanced) for (int fc : sp.fc) for (int cpv : sp.cp) for (int un : sp.uneven)
    for (int f8 : sp.fp8) {
        const Genome gm{a, b, c, e, d, f, g, h, i, j, k, l, bal, fc, cpv, un, f8};
        if (plausible(gm))
            w.all.push_back(gm);
    }
    w.res.space_size = int64_t(w.all.size());
}

// Per-layer refinement of one global genome: coordinate descent over the
// layer classes, each class's alternatives simulated as one parallel batch,
// the best kept before moving to the next class, passes repeated until one
// changes nothing. The end point joins the ranking when it beats its start.
void Searcher::refine(Walk& w, const Genome& g, double startScore) const
{
    w.refined[g.key()] = true;
    const Strategy base = toStrategy(g);
    std::vector<std::vector<ClassOption>> opts;
    for (const LayerClass& c : m_classes)
        opts.push_back(classOptions(c, base));
    std::vector<int> genes(m_classes.size(), 0);
    double cur = startScore;
    Evaluated best;
    for (int pass = 0; pass < 3; ++pass) {
        bool improved = false;
        for (size_t c = 0; c < m_classes.size() && !cancelled(w) && w.elapsed() < m_opt.budget_s; ++c) {
            if (opts[c].size() <= 1)
                continue;
            std::vector<int> choice;
            std::vector<Strategy> batch;
            for (int o = 0; o < int(opts[c].size()); ++o) {
                if (o == genes[c])
                    continue;
                std::vector<int> trial = genes;
                trial[c] = o;
                choice.push_back(o);
                batch.push_back(applyClasses(base, opts, trial));
            }
            const auto out = evalStrategies(batch);
            w.res.evaluated += int64_t(batch.size());
            for (size_t q = 0; q < out.size(); ++q)
                if (out[q].score < cur * (1 - 1e-12)) {
                    cur = out[q].score;
                    best = out[q];
                    genes[c] = choice[q];
                    improved = true;
                }
            report(w);
        }
        if (!improved)
            break;
    }
    if (!std::isfinite(best.score) || !(best.score < startScore))
        return;
    std::string text;
    for (size_t c = 0; c < genes.size(); ++c)
        if (genes[c])
            text += (text.empty() ? "" : "; ") + m_classes[c].key + ": " + opts[c][size_t(genes[c])].text;
    insertTop(w, {best.score, best.candidate, g, w.elapsed(), "per layer: " + text});
}

// Refines the best global genome not refined yet (in ranking order).
bool Searcher::refineNext(Walk& w) const
{
    if (!m_opt.refine_layers || m_classes.empty())
        return false;
    for (const Ranked& rk : std::vector<Ranked>(w.top))
        if (rk.perLayer.empty() && !w.refined.count(rk.genome.key())) {
            refine(w, rk.genome, rk.score);
            return true;
        }
    return false;
}

// A small space: every candidate, within the budget, then refinement.
void Searcher::exhaustive(Walk& w) const
{
    const size_t step = size_t(std::max(1, m_opt.threads)) * 16;
    size_t off = 0;
    for (; off < w.all.size() && !cancelled(w) && w.elapsed() < m_opt.budget_s; off += step) {
        const std::vector<Genome> batch(w.all.begin() + long(off), w.all.begin() + long(std::min(w.all.size(), off + step)));
        const auto out = evalBatch(batch);
        for (size_t q = 0; q < batch.size(); ++q)
            record(w, batch[q], out[q]);
        w.res.evaluated += int64_t(batch.size());
        report(w);
    }
    w.res.exhaustive = off >= w.all.size();
    for (int n = 0; n < 3 && !cancelled(w) && w.elapsed() < m_opt.budget_s && refineNext(w); ++n) {
    }
}

// One or two genes (more with `extra`) changed at random.
Genome Searcher::mutate(const Space& sp, Genome g, std::mt19937_64& rng, int extra) const
{
    auto pick = [&](const auto& v) { return v[rng() % v.size()]; };
    // Only genes with a choice to make: the others' moves would change nothing.
    const size_t sizes[] = {sp.tp.size(),  sp.pp.size(),   sp.interleave.size(), sp.gbScale.size(), sp.micro.size(),
                            sp.recompute.size(), sp.sp.size(), sp.zero.size(), sp.emb.size(), sp.dense.size(),
                            sp.bucket.size(), sp.fp16.size(), sp.balanced.size(), sp.fc.size(), sp.cp.size(),
                            sp.uneven.size(), sp.fp8.size()};
    std::vector<int> live;
    for (int i = 0; i < 17; ++i)
        if (sizes[i] > 1)
            live.push_back(i);
    if (live.empty())
        return g;
    const int moves = 1 + int(rng() % 2) + extra;
    for (int mv = 0; mv < moves; ++mv) {
        switch (live[rng() % live.size()]) {
        case 0: g.tp = pick(sp.tp); break;
        case 1: g.pp = pick(sp.pp); break;
        case 2: g.interleave = pick(sp.interleave); break;
        case 3: g.gbScale = pick(sp.gbScale); break;
        case 4: g.micro = pick(sp.micro); break;
        case 5: g.recompute = pick(sp.recompute); break;
        case 6: g.sp = pick(sp.sp); break;
        case 7: g.zero = pick(sp.zero); break;
        case 8: g.emb = pick(sp.emb); break;
        case 9: g.dense = pick(sp.dense); break;
        case 10: g.bucket = pick(sp.bucket); break;
        case 11: g.fp16 = pick(sp.fp16); break;
        case 12: g.balanced = pick(sp.balanced); break;
        case 13: g.fc = pick(sp.fc); break;
        case 14: g.cp = pick(sp.cp); break;
        case 15: g.uneven = pick(sp.uneven); break;
        default: g.fp8 = pick(sp.fp8); break;
        }
    }
    return g;
}

// The annealing's seeds: every tensor and pipeline degree at the smallest
// and the even micro-batch, with and without the multi-node choices; the
// best of them is where the walk starts.
std::pair<Genome, double> Searcher::annealSeeds(Walk& w) const
{
    std::vector<Genome> seeds;
    for (int t : w.sp.tp)
        for (int p : w.sp.pp)
            for (int64_t mb : {int64_t(1), std::max<int64_t>(1, m_globalBatch / m_devices)}) {
                Genome g;
                g.tp = t;
                g.pp = p;
                g.micro = mb;
                g.recompute = t > 1 || p > 1 ? 1 : 0;
                g.sp = t > 1;
                if (plausible(g))
                    seeds.push_back(g);
                Genome h = g;
                h.emb = m_embeddings.empty() ? 0 : 2;
                h.dense = m_cluster.nodes.size() > 1 ? 1 : 0;
                if (plausible(h))
                    seeds.push_back(h);
            }
    Genome current;
    double score = kInf;
    const size_t threads = size_t(std::max(1, m_opt.threads));
    for (size_t off = 0; off < seeds.size() && !cancelled(w) && w.elapsed() < m_opt.budget_s; off += threads) {
        const std::vector<Genome> batch(seeds.begin() + long(off), seeds.begin() + long(std::min(seeds.size(), off + threads)));
        const auto out = evalBatch(batch);
        for (size_t q = 0; q < batch.size(); ++q) {
            record(w, batch[q], out[q]);
            if (out[q].score < score) {
                score = out[q].score;
                current = batch[q];
            }
        }
        w.res.evaluated += int64_t(batch.size());
    }
    return {current, score};
}

// Simulated annealing from the best seed, one or two genes changed per move;
// refinement at fixed evaluation counts, so the sequence of candidates stays
// independent of the machine's speed.
void Searcher::anneal(Walk& w) const
{
    std::mt19937_64 rng(m_opt.seed);
    auto [current, currentScore] = annealSeeds(w);
    std::uniform_real_distribution<double> unit(0, 1);
    int sinceNew = 0;
    int64_t nextRefine = w.res.evaluated + 1000;
    const int threads = std::max(1, m_opt.threads);
    while (!cancelled(w) && w.elapsed() < m_opt.budget_s && sinceNew < 5000) {
        if (w.res.evaluated >= nextRefine) {
            refineNext(w);
            nextRefine = w.res.evaluated + 2000;
            continue;
        }
        // Fresh, plausible neighbours only: a genome already seen (or in this
        // batch) is never simulated twice.
        std::vector<Genome> batch;
        for (int t = 0; t < threads; ++t)
            for (int tries = 0; tries < 50; ++tries) {
                const Genome g = mutate(w.sp, current, rng, 0);
                const uint64_t k = g.key();
                if (w.seen.count(k) || std::any_of(batch.begin(), batch.end(), [&](const Genome& b) { return b.key() == k; }))
                    continue;
                if (!plausible(g)) {
                    w.seen.emplace(k, kInf);
                    continue;
                }
                batch.push_back(g);
                break;
            }
        if (batch.empty()) {
            // Every neighbour is known: jump further, farther the longer the
            // walk stays stuck, from the best found or from here.
            ++sinceNew;
            const Genome from = (sinceNew % 2 == 0 && !w.top.empty()) ? w.top.front().genome : current;
            const Genome jumped = !w.all.empty() && sinceNew % 3 == 0 ? w.all[size_t(rng() % w.all.size())]
                                                                      : mutate(w.sp, from, rng, 2 + int(sinceNew % 8));
            if (plausible(jumped)) {
                current = jumped;
                currentScore = w.seen.count(jumped.key()) ? w.seen[jumped.key()] : currentScore;
            }
            continue;
        }
        const auto out = evalBatch(batch);
        bool fresh = false;
        for (size_t q = 0; q < batch.size(); ++q) {
            if (w.seen.count(batch[q].key()))
                continue;
            fresh = true;
            record(w, batch[q], out[q]);
            ++w.res.evaluated;
            // Better moves are taken, worse ones with a probability that falls
            // as the search goes on: temperature 5 % of the score, decaying
            // with the evaluations made (not the clock).
            const double temperature =
                std::isfinite(currentScore) ? 0.05 * currentScore * std::exp(-double(w.res.evaluated) / 2000.0) : 0.0;
            const double delta = out[q].score - currentScore;
            if (delta < 0 || (std::isfinite(delta) && temperature > 0 && unit(rng) < std::exp(-delta / temperature))) {
                current = batch[q];
                currentScore = out[q].score;
            }
        }
        sinceNew = fresh ? 0 : sinceNew + 1;
        if (w.res.evaluated % 64 == 0)
            report(w);
        // Back to the best found when the walk has wandered off.
        if (!w.top.empty() && currentScore > 1.2 * w.top.front().score) {
            current = w.top.front().genome;
            currentScore = w.top.front().score;
        }
    }
}

// The ranking, the failures counted, and the best: never worse than the best preset.
Result<SearchResult> Searcher::finish(Walk& w) const
{
    SearchResult& res = w.res;
    if (w.listed && !res.exhaustive)
        res.exhaustive = std::all_of(w.all.begin(), w.all.end(), [&](const Genome& g) { return w.seen.count(g.key()) > 0; });
    res.cancelled = userCancelled();
    res.elapsed_s = w.elapsed();
    {
        std::lock_guard<std::mutex> lock(m_cacheMutex);
        res.out_of_memory = m_outOfMemory;
        for (const auto& [why, n] : m_failures) {
            res.failed += n;
            res.failures.emplace_back(why, n);
        }
        std::stable_sort(res.failures.begin(), res.failures.end(),
                         [](const auto& a, const auto& b) { return a.second > b.second; });
    }
    const bool haveBase = std::isfinite(w.bestPresetScore);
    for (const Ranked& rk : w.top) {
        res.top.push_back(rk.candidate);
        res.top.back().explanation = explain(rk.candidate.strategy, w.bestPreset.strategy, haveBase) +
                                     (rk.perLayer.empty() ? "" : "; " + rk.perLayer);
    }
    const double searched = w.top.empty() ? kInf : w.top.front().score;
    if (!std::isfinite(searched) && !haveBase)
        return Error{"search", "memory", "no strategy fits: every preset and every searched candidate is invalid "
                                         "or runs out of memory on this cluster"};
    if (w.bestPresetScore <= searched) {
        res.best_found_s = w.presetsDone;
        res.best = w.bestPreset;
        res.best.explanation = "the best preset (" + res.best_preset + "); no searched strategy beats it";
    } else {
        res.best = res.top.front();
        res.best_found_s = w.top.front().found;
    }
    report(w);
    return res;
}

Result<SearchResult> Searcher::run()
{
    Walk w;
    baselines(w);
    w.sp = space();
    listSpace(w);
    if (w.listed && int64_t(w.all.size()) <= m_opt.exhaustive_limit)
        exhaustive(w);
    else
        anneal(w);
    // The walk ended (stuck) with time to spare: refine what is left.
    while (!cancelled(w) && w.elapsed() < m_opt.budget_s && refineNext(w)) {
    }
    return finish(w);
}

} // namespace searchimpl

Result<SearchResult> searchStrategy(const Model& model, const Cluster& cluster, const SearchOptions& options)
{
    if (std::string problem = validateCluster(cluster); !problem.empty())
        return Error{"search", "cluster", problem};
    searchimpl::Searcher s(model, cluster, options);
    return s.run();
}

} // namespace partita
