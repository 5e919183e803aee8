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

// One edit of the strategy: the whole strategy before and after (a strategy
// is a few kilobytes, and whole snapshots make every edit trivially exact).
class StrategyCommand : public QUndoCommand
{
public:
    StrategyCommand(Designer* d, Strategy before, Strategy after, const QString& text)
        : m_d(d), m_before(std::move(before)), m_after(std::move(after))
    {
        setText(text);
    }
    void undo() override { m_d->setCurrent(m_before); }
    void redo() override { m_d->setCurrent(m_after); }

private:
    Designer* m_d;
    Strategy m_before, m_after;
};

namespace {

constexpr int kDebounceMs = 120; // coalesces a spin box held down or a burst of drops into one prediction

QString seconds(double s)
{
    if (s >= 1)
        return QString::number(s, 'f', 3) + " s";
    return QString::number(s * 1e3, 'f', s < 0.01 ? 3 : 1) + " ms";
}
QString gib(double b) { return QString::number(b / double(1 << 30), 'f', 2) + " GiB"; }

QSpinBox* spin(int lo, int hi, const QString& tip)
{
    auto* s = new QSpinBox;
    s->setRange(lo, hi);
    s->setToolTip(tip);
    s->setKeyboardTracking(false); // one edit per value typed, not per digit
    return s;
}

} // namespace

Designer::Designer(QWidget* parent) : QWidget(parent)
{
    m_undo = new QUndoStack(this);
    m_debounce = new QTimer(this);
    m_debounce->setSingleShot(true);
    m_debounce->setInterval(kDebounceMs);
    connect(m_debounce, &QTimer::timeout, this, &Designer::startPrediction);
    m_autosave = new QTimer(this);
    m_autosave->setSingleShot(true);
    m_autosave->setInterval(10000);
    connect(m_autosave, &QTimer::timeout, this, [this] { autosaveNow(); });
    connect(m_undo, &QUndoStack::indexChanged, this, [this] {
        if (m_store && !m_undo->isClean())
            m_autosave->start();
    });
    m_watcher = new QFutureWatcher<Outcome>(this);
    connect(m_watcher, &QFutureWatcher<Outcome>::finished, this, &Designer::predictionDone);
    m_traceWatcher = new QFutureWatcher<Outcome>(this);
    connect(m_traceWatcher, &QFutureWatcher<Outcome>::finished, this, [this] {
        Outcome o = m_traceWatcher->result();
        m_timelineButton->setEnabled(true);
        if (!o.result) {
            showError(tr("The predicted timeline could not be made:\n%1").arg(o.error));
            return;
        }
        auto id = storePrediction(m_strategy, *o.result);
        if (!id) {
            showError(QString::fromStdString(id.error().str()));
            return;
        }
        loadVersion(-1); // the version list now holds the saved strategy
        emit runStored(*id);
    });
    m_compareWatcher = new QFutureWatcher<std::pair<Outcome, Outcome>>(this);
    connect(m_compareWatcher, &QFutureWatcher<std::pair<Outcome, Outcome>>::finished, this, [this] {
        auto [a, b] = m_compareWatcher->result();
        if (!a.result || !b.result) {
            showError(tr("The versions could not be predicted:\n%1").arg(!a.result ? a.error : b.error));
            return;
        }
        auto ia = storePrediction(m_compareStrategies.first, *a.result);
        auto ib = ia ? storePrediction(m_compareStrategies.second, *b.result) : Result<int64_t>(ia.error());
        if (!ia || !ib) {
            showError(QString::fromStdString((!ia ? ia.error() : ib.error()).str()));
            return;
        }
        loadVersion(-1);
        emit compareReady(*ia, *ib);
    });

    // Header: versions and presets.
    m_versions = new QComboBox;
    m_versions->setToolTip(tr("Strategy versions saved in the project"));
    m_versions->setSizeAdjustPolicy(QComboBox::AdjustToContents);
    connect(m_versions, &QComboBox::activated, this, [this](int i) {
        const qint64 id = m_versions->itemData(i).toLongLong();
        if (!m_store || id <= 0)
            return;
        auto d = m_store->document(id);
        if (!d) {
            showError(QString::fromStdString(d.error().str()));
            return;
        }
        auto s = strategyFromJson(d->body, "strategy '" + d->name + "' v" + std::to_string(d->version));
        if (!s) {
            showError(QString::fromStdString(s.error().str()));
            return;
        }
        editStrategy(*s, tr("Open %1").arg(m_versions->itemText(i)));
    });
    m_presets = new QComboBox;
    m_presets->addItem(tr("Apply preset…"));
    for (const PresetInfo& p : strategyPresets())
        m_presets->addItem(QString::fromStdString(p.name), QString::fromStdString(p.name));
    for (int i = 1; i < m_presets->count(); ++i)
        m_presets->setItemData(i, QString::fromStdString(strategyPresets()[size_t(i - 1)].description), Qt::ToolTipRole);
    connect(m_presets, &QComboBox::activated, this, [this](int i) {
        if (i > 0)
            applyPreset(m_presets->itemData(i).toString());
        m_presets->setCurrentIndex(0);
    });
    m_modelBox = new QComboBox;
    m_modelBox->setToolTip(tr("Models in the project (File ▸ Import Model… adds one)"));
    m_modelBox->setSizeAdjustPolicy(QComboBox::AdjustToContents);
    m_clusterBox = new QComboBox;
    m_clusterBox->setToolTip(tr("Clusters in the project (File ▸ Import Cluster… adds one)"));
    m_clusterBox->setSizeAdjustPolicy(QComboBox::AdjustToContents);
    auto pickInputs = [this] {
        useDocuments(m_modelBox->currentData().toLongLong(), m_clusterBox->currentData().toLongLong());
    };
    connect(m_modelBox, &QComboBox::activated, this, pickInputs);
    connect(m_clusterBox, &QComboBox::activated, this, pickInputs);
    auto* versionsMenu = new QMenu(this);
    versionsMenu->addAction(tr("Rename Strategy…"), this, [this] {
        bool ok = false;
        const QString to = QInputDialog::getText(this, tr("Rename Strategy"), tr("New name (every version is renamed):"),
                                                 QLineEdit::Normal, QString::fromStdString(m_strategy.name), &ok);
        QString why;
        if (ok && !renameStrategy(to, &why))
            showError(why);
    });
    versionsMenu->addAction(tr("Delete This Version"), this, [this] {
        const qint64 id = m_versions->currentData().toLongLong();
        QString why;
        if (id <= 0)
            showError(tr("This strategy has no saved version to delete."));
        else if (QMessageBox::question(this, tr("Delete Version"), tr("Delete %1 from the project?").arg(m_versions->currentText())) ==
                     QMessageBox::Yes &&
                 !deleteVersion(id, &why))
            showError(why);
    });
    versionsMenu->addAction(tr("Compare With Version…"), this, [this] {
        QStringList names;
        QList<qint64> ids;
        for (int i = 0; i < m_versions->count(); ++i)
            if (m_versions->itemData(i).toLongLong() > 0) {
                names << m_versions->itemText(i);
                ids << m_versions->itemData(i).toLongLong();
            }
        if (names.isEmpty()) {
            showError(tr("Save a version first (Ctrl+S): there is nothing to compare with."));
            return;
        }
        bool ok = false;
        const QString pick = QInputDialog::getItem(this, tr("Compare With Version"),
                                                   tr("Predict this version (A) against the current strategy (B):"), names, 0,
                                                   false, &ok);
        QString why;
        if (ok && !compareWithVersion(ids[names.indexOf(pick)], &why))
            showError(why);
    });
    auto* versionsButton = new QToolButton;
    versionsButton->setText(tr("Versions"));
    versionsButton->setPopupMode(QToolButton::InstantPopup);
    versionsButton->setMenu(versionsMenu);
    auto* header = new QHBoxLayout;
    header->addWidget(new QLabel(tr("Model:")));
    header->addWidget(m_modelBox);
    header->addWidget(new QLabel(tr("Cluster:")));
    header->addWidget(m_clusterBox);
    header->addSpacing(12);
    header->addWidget(new QLabel(tr("Strategy:")));
    header->addWidget(m_versions);
    header->addWidget(versionsButton);
    header->addWidget(m_presets);
    header->addStretch(1);

    // Left: palette, atom parameters, global settings.
    m_palette = new PaletteModel(this);
    m_paletteView = new QListView;
    m_paletteView->setModel(m_palette);
    m_paletteView->setDragEnabled(true);
    m_paletteView->setDragDropMode(QAbstractItemView::DragOnly);
    m_paletteView->setDefaultDropAction(Qt::CopyAction);
    m_paletteView->setSelectionMode(QAbstractItemView::SingleSelection);
    m_paletteView->setToolTip(tr("Drag an atom onto a layer, or onto a selection of layers"));
    auto* paletteBox = m_palettePanel = new QGroupBox(tr("Strategy palette"));
    auto* pl = new QVBoxLayout(paletteBox);
    pl->addWidget(m_paletteView);
    auto* atomNote = new QLabel(tr("Dropped atoms use:"));
    pl->addWidget(atomNote);
    auto* atomForm = new QFormLayout;
    m_inspectStage = spin(0, 1 << 12, tr("Stage a 'Pipeline stage' drop places layers on"));
    m_inspectShards = spin(0, 1 << 12, tr("Parameter-server shards (0: one per node)"));
    m_inspectCompression = new QComboBox;
    m_inspectCompression->addItems({tr("none"), tr("fp16"), tr("PowerSGD")});
    m_inspectCompression->setToolTip(tr("Gradient compression of all-reduce drops"));
    atomForm->addRow(tr("Stage"), m_inspectStage);
    atomForm->addRow(tr("PS shards"), m_inspectShards);
    atomForm->addRow(tr("Compression"), m_inspectCompression);
    pl->addLayout(atomForm);

    auto* globals = m_settingsPanel = new QGroupBox(tr("Global settings"));
    auto* gf = new QFormLayout(globals);
    m_dp = spin(1, 1 << 20, tr("Data-parallel degree"));
    m_tp = spin(1, 1 << 12, tr("Tensor-parallel degree"));
    m_pp = spin(1, 1 << 12, tr("Pipeline-parallel degree"));
    m_ep = spin(1, 1 << 12, tr("Expert-parallel degree: each MoE layer's experts spread over this many data-parallel "
                               "ranks (divides data parallel; models with experts only)"));
    m_interleave = spin(1, 64, tr("Model chunks per device (interleaved schedule)"));
    m_zero = spin(0, 3, tr("ZeRO stage: 1 shards optimizer state, 2 also gradients, 3 also parameters"));
    m_globalBatch = spin(1, 1 << 30, tr("Samples per step"));
    m_microBatch = spin(1, 1 << 20, tr("Samples per micro-batch per data-parallel rank"));
    m_schedule = new QComboBox;
    m_schedule->addItems({"GPipe", "1F1B", tr("Interleaved 1F1B")});
    m_precision = new QComboBox;
    m_precision->addItems({"fp32", "fp16", "bf16", "fp8"});
    m_recompute = new QComboBox;
    m_recompute->addItems({tr("none"), tr("selective"), tr("full")});
    m_recompute->setToolTip(tr("Default recomputation (per-layer atoms override it)"));
    m_attention = new QComboBox;
    m_attention->addItems({tr("fused"), tr("unfused")});
    m_attention->setToolTip(tr("Attention core: fused (FlashAttention: no s × s scores kept, QK^T recomputed in "
                               "backward) or unfused (separate kernels, the scores through memory)"));
    m_seqParallel = new QCheckBox(tr("Sequence parallel"));
    m_meshNote = new QLabel;
    m_meshNote->setWordWrap(true);
    gf->addRow(tr("Data parallel"), m_dp);
    gf->addRow(tr("Tensor parallel"), m_tp);
    gf->addRow(tr("Pipeline parallel"), m_pp);
    gf->addRow(tr("Expert parallel"), m_ep);
    gf->addRow(m_meshNote);
    gf->addRow(tr("Schedule"), m_schedule);
    gf->addRow(tr("Interleave"), m_interleave);
    gf->addRow(tr("Global batch"), m_globalBatch);
    gf->addRow(tr("Micro-batch"), m_microBatch);
    gf->addRow(tr("Precision"), m_precision);
    gf->addRow(tr("ZeRO stage"), m_zero);
    gf->addRow(tr("Recompute"), m_recompute);
    gf->addRow(tr("Attention"), m_attention);
    gf->addRow(m_seqParallel);
    for (QSpinBox* s : {m_dp, m_tp, m_pp, m_ep, m_interleave, m_zero, m_globalBatch, m_microBatch})
        connect(s, &QSpinBox::valueChanged, this, &Designer::globalEdited);
    for (QComboBox* c : {m_schedule, m_precision, m_recompute, m_attention})
        connect(c, &QComboBox::currentIndexChanged, this, &Designer::globalEdited);
    connect(m_seqParallel, &QCheckBox::toggled, this, &Designer::globalEdited);

    auto* left = m_leftColumn = new QWidget;
    auto* ll = new QVBoxLayout(left);
    ll->setContentsMargins(0, 0, 0, 0);
    ll->addWidget(paletteBox, 3);
    ll->addWidget(globals, 2);

    // Centre: the layer table.
    m_layers = new LayerTableModel(this);
    m_layers->setDropHandler([this](int row, AtomKind k, QString* why) { return assignAtom(dropTargets(row), dropAtom(k), why); });
    m_sorted = new QSortFilterProxyModel(this);
    m_sorted->setSourceModel(m_layers);
    m_sorted->setSortRole(LayerTableModel::SortRole);
    m_table = new QTableView;
    m_table->setModel(m_sorted);
    m_table->setSortingEnabled(true);
    m_table->sortByColumn(-1, Qt::AscendingOrder); // model order until a header is clicked
    m_table->setSelectionBehavior(QAbstractItemView::SelectRows);
    m_table->setSelectionMode(QAbstractItemView::ExtendedSelection);
    m_table->setAcceptDrops(true);
    m_table->viewport()->setAcceptDrops(true);
    m_table->setDragDropMode(QAbstractItemView::DropOnly);
    m_table->setDragDropOverwriteMode(true);
    m_table->setDropIndicatorShown(true);
    m_table->setDefaultDropAction(Qt::CopyAction);
    m_table->verticalHeader()->hide();
    m_table->verticalHeader()->setDefaultSectionSize(m_table->fontMetrics().height() + 6);
    m_table->horizontalHeader()->setStretchLastSection(true);
    m_table->setContextMenuPolicy(Qt::CustomContextMenu);
    connect(m_table, &QWidget::customContextMenuRequested, this, [this](const QPoint& at) {
        QMenu menu(this);
        menu.addAction(tr("Select This Layer in Every Block"), this, &Designer::selectSameInEveryBlock);
        menu.addAction(tr("Select All"), m_table, &QTableView::selectAll);
        const QModelIndex at_ = m_table->indexAt(at);
        if (at_.isValid()) {
            const int row = m_sorted->mapToSource(at_).row();
            menu.addSeparator();
            menu.addAction(tr("Highlight in Timeline"), this, [this, row] { emit highlightLayerRequested(row); });
        }
        menu.exec(m_table->viewport()->mapToGlobal(at));
    });
    connect(m_table->selectionModel(), &QItemSelectionModel::selectionChanged, this, &Designer::updateInspector);
    m_dropNote = new QLabel;
    m_dropNote->setWordWrap(true);
    m_dropNote->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_graph = new ModelGraphView;
    m_graph->setDropHandler(
        [this](const std::vector<std::string>& layers, AtomKind k, QString* why) { return assignAtom(layers, dropAtom(k), why); });
    // One selection, two views.
    connect(m_graph, &ModelGraphView::selectionChangedByUser, this, [this](const std::vector<std::string>& names) {
        if (m_selectionSync)
            return;
        m_selectionSync = true;
        QItemSelection sel;
        for (const std::string& n : names) {
            const QModelIndex i = m_sorted->mapFromSource(m_layers->index(m_layers->rowOf(n), 0));
            if (i.isValid())
                sel.select(i, i);
        }
        m_table->selectionModel()->select(sel, QItemSelectionModel::ClearAndSelect | QItemSelectionModel::Rows);
        if (!names.empty())
            m_table->scrollTo(m_sorted->mapFromSource(m_layers->index(m_layers->rowOf(names.front()), 0)));
        m_selectionSync = false;
    });
    connect(m_table->selectionModel(), &QItemSelectionModel::selectionChanged, this, [this] {
        if (m_selectionSync)
            return;
        m_selectionSync = true;
        std::set<std::string> names;
        for (const QModelIndex& i : m_table->selectionModel()->selectedRows())
            if (const Layer* l = m_layers->layer(m_sorted->mapToSource(i).row()))
                names.insert(l->name);
        m_graph->selectLayers(names);
        m_selectionSync = false;
    });
    auto* tableBox = new QWidget;
    auto* cl = new QVBoxLayout(tableBox);
    cl->setContentsMargins(0, 0, 0, 0);
    cl->addWidget(m_table, 1);
    cl->addWidget(m_dropNote);
    // Table and graph share the centre as tabs (the window is too narrow for
    // both beside the palette and the prediction); their selection is one.
    auto* centre = m_centre = new QTabWidget;
    centre->setDocumentMode(true);
    centre->addTab(tableBox, tr("Layers"));
    centre->addTab(m_graph, tr("Graph"));

    // Right: prediction and inspector.
    auto* prediction = new QGroupBox(tr("Prediction"));
    auto* pr = new QVBoxLayout(prediction);
    m_stepLabel = new QLabel;
    QFont big = m_stepLabel->font();
    big.setPointSizeF(big.pointSizeF() * 1.6);
    big.setBold(true);
    m_stepLabel->setFont(big);
    m_summaryLabel = new QLabel;
    m_summaryLabel->setWordWrap(true);
    m_statusLabel = new QLabel;
    m_statusLabel->setWordWrap(true);
    m_memoryChart = new QChartView;
    m_memoryChart->setRenderHint(QPainter::Antialiasing);
    m_memoryChart->setMinimumHeight(200);
    m_breakdownChart = new QChartView;
    m_breakdownChart->setRenderHint(QPainter::Antialiasing);
    m_breakdownChart->setMinimumHeight(150);
    m_timelineButton = new QPushButton(tr("Open Predicted Timeline"));
    m_timelineButton->setToolTip(tr("Stores this strategy's predicted timeline in the project and opens it"));
    connect(m_timelineButton, &QPushButton::clicked, this, &Designer::storePredictedRun);
    pr->addWidget(m_stepLabel);
    pr->addWidget(m_summaryLabel);
    pr->addWidget(m_statusLabel);
    pr->addWidget(m_memoryChart, 3);
    pr->addWidget(m_breakdownChart, 2);
    pr->addWidget(m_timelineButton);

    auto* inspector = m_inspectorPanel = new QGroupBox(tr("Inspector"));
    auto* il = new QVBoxLayout(inspector);
    m_inspectTitle = new QLabel;
    m_inspectTitle->setWordWrap(true);
    m_inspectBody = new QLabel;
    m_inspectBody->setWordWrap(true);
    m_inspectBody->setTextFormat(Qt::RichText);
    m_inspectSync = new QComboBox;
    for (AtomKind k : {AtomKind::AllReduce, AtomKind::AllReduceHierarchical, AtomKind::ParameterServer, AtomKind::SFB,
                       AtomKind::NoSync})
        m_inspectSync->addItem(QString::fromStdString(atomInfo(k).label), int(k));
    m_inspectApply = new QPushButton(tr("Apply Sync to Selection"));
    connect(m_inspectApply, &QPushButton::clicked, this, [this] {
        std::vector<std::string> names;
        for (const QModelIndex& i : m_table->selectionModel()->selectedRows())
            if (const Layer* l = m_layers->layer(m_sorted->mapToSource(i).row()))
                names.push_back(l->name);
        Atom a;
        a.kind = AtomKind(m_inspectSync->currentData().toInt());
        a.ps_shards = m_inspectShards->value();
        a.compression = m_inspectCompression->currentIndex() == 1   ? Compression::FP16
                        : m_inspectCompression->currentIndex() == 2 ? Compression::PowerSGD
                                                                    : Compression::None;
        assignAtom(names, a);
    });
    il->addWidget(m_inspectTitle);
    il->addWidget(m_inspectBody);
    il->addWidget(m_inspectSync);
    il->addWidget(m_inspectApply);
    il->addStretch(1);

    auto* right = new QWidget;
    auto* rl = new QVBoxLayout(right);
    rl->setContentsMargins(0, 0, 0, 0);
    rl->addWidget(prediction, 3);
    rl->addWidget(inspector, 1);

    auto* split = new QSplitter(Qt::Horizontal);
    split->addWidget(left);
    split->addWidget(centre);
    split->addWidget(right);
    split->setStretchFactor(0, 0);
    split->setStretchFactor(1, 3);
    split->setStretchFactor(2, 2);
    split->setSizes({210, 780, 330});
    m_split = split;

    auto* top = new QVBoxLayout(this);
    top->addLayout(header);
    top->addWidget(split, 1);

    // Facts of the model and the cluster (docked by the main window).
    for (QLabel** facts : {&m_modelFacts, &m_clusterFacts}) {
        *facts = new QLabel(this);
        (*facts)->setWordWrap(true);
        (*facts)->setTextFormat(Qt::RichText);
        (*facts)->setTextInteractionFlags(Qt::TextSelectableByMouse);
        (*facts)->setAlignment(Qt::AlignTop | Qt::AlignLeft);
        (*facts)->setMargin(6);
        (*facts)->hide();
    }

    setInputs({}, {}, {}); // empty until a project or files give a model and a cluster
}

std::vector<Designer::Panel> Designer::takePanels()
{
    std::vector<Panel> out;
    if (m_palettePanel->parentWidget() != m_leftColumn)
        return out; // taken already
    for (QWidget* w : {m_palettePanel, m_settingsPanel, m_inspectorPanel}) {
        w->setParent(nullptr);
        if (auto* box = qobject_cast<QGroupBox*>(w)) { // the dock's title says it
            box->setTitle({});
            box->setFlat(true);
        }
    }
    m_leftColumn->hide();
    m_split->setSizes({0, 520, 340}); // the table and the prediction share what the docks leave
    m_modelFacts->setParent(nullptr);
    m_clusterFacts->setParent(nullptr);
    m_modelFacts->show();
    m_clusterFacts->show();
    out.push_back({tr("Strategy Palette"), "paletteDock", m_palettePanel, Qt::LeftDockWidgetArea});
    out.push_back({tr("Global Settings"), "settingsDock", m_settingsPanel, Qt::LeftDockWidgetArea, true});
    out.push_back({tr("Inspector"), "inspectorDock", m_inspectorPanel, Qt::RightDockWidgetArea, true});
    out.push_back({tr("Model"), "modelDock", m_modelFacts, Qt::RightDockWidgetArea});
    out.push_back({tr("Cluster"), "clusterDock", m_clusterFacts, Qt::RightDockWidgetArea});
    return out;
}

void Designer::updateFacts()
{
    if (!m_model) {
        m_modelFacts->setText(tr("No model. File ▸ Import Model… (ONNX, Hugging Face config.json, native JSON)."));
        m_clusterFacts->setText(tr("No cluster. File ▸ Import Cluster… or Cluster from Preset…"));
        return;
    }
    const Model& m = *m_model;
    auto esc = [](const std::string& s) { return QString::fromStdString(s).toHtmlEscaped(); };
    const CostAt cost = modelCostAt(m, 1, m.sequence ? std::max<int64_t>(1, m.seq_len) : 1);
    QString text = QString("<b>%1</b> (%2)<br>").arg(esc(m.name), esc(m.family));
    text += tr("%1 layers").arg(m.layers.size());
    if (m.dims.layers > 0)
        text += tr(" in %1 blocks").arg(m.dims.layers);
    text += "<br>" + tr("%1 parameters (%2)").arg(esc(formatCount(double(m.parameterCount()))),
                                                   esc(std::string(dtypeName(m.param_dtype))));
    QStringList dims;
    if (m.dims.hidden)
        dims << tr("hidden %1").arg(m.dims.hidden);
    if (m.dims.heads)
        dims << tr("heads %1").arg(m.dims.heads) + (m.dims.kv_heads && m.dims.kv_heads != m.dims.heads
                                                        ? tr(" (%1 KV)").arg(m.dims.kv_heads) : QString());
    if (m.dims.ffn)
        dims << tr("FFN %1").arg(m.dims.ffn);
    if (m.dims.vocab)
        dims << tr("vocabulary %1").arg(m.dims.vocab);
    if (m.dims.experts)
        dims << tr("%1 experts, top-%2").arg(m.dims.experts).arg(m.dims.top_k);
    if (!dims.isEmpty())
        text += "<br>" + dims.join(", ");
    text += "<br>" + (m.sequence ? tr("per sample of %1 tokens: ").arg(m.seq_len) : tr("per sample: ")) +
            tr("%1 forward, %2 backward, %3 of saved activations")
                .arg(esc(formatFlopCount(cost.forward_flops)), esc(formatFlopCount(cost.backward_flops)),
                     esc(formatBytes(cost.activation_bytes)));
    for (const std::string& n : m.notes)
        text += "<br><i>" + esc(n) + "</i>";
    m_modelFacts->setText(text);

    const Cluster& c = *m_cluster;
    QString ct = QString("<b>%1</b><br>").arg(esc(c.name));
    std::map<std::string, int> kinds; // device name -> count
    for (const Node& n : c.nodes)
        for (const DeviceSpec& d : n.devices)
            ++kinds[d.name];
    ct += tr("%1 nodes, %2 devices").arg(c.nodes.size()).arg(c.deviceCount());
    for (const auto& [name, count] : kinds)
        ct += "<br>" + QString("%1 × %2").arg(count).arg(esc(name));
    const DeviceSpec& d0 = c.nodes.front().devices.front();
    QStringList dev;
    if (d0.memory_bytes)
        dev << esc(formatBytes(double(d0.memory_bytes)));
    for (const auto& [dtype, flops] : d0.peak_flops)
        dev << QString("%1 %2").arg(esc(formatFlops(flops)), esc(dtype));
    if (d0.memory_bandwidth)
        dev << tr("memory %1").arg(esc(formatBandwidth(d0.memory_bandwidth)));
    if (!dev.isEmpty())
        ct += "<br>" + tr("each: ") + dev.join(", ");
    const Node& n0 = c.nodes.front();
    if (n0.devices.size() > 1)
        ct += "<br>" + tr("within a node: %1, %2").arg(esc(std::string(linkKindName(n0.intra.kind))),
                                                      esc(formatBandwidth(n0.intra.bandwidth))) +
              (n0.links.empty() ? QString() : tr(" (%1 pair links from the topology)").arg(n0.links.size()));
    if (c.nodes.size() > 1 && n0.nic.count > 0)
        ct += "<br>" + tr("between nodes: %1 × %2 per node").arg(n0.nic.count).arg(esc(formatBandwidth(n0.nic.link.bandwidth)));
    if (!c.source.empty())
        ct += "<br><i>" + tr("from %1").arg(esc(c.source)) + "</i>";
    m_clusterFacts->setText(ct);
}

Designer::~Designer()
{
    m_watcher->waitForFinished();
    m_traceWatcher->waitForFinished();
    m_compareWatcher->waitForFinished();
}

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

void Designer::setInputs(const Model& m, const Cluster& c, const Strategy& s)
{
    m_undo->clear();
    const bool have = !m.layers.empty() && c.deviceCount() > 0;
    m_model = have ? std::make_shared<const Model>(m) : nullptr;
    m_cluster = have ? std::make_shared<const Cluster>(c) : nullptr;
    m_modelDoc = m_clusterDoc = 0;
    m_layers->setModel(m_model.get());
    m_graph->setModel(m_model.get());
    m_columnsSized = false;
    for (QWidget* w : std::initializer_list<QWidget*>{m_paletteView, m_table, m_dp, m_tp, m_pp, m_interleave, m_zero,
                                                      m_globalBatch, m_microBatch, m_schedule, m_precision,
                                                      m_recompute, m_attention, m_seqParallel, m_presets, m_timelineButton,
                                                      m_inspectApply})
        w->setEnabled(have);
    setCurrent(have ? s : Strategy{});
    updateFacts();
    if (!have) {
        m_stepLabel->setText(tr("No model"));
        m_summaryLabel->setText(tr("Import a model and a cluster (File ▸ Import Model…, File ▸ Import Cluster…), "
                                   "or open a project that has them."));
    }
}

void Designer::setCurrent(const Strategy& s)
{
    m_strategy = s;
    m_resolved.reset();
    m_resolveError.clear();
    if (m_model) {
        auto r = resolveStrategy(s, *m_model, *m_cluster);
        if (r)
            m_resolved = *r;
        else
            m_resolveError = QString::fromStdString(r.error().str());
    }
    const int64_t seq = m_model && m_model->sequence ? m_model->seq_len : 1;
    const bool first = m_model && !m_columnsSized;
    m_layers->setStrategy(m_resolved, s.micro_batch, seq);
    m_graph->setStrategy(m_resolved);
    if (first) {
        m_table->resizeColumnsToContents();
        m_columnsSized = true;
    }
    ++m_generation; // whatever is being predicted is stale now
    updateGlobals();
    updateInspector();
    if (m_model)
        schedulePrediction();
}

void Designer::showGraph(bool graph) { m_centre->setCurrentWidget(graph ? static_cast<QWidget*>(m_graph) : m_table->parentWidget()); }

Atom Designer::dropAtom(AtomKind k) const
{
    Atom a;
    a.kind = k;
    a.stage = m_inspectStage->value();
    a.ps_shards = m_inspectShards->value();
    a.compression = m_inspectCompression->currentIndex() == 1   ? Compression::FP16
                    : m_inspectCompression->currentIndex() == 2 ? Compression::PowerSGD
                                                                : Compression::None;
    return a;
}

std::vector<std::string> Designer::dropTargets(int row) const
{
    std::vector<std::string> out;
    const Layer* dropped = m_layers->layer(row);
    if (!dropped)
        return out;
    std::set<int> rows;
    for (const QModelIndex& i : m_table->selectionModel()->selectedRows())
        rows.insert(m_sorted->mapToSource(i).row());
    if (!rows.count(row))
        return {dropped->name};
    for (int r : rows)
        if (const Layer* l = m_layers->layer(r))
            out.push_back(l->name);
    return out;
}

bool Designer::assignAtom(const std::vector<std::string>& layers, const Atom& atom, QString* why)
{
    if (!m_model) {
        if (why)
            *why = tr("No model is open.");
        return false;
    }
    auto r = partita::assignAtom(m_strategy, *m_model, *m_cluster, layers, atom);
    if (!r) {
        const QString reason = QString::fromStdString(r.error().str());
        m_dropNote->setText(tr("<span style='color:#c62828'><b>Refused:</b> %1</span>").arg(reason.toHtmlEscaped()));
        if (why)
            *why = reason;
        return false;
    }
    m_dropNote->clear();
    const QString what = layers.size() == 1 ? QString::fromStdString(layers.front())
                                            : tr("%1 layers").arg(layers.size());
    editStrategy(*r, tr("%1 on %2").arg(QString::fromStdString(atomInfo(atom.kind).label), what));
    return true;
}

bool Designer::applyPreset(const QString& preset, QString* why)
{
    if (!m_model) {
        if (why)
            *why = tr("No model is open.");
        return false;
    }
    PresetOptions o;
    o.global_batch = m_strategy.global_batch;
    o.micro_batch = m_strategy.micro_batch;
    o.tp = m_strategy.tp;
    o.pp = m_strategy.pp;
    o.interleave = m_strategy.interleave;
    o.precision = m_strategy.precision;
    o.recompute = m_strategy.recompute;
    o.sequence_parallel = m_strategy.sequence_parallel;
    auto s = strategyPreset(preset.toStdString(), *m_model, *m_cluster, o);
    if (!s) {
        const QString reason = QString::fromStdString(s.error().str());
        m_dropNote->setText(tr("<span style='color:#c62828'><b>Preset refused:</b> %1</span>").arg(reason.toHtmlEscaped()));
        if (why)
            *why = reason;
        return false;
    }
    m_dropNote->clear();
    editStrategy(*s, tr("Apply preset %1").arg(preset));
    return true;
}

void Designer::editStrategy(const Strategy& s, const QString& what)
{
    if (s == m_strategy)
        return;
    m_undo->push(new StrategyCommand(this, m_strategy, s, what));
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

void Designer::updateGlobals()
{
    m_updating = true;
    const Strategy& s = m_strategy;
    const QSignalBlocker b1(m_dp), b2(m_tp), b3(m_pp), b4(m_interleave), b5(m_zero), b6(m_globalBatch),
        b7(m_microBatch), b8(m_schedule), b9(m_precision), b10(m_recompute), b11(m_seqParallel), b12(m_ep),
        b13(m_attention);
    m_dp->setValue(s.dp);
    m_tp->setValue(s.tp);
    m_pp->setValue(s.pp);
    m_ep->setValue(s.ep);
    m_ep->setEnabled(m_model && m_model->dims.experts > 0);
    m_interleave->setValue(s.interleave);
    m_zero->setValue(s.zero_stage);
    m_globalBatch->setValue(int(std::min<int64_t>(s.global_batch, m_globalBatch->maximum())));
    m_microBatch->setValue(int(std::min<int64_t>(s.micro_batch, m_microBatch->maximum())));
    m_schedule->setCurrentIndex(s.schedule == PipelineSchedule::GPipe ? 0 : s.schedule == PipelineSchedule::OneFOneB ? 1 : 2);
    m_precision->setCurrentIndex(int(s.precision == Precision::FP32 ? 0
                                     : s.precision == Precision::FP16 ? 1
                                     : s.precision == Precision::BF16 ? 2
                                                                      : 3));
    m_recompute->setCurrentIndex(s.recompute == Recompute::None ? 0 : s.recompute == Recompute::Selective ? 1 : 2);
    m_attention->setCurrentIndex(s.attention == Attention::Fused ? 0 : 1);
    m_seqParallel->setChecked(s.sequence_parallel);
    const int devices = m_cluster ? m_cluster->deviceCount() : 0;
    const int64_t used = int64_t(s.dp) * s.tp * s.pp;
    m_meshNote->setText(used == devices ? tr("%1 × %2 × %3 = all %4 devices").arg(s.dp).arg(s.tp).arg(s.pp).arg(devices)
                                        : tr("<span style='color:#c62828'>%1 × %2 × %3 = %4, but the cluster has %5 "
                                             "devices</span>")
                                              .arg(s.dp)
                                              .arg(s.tp)
                                              .arg(s.pp)
                                              .arg(used)
                                              .arg(devices));
    m_inspectStage->setMaximum(std::max(0, s.pp * std::max(1, s.interleave) - 1));
    m_updating = false;
}

void Designer::globalEdited()
{
    if (m_updating || !m_model)
        return;
    Strategy s = m_strategy;
    const int devices = m_cluster->deviceCount();
    const QObject* from = sender();
    s.tp = m_tp->value();
    s.pp = m_pp->value();
    s.dp = m_dp->value();
    s.ep = m_ep->value();
    // Changing tp or pp keeps the mesh on every device when it can.
    if ((from == m_tp || from == m_pp) && devices % (s.tp * s.pp) == 0) {
        const int dp = devices / (s.tp * s.pp);
        if (s.global_batch % dp == 0 || s.global_batch == int64_t(s.dp) * s.micro_batch)
            s.global_batch = s.global_batch == int64_t(s.dp) * s.micro_batch ? int64_t(dp) * s.micro_batch : s.global_batch;
        s.dp = dp;
    }
    s.interleave = m_interleave->value();
    s.zero_stage = m_zero->value();
    s.global_batch = from == m_globalBatch ? m_globalBatch->value() : s.global_batch;
    s.micro_batch = m_microBatch->value();
    s.schedule = m_schedule->currentIndex() == 0   ? PipelineSchedule::GPipe
                 : m_schedule->currentIndex() == 1 ? PipelineSchedule::OneFOneB
                                                   : PipelineSchedule::Interleaved;
    s.precision = m_precision->currentIndex() == 0   ? Precision::FP32
                  : m_precision->currentIndex() == 1 ? Precision::FP16
                  : m_precision->currentIndex() == 2 ? Precision::BF16
                                                     : Precision::FP8;
    s.recompute = m_recompute->currentIndex() == 0   ? Recompute::None
                  : m_recompute->currentIndex() == 1 ? Recompute::Selective
                                                     : Recompute::Full;
    s.attention = m_attention->currentIndex() == 0 ? Attention::Fused : Attention::Unfused;
    s.sequence_parallel = m_seqParallel->isChecked();
    editStrategy(s, tr("Change global settings"));
}

void Designer::updateInspector()
{
    const QModelIndexList rows = m_table->selectionModel() ? m_table->selectionModel()->selectedRows() : QModelIndexList{};
    if (rows.isEmpty() || !m_model) {
        m_inspectTitle->setText(tr("<b>No layer selected</b>"));
        m_inspectBody->setText(tr("Select layers in the table (Shift/Ctrl+click, or right-click ▸ Select This Layer "
                                  "in Every Block), then drop an atom on them or apply a sync method here."));
        m_inspectApply->setEnabled(false);
        return;
    }
    m_inspectApply->setEnabled(true);
    if (rows.size() > 1) {
        m_inspectTitle->setText(tr("<b>%1 layers selected</b>").arg(rows.size()));
        m_inspectBody->setText(tr("Atoms dropped on any of them apply to all of them."));
        return;
    }
    const int row = m_sorted->mapToSource(rows.front()).row();
    const Layer* l = m_layers->layer(row);
    if (!l)
        return;
    m_inspectTitle->setText(QString("<b>%1</b>").arg(QString::fromStdString(l->name).toHtmlEscaped()));
    QString body = tr("%1, %2 parameters").arg(QString::fromStdString(std::string(layerKindName(l->kind))))
                       .arg(QLocale().toString(qlonglong(l->parameterCount())));
    if (m_resolved && size_t(row) < m_resolved->layers.size()) {
        const LayerAssignment& a = m_resolved->layers[size_t(row)];
        body += tr("<br>sync: %1<br>tensor parallel: %2<br>stage: %3<br>recompute: %4")
                    .arg(QString::fromStdString(syncLabel(a.sync)),
                         QString::fromStdString(std::string(tpRoleName(a.tp_role))))
                    .arg(a.stage)
                    .arg(QString::fromStdString(std::string(recomputeName(a.recompute))));
    }
    m_inspectBody->setText(body);
}

void Designer::selectSameInEveryBlock()
{
    const QModelIndex cur = m_table->currentIndex();
    const Layer* l = cur.isValid() ? m_layers->layer(m_sorted->mapToSource(cur).row()) : nullptr;
    if (!l || l->block.empty() || l->name.rfind(l->block, 0) != 0)
        return;
    const std::string suffix = l->name.substr(l->block.size());
    QItemSelection sel;
    for (int r = 0; r < m_layers->rowCount(); ++r) {
        const Layer* x = m_layers->layer(r);
        if (!x->block.empty() && x->name.size() == x->block.size() + suffix.size() &&
            x->name.compare(x->block.size(), std::string::npos, suffix) == 0) {
            const QModelIndex i = m_sorted->mapFromSource(m_layers->index(r, 0));
            sel.select(i, i);
        }
    }
    m_table->selectionModel()->select(sel, QItemSelectionModel::ClearAndSelect | QItemSelectionModel::Rows);
}

// Until predictionDone() has run: the watcher stops "running" before its
// finished signal is delivered.
bool Designer::predicting() const { return m_debounce->isActive() || m_inFlight || m_rerun; }

bool Designer::comparing() const { return m_compareWatcher->isRunning(); }

void Designer::schedulePrediction()
{
    m_statusLabel->setText(tr("<i>Predicting…</i>"));
    m_debounce->start();
}

void Designer::startPrediction()
{
    if (!m_model)
        return;
    if (m_inFlight) {
        m_rerun = true; // once this one is done
        return;
    }
    if (!m_resolved) {
        m_result.reset();
        m_predictionError = m_resolveError;
        showPrediction();
        emit predictionUpdated();
        return;
    }
    const int gen = m_generation;
    auto model = m_model;
    auto cluster = m_cluster;
    Strategy s = m_strategy;
    m_inFlight = true;
    m_watcher->setFuture(QtConcurrent::run([gen, model, cluster, s]() { return predict(*model, *cluster, s, false, gen); }));
}

void Designer::predictionDone()
{
    m_inFlight = false;
    Outcome o = m_watcher->result();
    if (o.generation == m_generation) {
        m_result = std::move(o.result);
        m_predictionError = o.error;
        m_layers->setPrediction(m_result);
        showPrediction();
        emit predictionUpdated();
    } else {
        m_rerun = true;
    }
    if (m_rerun && !m_debounce->isActive()) {
        m_rerun = false;
        startPrediction();
    }
}

void Designer::showPrediction()
{
    if (!m_result) {
        m_stepLabel->setText(tr("—"));
        m_summaryLabel->clear();
        m_statusLabel->setText(
            tr("<span style='color:#c62828'><b>Not predicted:</b> %1</span>").arg(m_predictionError.toHtmlEscaped()));
        m_memoryChart->setChart(new QChart);
        m_breakdownChart->setChart(new QChart);
        m_layers->setPrediction(std::nullopt);
        return;
    }
    const SimResult& r = *m_result;
    m_stepLabel->setText(tr("%1 per step").arg(seconds(r.step_time)));
    m_summaryLabel->setText(tr("%1 samples/s · %2 tokens/s · MFU %3 %<br>peak memory %4 of %5 per GPU")
                                .arg(QString::number(r.samples_per_s, 'f', 1))
                                .arg(QLocale().toString(qlonglong(r.tokens_per_s)))
                                .arg(QString::number(r.mfu * 100, 'f', 1))
                                .arg(gib(r.memory.peak), gib(r.memory.capacity)));
    QString status;
    if (r.oom)
        status = tr("<span style='color:#c62828'><b>Out of memory</b> on the stages in red.</span>");
    for (const std::string& n : r.notes)
        status += (status.isEmpty() ? "" : "<br>") + QString::fromStdString(n).toHtmlEscaped();
    m_statusLabel->setText(status);

    // Memory per pipeline stage, stacked, with the device's capacity.
    auto* chart = new QChart;
    chart->setTitle(tr("Memory per GPU, by pipeline stage (GiB)"));
    auto* weights = new QBarSet(tr("weights + optimizer"));
    auto* acts = new QBarSet(tr("activations"));
    weights->setColor(QColor(0x3b, 0x7d, 0xd8));
    acts->setColor(QColor(0x8e, 0x6b, 0xc4));
    weights->setSelectedColor(QColor(0xc6, 0x28, 0x28));
    acts->setSelectedColor(QColor(0xe5, 0x73, 0x73));
    QStringList stages;
    double top = r.memory.capacity;
    for (size_t i = 0; i < r.stage_memory.size(); ++i) {
        const MemoryUse& m = r.stage_memory[i];
        *weights << m.parameters_optimizer / double(1 << 30);
        *acts << m.activations / double(1 << 30);
        if (m.oom) {
            weights->selectBar(int(i));
            acts->selectBar(int(i));
        }
        stages << tr("stage %1").arg(i);
        top = std::max(top, m.peak);
    }
    auto* bars = new QStackedBarSeries;
    bars->append(weights);
    bars->append(acts);
    chart->addSeries(bars);
    auto* cats = new QBarCategoryAxis;
    cats->append(stages);
    auto* values = new QValueAxis;
    values->setRange(0, top * 1.1 / double(1 << 30));
    values->applyNiceNumbers(); // round GiB ticks
    values->setLabelFormat("%.0f");
    chart->addAxis(cats, Qt::AlignBottom);
    chart->addAxis(values, Qt::AlignLeft);
    bars->attachAxis(cats);
    bars->attachAxis(values);
    auto* cap = new QLineSeries;
    cap->setName(tr("capacity"));
    cap->append(-0.5, r.memory.capacity / double(1 << 30));
    cap->append(double(stages.size()) - 0.5, r.memory.capacity / double(1 << 30));
    QPen pen(QColor(0xc6, 0x28, 0x28));
    pen.setStyle(Qt::DashLine);
    pen.setWidth(2);
    cap->setPen(pen);
    chart->addSeries(cap);
    auto* capX = new QValueAxis;
    capX->setRange(-0.5, double(stages.size()) - 0.5);
    capX->setVisible(false);
    chart->addAxis(capX, Qt::AlignTop);
    cap->attachAxis(capX);
    cap->attachAxis(values);
    chart->legend()->setAlignment(Qt::AlignBottom);
    QFont small = chart->legend()->font();
    small.setPointSizeF(small.pointSizeF() * 0.85);
    chart->legend()->setFont(small);
    chart->setMargins(QMargins(4, 4, 4, 4));
    m_memoryChart->setChart(chart);
    styleChart(chart, palette());

    // Where the step goes, on the most loaded stage.
    const Breakdown& b = r.breakdown;
    auto* bd = new QChart;
    bd->setTitle(tr("Step breakdown (ms)"));
    auto* series = new QHorizontalStackedBarSeries;
    auto add = [&](const QString& name, double s, QColor c) {
        if (s <= 0)
            return; // a legend entry for nothing only crowds the others out
        const double ms = s * 1e3;
        auto* set = new QBarSet(QString("%1 %2").arg(name, QString::number(ms, 'f', ms >= 10 ? 0 : 1)));
        *set << s * 1e3;
        set->setColor(c);
        series->append(set);
    };
    add(tr("compute"), b.compute - b.tp_comm, QColor(0x3d, 0x9a, 0x50));
    add(tr("TP comm"), b.tp_comm, QColor(0xe8, 0x8a, 0x2a));
    add(tr("exposed comm"), b.exposed_comm, QColor(0xc6, 0x28, 0x28));
    add(tr("bubble"), b.bubble, QColor(0x9a, 0xa0, 0xa6));
    add(tr("optimizer"), b.optimizer, QColor(0x63, 0x3f, 0x9e));
    add(tr("idle"), b.idle, QColor(0xd0, 0xd0, 0xd0));
    bd->addSeries(series);
    auto* bcat = new QBarCategoryAxis;
    bcat->append(tr("step"));
    auto* bval = new QValueAxis;
    bval->setLabelFormat("%.0f");
    bval->setTickCount(3);
    bd->addAxis(bcat, Qt::AlignLeft);
    bd->addAxis(bval, Qt::AlignBottom);
    series->attachAxis(bcat);
    series->attachAxis(bval);
    bcat->setVisible(false);
    bd->legend()->setAlignment(Qt::AlignRight);
    bd->legend()->setFont(small);
    bd->setMargins(QMargins(4, 4, 4, 4));
    m_breakdownChart->setChart(bd);
    styleChart(bd, palette());
}

void Designer::storePredictedRun()
{
    if (!m_model || !m_resolved) {
        showError(m_model ? tr("The strategy does not resolve:\n%1").arg(m_resolveError) : tr("No model is open."));
        return;
    }
    if (m_traceWatcher->isRunning())
        return;
    m_timelineButton->setEnabled(false);
    auto model = m_model;
    auto cluster = m_cluster;
    Strategy s = m_strategy;
    m_traceWatcher->setFuture(QtConcurrent::run([model, cluster, s]() { return predict(*model, *cluster, s, true); }));
}

Designer::Outcome Designer::predict(const Model& m, const Cluster& c, const Strategy& s, bool trace, int generation)
{
    Outcome o;
    o.generation = generation;
    SimOptions opt;
    opt.trace = trace;
    auto r = simulate(m, c, s, opt);
    if (r)
        o.result = std::move(*r);
    else
        o.error = QString::fromStdString(r.error().str());
    return o;
}

Result<int64_t> Designer::storePrediction(const Strategy& s, const SimResult& r)
{
    if (!m_store)
        return Error{{}, {}, "open or create a project to keep predicted timelines"};
    auto save = [&](const char* kind, const std::string& name, const std::string& body, int64_t& cached) -> Result<bool> {
        if (cached)
            return true;
        auto d = m_store->saveDocument(kind, name, body);
        if (!d)
            return d.error();
        cached = d->id;
        return true;
    };
    if (auto m = save("model", m_model->name, modelToJson(*m_model), m_modelDoc); !m)
        return m.error();
    if (auto c = save("cluster", m_cluster->name, clusterToJson(*m_cluster), m_clusterDoc); !c)
        return c.error();
    const std::string name = s.name.empty() ? "designer" : s.name;
    // The strategy as a document: the newest saved version that is this very
    // strategy, else a new version.
    int64_t strategyDoc = 0;
    int version = 0;
    const std::string body = strategyToJson(s);
    if (auto docs = m_store->documents("strategy"))
        for (const Document& d : *docs)
            if (d.name == name && d.body == body && d.version > version) {
                version = d.version;
                strategyDoc = d.id;
            }
    if (!strategyDoc) {
        auto sd = m_store->saveDocument("strategy", name, body);
        if (!sd)
            return sd.error();
        strategyDoc = sd->id;
        version = sd->version;
    }
    RunInfo info;
    info.name = name + " v" + std::to_string(version) + " (predicted)";
    info.kind = RunKind::Predicted;
    info.source = "partita designer";
    info.model_id = m_modelDoc;
    info.cluster_id = m_clusterDoc;
    info.strategy_id = strategyDoc;
    return m_store->storeTrace(r.trace, info, predictionMetaJson(r));
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

void Designer::showError(const QString& what)
{
    m_lastError = what;
    emit errorOccurred(what);
}

} // namespace partita

namespace partita {

void Designer::changeEvent(QEvent* e)
{
    if (e->type() == QEvent::PaletteChange) { // light/dark switched: the charts follow
        styleChart(m_memoryChart->chart(), palette());
        styleChart(m_breakdownChart->chart(), palette());
    }
    QWidget::changeEvent(e);
}

} // namespace partita
