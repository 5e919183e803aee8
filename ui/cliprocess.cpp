// What the workbench still runs through partita-cli (cliprocess.h).
#include "cliprocess.h"

#include "partita/core/modelio.h"

#include <QCoreApplication>
#include <QFile>
#include <QFileInfo>

#include <cstring>

namespace partita {

namespace {
QString tr(const char* text) { return QCoreApplication::translate("ProfileDialog", text); }
} // namespace

QString cliPath()
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

QString runFailure(const QJsonObject& j, const QString& log, int code, bool crashed, const QString& processError)
{
    if (j.value("cause").toString() == "cancelled")
        return tr("The run was cancelled.");
    if (j.contains("error")) {
        // The launcher's one line, and the parts a dialog names.
        const QString rank = j.value("failed_rank").toInteger() >= 0
                                 ? tr("rank %1").arg(j.value("failed_rank").toInteger())
                                 : tr("the run");
        const QString host = j.value("failed_host").toString();
        QString failure = tr("%1%2 failed: %3")
                              .arg(rank, host.isEmpty() ? QString() : tr(" on %1").arg(host),
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
    return crashed ? tr("partita-cli stopped unexpectedly (%1)").arg(processError)
                   : tr("partita-cli exited with status %1").arg(code);
}

QStringList writeRunInputs(const QTemporaryDir& dir, const Model& m, const Strategy& s, QString* why)
{
    if (!dir.isValid()) {
        *why = tr("No temporary folder for the run's inputs: %1").arg(dir.errorString());
        return {};
    }
    const QString modelPath = dir.filePath("model.json"), strategyPath = dir.filePath("strategy.json");
    for (const auto& [path, text] : {std::pair{modelPath, modelToJson(m)}, std::pair{strategyPath, strategyToJson(s)}}) {
        QFile f(path);
        if (!f.open(QIODevice::WriteOnly) || f.write(QByteArray::fromStdString(text)) != qint64(text.size())) {
            *why = tr("%1: %2").arg(path, f.errorString());
            return {};
        }
    }
    return {"--model", modelPath, "--strategy", strategyPath};
}

} // namespace partita
