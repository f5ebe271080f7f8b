#include <choreo/choreo.hpp>
#if CHOREO_ODR_WITH_SQLITE
#include <choreo/durable.hpp>
#include <choreo/sqlite.hpp>
#endif
#if CHOREO_ODR_WITH_REDIS
#include <choreo/redis.hpp>
#endif
#if CHOREO_ODR_WITH_KAFKA
#include <choreo/kafka.hpp>
#endif
#if CHOREO_ODR_WITH_POSTGRESQL
#include <choreo/postgresql.hpp>
#endif

#include <cstdio>

struct odr_event {
    int value;
};

int publish_from_first(choreo::bus& bus);

// Both translation units use the same event type and the same inline machinery; the
// program fails if the two disagree on the type's channel or on any inline definition.
int main() {
    choreo::bus bus{{.threads = 1}};
    int seen = 0;
    auto connection = bus.subscribe<odr_event>([&](const odr_event& e) { seen += e.value; });
    int first = publish_from_first(bus);
    bus.publish(odr_event{10});
    if (first != 1 || seen != 11) {
        std::fprintf(stderr, "ODR check failed: first=%d seen=%d\n", first, seen);
        return 1;
    }
    std::puts("two translation units agree");
    return 0;
}
