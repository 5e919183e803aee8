#pragma once
// A device mesh's parallel groups, from its degrees alone: which ranks share
// a data-, tensor-, context-, expert-parallel group or a pipeline (the ranks
// of one model replica's stages). Ranks are laid out as the executor lays
// them (executor/mpicomm.h, Megatron-LM's order): pipeline stage slowest,
// then data, then context, tensor fastest; a data-parallel group spans the
// context-parallel ranks too (they sync gradients together), an expert
// group `ep` consecutive data indices. For grouping the ranks of a stored
// run (its strategy's mesh, or one given on import) on the timeline.

#include "partita/core/result.h"

#include <string>
#include <string_view>
#include <vector>

namespace partita {

struct MeshShape
{
    int dp = 1, tp = 1, pp = 1, cp = 1, ep = 1;
    int world() const { return dp * tp * pp * cp; }
    bool operator==(const MeshShape&) const = default;
};

enum class MeshAxis
{
    Data,
    Tensor,
    Pipeline,
    Context,
    Expert,
};
std::string_view meshAxisName(MeshAxis a); // "dp", "tp", "pp", "cp", "ep"
// "data-parallel group", "tensor-parallel group", "pipeline", ...
std::string meshAxisTitle(MeshAxis a);

struct MeshPlace
{
    int group = 0; // which of the axis's groups holds the rank, from 0
    int index = 0; // the rank's place in it
};
// A rank beyond the mesh's world (a run with more ranks than its strategy)
// falls in no group: group -1.
MeshPlace meshPlace(const MeshShape& m, MeshAxis a, int rank);
int meshGroupCount(const MeshShape& m, MeshAxis a);

// "dp=4,tp=2,pp=2" (any order, any subset; cp and ep too; "x" or spaces may
// separate): the degrees; fails naming what it cannot read, a degree below 1
// or an ep that does not divide dp.
Result<MeshShape> parseMesh(std::string_view text);
std::string meshText(const MeshShape& m); // "dp=4,tp=2,pp=2" (degrees above 1; "dp=1" when none)

} // namespace partita
