// partita: the workbench. `partita [PROJECT.partita]` opens a project.
#include "mainwindow.h"

#include <QApplication>
#include <QCommandLineParser>
#include <QTimer>

#include <cstdio>

int main(int argc, char** argv)
{
    QApplication app(argc, argv);
    QApplication::setApplicationName("Partita");
    QApplication::setOrganizationName("Partita");
    QApplication::setApplicationVersion(PARTITA_VERSION);
    QCommandLineParser cl;
    cl.setApplicationDescription("Partita: design, predict, run and profile distributed-training strategies");
    cl.addHelpOption();
    cl.addVersionOption();
    cl.addPositionalArgument("project", "a project file (*.partita) to open");
    QCommandLineOption shot("screenshot", "save the window as PNG once it is shown, then quit (for tests)", "png");
    QCommandLineOption runOpt("run", "the run to show (default: the first)", "id");
    cl.addOption(shot);
    cl.addOption(runOpt);
    cl.process(app);
    partita::MainWindow window;
    window.show();
    if (!cl.positionalArguments().isEmpty() &&
        !window.openProject(cl.positionalArguments().first(), cl.isSet(shot)) && cl.isSet(shot)) {
        std::fprintf(stderr, "partita: %s\n", qPrintable(window.lastError()));
        return 2;
    }
    if (cl.isSet(runOpt))
        window.showRun(cl.value(runOpt).toLongLong());
    if (cl.isSet(shot)) {
        QTimer::singleShot(500, &window, [&] {
            const bool ok = window.grab().save(cl.value(shot));
            QApplication::exit(ok ? 0 : 2);
        });
    }
    return QApplication::exec();
}
