// What a failed launch's log says (launcher.h's explainFailure): where each
// rank ran, the rank that failed first and why, in the worker's own words
// first, then the launcher's reports; at a timeout, those left behind.
#include "launchprogress.h"

#include <algorithm>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <string>

namespace partita {

namespace {

using detail::signalName;
using detail::updateProgress;

// A log read afterwards: the ranks' start lines say where each ran.
void progressFromLog(LaunchResult& r)
{
    const std::string& log = r.log;
    size_t at = 0;
    while (at < log.size()) {
        size_t nl = log.find('\n', at);
        if (nl == std::string::npos)
            nl = log.size();
        updateProgress(r, log.substr(at, nl - at));
        at = nl + 1;
    }
}

// The worker's own error lines: the rank that failed first, where and why;
// false when the log has none.
bool causeFromWorkerErrors(LaunchResult& r)
{
    const std::string& log = r.log;
    static const std::regex workerErr(R"(partita-worker: error: rank (\d+) on (\S+): ([^\n]*))");
    // A rank that fails takes its peers down with it (their collectives see
    // the connection close; the launcher stops them): the first error that
    // is not such an echo names the rank that failed first. A peer may also
    // die of a signal while it tears down (PyTorch 1.13's gloo has aborted
    // with "munmap_chunk(): invalid pointer" after the other rank raised),
    // and its line can reach the log first: a command that exited with an
    // error of its own is named before one killed by a signal.
    static const std::regex echo(R"(stopped by the launcher|[Cc]onnection (closed|reset) by peer|Broken pipe)");
    static const std::regex killed(R"(^the command was killed by signal)");
    std::optional<std::smatch> first, primary, signalled;
    for (auto it = std::sregex_iterator(log.begin(), log.end(), workerErr); it != std::sregex_iterator(); ++it) {
        if (!first)
            first = *it;
        if (std::regex_search((*it)[3].first, (*it)[3].second, echo))
            continue;
        if (std::regex_search((*it)[3].first, (*it)[3].second, killed)) {
            if (!signalled)
                signalled = *it;
        } else if (!primary) {
            primary = *it;
        }
    }
    if (!first)
        return false;
    const std::smatch& w = primary ? *primary : signalled ? *signalled : *first;
    r.failed_rank = std::stoi(w[1]);
    r.failed_host = w[2];
    r.cause = w[3];
    // Ranks that fail alike (a missing interpreter on every rank) reach
    // the log in no set order: the lowest of them is named, and the count.
    std::set<int> alike;
    for (auto it = std::sregex_iterator(log.begin(), log.end(), workerErr); it != std::sregex_iterator(); ++it)
        if ((*it)[3] == r.cause && alike.insert(std::stoi((*it)[1])).second && std::stoi((*it)[1]) < r.failed_rank) {
            r.failed_rank = std::stoi((*it)[1]);
            r.failed_host = (*it)[2];
        }
    if (alike.size() > 1)
        r.cause += " (" + std::to_string(alike.size()) + " ranks failed alike)";
    return true;
}

// The cause the log gives: the worker's own words first (they say what went
// wrong inside), then the launcher's reports, in order of how telling they are.
void causeFromLog(LaunchResult& r, const LaunchSpec& spec)
{
    const std::string& log = r.log;
    std::smatch m;
    auto hostOf = [&](int rank) {
        return rank >= 0 && rank < int(r.ranks.size()) ? r.ranks[size_t(rank)].host : std::string();
    };
    static const std::regex workerErrEarly(R"(partita-worker: error: on (\S+): ([^\n]*))");
    static const std::regex signalled(
        R"(process rank (\d+) with PID (\d+) on node (\S+) exited on signal (\d+) \(([^)]*)\))");
    static const std::regex exitCode(R"(Process name: \[\[\d+,\d+\],(\d+)\]\s*\n\s*Exit code:\s*(\d+))");
    static const std::regex mpiAbort(R"(MPI_ABORT was invoked on rank (\d+))");
    static const std::regex daemons(R"(ORTE was unable to reliably start one or more daemons)");
    static const std::regex sshErr(R"((ssh: [^\n]*|Host key verification failed\.|[^\n]*Permission denied[^\n]*|[^\n]*Connection refused[^\n]*|[^\n]*Could not resolve hostname[^\n]*))");
    static const std::regex notFound(R"(mpirun was unable to launch the specified application as it could not (access|find) an executable)");
    if (causeFromWorkerErrors(r))
        return;
    if (std::regex_search(log, m, signalled)) {
        r.failed_rank = std::stoi(m[1]);
        r.failed_host = m[3];
        r.cause = "killed by " + signalName(std::stoi(m[4]));
    } else if (std::regex_search(log, m, workerErrEarly)) {
        r.failed_host = m[1];
        r.cause = m[2];
    } else if (std::regex_search(log, m, exitCode)) {
        r.failed_rank = std::stoi(m[1]);
        r.failed_host = hostOf(r.failed_rank);
        r.cause = "exited with code " + std::string(m[2]);
    } else if (std::regex_search(log, m, mpiAbort)) {
        r.failed_rank = std::stoi(m[1]);
        r.failed_host = hostOf(r.failed_rank);
        r.cause = "called MPI_Abort";
    } else if (std::regex_search(log, daemons) || std::regex_search(log, m, sshErr)) {
        std::smatch e;
        r.cause = "could not start the ranks' daemons over ssh";
        if (std::regex_search(log, e, sshErr))
            r.cause += ": " + std::string(e[1]);
        for (const HostEntry& h : spec.hosts)
            if (log.find(h.host) != std::string::npos && r.failed_host.empty())
                r.failed_host = h.host;
    } else if (std::regex_search(log, notFound)) {
        r.cause = "the worker " + spec.worker + " cannot be run on a host";
    }
}

// A run that timed out: those that did not finish, the least advanced first
// (one that never started before all).
void blameTimeout(LaunchResult& r, const LaunchSpec& spec)
{
    int least = INT32_MAX;
    for (const RankProgress& p : r.ranks)
        if (p.rank >= 0 && !p.done && p.steps_done < least) {
            least = p.steps_done;
            r.failed_rank = p.rank;
            r.failed_host = p.host;
        }
    for (int i = 0; i < spec.ranks; ++i)
        if (i >= int(r.ranks.size()) || r.ranks[size_t(i)].rank < 0) {
            r.failed_rank = i; // never started
            r.failed_host.clear();
            least = -1;
            break;
        }
    r.cause = "no result within the " + std::to_string(int(spec.timeout_s)) + " s timeout" +
              (least < 0 ? " (the rank never started)"
                         : " (" + std::to_string(least) + " of " + std::to_string(spec.steps) + " measured steps done)");
}

// The log's last line that is not empty, or "".
std::string lastLogLine(const std::string& log)
{
    std::string last;
    size_t end = log.find_last_not_of('\n');
    if (end != std::string::npos) {
        const size_t begin = log.rfind('\n', end);
        last = log.substr(begin == std::string::npos ? 0 : begin + 1, end - (begin == std::string::npos ? 0 : begin + 1) + 1);
    }
    return last;
}

} // namespace

void explainFailure(LaunchResult& r, const LaunchSpec& spec)
{
    if (r.ranks.empty())
        progressFromLog(r);
    causeFromLog(r, spec);
    if (r.timed_out)
        blameTimeout(r, spec);
    if (r.cancelled)
        r.cause = "cancelled";
    if (r.cause.empty()) {
        // Last resort: the launcher's last words.
        const std::string last = lastLogLine(r.log);
        r.cause = "the launcher exited with code " + std::to_string(r.exit_code) + (last.empty() ? "" : ": " + last);
    }
    r.message = (r.failed_rank >= 0 ? "rank " + std::to_string(r.failed_rank) : std::string("the run")) +
                (r.failed_host.empty() ? "" : " on " + r.failed_host) + ": " + r.cause;
}

} // namespace partita
