#pragma once
// Errors as values at library boundaries: every importer returns a Result that
// holds either the value or an Error naming the file, the place and the cause.

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace partita {

struct Error
{
    std::string file;    // path or a label such as "<preset>"; may be empty
    std::string where;   // "line 3, column 7", "/layers/2/params/0/shape", "node 'Conv_3'"
    std::string message; // what is wrong

    // One line: "file: where: message", omitting empty parts.
    std::string str() const;
};

template <class T>
class [[nodiscard]] Result
{
public:
    Result(T value) : m_v(std::in_place_index<0>, std::move(value)) {}
    Result(Error error) : m_v(std::in_place_index<1>, std::move(error)) {}

    bool ok() const { return m_v.index() == 0; }
    explicit operator bool() const { return ok(); }

    T& value() &
    {
        assert(ok());
        return std::get<0>(m_v);
    }
    const T& value() const&
    {
        assert(ok());
        return std::get<0>(m_v);
    }
    T&& value() &&
    {
        assert(ok());
        return std::get<0>(std::move(m_v));
    }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }

    const Error& error() const
    {
        assert(!ok());
        return std::get<1>(m_v);
    }

private:
    std::variant<T, Error> m_v;
};

} // namespace partita
