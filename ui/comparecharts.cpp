// CompareView's two charts: each rank's temporal breakdown, A and B side by
// side, and kernel time by HTA's class. A click on a bar leads to the events
// behind it (compareframe.cpp).
#include "compareview.h"
#include "theme.h"

#include <QBarCategoryAxis>
#include <QBarSeries>
#include <QBarSet>
#include <QChart>
#include <QChartView>
#include <QStackedBarSeries>
#include <QValueAxis>

#include <map>

namespace partita {

namespace {

void finishChart(QChart* chart, QAbstractBarSeries* series, const QStringList& categories, double top)
{
    chart->addSeries(series);
    auto* x = new QBarCategoryAxis;
    x->append(categories);
    auto* y = new QValueAxis;
    y->setRange(0, top);
    y->setLabelFormat("%.0f");
    y->setTickCount(3);
    chart->addAxis(x, Qt::AlignBottom);
    chart->addAxis(y, Qt::AlignLeft);
    series->attachAxis(x);
    series->attachAxis(y);
    QFont small = chart->legend()->font();
    small.setPointSizeF(small.pointSizeF() * 0.85);
    chart->legend()->setFont(small);
    chart->legend()->setAlignment(Qt::AlignRight);
    chart->setMargins(QMargins(4, 4, 4, 4));
}

} // namespace

void CompareView::drawCharts(const RunAnalysis& a, const RunAnalysis& b)
{
    drawRankChart(a, b);
    drawClassChart(a, b);
}

// Per rank: idle / compute / non-compute share of the kernel span, A and B
// side by side; a bar's segment leads to that rank's events of its kind.
void CompareView::drawRankChart(const RunAnalysis& a, const RunAnalysis& b)
{
    auto* chart = new QChart;
    chart->setTitle(tr("Per rank: share of the kernel span (%)"));
    QBarSet* sets[3] = {new QBarSet(tr("compute")), new QBarSet(tr("non-compute")), new QBarSet(tr("idle"))};
    sets[0]->setColor(QColor(0x3d, 0x9a, 0x50));
    sets[1]->setColor(QColor(0xe8, 0x8a, 0x2a));
    sets[2]->setColor(QColor(0xc0, 0xc0, 0xc0));
    std::map<int, const RankAnalysis*> byRank[2];
    for (const auto& r : a.ranks)
        byRank[0][r.rank] = &r;
    for (const auto& r : b.ranks)
        byRank[1][r.rank] = &r;
    std::map<int, int> ranks;
    for (const auto& side : byRank)
        for (const auto& [k, v] : side)
            ranks[k] = 1;
    QStringList cats;
    m_rankBars.clear();
    int shown = 0;
    for (const auto& [rank, one] : ranks) {
        if (shown++ >= 16)
            break; // a chart of more bars helps nobody; the tables hold every rank
        for (int side = 0; side < 2; ++side) {
            auto it = byRank[side].find(rank);
            if (it == byRank[side].end())
                continue; // a predicted run holds one representative rank per stage
            const TemporalBreakdown t = it->second->temporal;
            *sets[0] << t.compute_pct;
            *sets[1] << t.non_compute_pct;
            *sets[2] << t.idle_pct;
            cats << QString("%1 r%2").arg(side == 0 ? "A" : "B").arg(rank);
            m_rankBars.push_back({side, rank});
        }
    }
    auto* series = new QStackedBarSeries;
    for (int share = 0; share < 3; ++share) {
        series->append(sets[share]);
        connect(sets[share], &QBarSet::clicked, this, [this, share](int index) {
            if (index >= 0 && index < int(m_rankBars.size()))
                frameRankShare(m_rankBars[size_t(index)].first, m_rankBars[size_t(index)].second, RankShare(share));
        });
    }
    finishChart(chart, series, cats, 100);
    m_rankChart->setChart(chart);
    styleChart(chart, palette());
}

// Kernel categories (HTA's classes): union time summed over ranks, A against
// B; a bar leads to the class's first kernel on both timelines.
void CompareView::drawClassChart(const RunAnalysis& a, const RunAnalysis& b)
{
    auto* chart = new QChart;
    chart->setTitle(tr("Kernel time by category (ms)"));
    auto* setA = new QBarSet("A");
    auto* setB = new QBarSet("B");
    setA->setColor(QColor(0x3b, 0x7d, 0xd8));
    setB->setColor(QColor(0xe8, 0x8a, 0x2a));
    QStringList classes;
    m_classBars.clear();
    double top = 0;
    for (KernelClass k : {KernelClass::Computation, KernelClass::Communication, KernelClass::Memory, KernelClass::Other}) {
        auto find = [&](const RunAnalysis& r) {
            for (const auto& [c, ns] : r.class_ns)
                if (c == k)
                    return double(ns) / 1e6;
            return 0.0;
        };
        const double va = find(a), vb = find(b);
        if (va == 0 && vb == 0)
            continue;
        *setA << va;
        *setB << vb;
        top = std::max({top, va, vb});
        classes << QString::fromStdString(std::string(kernelClassName(k)));
        m_classBars.push_back(k);
    }
    auto* bars = new QBarSeries;
    for (QBarSet* set : {setA, setB}) {
        bars->append(set);
        connect(set, &QBarSet::clicked, this, [this](int index) {
            if (index >= 0 && index < int(m_classBars.size()))
                frameClass(m_classBars[size_t(index)]);
        });
    }
    finishChart(chart, bars, classes, top > 0 ? top * 1.1 : 1);
    m_classChart->setChart(chart);
    styleChart(chart, palette());
}

} // namespace partita
