// Framework configurations (Megatron-LM and horovodrun lines, DeepSpeed JSON,
// the PyTorch script's CONFIG, torchtitan TOML, accelerate YAML): any bytes
// give a model and strategy or an error naming the place, and lint findings; an imported Megatron-LM job or PyTorch script that
// resolves exports again, and what that export imports back is the same
// strategy.
#include "partita/core/accelerate.h"
#include "partita/core/clusterio.h"
#include "partita/core/deepspeed.h"
#include "partita/core/horovod.h"
#include "partita/core/lint.h"
#include "partita/core/megatron.h"
#include "partita/core/pytorch.h"
#include "partita/core/torchtitan.h"

#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    using namespace partita;
    const std::string text(reinterpret_cast<const char*>(data), size);
    static const Cluster cluster = *clusterPreset("dgx-h100:2");
    (void)importDeepSpeed(text, "ds_config.json", 16);
    (void)importHorovod(text, "launch.sh");
    (void)importAccelerate(text, "accelerate.yaml");
    if (auto y = megatronYamlCommand(text, "gpt.yaml", 2, 8)) // a YAML configuration's command line reads back
        (void)importMegatron(*y, "gpt.yaml");
    for (int world : {0, 16}) { // lint-config reads any bytes too
        (void)lintDeepSpeed(text, world);
        (void)lintMegatron(text, world);
        (void)lintTorchtitan(text, world);
        (void)lintAccelerate(text, world);
    }
    if (auto t = importTorchtitan(text, "job.toml", 16)) { // what it reads, it writes back the same
        static const Cluster two = *clusterPreset("dgx-h100:2");
        if (resolveStrategy(t->strategy, t->model, two) && torchtitanRefusals(t->model, t->strategy).empty())
            if (auto ex = exportTorchtitan(t->model, two, t->strategy, t->seq_len, ExportHeader{})) {
                auto back = importTorchtitan(ex->toml, "job.toml", 16);
                if (!back || back->strategy.dp != t->strategy.dp || back->strategy.pp != t->strategy.pp)
                    __builtin_trap();
            }
    }
    if (auto p = importPyTorch(text, "train.py"); p && p->model.dims.layers <= 64 && p->model.dims.hidden <= 4096) {
        const Cluster one = *clusterPreset("p3.16xlarge");
        if (p->strategy.dp == one.deviceCount() && resolveStrategy(p->strategy, p->model, one))
            if (auto ex = exportPyTorch(p->model, one, p->strategy, p->seq_len, ExportHeader{})) {
                auto back = importPyTorch(ex->script, "train.py");
                if (!back || !(back->strategy == p->strategy))
                    __builtin_trap();
            }
    }
    auto m = importMegatron(text, "launch.sh", 16);
    if (!m || m->model.dims.layers > 256 || m->model.dims.hidden > 8192 || m->seq_len > 65536)
        return 0;
    if (!resolveStrategy(m->strategy, m->model, cluster))
        return 0;
    auto ex = exportMegatron(m->model, cluster, m->strategy, m->seq_len, ExportHeader{});
    if (!ex)
        return 0; // refused with its reasons
    auto back = importMegatron(ex->script, "launch.sh");
    if (!back) // an export always imports
        __builtin_trap();
    Strategy b = back->strategy;
    b.name = m->strategy.name;
    if (!(b == m->strategy))
        __builtin_trap();
    return 0;
}
