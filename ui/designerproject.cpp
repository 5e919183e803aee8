// The designer's place in a project (designer.h): the documents it edits,
// named strategy versions (save, load, rename, delete, compare), autosave.
#include "designer.h"
#include "theme.h"

#include "layertablemodel.h"
#include "modelgraphview.h"
#include "palettemodel.h"

#include "partita/core/clusterio.h"
#include "partita/core/modelio.h"
#include "partita/core/units.h"
#include "partita/core/dtype.h"
#include "partita/profiler/tracestore.h"

#include <QBarCategoryAxis>
#include <QBarSet>
#include <QChart>
#include <QEvent>
#include <QChartView>
#include <QCheckBox>
#include <QComboBox>
#include <QFormLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QHorizontalStackedBarSeries>
#include <QLabel>
#include <QLineSeries>
#include <QListView>
#include <QMenu>
#include <QPushButton>
#include <QSortFilterProxyModel>
#include <QSpinBox>
#include <QSplitter>
#include <QStackedBarSeries>
#include <QTabWidget>
#include <QTableView>
#include <QTimer>
#include <QToolButton>
#include <QInputDialog>
#include <QLineEdit>
#include <QMessageBox>
#include <QUndoStack>
#include <QValueAxis>
#include <QVBoxLayout>
#include <QtConcurrent/QtConcurrentRun>


#include <algorithm>
#include <set>

namespace partita {

bool Designer::setProject(TraceStore* store)
{
    m_store = store;
    m_lastError.clear();
    const QSignalBlocker b1(m_modelBox), b2(m_clusterBox);
    m_modelBox->clear();
    m_clusterBox->clear();
    if (!store) {
        setInputs({}, {}, {});
        loadVersion(-1);
        return true;
    }
    auto docs = store->documents();
    auto runs = store->runs();
    if (!docs || !runs) {
        m_lastError = QString::fromStdString(!docs ? docs.error().str() : runs.error().str());
        setInputs({}, {}, {});
        return false;
    }
    // The design starts from the newest model, cluster and strategy that a
    // user imported or predicted with: a measured run's documents record
    // what it ran on (often this machine's CPU), not what is being designed.
    std::set<int64_t> measured;
    for (const RunInfo& r : *runs)
        if (r.kind == RunKind::Measured) {
            measured.insert(r.model_id);
            measured.insert(r.cluster_id);
            measured.insert(r.strategy_id);
        }
    int64_t model = 0, cluster = 0, strategy = 0, anyModel = 0, anyCluster = 0;
    for (const Document& d : *docs) {
        QComboBox* box = d.kind == "model" ? m_modelBox : d.kind == "cluster" ? m_clusterBox : nullptr;
        if (box)
            box->addItem(QString("%1 v%2").arg(QString::fromStdString(d.name)).arg(d.version), qint64(d.id));
        if (d.kind != "model" && d.kind != "cluster" && d.kind != "strategy")
            continue; // plans, autosaves
        int64_t& pick = d.kind == "model" ? model : d.kind == "cluster" ? cluster : strategy;
        int64_t& any = d.kind == "model" ? anyModel : d.kind == "cluster" ? anyCluster : strategy;
        if (!measured.count(d.id))
            pick = std::max(pick, d.id);
        any = std::max(any, d.id);
    }
    model = model ? model : anyModel;
    cluster = cluster ? cluster : anyCluster;
    if (!model || !cluster) {
        setInputs({}, {}, {});
        loadVersion(-1);
        return true;
    }
    m_modelBox->setCurrentIndex(m_modelBox->findData(qint64(model)));
    m_clusterBox->setCurrentIndex(m_clusterBox->findData(qint64(cluster)));
    // The strategy: the newest one saved, if it fits this model and cluster.
    std::optional<Strategy> saved;
    if (strategy) {
        auto d = store->document(strategy);
        if (auto s = d ? strategyFromJson(d->body, "strategy '" + d->name + "' v" + std::to_string(d->version))
                       : Result<Strategy>(d.error()))
            saved = *s;
    }
    if (!useDocuments(model, cluster, saved ? &*saved : nullptr))
        return false;
    if (strategy)
        loadVersion(strategy);
    // Edits a closed or crashed session did not save: newer than every strategy.
    int64_t autosave = 0;
    for (const Document& d : *docs)
        if (d.kind == "autosave")
            autosave = std::max(autosave, d.id);
    if (autosave > strategy) {
        auto d = store->document(autosave);
        auto s = d ? strategyFromJson(d->body, "autosaved strategy") : Result<Strategy>(d.error());
        if (s && resolveStrategy(*s, *m_model, *m_cluster)) {
            editStrategy(*s, tr("Restore unsaved edits"));
            m_dropNote->setText(tr("Unsaved edits from an earlier session were restored (Ctrl+Z returns to the saved "
                                   "version; Ctrl+S keeps them)."));
        }
    }
    return m_lastError.isEmpty();
}

bool Designer::autosaveNow()
{
    if (!m_store || !m_model || m_undo->isClean())
        return false;
    auto d = m_store->saveDocument("autosave", "designer", strategyToJson(m_strategy));
    if (!d)
        return false;
    // One autosave is enough: the older ones go.
    if (auto docs = m_store->documents("autosave"))
        for (const Document& old : *docs)
            if (old.id != d->id)
                (void)m_store->deleteDocument(old.id);
    return true;
}

void Designer::discardAutosave()
{
    m_autosave->stop();
    if (!m_store)
        return;
    if (auto docs = m_store->documents("autosave"))
        for (const Document& d : *docs)
            (void)m_store->deleteDocument(d.id);
}

bool Designer::useDocuments(int64_t modelDoc, int64_t clusterDoc, const Strategy* preferred)
{
    if (!m_store)
        return false;
    auto md = m_store->document(modelDoc);
    auto cd = m_store->document(clusterDoc);
    if (!md || !cd) {
        m_lastError = QString::fromStdString(!md ? md.error().str() : cd.error().str());
        return false;
    }
    auto m = modelFromJson(md->body, "model '" + md->name + "' v" + std::to_string(md->version));
    auto c = clusterFromJson(cd->body, "cluster '" + cd->name + "' v" + std::to_string(cd->version));
    if (!m || !c) {
        m_lastError = QString::fromStdString(!m ? m.error().str() : c.error().str());
        showError(m_lastError);
        return false;
    }
    // The preferred strategy, else the current one, when it fits the new
    // inputs; else start from data parallelism.
    Strategy s = m_strategy;
    if (preferred && resolveStrategy(*preferred, *m, *c))
        s = *preferred;
    else if (!m_model || !resolveStrategy(s, *m, *c)) {
        PresetOptions o;
        auto p = strategyPreset("ddp", *m, *c, o);
        s = p ? *p : Strategy{};
    }
    setInputs(*m, *c, s);
    m_modelDoc = modelDoc;
    m_clusterDoc = clusterDoc;
    loadVersion(-1);
    return true;
}

bool Designer::saveVersion(const QString& name, QString* why)
{
    auto refuse = [&](const QString& w) {
        if (why)
            *why = w;
        showError(w);
        return false;
    };
    if (!m_store)
        return refuse(tr("No project is open: create or open one to keep strategy versions."));
    if (!m_model)
        return refuse(tr("There is no strategy to save: the project has no model and cluster."));
    Strategy s = m_strategy;
    s.name = name.trimmed().isEmpty() ? (s.name.empty() ? "designer" : s.name) : name.trimmed().toStdString();
    auto d = m_store->saveDocument("strategy", s.name, strategyToJson(s));
    if (!d)
        return refuse(QString::fromStdString(d.error().str()));
    if (s.name != m_strategy.name) {
        m_strategy.name = s.name; // the name is not an undoable edit
    }
    m_undo->setClean();
    discardAutosave(); // saved for real
    loadVersion(d->id);
    return true;
}

void Designer::loadVersion(qint64 selectId)
{
    const QSignalBlocker block(m_versions);
    const qint64 current = selectId >= 0 ? selectId : m_versions->currentData().toLongLong();
    m_versions->clear();
    if (!m_store) {
        m_versions->addItem(tr("(no project)"));
        return;
    }
    auto docs = m_store->documents("strategy");
    if (!docs || docs->empty()) {
        m_versions->addItem(tr("(unsaved)"));
        return;
    }
    for (const Document& d : *docs)
        m_versions->addItem(QString("%1 v%2").arg(QString::fromStdString(d.name)).arg(d.version), qint64(d.id));
    const int i = m_versions->findData(current);
    m_versions->setCurrentIndex(i >= 0 ? i : 0);
}

bool Designer::compareWithVersion(int64_t docId, QString* why)
{
    auto refuse = [&](const QString& w) {
        if (why)
            *why = w;
        return false;
    };
    if (!m_store || !m_model)
        return refuse(tr("Open a project with a model and a cluster first."));
    auto d = m_store->document(docId);
    if (!d)
        return refuse(QString::fromStdString(d.error().str()));
    auto other = strategyFromJson(d->body, "strategy '" + d->name + "' v" + std::to_string(d->version));
    if (!other)
        return refuse(QString::fromStdString(other.error().str()));
    if (!resolveStrategy(*other, *m_model, *m_cluster))
        return refuse(tr("%1 v%2 does not fit this model and cluster.").arg(QString::fromStdString(d->name)).arg(d->version));
    if (m_compareWatcher->isRunning())
        return refuse(tr("A comparison is already being prepared."));
    m_compareStrategies = {*other, m_strategy};
    auto model = m_model;
    auto cluster = m_cluster;
    auto pair = m_compareStrategies;
    m_compareWatcher->setFuture(QtConcurrent::run([model, cluster, pair]() {
        return std::make_pair(predict(*model, *cluster, pair.first, true), predict(*model, *cluster, pair.second, true));
    }));
    return true;
}

bool Designer::renameStrategy(const QString& to, QString* why)
{
    auto refuse = [&](const QString& w) {
        if (why)
            *why = w;
        return false;
    };
    if (!m_store)
        return refuse(tr("No project is open."));
    const std::string from = m_strategy.name;
    const std::string name = to.trimmed().toStdString();
    if (name.empty())
        return refuse(tr("A strategy needs a name."));
    bool saved = false;
    if (auto docs = m_store->documents("strategy"))
        for (const Document& d : *docs)
            saved = saved || d.name == from;
    if (saved)
        if (auto r = m_store->renameDocuments("strategy", from, name); !r)
            return refuse(QString::fromStdString(r.error().str()));
    m_strategy.name = name; // a name is not an undoable edit of the strategy
    loadVersion(-1);
    return true;
}

bool Designer::deleteVersion(int64_t docId, QString* why)
{
    if (!m_store) {
        if (why)
            *why = tr("No project is open.");
        return false;
    }
    if (auto r = m_store->deleteDocument(docId); !r) {
        if (why)
            *why = QString::fromStdString(r.error().str());
        return false;
    }
    loadVersion(-1);
    return true;
}

} // namespace partita
