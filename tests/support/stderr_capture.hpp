#pragma once
// Captures what this process writes to stderr (file descriptor 2) while it lives: for
// tests of what the library prints when it has nowhere else to report.

#include <cstdio>
#include <stdexcept>
#include <string>

#include <unistd.h>

namespace test_support {

class stderr_capture {
public:
    stderr_capture() : file_(std::tmpfile()), saved_(::dup(STDERR_FILENO)) {
        if (!file_ || saved_ < 0) throw std::runtime_error("cannot capture stderr");
        std::fflush(stderr);
        ::dup2(::fileno(file_), STDERR_FILENO);
    }
    ~stderr_capture() {
        restore();
        std::fclose(file_);
    }
    stderr_capture(const stderr_capture&) = delete;
    stderr_capture& operator=(const stderr_capture&) = delete;

    // Everything written so far; stderr goes back to where it was.
    std::string text() {
        restore();
        std::string all;
        std::rewind(file_);
        char buffer[4096];
        for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, file_)) > 0;) all.append(buffer, n);
        return all;
    }

private:
    void restore() {
        if (saved_ < 0) return;
        std::fflush(stderr);
        ::dup2(saved_, STDERR_FILENO);
        ::close(saved_);
        saved_ = -1;
    }

    std::FILE* file_;
    int saved_;
};

} // namespace test_support
