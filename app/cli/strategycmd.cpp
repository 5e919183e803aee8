#include "strategycmd.h"

#include "common.h"

#include "partita/core/clusterio.h"
#include "partita/core/modelio.h"
#include "partita/core/strategyedit.h"

#include <nlohmann/json.hpp>

namespace partita::cli {

int runStrategyAtoms(bool json)
{
    if (json) {
        nlohmann::json a = nlohmann::json::array();
        for (const auto& x : strategyAtoms())
            a.push_back({{"id", x.id}, {"label", x.label}, {"description", x.description}});
        std::cout << a.dump(2) << "\n";
        return 0;
    }
    for (const auto& x : strategyAtoms())
        std::printf("%-24s %s\n", x.id.c_str(), x.description.c_str());
    return 0;
}

int runStrategyAssign(const StrategyCliOptions& o)
{
    auto in = loadStrategyInputs(o.base);
    if (!in)
        return fail(in.error());
    const Model* model = &in->model;
    const Cluster* cluster = &in->cluster;
    const Strategy* strategy = &in->strategy;
    const auto kind = atomFromId(o.atom);
    if (!kind)
        return fail(Error{{}, "--atom", "unknown atom '" + o.atom + "' (partita-cli strategy atoms lists them)"});
    Atom atom;
    atom.kind = *kind;
    atom.stage = o.stage;
    atom.ps_shards = o.shards;
    atom.compression = o.compression == "fp16"       ? Compression::FP16
                       : o.compression == "powersgd" ? Compression::PowerSGD
                                                     : Compression::None;
    // Patterns expand to the layers they match, in model order.
    std::vector<std::string> names;
    for (const std::string& p : o.layers) {
        size_t before = names.size();
        for (const Layer& l : model->layers)
            if (globMatch(p, l.name))
                names.push_back(l.name);
        if (names.size() == before)
            return fail(Error{o.base.model, "--layers", "'" + p + "' matches no layer of the model"});
    }
    auto edited = assignAtom(*strategy, *model, *cluster, names, atom);
    if (!edited)
        return fail(edited.error());
    const std::string text = strategyToJson(*edited);
    if (!o.out.empty()) {
        if (auto w = writeFileAtomically(o.out, text); !w)
            return fail(w.error());
    } else if (!o.json) {
        std::cout << text << "\n";
    }
    if (o.json) {
        nlohmann::json j{{"atom", o.atom}, {"layers", names}};
        if (o.out.empty())
            j["strategy"] = nlohmann::json::parse(text);
        else
            j["out"] = o.out;
        std::cout << j.dump(2) << "\n";
    } else if (!o.out.empty()) {
        std::cout << atomInfo(atom.kind).label << " assigned to " << names.size() << " layer(s); strategy written to "
                  << o.out << "\n";
    }
    return 0;
}

} // namespace partita::cli
