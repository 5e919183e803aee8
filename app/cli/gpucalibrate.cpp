// partita-cli calibrate --measure-gpu / --from-sweep: a calibration file from
// one GPU's measured tables (partita/executor/gpusweep.h).
#include "common.h"
#include "run.h"

#include "partita/core/clusterio.h"
#include "partita/core/simulator.h"
#include "partita/executor/gpusweep.h"
#include "partita/executor/launcher.h"
#include "partita/executor/localcpu.h"

#include <nlohmann/json.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
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

} // namespace

int runLocalCalibrate(const CalibrateCliOptions& o)
{
    std::vector<std::string> notes;
    auto cal = localCpuCalibrationCached(besideThisProgram("partita-worker"), true, &notes);
    if (!cal)
        return fail(cal.error());
    for (const std::string& n : notes)
        std::cerr << n << "\n";
    return emitCalibration(o, *cal, nlohmann::json{{"cache", localCalibrationCachePath()}}, "calibration: " + cal->source);
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
