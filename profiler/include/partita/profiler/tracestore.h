#pragma once
// The project file: one SQLite database holding named, versioned documents
// (models, clusters, strategies), runs (predicted, measured, imported) and
// their events, with a level-of-detail table so that a viewport of any size
// comes back ready to draw. Schema and versions: docs/formats.md.

#include "partita/core/mesh.h"
#include "partita/core/result.h"
#include "partita/core/trace.h"

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

struct sqlite3;

namespace partita {

namespace detail {
class Stmt;
class TrackReader;
}

enum class RunKind
{
    Predicted,
    Measured,
    Imported,
};
enum class RunStatus
{
    Complete,
    Incomplete, // its writer never finished (a crash, a cancelled import, a failed run)
};
std::string_view runKindName(RunKind k);
std::string_view runStatusName(RunStatus s);

struct RunInfo
{
    int64_t id = 0;
    std::string name;
    RunKind kind = RunKind::Imported;
    RunStatus status = RunStatus::Incomplete;
    std::string source;  // the files it came from, or the command that made it
    std::string host;
    std::string created; // UTC, ISO 8601
    int64_t model_id = 0, cluster_id = 0, strategy_id = 0; // documents; 0: none
    std::string meta;    // JSON object: warnings, predicted step time, ...
    // Filled when listing:
    int64_t events = 0;
    int64_t start_ns = 0, end_ns = 0;
    int ranks = 0;
};

struct StoredTrack
{
    int64_t id = 0;
    int64_t run = 0;
    int32_t rank = 0;
    int32_t track = 0;
    std::string name;
    bool device = false; // a GPU stream (or a CPU backend's device thread), not a host thread
    int64_t events = 0;
    int64_t start_ns = 0, end_ns = 0;
    int64_t max_dur_ns = 0;
};

// An event as analyses stream it: its name as an id (TraceStore::name()),
// no arguments.
struct RawEvent
{
    int64_t id = 0;
    int64_t start_ns = 0, dur_ns = 0;
    int64_t name_id = 0;
    int64_t correlation = -1;
    int32_t layer = -1;
    TraceKind kind = TraceKind::Compute;
};

// One track's events in (start, id) order, read a block at a time as they
// are asked for: several may be open at once (an analysis merges a rank's
// streams by time), each holding only the blocks open at its current time.
class EventStream
{
public:
    ~EventStream();
    EventStream(const EventStream&) = delete;
    EventStream& operator=(const EventStream&) = delete;
    // The next event; false at the end or on a failure (then error()).
    bool next(RawEvent& out);
    const std::optional<Error>& error() const;

private:
    friend class TraceStore;
    explicit EventStream(std::unique_ptr<detail::TrackReader> r);
    std::unique_ptr<detail::TrackReader> m_reader;
};

struct StoredEvent
{
    int64_t id = 0;
    int64_t track_id = 0;
    TraceRecord record; // rank and track filled from the track
    std::string args;   // JSON object, or empty
};

// One thing to draw in a viewport: an event, or a run of events each too
// small to show at this resolution, folded into one ("N events").
struct DrawItem
{
    int64_t start_ns = 0, end_ns = 0;
    int64_t count = 1;    // 1: an event; more: a folded run
    int64_t event_id = 0; // the event, or the longest of the run
    int64_t name_id = 0;  // the event's, or the longest's: TraceStore::name()
    TraceKind kind = TraceKind::Compute;
    int32_t layer = -1;
    int depth = 0;        // nesting on the track (0 for folded runs)
};

enum class GroupBy
{
    Name,
    Kind,
    Layer,
};

struct Aggregate
{
    std::string key;
    int64_t count = 0;
    int64_t total_ns = 0;
    int64_t bytes = 0;
    double flops = 0;
};

struct Document
{
    int64_t id = 0;
    std::string kind; // "model", "cluster", "strategy"
    std::string name;
    int version = 0;
    std::string created;
    std::string body;
};

class TraceStore;

// Bulk ingest of one run: prepared statements in transactions of
// `commit_every` events (or fewer, when their arguments fill
// TraceStore::kCommitArgsBytes). Until finish(), the run is marked
// incomplete, so a process killed midway leaves earlier runs intact and this
// one flagged. A chunk's transaction opens with the first name or track it
// adds and holds the store's write lock until the chunk commits: feed a
// writer in bulk, not event by event over minutes.
class RunWriter
{
public:
    ~RunWriter();
    int64_t runId() const { return m_run; }
    // The store's id of a (rank, track) of this run, created on first use.
    Result<int64_t> track(int32_t rank, int32_t track, std::string_view name = {}, bool device = false);
    // Renumbers a rank (importers learn a file's rank at its end).
    Result<bool> renameRank(int32_t from, int32_t to);
    // Moves one track (`track` of rank `from`) to rank `to`: a file that
    // holds several ranks (Partita's own export, pid = rank).
    Result<bool> moveTrack(int32_t from, int32_t track, int32_t to);
    // Removes a rank's tracks and events, those stored and those waiting in
    // the chunk (an importer's file that turned out malformed).
    Result<bool> dropRank(int32_t rank);
    Result<bool> add(int64_t trackId, const TraceRecord& r, std::string_view args = {});
    // The same with the event's name given apart (r.name is not read), so
    // that an importer need not copy each name into a record.
    Result<bool> add(int64_t trackId, const TraceRecord& r, std::string_view name, std::string_view args);
    int64_t added() const { return m_added; }
    // Builds the level-of-detail table, stores `meta`, marks the run complete.
    Result<bool> finish(const std::string& meta = {});

private:
    friend class TraceStore;
    RunWriter(TraceStore& s, int64_t run, int64_t commitEvery);
    Result<int64_t> intern(std::string_view s);
    Result<bool> commitChunk();

    struct TrackStats
    {
        int64_t events = 0, start = INT64_MAX, end = INT64_MIN, maxDur = 0, maxSpan = 0;
    };
    // commitChunk's and finish's steps (runwriter.cpp); on failure they leave the transaction open.
    Result<bool> storeBlocks();     // the ordered chunk as event blocks
    Result<bool> storeTrackStats(); // each track's statistics so far
    Result<bool> storeTrackLod(int64_t trackId, const TrackStats& st, detail::Stmt& put, detail::Stmt& upd,
                               detail::Stmt& drop); // one track's level-of-detail table
    // Events wait here until a chunk is full, then go in sorted by track and
    // start: the table is clustered that way, so inserts append.
    struct Pending
    {
        int64_t track, start, id, dur, nameId, op, bytes, corr;
        double flops;
        int32_t kind, layer;
        uint32_t argsLen;
        uint64_t argsAt;
    };
    TraceStore& m_store;
    int64_t m_run = 0;
    int64_t m_added = 0, m_commitEvery = 0, m_nextId = 0;
    bool m_finished = false;
    bool m_inTransaction = false; // a chunk's transaction is open (names and tracks went in)
    Result<bool> begin();          // opens the chunk's transaction unless it is open
    void abandon();                // rolls it back
    std::vector<Pending> m_pending;
    std::vector<uint32_t> m_order; // commitChunk's order of m_pending, kept to reuse its memory
    void orderChunk();             // fills m_order: by track, then start (then id)
    std::string m_args;
    struct StringHash
    {
        using is_transparent = void;
        size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
    };
    std::unordered_map<std::string, int64_t, StringHash, std::equal_to<>> m_names;
    std::unordered_map<int64_t, int64_t> m_trackKey; // rank << 32 | track -> id
    std::unordered_map<int64_t, TrackStats> m_stats;
    struct Statements;
    std::unique_ptr<Statements> m_st;
    struct Checkpointer; // checkpoints the WAL in the background while a file-backed run is written
    std::unique_ptr<Checkpointer> m_checkpointer;
};

class TraceStore
{
public:
    static constexpr int kSchemaVersion = 2;
    // SQLite's application_id of a project ("PART"): the desktop's MIME
    // magic and file(1) tell a .partita file from other SQLite databases by it.
    static constexpr int32_t kApplicationId = 0x50415254;
    static constexpr int64_t kCommitEvery = 65536;
    // A chunk is also committed once its events' arguments reach this many
    // bytes: Kineto events carry 0.3-1 KB of arguments each, and holding 65,536
    // of them made argument text most of an import's memory (heaptrack: 12 of
    // 25 MB peak heap importing a 35 MB trace). 1 MiB instead of 4: peak RSS
    // 24.9 -> 21.2 MiB on that trace, wall time unchanged (A/B 0.99, 15 pairs).
    static constexpr size_t kCommitArgsBytes = size_t(1) << 20;

    // Opens or creates the project; migrates an older schema, refuses a newer one.
    static Result<std::unique_ptr<TraceStore>> open(const std::string& path);
    ~TraceStore();
    TraceStore(const TraceStore&) = delete;
    TraceStore& operator=(const TraceStore&) = delete;

    const std::string& path() const { return m_path; }

    Result<Document> saveDocument(const std::string& kind, const std::string& name, const std::string& body);
    Result<std::vector<Document>> documents(const std::string& kind = {}) const; // every version, newest first
    Result<Document> document(int64_t id) const;
    // Renames every version of a document (kind, name); refused when `to`
    // is taken or nothing is called `from`.
    Result<bool> renameDocuments(const std::string& kind, const std::string& from, const std::string& to);
    // Deletes one version; refused, naming them, while runs refer to it.
    Result<bool> deleteDocument(int64_t id);
    // The layer names of a model document, by layer id (what an event's
    // `layer` names); empty when it is not a readable model (0: none).
    std::vector<std::string> layerNames(int64_t modelDocument) const;
    // How the run's ranks were laid out: the mesh given on import (meta
    // "mesh", as `trace import --mesh` writes it), else its strategy
    // document's; none when neither says.
    std::optional<MeshShape> runMesh(const RunInfo& run) const;

    Result<std::unique_ptr<RunWriter>> beginRun(RunInfo info, int64_t commit_every = kCommitEvery);
    // A whole in-memory trace (a prediction) as one run.
    Result<int64_t> storeTrace(const Trace& trace, RunInfo info, const std::string& meta = {});
    Result<std::vector<RunInfo>> runs() const;
    Result<RunInfo> run(int64_t id) const;
    Result<bool> deleteRun(int64_t id);
    Result<bool> renameRun(int64_t id, const std::string& name);
    // Completes what an importer could not know: the run's kind, status,
    // source, host, documents and meta (a measured run whose ranks failed is
    // kept, marked incomplete).
    Result<bool> annotateRun(int64_t id, const RunInfo& info);

    Result<std::vector<StoredTrack>> tracks(int64_t run) const;
    // Asks the kernel to read the project file into its page cache in the
    // background (posix_fadvise WILLNEED): a view about to query a large run
    // then does not wait on the disk for its first frames. No effect on
    // correctness; false when the file cannot be opened.
    bool prefetch() const;
    // Reads made while one is alive share one read transaction: one snapshot
    // and one pair of file-lock calls instead of one per query (a timeline
    // frame queries every visible track). Nothing when a transaction is
    // already open on this connection.
    class ReadScope
    {
    public:
        explicit ReadScope(const TraceStore& s);
        ~ReadScope();
        ReadScope(const ReadScope&) = delete;
        ReadScope& operator=(const ReadScope&) = delete;

    private:
        const TraceStore& m_store;
        bool m_began = false;
    };
    // Everything to draw of one track between t0 and t1 at `ns_per_pixel`:
    // events wider than `min_pixels` as themselves, runs of narrower ones
    // (with gaps narrower too) folded. Coarse zooms read the LOD table, so
    // the cost follows the pixels, not the events.
    Result<std::vector<DrawItem>> viewport(int64_t track, int64_t t0, int64_t t1, double ns_per_pixel,
                                           double min_pixels = 3) const;
    // One track's events, pulled (the store must outlive the stream).
    Result<std::unique_ptr<EventStream>> stream(int64_t track) const;
    // Every event of a run (or of one track), ordered by track then start.
    Result<bool> forEachEvent(int64_t run, const std::function<void(const StoredEvent&)>& f,
                              std::optional<int64_t> track = {}, bool withArgs = false) const;
    Result<std::vector<Aggregate>> aggregate(int64_t run, GroupBy by, std::optional<TraceKind> kind = {}) const;
    Result<std::vector<StoredEvent>> steps(int64_t run) const;
    Result<std::string> integrityCheck() const;
    Result<std::string> name(int64_t nameId) const;

private:
    friend class RunWriter;
    TraceStore() = default;
    Result<bool> exec(const char* sql) const;
    Error sqlError(const std::string& where) const;

    detail::Stmt& cached(std::unique_ptr<detail::Stmt>& slot, const char* sql) const;
    // viewport's two ways to fill `out` (tracereads.cpp): the level-of-detail buckets at `level`, or the events.
    Result<bool> viewportFromLod(int64_t track, int64_t t0, int64_t t1, double fold, int64_t maxDur, int level,
                                 std::vector<DrawItem>& out) const;
    Result<bool> viewportFromEvents(int64_t track, int64_t t0, int64_t t1, double fold, int64_t maxDur,
                                    std::vector<DrawItem>& out) const;

    std::string m_path;
    sqlite3* m_db = nullptr;
    mutable std::unordered_map<int64_t, std::string> m_nameCache;
    // Prepared once: the viewport runs per track per frame.
    mutable std::unique_ptr<detail::Stmt> m_trackInfo, m_lodQuery, m_rawQuery, m_blockLoad;
};

} // namespace partita
