#pragma once
// Runs the designer's strategy for real: `partita-cli run --json` in its own
// process (so a rank that crashes takes nothing of the workbench with it),
// its progress lines shown live, cancellable (SIGTERM: the CLI stops every
// rank and keeps what they measured), the outcome read from its JSON: the
// measured run and its prediction, or the failed rank, host and cause.

#include "partita/core/model.h"
#include "partita/core/strategy.h"

#include <QDialog>
#include <QProcess>
#include <QTemporaryDir>

#include <optional>

class QCheckBox;
class QJsonObject;
class QComboBox;
class QDoubleSpinBox;
class QLabel;
class QLineEdit;
class QPlainTextEdit;
class QPushButton;
class QSpinBox;

namespace partita {

// What went wrong in a `partita-cli run … --json` that did not succeed, in a
// dialog's words: the failed rank, host and cause from its JSON, else the
// CLI's own one-line error from its log, else how the process ended.
QString runFailure(const QJsonObject& j, const QString& log, int code, bool crashed, const QString& processError);

// The designer's strategy on `ranks` ranks: dp = ranks / (tp × pp), as many
// micro-batches per step as it has; nothing, with `why`, when the ranks
// cannot hold it.
std::optional<Strategy> remeshStrategy(const Strategy& s, int ranks, QString* why);
// The model and strategy as JSON files in `dir` for partita-cli: --model
// FILE --strategy FILE; empty, with `why`, when they cannot be written.
QStringList writeRunInputs(const QTemporaryDir& dir, const Model& m, const Strategy& s, QString* why);

class RunDialog : public QDialog
{
    Q_OBJECT
public:
    RunDialog(const QString& project, const Model& model, const Strategy& strategy, QWidget* parent = nullptr);
    ~RunDialog() override;

    // partita-cli: $PARTITA_CLI, else beside this program (or in ../bin).
    static QString cliPath();
    // The command that Start runs (program first); empty with why() when the settings cannot run.
    QStringList command();
    QString why() const { return m_why; }
    // Starts the run; false with why() when it cannot start.
    bool start();
    bool running() const { return m_process.state() != QProcess::NotRunning; }
    void cancel();

    // After the process ended: the runs it stored (0 when none), and what went wrong.
    qint64 measuredRun() const { return m_measured; }
    qint64 predictedRun() const { return m_predicted; }
    bool succeeded() const { return m_ok; }
    QString failure() const { return m_failure; }
    QString log() const;

    QSpinBox* ranksBox() const { return m_ranks; }
    QSpinBox* stepsBox() const { return m_steps; }
    QComboBox* launcherBox() const { return m_launcher; }
    QLineEdit* hostsEdit() const { return m_hosts; }
    QDoubleSpinBox* scaleBox() const { return m_scale; }

signals:
    // The process ended: runs may have been stored (measuredRun() > 0).
    void finishedRun(bool ok);

private:
    void finished(int code, QProcess::ExitStatus status);
    void updateMesh();

    QString m_project;
    Model m_model;
    Strategy m_strategy;
    QString m_why, m_failure;
    QTemporaryDir m_tmp; // the model and strategy files the CLI reads
    QProcess m_process;
    QByteArray m_stdout;
    qint64 m_measured = 0, m_predicted = 0;
    bool m_ok = false;

    QComboBox *m_backend = nullptr, *m_launcher = nullptr;
    QSpinBox *m_ranks = nullptr, *m_steps = nullptr, *m_warmup = nullptr;
    QDoubleSpinBox *m_scale = nullptr, *m_timeout = nullptr;
    QLineEdit* m_hosts = nullptr;
    QLabel* m_meshNote = nullptr;
    QPlainTextEdit* m_log = nullptr;
    QPushButton *m_start = nullptr, *m_cancel = nullptr;
};

} // namespace partita
