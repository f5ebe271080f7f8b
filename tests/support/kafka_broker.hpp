#pragma once
// An Apache Kafka broker of the test's own: one KRaft node (broker and controller in one
// JVM) on free loopback ports, its storage formatted in a fresh directory, started with the
// test and stopped after it. The jars come from tools/kafka/pom.xml, which
// scripts/lib/common.sh resolves with Maven (CHOREO_KAFKA_BROKER_LIBS names their folder).

#include "server_process.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <array>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef CHOREO_JAVA
#error "CHOREO_JAVA must name the java program"
#endif
#ifndef CHOREO_KAFKA_BROKER_LIBS
#error "CHOREO_KAFKA_BROKER_LIBS must name the folder of the Kafka broker's jars"
#endif

namespace test_support {

class kafka_broker {
public:
    // `flush_each_record`: the broker writes each record to disk before it acknowledges it,
    // so one SIGKILLed keeps what it acknowledged (a single node has no replica to keep it).
    // Kafka's default, for the benchmarks, leaves the flushing to the operating system.
    explicit kafka_broker(bool flush_each_record = true) : flush_each_record_(flush_each_record) {
        static int count = 0;
        dir_ = std::filesystem::temp_directory_path() /
               ("choreo-kafka-" + std::to_string(::getpid()) + "-" + std::to_string(++count));
        std::filesystem::remove_all(dir_);
        std::filesystem::create_directories(dir_);
        auto ports = free_ports<3>();
        port_ = ports[0];
        controller_port_ = ports[1];
        sasl_port_ = ports[2];
        write_properties();
        format();
        start();
    }
    ~kafka_broker() {
        stop();
        std::error_code ignored;
        std::filesystem::remove_all(dir_, ignored);
    }
    kafka_broker(const kafka_broker&) = delete;
    kafka_broker& operator=(const kafka_broker&) = delete;

    [[nodiscard]] unsigned short port() const noexcept { return port_; }
    [[nodiscard]] std::string bootstrap() const { return "127.0.0.1:" + std::to_string(port_); }
    [[nodiscard]] std::string url() const { return "kafka://" + bootstrap(); }
    // A second listener that wants SASL/PLAIN, with a user tools/kafka/server.properties declares.
    [[nodiscard]] std::string sasl_bootstrap() const { return "127.0.0.1:" + std::to_string(sasl_port_); }
    static constexpr const char* sasl_user = "shop";
    static constexpr const char* sasl_password = "shop-secret";

    // Starts it (again, on the same ports and storage) and waits until it accepts connections.
    void start() {
        if (pid_ > 0) return;
        pid_ =
            spawn({CHOREO_JAVA, "-Xms128m", "-Xmx512m", "-XX:+UseSerialGC", "-cp",
                   std::string{CHOREO_KAFKA_BROKER_LIBS} + "/*", "kafka.Kafka", (dir_ / "server.properties").string()},
                  dir_ / "broker.log");
        wait_until_it_answers(
            pid_, "the Kafka broker", std::chrono::seconds{90}, std::chrono::milliseconds{50},
            [this] { return accepts(); }, [this] { return log(); });
    }

    // Stops it: SIGKILL by default (as abrupt as a crash), or SIGTERM (a clean shutdown).
    void stop(int signal = SIGKILL) { stop_server(pid_, signal); }

    [[nodiscard]] std::string log() const { return tail_of((dir_ / "broker.log").string()); }

private:
    // N ports free on loopback now, all different (each held open until all are chosen).
    template <std::size_t N>
    static std::array<unsigned short, N> free_ports() {
        boost::asio::io_context io;
        std::vector<boost::asio::ip::tcp::acceptor> probes;
        std::array<unsigned short, N> ports{};
        for (auto& port : ports) {
            probes.emplace_back(io, boost::asio::ip::tcp::endpoint{boost::asio::ip::make_address("127.0.0.1"), 0});
            port = probes.back().local_endpoint().port();
        }
        return ports;
    }

    bool accepts() const {
        boost::asio::io_context io;
        boost::asio::ip::tcp::socket socket{io};
        boost::system::error_code error;
        socket.connect({boost::asio::ip::make_address("127.0.0.1"), port_}, error);
        return !error;
    }

    // The broker's settings are tools/kafka/server.properties (shared with the scripts), its
    // placeholders filled in.
    void write_properties() const {
        auto source = std::filesystem::path{__FILE__}.parent_path() / "../../tools/kafka/server.properties";
        std::ifstream in{source};
        if (!in) throw std::runtime_error("cannot read " + source.string());
        std::stringstream text;
        text << in.rdbuf();
        auto properties = text.str();
        auto fill = [&](std::string_view placeholder, const std::string& value) {
            for (auto at = properties.find(placeholder); at != std::string::npos;
                 at = properties.find(placeholder, at + value.size()))
                properties.replace(at, placeholder.size(), value);
        };
        fill("@BROKER@", bootstrap());
        fill("@CONTROLLER@", "127.0.0.1:" + std::to_string(controller_port_));
        fill("@SASL@", sasl_bootstrap());
        fill("@DATA@", (dir_ / "data").string());
        std::ofstream out{dir_ / "server.properties"};
        out << properties;
        if (flush_each_record_) out << "log.flush.interval.messages=1\n";
    }

    // `kafka-storage format` with a cluster id of its own (a Kafka Uuid: 16 random bytes,
    // base64url without padding).
    void format() const {
        std::random_device random;
        std::array<std::uint8_t, 16> bytes{};
        for (auto& b : bytes) b = static_cast<std::uint8_t>(random());
        static constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        std::string id;
        std::uint32_t bits = 0;
        int held = 0;
        for (auto b : bytes) {
            bits = (bits << 8) | b;
            held += 8;
            while (held >= 6) {
                id += alphabet[(bits >> (held - 6)) & 63];
                held -= 6;
            }
        }
        if (held > 0) id += alphabet[(bits << (6 - held)) & 63];
        if (id.front() == '-') id.front() = 'A'; // the tool would take it for an option (1 start in 64)
        auto pid = spawn({CHOREO_JAVA, "-cp", std::string{CHOREO_KAFKA_BROKER_LIBS} + "/*", "kafka.tools.StorageTool",
                          "format", "-t", id, "-c", (dir_ / "server.properties").string()},
                         dir_ / "format.log");
        int status = 0;
        ::waitpid(pid, &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            std::ifstream in{dir_ / "format.log"};
            std::stringstream text;
            text << in.rdbuf();
            throw std::runtime_error("formatting the Kafka broker's storage failed: " + text.str());
        }
    }

    // Everything is prepared before fork(): the child only redirects and executes.
    static pid_t spawn(std::vector<std::string> args, const std::filesystem::path& log) {
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd < 0) throw std::runtime_error("cannot open " + log.string());
        pid_t pid = ::fork();
        if (pid < 0) {
            ::close(fd);
            throw std::runtime_error("fork failed");
        }
        if (pid == 0) {
            ::dup2(fd, STDOUT_FILENO);
            ::dup2(fd, STDERR_FILENO);
            ::execv(argv[0], argv.data());
            ::_exit(127);
        }
        ::close(fd);
        return pid;
    }

    std::filesystem::path dir_;
    unsigned short port_ = 0, controller_port_ = 0, sasl_port_ = 0;
    pid_t pid_ = -1;
    bool flush_each_record_ = true;
};

} // namespace test_support
