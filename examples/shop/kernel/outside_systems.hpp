#pragma once
// The simulated systems outside the shop (outside/): the card gateway and the data
// platform's API. A host holds them; a context that calls one gets it from here, made at
// its first use, with its books where `path_of(name)` says (":memory:", or a file).

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

#include "../outside/card_gateway.hpp"
#include "../outside/data_platform_api.hpp"

namespace shop::kernel {

class outside_systems {
public:
    explicit outside_systems(std::function<std::string(std::string_view name)> path_of)
        : path_of_(std::move(path_of)) {}

    outside::card_gateway& card_gateway() { return made(gateway_, "card_gateway"); }
    outside::data_platform_api& data_platform() { return made(platform_, "data_platform"); }
    // Null when nothing here called it.
    [[nodiscard]] outside::card_gateway* card_gateway_if_made() {
        std::lock_guard lock{mutex_};
        return gateway_.get();
    }
    [[nodiscard]] outside::data_platform_api* data_platform_if_made() {
        std::lock_guard lock{mutex_};
        return platform_.get();
    }

private:
    template <class T>
    T& made(std::unique_ptr<T>& slot, std::string_view name) {
        std::lock_guard lock{mutex_};
        if (!slot) slot = std::make_unique<T>(path_of_(name));
        return *slot;
    }

    std::function<std::string(std::string_view)> path_of_;
    std::mutex mutex_;
    std::unique_ptr<outside::card_gateway> gateway_;
    std::unique_ptr<outside::data_platform_api> platform_;
};

} // namespace shop::kernel
