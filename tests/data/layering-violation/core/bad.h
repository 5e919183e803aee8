#pragma once
// Fixture: a core header that wrongly includes Qt; the layering check must reject it.
#include <QString>
