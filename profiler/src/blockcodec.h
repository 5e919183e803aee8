#pragma once
// Compact blocks of events and of level-of-detail buckets, stored one block
// per SQLite row so that a store row holds thousands of events: LEB128
// varints, start times as deltas, optional fields behind a flag byte, event
// arguments zlib-compressed. Private to the profiler.

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace partita::detail {

inline void putVarint(std::string& out, uint64_t v)
{
    while (v >= 0x80) {
        out += char(uint8_t(v) | 0x80);
        v >>= 7;
    }
    out += char(uint8_t(v));
}
inline uint64_t zigzag(int64_t v) { return (uint64_t(v) << 1) ^ uint64_t(v >> 63); }
inline int64_t unzigzag(uint64_t v) { return int64_t(v >> 1) ^ -int64_t(v & 1); }

class Reader
{
public:
    Reader(std::string_view s) : m_p(reinterpret_cast<const uint8_t*>(s.data())), m_end(m_p + s.size()) {}
    bool ok() const { return m_ok; }
    bool done() const { return m_p >= m_end; }
    size_t remaining() const { return size_t(m_end - m_p); }
    uint64_t varint()
    {
        uint64_t v = 0;
        for (int shift = 0; shift < 64; shift += 7) {
            if (m_p >= m_end) {
                m_ok = false;
                return 0;
            }
            const uint8_t b = *m_p++;
            v |= uint64_t(b & 0x7f) << shift;
            if (!(b & 0x80))
                return v;
        }
        m_ok = false;
        return 0;
    }
    int64_t svarint() { return unzigzag(varint()); }
    uint8_t byte()
    {
        if (m_p >= m_end) {
            m_ok = false;
            return 0;
        }
        return *m_p++;
    }
    double dbl()
    {
        double d = 0;
        if (m_end - m_p < 8) {
            m_ok = false;
            return 0;
        }
        std::memcpy(&d, m_p, 8);
        m_p += 8;
        return d;
    }
    std::string_view bytes(size_t n)
    {
        if (size_t(m_end - m_p) < n) {
            m_ok = false;
            return {};
        }
        std::string_view s(reinterpret_cast<const char*>(m_p), n);
        m_p += n;
        return s;
    }

private:
    const uint8_t* m_p;
    const uint8_t* m_end;
    bool m_ok = true;
};

// One event as stored in a block (the track is the block's).
struct BlockEvent
{
    int64_t start = 0, dur = 0, id = 0, nameId = 0, op = -1, bytes = 0, corr = -1;
    double flops = 0;
    int32_t kind = 0, layer = -1;
    uint32_t argsLen = 0;
    uint64_t argsAt = 0; // into the writer's argument buffer
};

enum : uint8_t
{
    kHasLayer = 1,
    kHasOp = 2,
    kHasBytes = 4,
    kHasFlops = 8,
    kHasCorr = 16,
    kHasArgs = 32,
};

// events: sorted by (start, id); ids ascending within equal starts.
inline std::string encodeEvents(const BlockEvent* ev, size_t n)
{
    std::string out;
    out.reserve(n * 12);
    putVarint(out, n);
    int64_t prevStart = ev[0].start, prevId = ev[0].id;
    putVarint(out, zigzag(prevStart));
    putVarint(out, zigzag(prevId));
    for (size_t i = 0; i < n; ++i) {
        const BlockEvent& e = ev[i];
        uint8_t flags = 0;
        flags |= e.layer >= 0 ? kHasLayer : 0;
        flags |= e.op >= 0 ? kHasOp : 0;
        flags |= e.bytes ? kHasBytes : 0;
        flags |= e.flops != 0 ? kHasFlops : 0;
        flags |= e.corr >= 0 ? kHasCorr : 0;
        flags |= e.argsLen ? kHasArgs : 0;
        out += char(flags);
        putVarint(out, uint64_t(e.start - prevStart)); // sorted: never negative
        putVarint(out, zigzag(e.id - prevId));
        prevStart = e.start;
        prevId = e.id;
        putVarint(out, zigzag(e.dur));
        putVarint(out, uint64_t(e.kind));
        putVarint(out, uint64_t(e.nameId));
        if (flags & kHasLayer)
            putVarint(out, uint64_t(e.layer));
        if (flags & kHasOp)
            putVarint(out, uint64_t(e.op));
        if (flags & kHasBytes)
            putVarint(out, zigzag(e.bytes));
        if (flags & kHasFlops) {
            char b[8];
            std::memcpy(b, &e.flops, 8);
            out.append(b, 8);
        }
        if (flags & kHasCorr)
            putVarint(out, uint64_t(e.corr));
    }
    return out;
}

// Decodes into `out` (appending); `hasArgs` receives, per event, whether it
// has arguments. Stops before the first event that starts at `stopAt` or later.
inline bool decodeEvents(std::string_view data, std::vector<BlockEvent>& out, std::vector<bool>* hasArgs = nullptr,
                         int64_t stopAt = INT64_MAX)
{
    Reader r(data);
    const uint64_t n = r.varint();
    int64_t start = r.svarint(), id = r.svarint();
    if (!r.ok() || n > (uint64_t(1) << 24))
        return false;
    out.reserve(out.size() + n);
    for (uint64_t i = 0; i < n && r.ok(); ++i) {
        BlockEvent e;
        const uint8_t flags = r.byte();
        start += int64_t(r.varint());
        if (start >= stopAt)
            break;
        id += r.svarint();
        e.start = start;
        e.id = id;
        e.dur = r.svarint();
        e.kind = int32_t(r.varint());
        e.nameId = int64_t(r.varint());
        if (flags & kHasLayer)
            e.layer = int32_t(r.varint());
        if (flags & kHasOp)
            e.op = int64_t(r.varint());
        if (flags & kHasBytes)
            e.bytes = r.svarint();
        if (flags & kHasFlops)
            e.flops = r.dbl();
        if (flags & kHasCorr)
            e.corr = int64_t(r.varint());
        if (hasArgs)
            hasArgs->push_back(flags & kHasArgs);
        out.push_back(e);
    }
    return r.ok();
}

// A level-of-detail bucket.
struct LodBucket
{
    int64_t bucket = 0, start = 0, end = 0, count = 0, longestId = 0, longestDur = 0, nameId = 0;
    int32_t kind = 0, layer = -1;
};

inline std::string encodeBuckets(const LodBucket* b, size_t n)
{
    std::string out;
    out.reserve(n * 12);
    putVarint(out, n);
    int64_t prevBucket = 0, prevStart = 0, prevId = 0;
    for (size_t i = 0; i < n; ++i) {
        const LodBucket& x = b[i];
        putVarint(out, zigzag(x.bucket - prevBucket));
        putVarint(out, zigzag(x.start - prevStart));
        putVarint(out, zigzag(x.end - x.start));
        putVarint(out, uint64_t(x.count));
        putVarint(out, zigzag(x.longestId - prevId));
        putVarint(out, zigzag(x.longestDur));
        putVarint(out, uint64_t(x.nameId));
        putVarint(out, uint64_t(x.kind));
        putVarint(out, zigzag(x.layer));
        prevBucket = x.bucket;
        prevStart = x.start;
        prevId = x.longestId;
    }
    return out;
}

// Stops before the first bucket past `stopAfter`.
inline bool decodeBuckets(std::string_view data, std::vector<LodBucket>& out, int64_t stopAfter = INT64_MAX)
{
    Reader r(data);
    const uint64_t n = r.varint();
    if (!r.ok() || n > (uint64_t(1) << 24))
        return false;
    int64_t bucket = 0, start = 0, id = 0;
    out.reserve(out.size() + n);
    for (uint64_t i = 0; i < n && r.ok(); ++i) {
        LodBucket x;
        bucket += r.svarint();
        if (bucket > stopAfter)
            break;
        start += r.svarint();
        x.bucket = bucket;
        x.start = start;
        x.end = start + r.svarint();
        x.count = int64_t(r.varint());
        id += r.svarint();
        x.longestId = id;
        x.longestDur = r.svarint();
        x.nameId = int64_t(r.varint());
        x.kind = int32_t(r.varint());
        x.layer = int32_t(r.svarint());
        out.push_back(x);
    }
    return r.ok();
}

} // namespace partita::detail
