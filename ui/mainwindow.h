#pragma once
// The workbench window. The designer, timeline and compare views arrive with
// issue 7; today the window only opens and closes.

#include <QMainWindow>

namespace partita {

class MainWindow : public QMainWindow
{
    Q_OBJECT
public:
    explicit MainWindow(QWidget* parent = nullptr);
};

} // namespace partita
