// The workbench's imports: models, clusters, traces and training
// configurations, by menu or by dropping files on the window, and the
// strategy's export to a training framework.
#include "mainwindow.h"

#include "clusterview.h"
#include "designer.h"
#include "exportdialog.h"
#include "runsmodel.h"
#include "timelineview.h"

#include "partita/core/clusterio.h"
#include "partita/core/fileio.h"
#include "partita/core/frameworks.h"
#include "partita/core/modelio.h"
#include "partita/executor/localmachine.h"
#include "partita/profiler/chromeimport.h"
#include "partita/profiler/nsysimport.h"
#include "partita/profiler/tracestore.h"

#include <QDragEnterEvent>
#include <QDropEvent>
#include <QEventLoop>
#include <QFileDialog>
#include <QFileInfo>
#include <QFutureWatcher>
#include <QInputDialog>
#include <QMessageBox>
#include <QMimeData>
#include <QProgressDialog>
#include <QSettings>
#include <QStatusBar>
#include <QTabWidget>
#include <QtConcurrent/QtConcurrentRun>

#include <fstream>

namespace partita {

bool MainWindow::importModel(const QString& pathOrPreset, bool quiet)
{
    if (!m_store)
        return refuse(tr("Import Model"), tr("Open or create a project first (File ▸ New Project…)."), quiet);
    auto m = loadModel(pathOrPreset.toStdString());
    if (!m)
        return refuse(tr("Import Model"), QString::fromStdString(m.error().str()), quiet);
    const std::string name = m->name.empty() ? QFileInfo(pathOrPreset).completeBaseName().toStdString() : m->name;
    auto d = m_store->saveDocument("model", name, modelToJson(*m));
    if (!d)
        return refuse(tr("Import Model"), QString::fromStdString(d.error().str()), quiet);
    QSettings().setValue("import/dir", QFileInfo(pathOrPreset).absolutePath());
    m_designer->setProject(m_store.get());
    m_tabs->setCurrentWidget(m_designer);
    statusBar()->showMessage(tr("Model %1 imported (%2 layers)").arg(QString::fromStdString(name)).arg(m->layers.size()));
    return true;
}

bool MainWindow::importCluster(const QString& pathOrPreset, bool quiet)
{
    if (!m_store)
        return refuse(tr("Import Cluster"), tr("Open or create a project first (File ▸ New Project…)."), quiet);
    Result<Cluster> c = Error{};
    if (pathOrPreset == "local") {
        c = detectLocalMachine().cluster;
    } else {
        ClusterLoadOptions o;
        c = loadCluster(pathOrPreset.toStdString(), o);
        // Text files name no hardware: ask for it, as the CLI's --device and --node do.
        const bool needsDevice = !c && c.error().message.find("--device") != std::string::npos;
        const bool needsNode = !c && c.error().message.find("--node") != std::string::npos;
        if (!quiet && (needsDevice || needsNode)) {
            const auto answer =
                needsDevice ? choose(tr("Import Cluster"), tr("This nvidia-smi topo -m output does not name its GPUs. GPU model:"),
                                     devicePresetNames())
                            : choose(tr("Import Cluster"), tr("A hostfile names hosts, not hardware. Each host is a:"),
                                     clusterPresetNames());
            if (!answer)
                return false;
            (needsDevice ? o.device : o.nodeTemplate) = answer->toStdString();
            c = loadCluster(pathOrPreset.toStdString(), o);
        }
    }
    if (!c)
        return refuse(tr("Import Cluster"), QString::fromStdString(c.error().str()), quiet);
    auto d = m_store->saveDocument("cluster", c->name.empty() ? pathOrPreset.toStdString() : c->name,
                                   clusterToJson(*c));
    if (!d)
        return refuse(tr("Import Cluster"), QString::fromStdString(d.error().str()), quiet);
    if (QFileInfo::exists(pathOrPreset))
        QSettings().setValue("import/dir", QFileInfo(pathOrPreset).absolutePath());
    m_designer->setProject(m_store.get());
    m_cluster->setProject(m_store.get());
    m_tabs->setCurrentWidget(m_cluster);
    statusBar()->showMessage(tr("Cluster %1 imported (%2 devices)").arg(QString::fromStdString(c->name)).arg(c->deviceCount()));
    return true;
}

bool MainWindow::importTraces(const QStringList& paths, bool quiet)
{
    if (!m_store)
        return refuse(tr("Import Trace"), tr("Open or create a project first (File ▸ New Project…)."), quiet);
    std::vector<std::string> files;
    size_t sqlite = 0;
    for (const QString& p : paths) {
        files.push_back(p.toStdString());
        sqlite += isSqliteFile(p.toStdString()) ? 1 : 0;
    }
    if (sqlite && sqlite != files.size())
        return refuse(tr("Import Trace"),
                      tr("Nsight Systems exports and JSON traces cannot be mixed in one run."), quiet);
    // The import runs on its own connection to the project, off the GUI
    // thread; a progress dialog can cancel a JSON import.
    struct Outcome
    {
        qint64 run = 0;
        QString error;
        QStringList leftOut; // of a folder: files and ranks not imported
    };
    auto cancel = std::make_shared<std::atomic<bool>>(false);
    const std::string project = m_store->path();
    QFutureWatcher<Outcome> watcher;
    QEventLoop loop;
    connect(&watcher, &QFutureWatcher<Outcome>::finished, &loop, &QEventLoop::quit);
    watcher.setFuture(QtConcurrent::run([project, files, sqlite, cancel]() {
        Outcome o;
        auto store = TraceStore::open(project);
        if (!store) {
            o.error = QString::fromStdString(store.error().str());
            return o;
        }
        if (sqlite) {
            auto r = importNsysSqlite(**store, files);
            if (r)
                o.run = r->run_id;
            else
                o.error = QString::fromStdString(r.error().str());
        } else {
            TraceImportOptions opt;
            opt.cancel = cancel.get();
            auto r = importChromeTrace(**store, files, opt);
            if (r) {
                o.run = r->run_id;
                for (const std::string& l : r->left_out)
                    o.leftOut << QString::fromStdString(l);
            } else
                o.error = QString::fromStdString(r.error().str());
        }
        return o;
    }));
    QProgressDialog progress(tr("Importing %1…").arg(QFileInfo(paths.front()).fileName()), tr("Cancel"), 0, 0, this);
    progress.setWindowModality(Qt::WindowModal);
    progress.setMinimumDuration(300);
    connect(&progress, &QProgressDialog::canceled, this, [cancel] { *cancel = true; });
    if (!watcher.isFinished())
        loop.exec();
    progress.reset();
    const Outcome o = watcher.result();
    if (o.run <= 0)
        return refuse(tr("Import Trace"), o.error, quiet);
    QSettings().setValue("import/dir", QFileInfo(paths.front()).absolutePath());
    refreshRuns();
    showRun(o.run);
    if (!o.leftOut.isEmpty()) {
        statusBar()->showMessage(o.leftOut.size() == 1
                                     ? tr("Run %1 imported; not imported: %2").arg(o.run).arg(o.leftOut.front())
                                     : tr("Run %1 imported; not imported: %2 and %3 more").arg(o.run).arg(o.leftOut.front()).arg(o.leftOut.size() - 1));
        if (!quiet)
            QMessageBox::warning(this, tr("Import Trace"),
                                 tr("Run %1 holds what could be read. Not imported:\n\n%2").arg(o.run).arg(o.leftOut.join("\n")));
    }
    return true;
}

MainWindow::DropKind MainWindow::classifyFile(const QString& path)
{
    const QString lower = path.toLower();
    if (lower.endsWith(".partita"))
        return DropKind::Project;
    if (lower.endsWith(".onnx"))
        return DropKind::Model;
    if (lower.endsWith(".json.gz") || lower.endsWith(".pt.trace.json") || isSqliteFile(path.toStdString()))
        return DropKind::Trace;
    std::ifstream in(path.toStdString(), std::ios::binary);
    std::string head(65536, '\0');
    in.read(head.data(), std::streamsize(head.size()));
    head.resize(size_t(in.gcount()));
    if (head.empty())
        return DropKind::Unknown;
    if (head.find("\"traceEvents\"") != std::string::npos)
        return DropKind::Trace;
    if (head.find("\"partita_cluster\"") != std::string::npos)
        return DropKind::Cluster;
    if (detectFramework(head))
        return DropKind::TrainingConfig;
    const size_t first = head.find_first_not_of(" \t\r\n");
    // A bare event array: PyTorch's profiler without Kineto, or Chrome's array form.
    if (first != std::string::npos && head[first] == '[' && head.find("\"ph\"") != std::string::npos)
        return DropKind::Trace;
    if (first != std::string::npos && (head[first] == '{' || head[first] == '['))
        return DropKind::Model; // native model JSON or a Hugging Face config.json
    return DropKind::Cluster;   // nvidia-smi topo -m text or a hostfile
}

void MainWindow::dragEnterEvent(QDragEnterEvent* e)
{
    if (e->mimeData()->hasUrls())
        e->acceptProposedAction();
}

void MainWindow::dropEvent(QDropEvent* e)
{
    QStringList traces;
    for (const QUrl& u : e->mimeData()->urls()) {
        const QString path = u.toLocalFile();
        if (path.isEmpty())
            continue;
        switch (classifyFile(path)) {
        case DropKind::Project: openProject(path); break;
        case DropKind::Model: importModel(path); break;
        case DropKind::Cluster: importCluster(path); break;
        case DropKind::Trace: traces << path; break;
        case DropKind::TrainingConfig: importTrainingConfig(path); break;
        case DropKind::Unknown: refuse(tr("Drop"), tr("%1: empty, or not a file Partita reads").arg(path), false); break;
        }
    }
    if (!traces.isEmpty())
        importTraces(traces);
    e->acceptProposedAction();
}

std::optional<QString> MainWindow::choose(const QString& title, const QString& label,
                                         const std::vector<std::string>& names, int current)
{
    QStringList items;
    for (const auto& n : names)
        items << QString::fromStdString(n);
    bool ok = false;
    const QString pick = QInputDialog::getItem(this, title, label, items, current, false, &ok);
    return ok ? std::optional<QString>(pick) : std::nullopt;
}

void MainWindow::importClusterDialog()
{
    const QString path = QFileDialog::getOpenFileName(this, tr("Import Cluster"), QSettings().value("import/dir").toString(),
                                                      tr("Clusters (*.json *.txt *hostfile*);;All files (*)"));
    if (!path.isEmpty())
        importCluster(path);
}

void MainWindow::clusterPresetDialog()
{
    std::vector<std::string> names{"local"};
    for (const auto& n : clusterPresetNames())
        names.push_back(n);
    const auto name = choose(tr("Cluster Preset"), tr("Preset ('local' measures this machine):"), names, 1);
    if (!name)
        return;
    QString spec = *name;
    bool ok = false;
    if (*name != "local") {
        const int nodes = QInputDialog::getInt(this, tr("Cluster Preset"), tr("Nodes:"), 1, 1, 4096, 1, &ok);
        if (!ok)
            return;
        spec += ":" + QString::number(nodes);
    }
    importCluster(spec);
}

bool MainWindow::importTrainingConfig(const QString& path, bool quiet)
{
    const QString title = tr("Import Training Configuration");
    if (!m_store)
        return refuse(title, tr("Open or create a project first (File ▸ New Project…)."), quiet);
    // The designer's cluster, or (before a model makes it design) the project's newest.
    std::optional<Cluster> stored;
    if (!m_designer->cluster())
        if (auto docs = m_store->documents("cluster"); docs && !docs->empty())
            if (auto c = clusterFromJson(docs->front().body, docs->front().name))
                stored = *c;
    const Cluster* cluster = m_designer->cluster() ? m_designer->cluster() : stored ? &*stored : nullptr;
    if (!cluster)
        return refuse(title, tr("Import the cluster the job runs on first: the configuration is read for its GPUs."), quiet);
    auto text = readTextFile(path.toStdString());
    if (!text)
        return refuse(title, QString::fromStdString(text.error().str()), quiet);
    const auto framework = detectFramework(*text);
    if (!framework)
        return refuse(title, tr("%1: not a training configuration Partita reads (a Megatron-LM command line or script, a "
                                "DeepSpeed ds_config.json, a horovodrun line, a torchtitan job TOML, an accelerate "
                                "config YAML, or a PyTorch script Partita exported)")
                                 .arg(path),
                      quiet);
    auto in = importFramework(*framework, *text, path.toStdString(), cluster->deviceCount());
    if (!in)
        return refuse(title, QString::fromStdString(in.error().str()), quiet);
    if (!in->model && !m_designer->model())
        return refuse(title, tr("%1 does not say the model: import the model first.").arg(path), quiet);
    const Model& model = in->model ? *in->model : *m_designer->model();
    if (auto r = resolveStrategy(in->strategy, model, *cluster); !r)
        return refuse(title, tr("%1 cannot run on this project's cluster: %2").arg(path, QString::fromStdString(r.error().str())),
                      quiet);
    if (in->model) { // the model as the configuration builds it, beside the project's others
        auto d = m_store->saveDocument("model", in->model->name, modelToJson(*in->model));
        if (!d)
            return refuse(title, QString::fromStdString(d.error().str()), quiet);
        m_designer->setProject(m_store.get());
    }
    Strategy s = in->strategy;
    s.name = QFileInfo(path).completeBaseName().toStdString();
    const QString what = tr("Import %1 configuration").arg(QString::fromUtf8(frameworkTitle(*framework).data()));
    m_designer->editStrategy(s, what);
    m_tabs->setCurrentWidget(m_designer);
    QStringList notes;
    for (const auto& n : in->notes)
        notes << QString::fromStdString(n);
    statusBar()->showMessage(what + (notes.isEmpty() ? tr(" (Ctrl+Z undoes it)") : " — " + notes.join("; ")));
    QSettings().setValue("import/dir", QFileInfo(path).absolutePath());
    return true;
}

void MainWindow::importTrainingConfigDialog()
{
    const QString path = QFileDialog::getOpenFileName(
        this, tr("Import Training Configuration"), QSettings().value("import/dir").toString(),
        tr("Training configurations (*.sh *.json *.py *.toml *.yaml *.yml *.txt);;All files (*)"));
    if (!path.isEmpty())
        importTrainingConfig(path);
}

void MainWindow::exportDialog()
{
    if (!m_designer->hasInputs()) {
        refuse(tr("Export Strategy"), tr("The project has no model and cluster: import them first."), false);
        return;
    }
    ExportDialog dlg(*m_designer->model(), *m_designer->cluster(), m_designer->strategy(), this);
    dlg.exec();
}

} // namespace partita
