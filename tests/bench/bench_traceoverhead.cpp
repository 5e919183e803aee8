// What Partita's trace module costs a user's training (partita-cli run
// --command), as JSON on stdout: the 2-rank DDP GPT-2 of the tests
// (tests/data/torch/train_gpt2.py, python3-torch on this CPU, gloo) run
// alternately as it is and under resources/profiler/partita_trace.py, pairs
// interleaved so that the machine's drift hits both alike. From the script's
// own log (rank 0's step times): the median step while the profiler records
// (the active steps), after it (module ranges and backward hooks still in
// place, no profiler), and without the module; ratios against that baseline.
// Usage: bench_traceoverhead SOURCE_DIR WORKDIR [--pairs N] [--steps N]
#include <nlohmann/json.hpp>

#include <algorithm>
#include <arpa/inet.h>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <netinet/in.h>
#include <string>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

int freePort()
{
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    socklen_t len = sizeof a;
    bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    close(fd);
    return ntohs(a.sin_port);
}

double median(std::vector<double> v)
{
    if (v.empty())
        return 0;
    std::sort(v.begin(), v.end());
    return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

struct Trial
{
    std::vector<double> step_s; // rank 0's log, by step
    double wall_s = 0;
    bool ok = false;
};

// Both ranks of the script, with torchrun's environment; `prefix` goes
// between the interpreter and the script (the trace module and its options).
Trial run(const std::string& script, const std::string& prefix, int steps)
{
    const int port = freePort();
    std::string cmd;
    for (int r = 1; r >= 0; --r)
        cmd += "RANK=" + std::to_string(r) + " LOCAL_RANK=" + std::to_string(r) +
               " WORLD_SIZE=2 LOCAL_WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(port) +
               " OMP_NUM_THREADS=1 /usr/bin/python3 " + prefix + " '" + script + "' --steps " + std::to_string(steps) +
               " --batch 16" + (r == 1 ? " >/dev/null 2>&1 & " : " 2>/dev/null; wait");
    const auto t0 = std::chrono::steady_clock::now();
    FILE* p = popen(("bash -c \"" + cmd + "\"").c_str(), "r");
    Trial t;
    if (!p)
        return t;
    std::string out;
    char buf[4096];
    for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;)
        out.append(buf, n);
    const int st = pclose(p);
    t.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    size_t at = 0;
    while (at < out.size()) {
        size_t nl = out.find('\n', at);
        if (nl == std::string::npos)
            nl = out.size();
        const json j = json::parse(out.substr(at, nl - at), nullptr, false);
        if (j.is_object() && j.contains("step_time_s"))
            t.step_s.push_back(j["step_time_s"].get<double>());
        at = nl + 1;
    }
    t.ok = WIFEXITED(st) && WEXITSTATUS(st) == 0 && int(t.step_s.size()) == steps;
    return t;
}

} // namespace

int main(int argc, char** argv)
{
    if (argc < 3) {
        std::cerr << "usage: bench_traceoverhead SOURCE_DIR WORKDIR [--pairs N] [--steps N]\n";
        return 2;
    }
    const fs::path src = argv[1], work = argv[2];
    int pairs = 5, steps = 20;
    for (int i = 3; i + 1 < argc; i += 2) {
        if (std::string(argv[i]) == "--pairs")
            pairs = std::stoi(argv[i + 1]);
        else if (std::string(argv[i]) == "--steps")
            steps = std::stoi(argv[i + 1]);
    }
    if (system("/usr/bin/python3 -c 'import torch' 2>/dev/null") != 0) {
        std::cout << json{{"benchmark", "trace_overhead"}, {"skipped", "no python3-torch"}}.dump(2) << "\n";
        return 0;
    }
    fs::create_directories(work);
    const std::string script = (src / "tests/data/torch/train_gpt2.py").string();
    const std::string module = (src / "resources/profiler/partita_trace.py").string();
    // One step waited, one of warm-up, five recorded: the script's steps 2 to
    // 6 are recorded, and its step 6 also holds writing the trace.
    const int wait = 1, warmup = 1, active = 5;
    const std::string traced = "'" + module + "' --out '" + (work / "traces").string() + "' --schedule " +
                               std::to_string(wait) + "," + std::to_string(warmup) + "," + std::to_string(active);
    std::vector<double> plain, recording, after, export_s, wallPlain, wallTraced, ratioRec, ratioAfter;
    const int first = wait + warmup, last = first + active - 1;
    for (int k = 0; k < pairs; ++k) {
        const Trial a = run(script, "", steps), b = run(script, traced, steps);
        if (!a.ok || !b.ok) {
            std::cerr << "bench_traceoverhead: a run failed (pair " << k << ")\n";
            return 1;
        }
        // Steady steps: from the first recorded step on, the trace's writing left out.
        std::vector<double> pa, pr, pf;
        for (int s = first; s < steps; ++s) {
            if (s != last)
                pa.push_back(a.step_s[size_t(s)]);
            if (s >= first && s < last)
                pr.push_back(b.step_s[size_t(s)]);
            else if (s > last)
                pf.push_back(b.step_s[size_t(s)]);
        }
        plain.push_back(median(pa));
        recording.push_back(median(pr));
        after.push_back(median(pf));
        export_s.push_back(b.step_s[size_t(last)] - median(pa));
        wallPlain.push_back(a.wall_s);
        wallTraced.push_back(b.wall_s);
        ratioRec.push_back(recording.back() / plain.back());
        ratioAfter.push_back(after.back() / plain.back());
    }
    json j{{"benchmark", "trace_overhead"},
           {"workload", "tests/data/torch/train_gpt2.py, 2 gloo ranks, batch 16 x 64 tokens per rank, " +
                            std::to_string(steps) + " steps"},
           {"pairs", pairs},
           {"schedule", {wait, warmup, active}},
           {"step_s", {{"plain", median(plain)}, {"recording", median(recording)}, {"after_recording", median(after)}}},
           {"ratio_recording", median(ratioRec)},
           {"ratio_after_recording", median(ratioAfter)},
           {"trace_write_s", median(export_s)},
           {"wall_s", {{"plain", median(wallPlain)}, {"traced", median(wallTraced)}}},
           {"ratio_wall", median(wallTraced) / median(wallPlain)},
           {"source", "medians over pairs of each run's median step, rank 0's own log"}};
    std::cout << j.dump(2) << "\n";
    return 0;
}
