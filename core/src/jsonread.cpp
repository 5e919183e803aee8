#include "jsonread.h"

#include <cmath>

namespace partita::detail {

Result<json> parseJson(const std::string& text, const std::string& file)
{
    if (text.find_first_not_of(" \t\r\n") == std::string::npos)
        return Error{file, {}, "the file is empty"};
    try {
        return json::parse(text);
    } catch (const json::parse_error& e) {
        // e.byte is the 1-based offset of the character that broke the parse.
        size_t line = 1, column = 1;
        const size_t end = std::min<size_t>(e.byte == 0 ? 0 : e.byte - 1, text.size());
        for (size_t i = 0; i < end; ++i) {
            if (text[i] == '\n') {
                ++line;
                column = 1;
            } else {
                ++column;
            }
        }
        std::string what = e.what();
        // "[json.exception.parse_error.101] parse error at line 1, column 2: syntax error ..." -> "syntax error ..."
        if (auto p = what.find(": "); p != std::string::npos && what.find("parse error") < p)
            what = what.substr(p + 2);
        if (e.byte > text.size())
            what = "the JSON ends early (truncated file?): " + what;
        return Error{file, "line " + std::to_string(line) + ", column " + std::to_string(column),
                     "invalid JSON: " + what};
    } catch (const json::exception& e) {
        // Well-formed text nlohmann cannot hold, such as a number past double's range (out_of_range.406).
        std::string what = e.what();
        if (auto p = what.find("] "); p != std::string::npos)
            what = what.substr(p + 2);
        return Error{file, {}, "invalid JSON: " + what};
    }
}

std::string typeName(const json& j)
{
    switch (j.type()) {
    case json::value_t::null: return "null";
    case json::value_t::object: return "an object";
    case json::value_t::array: return "an array";
    case json::value_t::string: return "a string";
    case json::value_t::boolean: return "a boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned: return "an integer";
    case json::value_t::number_float: return "a number";
    default: return "a value of unknown type";
    }
}

const json& field(const json& obj, const char* key, const std::string& path)
{
    if (!obj.is_object())
        throw FieldError(path, "expected an object, found " + typeName(obj));
    auto it = obj.find(key);
    if (it == obj.end())
        throw FieldError(sub(path, key), "missing required field");
    return *it;
}

const json* optField(const json& obj, const char* key)
{
    if (!obj.is_object())
        return nullptr;
    auto it = obj.find(key);
    if (it == obj.end() || it->is_null())
        return nullptr;
    return &*it;
}

int64_t asInt(const json& j, const std::string& path, int64_t min, int64_t max)
{
    int64_t v = 0;
    if (j.is_number_unsigned()) {
        const auto u = j.get<uint64_t>();
        if (u > uint64_t(INT64_MAX))
            throw FieldError(path, "value " + std::to_string(u) + " is too large");
        v = int64_t(u);
    } else if (j.is_number_integer()) {
        v = j.get<int64_t>();
    } else if (j.is_number_float()) {
        const double d = j.get<double>();
        if (!std::isfinite(d) || d != std::floor(d) || std::fabs(d) > 9.0e18)
            throw FieldError(path, "expected an integer, found " + j.dump());
        v = int64_t(d);
    } else {
        throw FieldError(path, "expected an integer, found " + typeName(j));
    }
    if (v < min || v > max)
        throw FieldError(path, "value " + std::to_string(v) + " is out of range [" + std::to_string(min) + ", " +
                                   std::to_string(max) + "]");
    return v;
}

double asNumber(const json& j, const std::string& path, double min, double max)
{
    if (!j.is_number())
        throw FieldError(path, "expected a number, found " + typeName(j));
    const double v = j.get<double>();
    if (!std::isfinite(v) || v < min || v > max)
        throw FieldError(path, "value " + j.dump() + " is out of range [" + json(min).dump() + ", " +
                                   json(max).dump() + "]");
    return v;
}

std::string asString(const json& j, const std::string& path)
{
    if (!j.is_string())
        throw FieldError(path, "expected a string, found " + typeName(j));
    return j.get<std::string>();
}

bool asBool(const json& j, const std::string& path)
{
    if (!j.is_boolean())
        throw FieldError(path, "expected true or false, found " + typeName(j));
    return j.get<bool>();
}

const json& asArray(const json& j, const std::string& path)
{
    if (!j.is_array())
        throw FieldError(path, "expected an array, found " + typeName(j));
    return j;
}

const json& asObject(const json& j, const std::string& path)
{
    if (!j.is_object())
        throw FieldError(path, "expected an object, found " + typeName(j));
    return j;
}

int64_t getInt(const json& obj, const char* key, const std::string& path, int64_t min, int64_t max)
{
    return asInt(field(obj, key, path), sub(path, key), min, max);
}

int64_t getIntOr(const json& obj, const char* key, const std::string& path, int64_t min, int64_t max,
                 int64_t fallback)
{
    const json* j = optField(obj, key);
    return j ? asInt(*j, sub(path, key), min, max) : fallback;
}

double getNumberOr(const json& obj, const char* key, const std::string& path, double min, double max,
                   double fallback)
{
    const json* j = optField(obj, key);
    return j ? asNumber(*j, sub(path, key), min, max) : fallback;
}

std::string getString(const json& obj, const char* key, const std::string& path)
{
    return asString(field(obj, key, path), sub(path, key));
}

std::string getStringOr(const json& obj, const char* key, const std::string& path, const std::string& fallback)
{
    const json* j = optField(obj, key);
    return j ? asString(*j, sub(path, key)) : fallback;
}

bool getBoolOr(const json& obj, const char* key, const std::string& path, bool fallback)
{
    const json* j = optField(obj, key);
    return j ? asBool(*j, sub(path, key)) : fallback;
}

} // namespace partita::detail
