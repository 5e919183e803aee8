#pragma once
// The workbench window: the designer (strategies for the project's model and
// cluster) and the timeline of a chosen run as central tabs, the project's
// runs in a dock. Projects are created, opened and remembered here; models,
// clusters and traces are imported from the File menu or dropped on the
// window; the compare and cluster views are tabs beside them, and the
// Strategy menu searches, runs a strategy, or profiles the user's own
// training (searchdialog.h, rundialog.h, profiledialog.h).

#include <QMainWindow>

#include <memory>
#include <optional>
#include <string>
#include <vector>

class QMenu;
class QTableView;
class QLabel;
class QDockWidget;
class QTabWidget;

namespace partita {

class ClusterView;
class CompareView;
class Designer;
class RunsModel;
class StragglersView;
class CriticalPathView;
class HeatMapView;
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
    // Creates an empty project (refuses an existing file) and opens it.
    bool newProject(const QString& path, bool quiet = false);
    // Imports into the open project: a model or a cluster (file, preset or
    // 'local') as the designer's input, or traces as a run. Errors are
    // dialogs unless `quiet`; false with lastError().
    bool importModel(const QString& pathOrPreset, bool quiet = false);
    bool importCluster(const QString& pathOrPreset, bool quiet = false);
    bool importTraces(const QStringList& paths, bool quiet = false);
    // A training framework's configuration (Megatron-LM script, ds_config.json,
    // horovodrun line, Partita's PyTorch script) as the designer's strategy,
    // one undo step; its model too where the file says it. Needs a cluster.
    bool importTrainingConfig(const QString& path, bool quiet = false);
    // What a file dropped on the window is imported as.
    enum class DropKind
    {
        Project,
        Model,
        Cluster,
        Trace,
        TrainingConfig,
        Unknown
    };
    static DropKind classifyFile(const QString& path);
    // Shows one of the open project's runs in the timeline.
    void showRun(int64_t runId);

    RunsModel* runsModel() const { return m_runs; }
    TimelineView* timeline() const { return m_timeline; }
    StragglersView* stragglers() const { return m_stragglers; }
    CriticalPathView* criticalPath() const { return m_critical; }
    HeatMapView* heatMap() const { return m_heatMap; }
    Designer* designer() const { return m_designer; }
    CompareView* compareView() const { return m_compare; }
    ClusterView* clusterView() const { return m_cluster; }
    // Compares two runs in the Compare tab (errors as a dialog unless `quiet`).
    bool compareRuns(int64_t a, int64_t b, bool quiet = false);
    QTabWidget* tabs() const { return m_tabs; }
    TraceStore* store() const { return m_store.get(); }
    QString lastError() const { return m_lastError; }

protected:
    void dragEnterEvent(QDragEnterEvent* e) override;
    void dropEvent(QDropEvent* e) override;
    void closeEvent(QCloseEvent* e) override;

private:
    void openDialog();
    void newDialog();
    void searchDialog();
    void importClusterDialog();
    void importTrainingConfigDialog();
    void exportDialog();
    void clusterPresetDialog();
    void runDialog();
    // Strategy ▸ Profile a Training Command…: the user's own training traced (profiledialog.h).
    void profileDialog();
    void refreshRuns();
    void rememberRecent(const QString& path);
    void rebuildRecentMenu();
    bool refuse(const QString& title, const QString& message, bool quiet);
    // One of `names` picked in a dialog; nullopt when cancelled.
    std::optional<QString> choose(const QString& title, const QString& label, const std::vector<std::string>& names,
                                  int current = 0);

    std::unique_ptr<TraceStore> m_store;
    QString m_path, m_lastError;
    RunsModel* m_runs = nullptr;
    QTableView* m_runsView = nullptr;
    QTabWidget* m_tabs = nullptr;
    TimelineView* m_timeline = nullptr;
    StragglersView* m_stragglers = nullptr;
    CriticalPathView* m_critical = nullptr;
    HeatMapView* m_heatMap = nullptr;
    Designer* m_designer = nullptr;
    CompareView* m_compare = nullptr;
    ClusterView* m_cluster = nullptr;
    QMenu* m_recent = nullptr;
    // Docks shown with some tabs only (the designer's with the Designer, the
    // event details with the timelines), unless the user closed them.
    struct TabDock
    {
        QDockWidget* dock = nullptr;
        std::vector<QWidget*> tabs;
        bool front = false; // raised when it comes back with its tab
        bool closedByUser = false;
    };
    std::vector<TabDock> m_tabDocks;
    bool eventFilter(QObject* watched, QEvent* e) override;
    void showDocksFor(QWidget* tab);
    // The constructor's parts, in order (mainwindow.cpp).
    void createTabs();
    void createRunsAndDetails();
    void createDesignerDocks();
    void createAnalysisDocks();
    void trackDocks();
    void createTimelineTools();
    void createFileMenu();
    void createEditAndStrategyMenus();
    void createViewMenu();
    void createHelpMenu();
    QLabel* m_details = nullptr;
    QAction* m_saveAction = nullptr;

public:
    // The dock titled `title` (tests).
    QDockWidget* dock(const QString& objectName) const;
};

} // namespace partita
