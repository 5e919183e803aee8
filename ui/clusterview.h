#pragma once
// The Cluster tab: the project's clusters, one drawn at a time (nodes with
// their devices, the links inside a node with their bandwidths, the NICs to
// the network), and a table of its figures that can be edited and saved as a
// new version of the cluster document. Presets, files (nvidia-smi topo -m,
// hostfiles, JSON) and this machine come in through the window's imports.

#include "partita/core/cluster.h"

#include <QAbstractTableModel>
#include <QWidget>

class QComboBox;
class QGraphicsView;
class QLabel;
class QPushButton;
class QTableView;

namespace partita {

class TraceStore;

// One row per node: its devices' and links' figures, editable.
class ClusterFiguresModel : public QAbstractTableModel
{
    Q_OBJECT
public:
    enum Column
    {
        Node,
        Devices,
        Device,
        PeakTflops, // bf16 (else fp16, else fp32) dense
        MemoryGiB,
        MemoryBandwidth, // GB/s
        IntraLink,       // kind
        IntraBandwidth,  // GB/s per direction
        Nics,
        NicBandwidth, // GB/s per NIC per direction
        ColumnCount
    };
    explicit ClusterFiguresModel(QObject* parent = nullptr);
    void setCluster(const Cluster& c);
    const Cluster& cluster() const { return m_cluster; }
    bool edited() const { return m_edited; }

    int rowCount(const QModelIndex& parent = {}) const override;
    int columnCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;
    Qt::ItemFlags flags(const QModelIndex& index) const override;
    bool setData(const QModelIndex& index, const QVariant& value, int role = Qt::EditRole) override;

signals:
    void figuresEdited();

private:
    static std::string peakKey(const DeviceSpec& d);
    Cluster m_cluster;
    bool m_edited = false;
};

class ClusterView : public QWidget
{
    Q_OBJECT
public:
    explicit ClusterView(QWidget* parent = nullptr);
    // The project's cluster documents (not owned; nullptr clears); shows the newest.
    void setProject(TraceStore* store);
    bool showCluster(const Cluster& c);
    const Cluster& cluster() const { return m_figures->cluster(); }
    ClusterFiguresModel* figures() const { return m_figures; }
    // Saves the edited figures as the next version of the cluster's document.
    bool saveVersion(QString* why = nullptr);
    QGraphicsView* drawing() const { return m_view; }
    int drawnDevices() const { return m_drawnDevices; }

protected:
    void showEvent(QShowEvent* e) override;
    void changeEvent(QEvent* e) override;

signals:
    void presetRequested();
    void importRequested();
    void detectRequested();
    void clusterSaved();
    void errorOccurred(const QString& message);

private:
    void draw();
    TraceStore* m_store = nullptr;
    QComboBox* m_box = nullptr;
    QGraphicsView* m_view = nullptr;
    QTableView* m_table = nullptr;
    QLabel* m_summary = nullptr;
    QPushButton* m_save = nullptr;
    ClusterFiguresModel* m_figures = nullptr;
    int m_drawnDevices = 0;
};

} // namespace partita
