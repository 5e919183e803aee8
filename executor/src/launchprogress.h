#pragma once
// Shared by the launcher (launcher.cpp) and the reading of a failed launch's
// log (launchfailure.cpp).

#include "partita/executor/launcher.h"

#include <string>

namespace partita::detail {

// A line of the launcher's output: a rank's start, step or end line moves
// that rank's progress on.
void updateProgress(LaunchResult& r, const std::string& line);
// "signal 9 (Killed)": the number and what strsignal says of it.
std::string signalName(int sig);

} // namespace partita::detail
