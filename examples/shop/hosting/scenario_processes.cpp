#include "scenario_processes.hpp"
#include "child_processes.hpp"

#include <fmt/format.h>

#include <sstream>

namespace shop::app {

scenario_processes::scenario_processes(scenario_processes_options o)
    : six_processes(six_processes_options{.redis_url = o.redis_url,
                                          .prefix = o.prefix,
                                          .databases = o.directory / "db",
                                          .settle_timeout = o.settle_timeout}),
      options_(std::move(o)) {
    std::vector<std::string> every_process;
    // A scenario's few events need one partition per topic; each scenario has topics of its
    // own, and a single test broker serves them all.
    if (!options_.kafka_url.empty()) every_process = {"--kafka", options_.kafka_url, "--kafka-partitions", "1"};
    processes_ = std::make_unique<serving_processes>(options_.program, options_.redis_url, options_.directory,
                                                     options_.prefix, std::vector<std::string>{}, every_process);
    try {
        wait_for_processes(std::chrono::seconds{90}); // a busy machine, and Kafka groups forming

    } catch (const std::exception& e) {
        keep_files();
        throw std::runtime_error(fmt::format("{}\n{}", e.what(), logs()));
    }
}

std::vector<std::string> scenario_processes::stop() { return processes_->stop(); }

scenario_processes::~scenario_processes() {
    (void)processes_->stop();
    try {
        remove_keys();
    } catch (const std::exception&) {
        // Redis is gone: nothing of this shop's is left to remove there.
    }
    processes_.reset();
    if (!keep_) {
        std::error_code ignored;
        std::filesystem::remove_all(options_.directory, ignored);
    }
}

std::string scenario_processes::keep_files() {
    keep_ = true;
    return options_.directory.string();
}

std::string scenario_processes::logs() const { return processes_->logs(); }

std::vector<std::string> scenario_processes::incidents() {
    std::vector<std::string> lines;
    for (auto name : serving_processes::names) {
        std::istringstream log{read_text_file(options_.directory / (std::string{name} + ".log"))};
        for (std::string line; std::getline(log, line);)
            if (line.find(": serving (pid") == std::string::npos && line.find(": stopping") == std::string::npos)
                lines.push_back(line);
    }
    return lines;
}

} // namespace shop::app
