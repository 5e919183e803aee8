#include "mainwindow.h"

#include "runsmodel.h"
#include "timelineview.h"

#include "partita/profiler/tracestore.h"

#include <QAction>
#include <QComboBox>
#include <QLineEdit>
#include <QToolBar>
#include <QApplication>
#include <QDockWidget>
#include <QFileDialog>
#include <QFileInfo>
#include <QHeaderView>
#include <QMenuBar>
#include <QMessageBox>
#include <QSettings>
#include <QStatusBar>
#include <QTabWidget>
#include <QTableView>

namespace partita {

MainWindow::MainWindow(QWidget* parent) : QMainWindow(parent)
{
    setWindowTitle(tr("Partita"));
    m_tabs = new QTabWidget(this);
    m_tabs->setDocumentMode(true);
    m_timeline = new TimelineView(m_tabs);
    m_tabs->addTab(m_timeline, tr("Timeline"));
    setCentralWidget(m_tabs);
    connect(m_timeline, &TimelineView::errorOccurred, this,
            [this](const QString& msg) { QMessageBox::warning(this, tr("Timeline"), msg); });

    m_runs = new RunsModel(this);
    m_runsView = new QTableView(this);
    m_runsView->setModel(m_runs);
    m_runsView->setSelectionBehavior(QAbstractItemView::SelectRows);
    m_runsView->setSelectionMode(QAbstractItemView::SingleSelection);
    m_runsView->verticalHeader()->hide();
    m_runsView->horizontalHeader()->setStretchLastSection(true);
    m_runsView->setSortingEnabled(false);
    auto* dock = new QDockWidget(tr("Runs"), this);
    dock->setObjectName("runsDock");
    dock->setWidget(m_runsView);
    addDockWidget(Qt::LeftDockWidgetArea, dock);
    connect(m_runsView->selectionModel(), &QItemSelectionModel::currentRowChanged, this,
            [this](const QModelIndex& cur) {
                if (const RunInfo* r = m_runs->run(cur.row()))
                    showRun(r->id);
            });

    // Timeline tools: search, colour mode.
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

    QMenu* file = menuBar()->addMenu(tr("&File"));
    QAction* open = file->addAction(tr("&Open Project…"), this, &MainWindow::openDialog);
    open->setShortcut(QKeySequence::Open);
    file->addSeparator();
    QAction* quit = file->addAction(tr("&Quit"), qApp, &QApplication::quit);
    quit->setShortcut(QKeySequence::Quit);
    QMenu* view = menuBar()->addMenu(tr("&View"));
    view->addAction(dock->toggleViewAction());
    QAction* fit = view->addAction(tr("&Fit Timeline"), this, [this] {
        m_timeline->axis().fit();
        m_timeline->viewport()->update();
    });
    fit->setShortcut(QKeySequence(Qt::CTRL | Qt::Key_0));
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
                           tr("Partita %1\nA workbench for distributed-training strategies.\n"
                              "GPL-3.0-or-later.")
                               .arg(QCoreApplication::applicationVersion()));
    });
    statusBar()->showMessage(tr("No project open"));
    resize(1280, 800);
    QSettings settings;
    restoreGeometry(settings.value("window/geometry").toByteArray());
    restoreState(settings.value("window/state").toByteArray());
}

MainWindow::~MainWindow()
{
    QSettings settings;
    settings.setValue("window/geometry", saveGeometry());
    settings.setValue("window/state", saveState());
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
            m_store = std::move(*store);
            m_path = path;
            m_lastError.clear();
            QSettings().setValue("project/last", path);
            setWindowTitle(tr("%1 — Partita").arg(QFileInfo(path).fileName()));
            refreshRuns();
            if (m_runs->rowCount() > 0)
                m_runsView->selectRow(0);
            return true;
        }
    }
    if (!quiet)
        QMessageBox::warning(this, tr("Open Project"), tr("The project could not be opened:\n%1").arg(m_lastError));
    statusBar()->showMessage(m_lastError);
    return false;
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
    m_runsView->resizeColumnsToContents();
    statusBar()->showMessage(tr("%1 — %n run(s)", "", int(runs->size())).arg(m_path));
}

void MainWindow::showRun(int64_t runId)
{
    if (!m_store)
        return;
    m_timeline->setRun(m_store.get(), runId);
    m_tabs->setCurrentWidget(m_timeline);
    const int row = m_runs->rowOf(runId);
    if (row >= 0 && m_runsView->currentIndex().row() != row)
        m_runsView->selectRow(row);
    if (const RunInfo* r = m_runs->run(row))
        statusBar()->showMessage(tr("Run %1: %2").arg(r->id).arg(QString::fromStdString(r->name)));
}

} // namespace partita
