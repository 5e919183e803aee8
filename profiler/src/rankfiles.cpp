#include "rankfiles.h"

#include <algorithm>
#include <charconv>
#include <atomic>
#include <system_error>
#include <thread>
#include <filesystem>
#include <map>
#include <set>

namespace fs = std::filesystem;

namespace partita::detail {

Result<std::vector<std::string>> listInputs(const std::vector<std::string>& paths)
{
    std::vector<std::string> files;
    for (const auto& p : paths) {
        std::error_code ec;
        if (fs::is_directory(p, ec)) {
            std::vector<std::string> inDir;
            for (const auto& e : fs::directory_iterator(p, ec)) {
                const std::string n = e.path().filename().string();
                auto ends = [&](std::string_view s) { return n.size() >= s.size() && n.compare(n.size() - s.size(), s.size(), s) == 0; };
                // partita-worker's rank manifests sit beside its traces.
                if (e.is_regular_file() && (ends(".json") || ends(".json.gz")) && !ends(".manifest.json"))
                    inDir.push_back(e.path().string());
            }
            if (ec)
                return Error{p, {}, "cannot list the folder: " + ec.message()};
            if (inDir.empty())
                return Error{p, {}, "the folder holds no .json or .json.gz trace"};
            std::sort(inDir.begin(), inDir.end());
            files.insert(files.end(), inDir.begin(), inDir.end());
        } else if (fs::exists(p, ec)) {
            files.push_back(p);
        } else {
            return Error{p, {}, "no such file or folder"};
        }
    }
    if (files.empty())
        return Error{{}, {}, "no trace files given"};
    return files;
}


std::vector<std::pair<int32_t, int>> ranksByPid(const std::vector<std::pair<int32_t, std::string>>& tracks)
{
    std::set<int> pids;
    std::vector<std::pair<int32_t, int>> out;
    for (const auto& [number, text] : tracks) {
        int pid = -1;
        auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), pid);
        if (ec != std::errc() || end != text.data() + text.size() || pid < 0 || pid >= (1 << 20))
            return {}; // not pids Partita wrote
        pids.insert(pid);
        out.emplace_back(number, pid);
    }
    return pids.size() >= 2 ? out : std::vector<std::pair<int32_t, int>>{};
}

Result<bool> settleRanks(RunWriter& w, const std::vector<std::string>& files, const std::vector<std::optional<int>>& ranks,
                         const std::vector<std::vector<std::pair<int32_t, int>>>& spread, std::vector<bool>& kept, int world,
                         TraceImportReport& report)
{
    // Ranks: distributedInfo where given (or, for Partita's export of
    // several ranks, each process's); a second file claiming a rank is left
    // out (two runs' files mixed in one folder); the files that name none
    // take the lowest unused.
    std::map<int, size_t> claimedBy;
    std::vector<int> final(files.size(), -1);
    for (size_t i = 0; i < files.size(); ++i) {
        std::set<int> claims;
        for (const auto& [track, rank] : spread[i])
            claims.insert(rank);
        if (spread[i].empty() && ranks[i])
            claims.insert(*ranks[i]);
        if (!kept[i] || claims.empty())
            continue;
        auto taken = std::find_if(claims.begin(), claims.end(), [&](int r) { return claimedBy.count(r) > 0; });
        if (taken == claims.end()) {
            for (int r : claims)
                claimedBy.emplace(r, i);
            final[i] = *claims.begin();
            continue;
        }
        if (auto d = w.dropRank(-1 - int32_t(i)); !d)
            return d.error();
        kept[i] = false;
        report.left_out.push_back(files[i] + ": claims rank " + std::to_string(*taken) + ", as " + files[claimedBy[*taken]] +
                                  " does: left out");
    }
    std::set<int> used;
    for (const auto& [rank, file] : claimedBy)
        used.insert(rank);
    int next = 0;
    for (size_t i = 0; i < files.size(); ++i) {
        if (!kept[i])
            continue;
        if (!spread[i].empty()) {
            for (const auto& [track, rank] : spread[i])
                if (auto m = w.moveTrack(-1 - int32_t(i), track, rank); !m)
                    return m.error();
            for (const auto& [rank, file] : claimedBy)
                if (file == i)
                    report.ranks.push_back(rank);
            continue;
        }
        if (final[i] < 0) {
            while (used.count(next))
                ++next;
            final[i] = next;
            used.insert(next);
        }
        if (auto r = w.renameRank(-1 - int32_t(i), final[i]); !r)
            return r.error();
        report.ranks.push_back(final[i]);
    }
    // Ranks no file holds, below the job's size (or the highest rank seen).
    std::string missing;
    int missingCount = 0;
    const int upTo = std::max(world, used.empty() ? 0 : *used.rbegin() + 1);
    for (int r = 0; r < upTo; ++r)
        if (!used.count(r) && ++missingCount <= 16)
            missing += (missing.empty() ? "" : ", ") + std::to_string(r);
    if (missingCount > 0)
        report.left_out.push_back("no file holds rank" + std::string(missingCount > 1 ? "s " : " ") + missing +
                                  (missingCount > 16 ? " and " + std::to_string(missingCount - 16) + " more" : "") + " (of " +
                                  std::to_string(upTo) + (world ? ", the job's world_size" : "") + ")");
    return true;
}

std::vector<FileOutcome> readAll(size_t files, bool several, const std::function<FileOutcome(size_t, std::mutex*)>& readOne)
{
    std::vector<FileOutcome> out(files);
    std::mutex writeLock;
    std::atomic<size_t> next{0};
    auto work = [&] {
        for (size_t i; (i = next++) < files;)
            out[i] = readOne(i, several ? &writeLock : nullptr);
    };
    const size_t cores = std::clamp<size_t>(std::thread::hardware_concurrency(), 2, 8);
    const size_t workers = several ? std::min(files, cores) : 1;
    std::vector<std::thread> pool;
    for (size_t k = 1; k < workers; ++k) {
        try {
            pool.emplace_back(work);
        } catch (const std::system_error&) {
            break; // no more threads to be had: fewer read at once
        }
    }
    work();
    for (std::thread& t : pool)
        t.join();
    return out;
}

} // namespace partita::detail
