// partita: the workbench. `partita [PROJECT.partita]` opens a project.
#include "clusterview.h"
#include "compareview.h"
#include "criticalpathview.h"
#include "designer.h"
#include "heatmapview.h"
#include "mainwindow.h"
#include "theme.h"
#include "timelineview.h"

#include <QTabWidget>

#include <QApplication>
#include <QCommandLineParser>
#include <QIcon>
#include <QScreen>
#include <QSettings>
#include <QDockWidget>
#include <QTimer>

#include <cstdio>

int main(int argc, char** argv)
{
    QApplication app(argc, argv);
    QApplication::setApplicationName("Partita");
    QApplication::setOrganizationName("Partita");
    QApplication::setApplicationVersion(PARTITA_VERSION_STRING);
    QGuiApplication::setDesktopFileName("io.partita.Partita"); // packaging/desktop: Wayland matches windows by it
    QApplication::setWindowIcon(QIcon::fromTheme("io.partita.Partita")); // installed with the package
    QCommandLineParser cl;
    cl.setApplicationDescription("Partita: design, predict, run and profile distributed-training strategies");
    cl.addHelpOption();
    cl.addVersionOption();
    cl.addPositionalArgument("project", "a project file (*.partita) to open");
    QCommandLineOption shot("screenshot", "save the window as PNG once it is shown, then quit (for tests)", "png");
    QCommandLineOption runOpt("run", "the run to show (default: the first)", "id");
    QCommandLineOption viewOpt("view", "the view to show: designer, graph, timeline, critical-path, heatmap, compare or cluster", "view");
    QCommandLineOption compareOpt("compare", "compare two runs, A,B (opens the Compare view)", "a,b");
    QCommandLineOption groupOpt("group-ranks", "group the timeline's ranks by the run's mesh: dp, tp, pp, cp or ep", "axis");
    QCommandLineOption themeOpt("theme", "system, light or dark (default: as last chosen in View > Theme)", "theme");
    cl.addOption(shot);
    cl.addOption(runOpt);
    cl.addOption(viewOpt);
    cl.addOption(compareOpt);
    cl.addOption(themeOpt);
    cl.addOption(groupOpt);
    cl.process(app);
    partita::Theme theme = partita::Theme::System;
    if (cl.isSet(themeOpt) && !partita::themeFromName(cl.value(themeOpt), theme)) {
        std::fprintf(stderr, "partita: --theme: expected system, light or dark\n");
        return 2;
    }
    if (!cl.isSet(themeOpt))
        (void)partita::themeFromName(QSettings().value("view/theme").toString(), theme);
    partita::applyTheme(theme);
    partita::MainWindow window;
    window.show();
    if (!cl.positionalArguments().isEmpty() &&
        !window.openProject(cl.positionalArguments().first(), cl.isSet(shot)) && cl.isSet(shot)) {
        std::fprintf(stderr, "partita: %s\n", qPrintable(window.lastError()));
        return 2;
    }
    if (cl.isSet(runOpt))
        window.showRun(cl.value(runOpt).toLongLong());
    if (cl.isSet(groupOpt)) {
        std::optional<partita::MeshAxis> axis;
        for (auto a : {partita::MeshAxis::Data, partita::MeshAxis::Tensor, partita::MeshAxis::Pipeline, partita::MeshAxis::Context,
                       partita::MeshAxis::Expert})
            if (cl.value(groupOpt).toStdString() == partita::meshAxisName(a))
                axis = a;
        if (!axis) {
            std::fprintf(stderr, "partita: --group-ranks: expected dp, tp, pp, cp or ep\n");
            return 2;
        }
        if (!window.timeline()->canGroupBy(*axis)) {
            std::fprintf(stderr, "partita: --group-ranks: the run has no %s groups (%s)\n", qPrintable(cl.value(groupOpt)),
                         window.timeline()->mesh() ? partita::meshText(*window.timeline()->mesh()).c_str()
                                                   : "no mesh: give one on import with partita-cli trace import --mesh");
            return 2;
        }
        window.timeline()->setGroupBy(axis);
    }
    if (cl.value(viewOpt) == "designer")
        window.tabs()->setCurrentWidget(window.designer());
    else if (cl.value(viewOpt) == "graph") {
        window.tabs()->setCurrentWidget(window.designer());
        window.designer()->showGraph(true);
    }
    else if (cl.value(viewOpt) == "timeline")
        window.tabs()->setCurrentWidget(window.timeline());
    else if (cl.value(viewOpt) == "critical-path") { // the timeline, with its critical-path panel in front
        window.tabs()->setCurrentWidget(window.timeline());
        if (auto* d = window.findChild<QDockWidget*>("criticalPathDock"))
            d->raise();
    }
    else if (cl.value(viewOpt) == "heatmap") { // the timeline, with the ranks' heat map in front
        window.tabs()->setCurrentWidget(window.timeline());
        if (auto* d = window.findChild<QDockWidget*>("heatMapDock"))
            d->raise();
    }
    else if (cl.value(viewOpt) == "compare")
        window.tabs()->setCurrentWidget(window.compareView());
    else if (cl.value(viewOpt) == "cluster")
        window.tabs()->setCurrentWidget(window.clusterView());
    else if (cl.isSet(viewOpt)) {
        std::fprintf(stderr, "partita: --view: expected designer, graph, timeline, critical-path, heatmap, compare or cluster\n");
        return 2;
    }
    if (cl.isSet(compareOpt)) {
        const QStringList ab = cl.value(compareOpt).split(',');
        if (ab.size() != 2 || !window.compareRuns(ab[0].toLongLong(), ab[1].toLongLong(), cl.isSet(shot))) {
            std::fprintf(stderr, "partita: --compare %s: %s\n", qPrintable(cl.value(compareOpt)),
                         ab.size() != 2 ? "expected two run ids, A,B" : qPrintable(window.lastError()));
            if (cl.isSet(shot))
                return 2;
        }
    }
    if (cl.isSet(shot)) {
        // Once the designer's prediction and any comparison are in (at most 20 s), and painted.
        auto* poll = new QTimer(&window);
        int waited = 0;
        QObject::connect(poll, &QTimer::timeout, &window, [&, poll]() mutable {
            waited += 100;
            if ((window.designer()->predicting() || window.compareView()->busy() || window.criticalPath()->busy() ||
                 window.heatMap()->busy() || window.timeline()->memoryLoading() ||
                 window.timeline()->groupsLoading()) &&
                waited < 20000)
                return;
            poll->stop();
            QTimer::singleShot(400, &window, [&] {
                // What the screen shows (the window as painted, not re-rendered).
                const bool ok = window.screen()->grabWindow(window.winId()).save(cl.value(shot));
                QApplication::exit(ok ? 0 : 2);
            });
        });
        poll->start(100);
    }
    return QApplication::exec();
}
