#include "partita/core/dtype.h"

#include <array>
#include <utility>

namespace partita {

namespace {
struct DTypeInfo
{
    DType type;
    int bytes;
    std::string_view name;
};
constexpr std::array kInfo{
    DTypeInfo{DType::F32, 4, "fp32"}, DTypeInfo{DType::F16, 2, "fp16"}, DTypeInfo{DType::BF16, 2, "bf16"},
    DTypeInfo{DType::F64, 8, "fp64"}, DTypeInfo{DType::FP8, 1, "fp8"},  DTypeInfo{DType::I64, 8, "int64"},
    DTypeInfo{DType::I32, 4, "int32"}, DTypeInfo{DType::I8, 1, "int8"},  DTypeInfo{DType::U8, 1, "uint8"},
    DTypeInfo{DType::Bool, 1, "bool"},
};
// Other spellings found in the wild (torch_dtype in config.json, numpy names).
constexpr std::array<std::pair<std::string_view, DType>, 9> kAliases{{
    {"float32", DType::F32},
    {"float", DType::F32},
    {"float16", DType::F16},
    {"half", DType::F16},
    {"bfloat16", DType::BF16},
    {"float64", DType::F64},
    {"double", DType::F64},
    {"float8", DType::FP8},
    {"long", DType::I64},
}};
} // namespace

int dtypeBytes(DType t)
{
    for (const auto& i : kInfo)
        if (i.type == t)
            return i.bytes;
    return 0;
}

std::string_view dtypeName(DType t)
{
    for (const auto& i : kInfo)
        if (i.type == t)
            return i.name;
    return "?";
}

std::optional<DType> parseDType(std::string_view s)
{
    for (const auto& i : kInfo)
        if (i.name == s)
            return i.type;
    for (const auto& [alias, t] : kAliases)
        if (alias == s)
            return t;
    return std::nullopt;
}

bool isFloating(DType t)
{
    return t == DType::F32 || t == DType::F16 || t == DType::BF16 || t == DType::F64 || t == DType::FP8;
}

} // namespace partita
