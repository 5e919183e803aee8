#pragma once
// The workbench window: a project's runs in a dock, the chosen run's
// timeline in the centre. The designer, compare and run views, and the
// model, strategy and cluster panels, are not built yet (issue 7).

#include <QMainWindow>

#include <memory>

class QTableView;
class QTabWidget;

namespace partita {

class RunsModel;
class TimelineView;
class TraceStore;

class MainWindow : public QMainWindow
{
    Q_OBJECT
public:
    explicit MainWindow(QWidget* parent = nullptr);
    ~MainWindow() override;

    // Opens a project (*.partita); on failure shows a dialog (unless `quiet`) and returns false.
    bool openProject(const QString& path, bool quiet = false);
    // Shows one of the open project's runs in the timeline.
    void showRun(int64_t runId);

    RunsModel* runsModel() const { return m_runs; }
    TimelineView* timeline() const { return m_timeline; }
    QString lastError() const { return m_lastError; }

private:
    void openDialog();
    void refreshRuns();

    std::unique_ptr<TraceStore> m_store;
    QString m_path, m_lastError;
    RunsModel* m_runs = nullptr;
    QTableView* m_runsView = nullptr;
    QTabWidget* m_tabs = nullptr;
    TimelineView* m_timeline = nullptr;
};

} // namespace partita
