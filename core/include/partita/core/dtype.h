#pragma once
// Element types of parameters and activations, with their sizes and names.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace partita {

enum class DType
{
    F32,
    F16,
    BF16,
    F64,
    FP8,
    I64,
    I32,
    I8,
    U8,
    Bool,
};

int dtypeBytes(DType t);
std::string_view dtypeName(DType t); // "fp32", "fp16", "bf16", ...
std::optional<DType> parseDType(std::string_view s); // accepts our names and torch_dtype names ("float16", "bfloat16")
bool isFloating(DType t);

} // namespace partita
