#pragma once
// Auto-search from the workbench: objective, time budget and constraints;
// the search runs off the GUI thread (searchStrategy, as partita-cli search),
// with a progress bar and a best-so-far chart, then the top candidates in a
// table; applying one makes it the designer's strategy (one undo step).

#include "partita/core/cluster.h"
#include "partita/core/model.h"
#include "partita/core/search.h"

#include <QAbstractTableModel>
#include <QDialog>
#include <QFutureWatcher>

#include <atomic>
#include <memory>

class QChartView;
class QCheckBox;
class QComboBox;
class QFormLayout;
class QHBoxLayout;
class QLabel;
class QLineSeries;
class QProgressBar;
class QPushButton;
class QSpinBox;
class QTableView;
class QValueAxis;

namespace partita {

// The search's top candidates (and the best preset) as a table.
class CandidatesModel : public QAbstractTableModel
{
    Q_OBJECT
public:
    enum Column
    {
        Rank,
        StepTime,
        Throughput,
        Mfu,
        Memory,
        Mesh,
        What,
        ColumnCount
    };
    explicit CandidatesModel(QObject* parent = nullptr);
    void setCandidates(std::vector<Candidate> c);
    const Candidate* candidate(int row) const;
    int rowCount(const QModelIndex& parent = {}) const override;
    int columnCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

private:
    std::vector<Candidate> m_rows;
};

class SearchDialog : public QDialog
{
    Q_OBJECT
public:
    SearchDialog(const Model& model, const Cluster& cluster, const Strategy& current, QWidget* parent = nullptr);
    ~SearchDialog() override;

    void setBudget(double seconds);
    bool start();
    void cancel();
    bool searching() const { return m_watcher.isRunning() || m_running; }
    const std::optional<SearchResult>& result() const { return m_result; }
    QString error() const { return m_error; }
    CandidatesModel* candidates() const { return m_candidates; }
    QTableView* table() const { return m_table; }
    int progressPoints() const; // points on the best-so-far chart

signals:
    void applyStrategy(const Strategy& s);
    void searchFinished();

protected:
    void changeEvent(QEvent* e) override;

private:
    QFormLayout* createSettings(const Strategy& current);
    void createProgress();
    void createTable();
    QHBoxLayout* createButtons();
    void done();
    void onProgress(const SearchProgress& p);

    std::shared_ptr<const Model> m_model;
    std::shared_ptr<const Cluster> m_cluster;
    Strategy m_current;
    std::shared_ptr<std::atomic<bool>> m_cancel;
    QFutureWatcher<Result<SearchResult>> m_watcher;
    bool m_running = false;
    std::optional<SearchResult> m_result;
    QString m_error;
    double m_budget = 10;

    QComboBox *m_objective = nullptr, *m_precision = nullptr;
    QSpinBox *m_budgetBox = nullptr, *m_batch = nullptr, *m_threads = nullptr;
    QCheckBox* m_powersgd = nullptr;
    QCheckBox* m_fp16Compression = nullptr;
    QCheckBox* m_fp8 = nullptr;
    QProgressBar* m_progress = nullptr;
    QLabel* m_status = nullptr;
    QChartView* m_chart = nullptr;
    QLineSeries* m_best = nullptr;
    QValueAxis *m_axisX = nullptr, *m_axisY = nullptr;
    CandidatesModel* m_candidates = nullptr;
    QTableView* m_table = nullptr;
    QPushButton *m_start = nullptr, *m_stop = nullptr, *m_apply = nullptr;
};

} // namespace partita
