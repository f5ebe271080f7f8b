#pragma once
// The contexts' outboxes, one per database. In saga mode every step receives its event
// through them: a step listens on every outbox, since each writes rows only for units of
// work on its own database, so the event arrives from whichever context committed it.

#include <string>
#include <vector>

#include <choreo/durable/outbox.hpp>
#include <choreo/sqlite/outbox_store.hpp>
#include <choreo/sqlite/saga_journal.hpp>

namespace shop::kernel {

using outbox = choreo::durable::outbox<choreo::sqlite::outbox_store>;
using journal = choreo::sqlite::saga_journal<>;

class outboxes {
public:
    void add(outbox& o) { all_.push_back(&o); }
    [[nodiscard]] const std::vector<outbox*>& all() const noexcept { return all_; }

    // A durable listener for E on every outbox.
    template <class E, class Deliver>
    void subscribe(const Deliver& deliver, const choreo::durable::durable_options& options) {
        for (auto* o : all_) o->template subscribe<E>(deliver, options);
    }
    template <class E, class Deliver>
    void subscribe(const std::string& name, const Deliver& deliver) {
        subscribe<E>(deliver, {.name = name});
    }

private:
    std::vector<outbox*> all_;
};

} // namespace shop::kernel
