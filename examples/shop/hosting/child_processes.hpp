#pragma once
// Starting `shop serve` processes as children: the six of a shop on one directory and one
// Redis, each writing to a log file there. The remote shop starts them for each scenario;
// the tests start them to kill and restart them. POSIX only; header-only so that the tests
// use it without linking the shop.

#include "streams.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

extern char** environ; // NOLINT: POSIX declares it for posix_spawn's callers to name

namespace shop::app {

inline std::string read_text_file(const std::filesystem::path& path) {
    std::ifstream in{path};
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

// A child process running `program` with `args`, its output appended to `log`. Killed
// (SIGKILL) and reaped when destroyed, unless it was waited for.
class child_process {
public:
    child_process(const std::string& program, const std::vector<std::string>& args, const std::filesystem::path& log) {
        std::vector<std::string> all{program};
        all.insert(all.end(), args.begin(), args.end());
        std::vector<char*> argv;
        for (auto& a : all) argv.push_back(a.data());
        argv.push_back(nullptr);
        posix_spawn_file_actions_t files;
        posix_spawn_file_actions_init(&files);
        posix_spawn_file_actions_addopen(&files, STDOUT_FILENO, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
        posix_spawn_file_actions_adddup2(&files, STDOUT_FILENO, STDERR_FILENO);
        int rc = posix_spawn(&pid_, program.c_str(), &files, nullptr, argv.data(), environ);
        posix_spawn_file_actions_destroy(&files);
        if (rc != 0) throw std::runtime_error("cannot start " + program + ": " + std::strerror(rc));
    }
    ~child_process() {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            (void)wait();
        }
    }
    child_process(const child_process&) = delete;
    child_process& operator=(const child_process&) = delete;

    void signal(int sig) const {
        if (pid_ > 0) ::kill(pid_, sig);
    }
    // Waits for it to end; its exit status (128 + the signal when killed).
    int wait() {
        if (pid_ <= 0) return exit_status_; // reaped already
        int status = 0;
        ::waitpid(pid_, &status, 0);
        pid_ = -1;
        exit_status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        return exit_status_;
    }
    // True once it has ended; exit_status() then tells how.
    bool exited() {
        if (pid_ <= 0) return true;
        int status = 0;
        if (::waitpid(pid_, &status, WNOHANG) != pid_) return false;
        exit_status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        pid_ = -1;
        return true;
    }
    [[nodiscard]] int exit_status() const noexcept { return exit_status_; }

private:
    pid_t pid_ = -1;
    int exit_status_ = -1;
};

// The six serving processes of `shop serve` on one directory ({directory}/db holds the
// databases, {directory}/{name}.log each one's output) and one Redis under one key prefix.
// Stopped with SIGTERM when destroyed.
class serving_processes {
public:
    static constexpr const auto& names = process_names; // streams.hpp

    // `order_arguments` go to the order process's command line too (--http ADDRESS:PORT),
    // `common_arguments` to every process's (--kafka URL).
    serving_processes(std::string program, std::string redis_url, std::filesystem::path directory, std::string prefix,
                      std::vector<std::string> order_arguments = {}, std::vector<std::string> common_arguments = {})
        : program_(std::move(program)), url_(std::move(redis_url)), dir_(std::move(directory)),
          prefix_(std::move(prefix)), order_arguments_(std::move(order_arguments)),
          common_arguments_(std::move(common_arguments)) {
        std::filesystem::remove_all(dir_);
        std::filesystem::create_directories(dir_);
        for (auto name : names) start(std::string{name});
    }
    ~serving_processes() { (void)stop(); }
    serving_processes(const serving_processes&) = delete;
    serving_processes& operator=(const serving_processes&) = delete;

    // Starts the process `name`: a context, or "data_platform.2" for a second instance of
    // the data platform beside the first (its log is data_platform.2.log); `extra` goes to
    // this start's command line only.
    void start(const std::string& name, const std::vector<std::string>& extra = {}) {
        auto [context, instance] = split(name);
        std::vector<std::string> args{"serve", "--context",          context,    "--redis", url_,
                                      "--dir", databases().string(), "--prefix", prefix_};
        if (!instance.empty()) args.insert(args.end(), {"--instance", instance});
        args.insert(args.end(), common_arguments_.begin(), common_arguments_.end());
        if (context == web_api_process) args.insert(args.end(), order_arguments_.begin(), order_arguments_.end());
        args.insert(args.end(), extra.begin(), extra.end());
        auto log = dir_ / (name + ".log");
        std::error_code absent;
        auto size = std::filesystem::file_size(log, absent);
        started_at_[name] = absent ? 0 : size;
        processes_[name] = std::make_unique<child_process>(program_, args, log);
    }
    // Whether the process started last under `name` says it serves (its SIGTERM handler is
    // in place by then: before, SIGTERM ends it as the default action does, with 143).
    [[nodiscard]] bool ready(const std::string& name) const {
        auto log = read_text_file(dir_ / (name + ".log"));
        auto from = started_at_.count(name) ? started_at_.at(name) : 0;
        return log.size() > from && log.find(split(name).first + ": serving (pid", from) != std::string::npos;
    }
    // Waits up to `limit` for the process `name` to exit by itself; its exit status, or -1.
    int wait_for_exit(const std::string& name, std::chrono::seconds limit) {
        auto& process = *processes_.at(name);
        for (auto deadline = std::chrono::steady_clock::now() + limit;
             !process.exited() && std::chrono::steady_clock::now() < deadline;)
            std::this_thread::sleep_for(std::chrono::milliseconds{20});
        return process.exited() ? process.exit_status() : -1;
    }
    // As abrupt as a crash: no destructor runs, nothing is flushed.
    void kill(const std::string& name) {
        processes_.at(name)->signal(SIGKILL);
        processes_.at(name)->wait();
    }
    // Stops the process `name` as a deployment scaling down would: SIGTERM once it serves,
    // then its exit status (0 when it stopped cleanly). Its log stays.
    int terminate(const std::string& name, std::chrono::seconds patience = std::chrono::seconds{120}) {
        auto& process = *processes_.at(name);
        for (auto deadline = std::chrono::steady_clock::now() + patience;
             !ready(name) && !process.exited() && std::chrono::steady_clock::now() < deadline;)
            std::this_thread::sleep_for(std::chrono::milliseconds{20});
        process.signal(SIGTERM);
        int status = process.wait();
        processes_.erase(name);
        return status;
    }
    // SIGTERM to each once it serves (one just restarted may still be starting), then waits
    // for all of them. Returns those that did not exit with 0 ("payment exited with 66"): a
    // crash, or a sanitizer's report at exit.
    std::vector<std::string> stop(std::chrono::seconds patience = std::chrono::seconds{120}) {
        std::vector<std::string> failed;
        auto deadline = std::chrono::steady_clock::now() + patience;
        for (auto& [name, process] : processes_)
            while (!ready(name) && !process->exited() && std::chrono::steady_clock::now() < deadline)
                std::this_thread::sleep_for(std::chrono::milliseconds{20});
        for (auto& [name, process] : processes_) process->signal(SIGTERM);
        for (auto& [name, process] : processes_)
            if (int status = process->wait(); status != 0)
                failed.push_back(name + " exited with " + std::to_string(status));
        processes_.clear();
        return failed;
    }

    // SIGTERM to every process at once, then each one's exit status once all have exited,
    // or -1 for those still running after `limit` (they are then killed).
    std::map<std::string, int> terminate_all(std::chrono::seconds limit) {
        for (auto& [name, process] : processes_) process->signal(SIGTERM);
        std::map<std::string, int> statuses;
        auto deadline = std::chrono::steady_clock::now() + limit;
        for (auto& [name, process] : processes_) {
            while (!process->exited() && std::chrono::steady_clock::now() < deadline)
                std::this_thread::sleep_for(std::chrono::milliseconds{20});
            if (process->exited()) {
                statuses[name] = process->exit_status();
            } else {
                process->signal(SIGKILL);
                (void)process->wait();
                statuses[name] = -1;
            }
        }
        processes_.clear();
        return statuses;
    }

    [[nodiscard]] const std::filesystem::path& directory() const noexcept { return dir_; }
    [[nodiscard]] std::filesystem::path databases() const { return dir_ / "db"; }
    [[nodiscard]] const std::string& redis_url() const noexcept { return url_; }
    [[nodiscard]] const std::string& prefix() const noexcept { return prefix_; }
    [[nodiscard]] const std::string& program() const noexcept { return program_; }

    // What each process wrote, its last `tail` characters each.
    [[nodiscard]] std::string logs(std::size_t tail = 4000) const {
        std::string all;
        for (auto& [name, size] : started_at_) {
            auto text = read_text_file(dir_ / (name + ".log"));
            if (text.size() > tail) text = "..." + text.substr(text.size() - tail);
            all += "--- " + name + "\n" + text;
        }
        return all;
    }

private:
    // "data_platform.2" -> {"data_platform", "2"}; "order" -> {"order", ""}.
    static std::pair<std::string, std::string> split(const std::string& name) {
        auto dot = name.find('.');
        if (dot == std::string::npos) return {name, {}};
        return {name.substr(0, dot), name.substr(dot + 1)};
    }

    std::string program_, url_;
    std::filesystem::path dir_;
    std::string prefix_;
    std::vector<std::string> order_arguments_, common_arguments_;
    std::map<std::string, std::unique_ptr<child_process>> processes_;
    std::map<std::string, std::uintmax_t> started_at_; // each log's size when its process started
};

} // namespace shop::app
