// The documents of a project file (tracestore.h): models, clusters,
// strategies and calibrations, versioned by kind and name, and kept while a
// run refers to them. Split from tracestore.cpp.
#include "partita/profiler/tracestore.h"

#include "partita/core/mesh.h"
#include "partita/core/modelio.h"
#include "partita/core/units.h"

#include "sqlitestmt.h"

#include <nlohmann/json.hpp>
#include <sqlite3.h>

#include <string>
#include <vector>

namespace partita {

using detail::Stmt;

Result<Document> TraceStore::saveDocument(const std::string& kind, const std::string& name, const std::string& body)
{
    Document d;
    d.kind = kind;
    d.name = name;
    d.body = body;
    d.created = utcTimestamp();
    Stmt q(m_db, "INSERT INTO documents(kind, name, version, created, body) "
                 "VALUES(?1, ?2, (SELECT coalesce(max(version), 0) + 1 FROM documents WHERE kind=?1 AND name=?2), ?3, ?4) "
                 "RETURNING id, version");
    q.bind(1, kind).bind(2, name).bind(3, d.created).bind(4, body);
    if (q.step() != SQLITE_ROW)
        return sqlError("saving " + kind + " '" + name + "'");
    d.id = q.int64(0);
    d.version = q.int32(1);
    return d;
}

Result<std::vector<Document>> TraceStore::documents(const std::string& kind) const
{
    Stmt q(m_db, "SELECT id, kind, name, version, created, body FROM documents WHERE ?1 = '' OR kind = ?1 "
                 "ORDER BY kind, name, version DESC");
    q.bind(1, kind);
    std::vector<Document> out;
    int rc;
    while ((rc = q.step()) == SQLITE_ROW)
        out.push_back({q.int64(0), q.text(1), q.text(2), q.int32(3), q.text(4), q.text(5)});
    if (rc != SQLITE_DONE)
        return sqlError("documents");
    return out;
}

Result<Document> TraceStore::document(int64_t id) const
{
    Stmt q(m_db, "SELECT id, kind, name, version, created, body FROM documents WHERE id = ?1");
    q.bind(1, id);
    if (q.step() != SQLITE_ROW)
        return Error{m_path, "document " + std::to_string(id), "no such document"};
    return Document{q.int64(0), q.text(1), q.text(2), q.int32(3), q.text(4), q.text(5)};
}

Result<bool> TraceStore::renameDocuments(const std::string& kind, const std::string& from, const std::string& to)
{
    if (to.empty())
        return Error{m_path, kind + " '" + from + "'", "a name cannot be empty"};
    if (from == to)
        return true;
    Stmt taken(m_db, "SELECT count(*) FROM documents WHERE kind = ?1 AND name = ?2");
    taken.bind(1, kind).bind(2, to);
    if (taken.step() != SQLITE_ROW)
        return sqlError("renaming " + kind + " '" + from + "'");
    if (taken.int64(0) > 0)
        return Error{m_path, kind + " '" + from + "'", "'" + to + "' is already the name of a " + kind};
    Stmt q(m_db, "UPDATE documents SET name = ?3 WHERE kind = ?1 AND name = ?2");
    q.bind(1, kind).bind(2, from).bind(3, to);
    if (q.step() != SQLITE_DONE)
        return sqlError("renaming " + kind + " '" + from + "'");
    if (sqlite3_changes(m_db) == 0)
        return Error{m_path, kind + " '" + from + "'", "no such " + kind};
    return true;
}

Result<bool> TraceStore::deleteDocument(int64_t id)
{
    auto d = document(id);
    if (!d)
        return d.error();
    Stmt users(m_db, "SELECT id FROM runs WHERE model_id = ?1 OR cluster_id = ?1 OR strategy_id = ?1 ORDER BY id");
    users.bind(1, id);
    std::string ids;
    int n = 0;
    while (users.step() == SQLITE_ROW) {
        if (n++ < 10)
            ids += (ids.empty() ? "" : ", ") + std::to_string(users.int64(0));
    }
    if (n > 0)
        return Error{m_path, d->kind + " '" + d->name + "' v" + std::to_string(d->version),
                     std::to_string(n) + " run(s) were made with it (" + ids + (n > 10 ? ", ..." : "") +
                         "): delete them first, or keep it"};
    Stmt q(m_db, "DELETE FROM documents WHERE id = ?1");
    q.bind(1, id);
    if (q.step() != SQLITE_DONE)
        return sqlError("deleting document " + std::to_string(id));
    return true;
}

std::vector<std::string> TraceStore::layerNames(int64_t modelDocument) const
{
    std::vector<std::string> out;
    if (modelDocument <= 0)
        return out;
    if (auto d = document(modelDocument))
        if (auto m = modelFromJson(d->body))
            for (const Layer& l : m->layers)
                out.push_back(l.name);
    return out;
}

std::optional<MeshShape> TraceStore::runMesh(const RunInfo& run) const
{
    // Given on import (trace import --mesh) first: it says how the job ran.
    if (!run.meta.empty()) {
        const auto meta = nlohmann::json::parse(run.meta, nullptr, false);
        if (meta.is_object() && meta.contains("mesh") && meta["mesh"].is_string())
            if (auto m = parseMesh(meta["mesh"].get<std::string>()))
                return *m;
    }
    if (run.strategy_id <= 0)
        return std::nullopt;
    auto d = document(run.strategy_id);
    if (!d)
        return std::nullopt;
    const auto j = nlohmann::json::parse(d->body, nullptr, false);
    if (!j.is_object() || !j.contains("mesh") || !j["mesh"].is_object())
        return std::nullopt;
    MeshShape m;
    for (auto [name, slot] : {std::pair{"dp", &m.dp}, {"tp", &m.tp}, {"pp", &m.pp}, {"cp", &m.cp}, {"ep", &m.ep}})
        if (const auto it = j["mesh"].find(name); it != j["mesh"].end() && it->is_number_integer() && it->get<int>() >= 1)
            *slot = it->get<int>();
    if (m.dp % m.ep != 0)
        return std::nullopt;
    return m;
}

} // namespace partita
