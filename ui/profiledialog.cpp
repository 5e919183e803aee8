#include "profiledialog.h"

#include "rundialog.h"

#include "partita/core/modelio.h"

#include <QCheckBox>
#include <QCoreApplication>
#include <QComboBox>
#include <QDir>
#include <QDoubleSpinBox>
#include <QFile>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSpinBox>
#include <QVBoxLayout>

namespace partita {

namespace {

QHBoxLayout* withBrowse(QWidget* parent, QLineEdit* edit, bool folder)
{
    auto* browse = new QPushButton(QObject::tr("…"));
    QObject::connect(browse, &QPushButton::clicked, parent, [parent, edit, folder] {
        const QString f = folder ? QFileDialog::getExistingDirectory(parent, QObject::tr("Folder the command runs in"))
                                 : QFileDialog::getOpenFileName(parent, QObject::tr("Hostfile"));
        if (!f.isEmpty())
            edit->setText(f);
    });
    auto* row = new QHBoxLayout;
    row->addWidget(edit, 1);
    row->addWidget(browse);
    return row;
}

QSpinBox* spin(int lo, int hi, int value)
{
    auto* b = new QSpinBox;
    b->setRange(lo, hi);
    b->setValue(value);
    return b;
}

} // namespace

ProfileDialog::ProfileDialog(const QString& project, std::optional<Model> model, std::optional<Strategy> strategy,
                             QWidget* parent)
    : QDialog(parent), m_project(project), m_model(std::move(model)), m_strategy(std::move(strategy))
{
    createForm();
}

ProfileDialog::~ProfileDialog()
{
    if (m_session)
        m_session->cancel(); // every rank stopped; what was traced is stored before the wait ends
    m_session.reset();
}

QString ProfileDialog::traceModulePath()
{
    const QString env = qEnvironmentVariable("PARTITA_TRACE_MODULE");
    if (!env.isEmpty())
        return env;
    return QDir(QCoreApplication::applicationDirPath() + "/../share/partita/profiler").absoluteFilePath("partita_trace.py");
}

void ProfileDialog::createForm()
{
    setWindowTitle(tr("Profile a Training Command"));
    m_command = new QLineEdit;
    m_command->setPlaceholderText(tr("python3 train.py ARGS   (or python3 -m MODULE ARGS)"));
    m_command->setToolTip(tr("What one rank runs. Each rank gets torchrun's environment (RANK, LOCAL_RANK, "
                             "WORLD_SIZE, MASTER_ADDR, MASTER_PORT); Partita's trace module goes in front of the "
                             "script, which stays unedited."));
    m_folder = new QLineEdit(QFileInfo(m_project).absolutePath());
    m_launcher = new QComboBox;
    m_launcher->addItem(tr("This machine (mpirun)"), "local");
    m_launcher->addItem(tr("Hosts over ssh (mpirun)"), "ssh");
    m_launcher->addItem(tr("Slurm (srun)"), "slurm");
    m_hosts = new QLineEdit;
    m_hosts->setPlaceholderText(tr("hostfile: host [slots=N] per line (ssh, Slurm)"));
    m_ranks = spin(1, 4096, m_strategy ? std::max(1, m_strategy->tp * m_strategy->pp * std::min(m_strategy->dp, 2)) : 2);
    m_wait = spin(0, 100000, 1);
    m_warmup = spin(0, 100000, 1);
    m_active = spin(1, 100000, 3);
    auto* schedule = new QHBoxLayout;
    for (auto [label, box] : {std::pair{tr("wait"), m_wait}, {tr("warm up"), m_warmup}, {tr("record"), m_active}}) {
        schedule->addWidget(new QLabel(label));
        schedule->addWidget(box);
    }
    schedule->addStretch(1);
    m_timeout = new QDoubleSpinBox;
    m_timeout->setRange(1, 1e6);
    m_timeout->setValue(600);
    m_timeout->setSuffix(" s");
    m_predict = new QCheckBox(tr("Store the prediction of the designer's strategy beside it, and compare"));
    m_predict->setEnabled(m_model && m_strategy);
    m_predict->setChecked(m_model && m_strategy);
    if (!m_predict->isEnabled())
        m_predict->setToolTip(tr("The project has no model and strategy to predict with."));
    auto* form = new QFormLayout;
    form->addRow(tr("Command"), m_command);
    form->addRow(tr("Run in"), withBrowse(this, m_folder, true));
    form->addRow(tr("Launcher"), m_launcher);
    form->addRow(tr("Hosts"), withBrowse(this, m_hosts, false));
    form->addRow(tr("Ranks"), m_ranks);
    form->addRow(tr("Optimizer steps"), schedule);
    form->addRow(tr("Timeout"), m_timeout);
    form->addRow(m_predict);
    m_log = new QPlainTextEdit;
    m_log->setReadOnly(true);
    m_log->setMaximumBlockCount(5000);
    m_log->setPlaceholderText(tr("The ranks' output appears here."));
    m_start = new QPushButton(tr("Start"));
    m_start->setDefault(true);
    m_cancel = new QPushButton(tr("Cancel Run"));
    m_cancel->setEnabled(false);
    auto* close = new QPushButton(tr("Close"));
    connect(m_start, &QPushButton::clicked, this, [this] { start(); });
    connect(m_cancel, &QPushButton::clicked, this, &ProfileDialog::cancel);
    connect(close, &QPushButton::clicked, this, &QDialog::reject);
    auto* buttons = new QHBoxLayout;
    buttons->addStretch(1);
    buttons->addWidget(m_start);
    buttons->addWidget(m_cancel);
    buttons->addWidget(close);
    auto* top = new QVBoxLayout(this);
    top->addLayout(form);
    top->addWidget(m_log, 1);
    top->addLayout(buttons);
    resize(680, 560);
}

// The designer's model and strategy as the prediction, dp following the ranks.
bool ProfileDialog::addPrediction(ProfileRequest& r)
{
    r.predict.source = "workbench: Profile a Training Command";
    r.predict.cluster = "local";
    r.predict.launch.backend = "cpu";
    if (!m_predict->isChecked() || !m_model || !m_strategy)
        return true; // a configuration the command names may still be predicted
    const std::optional<Strategy> s = remeshStrategy(*m_strategy, m_ranks->value(), &m_why);
    if (!s)
        return false;
    r.model = *m_model;
    r.predict.model_label = m_model->name.empty() ? "designer" : m_model->name;
    r.predict.strategy = *s;
    r.config_in_command = false; // the designer's strategy is the one predicted
    return true;
}

std::optional<ProfileRequest> ProfileDialog::request()
{
    m_why.clear();
    ProfileRequest r;
    r.command = m_command->text().trimmed().toStdString();
    if (r.command.empty()) {
        m_why = tr("Give the command one rank runs, e.g. python3 train.py.");
        return std::nullopt;
    }
    if (!QFileInfo(m_folder->text()).isDir()) {
        m_why = tr("%1 is not a folder to run the command in.").arg(m_folder->text());
        return std::nullopt;
    }
    const QString launcher = m_launcher->currentData().toString();
    auto launch = launchOf(launcher, m_hosts->text().trimmed(), &m_why);
    if (!launch)
        return std::nullopt;
    r.launch = std::move(*launch);
    r.launch.ranks = r.ranks = m_ranks->value();
    r.launch.timeout_s = m_timeout->value();
    r.launch.working_dir = QFileInfo(m_folder->text()).absoluteFilePath().toStdString();
    r.trace_module = traceModulePath().toStdString();
    if (!QFileInfo(traceModulePath()).isReadable()) {
        m_why = tr("Partita's trace module %1 is not there: set PARTITA_TRACE_MODULE to partita_trace.py's path.")
                    .arg(traceModulePath());
        return std::nullopt;
    }
    r.schedule = ProfileSchedule{m_wait->value(), m_warmup->value(), m_active->value()};
    r.project = QFileInfo(m_project).absoluteFilePath().toStdString();
    r.source = "workbench: Profile a Training Command (" + launcher.toStdString() + ")";
    if (!addPrediction(r))
        return std::nullopt;
    return r;
}

bool ProfileDialog::start()
{
    if (running())
        return false;
    std::optional<ProfileRequest> r = request();
    if (!r) {
        m_failure = m_why;
        m_log->appendPlainText(m_why);
        return false;
    }
    m_failure.clear();
    m_measured = m_predicted = 0;
    m_attributed = 0;
    m_ok = false;
    m_log->appendPlainText("$ cd " + m_folder->text() + " && " + m_command->text().trimmed());
    auto stageText = [](RunStage s) {
        switch (s) {
        case RunStage::Predicting: return tr("Predicting, when there is a model and a strategy to predict with…");
        case RunStage::Launching: return tr("Starting the ranks…");
        case RunStage::Comparing: return tr("The ranks ended; attributing their time to layers…");
        }
        return QString();
    };
    m_session = startLoggedSession<ProfileSession>(this, m_log, std::move(*r), stageText, [this] { finished(); });
    m_busy = true;
    m_start->setEnabled(false);
    m_cancel->setEnabled(true);
    return true;
}

void ProfileDialog::cancel()
{
    if (!running())
        return;
    m_log->appendPlainText(tr("Cancelling: every rank is stopped; what was traced is kept."));
    m_session->cancel();
}

QString ProfileDialog::log() const { return m_log->toPlainText(); }

void ProfileDialog::finished()
{
    m_session->wait();
    const Result<ProfileOutcome> r = m_session->result();
    m_busy = false;
    m_start->setEnabled(true);
    m_cancel->setEnabled(false);
    m_measured = r ? r->run.run_id : 0;
    m_predicted = r ? r->predicted_run_id : 0;
    m_attributed = r && r->attribution ? r->attribution->attributed_fraction : 0;
    m_ok = r && r->complete();
    if (!m_ok) {
        m_failure = r ? launchFailure(r->run.launch) : QString::fromStdString(r.error().str());
        m_log->appendPlainText(tr("Failed: %1").arg(m_failure));
        if (m_measured > 0)
            m_log->appendPlainText(tr("What was traced is kept as run %1, marked incomplete.").arg(m_measured));
    } else {
        QString done = tr("Done: run %1, %2 s per step, %3 % of its CPU operator time attributed to layers")
                           .arg(m_measured)
                           .arg(r->measured_step_s, 0, 'g', 4)
                           .arg(100 * m_attributed, 0, 'f', 1);
        if (m_predicted > 0)
            done += tr("; predicted %1 s (run %2)").arg(r->prediction->predicted.step_time, 0, 'g', 4).arg(m_predicted);
        m_log->appendPlainText(done + ".");
    }
    for (const std::string& w : r ? r->run.warnings : std::vector<std::string>{})
        m_log->appendPlainText(tr("Warning: %1").arg(QString::fromStdString(w)));
    emit finishedRun(m_ok);
}

} // namespace partita
