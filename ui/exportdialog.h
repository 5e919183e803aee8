#pragma once
// File ▸ Export Strategy…: the designer's strategy as a training framework's
// files (frameworks.h, as partita-cli export), previewed before saving. What
// the framework cannot run is listed with each reason; "closest" writes the
// nearest strategy it can, with every difference and both predictions.

#include "partita/core/cluster.h"
#include "partita/core/frameworks.h"
#include "partita/core/model.h"
#include "partita/core/strategy.h"

#include <QDialog>

#include <optional>

class QCheckBox;
class QComboBox;
class QLabel;
class QPlainTextEdit;
class QPushButton;

namespace partita {

class ExportDialog : public QDialog
{
    Q_OBJECT
public:
    ExportDialog(const Model& m, const Cluster& c, const Strategy& s, QWidget* parent = nullptr);

    QComboBox* formatBox() const { return m_format; }
    QCheckBox* closestBox() const { return m_closest; }
    QComboBox* fileBox() const { return m_file; }
    QPlainTextEdit* preview() const { return m_preview; }
    QLabel* statusLabel() const { return m_status; }
    QPushButton* saveButton() const { return m_save; }
    // What would be saved (nullopt while the framework refuses the strategy).
    const std::optional<FrameworkFiles>& files() const { return m_files; }
    // Writes a single-file format to `path`, or every file into the folder
    // `path` (created when missing). False with the reason.
    bool saveTo(const QString& path, QString* why = nullptr);

private:
    void regenerate();
    void showFile(int index);
    void saveDialog();

    const Model& m_model;
    const Cluster& m_clusterSpec;
    Strategy m_strategy;
    std::optional<FrameworkFiles> m_files;
    QComboBox* m_format = nullptr;
    QCheckBox* m_closest = nullptr;
    QComboBox* m_file = nullptr;
    QPlainTextEdit* m_preview = nullptr;
    QLabel* m_status = nullptr;
    QPushButton* m_save = nullptr;
};

} // namespace partita
