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
    for (QWidget* w : std::initializer_list<QWidget*>{m_paletteView, m_table, m_dp, m_tp, m_pp, m_cp, m_interleave, m_zero,
                                                      m_globalBatch, m_microBatch, m_schedule, m_precision,
                                                      m_recompute, m_attention, m_seqParallel, m_tpOverlap, m_gradOverlap,
                                                      m_gatherOverlap, m_presets, m_timelineButton,
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

void Designer::updateGlobals()
{
    m_updating = true;
    const Strategy& s = m_strategy;
    const QSignalBlocker b1(m_dp), b2(m_tp), b3(m_pp), b4(m_interleave), b5(m_zero), b6(m_globalBatch),
        b7(m_microBatch), b8(m_schedule), b9(m_precision), b10(m_recompute), b11(m_seqParallel), b12(m_ep),
        b13(m_attention), b14(m_cp), b15(m_cpComm), b16(m_tpOverlap), b17(m_gradOverlap), b18(m_gatherOverlap);
    m_dp->setValue(s.dp);
    m_tp->setValue(s.tp);
    m_pp->setValue(s.pp);
    m_ep->setValue(s.ep);
    m_ep->setEnabled(m_model && m_model->dims.experts > 0);
    m_cp->setValue(s.cp);
    m_cpComm->setCurrentIndex(s.cp_comm == ContextComm::P2P ? 0 : 1);
    m_cpComm->setEnabled(m_model && s.cp > 1);
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
    m_attention->setCurrentIndex(int(s.attention)); // the combo's rows follow the enum
    m_seqParallel->setChecked(s.sequence_parallel);
    m_tpOverlap->setChecked(s.tp_comm_overlap);
    m_gradOverlap->setChecked(s.overlap_grad_reduce);
    m_gatherOverlap->setChecked(s.overlap_param_gather);
    const int devices = m_cluster ? m_cluster->deviceCount() : 0;
    const int64_t used = int64_t(s.dp) * s.tp * s.pp * s.cp;
    const QString product = s.cp > 1 ? tr("%1 × %2 × %3 × %4").arg(s.dp).arg(s.tp).arg(s.cp).arg(s.pp)
                                     : tr("%1 × %2 × %3").arg(s.dp).arg(s.tp).arg(s.pp);
    m_meshNote->setText(used == devices ? tr("%1 = all %2 devices").arg(product).arg(devices)
                                        : tr("<span style='color:#c62828'>%1 = %2, but the cluster has %3 "
                                             "devices</span>")
                                              .arg(product)
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
    s.cp = m_cp->value();
    s.cp_comm = m_cpComm->currentIndex() == 0 ? ContextComm::P2P : ContextComm::AllGather;
    // Changing tp, cp or pp keeps the mesh on every device when it can.
    if ((from == m_tp || from == m_pp || from == m_cp) && devices % (s.tp * s.pp * s.cp) == 0) {
        const int dp = devices / (s.tp * s.pp * s.cp);
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
    s.attention = Attention(std::clamp(m_attention->currentIndex(), 0, int(Attention::Flash2)));
    s.sequence_parallel = m_seqParallel->isChecked();
    s.tp_comm_overlap = m_tpOverlap->isChecked();
    s.overlap_grad_reduce = m_gradOverlap->isChecked();
    s.overlap_param_gather = m_gatherOverlap->isChecked();
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
