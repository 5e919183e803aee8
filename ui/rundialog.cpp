#include "rundialog.h"

#include "partita/core/modelio.h"
#include "partita/executor/localmachine.h"

#include <QComboBox>
#include <QCoreApplication>
#include <QDialogButtonBox>
#include <QDir>
#include <QDoubleSpinBox>
#include <QFile>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QLabel>
#include <QLineEdit>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSpinBox>
#include <QThread>
#include <QVBoxLayout>

namespace partita {

QString runFailure(const QJsonObject& j, const QString& log, int code, bool crashed, const QString& processError)
{
    if (j.value("cause").toString() == "cancelled")
        return RunDialog::tr("The run was cancelled.");
    if (j.contains("error")) {
        // The launcher's one line, and the parts a dialog names.
        const QString rank = j.value("failed_rank").toInteger() >= 0
                                 ? RunDialog::tr("rank %1").arg(j.value("failed_rank").toInteger())
                                 : RunDialog::tr("the run");
        const QString host = j.value("failed_host").toString();
        QString failure = RunDialog::tr("%1%2 failed: %3")
                              .arg(rank, host.isEmpty() ? QString() : RunDialog::tr(" on %1").arg(host),
                                   j.value("cause").toString().isEmpty() ? j.value("error").toString()
                                                                         : j.value("cause").toString());
        if (!j.value("error").toString().isEmpty() && j.value("error").toString() != j.value("cause").toString())
            failure += "\n" + j.value("error").toString();
        return failure;
    }
    // The CLI's own one-line error is the last line it wrote to stderr.
    const QStringList lines = log.split('\n', Qt::SkipEmptyParts);
    for (auto it = lines.crbegin(); it != lines.crend(); ++it)
        if (it->startsWith("partita-cli: error:"))
            return it->mid(int(strlen("partita-cli: error: ")));
    return crashed ? RunDialog::tr("partita-cli stopped unexpectedly (%1)").arg(processError)
                   : RunDialog::tr("partita-cli exited with status %1").arg(code);
}

std::optional<Strategy> remeshStrategy(const Strategy& strategy, int n, QString* why)
{
    Strategy s = strategy;
    if (n % (s.tp * s.pp) != 0) {
        *why = RunDialog::tr("%1 ranks cannot hold tensor parallel %2 × pipeline %3.").arg(n).arg(s.tp).arg(s.pp);
        return std::nullopt;
    }
    // The same step shape (micro-batches per step) on dp = ranks / (tp × pp).
    const int64_t microBatches =
        std::max<int64_t>(1, s.global_batch / std::max<int64_t>(1, int64_t(s.dp) * s.micro_batch));
    s.dp = n / (s.tp * s.pp);
    s.global_batch = int64_t(s.dp) * s.micro_batch * microBatches;
    if (s.ep > 1 && s.dp % s.ep != 0) {
        *why = RunDialog::tr("Expert parallel %1 does not divide data parallel %2.").arg(s.ep).arg(s.dp);
        return std::nullopt;
    }
    return s;
}

QStringList writeRunInputs(const QTemporaryDir& dir, const Model& m, const Strategy& s, QString* why)
{
    if (!dir.isValid()) {
        *why = RunDialog::tr("No temporary folder for the run's inputs: %1").arg(dir.errorString());
        return {};
    }
    const QString modelPath = dir.filePath("model.json"), strategyPath = dir.filePath("strategy.json");
    for (const auto& [path, text] : {std::pair{modelPath, modelToJson(m)}, std::pair{strategyPath, strategyToJson(s)}}) {
        QFile f(path);
        if (!f.open(QIODevice::WriteOnly) || f.write(QByteArray::fromStdString(text)) != qint64(text.size())) {
            *why = RunDialog::tr("%1: %2").arg(path, f.errorString());
            return {};
        }
    }
    return {"--model", modelPath, "--strategy", strategyPath};
}

QString RunDialog::cliPath()
{
    const QString env = qEnvironmentVariable("PARTITA_CLI");
    if (!env.isEmpty())
        return env;
    const QString dir = QCoreApplication::applicationDirPath();
    for (const QString& p : {dir + "/partita-cli", dir + "/../bin/partita-cli"})
        if (QFileInfo(p).isExecutable())
            return QFileInfo(p).canonicalFilePath();
    return dir + "/partita-cli";
}

RunDialog::RunDialog(const QString& project, const Model& model, const Strategy& strategy, QWidget* parent)
    : QDialog(parent), m_project(project), m_model(model), m_strategy(strategy)
{
    setWindowTitle(tr("Run Strategy"));
    m_backend = new QComboBox;
    m_backend->addItem(tr("CPU (OpenBLAS + Open MPI)"), "cpu");
    if (cudaBackendAvailable())
        m_backend->addItem(tr("CUDA (cuBLAS + NCCL, traced with CUPTI)"), "cuda");
    m_launcher = new QComboBox;
    m_launcher->addItem(tr("This machine (mpirun)"), "local");
    m_launcher->addItem(tr("Hosts over ssh (mpirun)"), "ssh");
    m_launcher->addItem(tr("Slurm (srun)"), "slurm");
    m_hosts = new QLineEdit;
    m_hosts->setPlaceholderText(tr("hostfile: host [slots=N] per line (ssh, Slurm)"));
    auto* browse = new QPushButton(tr("…"));
    connect(browse, &QPushButton::clicked, this, [this] {
        const QString f = QFileDialog::getOpenFileName(this, tr("Hostfile"));
        if (!f.isEmpty())
            m_hosts->setText(f);
    });
    auto* hostsRow = new QHBoxLayout;
    hostsRow->addWidget(m_hosts, 1);
    hostsRow->addWidget(browse);
    m_ranks = new QSpinBox;
    m_ranks->setRange(1, 4096);
    m_ranks->setValue(std::max(1, m_strategy.tp * m_strategy.pp * std::min(m_strategy.dp, 2)));
    m_ranks->setToolTip(tr("Processes; the strategy's data-parallel degree follows (dp = ranks / (tp × pp))"));
    m_steps = new QSpinBox;
    m_steps->setRange(1, 100000);
    m_steps->setValue(3);
    m_warmup = new QSpinBox;
    m_warmup->setRange(0, 100000);
    m_warmup->setValue(1);
    m_scale = new QDoubleSpinBox;
    m_scale->setRange(0.001, 1);
    m_scale->setDecimals(3);
    m_scale->setSingleStep(0.125);
    m_scale->setValue(1);
    m_scale->setToolTip(tr("Scale GEMM sizes, memory traffic and messages (recorded with the run): a large "
                           "model's shapes on a small machine"));
    m_timeout = new QDoubleSpinBox;
    m_timeout->setRange(1, 1e6);
    m_timeout->setValue(600);
    m_timeout->setSuffix(" s");
    m_meshNote = new QLabel;
    m_meshNote->setWordWrap(true);
    auto* form = new QFormLayout;
    form->addRow(tr("Backend"), m_backend);
    form->addRow(tr("Launcher"), m_launcher);
    form->addRow(tr("Hosts"), hostsRow);
    form->addRow(tr("Ranks"), m_ranks);
    form->addRow(m_meshNote);
    form->addRow(tr("Measured steps"), m_steps);
    form->addRow(tr("Warm-up steps"), m_warmup);
    form->addRow(tr("Shape scale"), m_scale);
    form->addRow(tr("Timeout"), m_timeout);
    m_log = new QPlainTextEdit;
    m_log->setReadOnly(true);
    m_log->setMaximumBlockCount(5000);
    m_log->setPlaceholderText(tr("The ranks' progress appears here."));
    m_start = new QPushButton(tr("Start"));
    m_start->setDefault(true);
    m_cancel = new QPushButton(tr("Cancel Run"));
    m_cancel->setEnabled(false);
    auto* close = new QPushButton(tr("Close"));
    connect(m_start, &QPushButton::clicked, this, [this] { start(); });
    connect(m_cancel, &QPushButton::clicked, this, &RunDialog::cancel);
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
    resize(640, 560);
    connect(m_ranks, &QSpinBox::valueChanged, this, &RunDialog::updateMesh);
    updateMesh();

    connect(&m_process, &QProcess::readyReadStandardError, this, [this] {
        for (const QByteArray& line : m_process.readAllStandardError().split('\n'))
            if (!line.trimmed().isEmpty())
                m_log->appendPlainText(QString::fromUtf8(line));
    });
    connect(&m_process, &QProcess::readyReadStandardOutput, this, [this] { m_stdout += m_process.readAllStandardOutput(); });
    connect(&m_process, &QProcess::finished, this, &RunDialog::finished);
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

RunDialog::~RunDialog()
{
    if (running()) {
        m_process.terminate();
        if (!m_process.waitForFinished(10000))
            m_process.kill();
    }
}

void RunDialog::updateMesh()
{
    const int n = m_ranks->value(), tp = m_strategy.tp, pp = m_strategy.pp;
    if (n % (tp * pp) != 0)
        m_meshNote->setText(tr("<span style='color:#c62828'>%1 ranks cannot hold tensor parallel %2 × pipeline %3</span>")
                                .arg(n)
                                .arg(tp)
                                .arg(pp));
    else
        m_meshNote->setText(tr("dp %1 × tp %2 × pp %3; the designer's per-layer choices are kept")
                                .arg(n / (tp * pp))
                                .arg(tp)
                                .arg(pp));
}

QStringList RunDialog::command()
{
    m_why.clear();
    const int n = m_ranks->value();
    const std::optional<Strategy> s = remeshStrategy(m_strategy, n, &m_why);
    if (!s)
        return {};
    const QString launcher = m_launcher->currentData().toString();
    if (launcher != "local" && m_hosts->text().trimmed().isEmpty()) {
        m_why = tr("The %1 launcher needs a hostfile.").arg(launcher);
        return {};
    }
    const QStringList inputs = writeRunInputs(m_tmp, m_model, *s, &m_why);
    if (inputs.isEmpty())
        return {};
    const QString name = QString::fromStdString(m_strategy.name.empty() ? "designer" : m_strategy.name);
    QStringList cmd{cliPath(),     "run",          inputs[0],  inputs[1],
                    "--cluster",   "local",        inputs[2],  inputs[3],
                    "--ranks",     QString::number(n),
                    "--backend",   m_backend->currentData().toString(),
                    "--launcher",  launcher,
                    "--steps",     QString::number(m_steps->value()),
                    "--warmup",    QString::number(m_warmup->value()),
                    "--shape-scale", QString::number(m_scale->value()),
                    "--timeout",   QString::number(m_timeout->value()),
                    "--project",   m_project,
                    "--name",      name,
                    "--json"};
    if (launcher != "local")
        cmd << "--hosts" << m_hosts->text().trimmed();
    return cmd;
}

bool RunDialog::start()
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
    m_ok = false;
    m_log->appendPlainText("$ " + cmd.join(' '));
    const QString program = cmd.takeFirst();
    m_process.start(program, cmd);
    m_start->setEnabled(false);
    m_cancel->setEnabled(true);
    return true;
}

void RunDialog::cancel()
{
    if (!running())
        return;
    m_log->appendPlainText(tr("Cancelling: every rank is stopped; what they measured is kept."));
    m_process.terminate(); // SIGTERM: the CLI cancels the launch and stores the partial run
}

QString RunDialog::log() const { return m_log->toPlainText(); }

void RunDialog::finished(int code, QProcess::ExitStatus status)
{
    m_start->setEnabled(true);
    m_cancel->setEnabled(false);
    const QJsonObject j = QJsonDocument::fromJson(m_stdout).object();
    m_measured = j.value("run_id").toInteger();
    m_predicted = j.value("predicted_run_id").toInteger();
    m_ok = status == QProcess::NormalExit && code == 0;
    if (!m_ok) {
        m_failure = runFailure(j, m_log->toPlainText(), code, status == QProcess::CrashExit, m_process.errorString());
        m_log->appendPlainText(tr("Failed: %1").arg(m_failure));
        if (m_measured > 0)
            m_log->appendPlainText(tr("What the ranks measured is kept as run %1, marked incomplete.").arg(m_measured));
    } else {
        m_log->appendPlainText(tr("Done: measured run %1 beside its prediction, run %2 (measured %3 s, predicted %4 s per step).")
                                   .arg(m_measured)
                                   .arg(m_predicted)
                                   .arg(j.value("measured_step_time_s").toDouble(), 0, 'g', 4)
                                   .arg(j.value("predicted_step_time_s").toDouble(), 0, 'g', 4));
        const QJsonArray notPlanned = j.value("not_as_planned").toArray();
        if (!notPlanned.isEmpty())
            m_log->appendPlainText(tr("Not run as planned (the comparison is not like for like there):"));
        for (const QJsonValue& v : notPlanned)
            m_log->appendPlainText("  - " + v.toString());
    }
    emit finishedRun(m_ok);
}

} // namespace partita
