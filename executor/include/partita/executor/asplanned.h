#pragma once
// What a backend runs otherwise than the plan it is given says: a measured
// run is compared with its prediction as like for like only where it ran the
// plan, so the run and its comparison list the rest.

#include "partita/core/plan.h"
#include "partita/core/strategy.h"

#include <string>
#include <string_view>
#include <vector>

namespace partita {

// One line per thing `backend` ("cpu" or "cuda") does not execute as
// planned; empty when it runs the plan as given. `resolved`: the strategy
// the plan was lowered from (placement, local replication, staleness and
// the overlap switches are decided there; the plan keeps what runs).
std::vector<std::string> notAsPlanned(const Plan& plan, const ResolvedStrategy& resolved, std::string_view backend);

} // namespace partita
