// The Redis rollback-state store: the same contract as memory_store (store_contract.hpp),
// the order saga under concurrency (concurrent_orders.hpp), and what is Redis's own: key
// prefixes, TTLs, a restarted Redis that lost its scripts, an ACL user limited to a prefix.

#include <choreo/redis/saga_store.hpp>

#include "../saga/concurrent_orders.hpp"
#include "../saga/store_contract.hpp"
#include "../support/redis_server.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>

using choreo::redis::connection;
using choreo::redis::saga_store;
using namespace std::chrono_literals;

namespace {

// One redis-server and one connection for the whole binary; each store gets its own prefix.
struct shared_redis {
    test_support::redis_server server;
    test_support::io_thread io;
    connection redis{io.executor(), server.url()};
    std::atomic<int> stores{0};

    static shared_redis& get() {
        static shared_redis instance;
        return instance;
    }
    std::string fresh_prefix() { return "test" + std::to_string(++stores) + ":"; }
};

} // namespace

namespace store_contract {
template <>
struct store_under_test<saga_store> {
    std::unique_ptr<saga_store> value;
    static store_under_test make() {
        auto& shared = shared_redis::get();
        return {std::make_unique<saga_store>(shared.redis,
                                             choreo::redis::saga_store_options{.prefix = shared.fresh_prefix()})};
    }
    saga_store& store() { return *value; }
};
} // namespace store_contract

TEST_CASE_TEMPLATE_INVOKE(store_contract_id, saga_store);

TEST_CASE("the order saga under concurrency, with its state in Redis") {
    auto& shared = shared_redis::get();
    saga_store store{shared.redis, {.prefix = shared.fresh_prefix()}};
    saga_test::concurrent_orders(store, 2, 20);
}

TEST_CASE("every key is under the prefix, and every update renews the record's TTL") {
    auto& shared = shared_redis::get();
    auto& redis = shared.redis;
    auto prefix = shared.fresh_prefix();
    saga_store store{redis, {.prefix = prefix, .record_ttl = 60s}};
    const auto t0 = choreo::saga::time_point{std::chrono::hours{1000}};
    REQUIRE(store.create("order:1", t0, t0 + 30s, "o/start", choreo::saga::step_state::done));
    REQUIRE(store.acquire("product:9", "order:1", t0, t0 + 5s, t0).acquired);
    auto keys = redis.command({"KEYS", prefix + "*"});
    std::vector<std::string> names;
    for (auto& k : keys.elements) names.push_back(k.as_string());
    std::sort(names.begin(), names.end());
    CHECK(names ==
          std::vector<std::string>{prefix + "deadlines", prefix + "marker:product:9", prefix + "saga:order:1"});

    auto ttl = redis.command({"PTTL", prefix + "saga:order:1"}).as_integer();
    CHECK(ttl > 60'000);  // the TTL covers the saga's 30 s deadline
    CHECK(ttl <= 90'000); // plus record_ttl after it
    redis.command({"PEXPIRE", prefix + "saga:order:1", "1000"});
    REQUIRE(store.claim("order:1", "p/reserve") == choreo::saga::claim_outcome::claimed);
    CHECK(redis.command({"PTTL", prefix + "saga:order:1"}).as_integer() > 60'000); // renewed

    // A saga key is only a suffix: nothing in it can reach outside the prefix.
    REQUIRE(store.create("../../other", t0, t0 + 1s, "o/start", choreo::saga::step_state::done));
    CHECK(redis.command({"EXISTS", prefix + "saga:../../other"}).as_integer() == 1);
    CHECK_THROWS_AS((void)store.claim("order:1", "bad\nstep"), choreo::usage_error);
}

TEST_CASE("an operation sent again after its reply was lost gets its first answer, not the barrier's") {
    // What the store does when a connection drops with a call in flight: it repeats the
    // call under the same operation id, and the script answers from the hash.
    auto& shared = shared_redis::get();
    auto& redis = shared.redis;
    auto prefix = shared.fresh_prefix();
    saga_store store{redis, {.prefix = prefix}};
    const auto t0 = choreo::saga::time_point{std::chrono::hours{1000}};
    REQUIRE(store.create("s", t0, t0 + 30s, "a/start", choreo::saga::step_state::done));
    auto sha = redis.command({"SCRIPT", "LOAD", choreo::redis::detail::saga_script}).as_string();
    auto key = prefix + "saga:s";
    auto call = [&](std::vector<std::string_view> args) {
        std::vector<std::string_view> command{"EVALSHA", sha, "1", key};
        command.insert(command.end(), args.begin(), args.end());
        return redis.command(command);
    };
    CHECK(call({"claim", "b/step", "op-1"}).as_string() == "claimed");
    CHECK(call({"claim", "b/step", "op-1"}).as_string() == "claimed");   // the same call, repeated
    CHECK(call({"claim", "b/step", "op-2"}).as_string() == "duplicate"); // another delivery
    CHECK(call({"finish", "b/step", "1", "op-3"}).elements.size() == 4);
    auto completed = call({"complete", "op-4"});
    auto repeated = call({"complete", "op-4"});
    auto another = call({"complete", "op-5"});
    REQUIRE(completed.elements.size() == 4);
    REQUIRE(repeated.elements.size() == 4);
    REQUIRE(another.elements.size() == 4);
    CHECK(completed.elements[1].as_integer() == 1); // changed
    CHECK(repeated.elements[1].as_integer() == 1);  // the same answer: the caller announces the end once it has it
    CHECK(another.elements[1].as_integer() == 0);
    CHECK(store.status("s") == choreo::saga::saga_status::completed);
}

TEST_CASE("a Redis that lost its scripts (a restart, SCRIPT FLUSH) is given them again") {
    auto& shared = shared_redis::get();
    saga_store store{shared.redis, {.prefix = shared.fresh_prefix()}};
    const auto t0 = choreo::saga::time_point{std::chrono::hours{1000}};
    REQUIRE(store.create("s", t0, t0 + 1s, "a/start", choreo::saga::step_state::done));
    shared.redis.command({"SCRIPT", "FLUSH"});
    CHECK(store.claim("s", "b/step") == choreo::saga::claim_outcome::claimed);
    shared.redis.command({"SCRIPT", "FLUSH"});
    CHECK(store.acquire("m", "s", t0, t0 + 1s, t0).acquired);
}

TEST_CASE("an ACL user allowed only the application's prefix can run sagas, and nothing else") {
    test_support::redis_server server;
    test_support::io_thread io;
    {
        connection admin{io.executor(), server.url()};
        admin.command({"ACL", "SETUSER", "shop", "on", ">pw", "~shop:*", "+@all", "-@dangerous", "+script|load"});
        connection limited{io.executor(), "redis://shop:pw@127.0.0.1:" + std::to_string(server.port())};
        saga_store store{limited, {.prefix = "shop:"}};
        const auto t0 = choreo::saga::time_point{std::chrono::hours{1000}};
        REQUIRE(store.create("order:1", t0, t0 + 1s, "o/start", choreo::saga::step_state::done));
        CHECK(store.claim("order:1", "p/reserve") == choreo::saga::claim_outcome::claimed);
        CHECK(store.overdue(t0 + 2s) == std::vector<std::string>{"order:1"});
        saga_store outside{limited, {.prefix = "other:"}};
        try {
            (void)outside.create("order:1", t0, t0 + 1s, "o/start", choreo::saga::step_state::done);
            FAIL("a key outside the user's prefix was written");
        } catch (const choreo::redis::redis_error& e) {
            CHECK(e.code() == choreo::redis::errc::server_reply);
            CHECK(std::string{e.what()}.find("NOPERM") != std::string::npos);
        }
    }
}
