#pragma once
// A unit whose checks need something outside the repository (third-party
// figures in ../shared/data, a Slurm controller) keeps those in a second
// test class. CTest runs the two as separate tests, tst_<unit> and
// tst_<unit>_<part> (the binary with --<part>), so a missing outside thing
// marks only that part as skipped and never hides the unit's own checks.
#include <QCoreApplication>
#include <QTest>

#include <cstring>
#include <vector>

namespace partita::test {

template <class Own, class Part>
int runSplitUnit(int argc, char** argv, const char* partFlag)
{
    std::vector<char*> args;
    bool part = false;
    for (int i = 0; i < argc; ++i) {
        if (i > 0 && std::strcmp(argv[i], partFlag) == 0)
            part = true;
        else
            args.push_back(argv[i]);
    }
    if (part) {
        Part t;
        return QTest::qExec(&t, int(args.size()), args.data());
    }
    Own t;
    return QTest::qExec(&t, int(args.size()), args.data());
}

} // namespace partita::test

#define PARTITA_TEST_SPLIT_APPLESS_MAIN(Own, Part, flag)                                                        \
    int main(int argc, char** argv) { return partita::test::runSplitUnit<Own, Part>(argc, argv, flag); }

#define PARTITA_TEST_SPLIT_GUILESS_MAIN(Own, Part, flag)                                                        \
    int main(int argc, char** argv)                                                                             \
    {                                                                                                           \
        QCoreApplication app(argc, argv);                                                                       \
        return partita::test::runSplitUnit<Own, Part>(argc, argv, flag);                                        \
    }
