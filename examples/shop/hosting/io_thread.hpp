#pragma once
// The Redis connections' I/O thread of a shop process: runs from construction to
// destruction. Declare it before the connections, so it outlives them.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <thread>

namespace shop::app {

class io_thread {
public:
    io_thread() : thread_{[this] { io_.run(); }} {}
    ~io_thread() {
        io_.stop();
        thread_.join();
    }
    io_thread(const io_thread&) = delete;
    io_thread& operator=(const io_thread&) = delete;

    [[nodiscard]] boost::asio::any_io_executor executor() { return io_.get_executor(); }

private:
    boost::asio::io_context io_;
    boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_ = boost::asio::make_work_guard(io_);
    std::thread thread_;
};

} // namespace shop::app
