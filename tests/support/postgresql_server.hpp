#pragma once
// A PostgreSQL server of the test's own: Debian's postgresql-15 binaries, initdb into a
// temporary directory and the server on a free loopback port, stopped after the test. No test
// relies on a system-wide PostgreSQL. The server refuses to run as root, so when the tests
// run as root (CI does) initdb and the server run as the `postgres` user the package creates.

#include <libpq-fe.h>

#include "server_process.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef CHOREO_POSTGRESQL_BIN
#error "CHOREO_POSTGRESQL_BIN must name the directory of initdb and postgres"
#endif

namespace test_support {

class postgresql_server {
public:
    // `settings` ("name=value") go after the tests' own (fsync and full-page writes off:
    // the tests' data need not survive the machine), so they override them.
    explicit postgresql_server(std::vector<std::string> settings = {}) : settings_(std::move(settings)) {
        std::random_device random;
        dir_ = std::filesystem::temp_directory_path() /
               ("choreo-postgresql-" + std::to_string(::getpid()) + "-" + std::to_string(random()));
        std::filesystem::remove_all(dir_);
        std::filesystem::create_directories(dir_);
        if (::geteuid() == 0) owner_ = unprivileged_user();
        if (owner_) (void)::chown(dir_.c_str(), owner_->uid, owner_->gid);
        port_ = free_port();
        initialise();
        start();
    }
    ~postgresql_server() {
        stop();
        std::error_code ignored;
        std::filesystem::remove_all(dir_, ignored);
    }
    postgresql_server(const postgresql_server&) = delete;
    postgresql_server& operator=(const postgresql_server&) = delete;

    // A libpq connection string for the server's `postgres` database, as user choreo.
    [[nodiscard]] std::string conninfo() const {
        return "host=127.0.0.1 port=" + std::to_string(port_) + " dbname=postgres user=choreo connect_timeout=5";
    }
    [[nodiscard]] unsigned short port() const noexcept { return port_; }

    // Starts it (again, on the same data and port) and waits until it accepts connections.
    void start() {
        if (pid_ > 0) return;
        std::vector<std::string> args{std::string{CHOREO_POSTGRESQL_BIN} + "/postgres",
                                      "-D",
                                      data(),
                                      "-p",
                                      std::to_string(port_),
                                      "-k",
                                      dir_.string(),
                                      "-c",
                                      "listen_addresses=127.0.0.1",
                                      "-c",
                                      "fsync=off",
                                      "-c",
                                      "full_page_writes=off",
                                      "-c",
                                      "max_connections=50"};
        for (const auto& setting : settings_) args.insert(args.end(), {"-c", setting});
        pid_ = spawn(std::move(args), (dir_ / "postgres.log").string());
        auto info = conninfo();
        wait_until_it_answers(
            pid_, "postgres", std::chrono::seconds{30}, std::chrono::milliseconds{20},
            [info] { return PQping(info.c_str()) == PQPING_OK; }, [this] { return log(); });
    }

    // Stops it as a crash would: SIGQUIT is PostgreSQL's immediate shutdown (no checkpoint,
    // every connection cut, crash recovery at the next start). SIGKILL would leave the
    // server's backends running without it, holding its shared memory.
    void stop() { stop_server(pid_, SIGQUIT); }

    [[nodiscard]] std::string log() const { return tail_of((dir_ / "postgres.log").string()); }

private:
    struct account {
        uid_t uid;
        gid_t gid;
    };

    [[nodiscard]] std::string data() const { return (dir_ / "data").string(); }

    static std::optional<account> unprivileged_user() {
        for (const char* name : {"postgres", "nobody"})
            if (const passwd* user = ::getpwnam(name)) return account{user->pw_uid, user->pw_gid};
        throw std::runtime_error("running as root, and neither a 'postgres' nor a 'nobody' user exists to run "
                                 "PostgreSQL as (it refuses root)");
    }

    static unsigned short free_port() {
        boost::asio::io_context io;
        boost::asio::ip::tcp::acceptor probe{io, {boost::asio::ip::make_address("127.0.0.1"), 0}};
        return probe.local_endpoint().port();
    }

    void initialise() {
        auto pid = spawn({std::string{CHOREO_POSTGRESQL_BIN} + "/initdb", "-D", data(), "-U", "choreo", "--auth=trust",
                          "--no-sync", "--encoding=UTF8", "--locale=C"},
                         (dir_ / "initdb.log").string());
        int status = 0;
        ::waitpid(pid, &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            throw std::runtime_error("initdb failed; its log: " + tail_of((dir_ / "initdb.log").string()));
    }

    // Runs `args` as the unprivileged account (when root), output to `log_file`.
    pid_t spawn(std::vector<std::string> args, const std::string& log_file) {
        pid_t pid = ::fork();
        if (pid < 0) throw std::runtime_error("fork failed");
        if (pid > 0) return pid;
        if (owner_ && (::setgroups(0, nullptr) != 0 || ::setgid(owner_->gid) != 0 || ::setuid(owner_->uid) != 0))
            ::_exit(126);
        int out = ::open(log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (out >= 0) {
            ::dup2(out, STDOUT_FILENO);
            ::dup2(out, STDERR_FILENO);
            ::close(out);
        }
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        ::execv(argv[0], argv.data());
        ::_exit(127);
    }

    std::vector<std::string> settings_;
    std::filesystem::path dir_;
    std::optional<account> owner_;
    unsigned short port_ = 0;
    pid_t pid_ = -1;
};

} // namespace test_support
