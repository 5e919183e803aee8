#include "lazypanel.h"

#include <QCoreApplication>
#include <QTimer>

namespace partita {

LazyPanel::LazyPanel(QWidget* parent, QFutureWatcherBase& watcher)
    : QWidget(parent), m_summary(new QLabel(this)), m_watcherBase(watcher)
{
    m_summary->setWordWrap(true);
    m_summary->setTextInteractionFlags(Qt::TextSelectableByMouse);
}

void LazyPanel::setRun(const std::string& path, int64_t run)
{
    m_project = path;
    m_run = run;
    clearRun();
    m_pending = run > 0 && !path.empty();
    if (!m_pending) {
        m_summary->setText(idleText());
        return;
    }
    m_summary->setText(waitingText(run));
    startSoon();
}

void LazyPanel::showEvent(QShowEvent* e)
{
    QWidget::showEvent(e);
    if (m_pending)
        startSoon();
}

// Once the window's layout has settled: a dock behind another's tab is
// still shown for a moment when the window first appears, and a panel
// there would analyze a run nobody looks at.
void LazyPanel::startSoon()
{
    QTimer::singleShot(0, this, [this] {
        if (m_pending && isVisible())
            start();
    });
}

void LazyPanel::waitForReport()
{
    if (m_pending && isVisible())
        start();
    if (m_watcherBase.isRunning())
        m_watcherBase.waitForFinished();
    QCoreApplication::sendPostedEvents(&m_watcherBase);
}

} // namespace partita
