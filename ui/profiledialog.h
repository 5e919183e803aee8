#pragma once
// Strategy ▸ Profile a Training Command…: the user's own training run once
// per rank and traced through the executor's profile session
// (partita/executor/profilesession.h, the call `partita-cli run --command`
// makes) on a thread of its own, progress live, cancellable; with the
// designer's model and strategy the prediction is stored beside the run and
// the workbench compares the pair. The command runs in the folder given.

#include "partita/core/model.h"
#include "partita/core/strategy.h"

#include "partita/executor/profilesession.h"

#include <QDialog>

#include <memory>
#include <optional>

class QCheckBox;
class QComboBox;
class QDoubleSpinBox;
class QLineEdit;
class QPlainTextEdit;
class QPushButton;
class QSpinBox;

namespace partita {

class ProfileDialog : public QDialog
{
    Q_OBJECT
public:
    // `model` and `strategy`: the designer's, for the prediction (absent: none).
    ProfileDialog(const QString& project, std::optional<Model> model, std::optional<Strategy> strategy,
                  QWidget* parent = nullptr);
    ~ProfileDialog() override;

    // Partita's trace module: $PARTITA_TRACE_MODULE, else PREFIX/share/partita/profiler/partita_trace.py.
    static QString traceModulePath();
    // The profile that Start makes; nothing, with why(), when the settings cannot run.
    std::optional<ProfileRequest> request();
    QString why() const { return m_why; }
    bool start();
    bool running() const { return m_busy; }
    void cancel();

    qint64 measuredRun() const { return m_measured; }
    qint64 predictedRun() const { return m_predicted; }
    double attributedFraction() const { return m_attributed; }
    bool succeeded() const { return m_ok; }
    QString failure() const { return m_failure; }
    QString log() const;

    QLineEdit* commandEdit() const { return m_command; }
    QLineEdit* folderEdit() const { return m_folder; }
    QSpinBox* ranksBox() const { return m_ranks; }
    QComboBox* launcherBox() const { return m_launcher; }
    QLineEdit* hostsEdit() const { return m_hosts; }
    QCheckBox* predictBox() const { return m_predict; }
    QDoubleSpinBox* timeoutBox() const { return m_timeout; }

signals:
    void finishedRun(bool ok);

private:
    void createForm();
    void finished();
    bool addPrediction(ProfileRequest& r);

    QString m_project;
    std::optional<Model> m_model;
    std::optional<Strategy> m_strategy;
    QString m_why, m_failure;
    std::unique_ptr<ProfileSession> m_session;
    bool m_busy = false;
    qint64 m_measured = 0, m_predicted = 0;
    double m_attributed = 0;
    bool m_ok = false;

    QLineEdit *m_command = nullptr, *m_folder = nullptr, *m_hosts = nullptr;
    QComboBox* m_launcher = nullptr;
    QSpinBox *m_ranks = nullptr, *m_wait = nullptr, *m_warmup = nullptr, *m_active = nullptr;
    QDoubleSpinBox* m_timeout = nullptr;
    QCheckBox* m_predict = nullptr;
    QPlainTextEdit* m_log = nullptr;
    QPushButton *m_start = nullptr, *m_cancel = nullptr;
};

} // namespace partita
