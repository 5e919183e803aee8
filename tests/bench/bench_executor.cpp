// Executor benchmark, as JSON on stdout: the CPU backend with 4 ranks on this
// machine runs a small GPT under one strategy (data parallel), the cost model
// is calibrated on that run, and the simulator then predicts the measured
// step time of other strategies (tensor, pipeline, ZeRO). Target: within
// 15 % of the measured step time (median of the steps, slowest rank) for
// every other strategy. Everything goes through partita-cli, as a user would.
// Usage: bench_executor PARTITA_CLI WORKDIR [--steps N] [--ranks N]
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <string>
#include <unistd.h>
#include <vector>

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

std::string quote(const std::string& s) { return "'" + s + "'"; }

// Runs a shell command; its stdout.
std::string capture(const std::string& cmd, int& code)
{
    std::string out;
    FILE* p = popen(cmd.c_str(), "r");
    if (!p) {
        code = -1;
        return out;
    }
    char buf[4096];
    for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;)
        out.append(buf, n);
    const int st = pclose(p);
    code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return out;
}

// Reads the optional --steps N and --ranks N after the two positional arguments.
void parseOptions(int argc, char** argv, int& steps, int& ranks)
{
    for (int i = 3; i + 1 < argc; i += 2) {
        if (std::string(argv[i]) == "--steps")
            steps = std::stoi(argv[i + 1]);
        else if (std::string(argv[i]) == "--ranks")
            ranks = std::stoi(argv[i + 1]);
    }
}

// Empties `work` and writes the small GPT-2 into it; returns the model file's path.
std::string prepareWorkdir(const fs::path& work)
{
    fs::remove_all(work);
    fs::create_directories(work);
    const std::string model = (work / "small-gpt.json").string();
    // A small GPT-2: 4 blocks of width 256, 4k vocabulary, 128 tokens.
    std::ofstream(model) << R"({"model_type": "gpt2", "n_embd": 256, "n_head": 4, "n_layer": 4, "n_positions": 256, "vocab_size": 4096})";
    return model;
}

// Runs measured training runs through partita-cli with the arguments every run shares.
struct Runner
{
    std::string cli, common;

    // One `partita-cli run`, with a calibration file unless `calibration` is empty; false when it fails.
    bool run(const std::string& args, const std::string& calibration, json& out) const
    {
        int code = 0;
        const std::string text = capture(quote(cli) + " run " + args + common +
                                             (calibration.empty() ? "" : " --calibration " + quote(calibration)),
                                         code);
        if (code != 0)
            return false;
        out = json::parse(text, nullptr, false);
        return out.is_object();
    }
};

// Fits the cost model to run `first` into `cal`; its JSON report, or nothing when calibrate fails.
// (`first` is not const: operator[] adds a missing key as null, as the original inline code did.)
std::optional<json> calibrate(const std::string& cli, const std::string& project, json& first, const std::string& cal)
{
    int code = 0;
    const std::string calText = capture(quote(cli) + " calibrate --project " + quote(project) + " --run " +
                                            std::to_string(first["run_id"].get<int64_t>()) + " --out " + quote(cal) +
                                            " --json",
                                        code);
    if (code != 0)
        return std::nullopt;
    return json::parse(calText, nullptr, false);
}

// The calibration run's measured and uncalibrated predicted step times, and what was fitted from it.
json calibrationRunJson(const std::string& base, json& first, const json& calJson)
{
    return {{"strategy", base},
            {"measured_step_s", first["measured_step_time_s"]},
            {"predicted_uncalibrated_step_s", first["predicted_step_time_s"]},
            {"uncalibrated_error", first["step_time_error"]},
            {"fitted_from", {{"gemm_ops", calJson.value("gemm_ops", 0)},
                             {"memory_ops", calJson.value("memory_ops", 0)},
                             {"collectives", calJson.value("collectives", 0)}}}};
}

// Runs every other strategy with the calibration and adds the predictions, the worst error and the target to
// `result`.
void addPredictions(json& result, const Runner& runner, const std::string& base, const std::string& cal)
{
    const std::vector<std::pair<std::string, std::string>> targets = {
        {"data parallel again (noise floor)", base},
        {"tensor parallel 2 x data 2", "--tp 2 --global-batch 8 --micro-batch 2"},
        {"pipeline 2 (1F1B, 4 micro-batches) x data 2", "--pp 2 --dp 2 --global-batch 8 --micro-batch 1"},
        {"ZeRO-1 data parallel", "--preset ddp --global-batch 8 --zero 1"},
        {"tensor parallel 4", "--tp 4 --global-batch 8 --micro-batch 4"},
    };
    json rows = json::array();
    double worst = 0;
    bool allRan = true;
    for (const auto& [label, args] : targets) {
        json r;
        if (!runner.run(args, cal, r)) {
            rows.push_back({{"strategy", label}, {"args", args}, {"error", "the run failed"}});
            allRan = false;
            continue;
        }
        const double err = r["step_time_error"].get<double>();
        if (label.rfind("data parallel again", 0) != 0)
            worst = std::max(worst, std::fabs(err));
        rows.push_back({{"strategy", label},
                        {"args", args},
                        {"measured_step_s", r["measured_step_time_s"]},
                        {"predicted_step_s", r["predicted_step_time_s"]},
                        {"error", err},
                        {"steps_s", r["steps_s"]}});
    }
    result["predictions_after_calibration"] = std::move(rows);
    result["worst_abs_error_other_strategies"] = worst;
    result["target_abs_error"] = 0.15;
    result["target_met"] = allRan && worst <= 0.15;
}

} // namespace

int main(int argc, char** argv)
{
    if (argc < 3) {
        std::cerr << "usage: bench_executor PARTITA_CLI WORKDIR [--steps N] [--ranks N]\n";
        return 2;
    }
    const std::string cli = argv[1];
    const fs::path work = argv[2];
    int steps = 6, ranks = 4;
    parseOptions(argc, argv, steps, ranks);
    const std::string model = prepareWorkdir(work);
    const std::string project = (work / "bench.partita").string();
    const std::string common = " --model " + quote(model) + " --cluster local --ranks " + std::to_string(ranks) +
                               " --seq-len 128 --steps " + std::to_string(steps) + " --warmup 1 --project " +
                               quote(project) + " --json 2>/dev/null";
    const Runner runner{cli, common};

    json result;
    result["ranks"] = ranks;
    result["cores"] = sysconf(_SC_NPROCESSORS_ONLN);
    result["model"] = "GPT-2 style: 4 layers, width 256, 4096 vocabulary, sequence 128";
    result["steps"] = steps;
    const std::string base = "--preset ddp --global-batch 8";
    json first;
    if (!runner.run(base, "", first)) {
        std::cerr << "bench_executor: the calibration run failed\n";
        return 1;
    }
    const std::string cal = (work / "calibration.json").string();
    const std::optional<json> calJson = calibrate(cli, project, first, cal);
    if (!calJson) {
        std::cerr << "bench_executor: calibrate failed\n";
        return 1;
    }
    result["calibration_run"] = calibrationRunJson(base, first, *calJson);
    addPredictions(result, runner, base, cal);
    std::cout << result.dump(2) << "\n";
    return 0;
}
