#include "mainwindow.h"

#include <QAction>
#include <QApplication>
#include <QLabel>
#include <QMenuBar>
#include <QMessageBox>
#include <QStatusBar>

namespace partita {

MainWindow::MainWindow(QWidget* parent) : QMainWindow(parent)
{
    setWindowTitle(tr("Partita"));
    auto* label = new QLabel(tr("The workbench views are not built yet.\n"
                                "Use partita-cli inspect to read models and clusters."),
                             this);
    label->setAlignment(Qt::AlignCenter);
    setCentralWidget(label);

    QMenu* file = menuBar()->addMenu(tr("&File"));
    QAction* quit = file->addAction(tr("&Quit"), qApp, &QApplication::quit);
    quit->setShortcut(QKeySequence::Quit);
    QMenu* help = menuBar()->addMenu(tr("&Help"));
    help->addAction(tr("&About Partita"), this, [this] {
        QMessageBox::about(this, tr("About Partita"),
                           tr("Partita %1\nA workbench for distributed-training strategies.\n"
                              "GPL-3.0-or-later.")
                               .arg(QCoreApplication::applicationVersion()));
    });
    statusBar()->showMessage(tr("No project open"));
    resize(1000, 700);
}

} // namespace partita
