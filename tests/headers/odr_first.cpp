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

struct odr_event {
    int value;
};

int publish_from_first(choreo::bus& bus) {
    int seen = 0;
    auto connection = bus.subscribe<odr_event>([&](const odr_event& e) { seen += e.value; });
    bus.publish(odr_event{1});
    return seen;
}
