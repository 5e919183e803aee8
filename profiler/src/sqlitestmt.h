#pragma once
// A prepared SQLite statement that finalizes itself; bind() chains.

#include <sqlite3.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace partita::detail {

class Stmt
{
public:
    Stmt(sqlite3* db, const char* sql) { sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &m_s, nullptr); }
    ~Stmt() { sqlite3_finalize(m_s); }
    Stmt(const Stmt&) = delete;
    Stmt& operator=(const Stmt&) = delete;

    bool ok() const { return m_s != nullptr; }
    int step() { return m_s ? sqlite3_step(m_s) : SQLITE_MISUSE; }
    void reset()
    {
        if (!m_s)
            return; // never prepared (a project without the table, say): step() reports the misuse
        sqlite3_reset(m_s);
        sqlite3_clear_bindings(m_s);
    }
    Stmt& bind(int i, int64_t v)
    {
        sqlite3_bind_int64(m_s, i, v);
        return *this;
    }
    Stmt& bind(int i, double v)
    {
        sqlite3_bind_double(m_s, i, v);
        return *this;
    }
    Stmt& bind(int i, std::string_view v)
    {
        sqlite3_bind_text(m_s, i, v.data() ? v.data() : "", int(v.size()), SQLITE_TRANSIENT);
        return *this;
    }
    Stmt& bind(int i, const std::string& v) { return bind(i, std::string_view(v)); }
    Stmt& bind(int i, const char* v) { return bind(i, std::string_view(v)); }
    Stmt& bindNull(int i)
    {
        sqlite3_bind_null(m_s, i);
        return *this;
    }
    int64_t int64(int c) const { return sqlite3_column_int64(m_s, c); }
    int32_t int32(int c) const { return sqlite3_column_int(m_s, c); }
    double dbl(int c) const { return sqlite3_column_double(m_s, c); }
    Stmt& bindBlob(int i, std::string_view v)
    {
        sqlite3_bind_blob(m_s, i, v.data() ? v.data() : "", int(v.size()), SQLITE_TRANSIENT);
        return *this;
    }
    // Valid until the next step or reset.
    std::string_view blob(int c) const
    {
        const void* p = sqlite3_column_blob(m_s, c);
        return p ? std::string_view(static_cast<const char*>(p), size_t(sqlite3_column_bytes(m_s, c))) : std::string_view();
    }
    std::string text(int c) const
    {
        const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(m_s, c));
        return p ? std::string(p, size_t(sqlite3_column_bytes(m_s, c))) : std::string();
    }

private:
    sqlite3_stmt* m_s = nullptr;
};

} // namespace partita::detail
