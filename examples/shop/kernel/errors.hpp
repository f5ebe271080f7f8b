#pragma once
// The shop's refusals: a broken business rule, with a code for programs and a message for
// people, and an outside system (the card gateway) that did not answer. The web API maps
// each to a status (docs/http.md).

#include <stdexcept>
#include <string>
#include <utility>

namespace shop::kernel {

// What kind of refusal a domain_error is; the HTTP API maps each to a status.
enum class refusal {
    invalid_input, // the request itself is wrong (a negative quantity, an empty order)
    not_found,     // it names something that does not exist
    conflict,      // the state does not allow it now (out of stock, a coupon already used)
    forbidden,     // it belongs to another user
    rule_violated, // a business rule says no (too few points, an expired coupon)
};

// A broken business rule (out of stock, coupon expired...): the message is for people, the
// code (snake_case, stable) for programs.
class domain_error : public std::runtime_error {
public:
    domain_error(refusal kind, std::string code, const std::string& message)
        : std::runtime_error(message), kind_(kind), code_(std::move(code)) {}
    explicit domain_error(const std::string& message)
        : domain_error(refusal::rule_violated, "rule_violated", message) {}

    [[nodiscard]] refusal kind() const noexcept { return kind_; }
    [[nodiscard]] const std::string& code() const noexcept { return code_; }

private:
    refusal kind_;
    std::string code_;
};

// An outside system the shop relies on did not answer in time: the request may succeed later.
class outside_unavailable : public std::runtime_error {
public:
    outside_unavailable(std::string code, const std::string& message)
        : std::runtime_error(message), code_(std::move(code)) {}
    [[nodiscard]] const std::string& code() const noexcept { return code_; }

private:
    std::string code_;
};

} // namespace shop::kernel
