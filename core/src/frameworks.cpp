// One entry to the framework exporters and importers (frameworks.h).
#include "partita/core/frameworks.h"

#include "partita/core/accelerate.h"
#include "partita/core/deepspeed.h"
#include "partita/core/horovod.h"
#include "partita/core/pytorch.h"
#include "partita/core/torchtitan.h"

namespace partita {

const std::vector<Framework>& allFrameworks()
{
    static const std::vector<Framework> all{Framework::Megatron, Framework::DeepSpeed, Framework::Horovod,
                                            Framework::PyTorch, Framework::Torchtitan, Framework::Accelerate};
    return all;
}

std::string_view frameworkName(Framework f)
{
    switch (f) {
    case Framework::Megatron: return "megatron";
    case Framework::DeepSpeed: return "deepspeed";
    case Framework::Horovod: return "horovod";
    case Framework::PyTorch: return "pytorch";
    case Framework::Torchtitan: return "torchtitan";
    case Framework::Accelerate: return "accelerate";
    }
    return "megatron";
}

std::string_view frameworkTitle(Framework f)
{
    switch (f) {
    case Framework::Megatron: return "Megatron-LM core_r0.10.0";
    case Framework::DeepSpeed: return "DeepSpeed v0.18.9";
    case Framework::Horovod: return "Horovod v0.28.1";
    case Framework::PyTorch: return "PyTorch (DDP, ZeroRedundancyOptimizer, FSDP2)";
    case Framework::Torchtitan: return "torchtitan v0.2.2";
    case Framework::Accelerate: return "accelerate v1.14.0";
    }
    return "";
}

std::optional<Framework> frameworkFromName(std::string_view name)
{
    for (Framework f : allFrameworks())
        if (frameworkName(f) == name)
            return f;
    return std::nullopt;
}

std::optional<Framework> detectFramework(const std::string& text)
{
    const size_t first = text.find_first_not_of(" \t\r\n");
    if (first == std::string::npos)
        return std::nullopt;
    if (text[first] == '{') {
        for (const char* key : {"\"train_batch_size\"", "\"train_micro_batch_size_per_gpu\"", "\"zero_optimization\"",
                                "\"gradient_accumulation_steps\""})
            if (text.find(key) != std::string::npos)
                return Framework::DeepSpeed;
        return std::nullopt;
    }
    if (text.find("CONFIG = json.loads(") != std::string::npos && text.find("\"partita_pytorch\"") != std::string::npos)
        return Framework::PyTorch;
    if (text.find("horovodrun") != std::string::npos)
        return Framework::Horovod;
    if (text.find("distributed_type:") != std::string::npos)
        return Framework::Accelerate;
    if (text.find("[parallelism]") != std::string::npos ||
        (text.find("[model]") != std::string::npos && text.find("flavor") != std::string::npos))
        return Framework::Torchtitan;
    for (const char* mark : {"pretrain_gpt.py", "pretrain_", "--num-layers", "--tensor-model-parallel-size"})
        if (text.find(mark) != std::string::npos)
            return Framework::Megatron;
    return std::nullopt;
}

std::vector<std::string> frameworkRefusals(Framework f, const Model& m, const Strategy& s)
{
    switch (f) {
    case Framework::DeepSpeed: return deepspeedRefusals(m, s);
    case Framework::Horovod: return horovodRefusals(m, s);
    case Framework::PyTorch: return pytorchRefusals(m, s);
    case Framework::Torchtitan: return torchtitanRefusals(m, s);
    case Framework::Accelerate: return accelerateRefusals(m, s);
    case Framework::Megatron: break;
    }
    return megatronRefusals(m, s);
}

Result<FrameworkFiles> exportFramework(Framework f, const Model& m, const Cluster& c, const Strategy& s, int64_t seqLen,
                                       const ExportHeader& h, bool closest)
{
    FrameworkFiles w;
    auto single = [&](auto&& ex) -> Result<FrameworkFiles> {
        if (!ex)
            return ex.error();
        w.files = {{"", ex->script}};
        w.exported = ex->exported;
        w.differences = ex->differences;
        return w;
    };
    switch (f) {
    case Framework::DeepSpeed: {
        auto ex = exportDeepSpeed(m, c, s, h, closest);
        if (!ex)
            return ex.error();
        w.files = {{"ds_config.json", ex->config}, {"launch.sh", ex->launch}, {"hostfile", ex->hostfile}};
        w.exported = ex->exported;
        w.differences = ex->differences;
        w.notes = ex->notes;
        return w;
    }
    case Framework::Horovod: return single(exportHorovod(m, c, s, h, closest));
    case Framework::PyTorch: return single(exportPyTorch(m, c, s, seqLen, h, closest));
    case Framework::Accelerate: {
        auto ex = exportAccelerate(m, c, s, h, closest);
        if (!ex)
            return ex.error();
        w.files = {{"", ex->yaml}};
        w.exported = ex->exported;
        w.differences = ex->differences;
        return w;
    }
    case Framework::Torchtitan: {
        auto ex = exportTorchtitan(m, c, s, seqLen, h, closest);
        if (!ex)
            return ex.error();
        w.files = {{"", ex->toml}};
        w.exported = ex->exported;
        w.differences = ex->differences;
        w.notes = ex->notes;
        return w;
    }
    case Framework::Megatron: break;
    }
    return single(exportMegatron(m, c, s, seqLen, h, closest));
}

Result<FrameworkImport> importFramework(Framework f, const std::string& text, const std::string& file, int devices)
{
    FrameworkImport out;
    switch (f) {
    case Framework::DeepSpeed: {
        if (devices <= 0)
            return Error{file, "--cluster", "a DeepSpeed configuration does not say how many GPUs run it: give a cluster"};
        auto in = importDeepSpeed(text, file, devices);
        if (!in)
            return in.error();
        out.strategy = in->strategy;
        out.world = devices;
        out.notes = in->notes;
        return out;
    }
    case Framework::Horovod: {
        auto in = importHorovod(text, file);
        if (!in)
            return in.error();
        out.strategy = in->strategy;
        out.world = in->world;
        out.notes = in->notes;
        return out;
    }
    case Framework::Accelerate: {
        auto in = importAccelerate(text, file);
        if (!in)
            return in.error();
        out.strategy = in->strategy;
        out.world = in->world;
        out.notes = in->notes;
        return out;
    }
    case Framework::Torchtitan: {
        auto in = importTorchtitan(text, file, devices);
        if (!in)
            return in.error();
        out.model = in->model;
        out.strategy = in->strategy;
        out.seq_len = in->seq_len;
        out.world = in->world;
        out.notes = in->notes;
        return out;
    }
    case Framework::PyTorch: {
        auto in = importPyTorch(text, file);
        if (!in)
            return in.error();
        out.model = in->model;
        out.strategy = in->strategy;
        out.seq_len = in->seq_len;
        out.world = in->strategy.dp;
        out.notes = in->notes;
        return out;
    }
    case Framework::Megatron: break;
    }
    auto in = importMegatron(text, file, devices);
    if (!in)
        return in.error();
    out.model = in->model;
    out.strategy = in->strategy;
    out.seq_len = in->seq_len;
    out.world = in->world;
    out.notes = in->notes;
    return out;
}

} // namespace partita
