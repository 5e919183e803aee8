#include "lazypanel.h"

#include <QCoreApplication>

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
    if (!m_pending)
        m_summary->setText(idleText());
    else if (isVisible())
        start();
    else
        m_summary->setText(waitingText(run));
}

void LazyPanel::showEvent(QShowEvent* e)
{
    QWidget::showEvent(e);
    if (m_pending)
        start();
}

void LazyPanel::waitForReport()
{
    if (m_watcherBase.isRunning())
        m_watcherBase.waitForFinished();
    QCoreApplication::sendPostedEvents(&m_watcherBase);
}

} // namespace partita
