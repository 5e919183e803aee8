// Light and dark: the workbench follows the system's palette, or the user's
// choice of a light or dark one (View > Theme, remembered in QSettings).
// Views that paint with their own colours (charts, the model graph, the
// cluster drawing) take them from the palette and restyle on a change.
#pragma once

#include <QPalette>
#include <QString>

QT_BEGIN_NAMESPACE
class QChart;
QT_END_NAMESPACE

namespace partita {

enum class Theme
{
    System,
    Light,
    Dark
};

QString themeName(Theme t);             // "system", "light", "dark"
bool themeFromName(const QString& name, Theme& t); // false for anything else
// Applies to the whole application; the first call remembers the system's
// style and palette so that System can restore them.
void applyTheme(Theme t);
Theme currentTheme();
// A palette is dark when its window colour is.
bool isDark(const QPalette& p);
// Chart background, title, legend and axes in the palette's colours (the
// series keep theirs).
void styleChart(QChart* chart, const QPalette& p);

} // namespace partita
