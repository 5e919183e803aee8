// CompareView: a layer's or an op's row leads to its events on both timelines.
#include "compareview.h"
#include "timelineview.h"

#include "partita/profiler/tracestore.h"

#include <QCoreApplication>
#include <QtConcurrent/QtConcurrentRun>

namespace partita {

void CompareView::frameLayer(int32_t layer)
{
    EventQuery q;
    q.layer = layer;
    q.device_only = true; // the layer table's times are device time
    frameEvents(q);
}

void CompareView::frameOp(const std::string& name)
{
    EventQuery q;
    q.name = name;
    frameEvents(q);
}

void CompareView::frameEvents(EventQuery query)
{
    if (!m_store || !m_a || !m_b || !m_diff || m_frameWatcher.isRunning())
        return;
    if (!m_frameWatcher.property("connected").toBool()) {
        connect(&m_frameWatcher, &QFutureWatcher<Found>::finished, this, &CompareView::showFound);
        m_frameWatcher.setProperty("connected", true);
    }
    query.limit = 1;
    // The rank and iteration the diff compared, on each side.
    EventQuery qa = query, qb = query;
    qa.rank = m_diff->rank_a;
    qb.rank = m_diff->rank_b;
    if (m_diff->iteration_a >= 0)
        qa.step = m_diff->iteration_a;
    if (m_diff->iteration_b >= 0)
        qb.step = m_diff->iteration_b;
    m_frameWatcher.setFuture(QtConcurrent::run([path = m_store->path(), a = m_a, b = m_b, qa, qb]() {
        Found f;
        f.a = a;
        f.b = b;
        f.layer = qa.layer.value_or(-1);
        auto store = TraceStore::open(path);
        if (!store)
            return f;
        if (auto m = findEvents(**store, a, qa); m && !m->events.empty())
            f.inA = m->events.front();
        if (auto m = findEvents(**store, b, qb); m && !m->events.empty())
            f.inB = m->events.front();
        return f; // a run that cannot be read, or has none, frames nothing on its side
    }));
}

void CompareView::waitForFrame()
{
    if (m_frameWatcher.isRunning())
        m_frameWatcher.waitForFinished();
    QCoreApplication::sendPostedEvents(&m_frameWatcher);
}

void CompareView::showFound()
{
    const Found f = m_frameWatcher.result();
    if (f.a != m_a || f.b != m_b)
        return; // other runs were chosen meanwhile
    m_syncing = true; // each side framed on its own event, not synced to the other's
    if (f.inA)
        m_timelineA->selectEvent(f.inA->rank, f.inA->event_id, f.inA->start_ns, f.inA->end_ns, f.layer);
    if (f.inB)
        m_timelineB->selectEvent(f.inB->rank, f.inB->event_id, f.inB->start_ns, f.inB->end_ns, f.layer);
    m_syncing = false;
    emit framed(bool(f.inA), bool(f.inB));
}

} // namespace partita
