#pragma once
// What the tests' servers (redis-server, the Kafka broker) share: a server started as a child
// process is waited for until it answers, or reported with its log when it exits or does not
// answer in time; it is stopped with a signal and reaped.

#include <chrono>
#include <csignal>
#include <fstream>
#include <functional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>

#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

namespace test_support {

// Waits until `answers()` for the server `what` running as `pid`; throws, with `log()`, if it
// exits first (pid becomes -1) or does not answer within `limit` (it is stopped first).
inline void wait_until_it_answers(pid_t& pid, const std::string& what, std::chrono::seconds limit,
                                  std::chrono::milliseconds poll, const std::function<bool()>& answers,
                                  const std::function<std::string()>& log) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (!answers()) {
        int status = 0;
        if (::waitpid(pid, &status, WNOHANG) == pid) {
            pid = -1;
            throw std::runtime_error(what + " exited at start; its log: " + log());
        }
        if (std::chrono::steady_clock::now() > deadline) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, &status, 0);
            pid = -1;
            throw std::runtime_error(what + " did not answer within " + std::to_string(limit.count()) +
                                     " s; its log: " + log());
        }
        std::this_thread::sleep_for(poll);
    }
}

// Sends `signal` to the server running as `pid` and waits for it to be gone (pid becomes -1).
inline void stop_server(pid_t& pid, int signal = SIGKILL) {
    if (pid <= 0) return;
    ::kill(pid, signal);
    int status = 0;
    ::waitpid(pid, &status, 0);
    pid = -1;
}

// The end of a log file: its last `keep` bytes.
inline std::string tail_of(const std::string& path, std::size_t keep = 4000) {
    std::ifstream in{path};
    std::stringstream text;
    text << in.rdbuf();
    auto all = text.str();
    return all.size() > keep ? "..." + all.substr(all.size() - keep) : all;
}

} // namespace test_support
