#pragma once
// Quantities with units: parsing "600 GB/s", "200 Gb/s", "80 GiB", "989 TFLOP/s",
// "2 us" in cluster files, and formatting them for people.

#include <optional>
#include <string>
#include <string_view>

namespace partita {

enum class Quantity
{
    Bandwidth, // bytes/s; bits/s units ("Gb/s", "Gbit/s") are divided by 8
    Bytes,
    Flops,     // FLOP/s
    Seconds,
};

// A bare number is taken as the base unit (bytes/s, bytes, FLOP/s, seconds).
// Returns nullopt and sets `why` when the text is not a quantity of that kind.
std::optional<double> parseQuantity(std::string_view text, Quantity kind, std::string* why = nullptr);

std::string formatBytes(double bytes);          // "80.0 GiB"
std::string formatBandwidth(double bytesPerS);  // "300 GB/s"
std::string formatFlops(double flops);          // "989 TFLOP/s" (rate) or with perSecond=false "1.2 TFLOP"
std::string formatFlopCount(double flops);      // "1.2 TFLOP"
std::string formatSeconds(double s);            // "3.4 us", "1.42 s"
std::string utcTimestamp();                     // now, UTC, ISO 8601: "2026-12-04T18:16:14Z"
std::string formatCount(double n);              // "109.5 M", "6.74 B"
std::string withThousands(long long n);          // "109,482,240"

} // namespace partita
