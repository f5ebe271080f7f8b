#pragma once
// Reading the five contexts' databases back and checking the shop's invariants over what
// they hold. The one-process shop audits its own databases; `shop load` audits the
// databases of five processes, opened read-only beside them, with the saga store in Redis.

#include <boost/json.hpp>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <choreo/saga/status.hpp>
#include <choreo/sqlite/database.hpp>

namespace shop::app {

// What each context holds, as JSON (each context's read model: "products", "coupons",
// "points", "payments", "orders"), from the database `database_of(context)` names.
[[nodiscard]] boost::json::object
read_contexts(const std::function<choreo::sqlite::database&(std::string_view context)>& database_of);

// What the audit needs from outside the contexts.
struct audit_sources {
    std::map<std::int64_t, std::int64_t> initial_stock;             // product -> stock it was added with
    std::function<std::int64_t(std::int64_t order_id)> net_charged; // the card gateway's books
    // Saga mode: a saga's record by key, and the saga holding a marker, if any.
    std::function<std::optional<choreo::saga::saga_record>(const std::string& key)> saga;
    std::function<std::optional<std::string>(const std::string& marker)> holder;
};

// Every broken invariant, in words; empty when all hold. `contexts` is read_contexts()'s.
[[nodiscard]] std::vector<std::string> check_invariants(const boost::json::object& contexts,
                                                        const audit_sources& sources);

// The databases `shop serve` keeps in its --dir (the five contexts', the card gateway's books
// and the data platform's), opened beside the running processes to read them.
class serving_databases {
public:
    // Throws std::runtime_error naming the first database missing there.
    explicit serving_databases(const std::filesystem::path& directory);
    ~serving_databases();
    serving_databases(const serving_databases&) = delete;
    serving_databases& operator=(const serving_databases&) = delete;

    [[nodiscard]] boost::json::object contexts(); // read_contexts() of the five
    [[nodiscard]] std::int64_t net_charged(std::int64_t order_id);
    [[nodiscard]] boost::json::object card_gateway();          // {"charges": n, "refunds": n}
    [[nodiscard]] std::vector<std::int64_t> received_orders(); // by the data platform, in order

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

} // namespace shop::app
