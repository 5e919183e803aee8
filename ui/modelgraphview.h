#pragma once
// The model as a graph: layers as nodes in a layered top-to-bottom layout
// (depth = longest path from the inputs), repeated blocks collapsed into one
// node each until double-clicked, every node coloured by its sync atom and
// badged with its tensor-parallel role, pipeline stage and recomputation.
// Selection is exported as layer names (the designer syncs it with the layer
// table); palette atoms dropped on a node or a group go to the drop handler.

#include "partita/core/model.h"
#include "partita/core/strategy.h"
#include "partita/core/strategyedit.h"

#include <QGraphicsView>

#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace partita {

class ModelGraphView : public QGraphicsView
{
    Q_OBJECT
public:
    // Applies `atom` to `layers`; false with the reason to refuse.
    using DropHandler = std::function<bool(const std::vector<std::string>& layers, AtomKind atom, QString* why)>;

    explicit ModelGraphView(QWidget* parent = nullptr);
    ~ModelGraphView() override;

    void setModel(const Model* model); // not owned; nullptr clears
    void setStrategy(const std::optional<ResolvedStrategy>& resolved);
    void setDropHandler(DropHandler h) { m_drop = std::move(h); }

    // Blocks shown as one node (all of them at first).
    void setBlockCollapsed(const std::string& block, bool collapsed);
    bool blockCollapsed(const std::string& block) const { return m_collapsed.count(block) > 0; }
    // The graph's vertices: a layer, or a collapsed block standing for its layers.
    struct Vertex
    {
        std::string block;               // non-empty: a collapsed block
        std::vector<int> layers;         // model indices
        int depth = 0, column = 0;
        QRectF rect;                     // scene coordinates
    };
    const std::vector<Vertex>& vertices() const { return m_vertices; }
    int edgeCount() const { return m_edges; }
    // The vertex holding a layer (-1: none).
    int vertexOf(int layer) const;

    // Selected layer names (a selected group counts all of its layers).
    std::vector<std::string> selectedLayers() const;
    void selectLayers(const std::set<std::string>& names);
    void fit();
    QString lastDropError() const { return m_lastDropError; }

signals:
    void selectionChangedByUser(const std::vector<std::string>& layers);

protected:
    void changeEvent(QEvent* e) override;
    void wheelEvent(QWheelEvent* e) override;
    void showEvent(QShowEvent* e) override;
    void keyPressEvent(QKeyEvent* e) override;
    void mouseDoubleClickEvent(QMouseEvent* e) override;
    void dragEnterEvent(QDragEnterEvent* e) override;
    void dragMoveEvent(QDragMoveEvent* e) override;
    void dropEvent(QDropEvent* e) override;

private:
    void rebuild();
    std::map<std::string, int> buildVertices();
    void drawEdges(const std::vector<std::set<int>>& preds);
    void drawVertex(size_t vi, const QColor& text);
    int vertexAt(const QPoint& viewPos) const;
    QColor fillOf(const Vertex& v) const;
    QString badgesOf(const Vertex& v) const;

    const Model* m_model = nullptr;
    std::optional<ResolvedStrategy> m_resolved;
    std::set<std::string> m_collapsed;
    std::vector<Vertex> m_vertices;
    std::vector<int> m_vertexOfLayer;
    int m_edges = 0;
    bool m_syncing = false;
    bool m_fitted = false; // fitted once the view has its real size
    DropHandler m_drop;
    QString m_lastDropError;
};

} // namespace partita
