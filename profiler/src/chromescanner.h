#pragma once
// Chrome trace JSON split into its event elements as the file streams in
// (chromeimport.cpp): the Scanner hands whole elements over in Batches and
// keeps the rest of the document as a skeleton; a helper thread reads each
// element into a Parsed event. Split from chromeimport.cpp.

#include "partita/core/result.h"
#include "partita/core/trace.h"

#include <simdjson.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace partita::detail {

// What the helper thread reads out of one event element; the importer's
// thread then judges it (warnings, B/E pairs, metadata) and stores it.
struct Parsed
{
    int64_t ts = 0, dur = 0, stream = -1, correlation = -1, layer = -1, op = -1, bytes = 0, nelems = -1;
    double flops = 0;
    std::string_view args;      // the "args" object's text, in the batch
    uint32_t ph[2]{}, name[2]{}, pid[2]{}, tid[2]{}, metaName[2]{}; // offset and length in Batch::strings
    int dtype = 0;
    TraceKind catKind = TraceKind::Annotation;
    bool hasCat = false, catGpu = false, catTrace = false, catGpuAnnotation = false;
    bool hasTs = false, badTs = false, hasDur = false, durOk = false, nonStringName = false;
    std::optional<TraceKind> ownKind;
};

// A run of whole event elements from the scanner, with what was read out
// of them. One batch is parsed on a helper thread while the importer's
// thread reads and scans the next and stores the one before: the two halves
// of an import take about the same time, and this machine has two cores.
struct Batch
{
    std::string text;                               // elements, one per line, then simdjson's padding
    size_t length = 0, largest = 0;                 // bytes of elements; the longest element
    std::vector<std::pair<size_t, int64_t>> starts; // text position -> file offset of each element
    std::string strings;                            // ph, names, pids and tids of the events
    std::vector<Parsed> events;
    std::optional<Error> error; // where reading stopped, after `events`

    std::string_view str(const uint32_t (&s)[2]) const { return std::string_view(strings).substr(s[0], s[1]); }
};

// Splits a Chrome trace into the text of each element of its event array
// (handed over in batches) and a small skeleton: everything else, with the
// array emptied, parsed at the end for distributedInfo and friends.
class Scanner
{
public:
    std::string batch;                  // elements, one per line
    std::vector<std::pair<size_t, int64_t>> starts; // batch position -> file offset of each element
    std::string skeleton;
    size_t largest = 0;
    size_t complete = 0; // batch bytes that hold whole elements (an element may be half read after them)
    int64_t notObjects = 0;

    // Returns false with `error` set on a structural error.
    bool feed(const char* p, size_t n)
    {
        size_t seg = 0; // start of the element's bytes in this chunk
        for (size_t i = 0; i < n; ++i) {
            if (m_inElement) {
                const size_t close = skimElement(p, n, i);
                if (close == n) {
                    i = n - 1;
                    continue;
                }
                batch.append(p + seg, close + 1 - seg);
                batch += '\n';
                largest = std::max(largest, batch.size() - m_elemBatchStart);
                complete = batch.size();
                m_inElement = false;
                m_expectElement = false;
                i = close;
                continue;
            }
            const char c = p[i];
            if (m_inString) {
                if (m_escape)
                    m_escape = false;
                else if (c == '\\')
                    m_escape = true;
                else if (c == '"')
                    m_inString = false;
                skeletonChar(c);
                if (m_inString && m_depth == 1 && m_key.size() < 64)
                    m_key += c;
                continue;
            }
            if (c == ' ' || c == '\n' || c == '\r' || c == '\t') {
                if (m_depth < m_eventsDepth || m_eventsDepth < 0)
                    skeletonChar(c);
                continue;
            }
            if (m_depth == m_eventsDepth) {
                if (c == ',') {
                    m_expectElement = true;
                    continue;
                }
                if (c == ']') {
                    --m_depth;
                    m_eventsDepth = -1;
                    skeletonChar(c);
                    continue;
                }
                if (c == '{') {
                    m_inElement = true;
                    ++m_depth;
                    seg = i;
                    m_elemBatchStart = batch.size();
                    starts.emplace_back(batch.size(), m_offset + int64_t(i));
                    continue;
                }
                // A string, number, array or literal where an event object belongs.
                if (m_expectElement) {
                    ++notObjects;
                    m_expectElement = false;
                }
                if (c == '"')
                    m_inString = true; // skipped with its contents
                else if (c == '[' || c == '{')
                    return fail("an event array element that is not an object holds nested values");
                continue;
            }
            skeletonChar(c);
            switch (c) {
            case '"':
                m_inString = true;
                if (m_depth == 1)
                    m_key.clear();
                break;
            case ':':
                if (m_depth == 1)
                    m_pendingKey = m_key;
                break;
            case '{':
            case '[':
                if (m_depth == 0 && m_top == 0) {
                    m_top = c;
                    ++m_depth;
                    if (c == '[') { // the JSON Array Format: the file is the event array
                        m_eventsDepth = 1;
                        m_expectElement = true;
                    }
                    break;
                }
                if (m_depth == 0)
                    return fail("more than one JSON value at the top level");
                ++m_depth;
                if (m_depth == 2 && c == '[' && m_pendingKey == "traceEvents" && m_top == '{') {
                    m_eventsDepth = 2;
                    m_expectElement = true;
                    m_sawEvents = true;
                }
                m_pendingKey.clear();
                break;
            case '}':
            case ']':
                if (m_depth == 0)
                    return fail("unbalanced closing bracket");
                --m_depth;
                break;
            default:
                if (m_depth == 0)
                    return fail("not a JSON object or array");
                break;
            }
        }
        if (m_inElement)
            batch.append(p + seg, n - seg);
        m_offset += int64_t(n);
        return true;
    }

    // Moves the whole elements into `b`; a half-read one stays. The batch's
    // old buffer becomes the scanner's (no allocation once both are grown).
    void take(Batch& b)
    {
        const size_t n = complete;
        b.text.swap(batch);
        batch.assign(b.text, n, std::string::npos);
        b.text.resize(n);
        b.text.reserve(n + simdjson::SIMDJSON_PADDING); // here, not on the helper thread (its own malloc arena)
        b.length = n;
        b.largest = largest;
        b.starts.clear();
        size_t keep = 0;
        for (auto& st : starts)
            if (st.first < n)
                b.starts.push_back(st);
            else
                starts[keep++] = {st.first - n, st.second};
        starts.resize(keep);
        if (m_elemBatchStart >= n)
            m_elemBatchStart -= n;
        complete = 0;
        largest = batch.size();
    }
    bool finished() const { return m_top != 0 && m_depth == 0 && !m_inString; }
    bool empty() const { return m_top == 0; }
    bool sawEvents() const { return m_sawEvents || m_top == '['; }
    int64_t offset() const { return m_offset; }
    const std::string& error() const { return m_error; }

private:
    // Inside an event element: follows strings, escapes and brackets from
    // byte i and returns the position of the bracket that closes the element,
    // or n when the chunk ends first (the state carries over to the next
    // chunk). 64 bytes at a time where they hold no backslash: which bytes
    // are inside strings follows from the quotes' running parity (a prefix
    // XOR), so only the brackets outside strings are looked at one by one.
    // Bytes '{' '[' and '}' ']' are told by (c | 0x20) == '{' or '}'.
    size_t skimElement(const char* p, size_t n, size_t i)
    {
        size_t skip = i; // bytes before this are consumed (an escaped character)
        if (m_escape) {
            skip = i + 1;
            m_escape = false;
        }
        auto at = [&](size_t pos) -> bool { // true when pos closes the element
            const char c = p[pos];
            if (m_inString) {
                if (c == '\\')
                    skip = pos + 2;
                else if (c == '"')
                    m_inString = false;
                return false;
            }
            if (c == '"') {
                m_inString = true;
            } else if (c == '{' || c == '[') {
                ++m_depth;
            } else if (c == '}' || c == ']') {
                --m_depth;
                return m_depth == m_eventsDepth;
            }
            return false;
        };
        auto scalar = [&](size_t from, size_t to) -> size_t {
            for (size_t k = from; k < to; ++k) {
                const char c = p[k];
                if ((c == '"' || c == '\\' || c == '{' || c == '}' || c == '[' || c == ']') && k >= skip && at(k))
                    return k;
            }
            return to;
        };
#if defined(__SSE2__)
        const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\'), lower = _mm_set1_epi8(0x20),
                      open = _mm_set1_epi8('{'), close = _mm_set1_epi8('}');
        for (; i + 64 <= n; i += 64) {
            uint64_t quotes = 0, escapes = 0, opens = 0, closes = 0;
            for (int k = 0; k < 4; ++k) {
                const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i + 16 * size_t(k)));
                const __m128i folded = _mm_or_si128(v, lower);
                quotes |= uint64_t(uint32_t(_mm_movemask_epi8(_mm_cmpeq_epi8(v, quote)))) << (16 * k);
                escapes |= uint64_t(uint32_t(_mm_movemask_epi8(_mm_cmpeq_epi8(v, backslash)))) << (16 * k);
                opens |= uint64_t(uint32_t(_mm_movemask_epi8(_mm_cmpeq_epi8(folded, open)))) << (16 * k);
                closes |= uint64_t(uint32_t(_mm_movemask_epi8(_mm_cmpeq_epi8(folded, close)))) << (16 * k);
            }
            if (escapes || skip > i) { // escapes (rare in traces): byte by byte
                const size_t end = scalar(i, i + 64);
                if (end < i + 64)
                    return end;
                continue;
            }
            uint64_t inside = quotes; // bit k: byte k is in a string (an opening quote counts as in)
            inside ^= inside << 1;
            inside ^= inside << 2;
            inside ^= inside << 4;
            inside ^= inside << 8;
            inside ^= inside << 16;
            inside ^= inside << 32;
            if (m_inString)
                inside = ~inside;
            uint64_t brackets = (opens | closes) & ~inside;
            while (brackets) {
                const int bit = __builtin_ctzll(brackets);
                brackets &= brackets - 1;
                if (opens >> bit & 1) {
                    ++m_depth;
                } else if (--m_depth == m_eventsDepth) {
                    m_inString = false;
                    return i + size_t(bit);
                }
            }
            m_inString = inside >> 63;
        }
#endif
        const size_t end = scalar(i, n);
        if (end < n)
            return end;
        if (skip > n) // the chunk ends on a backslash in a string
            m_escape = true;
        return n;
    }

    bool fail(const std::string& what)
    {
        m_error = what;
        return false;
    }
    void skeletonChar(char c)
    {
        if (skeleton.size() < (64u << 20))
            skeleton += c;
    }

    int m_depth = 0, m_eventsDepth = -1;
    char m_top = 0;
    bool m_inString = false, m_escape = false, m_inElement = false, m_expectElement = false, m_sawEvents = false;
    std::string m_key, m_pendingKey, m_error;
    size_t m_elemBatchStart = 0;
    int64_t m_offset = 0;
};

} // namespace partita::detail
