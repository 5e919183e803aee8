#pragma once
// What the workbench still runs through partita-cli in a process of its own
// (the Profile dialog: a user's training command): where the CLI is, the
// model and strategy as files it reads, and its failure in a dialog's words.

#include "partita/core/model.h"
#include "partita/core/strategy.h"

#include <QJsonObject>
#include <QString>
#include <QStringList>
#include <QTemporaryDir>

namespace partita {

// partita-cli: $PARTITA_CLI, else beside this program (or in ../bin).
QString cliPath();
// The model and strategy as JSON files in `dir` for partita-cli: --model
// FILE --strategy FILE; empty, with `why`, when they cannot be written.
QStringList writeRunInputs(const QTemporaryDir& dir, const Model& m, const Strategy& s, QString* why);
// What went wrong in a `partita-cli run … --json` that did not succeed, in a
// dialog's words: the failed rank, host and cause from its JSON, else the
// CLI's own one-line error from its log, else how the process ended.
QString runFailure(const QJsonObject& j, const QString& log, int code, bool crashed, const QString& processError);

} // namespace partita
