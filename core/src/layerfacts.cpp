#include "layerfacts.h"

#include <algorithm>
#include <cmath>

namespace partita::detail {

// Expected distinct ranks among T draws from Zipf(1) over V ranks:
// sum_k 1 - (1 - p_k)^T with p_k = 1 / (k H_V). Exact for the first ranks;
// beyond, where p_k T is small, 1 - exp(-a/k) with a = T / H_V integrates in
// closed form: [x - x e^{-a/x} + a E1(a/x)] (E1 the exponential integral).
double zipfDistinct(int64_t V, double T)
{
    constexpr int64_t kExact = 2048;
    const double H = std::log(double(V)) + 0.5772156649015329 + 1 / (2.0 * double(V)); // harmonic number
    double sum = 0;
    const int64_t exact = std::min(V, kExact);
    for (int64_t k = 1; k <= exact; ++k)
        sum += 1 - std::pow(1 - 1 / (double(k) * H), T);
    if (V > exact) {
        const double a = T / H;
        auto F = [a](double x) { return x - x * std::exp(-a / x) - a * std::expint(-a / x); }; // E1(z) = -Ei(-z)
        sum += F(double(V) + 0.5) - F(double(exact) + 0.5);
    }
    return std::min(sum, double(V));
}

double sparseRowsBytes(const Layer& l, double tokens, int64_t seq, int64_t modelSeq, double gradBytes)
{
    double rowsBytes = 0;
    for (const auto& p : l.params) {
        const double rows = double(p.shape.front());
        const double width = double(p.numel()) / rows;
        double touched = 0;
        if (int64_t(rows) == l.dims.vocab)
            touched = zipfDistinct(int64_t(rows), tokens);
        else if (int64_t(rows) >= seq && int64_t(rows) <= 4 * std::max<int64_t>(seq, modelSeq))
            touched = std::min(rows, double(seq)); // position embeddings
        else
            touched = rows * (1 - std::pow(1 - 1 / rows, tokens));
        rowsBytes += touched * (width * gradBytes + 8);
    }
    return rowsBytes;
}

} // namespace partita::detail
