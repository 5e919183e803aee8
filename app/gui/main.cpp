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

namespace {

// The command line's options, beside the help, the version and the project.
struct GuiOptions
{
    QCommandLineOption shot{"screenshot", "save the window as PNG once it is shown, then quit (for tests)", "png"};
    QCommandLineOption run{"run", "the run to show (default: the first)", "id"};
    QCommandLineOption view{"view", "the view to show: designer, graph, timeline, critical-path, heatmap, compare or cluster", "view"};
    QCommandLineOption compare{"compare", "compare two runs, A,B (opens the Compare view)", "a,b"};
    QCommandLineOption group{"group-ranks", "group the timeline's ranks by the run's mesh: dp, tp, pp, cp or ep", "axis"};
    QCommandLineOption theme{"theme", "system, light or dark (default: as last chosen in View > Theme)", "theme"};
};

// Names the application for settings, the desktop and the window manager.
void setApplicationIdentity()
{
    QApplication::setApplicationName("Partita");
    QApplication::setOrganizationName("Partita");
    QApplication::setApplicationVersion(PARTITA_VERSION_STRING);
    QGuiApplication::setDesktopFileName("io.partita.Partita"); // packaging/desktop: Wayland matches windows by it
    QApplication::setWindowIcon(QIcon::fromTheme("io.partita.Partita")); // installed with the package
}

// Describes the command line to the parser.
void describeCommandLine(QCommandLineParser& cl, const GuiOptions& opt)
{
    cl.setApplicationDescription("Partita: design, predict, run and profile distributed-training strategies");
    cl.addHelpOption();
    cl.addVersionOption();
    cl.addPositionalArgument("project", "a project file (*.partita) to open");
    cl.addOption(opt.shot);
    cl.addOption(opt.run);
    cl.addOption(opt.view);
    cl.addOption(opt.compare);
    cl.addOption(opt.theme);
    cl.addOption(opt.group);
}

// Applies --theme, or the theme last chosen; false (and a message) when --theme names none.
bool applyThemeOption(const QCommandLineParser& cl, const GuiOptions& opt)
{
    partita::Theme theme = partita::Theme::System;
    if (cl.isSet(opt.theme) && !partita::themeFromName(cl.value(opt.theme), theme)) {
        std::fprintf(stderr, "partita: --theme: expected system, light or dark\n");
        return false;
    }
    if (!cl.isSet(opt.theme))
        (void)partita::themeFromName(QSettings().value("view/theme").toString(), theme);
    partita::applyTheme(theme);
    return true;
}

// Groups the timeline's ranks by --group-ranks; false (and a message) when the axis is unknown or the run lacks it.
bool applyGroupRanks(partita::MainWindow& window, const QCommandLineParser& cl, const GuiOptions& opt)
{
    std::optional<partita::MeshAxis> axis;
    for (auto a : {partita::MeshAxis::Data, partita::MeshAxis::Tensor, partita::MeshAxis::Pipeline, partita::MeshAxis::Context,
                   partita::MeshAxis::Expert})
        if (cl.value(opt.group).toStdString() == partita::meshAxisName(a))
            axis = a;
    if (!axis) {
        std::fprintf(stderr, "partita: --group-ranks: expected dp, tp, pp, cp or ep\n");
        return false;
    }
    if (!window.timeline()->canGroupBy(*axis)) {
        std::fprintf(stderr, "partita: --group-ranks: the run has no %s groups (%s)\n", qPrintable(cl.value(opt.group)),
                     window.timeline()->mesh() ? partita::meshText(*window.timeline()->mesh()).c_str()
                                               : "no mesh: give one on import with partita-cli trace import --mesh");
        return false;
    }
    window.timeline()->setGroupBy(axis);
    return true;
}

// Brings the view --view names to the front; false (and a message) when it names none.
bool applyViewOption(partita::MainWindow& window, const QCommandLineParser& cl, const GuiOptions& opt)
{
    if (cl.value(opt.view) == "designer")
        window.tabs()->setCurrentWidget(window.designer());
    else if (cl.value(opt.view) == "graph") {
        window.tabs()->setCurrentWidget(window.designer());
        window.designer()->showGraph(true);
    }
    else if (cl.value(opt.view) == "timeline")
        window.tabs()->setCurrentWidget(window.timeline());
    else if (cl.value(opt.view) == "critical-path") { // the timeline, with its critical-path panel in front
        window.tabs()->setCurrentWidget(window.timeline());
        if (auto* d = window.findChild<QDockWidget*>("criticalPathDock"))
            d->raise();
    }
    else if (cl.value(opt.view) == "heatmap") { // the timeline, with the ranks' heat map in front
        window.tabs()->setCurrentWidget(window.timeline());
        if (auto* d = window.findChild<QDockWidget*>("heatMapDock"))
            d->raise();
    }
    else if (cl.value(opt.view) == "compare")
        window.tabs()->setCurrentWidget(window.compareView());
    else if (cl.value(opt.view) == "cluster")
        window.tabs()->setCurrentWidget(window.clusterView());
    else if (cl.isSet(opt.view)) {
        std::fprintf(stderr, "partita: --view: expected designer, graph, timeline, critical-path, heatmap, compare or cluster\n");
        return false;
    }
    return true;
}

// Compares the two runs --compare names; false when that fails while taking a screenshot (a message either way).
bool applyCompareOption(partita::MainWindow& window, const QCommandLineParser& cl, const GuiOptions& opt)
{
    const QStringList ab = cl.value(opt.compare).split(',');
    if (ab.size() != 2 || !window.compareRuns(ab[0].toLongLong(), ab[1].toLongLong(), cl.isSet(opt.shot))) {
        std::fprintf(stderr, "partita: --compare %s: %s\n", qPrintable(cl.value(opt.compare)),
                     ab.size() != 2 ? "expected two run ids, A,B" : qPrintable(window.lastError()));
        if (cl.isSet(opt.shot))
            return false;
    }
    return true;
}

// Saves the window to --screenshot's file and quits, once the views are done loading (at most 20 s) and painted.
void screenshotWhenReady(partita::MainWindow& window, const QCommandLineParser& cl, const GuiOptions& opt)
{
    auto* poll = new QTimer(&window);
    QObject::connect(poll, &QTimer::timeout, &window, [&, poll, waited = 0]() mutable {
        waited += 100;
        if ((window.designer()->predicting() || window.compareView()->busy() || window.criticalPath()->busy() ||
             window.heatMap()->busy() || window.timeline()->memoryLoading() ||
             window.timeline()->groupsLoading()) &&
            waited < 20000)
            return;
        poll->stop();
        QTimer::singleShot(400, &window, [&] {
            // What the screen shows (the window as painted, not re-rendered).
            const bool ok = window.screen()->grabWindow(window.winId()).save(cl.value(opt.shot));
            QApplication::exit(ok ? 0 : 2);
        });
    });
    poll->start(100);
}

} // namespace

int main(int argc, char** argv)
{
    QApplication app(argc, argv);
    setApplicationIdentity();
    QCommandLineParser cl;
    const GuiOptions opt;
    describeCommandLine(cl, opt);
    cl.process(app);
    if (!applyThemeOption(cl, opt))
        return 2;
    partita::MainWindow window;
    window.show();
    if (!cl.positionalArguments().isEmpty() &&
        !window.openProject(cl.positionalArguments().first(), cl.isSet(opt.shot)) && cl.isSet(opt.shot)) {
        std::fprintf(stderr, "partita: %s\n", qPrintable(window.lastError()));
        return 2;
    }
    if (cl.isSet(opt.run))
        window.showRun(cl.value(opt.run).toLongLong());
    if (cl.isSet(opt.group) && !applyGroupRanks(window, cl, opt))
        return 2;
    if (!applyViewOption(window, cl, opt))
        return 2;
    if (cl.isSet(opt.compare) && !applyCompareOption(window, cl, opt))
        return 2;
    if (cl.isSet(opt.shot))
        screenshotWhenReady(window, cl, opt);
    return QApplication::exec();
}
