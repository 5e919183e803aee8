#pragma once
// Path-aware reading of nlohmann::json for the importers: every failure names
// the JSON pointer of the offending field. Internal to core.

#include "partita/core/result.h"

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>

namespace partita::detail {

using json = nlohmann::json;

// Thrown inside an importer, turned into an Error at its boundary.
struct FieldError : std::runtime_error
{
    FieldError(std::string where, const std::string& what) : std::runtime_error(what), where(std::move(where))
    {}
    std::string where;
};

// Parses text; on a syntax error returns an Error with "line L, column C".
Result<json> parseJson(const std::string& text, const std::string& file);

std::string typeName(const json& j);

const json& field(const json& obj, const char* key, const std::string& path);
const json* optField(const json& obj, const char* key);

int64_t asInt(const json& j, const std::string& path, int64_t min, int64_t max);
double asNumber(const json& j, const std::string& path, double min, double max);
std::string asString(const json& j, const std::string& path);
bool asBool(const json& j, const std::string& path);
const json& asArray(const json& j, const std::string& path);
const json& asObject(const json& j, const std::string& path);

int64_t getInt(const json& obj, const char* key, const std::string& path, int64_t min, int64_t max);
int64_t getIntOr(const json& obj, const char* key, const std::string& path, int64_t min, int64_t max,
                 int64_t fallback);
double getNumberOr(const json& obj, const char* key, const std::string& path, double min, double max,
                   double fallback);
std::string getString(const json& obj, const char* key, const std::string& path);
std::string getStringOr(const json& obj, const char* key, const std::string& path,
                        const std::string& fallback);
bool getBoolOr(const json& obj, const char* key, const std::string& path, bool fallback);

// Reads a versioned Partita document: parses the text, checks it is an object
// whose `versionKey` is at most `maxVersion`, runs `body` on it, and turns a
// FieldError thrown inside into an Error naming the file and the field.
template <class T, class Body>
Result<T> readDocument(const std::string& text, const std::string& file, const char* versionKey,
                       int maxVersion, Body&& body)
{
    auto parsed = parseJson(text, file);
    if (!parsed)
        return parsed.error();
    const json& j = *parsed;
    try {
        asObject(j, "/");
        const int64_t version = getInt(j, versionKey, "", 1, 1000);
        if (version > maxVersion)
            return Error{file, std::string("/") + versionKey,
                         "format version " + std::to_string(version) + " is newer than this Partita reads (" +
                             std::to_string(maxVersion) + ")"};
        return body(j);
    } catch (const FieldError& e) {
        return Error{file, e.where.empty() ? "/" : e.where, e.what()};
    }
}

inline std::string sub(const std::string& path, const char* key)
{
    return path + "/" + key;
}
inline std::string sub(const std::string& path, size_t index)
{
    return path + "/" + std::to_string(index);
}

} // namespace partita::detail
