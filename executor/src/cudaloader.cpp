#include "partita/executor/cudaplugin.h"

#include "partita/executor/cudabackend.h"

#include <dlfcn.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <filesystem>
#include <mutex>

namespace partita {
namespace {

namespace fs = std::filesystem;

#ifdef PARTITA_CUDA_PLUGIN_RELDIR
std::string exeDir()
{
    char buf[PATH_MAX] = {};
    const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
    return n > 0 ? fs::path(std::string(buf, size_t(n))).parent_path().string() : std::string(".");
}
#endif

Result<const CudaPluginApi*> load()
{
#ifndef PARTITA_CUDA_PLUGIN_RELDIR
    return Error{"CUDA backend", {}, "this build has none (it needs the CUDA toolkit with cuBLAS, NCCL and CUPTI)"};
#else
    std::vector<std::string> candidates;
    if (const char* env = std::getenv("PARTITA_CUDA_PLUGIN"); env && *env)
        candidates.push_back(env);
    const std::string dir = exeDir();
    candidates.push_back(dir + "/libpartita_cuda.so");
    candidates.push_back(dir + "/../" PARTITA_CUDA_PLUGIN_RELDIR "/libpartita_cuda.so");
    std::string why;
    for (const auto& path : candidates) {
        std::error_code ec;
        if (!fs::exists(path, ec))
            continue;
        void* h = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
        if (!h) {
            // Present but not loadable: a CUDA library it needs is missing.
            const char* e = ::dlerror();
            return Error{path, {}, std::string("cannot load the CUDA backend: ") + (e ? e : "dlopen failed") +
                                       " (install the CUDA runtime, cuBLAS, NCCL and CUPTI it was built with)"};
        }
        auto entry = reinterpret_cast<const CudaPluginApi* (*)()>(::dlsym(h, "partita_cuda_plugin"));
        if (!entry)
            return Error{path, {}, "not a Partita CUDA plugin (no partita_cuda_plugin)"};
        const CudaPluginApi* api = entry();
        if (!api || api->abi != CudaPluginApi::kAbi)
            return Error{path, {}, "a CUDA plugin from another build of Partita (ABI " +
                                       std::to_string(api ? api->abi : 0) + ", this one " +
                                       std::to_string(CudaPluginApi::kAbi) + ")"};
        return api;
    }
    return Error{"CUDA backend", {}, "libpartita_cuda.so is not installed (looked beside " + dir + " and in " + dir +
                                         "/../" PARTITA_CUDA_PLUGIN_RELDIR ")"};
#endif
}

} // namespace

Result<const CudaPluginApi*> cudaPlugin()
{
    static std::once_flag once;
    static Result<const CudaPluginApi*> loaded = Error{};
    std::call_once(once, [] { loaded = load(); });
    return loaded;
}

Result<std::unique_ptr<CudaBackend>> makeCudaBackend(const Plan& plan, Communicator& bootstrap,
                                                     const CudaBackendOptions& options)
{
    auto p = cudaPlugin();
    if (!p)
        return p.error();
    return (*p)->make_backend(plan, bootstrap, options);
}

} // namespace partita
