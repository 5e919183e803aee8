#include "partita/core/mesh.h"

#include <algorithm>
#include <cctype>
#include <charconv>

namespace partita {

std::string_view meshAxisName(MeshAxis a)
{
    switch (a) {
    case MeshAxis::Data: return "dp";
    case MeshAxis::Tensor: return "tp";
    case MeshAxis::Pipeline: return "pp";
    case MeshAxis::Context: return "cp";
    case MeshAxis::Expert: return "ep";
    }
    return "dp";
}

std::string meshAxisTitle(MeshAxis a)
{
    switch (a) {
    case MeshAxis::Data: return "data-parallel group";
    case MeshAxis::Tensor: return "tensor-parallel group";
    case MeshAxis::Pipeline: return "pipeline";
    case MeshAxis::Context: return "context-parallel group";
    case MeshAxis::Expert: return "expert-parallel group";
    }
    return {};
}

MeshPlace meshPlace(const MeshShape& m, MeshAxis a, int rank)
{
    if (rank < 0 || rank >= m.world())
        return {-1, 0};
    const int perStage = m.dp * m.cp * m.tp;
    const int stage = rank / perStage, local = rank % perStage;
    const int tpi = local % m.tp, cpi = (local / m.tp) % m.cp, dpi = local / (m.tp * m.cp);
    const int ep = std::max(1, m.ep);
    switch (a) {
    case MeshAxis::Tensor: return {(stage * m.dp + dpi) * m.cp + cpi, tpi};
    case MeshAxis::Data: return {stage * m.tp + tpi, dpi * m.cp + cpi};
    case MeshAxis::Context: return {(stage * m.dp + dpi) * m.tp + tpi, cpi};
    case MeshAxis::Expert: return {((stage * m.tp + tpi) * m.cp + cpi) * (m.dp / ep) + dpi / ep, dpi % ep};
    case MeshAxis::Pipeline: return {local, stage};
    }
    return {-1, 0};
}

int meshGroupCount(const MeshShape& m, MeshAxis a)
{
    switch (a) {
    case MeshAxis::Tensor: return m.world() / m.tp;
    case MeshAxis::Data: return m.world() / (m.dp * m.cp);
    case MeshAxis::Context: return m.world() / m.cp;
    case MeshAxis::Expert: return m.world() / std::max(1, m.ep);
    case MeshAxis::Pipeline: return m.world() / m.pp;
    }
    return 0;
}

Result<MeshShape> parseMesh(std::string_view text)
{
    MeshShape m;
    auto fail = [&](const std::string& why) { return Error{{}, "mesh '" + std::string(text) + "'", why}; };
    size_t at = 0;
    bool any = false;
    while (at < text.size()) {
        while (at < text.size() && (text[at] == ',' || text[at] == ' ' || text[at] == 'x'))
            ++at;
        if (at >= text.size())
            break;
        const size_t eq = text.find('=', at);
        if (eq == std::string_view::npos)
            return fail("expected name=degree (dp, tp, pp, cp, ep), as in dp=4,tp=2");
        const std::string_view name = text.substr(at, eq - at);
        int value = 0;
        const char* begin = text.data() + eq + 1;
        const auto [end, ec] = std::from_chars(begin, text.data() + text.size(), value);
        if (ec != std::errc() || end == begin)
            return fail("'" + std::string(name) + "' has no whole number after '='");
        int* slot = name == "dp" ? &m.dp : name == "tp" ? &m.tp : name == "pp" ? &m.pp : name == "cp" ? &m.cp : name == "ep" ? &m.ep : nullptr;
        if (!slot)
            return fail("'" + std::string(name) + "' is not one of dp, tp, pp, cp, ep");
        if (value < 1)
            return fail(std::string(name) + " must be at least 1");
        *slot = value;
        any = true;
        at = size_t(end - text.data());
    }
    if (!any)
        return fail("no degrees given (as in dp=4,tp=2)");
    if (m.dp % m.ep != 0)
        return fail("ep=" + std::to_string(m.ep) + " does not divide dp=" + std::to_string(m.dp));
    return m;
}

std::string meshText(const MeshShape& m)
{
    std::string out;
    for (auto [name, v] : {std::pair{"dp", m.dp}, {"tp", m.tp}, {"pp", m.pp}, {"cp", m.cp}, {"ep", m.ep}})
        if (v > 1)
            out += (out.empty() ? "" : ",") + std::string(name) + "=" + std::to_string(v);
    return out.empty() ? "dp=1" : out;
}

} // namespace partita
