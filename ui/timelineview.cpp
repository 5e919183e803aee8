#include "timelineview.h"

#include "partita/core/units.h"

#include <QKeyEvent>
#include <QPaintEngine>
#include <QPainter>
#include <QPen>
#include <QScrollBar>
#include <QStaticText>
#include <QTimer>
#include <QToolTip>
#include <QWheelEvent>
#include <QtConcurrent/QtConcurrentRun>

#include <algorithm>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#include <atomic>
#include <filesystem>
#include <optional>
#include <map>
#include <cmath>

namespace partita {

namespace {

// One colour per kind, readable on light and dark backgrounds; folded runs
// of events a lighter shade with a darker edge. Computed once: converting
// colours per item showed up in every frame's profile.
QColor baseColor(TraceKind k)
{
    switch (k) {
    case TraceKind::Kernel: return QColor(66, 133, 244);
    case TraceKind::Compute: return QColor(52, 120, 200);
    case TraceKind::Collective: return QColor(234, 134, 0);
    case TraceKind::P2P: return QColor(214, 72, 58);
    case TraceKind::Memcpy: return QColor(52, 168, 83);
    case TraceKind::Memset: return QColor(0, 150, 136);
    case TraceKind::Runtime: return QColor(170, 140, 40);
    case TraceKind::Annotation: return QColor(150, 150, 150);
    case TraceKind::Step: return QColor(142, 68, 173);
    case TraceKind::CpuOp: return QColor(120, 144, 156);
    }
    return QColor(128, 128, 128);
}

struct KindColors
{
    QColor event, folded, edge;
};

const KindColors& kindColors(TraceKind k)
{
    static const std::vector<KindColors> table = [] {
        std::vector<KindColors> t;
        for (int i = 0; i <= int(TraceKind::CpuOp); ++i) {
            const QColor c = baseColor(TraceKind(i));
            t.push_back({c, c.lighter(140), c.darker(125)});
        }
        return t;
    }();
    const size_t i = size_t(k);
    return table[i < table.size() ? i : 0];
}

// A colour per model layer: hues spread by the golden angle, so that
// neighbouring layers differ; events without a layer grey.
const KindColors& layerColors(int32_t layer)
{
    static std::unordered_map<int32_t, KindColors> cache;
    auto it = cache.find(layer);
    if (it != cache.end())
        return it->second;
    QColor c = layer < 0 ? QColor(150, 150, 150) : QColor::fromHsvF(std::fmod(layer * 0.618033988749895, 1.0), 0.55, 0.85);
    return cache.emplace(layer, KindColors{c, c.lighter(140), c.darker(125)}).first->second;
}

// n pixels of one colour. GCC 12 at -O2 left std::fill on 32-bit pixels a
// scalar store loop, a fifth of a timeline frame (perf); SSE2 is part of
// x86-64's baseline.
inline void fill32(QRgb* p, int n, QRgb c)
{
    int i = 0;
#if defined(__SSE2__)
    const __m128i v = _mm_set1_epi32(int(c));
    for (; i + 16 <= n; i += 16) {
        _mm_storeu_si128(reinterpret_cast<__m128i*>(p + i), v);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(p + i + 4), v);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(p + i + 8), v);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(p + i + 12), v);
    }
    for (; i + 4 <= n; i += 4)
        _mm_storeu_si128(reinterpret_cast<__m128i*>(p + i), v);
#endif
    for (; i < n; ++i)
        p[i] = c;
}


} // namespace

TimelineView::TimelineView(QWidget* parent) : QAbstractScrollArea(parent)
{
    m_helperPool.setMaxThreadCount(1);
    setFocusPolicy(Qt::StrongFocus);
    viewport()->setMouseTracking(true);
    viewport()->setAttribute(Qt::WA_OpaquePaintEvent); // every pixel is painted: no background fill first
    setHorizontalScrollBarPolicy(Qt::ScrollBarAlwaysOff);
    verticalScrollBar()->setSingleStep(kRowHeight);
}

void TimelineView::setRun(const TraceStore* store, int64_t run)
{
    // A second connection to the same project file for the helper thread.
    if (!store || !m_store || store->path() != m_store->path() || !m_helperStore) {
        m_helperStore.reset();
        std::error_code ec;
        if (store && run && std::filesystem::is_regular_file(store->path(), ec))
            if (auto helper = TraceStore::open(store->path()))
                m_helperStore = std::move(*helper);
    }
    if (store && run && (store != m_store || run != m_run))
        (void)store->prefetch(); // the kernel reads the file ahead while the first frames are drawn
    m_store = store;
    m_run = run;
    m_tracks.clear();
    m_names.clear();
    m_labelMasks.clear();
    m_trackTitles.clear();
    m_searchHits.clear();
    m_measure = {0, 0};
    m_error.clear();
    m_errorShown = false;
    m_painted.clear();
    m_steps.clear();
    m_highlight = -1;
    m_selected = 0;
    if (store && run) {
        auto tracks = store->tracks(run);
        auto info = store->run(run);
        if (!tracks || !info) {
            m_error = QString::fromStdString((!tracks ? tracks.error() : info.error()).str());
            emit errorOccurred(m_error);
        } else {
            m_tracks = *tracks;
            m_offsets.clear();
            fitRange();
            const std::optional<MeshShape> mesh = store->runMesh(*info);
            if (mesh != m_mesh) {
                m_mesh = mesh;
                if (m_groupBy && !canGroupBy(*m_groupBy))
                    m_groupBy.reset();
                emit groupingChanged();
            }
        }
    }
    m_axis.setWidth(std::max(1, viewport()->width() - kGutter));
    m_axis.fit();
    m_memory = {};
    m_heat = {};
    m_heatRun = 0;
    refreshGroups();
    m_groupCollapsed.clear();
    layoutRows();
    loadMemory();
    loadHeat();
    viewport()->update();
    emit viewChanged();
}

void TimelineView::setRankCollapsed(int32_t rank, bool collapsed)
{
    m_collapsed[rank] = collapsed;
    layoutRows();
    viewport()->update();
}

void TimelineView::updateScrollBars()
{
    const int content = m_rows.empty() ? 0 : m_rows.back().top + m_rows.back().height;
    const int visible = std::max(0, viewport()->height() - kRuler);
    verticalScrollBar()->setRange(0, std::max(0, content - visible));
    verticalScrollBar()->setPageStep(visible);
}

QString TimelineView::nameOf(int64_t nameId) const
{
    if (auto it = m_names.find(nameId); it != m_names.end())
        return it->second;
    QString n;
    if (m_store)
        if (auto s = m_store->name(nameId))
            n = QString::fromStdString(*s);
    m_names.emplace(nameId, n);
    return n;
}

// A frame's pixels: the window's backing store when the painter draws on
// one, else m_canvas; filled as scanline spans, per device pixel ratio.
struct TimelineView::Canvas
{
    uchar* bits = nullptr;
    qsizetype stride = 0;
    qreal dpr = 1;
    QSize devSize;

    int px(double v) const { return int(std::floor(v * dpr + 0.5)); }
    QRgb* line(int y) const { return reinterpret_cast<QRgb*>(bits + y * stride); }

    // Pixels whose centres the rectangle covers, at least one wide and high.
    void fillSpan(const QRectF& r, const QRect& clip, QRgb c) const
    {
        int x0 = px(r.left()), x1 = std::max(x0 + 1, px(r.right()));
        int y0 = px(r.top()), y1 = std::max(y0 + 1, px(r.bottom()));
        x0 = std::max({x0, px(clip.left()), 0});
        x1 = std::min({x1, px(clip.right() + 1), devSize.width()});
        y0 = std::max({y0, px(clip.top()), 0});
        y1 = std::min({y1, px(clip.bottom() + 1), devSize.height()});
        for (int y = y0; y < y1; ++y)
            fill32(line(y) + x0, x1 - x0, c);
    }

    // A label's glyph coverage blended white into the image up to the room
    // its event leaves, fading out where it is cut.
    void blendLabel(const QImage& mask, double lx, double ly, double room, const QRect& clip) const
    {
        const int dx0 = px(lx), dy0 = px(ly);
        const int mw = std::min(mask.width(), int(room * dpr));
        const int fade = mask.width() > mw ? std::min(mw, int(12 * dpr)) : 0;
        const int cx0 = std::max(px(clip.left()), 0), cx1 = std::min(px(clip.right() + 1), devSize.width());
        const int cy0 = std::max(px(clip.top()), 0), cy1 = std::min(px(clip.bottom() + 1), devSize.height());
        const int mx0 = std::max(0, cx0 - dx0), mx1 = std::min(mw, cx1 - dx0);
        for (int my = std::max(0, cy0 - dy0); my < mask.height() && dy0 + my < cy1; ++my) {
            const uchar* m = mask.constScanLine(my);
            QRgb* l = line(dy0 + my) + dx0;
            for (int mx = mx0; mx < mx1; ++mx) {
                int a = m[mx];
                if (!a)
                    continue;
                if (mx >= mw - fade)
                    a = a * (mw - mx) / (fade + 1);
                const QRgb d = l[mx];
                l[mx] = qRgb(qRed(d) + ((255 - qRed(d)) * a >> 8), qGreen(d) + ((255 - qGreen(d)) * a >> 8),
                             qBlue(d) + ((255 - qBlue(d)) * a >> 8));
            }
        }
    }

    // A line across the tracks (from the ruler down, right of the gutter),
    // blended in: alpha-blended QPainter pens over the full height were a
    // tenth of a frame.
    void blendVLine(double x, QRgb c, int alpha, int dashOn, int dashOff) const
    {
        const int x0 = px(x), x1 = std::min(devSize.width(), x0 + std::max(1, int(dpr)));
        if (x0 < px(kGutter))
            return;
        const int y0 = px(kRuler);
        const int on = int(dashOn * dpr), period = int((dashOn + dashOff) * dpr);
        for (int y = y0; y < devSize.height(); ++y) {
            if (dashOff && (y - y0) % period >= on)
                continue;
            QRgb* l = line(y);
            for (int xi = x0; xi < x1; ++xi) {
                const QRgb d = l[xi];
                l[xi] = qRgb((qRed(c) * alpha + qRed(d) * (255 - alpha)) / 255, (qGreen(c) * alpha + qGreen(d) * (255 - alpha)) / 255,
                             (qBlue(c) * alpha + qBlue(d) * (255 - alpha)) / 255);
            }
        }
    }
};

void TimelineView::paintEvent(QPaintEvent*)
{
    QPainter p(viewport());
    const QPalette pal = palette();
    m_painted.clear();
    m_matches = 0;
    m_highlighted = 0;
    m_steps.clear();
    const int w = viewport()->width(), h = viewport()->height();
    if (!m_store || !m_run) {
        p.fillRect(viewport()->rect(), pal.base());
        p.setPen(pal.color(QPalette::PlaceholderText));
        p.drawText(viewport()->rect(), Qt::AlignCenter,
                   m_error.isEmpty() ? tr("Open a project and choose a run to see its timeline") : m_error);
        return;
    }
    const int scroll = verticalScrollBar()->value();
    const Canvas cv = beginCanvas(p, w, h);
    std::vector<RowSpan> drawnRows;
    paintRows(cv, scroll, w, h, fetchVisible(scroll, h), drawnRows);
    // Lines across the tracks: the time grid, each step's start (dashed) and the gutter's edge.
    const std::vector<TimeAxis::Tick> ticks = m_axis.ticks(90);
    for (const TimeAxis::Tick& t : ticks)
        cv.blendVLine(kGutter + t.x, qRgb(128, 128, 128), 40, 0, 0);
    for (const StepMark& st : m_steps)
        cv.blendVLine(kGutter + m_axis.x(st.start), qRgb(0x8e, 0x44, 0xad), 150, 4, 2);
    cv.blendVLine(kGutter, pal.color(QPalette::Mid).rgb(), 255, 0, 0);
    if (!m_direct)
        p.drawImage(QPointF(0, 0), m_canvas);
    paintTitles(p, drawnRows, scroll, w);
    paintCounters(p, scroll, w, h);
    paintGroups(p, scroll, w, h);
    paintPath(p, scroll, w, h);
    paintMeasure(p, w, h);
    paintRuler(p, ticks, w);
}

// Rows and their events are filled as scanline spans, one per rectangle:
// QPainter::fillRect per event was half of a frame of a 10 M-event run
// (bench_timeline). The spans go straight into the window's backing
// store when the painter draws on one (the raster engine on an opaque
// 32-bit image at a plain offset), else into an image copied over once
// (copying 1920 x 1080 was a tenth of a frame). Text and outlines are
// painted over them afterwards.
TimelineView::Canvas TimelineView::beginCanvas(QPainter& p, int w, int h)
{
    Canvas cv;
    cv.dpr = devicePixelRatioF();
    cv.devSize = QSize(int(std::ceil(w * cv.dpr)), int(std::ceil(h * cv.dpr)));
    m_direct = false;
    if (QPaintEngine* engine = p.paintEngine(); engine && engine->type() == QPaintEngine::Raster && !m_noDirect) {
        QPaintDevice* device = engine->paintDevice();
        if (device && device->devType() == QInternal::Image) {
            auto* store = static_cast<QImage*>(device);
            const QTransform t = p.deviceTransform();
            const QPoint at(qRound(t.dx()), qRound(t.dy()));
            if (t.type() <= QTransform::TxScale && qFuzzyCompare(t.m11(), cv.dpr) && qFuzzyCompare(t.m22(), cv.dpr) &&
                (store->format() == QImage::Format_RGB32 || store->format() == QImage::Format_ARGB32_Premultiplied) &&
                store->rect().contains(QRect(at, cv.devSize))) {
                cv.stride = store->bytesPerLine();
                // The painter's own buffer: constBits() does not detach it.
                cv.bits = const_cast<uchar*>(store->constBits()) + at.y() * cv.stride + at.x() * 4;
                m_direct = true;
            }
        }
    }
    if (!m_direct) {
        if (m_canvas.size() != cv.devSize)
            m_canvas = QImage(cv.devSize, QImage::Format_RGB32);
        m_canvas.setDevicePixelRatio(cv.dpr);
        cv.bits = m_canvas.bits(); // detaches once, not per scanline
        cv.stride = m_canvas.bytesPerLine();
    }
    const QRgb baseRgb = palette().color(QPalette::Base).rgb();
    for (int y = 0; y < cv.devSize.height(); ++y)
        fill32(cv.line(y), cv.devSize.width(), baseRgb);
    // Labels are laid out per device pixel ratio.
    if (m_labelDpr != cv.dpr) {
        m_labelMasks.clear();
        m_labelDpr = cv.dpr;
    }
    return cv;
}

// Every visible track's items, queried on two connections at once: the
// view's, and a second one on a helper thread (the queries were a third
// of a frame; two cores take half as long). In the order of the rows.
std::vector<Result<std::vector<DrawItem>>> TimelineView::fetchVisible(int scroll, int h)
{
    const int64_t ns0 = m_axis.start(), ns1 = m_axis.end();
    const double npp = m_axis.nsPerPixel();
    std::vector<int64_t> wanted, shift; // tracks, and their rank's clock correction
    for (const Row& r : m_rows)
        if (!r.header && !r.groupHeader && r.counter < 0 && onScreen(r, scroll, h)) {
            wanted.push_back(r.track.id);
            shift.push_back(offsetOf(r.rank));
        }
    std::vector<Result<std::vector<DrawItem>>> fetched(wanted.size(), std::vector<DrawItem>{});
    std::atomic<size_t> next{0};
    auto work = [&](const TraceStore& s) {
        const TraceStore::ReadScope scope(s);
        for (size_t i; (i = next.fetch_add(1)) < wanted.size();) {
            fetched[i] = s.viewport(wanted[i], ns0 + shift[i], ns1 + 1 + shift[i], npp);
            if (fetched[i] && shift[i] != 0) // drawn, hit and measured on the aligned clock
                for (DrawItem& it : *fetched[i]) {
                    it.start_ns -= shift[i];
                    it.end_ns -= shift[i];
                }
        }
    };
    QFuture<void> helper;
    if (m_helperStore && wanted.size() > 1)
        helper = QtConcurrent::run(&m_helperPool, [&] { work(*m_helperStore); });
    work(*m_store);
    helper.waitForFinished();
    return fetched;
}

bool TimelineView::onScreen(const Row& r, int scroll, int h) const
{
    const int y = kRuler + r.top - scroll;
    return y + r.height >= kRuler && y <= h;
}

// The rows' backgrounds and their events as spans, with their labels; what
// was drawn noted (m_painted, the rows in `drawn`, the steps of the lowest
// rank that has them in view).
void TimelineView::paintRows(const Canvas& cv, int scroll, int w, int h, std::vector<Result<std::vector<DrawItem>>> fetched,
                             std::vector<RowSpan>& drawn)
{
    const QPalette pal = palette();
    const QRgb baseRgb = pal.color(QPalette::Base).rgb();
    auto dimmed = [&](const QColor& c) { // c at 25 % over the base colour
        return qRgb((qRed(c.rgb()) + 3 * qRed(baseRgb)) / 4, (qGreen(c.rgb()) + 3 * qGreen(baseRgb)) / 4,
                    (qBlue(c.rgb()) + 3 * qBlue(baseRgb)) / 4);
    };
    const QFontMetrics fm(font());
    const QRect all(0, 0, w, h);
    int32_t stepRank = INT32_MIN;
    size_t fetchedAt = 0;
    for (size_t ri = 0; ri < m_rows.size(); ++ri) {
        const Row& r = m_rows[ri];
        if (!onScreen(r, scroll, h))
            continue;
        const int y = kRuler + r.top - scroll;
        if (r.groupHeader) { // its busy shares are drawn over it (paintGroups)
            cv.fillSpan(QRectF(0, y, w, r.height), all, pal.color(QPalette::Midlight).rgb());
            cv.fillSpan(QRectF(0, y + r.height - 1, w, 1), all, pal.color(QPalette::Mid).rgb());
            continue;
        }
        if (r.header) {
            cv.fillSpan(QRectF(0, y, w, r.height), all, pal.color(QPalette::AlternateBase).rgb());
            drawn.push_back({ri, m_painted.size(), m_painted.size()});
            continue;
        }
        cv.fillSpan(QRectF(0, y + r.height - 1, w, 1), all, pal.color(QPalette::Mid).rgb());
        const size_t first = m_painted.size();
        if (r.counter >= 0) { // drawn over the spans (paintCounters)
            drawn.push_back({ri, first, first});
            continue;
        }
        auto& items = fetched[fetchedAt++];
        if (!items) {
            m_error = QString::fromStdString(items.error().str());
            if (!m_errorShown) { // said once per run, after the paint
                m_errorShown = true;
                QTimer::singleShot(0, this, [this] { emit errorOccurred(m_error); });
            }
            drawn.push_back({ri, first, first});
            continue;
        }
        const QRect clip = QRect(kGutter, y, w - kGutter, r.height).intersected(QRect(0, kRuler, w, h - kRuler));
        const int lanes = r.track.device ? 1 : kHostLanes;
        for (const DrawItem& it : *items) {
            const double x0 = kGutter + m_axis.x(it.start_ns);
            const double x1 = std::max(x0 + 1, kGutter + m_axis.x(it.end_ns));
            const int lane = std::min(it.depth, lanes - 1);
            const QRectF rect(x0, y + 3 + lane * kLaneHeight, x1 - x0, kLaneHeight - 2);
            const KindColors& kc = m_colorBy == ColorBy::Layer ? layerColors(it.layer) : kindColors(it.kind);
            const bool dim = m_highlight >= 0 && it.layer != m_highlight;
            if (it.count > 1) { // a folded run: lighter, with a darker edge along its bottom
                cv.fillSpan(rect, clip, dim ? dimmed(kc.folded) : kc.folded.rgb());
                cv.fillSpan(QRectF(rect.left(), rect.bottom() - 2, rect.width(), 2), clip, dim ? dimmed(kc.edge) : kc.edge.rgb());
            } else {
                cv.fillSpan(rect, clip, dim ? dimmed(kc.event) : kc.event.rgb());
            }
            // The label starts at the visible part's left edge.
            const double visLeft = std::max(rect.left(), double(kGutter)), visRight = std::min(rect.right(), double(w));
            if (visRight - visLeft > 30)
                cv.blendLabel(labelMask(it, fm), visLeft + 3, rect.top() + (rect.height() - fm.height()) / 2, visRight - visLeft - 5,
                              clip);
            m_painted.push_back({rect, it, r.track.id});
            // Steps of the lowest rank that has them, as drawn: reading them
            // from the store would cost a pass over the run's events.
            if (it.kind == TraceKind::Step && it.count == 1) {
                if (stepRank == INT32_MIN)
                    stepRank = r.rank;
                if (r.rank == stepRank) {
                    const QString name = nameOf(it.name_id);
                    const int hash = int(name.lastIndexOf('#'));
                    m_steps.push_back({it.start_ns, it.end_ns, hash >= 0 ? name.mid(hash) : name});
                }
            }
        }
        drawn.push_back({ri, first, m_painted.size()});
    }
}

// Over the spans: row titles and outlines (highlight, selection, search matches).
void TimelineView::paintTitles(QPainter& p, const std::vector<RowSpan>& drawnRows, int scroll, int w)
{
    const QPalette pal = palette();
    const QFontMetrics fm(font());
    for (const RowSpan& span : drawnRows) {
        const Row& r = m_rows[span.row];
        const int y = kRuler + r.top - scroll;
        p.setPen(pal.color(QPalette::Text));
        if (r.header) {
            const int indent = m_groupBy ? 12 : 0; // under its group's header
            const bool collapsed = m_collapsed.count(r.rank) && m_collapsed.at(r.rank);
            QString title = QString("%1 rank %2").arg(collapsed ? QStringLiteral("▸") : QStringLiteral("▾")).arg(r.rank);
            if (const int64_t off = offsetOf(r.rank); off != 0)
                title += tr(" · clock %1%2").arg(off > 0 ? "−" : "+", QString::fromStdString(formatSeconds(double(std::llabs(off)) * 1e-9)));
            p.drawText(QRect(6 + indent, y, kGutter - 8 - indent, r.height), Qt::AlignVCenter | Qt::AlignLeft, title);
            continue;
        }
        // Track titles laid out once per run (eliding and shaping them every
        // frame was 5 % of one).
        auto title = m_trackTitles.find(r.track.id);
        if (title == m_trackTitles.end()) {
            QStaticText st(fm.elidedText(QString::fromStdString(r.track.name), Qt::ElideMiddle, kGutter - 18));
            st.setTextFormat(Qt::PlainText);
            st.prepare(QTransform(), font());
            title = m_trackTitles.emplace(r.track.id, std::move(st)).first;
        }
        p.drawStaticText(QPointF(14, y + (r.height - fm.height()) / 2.0), title->second);
        p.save();
        p.setClipRect(QRect(kGutter, y, w - kGutter, r.height));
        for (size_t i = span.first; i < span.last; ++i)
            outline(p, m_painted[i]);
        p.restore();
    }
}

// An event's outlines: its layer highlighted, its selection, a search match.
void TimelineView::outline(QPainter& p, const Painted& pd)
{
    const QPalette pal = palette();
    const QRectF& rect = pd.rect;
    const DrawItem& it = pd.item;
    if (m_highlight >= 0 && it.layer == m_highlight) {
        ++m_highlighted;
        p.setPen(QPen(pal.color(QPalette::Highlight), 2));
        p.drawRect(rect.adjusted(-1, -1, 1, 1));
    }
    if (m_selected && it.event_id == m_selected && it.count == 1) {
        p.setPen(QPen(pal.color(QPalette::Text), 2, Qt::DashLine));
        p.drawRect(rect.adjusted(-2, -2, 2, 2));
    }
    if (!m_search.isEmpty() && it.count == 1) {
        auto hit = m_searchHits.find(it.name_id);
        if (hit == m_searchHits.end())
            hit = m_searchHits.emplace(it.name_id, nameOf(it.name_id).contains(m_search, Qt::CaseInsensitive)).first;
        if (hit->second) {
            ++m_matches;
            p.setPen(QPen(QColor(255, 200, 0), 2));
            p.drawRect(rect.adjusted(-1, -1, 1, 1));
        }
    }
}

// The measured range: shaded, with its length and breakdown.
void TimelineView::paintMeasure(QPainter& p, int w, int h)
{
    if (m_measure.second <= m_measure.first)
        return;
    const double x0 = kGutter + m_axis.x(m_measure.first), x1 = kGutter + m_axis.x(m_measure.second);
    const QRectF band(std::max<double>(kGutter, x0), kRuler, std::min<double>(w, x1) - std::max<double>(kGutter, x0), h - kRuler);
    if (band.width() <= 0)
        return;
    p.fillRect(band, QColor(255, 214, 0, 50));
    p.setPen(QColor(200, 150, 0));
    p.drawLine(QPointF(x0, kRuler), QPointF(x0, h));
    p.drawLine(QPointF(x1, kRuler), QPointF(x1, h));
    const QString text = describeRange();
    const QRectF box(std::clamp(x0 + 6, double(kGutter) + 4, double(w) - 320), h - 24 - 16 * text.count('\n'), 310,
                     20 + 16 * text.count('\n'));
    p.fillRect(box, QColor(40, 40, 40, 220));
    p.setPen(Qt::white);
    p.drawText(box.adjusted(6, 2, -4, -2), Qt::AlignLeft | Qt::AlignVCenter, text);
}

// The ruler: the scale, step labels where they fit, time labels where they
// do not run into one.
void TimelineView::paintRuler(QPainter& p, const std::vector<TimeAxis::Tick>& ticks, int w)
{
    const QPalette pal = palette();
    const QFontMetrics fm(font());
    p.fillRect(QRect(0, 0, w, kRuler), pal.window());
    p.setPen(pal.color(QPalette::WindowText));
    p.drawLine(0, kRuler - 1, w, kRuler - 1);
    p.drawText(QRect(6, 0, kGutter - 8, kRuler), Qt::AlignVCenter | Qt::AlignLeft,
               tr("%1 / px").arg(QString::fromStdString(formatSeconds(m_axis.nsPerPixel() * 1e-9))));
    double lastLabel = -1e9;
    std::vector<std::pair<double, double>> stepLabels; // x extents
    for (const StepMark& st : m_steps) {
        const double x = kGutter + m_axis.x(st.start);
        if (x < kGutter || x > w || x - lastLabel < 40)
            continue;
        lastLabel = x;
        p.fillRect(QRectF(x, 1, 3, kRuler - 2), QColor(0x8e, 0x44, 0xad));
        p.setPen(QColor(0x8e, 0x44, 0xad));
        p.drawText(QPointF(x + 5, kRuler - 3), st.label);
        stepLabels.emplace_back(x, x + 5 + fm.horizontalAdvance(st.label));
    }
    for (const TimeAxis::Tick& t : ticks) {
        const double x = kGutter + t.x;
        if (x < kGutter)
            continue;
        p.setPen(pal.color(QPalette::WindowText));
        p.drawLine(QPointF(x, kRuler - 7), QPointF(x, kRuler - 1));
        const QString label = QString::fromStdString(t.label);
        const double x1 = x + 3 + fm.horizontalAdvance(label);
        if (std::none_of(stepLabels.begin(), stepLabels.end(),
                         [&](const auto& e) { return x + 3 < e.second + 4 && e.first < x1 + 4; }))
            p.drawText(QPointF(x + 3, kRuler - 9), label);
    }
}

void TimelineView::setSearch(const QString& text)
{
    m_search = text.trimmed();
    m_searchHits.clear();
    viewport()->update();
}

void TimelineView::setHighlightLayer(int32_t layer)
{
    m_highlight = layer;
    viewport()->update();
}

void TimelineView::setColorBy(ColorBy c)
{
    m_colorBy = c;
    viewport()->update();
}

void TimelineView::changeEvent(QEvent* e)
{
    if (e->type() == QEvent::FontChange) { // laid-out text is for the old font
        m_labelMasks.clear();
        m_trackTitles.clear();
    }
    QAbstractScrollArea::changeEvent(e);
}

const QImage& TimelineView::labelMask(const DrawItem& it, const QFontMetrics& fm)
{
    const int64_t id = it.count > 1 ? -it.count : it.name_id;
    auto found = m_labelMasks.find(id);
    if (found != m_labelMasks.end())
        return found->second;
    if (m_labelMasks.size() > 20000)
        m_labelMasks.clear();
    const QString text = it.count > 1 ? tr("%n events", "", int(it.count)) : nameOf(it.name_id);
    const int width = std::min(fm.horizontalAdvance(text), 4096) + 2; // no event shows more
    QImage mask(QSize(int(std::ceil(width * m_labelDpr)), int(std::ceil(fm.height() * m_labelDpr))), QImage::Format_Alpha8);
    mask.setDevicePixelRatio(m_labelDpr);
    mask.fill(0);
    {
        QPainter q(&mask);
        q.setFont(font());
        q.setPen(Qt::black); // opaque: the mask holds the glyphs' coverage
        q.drawText(QPointF(0, fm.ascent()), text);
    }
    return m_labelMasks.emplace(id, std::move(mask)).first->second;
}

const TimelineView::Painted* TimelineView::itemAt(const QPointF& pos) const
{
    // The last drawn wins (drawn on top); a few pixels of slack for thin ones.
    for (auto it = m_painted.rbegin(); it != m_painted.rend(); ++it)
        if (it->rect.adjusted(-2, 0, 2, 0).contains(pos))
            return &*it;
    return nullptr;
}

QString TimelineView::describe(const Painted& pd) const
{
    const DrawItem& it = pd.item;
    const std::string_view kind = traceKindName(it.kind);
    const double dur = double(it.end_ns - it.start_ns) * 1e-9;
    QString s;
    if (it.count > 1)
        s = tr("%1 events too small to show apart (longest: %2)").arg(it.count).arg(nameOf(it.name_id));
    else
        s = nameOf(it.name_id);
    s += "\n" + tr("kind: %1").arg(QString::fromUtf8(kind.data(), int(kind.size())));
    s += "\n" + tr("duration: %1").arg(QString::fromStdString(formatSeconds(dur)));
    s += "\n" + tr("start: %1").arg(QString::fromStdString(
                    formatTickLabel(double(it.start_ns - m_axis.rangeBegin()), 1)));
    if (it.layer >= 0)
        s += "\n" + tr("layer: %1").arg(it.layer);
    return s;
}

} // namespace partita
