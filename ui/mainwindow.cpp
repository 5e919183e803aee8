#include "mainwindow.h"
#include "theme.h"

#include "clusterview.h"
#include "compareview.h"
#include "designer.h"
#include "profiledialog.h"
#include "rundialog.h"
#include "searchdialog.h"
#include "runsmodel.h"
#include "criticalpathview.h"
#include "heatmapview.h"
#include "stragglersview.h"
#include "timelineview.h"

#include "partita/core/clusterio.h"
#include "partita/core/modelio.h"
#include "partita/executor/localmachine.h"
#include "partita/profiler/chromeimport.h"
#include "partita/profiler/nsysimport.h"
#include "partita/profiler/tracestore.h"

#include <QCloseEvent>
#include <QDragEnterEvent>
#include <QDropEvent>
#include <QInputDialog>
#include <QMimeData>
#include <QProgressDialog>
#include <QUndoStack>
#include <QtConcurrent/QtConcurrentRun>
#include <QFutureWatcher>
#include <QEventLoop>

#include <fstream>

#include <QAction>
#include <QComboBox>
#include <QSignalBlocker>
#include <QStandardItemModel>
#include <QLabel>
#include <QLineEdit>
#include <QToolBar>
#include <QApplication>
#include <QActionGroup>
#include <QDockWidget>
#include <QFileDialog>
#include <QFileInfo>
#include <QHeaderView>
#include <QMenuBar>
#include <QMessageBox>
#include <QSettings>
#include <QTimer>
#include <QStatusBar>
#include <QTabWidget>
#include <QTableView>

namespace partita {

namespace {
// Saved window layouts from before the designer's docks are not restored
// (their docks would keep no sensible place); raised with each such change.
constexpr int kWindowStateVersion = 1;
} // namespace

MainWindow::MainWindow(QWidget* parent) : QMainWindow(parent)
{
    createTabs();
    createRunsAndDetails();
    createDesignerDocks();
    createAnalysisDocks();
    trackDocks();
    createTimelineTools();
    createFileMenu();
    createEditAndStrategyMenus();
    createViewMenu();
    createHelpMenu();
    statusBar()->showMessage(tr("No project open"));
    QSettings settings;
    restoreGeometry(settings.value("window/geometry").toByteArray());
    restoreState(settings.value("window/state").toByteArray(), kWindowStateVersion);
    showDocksFor(m_tabs->currentWidget());
    // Sized again once shown: before, the hidden tabs' docks count in the
    // layout's minimum, and the window would be made taller than the screen.
    if (!settings.contains("window/geometry")) {
        resize(1280, 800);
        QTimer::singleShot(0, this, [this] { resize(1280, 800); });
    }
}

// The tabs: Designer, Timeline, Compare, Cluster, and what their views ask of the window.
void MainWindow::createTabs()
{
    setWindowTitle(tr("Partita"));
    m_tabs = new QTabWidget(this);
    m_tabs->setDocumentMode(true);
    m_designer = new Designer(m_tabs);
    m_tabs->addTab(m_designer, tr("Designer"));
    m_timeline = new TimelineView(m_tabs);
    m_tabs->addTab(m_timeline, tr("Timeline"));
    m_compare = new CompareView(m_tabs);
    m_tabs->addTab(m_compare, tr("Compare"));
    m_cluster = new ClusterView(m_tabs);
    m_tabs->addTab(m_cluster, tr("Cluster"));
    connect(m_cluster, &ClusterView::presetRequested, this, &MainWindow::clusterPresetDialog);
    connect(m_cluster, &ClusterView::importRequested, this, &MainWindow::importClusterDialog);
    connect(m_cluster, &ClusterView::detectRequested, this, [this] { importCluster("local"); });
    connect(m_cluster, &ClusterView::errorOccurred, this,
            [this](const QString& msg) { QMessageBox::warning(this, tr("Cluster"), msg); });
    connect(m_cluster, &ClusterView::clusterSaved, this, [this] {
        m_designer->setProject(m_store.get());
        statusBar()->showMessage(tr("Cluster saved as a new version; the designer predicts with it"));
    });
    connect(m_compare, &CompareView::errorOccurred, this,
            [this](const QString& msg) { QMessageBox::warning(this, tr("Compare"), msg); });
    connect(m_designer, &Designer::errorOccurred, this,
            [this](const QString& msg) { QMessageBox::warning(this, tr("Designer"), msg); });
    connect(m_designer, &Designer::compareReady, this, [this](qint64 a, qint64 b) {
        refreshRuns();
        compareRuns(a, b);
    });
    connect(m_designer, &Designer::runStored, this, [this](qint64 id) {
        refreshRuns();
        showRun(id);
    });
    setAcceptDrops(true);
    setCentralWidget(m_tabs);
    connect(m_timeline, &TimelineView::errorOccurred, this,
            [this](const QString& msg) { QMessageBox::warning(this, tr("Timeline"), msg); });
}

// The runs of the project, and the details of the event clicked in a timeline.
void MainWindow::createRunsAndDetails()
{
    m_runs = new RunsModel(this);
    m_runsView = new QTableView(this);
    m_runsView->setModel(m_runs);
    m_runsView->setSelectionBehavior(QAbstractItemView::SelectRows);
    m_runsView->setSelectionMode(QAbstractItemView::ExtendedSelection);
    m_runsView->setToolTip(tr("Click a run to see its timeline; select two (Ctrl+click) and press Ctrl+K to compare them"));
    m_runsView->verticalHeader()->hide();
    m_runsView->horizontalHeader()->setStretchLastSection(true);
    m_runsView->setSortingEnabled(false);
    auto* dock = new QDockWidget(tr("Runs"), this);
    dock->setObjectName("runsDock");
    dock->setWidget(m_runsView);
    addDockWidget(Qt::LeftDockWidgetArea, dock);
    // Details of the event clicked in a timeline.
    m_details = new QLabel(tr("Click an event in a timeline to see it here; its layer is highlighted on every rank."));
    m_details->setWordWrap(true);
    m_details->setTextFormat(Qt::PlainText);
    m_details->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_details->setAlignment(Qt::AlignTop | Qt::AlignLeft);
    m_details->setMargin(6);
    m_details->setMinimumHeight(m_details->fontMetrics().height() * 6);
    auto* detailsDock = new QDockWidget(tr("Details"), this);
    detailsDock->setObjectName("detailsDock");
    detailsDock->setWidget(m_details);
    addDockWidget(Qt::LeftDockWidgetArea, detailsDock);
}

// The designer's panels as docks.
void MainWindow::createDesignerDocks()
{
    // The designer's panels as docks: palette and settings on the left,
    // inspector and the model's and cluster's facts on the right.
    // Those on the right (inspector, model, cluster) share their place as tabs.
    QDockWidget* rightmost = nullptr;
    for (const Designer::Panel& panel : m_designer->takePanels()) {
        auto* d = new QDockWidget(panel.title, this);
        d->setObjectName(panel.objectName);
        d->setWidget(panel.widget);
        addDockWidget(panel.area, d);
        if (panel.area == Qt::RightDockWidgetArea) {
            if (rightmost)
                tabifyDockWidget(rightmost, d);
            rightmost = d;
        }
        m_tabDocks.push_back({d, {m_designer}, panel.front, false});
    }
    for (const TabDock& td : m_tabDocks)
        if (td.front)
            td.dock->raise();
    if (rightmost)
        resizeDocks({rightmost}, {280}, Qt::Horizontal); // narrow
    // Left: the palette above the global settings, which share their place
    // with the runs (shown alone on the other tabs).
    if (QDockWidget* settingsDock = this->dock("settingsDock"))
        tabifyDockWidget(settingsDock, this->dock("runsDock"));
    addDockWidget(Qt::LeftDockWidgetArea, this->dock("detailsDock")); // below the runs again
}

// Below the timeline: stragglers, the critical path and the heat map, tabbed.
void MainWindow::createAnalysisDocks()
{
    // Below the timeline: who made whom wait in its run; a row frames its stretch.
    m_stragglers = new StragglersView(this);
    auto* stragglersDock = new QDockWidget(tr("Stragglers"), this);
    stragglersDock->setObjectName("stragglersDock");
    stragglersDock->setWidget(m_stragglers);
    addDockWidget(Qt::BottomDockWidgetArea, stragglersDock);
    connect(m_stragglers, &StragglersView::clocksFound, m_timeline, &TimelineView::setClockOffsets);
    connect(m_stragglers, &StragglersView::frameRequested, this, [this](int32_t rank, int64_t t0, int64_t t1) {
        m_tabs->setCurrentWidget(m_timeline);
        m_timeline->showRange(rank, t0, t1);
    });
    // Beside it: the critical path of a step, drawn on the timeline.
    m_critical = new CriticalPathView(this);
    auto* criticalDock = new QDockWidget(tr("Critical path"), this);
    criticalDock->setObjectName("criticalPathDock");
    criticalDock->setWidget(m_critical);
    tabifyDockWidget(stragglersDock, criticalDock);
    stragglersDock->raise();
    connect(m_critical, &CriticalPathView::pathChanged, m_timeline, &TimelineView::setCriticalPath);
    connect(m_critical, &CriticalPathView::frameRequested, this, [this](int32_t rank, int64_t t0, int64_t t1) {
        m_tabs->setCurrentWidget(m_timeline);
        m_timeline->showRange(rank, t0, t1);
    });
    // And the ranks' heat map: a cell frames its rank's step.
    m_heatMap = new HeatMapView(this);
    auto* heatDock = new QDockWidget(tr("Heat map"), this);
    heatDock->setObjectName("heatMapDock");
    heatDock->setWidget(m_heatMap);
    tabifyDockWidget(stragglersDock, heatDock);
    stragglersDock->raise();
    connect(m_heatMap, &HeatMapView::frameRequested, this, [this](int32_t rank, int64_t t0, int64_t t1) {
        m_tabs->setCurrentWidget(m_timeline);
        m_timeline->showRange(rank, t0, t1);
    });
}

// Which docks go with which tab; a dock the user closes stays closed.
void MainWindow::trackDocks()
{
    QDockWidget* detailsDock = dock("detailsDock");
    QDockWidget* stragglersDock = dock("stragglersDock");
    QDockWidget* criticalDock = dock("criticalPathDock");
    QDockWidget* heatDock = dock("heatMapDock");
    setTabPosition(Qt::AllDockWidgetAreas, QTabWidget::North);
    m_tabDocks.push_back({detailsDock, {m_timeline, m_compare}, false, false});
    m_tabDocks.push_back({stragglersDock, {m_timeline}, true, false}); // in front of the two beside it
    m_tabDocks.push_back({criticalDock, {m_timeline}, false, false});
    m_tabDocks.push_back({heatDock, {m_timeline}, false, false});
    for (TabDock& td : m_tabDocks) {
        QDockWidget* d = td.dock;
        connect(d->toggleViewAction(), &QAction::triggered, this, [this, d](bool shown) {
            for (TabDock& t : m_tabDocks)
                if (t.dock == d)
                    t.closedByUser = !shown;
        });
        d->installEventFilter(this); // closed with its title bar's button: see eventFilter
    }
    connect(m_tabs, &QTabWidget::currentChanged, this, [this] { showDocksFor(m_tabs->currentWidget()); });
    auto showDetails = [this](const QString& text) {
        m_details->setText(text.isEmpty() ? tr("Nothing selected.") : text);
    };
    connect(m_timeline, &TimelineView::eventSelected, m_details, showDetails);
    connect(m_compare->timelineA(), &TimelineView::eventSelected, m_details, showDetails);
    connect(m_compare->timelineB(), &TimelineView::eventSelected, m_details, showDetails);
    connect(m_designer, &Designer::highlightLayerRequested, this, [this](int layer) {
        m_timeline->setHighlightLayer(layer);
        m_tabs->setCurrentWidget(m_timeline);
        statusBar()->showMessage(tr("Layer %1's events highlighted on every rank (Esc clears)").arg(layer));
    });
    connect(m_runsView->selectionModel(), &QItemSelectionModel::currentRowChanged, this,
            [this](const QModelIndex& cur) {
                if (const RunInfo* r = m_runs->run(cur.row()))
                    showRun(r->id);
            });
}

bool MainWindow::eventFilter(QObject* watched, QEvent* e)
{
    if (e->type() == QEvent::Close) // a dock closed by the user stays closed across tab switches
        for (TabDock& t : m_tabDocks)
            if (t.dock == watched)
                t.closedByUser = true;
    return QMainWindow::eventFilter(watched, e);
}

QDockWidget* MainWindow::dock(const QString& objectName) const
{
    return findChild<QDockWidget*>(objectName, Qt::FindDirectChildrenOnly);
}

void MainWindow::showDocksFor(QWidget* tab)
{
    for (const TabDock& td : m_tabDocks) {
        const bool here = std::find(td.tabs.begin(), td.tabs.end(), tab) != td.tabs.end();
        const bool wasHidden = td.dock->isHidden();
        td.dock->setVisible(here && !td.closedByUser);
        // Coming back with its tab: in front of the docks it shares a place with.
        if (wasHidden && td.dock->isVisible() && td.front)
            td.dock->raise();
    }
}

MainWindow::~MainWindow()
{
    QSettings settings;
    settings.setValue("window/geometry", saveGeometry());
    settings.setValue("window/state", saveState(kWindowStateVersion));
    m_timeline->setRun(nullptr, 0);
}

void MainWindow::openDialog()
{
    QSettings settings;
    const QString path = QFileDialog::getOpenFileName(this, tr("Open Project"), settings.value("project/last").toString(),
                                                      tr("Partita projects (*.partita);;All files (*)"));
    if (!path.isEmpty())
        openProject(path);
}

bool MainWindow::openProject(const QString& path, bool quiet)
{
    if (!QFileInfo::exists(path)) {
        m_lastError = tr("%1: no such file").arg(path);
    } else {
        auto store = TraceStore::open(path.toStdString());
        if (!store) {
            m_lastError = QString::fromStdString(store.error().str());
        } else {
            m_timeline->setRun(nullptr, 0);
            m_stragglers->setRun({}, 0);
            m_critical->setRun({}, 0);
            m_heatMap->setRun({}, 0);
            m_store = std::move(*store);
            m_path = path;
            m_lastError.clear();
            QSettings().setValue("project/last", path);
            setWindowTitle(tr("%1 — Partita").arg(QFileInfo(path).fileName()));
            m_compare->setStore(m_store.get());
            m_cluster->setProject(m_store.get());
            refreshRuns();
            rememberRecent(path);
            if (!m_designer->setProject(m_store.get()) && !quiet)
                QMessageBox::warning(this, tr("Open Project"),
                                     tr("The project's model, cluster or strategy could not be read:\n%1")
                                         .arg(m_designer->lastError()));
            if (m_runs->rowCount() > 0)
                m_runsView->selectRow(0);
            m_tabs->setCurrentWidget(m_designer->hasInputs() || m_runs->rowCount() == 0 ? static_cast<QWidget*>(m_designer)
                                                                                         : m_timeline);
            return true;
        }
    }
    if (!quiet)
        QMessageBox::warning(this, tr("Open Project"), tr("The project could not be opened:\n%1").arg(m_lastError));
    statusBar()->showMessage(m_lastError);
    return false;
}

void MainWindow::newDialog()
{
    const QString path = QFileDialog::getSaveFileName(this, tr("New Project"), QSettings().value("project/last").toString(),
                                                      tr("Partita projects (*.partita)"));
    if (path.isEmpty())
        return;
    newProject(path.endsWith(".partita") ? path : path + ".partita");
}

bool MainWindow::refuse(const QString& title, const QString& message, bool quiet)
{
    m_lastError = message;
    statusBar()->showMessage(message);
    if (!quiet)
        QMessageBox::warning(this, title, message);
    return false;
}

bool MainWindow::newProject(const QString& path, bool quiet)
{
    if (QFileInfo::exists(path))
        return refuse(tr("New Project"), tr("%1 already exists: open it, or choose another name.").arg(path), quiet);
    auto store = TraceStore::open(path.toStdString());
    if (!store)
        return refuse(tr("New Project"), QString::fromStdString(store.error().str()), quiet);
    (*store).reset(); // created; openProject opens it again
    return openProject(path, quiet);
}

void MainWindow::closeEvent(QCloseEvent* e)
{
    if (m_designer->hasInputs() && !m_designer->undoStack()->isClean()) {
        const auto answer = QMessageBox::question(
            this, tr("Unsaved Strategy"),
            tr("The strategy has edits that are not saved as a version in the project. Save them?"),
            QMessageBox::Save | QMessageBox::Discard | QMessageBox::Cancel, QMessageBox::Save);
        if (answer == QMessageBox::Cancel) {
            e->ignore();
            return;
        }
        if (answer == QMessageBox::Save && !m_designer->saveVersion({})) {
            e->ignore();
            return;
        }
        if (answer == QMessageBox::Discard)
            m_designer->discardAutosave();
    }
    e->accept();
}

void MainWindow::rememberRecent(const QString& path)
{
    QSettings settings;
    QStringList recent = settings.value("project/recent").toStringList();
    const QString abs = QFileInfo(path).absoluteFilePath();
    recent.removeAll(abs);
    recent.prepend(abs);
    while (recent.size() > 10)
        recent.removeLast();
    settings.setValue("project/recent", recent);
    rebuildRecentMenu();
}

void MainWindow::rebuildRecentMenu()
{
    m_recent->clear();
    const QStringList recent = QSettings().value("project/recent").toStringList();
    for (const QString& p : recent)
        m_recent->addAction(QFileInfo(p).fileName(), this, [this, p] { openProject(p); })->setToolTip(p);
    m_recent->setEnabled(!recent.isEmpty());
}

void MainWindow::searchDialog()
{
    if (!m_designer->hasInputs()) {
        refuse(tr("Auto-Search"), tr("The project has no model and cluster to search for: import them first."), false);
        return;
    }
    SearchDialog dlg(*m_designer->model(), *m_designer->cluster(), m_designer->strategy(), this);
    connect(&dlg, &SearchDialog::applyStrategy, this, [this](const Strategy& s) {
        m_designer->editStrategy(s, tr("Apply searched strategy"));
        m_tabs->setCurrentWidget(m_designer);
        statusBar()->showMessage(tr("Searched strategy applied (Ctrl+Z undoes it)"));
    });
    dlg.exec();
}

void MainWindow::runDialog()
{
    if (!m_store || !m_designer->hasInputs()) {
        refuse(tr("Run"), tr("Open a project with a model and a strategy to run."), false);
        return;
    }
    RunDialog dlg(QString::fromStdString(m_store->path()), *m_designer->model(), m_designer->strategy(), this);
    connect(&dlg, &RunDialog::finishedRun, this, [this, &dlg](bool ok) {
        refreshRuns();
        if (!ok)
            QMessageBox::warning(&dlg, tr("Run Failed"), dlg.failure());
        if (dlg.measuredRun() > 0 && dlg.predictedRun() > 0)
            compareRuns(dlg.predictedRun(), dlg.measuredRun(), true);
    });
    dlg.exec();
}

void MainWindow::profileDialog()
{
    if (!m_store) {
        refuse(tr("Profile"), tr("Open or create a project to store the profiled run in."), false);
        return;
    }
    std::optional<Model> model;
    std::optional<Strategy> strategy;
    if (m_designer->hasInputs()) {
        model = *m_designer->model();
        strategy = m_designer->strategy();
    }
    ProfileDialog dlg(QString::fromStdString(m_store->path()), model, strategy, this);
    connect(&dlg, &ProfileDialog::finishedRun, this, [this, &dlg](bool ok) {
        refreshRuns();
        if (!ok)
            QMessageBox::warning(&dlg, tr("Profiling Failed"), dlg.failure());
        if (dlg.measuredRun() > 0 && dlg.predictedRun() > 0)
            compareRuns(dlg.predictedRun(), dlg.measuredRun(), true);
        else if (dlg.measuredRun() > 0)
            showRun(dlg.measuredRun());
    });
    dlg.exec();
}

bool MainWindow::compareRuns(int64_t a, int64_t b, bool quiet)
{
    if (!m_compare->compare(a, b))
        return refuse(tr("Compare"), m_compare->lastError(), quiet);
    m_tabs->setCurrentWidget(m_compare);
    statusBar()->showMessage(tr("Comparing run %1 (A) with run %2 (B)").arg(a).arg(b));
    return true;
}

void MainWindow::refreshRuns()
{
    auto runs = m_store->runs();
    if (!runs) {
        m_lastError = QString::fromStdString(runs.error().str());
        statusBar()->showMessage(m_lastError);
        m_runs->setRuns({});
        return;
    }
    m_runs->setRuns(*runs);
    m_compare->refreshRunLists();
    m_runsView->resizeColumnsToContents();
    statusBar()->showMessage(tr("%1 — %n run(s)", "", int(runs->size())).arg(m_path));
}

void MainWindow::showRun(int64_t runId)
{
    if (!m_store)
        return;
    m_timeline->setRun(m_store.get(), runId);
    m_stragglers->setRun(m_store->path(), runId);
    m_critical->setRun(m_store->path(), runId);
    m_heatMap->setRun(m_store->path(), runId);
    m_tabs->setCurrentWidget(m_timeline);
    const int row = m_runs->rowOf(runId);
    if (row >= 0 && m_runsView->currentIndex().row() != row)
        m_runsView->selectRow(row);
    if (const RunInfo* r = m_runs->run(row))
        statusBar()->showMessage(tr("Run %1: %2").arg(r->id).arg(QString::fromStdString(r->name)));
}

} // namespace partita
