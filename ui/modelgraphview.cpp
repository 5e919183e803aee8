#include "modelgraphview.h"

#include "palettemodel.h"

#include <QEvent>
#include <QGraphicsPathItem>
#include <QGraphicsRectItem>
#include <QGraphicsScene>
#include <QGraphicsSimpleTextItem>
#include <QKeyEvent>
#include <QMimeData>
#include <QPainterPath>
#include <QScrollBar>
#include <QToolTip>
#include <QWheelEvent>

#include <algorithm>
#include <map>

namespace partita {

namespace {

constexpr double kNodeW = 190, kNodeH = 38, kGapX = 24, kGapY = 26;
constexpr int kVertexKey = 0; // QGraphicsItem::data key holding the vertex index

QString shortName(const Layer& l)
{
    // Inside a block the block's prefix says nothing the group does not.
    if (!l.block.empty() && l.name.rfind(l.block, 0) == 0 && l.name.size() > l.block.size() + 1)
        return QString::fromStdString(l.name.substr(l.block.size() + 1));
    return QString::fromStdString(l.name);
}

AtomKind syncAtomOf(const LayerAssignment& a)
{
    switch (a.sync.method) {
    case SyncMethod::ParameterServer: return AtomKind::ParameterServer;
    case SyncMethod::SFB: return AtomKind::SFB;
    case SyncMethod::None: return AtomKind::NoSync;
    case SyncMethod::AllReduce: break;
    }
    return a.sync.algorithm == AllReduceAlgo::Hierarchical ? AtomKind::AllReduceHierarchical : AtomKind::AllReduce;
}

// Each vertex's predecessors: the vertices of its layers' inputs (a vertex is not its own).
std::vector<std::set<int>> vertexPredecessors(const std::vector<Layer>& layers,
                                              const std::map<std::string, int>& indexOf,
                                              const std::vector<int>& vertexOfLayer, size_t vertexCount)
{
    std::vector<std::set<int>> preds(vertexCount);
    for (size_t i = 0; i < layers.size(); ++i)
        for (const std::string& in : layers[i].inputs) {
            auto it = indexOf.find(in);
            if (it == indexOf.end())
                continue;
            const int a = vertexOfLayer[size_t(it->second)], b = vertexOfLayer[i];
            if (a != b)
                preds[size_t(b)].insert(a);
        }
    return preds;
}

// Depth = longest path from the inputs.
void assignDepths(std::vector<ModelGraphView::Vertex>& vertices, const std::vector<std::set<int>>& preds)
{
    // Vertices are in topological order except where a block's layers
    // interleave with others; relax until stable (the DAG is small).
    for (bool changed = true; changed;) {
        changed = false;
        for (size_t v = 0; v < vertices.size(); ++v)
            for (int u : preds[v])
                if (vertices[v].depth < vertices[size_t(u)].depth + 1 && vertices[size_t(u)].depth < int(vertices.size())) {
                    vertices[v].depth = vertices[size_t(u)].depth + 1;
                    changed = true;
                }
    }
}

// Places the vertices: one row per depth, each row centred under the widest.
void layOutVertices(std::vector<ModelGraphView::Vertex>& vertices)
{
    std::map<int, int> columns;
    for (ModelGraphView::Vertex& v : vertices)
        v.column = columns[v.depth]++;
    int widest = 1;
    for (const auto& [d, n] : columns)
        widest = std::max(widest, n);
    for (ModelGraphView::Vertex& v : vertices) {
        const int n = columns[v.depth];
        const double rowWidth = n * kNodeW + (n - 1) * kGapX;
        const double full = widest * kNodeW + (widest - 1) * kGapX;
        const double x = (full - rowWidth) / 2 + v.column * (kNodeW + kGapX);
        v.rect = QRectF(x, v.depth * (kNodeH + kGapY), kNodeW, kNodeH);
    }
}

} // namespace

ModelGraphView::ModelGraphView(QWidget* parent) : QGraphicsView(parent)
{
    setScene(new QGraphicsScene(this));
    setRenderHint(QPainter::Antialiasing);
    setDragMode(QGraphicsView::RubberBandDrag);
    setTransformationAnchor(QGraphicsView::AnchorUnderMouse);
    setAcceptDrops(true);
    viewport()->setAcceptDrops(true);
    setToolTip(tr("Drop an atom on a layer or a block; double-click a block to expand or collapse it; "
                  "Ctrl+wheel zooms, F fits"));
    connect(scene(), &QGraphicsScene::selectionChanged, this, [this] {
        if (!m_syncing)
            emit selectionChangedByUser(selectedLayers());
    });
}

ModelGraphView::~ModelGraphView()
{
    // The scene's items go with it and deselect themselves: nobody listens by then.
    m_syncing = true;
    scene()->disconnect(this);
}

void ModelGraphView::setModel(const Model* model)
{
    m_model = model;
    m_resolved.reset();
    m_collapsed.clear();
    if (model)
        for (const Layer& l : model->layers)
            if (!l.block.empty())
                m_collapsed.insert(l.block);
    rebuild();
    m_fitted = false;
    if (isVisible()) {
        fit();
        m_fitted = true;
    }
}

void ModelGraphView::showEvent(QShowEvent* e)
{
    QGraphicsView::showEvent(e);
    if (!m_fitted) {
        fit();
        m_fitted = true;
    }
}

void ModelGraphView::setStrategy(const std::optional<ResolvedStrategy>& resolved)
{
    m_resolved = resolved;
    const auto names = selectedLayers();
    rebuild();
    selectLayers({names.begin(), names.end()});
}

void ModelGraphView::setBlockCollapsed(const std::string& block, bool collapsed)
{
    if (collapsed)
        m_collapsed.insert(block);
    else
        m_collapsed.erase(block);
    const auto names = selectedLayers();
    rebuild();
    selectLayers({names.begin(), names.end()});
}

int ModelGraphView::vertexOf(int layer) const
{
    return layer >= 0 && size_t(layer) < m_vertexOfLayer.size() ? m_vertexOfLayer[size_t(layer)] : -1;
}

void ModelGraphView::rebuild()
{
    const bool wasSyncing = m_syncing;
    m_syncing = true;
    scene()->clear();
    m_vertices.clear();
    m_vertexOfLayer.clear();
    m_edges = 0;
    if (!m_model) {
        m_syncing = wasSyncing;
        return;
    }
    const std::map<std::string, int> indexOf = buildVertices();
    // Edges between vertices, and depth = longest path from the inputs.
    const auto preds = vertexPredecessors(m_model->layers, indexOf, m_vertexOfLayer, m_vertices.size());
    assignDepths(m_vertices, preds);
    layOutVertices(m_vertices);
    // Edges first, under the nodes.
    drawEdges(preds);
    const QColor text = palette().color(QPalette::Text);
    for (size_t vi = 0; vi < m_vertices.size(); ++vi)
        drawVertex(vi, text);
    scene()->setSceneRect(scene()->itemsBoundingRect().adjusted(-20, -20, 20, 20));
    m_syncing = wasSyncing;
}

// Fills m_vertices and m_vertexOfLayer; returns each layer's index by name.
std::map<std::string, int> ModelGraphView::buildVertices()
{
    const auto& layers = m_model->layers;
    // Vertices: a collapsed block is one, in the order its first layer comes.
    std::map<std::string, int> blockVertex;
    std::map<std::string, int> indexOf;
    m_vertexOfLayer.assign(layers.size(), -1);
    for (size_t i = 0; i < layers.size(); ++i) {
        indexOf[layers[i].name] = int(i);
        const std::string& b = layers[i].block;
        if (!b.empty() && m_collapsed.count(b)) {
            auto it = blockVertex.find(b);
            if (it == blockVertex.end()) {
                it = blockVertex.emplace(b, int(m_vertices.size())).first;
                Vertex v;
                v.block = b;
                m_vertices.push_back(v);
            }
            m_vertices[size_t(it->second)].layers.push_back(int(i));
            m_vertexOfLayer[i] = it->second;
        } else {
            Vertex v;
            v.layers = {int(i)};
            m_vertexOfLayer[i] = int(m_vertices.size());
            m_vertices.push_back(v);
        }
    }
    return indexOf;
}

// Draws an edge from each predecessor's bottom to the vertex's top, under the nodes.
void ModelGraphView::drawEdges(const std::vector<std::set<int>>& preds)
{
    const QPen edgePen(palette().color(QPalette::Mid), 1.2);
    for (size_t v = 0; v < m_vertices.size(); ++v)
        for (int u : preds[v]) {
            const QPointF a(m_vertices[size_t(u)].rect.center().x(), m_vertices[size_t(u)].rect.bottom());
            const QPointF b(m_vertices[v].rect.center().x(), m_vertices[v].rect.top());
            QPainterPath path(a);
            path.cubicTo(a + QPointF(0, kGapY * 0.6), b - QPointF(0, kGapY * 0.6), b);
            auto* e = scene()->addPath(path, edgePen);
            e->setZValue(-1);
            ++m_edges;
        }
}

// Draws vertex `vi` as a selectable box with its title, tooltip and badges.
void ModelGraphView::drawVertex(size_t vi, const QColor& text)
{
    const auto& layers = m_model->layers;
    const Vertex& v = m_vertices[vi];
    auto* box = scene()->addRect(v.rect, QPen(fillOf(v).darker(150), v.block.empty() ? 1 : 2.5), fillOf(v));
    box->setFlag(QGraphicsItem::ItemIsSelectable);
    box->setData(kVertexKey, int(vi));
    QString title, tip;
    if (!v.block.empty()) {
        title = tr("%1  ▸ %2 layers").arg(QString::fromStdString(v.block)).arg(v.layers.size());
        tip = tr("Block %1: %2 layers (double-click to expand)").arg(QString::fromStdString(v.block)).arg(v.layers.size());
    } else {
        const Layer& l = layers[size_t(v.layers.front())];
        title = shortName(l);
        tip = QString("%1 (%2)").arg(QString::fromStdString(l.name), QString::fromStdString(std::string(layerKindName(l.kind))));
        if (!l.block.empty())
            tip += tr("\nin block %1 (double-click to collapse)").arg(QString::fromStdString(l.block));
    }
    box->setToolTip(tip + "\n" + badgesOf(v));
    auto* label = new QGraphicsSimpleTextItem(title, box);
    label->setBrush(text);
    QFont f = font();
    f.setBold(!v.block.empty());
    label->setFont(f);
    const QFontMetricsF fm(f);
    label->setText(fm.elidedText(title, Qt::ElideMiddle, kNodeW - 10));
    label->setPos(v.rect.left() + 5, v.rect.top() + 2);
    auto* badges = new QGraphicsSimpleTextItem(badgesOf(v), box);
    QFont small = font();
    small.setPointSizeF(small.pointSizeF() * 0.8);
    badges->setFont(small);
    badges->setBrush(text);
    badges->setPos(v.rect.left() + 5, v.rect.top() + kNodeH / 2 + 1);
}

QColor ModelGraphView::fillOf(const Vertex& v) const
{
    // The sync atom of the vertex's weighted layers (the most common one).
    const QColor plain = palette().color(QPalette::AlternateBase);
    if (!m_resolved || !m_model)
        return plain;
    std::map<int, int> count;
    for (int i : v.layers)
        if (size_t(i) < m_resolved->layers.size() && m_model->layers[size_t(i)].parameterCount() > 0)
            ++count[int(syncAtomOf(m_resolved->layers[size_t(i)]))];
    if (count.empty())
        return plain;
    const auto top = std::max_element(count.begin(), count.end(), [](auto& a, auto& b) { return a.second < b.second; });
    QColor c = PaletteModel::colorOf(AtomKind(top->first));
    c.setAlpha(110);
    return c;
}

QString ModelGraphView::badgesOf(const Vertex& v) const
{
    if (!m_resolved || !m_model)
        return {};
    std::set<QString> sync, tp, stage, rc;
    for (int i : v.layers) {
        if (size_t(i) >= m_resolved->layers.size())
            continue;
        const LayerAssignment& a = m_resolved->layers[size_t(i)];
        if (m_model->layers[size_t(i)].parameterCount() > 0)
            sync.insert(QString::fromStdString(syncLabel(a.sync)));
        if (a.tp_role == TpRole::Column)
            tp.insert("TP col");
        else if (a.tp_role == TpRole::Row)
            tp.insert("TP row");
        stage.insert(QString("S%1").arg(a.stage));
        if (a.recompute != Recompute::None)
            rc.insert(a.recompute == Recompute::Full ? "RC full" : "RC sel");
    }
    QStringList out;
    auto join = [&](const std::set<QString>& s) {
        if (!s.empty())
            out << QStringList(s.begin(), s.end()).join('/');
    };
    join(sync);
    join(tp);
    join(stage);
    join(rc);
    return out.join(" · ");
}

std::vector<std::string> ModelGraphView::selectedLayers() const
{
    std::set<int> idx;
    for (QGraphicsItem* it : scene()->selectedItems()) {
        const QVariant d = it->data(kVertexKey);
        if (!d.isValid())
            continue;
        const int v = d.toInt();
        if (v >= 0 && size_t(v) < m_vertices.size())
            idx.insert(m_vertices[size_t(v)].layers.begin(), m_vertices[size_t(v)].layers.end());
    }
    std::vector<std::string> out;
    if (m_model)
        for (int i : idx)
            out.push_back(m_model->layers[size_t(i)].name);
    return out;
}

void ModelGraphView::selectLayers(const std::set<std::string>& names)
{
    const bool was = m_syncing;
    m_syncing = true;
    for (QGraphicsItem* it : scene()->items()) {
        const QVariant d = it->data(kVertexKey);
        if (!d.isValid())
            continue;
        const Vertex& v = m_vertices[size_t(d.toInt())];
        // A group is selected when every one of its layers is.
        bool all = !v.layers.empty();
        for (int i : v.layers)
            all = all && names.count(m_model->layers[size_t(i)].name);
        it->setSelected(all);
    }
    m_syncing = was;
}

void ModelGraphView::fit()
{
    if (scene()->items().isEmpty())
        return;
    // The whole graph when it reads at that size, else its top at a legible width.
    const QRectF r = scene()->sceneRect();
    const double sx = viewport()->width() / r.width();
    const double s = std::clamp(sx, 0.2, 1.0);
    resetTransform();
    scale(s, s);
    centerOn(r.center().x(), r.top() + viewport()->height() / (2 * s));
}

int ModelGraphView::vertexAt(const QPoint& viewPos) const
{
    for (QGraphicsItem* it = itemAt(viewPos); it; it = it->parentItem())
        if (it->data(kVertexKey).isValid())
            return it->data(kVertexKey).toInt();
    return -1;
}

void ModelGraphView::wheelEvent(QWheelEvent* e)
{
    if (e->modifiers() & Qt::ControlModifier) {
        const double f = std::pow(1.0015, e->angleDelta().y());
        scale(f, f);
        e->accept();
        return;
    }
    QGraphicsView::wheelEvent(e);
}

void ModelGraphView::keyPressEvent(QKeyEvent* e)
{
    if (e->key() == Qt::Key_F) {
        fit();
        return;
    }
    if (e->key() == Qt::Key_Plus || e->key() == Qt::Key_Equal) {
        scale(1.25, 1.25);
        return;
    }
    if (e->key() == Qt::Key_Minus) {
        scale(0.8, 0.8);
        return;
    }
    QGraphicsView::keyPressEvent(e);
}

void ModelGraphView::mouseDoubleClickEvent(QMouseEvent* e)
{
    const int v = vertexAt(e->pos());
    if (v < 0 || !m_model) {
        QGraphicsView::mouseDoubleClickEvent(e);
        return;
    }
    const Vertex& vx = m_vertices[size_t(v)];
    const std::string block = !vx.block.empty() ? vx.block : m_model->layers[size_t(vx.layers.front())].block;
    if (!block.empty())
        setBlockCollapsed(block, vx.block.empty());
}

void ModelGraphView::dragEnterEvent(QDragEnterEvent* e)
{
    if (PaletteModel::atomFromMime(e->mimeData()))
        e->acceptProposedAction();
    else
        e->ignore();
}

void ModelGraphView::dragMoveEvent(QDragMoveEvent* e)
{
    if (PaletteModel::atomFromMime(e->mimeData()) && vertexAt(e->position().toPoint()) >= 0)
        e->acceptProposedAction();
    else
        e->ignore();
}

void ModelGraphView::dropEvent(QDropEvent* e)
{
    m_lastDropError.clear();
    const auto atom = PaletteModel::atomFromMime(e->mimeData());
    const int v = vertexAt(e->position().toPoint());
    if (!atom || v < 0 || !m_model || !m_drop) {
        e->ignore();
        return;
    }
    // On a selected node: every selected layer; else the node's layers.
    std::vector<std::string> layers;
    bool onSelection = false;
    for (QGraphicsItem* it : scene()->selectedItems())
        onSelection = onSelection || it->data(kVertexKey).toInt() == v;
    if (onSelection) {
        layers = selectedLayers();
    } else {
        for (int i : m_vertices[size_t(v)].layers)
            layers.push_back(m_model->layers[size_t(i)].name);
    }
    QString why;
    if (m_drop(layers, *atom, &why)) {
        e->acceptProposedAction();
    } else {
        m_lastDropError = why;
        QToolTip::showText(mapToGlobal(e->position().toPoint()), why, this);
        e->ignore();
    }
}

} // namespace partita

namespace partita {

void ModelGraphView::changeEvent(QEvent* e)
{
    if (e->type() == QEvent::PaletteChange) // light/dark switched: built again in the new colours
        rebuild();
    QGraphicsView::changeEvent(e);
}

} // namespace partita
