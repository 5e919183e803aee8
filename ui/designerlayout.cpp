// The designer's widgets (designer.h): the palette, the layer table and
// graph, the inspector, the global settings, the prediction panels, and
// their connections; the panels the main window docks.
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

namespace {

constexpr int kDebounceMs = 120; // coalesces a spin box held down or a burst of drops into one prediction


QSpinBox* spin(int lo, int hi, const QString& tip)
{
    auto* s = new QSpinBox;
    s->setRange(lo, hi);
    s->setToolTip(tip);
    s->setKeyboardTracking(false); // one edit per value typed, not per digit
    return s;
}

// Sets the layer table up: sorted by a header click, rows selected, strategy atoms dropped on rows, a context menu.
void configureLayerTable(QTableView* table, QAbstractItemModel* model)
{
    table->setModel(model);
    table->setSortingEnabled(true);
    table->sortByColumn(-1, Qt::AscendingOrder); // model order until a header is clicked
    table->setSelectionBehavior(QAbstractItemView::SelectRows);
    table->setSelectionMode(QAbstractItemView::ExtendedSelection);
    table->setAcceptDrops(true);
    table->viewport()->setAcceptDrops(true);
    table->setDragDropMode(QAbstractItemView::DropOnly);
    table->setDragDropOverwriteMode(true);
    table->setDropIndicatorShown(true);
    table->setDefaultDropAction(Qt::CopyAction);
    table->verticalHeader()->hide();
    table->verticalHeader()->setDefaultSectionSize(table->fontMetrics().height() + 6);
    table->horizontalHeader()->setStretchLastSection(true);
    table->setContextMenuPolicy(Qt::CustomContextMenu);
}

// A wrapped, selectable label for what a refused drop says.
QLabel* createDropNote()
{
    auto* note = new QLabel;
    note->setWordWrap(true);
    note->setTextInteractionFlags(Qt::TextSelectableByMouse);
    return note;
}

// The Layers tab: the table above the drop note, edge to edge.
QWidget* stackTableOverNote(QTableView* table, QLabel* note)
{
    auto* tableBox = new QWidget;
    auto* cl = new QVBoxLayout(tableBox);
    cl->setContentsMargins(0, 0, 0, 0);
    cl->addWidget(table, 1);
    cl->addWidget(note);
    return tableBox;
}

} // namespace

Designer::Designer(QWidget* parent) : QWidget(parent)
{
    createWatchers();
    QHBoxLayout* header = createHeader();
    // Left: palette, atom parameters, global settings.
    QWidget* paletteBox = createPalette();
    QWidget* globals = createGlobalSettings();
    auto* left = m_leftColumn = new QWidget;
    auto* ll = new QVBoxLayout(left);
    ll->setContentsMargins(0, 0, 0, 0);
    ll->addWidget(paletteBox, 3);
    ll->addWidget(globals, 2);

    // Centre: the layer table and the graph; right: prediction and inspector.
    QTabWidget* centre = createCentre();
    QGroupBox* prediction = createPrediction();
    QWidget* inspector = createInspector();
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

    createFacts();
    setInputs({}, {}, {}); // empty until a project or files give a model and a cluster
}

// The undo stack, the prediction's debounce, autosave, and the watchers of
// the predictions run off the GUI thread.
void Designer::createWatchers()
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
}

// Model, cluster, strategy versions and presets above the columns.
QHBoxLayout* Designer::createHeader()
{
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
    QMenu* versionsMenu = createVersionsMenu();
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
    return header;
}

QMenu* Designer::createVersionsMenu()
{
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
    return versionsMenu;
}

QWidget* Designer::createPalette()
{
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
    return paletteBox;
}

QWidget* Designer::createGlobalSettings()
{
    auto* globals = m_settingsPanel = new QGroupBox(tr("Global settings"));
    auto* gf = new QFormLayout(globals);
    m_dp = spin(1, 1 << 20, tr("Data-parallel degree"));
    m_tp = spin(1, 1 << 12, tr("Tensor-parallel degree"));
    m_pp = spin(1, 1 << 12, tr("Pipeline-parallel degree"));
    m_ep = spin(1, 1 << 12, tr("Expert-parallel degree: each MoE layer's experts spread over this many data-parallel "
                               "ranks (divides data parallel; models with experts only)"));
    m_cp = spin(1, 1 << 12, tr("Context-parallel degree: each sequence split over this many ranks (the sequence "
                               "length must divide by 2 × cp)"));
    m_cpComm = new QComboBox;
    m_cpComm->addItems({tr("ring (p2p)"), tr("all-gather")});
    m_cpComm->setToolTip(tr("How context-parallel ranks exchange keys and values: a ring of sends beside the "
                            "attention, or one all-gather before it (Megatron-LM's --cp-comm-type)"));
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
    m_attention->addItems({tr("fused"), tr("unfused"), tr("FlashAttention-2")});
    m_attention->setToolTip(tr("Attention core: fused (FlashAttention: no s × s scores kept, QK^T recomputed in "
                               "backward, at the device's best fused kernel), unfused (separate kernels, the scores "
                               "through memory) or FlashAttention-2 (fused, in FlashAttention-2's slower kernels, as "
                               "Transformer Engine runs with NVTE_FUSED_ATTN=0)"));
    m_seqParallel = new QCheckBox(tr("Sequence parallel"));
    m_tpOverlap = new QCheckBox(tr("Overlap tensor-parallel communication"));
    m_tpOverlap->setToolTip(tr("All-gathers and reduce-scatters beside the GEMMs they feed (Transformer Engine "
                               "userbuffers, Megatron-LM --tp-comm-overlap); needs sequence parallelism"));
    m_gradOverlap = new QCheckBox(tr("Reduce gradients during backward"));
    m_gradOverlap->setToolTip(tr("Each gradient bucket as soon as it is ready (PyTorch DDP; Megatron-LM "
                                 "--overlap-grad-reduce), else all after the backward"));
    m_gatherOverlap = new QCheckBox(tr("Gather parameters during forward"));
    m_gatherOverlap->setToolTip(tr("ZeRO-1/2 (distributed optimizer): the updated parameters' all-gather beside the "
                                   "next step's first forward (Megatron-LM --overlap-param-gather)"));
    m_meshNote = new QLabel;
    m_meshNote->setWordWrap(true);
    gf->addRow(tr("Data parallel"), m_dp);
    gf->addRow(tr("Tensor parallel"), m_tp);
    gf->addRow(tr("Pipeline parallel"), m_pp);
    gf->addRow(tr("Expert parallel"), m_ep);
    gf->addRow(tr("Context parallel"), m_cp);
    gf->addRow(tr("Context exchange"), m_cpComm);
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
    gf->addRow(m_tpOverlap);
    gf->addRow(m_gradOverlap);
    gf->addRow(m_gatherOverlap);
    for (QSpinBox* s : {m_dp, m_tp, m_pp, m_ep, m_cp, m_interleave, m_zero, m_globalBatch, m_microBatch})
        connect(s, &QSpinBox::valueChanged, this, &Designer::globalEdited);
    for (QComboBox* c : {m_schedule, m_precision, m_recompute, m_attention, m_cpComm})
        connect(c, &QComboBox::currentIndexChanged, this, &Designer::globalEdited);
    for (QCheckBox* b : {m_seqParallel, m_tpOverlap, m_gradOverlap, m_gatherOverlap})
        connect(b, &QCheckBox::toggled, this, &Designer::globalEdited);
    return globals;
}

// The layer table and the model graph, one selection between them.
QTabWidget* Designer::createCentre()
{
    m_layers = new LayerTableModel(this);
    m_layers->setDropHandler([this](int row, AtomKind k, QString* why) { return assignAtom(dropTargets(row), dropAtom(k), why); });
    m_sorted = new QSortFilterProxyModel(this);
    m_sorted->setSourceModel(m_layers);
    m_sorted->setSortRole(LayerTableModel::SortRole);
    m_table = new QTableView;
    configureLayerTable(m_table, m_sorted);
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
    m_dropNote = createDropNote();
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
    QWidget* tableBox = stackTableOverNote(m_table, m_dropNote);
    // Table and graph share the centre as tabs (the window is too narrow for
    // both beside the palette and the prediction); their selection is one.
    auto* centre = m_centre = new QTabWidget;
    centre->setDocumentMode(true);
    centre->addTab(tableBox, tr("Layers"));
    centre->addTab(m_graph, tr("Graph"));
    return centre;
}

QGroupBox* Designer::createPrediction()
{
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
    return prediction;
}

QWidget* Designer::createInspector()
{
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
    return inspector;
}

// Facts of the model and the cluster (docked by the main window).
void Designer::createFacts()
{
    for (QLabel** facts : {&m_modelFacts, &m_clusterFacts}) {
        *facts = new QLabel(this);
        (*facts)->setWordWrap(true);
        (*facts)->setTextFormat(Qt::RichText);
        (*facts)->setTextInteractionFlags(Qt::TextSelectableByMouse);
        (*facts)->setAlignment(Qt::AlignTop | Qt::AlignLeft);
        (*facts)->setMargin(6);
        (*facts)->hide();
    }
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

} // namespace partita
