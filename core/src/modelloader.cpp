#include "fileutil.h"
#include "jsonread.h"
#include "partita/core/modelio.h"

namespace partita {

namespace {
bool endsWith(const std::string& s, const std::string& suffix)
{
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
} // namespace

Result<Model> loadModel(const std::string& path)
{
    auto bytes = detail::readFile(path);
    if (!bytes)
        return bytes.error();
    const std::string& text = *bytes;
    const size_t first = text.find_first_not_of(" \t\r\n");
    if (first == std::string::npos)
        return Error{path, {}, "the file is empty"};
    const bool looksJson = text[first] == '{' || text[first] == '[';
    if (endsWith(path, ".onnx") || (!looksJson && !endsWith(path, ".json")))
        return modelFromOnnx(text, path);
    auto parsed = detail::parseJson(text, path);
    if (!parsed)
        return parsed.error();
    if (!parsed->is_object())
        return Error{path, "/", "expected a JSON object, found " + detail::typeName(*parsed)};
    if (parsed->contains("partita_model"))
        return modelFromJson(text, path);
    if (parsed->contains("model_type") || parsed->contains("architectures"))
        return modelFromHfConfig(text, path);
    return Error{path, "/",
                 "not a model: a JSON object without \"partita_model\" (native format) or \"model_type\" "
                 "(Hugging Face config.json)"};
}

} // namespace partita
