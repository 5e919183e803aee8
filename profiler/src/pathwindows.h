#pragma once
// The critical path's input (criticalpath.cpp): each rank's events of one
// window (a step, an annotation, the whole run), read a window at a time
// from the store through cursors that stay open from one window to the
// next, so that a run is read once whatever the number of steps.

#include "runstream.h"

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace partita::detail {

// A `cuda_sync` record (Kineto writes one per synchronizing call, with the
// call's correlation id).
struct SyncRecord
{
    enum Kind { Context, Stream, Event, StreamWait } kind = Context;
    int64_t corr = -1, start = 0, end = 0;
    int64_t stream = -1;         // Stream Sync: the stream; Stream Wait Event: the stream made to wait
    int64_t wait_on_stream = -1; // Event Sync, Stream Wait Event
    int64_t record_corr = -1;    // the cudaEventRecord waited for
};

struct Window
{
    int64_t start = 0, end = 0;
    std::string label;
};

struct RankWindow
{
    int rank = 0;
    Window window;
    std::vector<Ev> host;     // host operators and runtime calls with a duration, starting in the window
    std::vector<Ev> runtime;  // every runtime call starting in it (zero-length ones too), by start
    std::vector<Ev> device;   // device events launched in it (or, with no launches, starting in it)
    std::vector<SyncRecord> syncs;
    bool launches = false;    // the rank's window has runtime calls that launched device work
};

// Names of the store's string ids, read once.
class NameCache
{
public:
    explicit NameCache(const TraceStore& s) : m_store(s) {}
    Result<const std::string*> get(int64_t id);

private:
    const TraceStore& m_store;
    std::unordered_map<int64_t, std::string> m_names;
};

// Each rank's steps, or the events whose names contain `annotation` (in
// start order), from one pass over its host tracks.
Result<std::map<int, std::vector<Window>>> findWindows(const TraceStore& store, const RunScan& scan, NameCache& names,
                                                      const std::string& annotation);

class WindowReader
{
public:
    WindowReader(const TraceStore& store, const RunScan& scan, int64_t run, NameCache& names);
    ~WindowReader();
    // The rank's events of `w`; a rank's windows must come in time order.
    Result<RankWindow> read(int rank, const Window& w);

private:
    struct Cursor;
    Result<bool> open(int rank);
    Result<bool> loadSyncArgs(int32_t position);
    const TraceStore& m_store;
    const RunScan& m_scan;
    int64_t m_run;
    NameCache& m_names;
    std::map<int, std::vector<std::unique_ptr<Cursor>>> m_cursors;
    std::map<int32_t, std::unordered_map<int64_t, SyncRecord>> m_syncArgs; // track position -> event id -> record
};

} // namespace partita::detail
