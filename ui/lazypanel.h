#pragma once
// A panel that analyzes the run on the timeline off the GUI thread, and only
// while it is shown: setRun() remembers the run (and says so), the work
// starts when the panel is, or becomes, visible. The critical path and the
// heat map are such panels; the stragglers panel is not (the timeline needs
// its clock corrections whether it is shown or not).

#include <QFutureWatcherBase>
#include <QLabel>
#include <QWidget>

#include <string>

namespace partita {

class LazyPanel : public QWidget
{
    Q_OBJECT
public:
    // The run to analyze (0: clears); analyzed when the panel is shown.
    void setRun(const std::string& path, int64_t run);
    // Blocks until the analysis under way is done (tests).
    void waitForReport();
    bool busy() const { return m_watcherBase.isRunning() || (m_pending && isVisible()); }
    // As tall as the panels it shares its place with: a table's own hint
    // would make the window taller than the screen.
    QSize sizeHint() const override { return {600, 200}; }

protected:
    // `watcher`: the derived panel's (a member, stored here, used once built).
    LazyPanel(QWidget* parent, QFutureWatcherBase& watcher);
    virtual void clearRun() = 0;                         // forget the last run's figures
    virtual QString idleText() const = 0;                // no run to analyze
    virtual QString waitingText(int64_t run) const = 0;  // a run, the panel hidden
    virtual void start() = 0;                            // begin the analysis (the panel is shown)
    void showEvent(QShowEvent* e) override;
    bool pending() const { return m_pending; }
    void begin() { m_pending = false; } // start()s say so first

    QLabel* m_summary; // where the panel's state is said; the derived panel lays it out
    std::string m_project;
    int64_t m_run = 0;

private:
    void startSoon();
    QFutureWatcherBase& m_watcherBase;
    bool m_pending = false;
};

} // namespace partita
