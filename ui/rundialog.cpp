#include "rundialog.h"

#include "partita/core/clusterio.h"
#include "partita/core/fileio.h"
#include "partita/executor/localmachine.h"

#include <QComboBox>
#include <QCoreApplication>
#include <QDoubleSpinBox>
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

QString launchFailure(const LaunchResult& l)
{
    if (l.cancelled || l.cause == "cancelled")
        return RunDialog::tr("The run was cancelled.");
    // The launcher's one line, and the parts a dialog names.
    const QString rank = l.failed_rank >= 0 ? RunDialog::tr("rank %1").arg(l.failed_rank) : RunDialog::tr("the run");
    const QString host = QString::fromStdString(l.failed_host), cause = QString::fromStdString(l.cause),
                  message = QString::fromStdString(l.message);
    QString failure = RunDialog::tr("%1%2 failed: %3")
                          .arg(rank, host.isEmpty() ? QString() : RunDialog::tr(" on %1").arg(host),
                               cause.isEmpty() ? message : cause);
    if (!message.isEmpty() && message != cause)
        failure += "\n" + message;
    return failure;
}

QString runFailure(const Result<RunOutcome>& r)
{
    return r ? launchFailure(r->measured.launch) : QString::fromStdString(r.error().str());
}

RunEvents queuedLogEvents(QObject* owner, QPlainTextEdit* log, std::function<QString(RunStage)> stageText)
{
    auto show = [owner, log](QString text) {
        QMetaObject::invokeMethod(owner, [log, text] { log->appendPlainText(text); }, Qt::QueuedConnection);
    };
    RunEvents ev;
    ev.on_stage = [show, stageText](RunStage s) { show(stageText(s)); };
    ev.on_note = [show](const std::string& n) { show(QString::fromStdString(n)); };
    ev.on_line = [show](std::string_view line, bool) { show(QString::fromUtf8(line.data(), qsizetype(line.size()))); };
    return ev;
}

QString RunDialog::workerPath()
{
    const QString env = qEnvironmentVariable("PARTITA_WORKER");
    if (!env.isEmpty())
        return env;
    const QString dir = QCoreApplication::applicationDirPath();
    for (const QString& p : {dir + "/partita-worker", dir + "/../bin/partita-worker"})
        if (QFileInfo(p).isExecutable())
            return QFileInfo(p).canonicalFilePath();
    return dir + "/partita-worker";
}

std::optional<LaunchSpec> launchOf(const QString& launcher, const QString& hostfile, QString* why)
{
    LaunchSpec spec;
    spec.kind = launcher == "ssh" ? LauncherKind::Ssh : launcher == "slurm" ? LauncherKind::Slurm : LauncherKind::Local;
    if (spec.kind != LauncherKind::Local) {
        if (hostfile.isEmpty()) {
            *why = RunDialog::tr("The %1 launcher needs a hostfile.").arg(launcher);
            return std::nullopt;
        }
        auto text = readTextFile(hostfile.toStdString());
        auto hosts = text ? parseHostfile(*text, hostfile.toStdString()) : Result<std::vector<HostEntry>>(text.error());
        if (!hosts) {
            *why = QString::fromStdString(hosts.error().str());
            return std::nullopt;
        }
        spec.hosts = *hosts;
    }
    const QString worker = RunDialog::workerPath();
    if (!QFileInfo(worker).isExecutable()) {
        *why = RunDialog::tr("The worker %1 cannot be run: set PARTITA_WORKER to partita-worker's path.").arg(worker);
        return std::nullopt;
    }
    spec.worker = worker.toStdString();
    return spec;
}

RunDialog::RunDialog(const QString& project, const Model& model, const Strategy& strategy, QWidget* parent)
    : QDialog(parent), m_project(project), m_model(model), m_strategy(strategy)
{
    createForm();
    connect(m_ranks, &QSpinBox::valueChanged, this, &RunDialog::updateMesh);
    updateMesh();
}

RunDialog::~RunDialog()
{
    if (m_session)
        m_session->cancel(); // every rank stopped; what they measured is stored before the wait ends
    m_session.reset();
}

void RunDialog::createForm()
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

std::optional<RunRequest> RunDialog::request()
{
    m_why.clear();
    const int n = m_ranks->value();
    const std::optional<Strategy> s = remeshStrategy(m_strategy, n, &m_why);
    if (!s)
        return std::nullopt;
    auto launch = launchOf(m_launcher->currentData().toString(), m_hosts->text().trimmed(), &m_why);
    if (!launch)
        return std::nullopt;
    RunRequest r;
    r.launch = std::move(*launch);
    r.launch.backend = m_backend->currentData().toString().toStdString();
    r.launch.steps = m_steps->value();
    r.launch.warmup = m_warmup->value();
    r.launch.shape_scale = m_scale->value();
    r.launch.timeout_s = m_timeout->value();
    r.project = m_project.toStdString();
    r.model = m_model;
    r.model_label = m_model.name.empty() ? "designer" : m_model.name;
    r.cluster = "local";
    r.strategy = *s;
    r.strategy_label = "designer";
    r.ranks = n;
    r.source = "workbench: Run Strategy";
    return r;
}

bool RunDialog::start()
{
    if (running())
        return false;
    std::optional<RunRequest> r = request();
    if (!r) {
        m_failure = m_why;
        m_log->appendPlainText(m_why);
        return false;
    }
    m_failure.clear();
    m_measured = m_predicted = 0;
    m_ok = false;
    auto stageText = [](RunStage s) {
        switch (s) {
        case RunStage::Predicting: return tr("Predicting (this machine is measured first when the project has no figures for it)…");
        case RunStage::Launching: return tr("Prediction stored; starting the ranks…");
        case RunStage::Comparing: return tr("The ranks ended; comparing with the prediction…");
        }
        return QString();
    };
    m_session = startLoggedSession<RunSession>(this, m_log, std::move(*r), stageText, [this] { finished(); });
    m_active = true;
    m_start->setEnabled(false);
    m_cancel->setEnabled(true);
    return true;
}

void RunDialog::cancel()
{
    if (!running())
        return;
    m_log->appendPlainText(tr("Cancelling: every rank is stopped; what they measured is kept."));
    m_session->cancel();
}

QString RunDialog::log() const { return m_log->toPlainText(); }

void RunDialog::finished()
{
    m_session->wait();
    const Result<RunOutcome> r = m_session->result();
    m_active = false;
    m_start->setEnabled(true);
    m_cancel->setEnabled(false);
    m_measured = r ? r->measured.run_id : 0;
    m_predicted = r ? r->predicted_run_id : 0;
    m_ok = r && r->complete();
    if (!m_ok) {
        m_failure = runFailure(r);
        m_log->appendPlainText(tr("Failed: %1").arg(m_failure));
        if (m_measured > 0)
            m_log->appendPlainText(tr("What the ranks measured is kept as run %1, marked incomplete.").arg(m_measured));
    } else {
        m_log->appendPlainText(tr("Done: measured run %1 beside its prediction, run %2 (measured %3 s, predicted %4 s per step).")
                                   .arg(m_measured)
                                   .arg(m_predicted)
                                   .arg(r->comparison.measured_step_s, 0, 'g', 4)
                                   .arg(r->comparison.predicted_step_s, 0, 'g', 4));
        if (!r->not_as_planned.empty())
            m_log->appendPlainText(tr("Not run as planned (the comparison is not like for like there):"));
        for (const std::string& n : r->not_as_planned)
            m_log->appendPlainText("  - " + QString::fromStdString(n));
    }
    for (const std::string& w : r ? r->measured.warnings : std::vector<std::string>{})
        m_log->appendPlainText(tr("Warning: %1").arg(QString::fromStdString(w)));
    emit finishedRun(m_ok);
}

} // namespace partita
