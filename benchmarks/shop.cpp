// Scenario 4: the in-process shop, create-and-pay flows per second, in transactional and
// saga mode, on SQLite in memory and on disk (WAL, synchronous=NORMAL). Each iteration
// runs 100 flows: 100 orders created, then paid, each by its own user for its own product
// (one hot product would measure the in-progress markers' waiting, not the flow).
#include "app/one_process.hpp"

#include <benchmark/benchmark.h>

#include <filesystem>
#include <string>
#include <vector>

#include "allocations.hpp"

namespace {

constexpr int flows_per_iteration = 100;

// range(0): 0 transactional, 1 saga; range(1): 0 memory, 1 disk.
void shop_create_and_pay(benchmark::State& state) {
    auto mode = state.range(0) ? shop::app::mode::saga : shop::app::mode::transactional;
    std::string dir;
    if (state.range(1)) dir = (std::filesystem::temp_directory_path() / "choreo-bench-shop").string();
    shop::app::one_process s{shop::app::config{.mode = mode, .directory = dir}};
    std::vector<std::int64_t> products;
    for (int i = 0; i < flows_per_iteration; ++i) {
        products.push_back(s.add_product("product " + std::to_string(i), 1, 1'000'000'000));
        s.charge_points(i + 1, 100'000'000);
    }
    std::vector<std::int64_t> ids(flows_per_iteration);
    long completed = 0;
    for (auto _ : state) {
        for (std::size_t i = 0; i < ids.size(); ++i)
            ids[i] = s.create_order(static_cast<std::int64_t>(i) + 1, {{products[i], 1}}, {});
        s.settle();
        for (auto id : ids) s.pay(id, false);
        s.settle();
        completed += flows_per_iteration;
    }
    state.counters["flows_per_second"] =
        benchmark::Counter(static_cast<double>(completed), benchmark::Counter::kIsRate);
    if (s.check_invariants().size() != 0) state.SkipWithError("an invariant of the shop broke");
    if (!dir.empty()) std::filesystem::remove_all(dir);
}

BENCHMARK(shop_create_and_pay)
    ->ArgNames({"saga", "disk"})
    ->Args({0, 0})
    ->Args({0, 1})
    ->Args({1, 0})
    ->Args({1, 1})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

} // namespace
