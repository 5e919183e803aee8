#pragma once
// What the Chrome trace importer reads an event's fields with
// (chromeimport.cpp): tokens and timestamps as simdjson gives them, dtype
// sizes, trace kinds from names and categories, and the keys of an event
// and of its args told apart fast. Split from chromeimport.cpp.

#include "partita/core/trace.h"

#include <simdjson.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string_view>

namespace partita::detail {

using namespace std::string_view_literals;
namespace od = simdjson::ondemand;

// A raw token as simdjson gives it (up to the next structural character),
// without the whitespace and comma after it.
inline std::string_view trimToken(std::string_view t)
{
    while (!t.empty() && (t.back() == ' ' || t.back() == '\n' || t.back() == '\r' || t.back() == '\t' || t.back() == ','))
        t.remove_suffix(1);
    return t;
}

// "1661938466265032" or "4458677009853.422" microseconds -> nanoseconds,
// exactly for up to three fraction digits (64-bit timestamps lose nothing).
inline std::optional<int64_t> microsToNs(std::string_view t)
{
    t = trimToken(t);
    if (!t.empty() && t.front() == '"' && t.size() >= 2)
        t = t.substr(1, t.size() - 2);
    if (t.empty())
        return std::nullopt;
    const bool neg = t.front() == '-';
    size_t i = neg ? 1 : 0;
    uint64_t whole = 0; // 19 digits cannot overflow it; the range is checked after the loop
    size_t digits = 0;
    for (; i < t.size() && uint8_t(t[i] - '0') < 10; ++i, ++digits)
        if (digits < 19)
            whole = whole * 10 + uint64_t(t[i] - '0');
    if (digits >= 19 || whole > uint64_t(INT64_MAX / 1000 - 1))
        return std::nullopt;
    int64_t frac = 0;
    int fracDigits = 0;
    bool roundUp = false;
    if (i < t.size() && t[i] == '.') {
        for (++i; i < t.size() && t[i] >= '0' && t[i] <= '9'; ++i) {
            if (fracDigits < 3) {
                frac = frac * 10 + (t[i] - '0');
                ++fracDigits;
            } else if (fracDigits == 3) {
                roundUp = t[i] >= '5';
                ++fracDigits;
            }
        }
    }
    if (i < t.size()) { // an exponent or garbage: let strtod decide
        double v = 0;
        auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
        if (ec != std::errc() || p != t.data() + t.size() || !std::isfinite(v) || std::fabs(v) > 9e15)
            return std::nullopt;
        return int64_t(std::llround(v * 1000));
    }
    if (digits == 0)
        return std::nullopt;
    for (int k = std::min(fracDigits, 3); k < 3; ++k)
        frac *= 10;
    int64_t ns = int64_t(whole) * 1000 + frac + (roundUp ? 1 : 0);
    return neg ? -ns : ns;
}

inline int dtypeBytes(std::string_view d)
{
    if (d == "Float"sv || d == "Int"sv || d == "float"sv || d == "int32"sv)
        return 4;
    if (d == "Half"sv || d == "BFloat16"sv || d == "Short"sv || d == "half"sv || d == "bfloat16"sv)
        return 2;
    if (d == "Double"sv || d == "Long"sv || d == "double"sv || d == "int64"sv)
        return 8;
    if (d == "Byte"sv || d == "Char"sv || d == "Bool"sv || d == "uint8"sv || d == "int8"sv)
        return 1;
    return 0;
}

inline std::optional<TraceKind> kindFromName(std::string_view s)
{
    for (int k = 0; k <= int(TraceKind::CpuOp); ++k)
        if (traceKindName(TraceKind(k)) == s)
            return TraceKind(k);
    return std::nullopt;
}

// Kineto's categories; unknown ones with a duration become annotations.
inline TraceKind kindFromCategory(std::string_view cat, bool& gpu)
{
    gpu = false;
    if (cat == "kernel"sv || cat == "Kernel"sv) {
        gpu = true;
        return TraceKind::Kernel;
    }
    if (cat == "gpu_memcpy"sv || cat == "Memcpy"sv) {
        gpu = true;
        return TraceKind::Memcpy;
    }
    if (cat == "gpu_memset"sv || cat == "Memset"sv) {
        gpu = true;
        return TraceKind::Memset;
    }
    if (cat == "gpu_user_annotation"sv) {
        gpu = true;
        return TraceKind::Annotation;
    }
    if (cat == "cuda_runtime"sv || cat == "cuda_driver"sv || cat == "Runtime"sv || cat == "Driver"sv)
        return TraceKind::Runtime;
    if (cat == "cpu_op"sv || cat == "Operator"sv)
        return TraceKind::CpuOp;
    return TraceKind::Annotation; // user_annotation, python_function, others
}

// The legacy autograd profiler's export (no categories) writes
// record_function ranges like operators. These are ranges, not operators:
// module ranges ("nn.Module: …", PyTorch's own and Partita's trace module's),
// the optimizer's ("Optimizer.step#AdamW.step", "Optimizer.zero_grad#…") and
// DistributedDataParallel's forward ("DistributedDataParallel.forward").
inline bool isLegacyAnnotation(std::string_view name)
{
    auto ends = [&](std::string_view s) { return name.size() >= s.size() && name.substr(name.size() - s.size()) == s; };
    return name.substr(0, 11) == "nn.Module: "sv || name.substr(0, 10) == "Optimizer."sv ||
           (ends(".forward"sv) && name.find("::"sv) == std::string_view::npos);
}

// The fields an event's reader looks at. Keys are told apart by length
// first, then by their bytes (a chain of string compares was 17 % of an
// import's instructions: every key of every event was tried against each).
enum class Field : uint8_t { Other, Ph, Cat, Name, Pid, Tid, Ts, Dur, Args };
enum class Arg : uint8_t { Other, Stream, Correlation, Nelems, Dtype, Name, PartitaKind, Layer, Op, Bytes, Flops };

inline bool is(std::string_view k, const char* lit)
{
    return std::memcmp(k.data(), lit, k.size()) == 0; // k.size() == strlen(lit), checked by the caller's switch
}

inline Field fieldOf(std::string_view k)
{
    switch (k.size()) {
    case 2:
        return is(k, "ph") ? Field::Ph : is(k, "ts") ? Field::Ts : Field::Other;
    case 3:
        return is(k, "cat")   ? Field::Cat
               : is(k, "pid") ? Field::Pid
               : is(k, "tid") ? Field::Tid
               : is(k, "dur") ? Field::Dur
                              : Field::Other;
    case 4:
        return is(k, "name") ? Field::Name : is(k, "args") ? Field::Args : Field::Other;
    default:
        return Field::Other;
    }
}

inline Arg argOf(std::string_view k)
{
    switch (k.size()) {
    case 2:
        return is(k, "op") ? Arg::Op : Arg::Other;
    case 4:
        return is(k, "name") ? Arg::Name : Arg::Other;
    case 5:
        return is(k, "dtype")   ? Arg::Dtype
               : is(k, "layer") ? Arg::Layer
               : is(k, "bytes") ? Arg::Bytes
               : is(k, "flops") ? Arg::Flops
                                : Arg::Other;
    case 6:
        return is(k, "stream") ? Arg::Stream : Arg::Other;
    case 11:
        return is(k, "correlation") ? Arg::Correlation : Arg::Other;
    case 12:
        return is(k, "partita_kind") ? Arg::PartitaKind : Arg::Other;
    case 13:
        return is(k, "In msg nelems") ? Arg::Nelems : Arg::Other;
    default:
        return Arg::Other;
    }
}

// The first bytes of the argument keys argOf knows, and the backslash that
// may start an escaped spelling of one.
constexpr std::array<bool, 256> kArgInitial = [] {
    std::array<bool, 256> t{};
    for (char c : std::string_view("ocndlbfspI\\"))
        t[uint8_t(c)] = true;
    return t;
}();

// A field's key as written when it holds no escape (every key Kineto,
// Perfetto or Partita write), without copying it; otherwise unescaped. The
// closing quote is before `end`: the parser has matched it.
inline bool keyOf(od::field& f, const char* end, std::string_view& key)
{
    const char* p = reinterpret_cast<const char*>(f.key().raw());
    const char* q = p;
#if defined(__SSE2__)
    // 16 bytes at a time (the batch is padded past its end).
    const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\');
    for (; q + 16 <= end; q += 16) {
        const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q));
        const unsigned m = unsigned(_mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash))));
        if (m) {
            q += __builtin_ctz(m);
            break;
        }
    }
#endif
    while (q < end && *q != '"' && *q != '\\')
        ++q;
    if (q < end && *q == '"') {
        key = std::string_view(p, size_t(q - p));
        return true;
    }
    return !f.unescaped_key().get(key);
}

} // namespace partita::detail
