#pragma once
// The designer: a strategy for the project's model and cluster, edited by
// dragging palette atoms onto layers (or a selection of them), by the global
// settings and presets, every edit undoable; each edit is re-simulated off the
// GUI thread (debounced) and the step time, throughput, MFU, memory per stage
// and the step's breakdown shown beside the layer table.

#include "partita/core/cluster.h"
#include "partita/core/model.h"
#include "partita/core/simulator.h"
#include "partita/core/strategy.h"
#include "partita/core/strategyedit.h"

#include <QFutureWatcher>
#include <QWidget>

#include <memory>
#include <optional>

class QChartView;
class QCheckBox;
class QComboBox;
class QGroupBox;
class QHBoxLayout;
class QLabel;
class QListView;
class QMenu;
class QPushButton;
class QSortFilterProxyModel;
class QSplitter;
class QSpinBox;
class QTabWidget;
class QTableView;
class QTimer;
class QUndoStack;

namespace partita {

class LayerTableModel;
class ModelGraphView;
class PaletteModel;
class TraceStore;

class Designer : public QWidget
{
    Q_OBJECT
public:
    explicit Designer(QWidget* parent = nullptr);
    ~Designer() override;

    // Reads the project's newest model and cluster and its strategies
    // (nullptr: none). Returns false with lastError() when the documents
    // cannot be read; a project without a model or cluster is not an error.
    bool setProject(TraceStore* store);
    // Designs for this model and cluster, starting from `s` (clears undo).
    void setInputs(const Model& m, const Cluster& c, const Strategy& s);
    bool hasInputs() const { return m_model != nullptr; }

    // The edits the GUI makes, each one undo step. False with the reason
    // (also shown) when the edit is refused.
    bool assignAtom(const std::vector<std::string>& layers, const Atom& atom, QString* why = nullptr);
    bool applyPreset(const QString& preset, QString* why = nullptr);
    void editStrategy(const Strategy& s, const QString& what);
    // Saves the strategy as a new version in the project (the name's next version).
    bool saveVersion(const QString& name, QString* why = nullptr);
    // Renames the strategy (and every saved version of it).
    bool renameStrategy(const QString& to, QString* why = nullptr);
    // Deletes a saved version; refused while runs were made with it.
    bool deleteVersion(int64_t docId, QString* why = nullptr);
    // Predicts a saved version (A) and the current strategy (B), stores both
    // timelines as runs and emits compareReady (asynchronous).
    bool compareWithVersion(int64_t docId, QString* why = nullptr);
    bool comparing() const;
    // Keeps unsaved edits in the project (an "autosave" document) so that a
    // crash or a closed window loses nothing; done 10 s after the last edit.
    // A project whose autosave is newer than its strategies reopens with it.
    bool autosaveNow();
    void discardAutosave();

    const Strategy& strategy() const { return m_strategy; }
    const Model* model() const { return m_model.get(); }
    const Cluster* cluster() const { return m_cluster.get(); }
    QUndoStack* undoStack() const { return m_undo; }
    LayerTableModel* layerModel() const { return m_layers; }
    QTableView* layerView() const { return m_table; }
    ModelGraphView* graphView() const { return m_graph; }
    // Shows the graph (true) or the layer table in the centre.
    void showGraph(bool graph);
    QListView* paletteView() const { return m_paletteView; }
    PaletteModel* paletteModel() const { return m_palette; }
    QComboBox* versionBox() const { return m_versions; }
    QComboBox* modelBox() const { return m_modelBox; }
    QComboBox* clusterBox() const { return m_clusterBox; }
    // The designer's side panels, taken out of its own layout for the main
    // window to dock (palette, global settings, inspector) plus the model's
    // and cluster's facts, which only a window that docks them shows.
    struct Panel
    {
        QString title, objectName;
        QWidget* widget = nullptr;
        Qt::DockWidgetArea area = Qt::LeftDockWidgetArea;
        bool front = false; // in front of the panels it shares a place with
    };
    std::vector<Panel> takePanels();
    QLabel* modelFacts() const { return m_modelFacts; }
    QLabel* clusterFacts() const { return m_clusterFacts; }
    // Designs for the project's model and cluster documents with these ids,
    // with `preferred` when it fits them (else the current strategy, else DDP).
    bool useDocuments(int64_t modelDoc, int64_t clusterDoc, const Strategy* preferred = nullptr);

    // The latest prediction (nullopt while none or when the strategy does not resolve).
    const std::optional<SimResult>& prediction() const { return m_result; }
    QString predictionError() const { return m_predictionError; }
    bool predicting() const;
    QString lastError() const { return m_lastError; }
    // Selects the current layer's counterpart in every repeated block.
    void selectSameInEveryBlock();
    // The layers a drop on `row` applies to: the selection when the row is in it.
    std::vector<std::string> dropTargets(int row) const;

signals:
    void predictionUpdated();
    // The predicted timeline of the current strategy was stored as a run.
    void runStored(qint64 runId);
    void errorOccurred(const QString& message);
    // Two predicted runs to compare (compareWithVersion).
    void compareReady(qint64 a, qint64 b);
    // The user asked to see a layer's kernels in the timeline (its index in the model).
    void highlightLayerRequested(int layer);

protected:
    void changeEvent(QEvent* e) override;

private:
    friend class StrategyCommand;
    // The constructor's parts (designerlayout.cpp).
    void createWatchers();
    QHBoxLayout* createHeader();
    QMenu* createVersionsMenu();
    QWidget* createPalette();
    QWidget* createGlobalSettings();
    QTabWidget* createCentre();
    QGroupBox* createPrediction();
    QWidget* createInspector();
    void createFacts();
    void setCurrent(const Strategy& s); // from the undo stack
    void schedulePrediction();
    void startPrediction();
    void predictionDone();
    void showPrediction();
    void updateGlobals();
    void updateInspector();
    void globalEdited();
    void loadVersion(qint64 selectId); // refreshes the versions box; -1 keeps the current one
    void storePredictedRun();
    void showError(const QString& what);
    Result<int64_t> storePrediction(const Strategy& s, const SimResult& r);

    std::shared_ptr<const Model> m_model;
    std::shared_ptr<const Cluster> m_cluster;
    Strategy m_strategy;
    std::optional<ResolvedStrategy> m_resolved;
    QString m_resolveError, m_lastError;
    TraceStore* m_store = nullptr;
    int64_t m_modelDoc = 0, m_clusterDoc = 0;

    QUndoStack* m_undo = nullptr;
    PaletteModel* m_palette = nullptr;
    QListView* m_paletteView = nullptr;
    LayerTableModel* m_layers = nullptr;
    QSortFilterProxyModel* m_sorted = nullptr;
    QTableView* m_table = nullptr;
    ModelGraphView* m_graph = nullptr;
    QTabWidget* m_centre = nullptr;
    bool m_selectionSync = false;
    Atom dropAtom(AtomKind k) const; // an atom with the parameters set under the palette
    QComboBox* m_versions = nullptr;
    QComboBox* m_modelBox = nullptr;
    QComboBox* m_clusterBox = nullptr;
    QComboBox* m_presets = nullptr;
    QLabel* m_dropNote = nullptr; // why the last drop was refused

    // Global settings.
    QSpinBox *m_dp = nullptr, *m_tp = nullptr, *m_pp = nullptr, *m_interleave = nullptr, *m_zero = nullptr;
    QSpinBox* m_ep = nullptr;
    QSpinBox* m_cp = nullptr;
    QComboBox* m_cpComm = nullptr;
    QCheckBox *m_tpOverlap = nullptr, *m_gradOverlap = nullptr, *m_gatherOverlap = nullptr;
    QSpinBox *m_globalBatch = nullptr, *m_microBatch = nullptr;
    QComboBox *m_schedule = nullptr, *m_precision = nullptr, *m_recompute = nullptr, *m_attention = nullptr;
    QCheckBox* m_seqParallel = nullptr;
    QLabel* m_meshNote = nullptr;
    bool m_updating = false;
    bool m_columnsSized = false;

    // Inspector.
    QWidget* m_leftColumn = nullptr;
    QSplitter* m_split = nullptr;
    QWidget* m_palettePanel = nullptr;
    QWidget* m_settingsPanel = nullptr;
    QWidget* m_inspectorPanel = nullptr;
    QLabel* m_modelFacts = nullptr;
    QLabel* m_clusterFacts = nullptr;
    void updateFacts();
    QLabel* m_inspectTitle = nullptr;
    QLabel* m_inspectBody = nullptr;
    QComboBox* m_inspectSync = nullptr;
    QSpinBox* m_inspectShards = nullptr;
    QComboBox* m_inspectCompression = nullptr;
    QSpinBox* m_inspectStage = nullptr;
    QPushButton* m_inspectApply = nullptr;

    // Prediction.
    QLabel* m_stepLabel = nullptr;
    QLabel* m_summaryLabel = nullptr;
    QLabel* m_statusLabel = nullptr;
    QChartView* m_memoryChart = nullptr;
    QChartView* m_breakdownChart = nullptr;
    QPushButton* m_timelineButton = nullptr;
    QTimer* m_debounce = nullptr;
    QTimer* m_autosave = nullptr;
    struct Outcome
    {
        int generation = 0;
        std::optional<SimResult> result;
        QString error;
    };
    // A prediction on any thread (the worker's).
    static Outcome predict(const Model& m, const Cluster& c, const Strategy& s, bool trace, int generation = 0);
    QFutureWatcher<Outcome>* m_watcher = nullptr;
    QFutureWatcher<Outcome>* m_traceWatcher = nullptr;
    QFutureWatcher<std::pair<Outcome, Outcome>>* m_compareWatcher = nullptr;
    std::pair<Strategy, Strategy> m_compareStrategies;
    int m_generation = 0;
    bool m_rerun = false;
    bool m_inFlight = false;
    std::optional<SimResult> m_result;
    QString m_predictionError;
};

} // namespace partita
