// partita-cli calibrate --measure-gpu / --from-sweep: a calibration file from
// one GPU's measured tables (partita/executor/gpusweep.h).
#include "common.h"
#include "run.h"

#include "partita/core/clusterio.h"
#include "partita/executor/gpusweep.h"
#include "partita/executor/localmachine.h"

#include <nlohmann/json.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

namespace partita::cli {

namespace {

Result<GpuSweep> sweepFor(const CalibrateCliOptions& o)
{
    if (!o.fromSweep.empty()) {
        auto text = readTextFile(o.fromSweep);
        if (!text)
            return text.error();
        return gpuSweepFromJson(*text, o.fromSweep);
    }
    GpuSweepOptions so;
    so.device = o.gpu;
    so.quick = o.quick;
    so.nccl = !o.noNccl;
    std::cerr << "measuring GPU " << o.gpu << " (GEMMs, copies" << (so.nccl ? ", NCCL" : "") << ")..." << std::endl;
    auto s = measureGpu(so);
    if (!s)
        return s.error();
    if (!o.sweepOut.empty())
        if (auto w = writeFileAtomically(o.sweepOut, gpuSweepToJson(*s)); !w)
            return w.error();
    return s;
}

namespace fs = std::filesystem;

// $XDG_CACHE_HOME/partita/calibration/cpu-<model>-<cores>c.json (else ~/.cache).
std::string localCachePath()
{
    const char* xdg = std::getenv("XDG_CACHE_HOME");
    const char* home = std::getenv("HOME");
    const fs::path base = xdg && *xdg ? fs::path(xdg) : fs::path(home && *home ? home : "/tmp") / ".cache";
    const LocalMachine lm = detectLocalMachine();
    std::string key;
    for (char c : lm.cpu.name.empty() ? std::string("cpu") : lm.cpu.name)
        key += std::isalnum(static_cast<unsigned char>(c)) ? c : '-';
    return (base / "partita" / "calibration" / ("cpu-" + key + "-" + std::to_string(lm.cpu.cores) + "c.json")).string();
}

std::string besideThisProgram(const std::string& name)
{
    std::error_code ec;
    return (fs::read_symlink("/proc/self/exe", ec).parent_path() / name).string();
}

// partita-worker --calibrate-cpu: the process that links OpenBLAS measures.
Result<Calibration> measureLocalCpuCalibration(const std::string& worker)
{
    auto text = workerOutput(worker, "--calibrate-cpu");
    if (!text)
        return text.error();
    return calibrationFromJson(*text, worker + " --calibrate-cpu");
}

} // namespace

Result<Calibration> localCpuCalibrationCached(const std::string& worker, bool remeasure, std::string* said)
{
    const std::string cache = localCachePath();
    std::error_code ec;
    if (!remeasure && fs::exists(cache, ec)) {
        auto text = readTextFile(cache);
        if (text)
            if (auto cal = calibrationFromJson(*text, cache)) {
                if (said)
                    *said = "calibration: this machine's, measured " + cal->measured["date"] + " (" + cache +
                            "; partita-cli calibrate --local measures it again)";
                return cal;
            }
        // A cache that does not read is measured again, not trusted.
    }
    auto cal = measureLocalCpuCalibration(worker);
    if (!cal)
        return cal.error();
    fs::create_directories(fs::path(cache).parent_path(), ec);
    const bool cached = !ec && writeFileAtomically(cache, calibrationToJson(*cal));
    if (said)
        *said = "calibration: this machine's, measured now" +
                (cached ? " and cached in " + cache : std::string(" (not cached: ") + cache + " cannot be written)");
    return cal;
}

int runLocalCalibrate(const CalibrateCliOptions& o)
{
    std::string said;
    auto cal = localCpuCalibrationCached(besideThisProgram("partita-worker"), true, &said);
    if (!cal)
        return fail(cal.error());
    std::cerr << said << "\n";
    return emitCalibration(o, *cal, nlohmann::json{{"cache", localCachePath()}}, "calibration: " + cal->source);
}

int runGpuCalibrate(const CalibrateCliOptions& o)
{
    auto sweep = sweepFor(o);
    if (!sweep)
        return fail(sweep.error());
    const std::string preset = o.device.empty() ? devicePresetForGpuName(sweep->gpu) : o.device;
    if (preset.empty())
        return fail(Error{"GPU '" + sweep->gpu + "'", "--device",
                          "no device preset matches this GPU: name the one whose datasheet peaks apply (partita-cli presets)"});
    auto dev = devicePreset(preset);
    if (!dev)
        return fail(dev.error());
    auto cal = calibrationFromSweep(*sweep, *dev, o.precision);
    if (!cal)
        return fail(cal.error());
    return emitCalibration(o, *cal,
                           nlohmann::json{{"sweep", nlohmann::json::parse(gpuSweepToJson(*sweep))}, {"device_preset", preset}},
                           "calibration of " + sweep->gpu + " (" + std::to_string(sweep->gemms.size()) + " GEMMs, " +
                               std::to_string(sweep->copies.size()) + " copies, " +
                               std::to_string(sweep->collectives.size()) + " collectives)");
}

} // namespace partita::cli
