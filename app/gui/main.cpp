// partita: the workbench.
#include "mainwindow.h"

#include <QApplication>

int main(int argc, char** argv)
{
    QApplication app(argc, argv);
    QApplication::setApplicationName("Partita");
    QApplication::setOrganizationName("Partita");
    QApplication::setApplicationVersion(PARTITA_VERSION);
    partita::MainWindow window;
    window.show();
    return QApplication::exec();
}
