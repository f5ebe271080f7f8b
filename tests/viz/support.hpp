#pragma once
// The events and the database the viz tests draw.

namespace viz_test {

struct order_placed {
    int order_id;
    long amount;
};
struct stock_reserved {
    int order_id;
    long amount;
};

struct database {
    void begin() {}
    void commit() {}
    void rollback() {}
};

} // namespace viz_test
