// partita-cli calibrate --measure-gpu / --from-sweep: a calibration file from
// one GPU's measured tables (partita/executor/gpusweep.h).
#include "common.h"
#include "run.h"

#include "partita/core/clusterio.h"
#include "partita/executor/gpusweep.h"

#include <nlohmann/json.hpp>

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
    const std::string text = calibrationToJson(*cal);
    if (!o.out.empty())
        if (auto w = writeFileAtomically(o.out, text); !w)
            return fail(w.error());
    if (o.json) {
        nlohmann::json j;
        j["calibration"] = nlohmann::json::parse(text);
        j["sweep"] = nlohmann::json::parse(gpuSweepToJson(*sweep));
        j["device_preset"] = preset;
        if (!o.out.empty())
            j["out"] = o.out;
        std::cout << j.dump(2) << "\n";
    } else if (o.out.empty()) {
        std::cout << text;
    } else {
        std::cout << "calibration of " << sweep->gpu << " (" << sweep->gemms.size() << " GEMMs, " << sweep->copies.size()
                  << " copies, " << sweep->collectives.size() << " collectives) written to " << o.out << "\n";
    }
    return 0;
}

} // namespace partita::cli
