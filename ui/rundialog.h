#pragma once
// Runs the designer's strategy for real through the executor's run session
// (partita/executor/runsession.h), the same call `partita-cli run` makes: on
// a thread of its own, the ranks in processes of their own (a rank that
// crashes takes nothing of the workbench with it), its stages and the ranks'
// lines shown live, cancellable (every rank stopped, what they measured
// kept), the typed outcome read back: the measured run and its prediction,
// or the failed rank, host and cause.

#include "partita/core/model.h"
#include "partita/core/strategy.h"
#include "partita/executor/runsession.h"

#include <QDialog>

#include <functional>
#include <memory>
#include <optional>

class QComboBox;
class QDoubleSpinBox;
class QLabel;
class QLineEdit;
class QPlainTextEdit;
class QPushButton;
class QSpinBox;

namespace partita {

// The designer's strategy on `ranks` ranks: dp = ranks / (tp × pp), as many
// micro-batches per step as it has; nothing, with `why`, when the ranks
// cannot hold it.
std::optional<Strategy> remeshStrategy(const Strategy& s, int ranks, QString* why);

// What went wrong in a run that did not succeed, in a dialog's words: why
// it could not start, or the failed rank, host and cause.
QString runFailure(const Result<RunOutcome>& r);
QString launchFailure(const LaunchResult& l);

// A session's events (called on its thread) appended to `log` on the
// owner's thread: each stage as `stageText` says it, the notes and the
// ranks' lines.
RunEvents queuedLogEvents(QObject* owner, QPlainTextEdit* log, std::function<QString(RunStage)> stageText);

// A session (RunSession, ProfileSession) started with its events in `log`
// and `ended` called on the owner's thread once its outcome is there.
template <class S, class Request>
std::unique_ptr<S> startLoggedSession(QObject* owner, QPlainTextEdit* log, Request request,
                                      std::function<QString(RunStage)> stageText, std::function<void()> ended)
{
    auto session = std::make_unique<S>(std::move(request), queuedLogEvents(owner, log, std::move(stageText)),
                                       [owner, ended] { QMetaObject::invokeMethod(owner, ended, Qt::QueuedConnection); });
    session->start();
    return session;
}

// The launch the dialogs' launcher choice ("local", "ssh", "slurm") and
// hostfile make, with the worker (RunDialog::workerPath) checked; nothing,
// with `why`, when they cannot launch.
std::optional<LaunchSpec> launchOf(const QString& launcher, const QString& hostfile, QString* why);

class RunDialog : public QDialog
{
    Q_OBJECT
public:
    RunDialog(const QString& project, const Model& model, const Strategy& strategy, QWidget* parent = nullptr);
    ~RunDialog() override;

    // partita-worker: $PARTITA_WORKER, else beside this program (or in ../bin).
    static QString workerPath();
    // The run that Start makes; nothing, with why(), when the settings cannot run.
    std::optional<RunRequest> request();
    QString why() const { return m_why; }
    // Starts the run; false with why() when it cannot start.
    bool start();
    bool running() const { return m_active; }
    void cancel();

    // After the run ended: the runs it stored (0 when none), and what went wrong.
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
    // The run ended: runs may have been stored (measuredRun() > 0).
    void finishedRun(bool ok);

private:
    void createForm();
    void finished();
    void updateMesh();

    QString m_project;
    Model m_model;
    Strategy m_strategy;
    QString m_why, m_failure;
    std::unique_ptr<RunSession> m_session;
    bool m_active = false;
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
