#include "clusterview.h"

#include "partita/core/clusterio.h"
#include "partita/profiler/tracestore.h"

#include <QEvent>
#include <QComboBox>
#include <QGraphicsRectItem>
#include <QGraphicsScene>
#include <QGraphicsSimpleTextItem>
#include <QGraphicsView>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QPushButton>
#include <QSplitter>
#include <QTableView>
#include <QVBoxLayout>

#include <cmath>

namespace partita {

namespace {
constexpr double kGB = 1e9;
QString gbps(double bytesPerS) { return QString::number(bytesPerS / kGB, 'f', bytesPerS >= 10 * kGB ? 0 : 1); }
} // namespace

// ---- ClusterFiguresModel ----

ClusterFiguresModel::ClusterFiguresModel(QObject* parent) : QAbstractTableModel(parent) {}

void ClusterFiguresModel::setCluster(const Cluster& c)
{
    beginResetModel();
    m_cluster = c;
    m_edited = false;
    endResetModel();
}

std::string ClusterFiguresModel::peakKey(const DeviceSpec& d)
{
    for (const char* k : {"bf16", "fp16", "fp32"})
        if (d.peak_flops.count(k))
            return k;
    return "bf16";
}

int ClusterFiguresModel::rowCount(const QModelIndex& parent) const
{
    return parent.isValid() ? 0 : int(m_cluster.nodes.size());
}
int ClusterFiguresModel::columnCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : ColumnCount; }

QVariant ClusterFiguresModel::data(const QModelIndex& index, int role) const
{
    if (!index.isValid() || index.row() >= rowCount() || index.column() >= ColumnCount)
        return {};
    const struct Node& n = m_cluster.nodes[size_t(index.row())];
    const DeviceSpec* d = n.devices.empty() ? nullptr : &n.devices.front();
    if (role == Qt::DisplayRole || role == Qt::EditRole) {
        switch (index.column()) {
        case Node: return QString::fromStdString(n.name);
        case Devices: return int(n.devices.size());
        case Device: return d ? QString::fromStdString(d->name) : QString();
        case PeakTflops: {
            if (!d)
                return {};
            auto it = d->peak_flops.find(peakKey(*d));
            return it == d->peak_flops.end() ? QVariant() : QVariant(it->second / 1e12);
        }
        case MemoryGiB: return d ? QVariant(double(d->memory_bytes) / double(int64_t(1) << 30)) : QVariant();
        case MemoryBandwidth: return d ? QVariant(d->memory_bandwidth / kGB) : QVariant();
        case IntraLink: return QString::fromStdString(std::string(linkKindName(n.intra.kind)));
        case IntraBandwidth: return n.intra.bandwidth / kGB;
        case Nics: return n.nic.count;
        case NicBandwidth:
            if (!n.nic.count)
                return {};
            if (n.nic.link.bandwidth <= 0 && role == Qt::DisplayRole)
                return tr("unknown");
            return n.nic.link.bandwidth / kGB;
        }
    }
    if (role == Qt::ToolTipRole) {
        switch (index.column()) {
        case PeakTflops:
            return d ? tr("%1 dense, TFLOP/s. Source: %2").arg(QString::fromStdString(peakKey(*d)), QString::fromStdString(d->source))
                     : QVariant();
        case MemoryGiB:
        case MemoryBandwidth: return d ? tr("Source: %1").arg(QString::fromStdString(d->source)) : QVariant();
        case IntraBandwidth: return tr("Per direction, GB/s. Source: %1").arg(QString::fromStdString(n.intra.source));
        case NicBandwidth: return tr("Per NIC per direction, GB/s. Source: %1").arg(QString::fromStdString(n.nic.link.source));
        default: return {};
        }
    }
    if (role == Qt::TextAlignmentRole && index.column() >= PeakTflops && index.column() != IntraLink)
        return int(Qt::AlignRight | Qt::AlignVCenter);
    return {};
}

QVariant ClusterFiguresModel::headerData(int section, Qt::Orientation o, int role) const
{
    if (o != Qt::Horizontal || role != Qt::DisplayRole)
        return {};
    switch (section) {
    case Node: return tr("Node");
    case Devices: return tr("Devices");
    case Device: return tr("Device");
    case PeakTflops: return tr("Peak TFLOP/s");
    case MemoryGiB: return tr("Memory GiB");
    case MemoryBandwidth: return tr("Mem. GB/s");
    case IntraLink: return tr("Intra link");
    case IntraBandwidth: return tr("Intra GB/s");
    case Nics: return tr("NICs");
    case NicBandwidth: return tr("NIC GB/s");
    }
    return {};
}

Qt::ItemFlags ClusterFiguresModel::flags(const QModelIndex& index) const
{
    if (!index.isValid())
        return Qt::NoItemFlags;
    Qt::ItemFlags f = Qt::ItemIsEnabled | Qt::ItemIsSelectable;
    const int c = index.column();
    if (c == PeakTflops || c == MemoryGiB || c == MemoryBandwidth || c == IntraBandwidth ||
        (c == NicBandwidth && m_cluster.nodes[size_t(index.row())].nic.count > 0))
        f |= Qt::ItemIsEditable;
    return f;
}

bool ClusterFiguresModel::setData(const QModelIndex& index, const QVariant& value, int role)
{
    if (role != Qt::EditRole || !(flags(index) & Qt::ItemIsEditable))
        return false;
    bool ok = false;
    const double v = value.toDouble(&ok);
    if (!ok || !std::isfinite(v) || v <= 0)
        return false; // figures are positive: a zero would read as "unknown"
    struct Node& n = m_cluster.nodes[size_t(index.row())];
    const std::string edit = "edited in the workbench";
    switch (index.column()) {
    case PeakTflops:
        for (DeviceSpec& d : n.devices) {
            d.peak_flops[peakKey(d)] = v * 1e12;
            d.source = edit;
        }
        break;
    case MemoryGiB:
        for (DeviceSpec& d : n.devices) {
            d.memory_bytes = int64_t(v * double(int64_t(1) << 30));
            d.source = edit;
        }
        break;
    case MemoryBandwidth:
        for (DeviceSpec& d : n.devices) {
            d.memory_bandwidth = v * kGB;
            d.source = edit;
        }
        break;
    case IntraBandwidth:
        n.intra.bandwidth = v * kGB;
        n.intra.source = edit;
        break;
    case NicBandwidth:
        n.nic.link.bandwidth = v * kGB;
        n.nic.link.source = edit;
        break;
    default: return false;
    }
    m_edited = true;
    emit dataChanged(this->index(index.row(), 0), this->index(index.row(), ColumnCount - 1));
    emit figuresEdited();
    return true;
}

// ---- ClusterView ----

ClusterView::ClusterView(QWidget* parent) : QWidget(parent)
{
    m_box = new QComboBox;
    m_box->setSizeAdjustPolicy(QComboBox::AdjustToContents);
    m_box->setToolTip(tr("Clusters in the project"));
    connect(m_box, &QComboBox::activated, this, [this](int i) {
        if (!m_store)
            return;
        auto d = m_store->document(m_box->itemData(i).toLongLong());
        auto c = d ? clusterFromJson(d->body, "cluster '" + d->name + "' v" + std::to_string(d->version))
                   : Result<Cluster>(d.error());
        if (!c) {
            emit errorOccurred(QString::fromStdString(c.error().str()));
            return;
        }
        showCluster(*c);
    });
    auto* preset = new QPushButton(tr("From Preset…"));
    auto* import = new QPushButton(tr("Import File…"));
    import->setToolTip(tr("Cluster JSON, nvidia-smi topo -m output, or an Open MPI / DeepSpeed hostfile"));
    auto* detect = new QPushButton(tr("Detect This Machine"));
    m_save = new QPushButton(tr("Save Figures as New Version"));
    m_save->setEnabled(false);
    connect(preset, &QPushButton::clicked, this, &ClusterView::presetRequested);
    connect(import, &QPushButton::clicked, this, &ClusterView::importRequested);
    connect(detect, &QPushButton::clicked, this, &ClusterView::detectRequested);
    connect(m_save, &QPushButton::clicked, this, [this] {
        QString why;
        if (!saveVersion(&why))
            emit errorOccurred(why);
    });
    auto* bar = new QHBoxLayout;
    bar->addWidget(new QLabel(tr("Cluster:")));
    bar->addWidget(m_box);
    bar->addWidget(preset);
    bar->addWidget(import);
    bar->addWidget(detect);
    bar->addStretch(1);
    bar->addWidget(m_save);

    m_summary = new QLabel;
    m_summary->setWordWrap(true);
    m_view = new QGraphicsView(new QGraphicsScene(this));
    m_view->setRenderHint(QPainter::Antialiasing);
    m_view->setDragMode(QGraphicsView::ScrollHandDrag);
    m_figures = new ClusterFiguresModel(this);
    connect(m_figures, &ClusterFiguresModel::figuresEdited, this, [this] {
        m_save->setEnabled(m_store != nullptr);
        draw();
    });
    m_table = new QTableView;
    m_table->setModel(m_figures);
    m_table->verticalHeader()->hide();
    m_table->horizontalHeader()->setStretchLastSection(true);
    m_table->setToolTip(tr("Double-click a figure to edit it; save to keep it as a new version of the cluster"));
    auto* split = new QSplitter(Qt::Vertical);
    split->addWidget(m_view);
    split->addWidget(m_table);
    split->setSizes({480, 220});
    auto* top = new QVBoxLayout(this);
    top->addLayout(bar);
    top->addWidget(m_summary);
    top->addWidget(split, 1);
}

void ClusterView::setProject(TraceStore* store)
{
    m_store = store;
    m_box->clear();
    m_save->setEnabled(false);
    if (!store) {
        showCluster({});
        return;
    }
    auto docs = store->documents("cluster");
    int64_t newest = 0;
    if (docs)
        for (const Document& d : *docs) {
            m_box->addItem(QString("%1 v%2").arg(QString::fromStdString(d.name)).arg(d.version), qint64(d.id));
            newest = std::max(newest, d.id);
        }
    if (!newest) {
        showCluster({});
        return;
    }
    m_box->setCurrentIndex(m_box->findData(qint64(newest)));
    auto d = store->document(newest);
    if (auto c = d ? clusterFromJson(d->body) : Result<Cluster>(d.error()))
        showCluster(*c);
}

bool ClusterView::showCluster(const Cluster& c)
{
    m_figures->setCluster(c);
    m_table->resizeColumnsToContents();
    m_save->setEnabled(false);
    draw();
    return true;
}

bool ClusterView::saveVersion(QString* why)
{
    const Cluster& c = m_figures->cluster();
    if (!m_store || c.nodes.empty()) {
        if (why)
            *why = tr("No project or no cluster to save.");
        return false;
    }
    if (const std::string problem = validateCluster(c); !problem.empty()) {
        if (why)
            *why = QString::fromStdString(problem);
        return false;
    }
    auto d = m_store->saveDocument("cluster", c.name, clusterToJson(c));
    if (!d) {
        if (why)
            *why = QString::fromStdString(d.error().str());
        return false;
    }
    setProject(m_store);
    emit clusterSaved();
    return true;
}

namespace {
// Up to 8 nodes drawn side by side; the rest said in words.
constexpr int kMaxNodes = 8;
constexpr double kDevW = 110, kDevH = 46, kPad = 12;
constexpr double kNetY = -60;

// The device grid of one node box and the box's size.
struct NodeLayout
{
    int cols = 1;
    double w = 0, h = 0;
};

// Lays a node's devices out up to four to a row and sizes its box to fit.
NodeLayout layoutNode(const Node& n)
{
    NodeLayout l;
    l.cols = n.devices.size() > 4 ? 4 : std::max<int>(1, int(n.devices.size()));
    const int rows = int((n.devices.size() + size_t(l.cols) - 1) / size_t(l.cols));
    l.w = l.cols * kDevW + (l.cols + 1) * kPad;
    l.h = rows * kDevH + (rows + 1) * kPad + 44;
    return l;
}

// Draws a node's box, its bold name and the one line saying its intra-node link.
void drawNodeFrame(QGraphicsScene* s, const Node& n, double x, const NodeLayout& l, const QPalette& pal,
                   const QColor& nodeFill, const QFont& font)
{
    s->addRect(QRectF(x, 0, l.w, l.h), QPen(pal.color(QPalette::Mid), 1.5), nodeFill)->setZValue(-1);
    auto* title = s->addSimpleText(QString::fromStdString(n.name));
    QFont bold = font;
    bold.setBold(true);
    title->setFont(bold);
    title->setPos(x + kPad, 4);
    // The intra-node link, once: every pair not listed otherwise.
    const QString pairLinks = n.links.empty() ? QString() : ClusterView::tr(" (+%1 pair links)").arg(n.links.size());
    auto* intra = s->addSimpleText(ClusterView::tr("%1 · %2 GB/s per direction%3")
                                       .arg(QString::fromStdString(std::string(linkKindName(n.intra.kind))))
                                       .arg(gbps(n.intra.bandwidth))
                                       .arg(pairLinks));
    intra->setPos(x + kPad, 22);
}

// Draws a node's devices in its grid; returns their centres, in device order.
std::vector<QPointF> drawDevices(QGraphicsScene* s, const Node& n, double x, const NodeLayout& l,
                                 const QColor& deviceFill)
{
    std::vector<QPointF> centres;
    for (size_t di = 0; di < n.devices.size(); ++di) {
        const DeviceSpec& d = n.devices[di];
        const int r = int(di) / l.cols, col = int(di) % l.cols;
        const QRectF box(x + kPad + col * (kDevW + kPad), 44 + kPad + r * (kDevH + kPad), kDevW, kDevH);
        s->addRect(box, QPen(deviceFill.darker(200)), deviceFill);
        auto* t = s->addSimpleText(QString("%1 %2\n%3 GiB").arg(d.kind == "gpu" ? "GPU" : "CPU").arg(di)
                                       .arg(double(d.memory_bytes) / double(int64_t(1) << 30), 0, 'f', 0));
        t->setPos(box.left() + 6, box.top() + 5);
        t->setToolTip(QString::fromStdString(d.name + " — " + d.source));
        centres.push_back(box.center());
    }
    return centres;
}

// Draws the pairwise exceptions (NVLink counts from nvidia-smi topo, cube-mesh links) as lines.
void drawPairLinks(QGraphicsScene* s, const Node& n, const std::vector<QPointF>& centres)
{
    for (const PairLink& pl : n.links) {
        if (size_t(pl.a) >= centres.size() || size_t(pl.b) >= centres.size())
            continue;
        QPen pen(QColor(0x3d, 0x9a, 0x50, 160), 1 + std::min(4, std::max(1, pl.link.lanes)));
        auto* line = s->addLine(QLineF(centres[size_t(pl.a)], centres[size_t(pl.b)]), pen);
        line->setZValue(-0.5);
        line->setToolTip(ClusterView::tr("%1 ×%2, %3 GB/s")
                             .arg(QString::fromStdString(std::string(linkKindName(pl.link.kind))))
                             .arg(pl.link.lanes)
                             .arg(gbps(pl.link.bandwidth)));
    }
}

// Draws a node's uplink to the network bar and the words saying its NICs.
void drawNicUplink(QGraphicsScene* s, const Node& n, double x, double w)
{
    s->addLine(QLineF(x + w / 2, 0, x + w / 2, kNetY + 16), QPen(QColor(0xe8, 0x8a, 0x2a), 2));
    auto* nic = s->addSimpleText(
        ClusterView::tr("%1 × %2, %3").arg(n.nic.count)
            .arg(QString::fromStdString(std::string(linkKindName(n.nic.link.kind))))
            .arg(n.nic.link.bandwidth > 0 ? ClusterView::tr("%1 GB/s each").arg(gbps(n.nic.link.bandwidth))
                                          : ClusterView::tr("bandwidth unknown (edit it below)")));
    nic->setPos(x + w / 2 + 4, kNetY + 20);
}

// Draws the network bar above the nodes, from x = 0 across `width`.
void drawNetworkBar(QGraphicsScene* s, double width)
{
    s->addRect(QRectF(0, kNetY, width, 16), QPen(QColor(0xe8, 0x8a, 0x2a)), QColor(0xe8, 0x8a, 0x2a, 60));
    s->addSimpleText(ClusterView::tr("network"))->setPos(4, kNetY - 18);
}

// Bounds the scene round its items and scales the view to fit several nodes side by side, never below legible.
void fitSceneToView(QGraphicsView* view)
{
    QGraphicsScene* s = view->scene();
    s->setSceneRect(s->itemsBoundingRect().adjusted(-20, -20, 20, 20));
    const double fit = view->viewport()->width() > 50 ? view->viewport()->width() / s->sceneRect().width() : 1;
    const double scale = std::clamp(fit, 0.7, 1.0);
    view->resetTransform();
    view->scale(scale, scale);
}
} // namespace

void ClusterView::draw()
{
    QGraphicsScene* s = m_view->scene();
    s->clear();
    m_drawnDevices = 0;
    const Cluster& c = m_figures->cluster();
    if (c.nodes.empty()) {
        m_summary->setText(tr("No cluster: import one, pick a preset, or detect this machine."));
        return;
    }
    m_summary->setText(tr("<b>%1</b>: %2 node(s), %3 device(s). %4")
                           .arg(QString::fromStdString(c.name).toHtmlEscaped())
                           .arg(c.nodes.size())
                           .arg(c.deviceCount())
                           .arg(QString::fromStdString(c.source).toHtmlEscaped()));
    const QPalette pal = palette();
    const QColor deviceFill(0x3b, 0x7d, 0xd8, 90), nodeFill = pal.color(QPalette::AlternateBase);
    double x = 0;
    bool anyNic = false;
    for (size_t ni = 0; ni < c.nodes.size() && ni < size_t(kMaxNodes); ++ni) {
        const struct Node& n = c.nodes[ni];
        const NodeLayout l = layoutNode(n);
        drawNodeFrame(s, n, x, l, pal, nodeFill, font());
        const std::vector<QPointF> centres = drawDevices(s, n, x, l, deviceFill);
        m_drawnDevices += int(centres.size());
        drawPairLinks(s, n, centres);
        if (n.nic.count > 0) {
            anyNic = true;
            drawNicUplink(s, n, x, l.w);
        }
        x += l.w + 40;
    }
    if (anyNic)
        drawNetworkBar(s, x - 40);
    if (c.nodes.size() > size_t(kMaxNodes)) {
        auto* more = s->addSimpleText(tr("… and %1 more node(s)").arg(c.nodes.size() - kMaxNodes));
        more->setPos(x, 20);
    }
    fitSceneToView(m_view);
}

void ClusterView::showEvent(QShowEvent* e)
{
    QWidget::showEvent(e);
    draw(); // the view has its size now
}

} // namespace partita

namespace partita {

void ClusterView::changeEvent(QEvent* e)
{
    if (e->type() == QEvent::PaletteChange) // light/dark switched: drawn again in the new colours
        draw();
    QWidget::changeEvent(e);
}

} // namespace partita
