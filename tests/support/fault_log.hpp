#pragma once
// The fault matrix's source: a test that injects a fault records what it tried and whether
// everything held, in the file named by CHOREO_FAULT_LOG (scripts/faults.sh sets it and
// writes docs/faults.md from the lines). Without the variable, nothing is written.

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace test_support {

// One line: area, fault, mode, tries, whether the invariants held, and what was checked.
inline void record_fault(std::string_view area, std::string_view fault, std::string_view mode, long tries, bool held,
                         std::string_view checked) {
    const char* path = std::getenv("CHOREO_FAULT_LOG");
    if (!path || !*path) return;
    std::string line;
    for (auto field : {area, fault, mode}) {
        line += field;
        line += '\t';
    }
    line += std::to_string(tries) + '\t' + (held ? "held" : "BROKEN") + '\t' + std::string{checked} + '\n';
    if (std::FILE* f = std::fopen(path, "a")) { // one short append per line: tests may run in parallel
        std::fputs(line.c_str(), f);
        std::fclose(f);
    }
}

} // namespace test_support
