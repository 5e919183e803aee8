// MainWindow's toolbar and menus (mainwindow.h): the timeline's tools, File,
// Edit, Strategy, View and Help. Split from mainwindow.cpp.
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

// Timeline tools: search, colour mode, rank grouping.
void MainWindow::createTimelineTools()
{
    auto* tools = addToolBar(tr("Timeline"));
    tools->setObjectName("timelineToolBar");
    auto* search = new QLineEdit(tools);
    search->setPlaceholderText(tr("Search events by name (Ctrl+F)"));
    search->setClearButtonEnabled(true);
    search->setMaximumWidth(320);
    tools->addWidget(search);
    connect(search, &QLineEdit::textChanged, m_timeline, &TimelineView::setSearch);
    auto* focusSearch = new QAction(tr("Search Events"), this);
    focusSearch->setShortcut(QKeySequence::Find);
    connect(focusSearch, &QAction::triggered, search, [search] {
        search->setFocus();
        search->selectAll();
    });
    addAction(focusSearch);
    auto* colorBy = new QComboBox(tools);
    colorBy->addItem(tr("Colour by kind"));
    colorBy->addItem(tr("Colour by layer"));
    tools->addWidget(colorBy);
    connect(colorBy, &QComboBox::currentIndexChanged, m_timeline, [this](int i) {
        m_timeline->setColorBy(i == 1 ? TimelineView::ColorBy::Layer : TimelineView::ColorBy::Kind);
    });
    // Ranks grouped by the run's mesh: the axes it has, the others greyed.
    auto* groupBy = new QComboBox(tools);
    groupBy->setObjectName("groupRanks");
    groupBy->addItem(tr("Ranks in order"), -1);
    for (MeshAxis a : {MeshAxis::Data, MeshAxis::Tensor, MeshAxis::Pipeline, MeshAxis::Context, MeshAxis::Expert})
        groupBy->addItem(tr("Ranks by %1").arg(QString::fromStdString(meshAxisTitle(a))), int(a));
    tools->addWidget(groupBy);
    auto syncGroupBy = [this, groupBy] {
        const QSignalBlocker block(groupBy);
        for (int i = 1; i < groupBy->count(); ++i) {
            const bool can = m_timeline->canGroupBy(MeshAxis(groupBy->itemData(i).toInt()));
            qobject_cast<QStandardItemModel*>(groupBy->model())->item(i)->setEnabled(can);
        }
        groupBy->setCurrentIndex(m_timeline->groupBy() ? groupBy->findData(int(*m_timeline->groupBy())) : 0);
        groupBy->setToolTip(m_timeline->mesh()
                                ? tr("The run's mesh: %1").arg(QString::fromStdString(meshText(*m_timeline->mesh())))
                                : tr("The run has no mesh: a run of a strategy has one; "
                                     "for an imported trace, give it on import (partita-cli trace import --mesh dp=4,tp=2)"));
    };
    syncGroupBy();
    connect(m_timeline, &TimelineView::groupingChanged, groupBy, syncGroupBy);
    connect(groupBy, &QComboBox::activated, m_timeline, [this, groupBy](int i) {
        const int a = groupBy->itemData(i).toInt();
        m_timeline->setGroupBy(a < 0 ? std::nullopt : std::optional<MeshAxis>(MeshAxis(a)));
    });
}

// File: projects, imports, export, save, quit.
void MainWindow::createFileMenu()
{
    QMenu* file = menuBar()->addMenu(tr("&File"));
    QAction* create = file->addAction(tr("&New Project…"), this, &MainWindow::newDialog);
    create->setShortcut(QKeySequence::New);
    QAction* open = file->addAction(tr("&Open Project…"), this, &MainWindow::openDialog);
    open->setShortcut(QKeySequence::Open);
    m_recent = file->addMenu(tr("Open &Recent"));
    rebuildRecentMenu();
    file->addSeparator();
    QAction* importModelAction = file->addAction(tr("Import &Model…"), this, [this] {
        const QString path = QFileDialog::getOpenFileName(
            this, tr("Import Model"), QSettings().value("import/dir").toString(),
            tr("Models (*.json *.onnx);;All files (*)"));
        if (!path.isEmpty())
            importModel(path);
    });
    importModelAction->setShortcut(QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_M));
    QAction* importClusterAction = file->addAction(tr("Import &Cluster…"), this, &MainWindow::importClusterDialog);
    importClusterAction->setShortcut(QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_C));
    file->addAction(tr("Cluster from &Preset…"), this, &MainWindow::clusterPresetDialog);
    QAction* importTraceAction = file->addAction(tr("Import &Trace…"), this, [this] {
        const QStringList paths = QFileDialog::getOpenFileNames(
            this, tr("Import Trace"), QSettings().value("import/dir").toString(),
            tr("Traces (*.json *.json.gz *.sqlite);;All files (*)"));
        if (!paths.isEmpty())
            importTraces(paths);
    });
    importTraceAction->setShortcut(QKeySequence(Qt::CTRL | Qt::Key_I));
    file->addAction(tr("Import Training &Configuration…"), this, &MainWindow::importTrainingConfigDialog);
    QAction* exportAction = file->addAction(tr("&Export Strategy…"), this, &MainWindow::exportDialog);
    exportAction->setShortcut(QKeySequence(Qt::CTRL | Qt::Key_E));
    file->addSeparator();
    m_saveAction = file->addAction(tr("&Save Strategy Version"), this, [this] {
        bool ok = false;
        const QString name = QInputDialog::getText(this, tr("Save Strategy Version"),
                                                   tr("Name (saving under an existing name adds a version):"),
                                                   QLineEdit::Normal,
                                                   QString::fromStdString(m_designer->strategy().name), &ok);
        if (ok)
            m_designer->saveVersion(name);
    });
    m_saveAction->setShortcut(QKeySequence::Save);
    file->addSeparator();
    QAction* quit = file->addAction(tr("&Quit"), qApp, &QApplication::quit);
    quit->setShortcut(QKeySequence::Quit);
}

// Edit (the designer's undo) and Strategy (search, run, profile, save).
void MainWindow::createEditAndStrategyMenus()
{
    QMenu* edit = menuBar()->addMenu(tr("&Edit"));
    QAction* undo = m_designer->undoStack()->createUndoAction(this, tr("&Undo"));
    undo->setShortcut(QKeySequence::Undo);
    QAction* redo = m_designer->undoStack()->createRedoAction(this, tr("&Redo"));
    redo->setShortcut(QKeySequence::Redo);
    edit->addAction(undo);
    edit->addAction(redo);
    QMenu* strategyMenu = menuBar()->addMenu(tr("&Strategy"));
    QAction* searchAction = strategyMenu->addAction(tr("Auto-&Search…"), this, &MainWindow::searchDialog);
    searchAction->setShortcut(QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_S));
    QAction* runAction = strategyMenu->addAction(tr("&Run…"), this, &MainWindow::runDialog);
    runAction->setShortcut(QKeySequence(Qt::CTRL | Qt::Key_R));
    strategyMenu->addAction(tr("&Profile a Training Command…"), this, &MainWindow::profileDialog);
    strategyMenu->addAction(m_saveAction);
}

// View: docks, tabs, compare, fit, clock alignment, theme.
void MainWindow::createViewMenu()
{
    QMenu* view = menuBar()->addMenu(tr("&View"));
    view->addAction(dock("runsDock")->toggleViewAction());
    for (const TabDock& td : m_tabDocks)
        view->addAction(td.dock->toggleViewAction());
    QAction* toDesigner = view->addAction(tr("&Designer"), this, [this] { m_tabs->setCurrentWidget(m_designer); });
    toDesigner->setShortcut(QKeySequence(Qt::CTRL | Qt::Key_1));
    QAction* toTimeline = view->addAction(tr("&Timeline"), this, [this] { m_tabs->setCurrentWidget(m_timeline); });
    toTimeline->setShortcut(QKeySequence(Qt::CTRL | Qt::Key_2));
    QAction* toCompare = view->addAction(tr("&Compare"), this, [this] { m_tabs->setCurrentWidget(m_compare); });
    toCompare->setShortcut(QKeySequence(Qt::CTRL | Qt::Key_3));
    QAction* toCluster = view->addAction(tr("C&luster"), this, [this] { m_tabs->setCurrentWidget(m_cluster); });
    toCluster->setShortcut(QKeySequence(Qt::CTRL | Qt::Key_4));
    QAction* compareSelected = view->addAction(tr("Compare &Selected Runs"), this, [this] {
        const QModelIndexList rows = m_runsView->selectionModel()->selectedRows();
        if (rows.size() != 2) {
            QMessageBox::information(this, tr("Compare"),
                                     tr("Select two runs in the Runs panel (Ctrl+click), then compare them."));
            return;
        }
        const RunInfo* a = m_runs->run(std::min(rows[0].row(), rows[1].row()));
        const RunInfo* b = m_runs->run(std::max(rows[0].row(), rows[1].row()));
        if (a && b)
            compareRuns(a->id, b->id);
    });
    compareSelected->setShortcut(QKeySequence(Qt::CTRL | Qt::Key_K));
    QAction* fit = view->addAction(tr("&Fit Timeline"), this, [this] {
        m_timeline->axis().fit();
        m_timeline->viewport()->update();
    });
    fit->setShortcut(QKeySequence(Qt::CTRL | Qt::Key_0));
    // The ranks' clocks: aligned on their collectives' ends (the Stragglers
    // panel's corrections, shown on each rank's header), or raw.
    QAction* align = view->addAction(tr("&Align Ranks' Clocks"));
    align->setObjectName("alignClocks");
    align->setCheckable(true);
    align->setChecked(true);
    connect(align, &QAction::toggled, m_timeline, &TimelineView::setAlignClocks);
    // Light and dark: the system's palette unless chosen here (remembered).
    view->addSeparator();
    QMenu* themeMenu = view->addMenu(tr("T&heme"));
    auto* themes = new QActionGroup(this);
    for (auto [t, label] : {std::pair{Theme::System, tr("Follow the &System")}, std::pair{Theme::Light, tr("&Light")},
                            std::pair{Theme::Dark, tr("&Dark")}}) {
        QAction* a = themeMenu->addAction(label);
        a->setCheckable(true);
        a->setChecked(currentTheme() == t);
        a->setData(themeName(t));
        themes->addAction(a);
        const Theme chosen = t;
        connect(a, &QAction::triggered, this, [chosen] {
            applyTheme(chosen);
            QSettings().setValue("view/theme", themeName(chosen));
        });
    }
}

// Help: the timeline's keys, about.
void MainWindow::createHelpMenu()
{
    QMenu* help = menuBar()->addMenu(tr("&Help"));
    help->addAction(tr("&Timeline Keys"), this, [this] {
        QMessageBox::information(this, tr("Timeline keys"),
                                 tr("W / S: zoom in / out at the cursor\nA / D: pan left / right\nF: fit the run\n"
                                    "Ctrl+wheel: zoom at the cursor\nShift+wheel or drag: pan\n"
                                    "Double-click an event: zoom to it\nShift+drag: measure a range (Esc clears it)\n"
                                    "Click a rank: collapse or expand it"));
    });
    help->addAction(tr("&About Partita"), this, [this] {
        QMessageBox::about(this, tr("About Partita"),
                           tr("<h3>Partita %1</h3><p>A workbench for distributed-training strategies: design, "
                              "predict, run and profile how a model is split across GPUs.</p>"
                              "<p>Built with Qt %2 (running on %3).</p>"
                              "<p>Partita is free software under the GNU General Public License, version 3 or "
                              "later; it comes with no warranty.</p>")
                               .arg(QCoreApplication::applicationVersion().toHtmlEscaped(), QT_VERSION_STR, qVersion()));
    });
}

} // namespace partita
