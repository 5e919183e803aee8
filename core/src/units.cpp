#include "partita/core/units.h"

#include <ctime>

#include <array>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <initializer_list>
#include <utility>

namespace partita {

namespace {

std::string_view trim(std::string_view s)
{
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front())))
        s.remove_prefix(1);
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())))
        s.remove_suffix(1);
    return s;
}

struct Unit
{
    std::string_view name;
    double factor;
};

// Decimal prefixes for rates (as datasheets write them), binary for memory sizes
// where the unit says so (KiB, MiB, GiB, TiB).
constexpr std::array kBandwidth{
    Unit{"B/s", 1},         Unit{"KB/s", 1e3},        Unit{"MB/s", 1e6},         Unit{"GB/s", 1e9},
    Unit{"TB/s", 1e12},     Unit{"b/s", 1.0 / 8},     Unit{"Kb/s", 1e3 / 8},     Unit{"Mb/s", 1e6 / 8},
    Unit{"Gb/s", 1e9 / 8},  Unit{"Tb/s", 1e12 / 8},   Unit{"Gbit/s", 1e9 / 8},   Unit{"Mbit/s", 1e6 / 8},
    Unit{"Gbps", 1e9 / 8},  Unit{"Mbps", 1e6 / 8},    Unit{"GiB/s", 1073741824.0}, Unit{"MiB/s", 1048576.0},
};
constexpr std::array kBytes{
    Unit{"B", 1},     Unit{"KB", 1e3},   Unit{"MB", 1e6},   Unit{"GB", 1e9},   Unit{"TB", 1e12},
    Unit{"KiB", 1024.0}, Unit{"MiB", 1048576.0}, Unit{"GiB", 1073741824.0}, Unit{"TiB", 1099511627776.0},
};
constexpr std::array kFlops{
    Unit{"FLOP/s", 1}, Unit{"GFLOP/s", 1e9}, Unit{"TFLOP/s", 1e12}, Unit{"PFLOP/s", 1e15},
    Unit{"FLOPS", 1},  Unit{"GFLOPS", 1e9},  Unit{"TFLOPS", 1e12},  Unit{"PFLOPS", 1e15},
};
constexpr std::array kSeconds{
    Unit{"s", 1}, Unit{"ms", 1e-3}, Unit{"us", 1e-6}, Unit{"µs", 1e-6}, Unit{"ns", 1e-9},
};

template <size_t N>
std::optional<double> lookup(const std::array<Unit, N>& units, std::string_view u)
{
    for (const auto& unit : units)
        if (unit.name == u)
            return unit.factor;
    return std::nullopt;
}

std::string fmt(double v, const char* unit)
{
    char buf[64];
    if (v >= 100 || v == std::floor(v))
        std::snprintf(buf, sizeof buf, "%.0f %s", v, unit);
    else if (v >= 10)
        std::snprintf(buf, sizeof buf, "%.1f %s", v, unit);
    else
        std::snprintf(buf, sizeof buf, "%.2f %s", v, unit);
    return buf;
}

std::string scaled(double v, std::initializer_list<std::pair<double, const char*>> steps)
{
    for (const auto& [f, name] : steps)
        if (std::fabs(v) >= f)
            return fmt(v / f, name);
    const auto& last = *(steps.end() - 1);
    return fmt(v / last.first, last.second);
}

} // namespace

std::optional<double> parseQuantity(std::string_view text, Quantity kind, std::string* why)
{
    const std::string_view t = trim(text);
    double value = 0;
    const auto [ptr, ec] = std::from_chars(t.data(), t.data() + t.size(), value);
    if (ec != std::errc() || ptr == t.data()) {
        if (why)
            *why = "'" + std::string(text) + "' does not start with a number";
        return std::nullopt;
    }
    if (!std::isfinite(value) || value < 0) {
        if (why)
            *why = "'" + std::string(text) + "' is not a finite non-negative quantity";
        return std::nullopt;
    }
    const std::string_view unit = trim(std::string_view(ptr, size_t(t.data() + t.size() - ptr)));
    if (unit.empty())
        return value;
    std::optional<double> f;
    const char* expected = "";
    switch (kind) {
    case Quantity::Bandwidth: f = lookup(kBandwidth, unit); expected = "B/s, GB/s, Gb/s, Gbit/s, Gbps, GiB/s ..."; break;
    case Quantity::Bytes: f = lookup(kBytes, unit); expected = "B, MB, GB, MiB, GiB ..."; break;
    case Quantity::Flops: f = lookup(kFlops, unit); expected = "FLOP/s, TFLOP/s, TFLOPS ..."; break;
    case Quantity::Seconds: f = lookup(kSeconds, unit); expected = "s, ms, us, ns"; break;
    }
    if (!f) {
        if (why)
            *why = "unknown unit '" + std::string(unit) + "' (expected " + expected + ")";
        return std::nullopt;
    }
    return value * *f;
}

std::string formatBytes(double b)
{
    return scaled(b, {{1099511627776.0, "TiB"}, {1073741824.0, "GiB"}, {1048576.0, "MiB"}, {1024.0, "KiB"}, {1.0, "B"}});
}
std::string formatBandwidth(double b)
{
    return scaled(b, {{1e12, "TB/s"}, {1e9, "GB/s"}, {1e6, "MB/s"}, {1e3, "KB/s"}, {1.0, "B/s"}});
}
std::string formatFlops(double f)
{
    return scaled(f, {{1e15, "PFLOP/s"}, {1e12, "TFLOP/s"}, {1e9, "GFLOP/s"}, {1e6, "MFLOP/s"}, {1.0, "FLOP/s"}});
}
std::string formatFlopCount(double f)
{
    return scaled(f, {{1e15, "PFLOP"}, {1e12, "TFLOP"}, {1e9, "GFLOP"}, {1e6, "MFLOP"}, {1e3, "kFLOP"}, {1.0, "FLOP"}});
}
std::string formatSeconds(double s)
{
    return scaled(s, {{1.0, "s"}, {1e-3, "ms"}, {1e-6, "us"}, {1e-9, "ns"}, {1e-12, "ps"}});
}
std::string formatCount(double n)
{
    return scaled(n, {{1e12, "T"}, {1e9, "B"}, {1e6, "M"}, {1e3, "K"}, {1.0, ""}});
}

std::string withThousands(long long n)
{
    std::string digits = std::to_string(n < 0 ? -n : n);
    std::string out;
    for (size_t i = 0; i < digits.size(); ++i) {
        if (i > 0 && (digits.size() - i) % 3 == 0)
            out += ',';
        out += digits[i];
    }
    return n < 0 ? "-" + out : out;
}

std::string utcTimestamp()
{
    const std::time_t t = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32] = {};
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

} // namespace partita
