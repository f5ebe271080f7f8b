#pragma once
// A `shop serve --http` on a free loopback port and a directory of its own, for the web
// API's tests; the helpers read orders as the API shows them.

#include "../support/http_client.hpp"

#include <hosting/child_processes.hpp>

#include <doctest/doctest.h>

#include <boost/json.hpp>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#ifndef SHOP_PROGRAM
#error "SHOP_PROGRAM must name the shop program"
#endif

namespace shop_http_test {

namespace http = boost::beast::http;
namespace json = boost::json;
using namespace std::chrono_literals;
using shop::app::child_process;
using shop::app::read_text_file;

struct reply {
    int status = 0;
    json::value body;
    std::string text;
    [[nodiscard]] std::string code() const {
        auto* e = body.is_object() ? body.as_object().if_contains("error") : nullptr;
        return e ? std::string{e->at("code").as_string()} : std::string{};
    }
};

// A server on a directory of its own; the port is the one it printed.
class server {
public:
    explicit server(const std::string& mode)
        : dir_(std::filesystem::temp_directory_path() /
               ("choreo-http-" + std::to_string(::getpid()) + "-" + std::to_string(++count_))) {
        std::filesystem::remove_all(dir_);
        std::filesystem::create_directories(dir_);
        start(mode);
    }
    ~server() {
        process_.reset();
        std::error_code ignored;
        std::filesystem::remove_all(dir_, ignored);
    }
    void start(const std::string& mode) {
        std::filesystem::remove(log());
        process_ = std::make_unique<child_process>(
            SHOP_PROGRAM,
            std::vector<std::string>{"serve", "--http", "127.0.0.1:0", "--dir", (dir_ / "db").string(), "--mode", mode},
            log());
        auto deadline = std::chrono::steady_clock::now() + 30s;
        for (;;) {
            auto text = read_text_file(log());
            auto at = text.find("listening on http://127.0.0.1:");
            if (at != std::string::npos && text.find(' ', at + 30) != std::string::npos) {
                port_ = static_cast<unsigned short>(std::stoi(text.substr(at + 30)));
                return;
            }
            REQUIRE_MESSAGE(std::chrono::steady_clock::now() < deadline, "the server did not start: " << text);
            REQUIRE_MESSAGE(!process_->exited(), "the server exited: " << text);
            std::this_thread::sleep_for(20ms);
        }
    }
    // SIGTERM, then its exit status.
    int terminate() {
        process_->signal(SIGTERM);
        return process_->wait();
    }
    [[nodiscard]] unsigned short port() const noexcept { return port_; }
    [[nodiscard]] std::filesystem::path log() const { return dir_ / "server.log"; }
    [[nodiscard]] const std::filesystem::path& directory() const noexcept { return dir_; }

    reply call(http::verb method, const std::string& target, const std::string& body = {}, std::int64_t user = 0,
               const std::string& idempotency_key = {}) const {
        auto r = test_support::http_call(port_, method, target, body, user, idempotency_key);
        reply out{r.status, {}, r.body};
        boost::system::error_code ec;
        out.body = json::parse(out.text, ec);
        return out;
    }
    reply get(const std::string& target, std::int64_t user = 0) const {
        return call(http::verb::get, target, {}, user);
    }
    reply post(const std::string& target, const std::string& body, std::int64_t user = 0,
               const std::string& idempotency_key = {}) const {
        return call(http::verb::post, target, body, user, idempotency_key);
    }
    std::string raw(const std::string& bytes) const { return test_support::http_raw(port_, bytes); }

private:
    static inline int count_ = 0;
    std::filesystem::path dir_;
    std::unique_ptr<child_process> process_;
    unsigned short port_ = 0;
};

inline std::int64_t id_of(const reply& r, const char* field = "id") {
    INFO(r.text);
    REQUIRE(r.body.is_object());
    return r.body.as_object().at(field).as_int64();
}

// The order once `done` says so, or as it is after 20 s (saga mode answers before its
// flows have ended).
template <class Done>
json::object order_when(const server& s, std::int64_t id, std::int64_t user, Done done) {
    auto deadline = std::chrono::steady_clock::now() + 20s;
    for (;;) {
        auto r = s.get("/api/v1/orders/" + std::to_string(id), user);
        REQUIRE(r.status == 200);
        auto o = r.body.as_object();
        if (done(o) || std::chrono::steady_clock::now() > deadline) return o;
        std::this_thread::sleep_for(20ms);
    }
}
inline json::object created_order(const server& s, std::int64_t id, std::int64_t user) {
    return order_when(s, id, user, [](const json::object& o) { return o.at("status") != "CREATE_PENDING"; });
}
// Payable as soon as it reads CREATED (it becomes CREATED with its payment), or cancelled.
inline json::object payable_order(const server& s, std::int64_t id, std::int64_t user) {
    auto o = created_order(s, id, user);
    if (o.at("status") == "CREATED") CHECK_FALSE(o.at("payment").is_null());
    return o;
}

// Saga `key` (URL-encoded: "PayStart:7%231") once it ended (completed or rolled back, not
// running nor rolling back), or
// as it is after 20 s.
inline json::object ended_saga(const server& s, const std::string& key, std::int64_t user) {
    auto deadline = std::chrono::steady_clock::now() + 20s;
    for (;;) {
        auto r = s.get("/api/v1/sagas/" + key, user);
        if (r.status == 200) {
            const auto& status = r.body.as_object().at("status");
            if (status != "running" && status != "rolling_back") return r.body.as_object();
        }
        if (std::chrono::steady_clock::now() > deadline)
            return r.body.is_object() ? r.body.as_object() : json::object{};
        std::this_thread::sleep_for(20ms);
    }
}

struct catalog {
    std::int64_t apple = 0, last_unit = 0, coupon = 0, issued = 0;
};

inline catalog seed(const server& s) {
    catalog c;
    c.apple = id_of(s.post("/api/v1/products", R"({"name": "apple", "price": 300, "stock": 10})"));
    c.last_unit = id_of(s.post("/api/v1/products", R"({"name": "last unit", "price": 1000, "stock": 1})"));
    c.coupon =
        id_of(s.post("/api/v1/coupons",
                     R"({"name": "10%", "type": "PERCENT", "amount": 10, "stock": 10, "valid_for_seconds": 86400})"));
    c.issued = id_of(s.post("/api/v1/coupons/" + std::to_string(c.coupon) + "/issue", "", 1), "issued_coupon");
    REQUIRE(s.post("/api/v1/points/charge", R"({"amount": 5000})", 1).status == 200);
    return c;
}

} // namespace shop_http_test
