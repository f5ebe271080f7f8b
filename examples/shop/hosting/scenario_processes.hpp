#pragma once
// The shop as six processes behind the scenarios' interface: it starts the six `shop serve`
// processes on a directory and a key prefix of its own and drives them as a six_processes.
// A scenario run on it is the same code as on the one-process shop (always in saga mode).

#include "six_processes.hpp"

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace shop::app {

class serving_processes;

struct scenario_processes_options {
    std::string program; // the shop program, run as `program serve ...`
    std::string redis_url;
    std::string kafka_url;           // with one, the events between the processes go over Kafka
    std::string prefix;              // before every Redis key; removed when the shop is
    std::filesystem::path directory; // the processes' databases and logs; removed unless kept
    std::chrono::seconds settle_timeout{60};
};

class scenario_processes final : public six_processes {
public:
    // Starts the six processes and waits until each answers.
    explicit scenario_processes(scenario_processes_options o);
    // Stops the processes, deletes the keys under the prefix, and the directory unless kept.
    ~scenario_processes() override;

    // What the processes reported on their error output (incidents, dead letters).
    [[nodiscard]] std::vector<std::string> incidents();

    // Stops the processes (SIGTERM); returns those that did not exit cleanly.
    std::vector<std::string> stop();
    // Keeps the directory (databases and logs) when the shop is destroyed, and says where.
    std::string keep_files();
    // Every process's output, the end of each, for a failure's report.
    [[nodiscard]] std::string logs() const;

private:
    scenario_processes_options options_;
    std::unique_ptr<serving_processes> processes_;
    bool keep_ = false;
};

} // namespace shop::app
