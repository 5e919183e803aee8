#include "exportdialog.h"

#include "partita/core/fileio.h"
#include "partita/core/simulator.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDialogButtonBox>
#include <QDir>
#include <QFileDialog>
#include <QFileInfo>
#include <QFontDatabase>
#include <QFormLayout>
#include <QLabel>
#include <QMessageBox>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSettings>
#include <QVBoxLayout>

#include <filesystem>

namespace partita {

ExportDialog::ExportDialog(const Model& m, const Cluster& c, const Strategy& s, QWidget* parent)
    : QDialog(parent), m_model(m), m_clusterSpec(c), m_strategy(s)
{
    setWindowTitle(tr("Export Strategy"));
    m_format = new QComboBox;
    m_format->setObjectName("format");
    for (Framework f : allFrameworks())
        m_format->addItem(QString::fromUtf8(frameworkTitle(f).data(), int(frameworkTitle(f).size())),
                          QString::fromUtf8(frameworkName(f).data(), int(frameworkName(f).size())));
    m_closest = new QCheckBox(tr("Where the framework cannot run it, export the closest strategy it can"));
    m_file = new QComboBox;
    m_preview = new QPlainTextEdit;
    m_preview->setReadOnly(true);
    m_preview->setFont(QFontDatabase::systemFont(QFontDatabase::FixedFont));
    m_preview->setMinimumSize(720, 360);
    m_status = new QLabel;
    m_status->setWordWrap(true);
    m_status->setTextInteractionFlags(Qt::TextSelectableByMouse);
    auto* form = new QFormLayout;
    form->addRow(tr("Framework"), m_format);
    form->addRow(m_closest);
    form->addRow(tr("File"), m_file);
    auto* buttons = new QDialogButtonBox(QDialogButtonBox::Close);
    m_save = buttons->addButton(tr("Save…"), QDialogButtonBox::AcceptRole);
    connect(buttons, &QDialogButtonBox::rejected, this, &QDialog::reject);
    connect(m_save, &QPushButton::clicked, this, &ExportDialog::saveDialog);
    auto* layout = new QVBoxLayout(this);
    layout->addLayout(form);
    layout->addWidget(m_status);
    layout->addWidget(m_preview, 1);
    layout->addWidget(buttons);
    connect(m_format, &QComboBox::currentIndexChanged, this, &ExportDialog::regenerate);
    connect(m_closest, &QCheckBox::toggled, this, &ExportDialog::regenerate);
    connect(m_file, &QComboBox::currentIndexChanged, this, &ExportDialog::showFile);
    regenerate();
}

void ExportDialog::regenerate()
{
    const Framework f = *frameworkFromName(m_format->currentData().toString().toStdString());
    ExportHeader h;
    h.version = PARTITA_VERSION_STRING;
    h.strategy = m_strategy.name;
    h.cluster = m_clusterSpec.name;
    auto predict = [&](const Strategy& s) { return simulate(m_model, m_clusterSpec, s, SimOptions{}); };
    const auto asked = predict(m_strategy);
    if (asked) {
        h.step_time_s = asked->step_time;
        h.peak_memory_bytes = asked->memory.peak;
    }
    auto files = exportFramework(f, m_model, m_clusterSpec, m_strategy, 0, h, m_closest->isChecked());
    QString status;
    if (files && !files->differences.empty()) { // headed by the closest strategy's own prediction
        if (const auto near = predict(files->exported)) {
            h.step_time_s = near->step_time;
            h.peak_memory_bytes = near->memory.peak;
            files = exportFramework(f, m_model, m_clusterSpec, m_strategy, 0, h, true);
            status = tr("Not as designed: %1 runs the closest strategy it can, predicted %2 s per step (designed: %3 s).")
                         .arg(m_format->currentText())
                         .arg(near->step_time, 0, 'g', 4)
                         .arg(asked ? asked->step_time : 0.0, 0, 'g', 4);
            for (const auto& d : files ? files->differences : std::vector<std::string>{})
                status += "\n  • " + QString::fromStdString(d);
        }
    }
    m_file->blockSignals(true);
    m_file->clear();
    if (!files) {
        m_files.reset();
        m_preview->clear();
        status = tr("%1 cannot run this strategy:").arg(m_format->currentText());
        for (const QString& why : QString::fromStdString(files.error().message).split("; "))
            status += "\n  • " + why;
        status += "\n" + tr("Check \"closest\" to export the nearest strategy it can.");
    } else {
        m_files = *files;
        for (const auto& [name, text] : m_files->files)
            m_file->addItem(name.empty() ? tr("script") : QString::fromStdString(name));
        for (const auto& n : m_files->notes)
            status += (status.isEmpty() ? "" : "\n") + tr("Note: %1").arg(QString::fromStdString(n));
    }
    m_file->blockSignals(false);
    m_file->setEnabled(m_file->count() > 1);
    m_save->setEnabled(m_files.has_value());
    m_status->setText(status);
    showFile(0);
}

void ExportDialog::showFile(int index)
{
    if (!m_files || index < 0 || size_t(index) >= m_files->files.size())
        return;
    m_preview->setPlainText(QString::fromStdString(m_files->files[size_t(index)].second));
}

bool ExportDialog::saveTo(const QString& path, QString* why)
{
    auto fail = [&](const QString& w) {
        if (why)
            *why = w;
        return false;
    };
    if (!m_files)
        return fail(tr("nothing to save: the framework refuses the strategy"));
    namespace fs = std::filesystem;
    const bool folder = m_files->files.size() > 1;
    if (folder && !QDir().mkpath(path))
        return fail(tr("%1: cannot create the folder").arg(path));
    for (const auto& [name, text] : m_files->files) {
        const std::string file = folder ? (fs::path(path.toStdString()) / name).string() : path.toStdString();
        if (auto w = writeFileAtomically(file, text); !w)
            return fail(QString::fromStdString(w.error().str()));
        if (!folder || (name.size() > 3 && name.substr(name.size() - 3) == ".sh")) {
            std::error_code ec;
            fs::permissions(file, fs::perms::owner_exec | fs::perms::group_exec | fs::perms::others_exec,
                            fs::perm_options::add, ec);
        }
    }
    return true;
}

void ExportDialog::saveDialog()
{
    if (!m_files)
        return;
    const QString dir = QSettings().value("export/dir").toString();
    const QString format = m_format->currentData().toString();
    const QString name = format == "pytorch"      ? "train.py"
                         : format == "torchtitan" ? "job.toml"
                         : format == "accelerate" ? "accelerate.yaml"
                                                  : "launch.sh";
    const QString path = m_files->files.size() > 1
                             ? QFileDialog::getExistingDirectory(this, tr("Export Strategy into a Folder"), dir)
                             : QFileDialog::getSaveFileName(this, tr("Export Strategy"), QDir(dir).filePath(name));
    if (path.isEmpty())
        return;
    QString why;
    if (!saveTo(path, &why)) {
        QMessageBox::warning(this, tr("Export Strategy"), why);
        return;
    }
    QSettings().setValue("export/dir", QFileInfo(path).absolutePath());
    accept();
}

} // namespace partita
