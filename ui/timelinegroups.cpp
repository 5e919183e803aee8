// TimelineView: the rows' layout, and ranks grouped by a parallel axis of
// the run's mesh, each group's header folding its ranks and showing their
// busy shares per step.
#include "timelineview.h"

#include <QCoreApplication>
#include <QPainter>
#include <QtConcurrent/QtConcurrentRun>

#include <algorithm>
#include <map>
#include <set>
#include <tuple>

namespace partita {

namespace {
constexpr int kGroupHeight = 36;
constexpr int kFoldAbove = 8; // ranks in a run whose groups start folded

double median(std::vector<double> v)
{
    if (v.empty())
        return 0;
    std::sort(v.begin(), v.end());
    return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

// One step's busy share.
double cellBusy(const HeatCell& c) { return c.step_ns() > 0 ? 1.0 - double(c.idle_ns) / double(c.step_ns()) : 0.0; }
} // namespace

void TimelineView::layoutRows()
{
    m_rows.clear();
    // The ranks in the store's order, each with its tracks.
    std::vector<int32_t> ranks;
    std::vector<std::vector<size_t>> tracksOf;
    for (size_t i = 0; i < m_tracks.size(); ++i) {
        if (ranks.empty() || ranks.back() != m_tracks[i].rank) {
            ranks.push_back(m_tracks[i].rank);
            tracksOf.emplace_back();
        }
        tracksOf.back().push_back(i);
    }
    int y = 0;
    int group = INT32_MIN;
    for (size_t k : rankOrder(ranks)) {
        const int32_t rank = ranks[k];
        const int g = groupOf(rank);
        if (m_groupBy && g != group) {
            group = g;
            Row gh;
            gh.groupHeader = true;
            gh.group = g;
            gh.rank = rank;
            gh.top = y;
            gh.height = kGroupHeight;
            y += gh.height;
            m_rows.push_back(gh);
        }
        if (m_groupBy && g >= 0 && groupCollapsed(g))
            continue;
        Row h;
        h.header = true;
        h.rank = rank;
        h.group = g;
        h.top = y;
        h.height = kHeaderHeight;
        y += h.height;
        m_rows.push_back(h);
        if (m_collapsed[rank])
            continue;
        for (size_t t : tracksOf[k]) {
            Row r;
            r.rank = rank;
            r.group = g;
            r.track = m_tracks[t];
            r.top = y;
            r.height = (r.track.device ? 1 : kHostLanes) * kLaneHeight + 6;
            y += r.height;
            m_rows.push_back(r);
        }
        addCounterRows(rank, y);
    }
    updateScrollBars();
}

std::vector<size_t> TimelineView::rankOrder(const std::vector<int32_t>& ranks) const
{
    std::vector<size_t> order(ranks.size());
    for (size_t i = 0; i < order.size(); ++i)
        order[i] = i;
    if (!m_groupBy || !m_mesh)
        return order;
    // By group, then place in it; ranks in no group last, in order.
    auto key = [&](size_t i) {
        const MeshPlace p = meshPlace(*m_mesh, *m_groupBy, ranks[i]);
        return std::make_tuple(p.group < 0 ? INT32_MAX : p.group, p.index, ranks[i]);
    };
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return key(a) < key(b); });
    return order;
}

bool TimelineView::canGroupBy(MeshAxis a) const
{
    if (!m_mesh)
        return false;
    switch (a) {
    case MeshAxis::Data: return m_mesh->dp * m_mesh->cp > 1;
    case MeshAxis::Tensor: return m_mesh->tp > 1;
    case MeshAxis::Pipeline: return m_mesh->pp > 1;
    case MeshAxis::Context: return m_mesh->cp > 1;
    case MeshAxis::Expert: return m_mesh->ep > 1;
    }
    return false;
}

void TimelineView::setGroupBy(std::optional<MeshAxis> axis)
{
    if (axis && !canGroupBy(*axis))
        axis.reset();
    m_groupBy = axis;
    m_groupCollapsed.clear();
    std::set<int32_t> ranks;
    for (const StoredTrack& t : m_tracks)
        ranks.insert(t.rank);
    m_groupsFoldedFirst = ranks.size() > size_t(kFoldAbove);
    refreshGroups();
    loadHeat();
    layoutRows();
    viewport()->update();
    emit groupingChanged();
}

void TimelineView::setGroupCollapsed(int group, bool collapsed)
{
    m_groupCollapsed[group] = collapsed;
    layoutRows();
    viewport()->update();
}

bool TimelineView::groupCollapsed(int group) const
{
    auto it = m_groupCollapsed.find(group);
    return it != m_groupCollapsed.end() ? it->second : m_groupsFoldedFirst;
}

int TimelineView::groupOf(int32_t rank) const
{
    if (!m_groupBy || !m_mesh)
        return -1;
    return meshPlace(*m_mesh, *m_groupBy, rank).group;
}

void TimelineView::loadHeat()
{
    if (!m_store || !m_run || !m_groupBy || m_heatRun == m_run)
        return;
    m_heatRun = m_run;
    if (!m_heatWatcher.property("connected").toBool()) {
        connect(&m_heatWatcher, &QFutureWatcher<std::pair<int64_t, HeatMap>>::finished, this, [this] {
            auto [run, map] = m_heatWatcher.result();
            if (run == m_run && m_store) {
                m_heat = std::move(map);
                refreshGroups();
                viewport()->update();
            }
        });
        m_heatWatcher.setProperty("connected", true);
    }
    m_heatWatcher.setFuture(QtConcurrent::run([path = m_store->path(), run = m_run]() {
        std::pair<int64_t, HeatMap> out{run, {}};
        if (auto store = TraceStore::open(path))
            if (auto r = rankHeatMap(**store, run))
                out.second = std::move(*r);
        return out; // none read: the headers say only their ranks
    }));
}

std::vector<std::pair<bool, int>> TimelineView::outline() const
{
    std::vector<std::pair<bool, int>> out;
    for (const Row& r : m_rows)
        if (r.groupHeader || r.header)
            out.push_back({r.groupHeader, r.groupHeader ? r.group : r.rank});
    return out;
}

void TimelineView::waitForGroups()
{
    if (m_heatWatcher.isRunning())
        m_heatWatcher.waitForFinished();
    QCoreApplication::sendPostedEvents(&m_heatWatcher);
}

std::vector<GroupBusy> TimelineView::groupBusy() const
{
    std::vector<GroupBusy> out;
    for (const auto& [group, busy] : m_groupBusy)
        out.push_back(busy);
    return out;
}

void TimelineView::refreshGroups()
{
    m_groupBusy.clear();
    m_groupColumns.clear();
    if (!m_groupBy || !m_mesh)
        return;
    std::map<int, std::vector<const HeatRow*>> members; // ranks with device events: the others' steps read as idle
    for (const HeatRow& r : m_heat.rows)
        if (r.device)
            members[groupOf(r.rank)].push_back(&r);
    for (GroupBusy& gb : partita::groupBusy(m_heat, *m_mesh, *m_groupBy))
        if (gb.group >= 0 && members.count(gb.group)) // ranks beyond the mesh: no header's
            m_groupBusy[gb.group] = std::move(gb);
    for (const auto& [group, rows] : members) {
        std::vector<GroupColumn>& columns = m_groupColumns[group];
        for (size_t c = 0; c < size_t(m_heat.columns); ++c) {
            std::vector<double> shares, starts, ends;
            for (const HeatRow* hr : rows)
                if (c < hr->cells.size()) {
                    const HeatCell& cell = hr->cells[c];
                    shares.push_back(cellBusy(cell));
                    starts.push_back(double(cell.start_ns - offsetOf(hr->rank)));
                    ends.push_back(double(cell.end_ns - offsetOf(hr->rank)));
                }
            if (shares.empty())
                continue;
            columns.push_back({int64_t(median(starts)), int64_t(median(ends)), *std::min_element(shares.begin(), shares.end()),
                               median(shares), *std::max_element(shares.begin(), shares.end())});
        }
    }
}

QString groupBusyText(const GroupBusy& g)
{
    const QString busy = g.least == g.most
                             ? QString::number(100 * g.least, 'f', 0)
                             : QString("%1–%2").arg(100 * g.least, 0, 'f', 0).arg(100 * g.most, 0, 'f', 0);
    return g.ranks.size() == 1 ? TimelineView::tr("1 rank, %1 % busy").arg(busy)
                               : TimelineView::tr("%1 ranks, %2 % busy").arg(g.ranks.size()).arg(busy);
}

void TimelineView::paintGroups(QPainter& p, int scroll, int w, int h)
{
    m_groupsPainted = 0;
    if (!m_groupBy)
        return;
    const QColor bar(66, 133, 244), whisker(40, 40, 40);
    for (const Row& r : m_rows) {
        if (!r.groupHeader)
            continue;
        const int y = kRuler + r.top - scroll;
        if (y + r.height < kRuler || y > h)
            continue;
        ++m_groupsPainted;
        const bool folded = r.group >= 0 && groupCollapsed(r.group);
        QString title = r.group < 0 ? tr("no group (beyond the mesh)")
                                    : QString("%1 %2 %3").arg(folded ? QStringLiteral("▸") : QStringLiteral("▾"),
                                                              QString::fromStdString(meshAxisTitle(*m_groupBy)))
                                          .arg(r.group);
        p.setPen(palette().color(QPalette::Text));
        p.drawText(QRect(6, y + 1, kGutter - 8, 16), Qt::AlignVCenter | Qt::AlignLeft, title);
        QString sub;
        if (auto b = m_groupBusy.find(r.group); b != m_groupBusy.end())
            sub = groupBusyText(b->second);
        else
            sub = groupsLoading() ? tr("reading busy time…") : tr("no device events");
        p.setPen(palette().color(QPalette::PlaceholderText));
        p.drawText(QRect(18, y + 17, kGutter - 20, 16), Qt::AlignVCenter | Qt::AlignLeft, sub);
        // Per step: the median busy share filled, the least and most busy marked.
        const auto m = m_groupColumns.find(r.group);
        if (m == m_groupColumns.end())
            continue;
        p.save();
        p.setClipRect(QRect(kGutter, std::max(y, kRuler), w - kGutter, r.height));
        const int top = y + 4, height = r.height - 8;
        for (const GroupColumn& col : m->second) {
            const double x0 = kGutter + m_axis.x(col.start), x1 = kGutter + m_axis.x(col.end);
            if (x1 < kGutter || x0 > w)
                continue;
            auto yOf = [&](double share) { return top + height * (1.0 - share); };
            p.fillRect(QRectF(x0 + 1, yOf(col.med), std::max(1.0, x1 - x0 - 2), top + height - yOf(col.med)),
                       QColor(bar.red(), bar.green(), bar.blue(), 150));
            p.setPen(QPen(whisker, 1));
            p.drawLine(QPointF(x0 + 1, yOf(col.hi)), QPointF(x1 - 1, yOf(col.hi)));
            p.setPen(QPen(whisker, 1, Qt::DotLine));
            p.drawLine(QPointF(x0 + 1, yOf(col.lo)), QPointF(x1 - 1, yOf(col.lo)));
            if (x1 - x0 > 90) {
                p.setPen(palette().color(QPalette::Text));
                p.drawText(QRectF(x0 + 4, top, x1 - x0 - 8, 14), Qt::AlignLeft | Qt::AlignTop,
                           tr("busy %1 % (%2–%3)").arg(100 * col.med, 0, 'f', 0).arg(100 * col.lo, 0, 'f', 0).arg(100 * col.hi, 0, 'f', 0));
            }
        }
        p.restore();
    }
}

} // namespace partita
