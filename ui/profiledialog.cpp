#include "profiledialog.h"

#include "rundialog.h"
#include "cliprocess.h"

#include "partita/core/modelio.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDir>
#include <QDoubleSpinBox>
#include <QFile>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QJsonDocument>
#include <QJsonObject>
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
    setWindowTitle(tr("Profile a Training Command"));
    m_command = new QLineEdit;
    m_command->setPlaceholderText(tr("python3 train.py ARGS   (or python3 -m MODULE ARGS)"));
    m_command->setToolTip(tr("What one rank runs. Each rank gets torchrun's environment (RANK, LOCAL_RANK, "
                             "WORLD_SIZE, MASTER_ADDR, MASTER_PORT); Partita's trace module goes in front of the "
                             "script, which stays unedited."));
    m_folder = new QLineEdit(QFileInfo(project).absolutePath());
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

    connect(&m_process, &QProcess::readyReadStandardError, this, [this] {
        for (const QByteArray& line : m_process.readAllStandardError().split('\n'))
            if (!line.trimmed().isEmpty())
                m_log->appendPlainText(QString::fromUtf8(line));
    });
    connect(&m_process, &QProcess::readyReadStandardOutput, this, [this] { m_stdout += m_process.readAllStandardOutput(); });
    connect(&m_process, &QProcess::finished, this, &ProfileDialog::finished);
    connect(&m_process, &QProcess::errorOccurred, this, [this](QProcess::ProcessError e) {
        if (e == QProcess::FailedToStart) {
            m_failure = tr("%1 could not be started: %2").arg(m_process.program(), m_process.errorString());
            m_log->appendPlainText(m_failure);
            m_start->setEnabled(true);
            m_cancel->setEnabled(false);
            emit finishedRun(false);
        }
    });
}

ProfileDialog::~ProfileDialog()
{
    if (running()) {
        m_process.terminate();
        if (!m_process.waitForFinished(10000))
            m_process.kill();
    }
}

// The designer's model and strategy as files, dp following the ranks.
QStringList ProfileDialog::predictionArgs()
{
    if (!m_predict->isChecked() || !m_model || !m_strategy)
        return {};
    const std::optional<Strategy> s = remeshStrategy(*m_strategy, m_ranks->value(), &m_why);
    return s ? writeRunInputs(m_tmp, *m_model, *s, &m_why) : QStringList{};
}

QStringList ProfileDialog::command()
{
    m_why.clear();
    const QString cmd = m_command->text().trimmed();
    if (cmd.isEmpty()) {
        m_why = tr("Give the command one rank runs, e.g. python3 train.py.");
        return {};
    }
    if (!QFileInfo(m_folder->text()).isDir()) {
        m_why = tr("%1 is not a folder to run the command in.").arg(m_folder->text());
        return {};
    }
    const QString launcher = m_launcher->currentData().toString();
    if (launcher != "local" && m_hosts->text().trimmed().isEmpty()) {
        m_why = tr("The %1 launcher needs a hostfile.").arg(launcher);
        return {};
    }
    const QStringList predict = predictionArgs();
    if (!m_why.isEmpty())
        return {};
    QStringList args{cliPath(), "run",       "--command", cmd, "--cluster", "local", "--ranks",
                     QString::number(m_ranks->value()), "--launcher", launcher,
                     "--profile-steps",
                     QString("%1,%2,%3").arg(m_wait->value()).arg(m_warmup->value()).arg(m_active->value()),
                     "--timeout", QString::number(m_timeout->value()), "--project", m_project, "--json"};
    if (launcher != "local")
        args << "--hosts" << m_hosts->text().trimmed();
    return args + predict;
}

bool ProfileDialog::start()
{
    if (running())
        return false;
    QStringList cmd = command();
    if (cmd.isEmpty()) {
        m_failure = m_why;
        m_log->appendPlainText(m_why);
        return false;
    }
    m_stdout.clear();
    m_failure.clear();
    m_measured = m_predicted = 0;
    m_attributed = 0;
    m_ok = false;
    m_log->appendPlainText("$ cd " + m_folder->text() + " && " + cmd.join(' '));
    const QString program = cmd.takeFirst();
    m_process.setWorkingDirectory(m_folder->text());
    m_process.start(program, cmd);
    m_start->setEnabled(false);
    m_cancel->setEnabled(true);
    return true;
}

void ProfileDialog::cancel()
{
    if (!running())
        return;
    m_log->appendPlainText(tr("Cancelling: every rank is stopped; what was traced is kept."));
    m_process.terminate();
}

QString ProfileDialog::log() const { return m_log->toPlainText(); }

void ProfileDialog::finished(int code, QProcess::ExitStatus status)
{
    m_start->setEnabled(true);
    m_cancel->setEnabled(false);
    const QJsonObject j = QJsonDocument::fromJson(m_stdout).object();
    m_measured = j.value("run_id").toInteger();
    m_predicted = j.value("predicted_run_id").toInteger();
    m_attributed = j.value("attributed_fraction").toDouble();
    m_ok = status == QProcess::NormalExit && code == 0;
    if (!m_ok) {
        m_failure = runFailure(j, m_log->toPlainText(), code, status == QProcess::CrashExit, m_process.errorString());
        m_log->appendPlainText(tr("Failed: %1").arg(m_failure));
        if (m_measured > 0)
            m_log->appendPlainText(tr("What was traced is kept as run %1, marked incomplete.").arg(m_measured));
    } else {
        QString done = tr("Done: run %1, %2 s per step, %3 % of its CPU operator time attributed to layers")
                           .arg(m_measured)
                           .arg(j.value("measured_step_time_s").toDouble(), 0, 'g', 4)
                           .arg(100 * m_attributed, 0, 'f', 1);
        if (m_predicted > 0)
            done += tr("; predicted %1 s (run %2)").arg(j.value("predicted_step_time_s").toDouble(), 0, 'g', 4).arg(m_predicted);
        m_log->appendPlainText(done + ".");
    }
    emit finishedRun(m_ok);
}

} // namespace partita
