#pragma once
// partita-cli as the end-to-end tests start it (PARTITA_CLI: its path).
#include <QProcess>
#include <QString>
#include <QStringList>

namespace {
struct Run
{
    int code = -1;
    QString out, err;
};
inline Run cli(const QStringList& args)
{
    QProcess p;
    p.start(QStringLiteral(PARTITA_CLI), args);
    if (!p.waitForFinished(120000))
        qFatal("partita-cli did not finish");
    return {p.exitCode(), QString::fromUtf8(p.readAllStandardOutput()), QString::fromUtf8(p.readAllStandardError())};
}
inline QString data(const char* rel) { return QStringLiteral(PARTITA_TEST_DATA "/") + rel; }
} // namespace
