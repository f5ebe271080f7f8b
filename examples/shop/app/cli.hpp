#pragma once
// The shop program's command line: its usage text, the arguments parsed, and the helpers
// that read them. main.cpp dispatches the commands; hosting/commands.cpp and
// hosting/crash_scenario.cpp hold those that run processes.

#include "scenarios.hpp"
#include "storefront.hpp"

#include <cstdint>
#include <initializer_list>
#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace shop::app {

// The usage text, and the part of it for one command (all of it when none matches).
extern const char* const usage;
[[nodiscard]] std::string usage_of(const std::string& command);

// Bad arguments: the program says why, prints the usage and exits 2.
class usage_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct arguments {
    std::string command;
    std::string name;
    std::vector<std::string> rest;
    std::map<std::string, std::string> options;
    bool json = false, timeline = false, card = false, help = false, verbose = false;
};

[[nodiscard]] arguments parse(int argc, char** argv);
// --mode: the one given, else both or transactional.
[[nodiscard]] std::vector<mode> modes_of(const arguments& a, bool both_by_default);
// --KEY, one of `allowed`, else `fallback`.
[[nodiscard]] std::string option(const arguments& a, const std::string& key, const std::string& fallback,
                                 std::initializer_list<const char*> allowed);
// --KEY, which must be given.
[[nodiscard]] std::string required(const arguments& a, const std::string& key);
// --KEY, a positive whole number, else `fallback`.
[[nodiscard]] std::uint64_t count_option(const arguments& a, const std::string& key, std::uint64_t fallback);
// --http ADDRESS:PORT
[[nodiscard]] std::pair<std::string, unsigned short> http_endpoint(const arguments& a);

// One scenario's outcome as one line of JSON.
void print_json(const scenario_outcome& o);

// The commands that run processes (hosting/): the web API, a context's process, the load,
// the scenarios on six processes, the crash after a commit and its child.
int serve_http_command(const arguments& a);
int serve_command(const arguments& a);
int load_command(const arguments& a);
int remote_scenarios(const arguments& a);
int crash_after_commit(mode m);
int crash_child(const arguments& a);

} // namespace shop::app
