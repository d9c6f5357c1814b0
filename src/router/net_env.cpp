// The router core's ports on Asio: its clock, timers and posting on the io_context, and its
// upstream requests on the replicas' pools (router_impl.hpp).
#include <chrono>
#include <cmath>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "router/router_impl.hpp"

namespace eta::router {

namespace asio = boost::asio;
using SteadyClock = std::chrono::steady_clock;

namespace {

class AsioTimer final : public Timer {
 public:
  AsioTimer(asio::io_context& io, SteadyClock::time_point start) : timer_(io), start_(start) {}
  void arm(double at_s, std::function<void()> fn) override {
    const uint64_t generation = ++generation_;  // a pending wait from before is void
    timer_.expires_at(start_ + std::chrono::duration_cast<SteadyClock::duration>(
                                   std::chrono::duration<double>(at_s)));
    timer_.async_wait([this, generation, fn = std::move(fn)](const boost::system::error_code& ec) {
      if (!ec && generation == generation_) fn();
    });
  }
  void cancel() override {
    ++generation_;
    timer_.cancel();
  }

 private:
  asio::steady_timer timer_;
  SteadyClock::time_point start_;
  uint64_t generation_ = 0;
};

class PoolCall final : public UpstreamCall {
 public:
  explicit PoolCall(http::RequestHandle handle) : handle_(std::move(handle)) {}
  void cancel() override { handle_.cancel(); }

 private:
  http::RequestHandle handle_;
};

}  // namespace

NetEnv::NetEnv(asio::io_context& io, std::vector<Endpoint>& endpoints)
    : io_(io), endpoints_(endpoints) {}

double NetEnv::now() const {
  return std::chrono::duration<double>(SteadyClock::now() - start_).count();
}

double NetEnv::unix_now() const {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void NetEnv::post(std::function<void()> fn) {
  asio::post(io_, std::move(fn));
}

std::unique_ptr<Timer> NetEnv::make_timer() {
  return std::make_unique<AsioTimer>(io_, start_);
}

std::unique_ptr<UpstreamCall> NetEnv::send(int replica, http::ClientRequest request,
                                           http::ResponseHandlers handlers) {
  const std::shared_ptr<http::UpstreamPool>& pool =
      endpoints_[static_cast<size_t>(replica)].pool;
  if (!pool) {
    // Removed meanwhile (the core routes only to live replicas): a failed connect, later.
    post([h = std::move(handlers)] {
      http::ClientResult r;
      r.error = http::ClientError::kConnectFailed;
      r.detail = "replica removed";
      if (h.on_complete) h.on_complete(r);
    });
    return nullptr;
  }
  return std::make_unique<PoolCall>(pool->request(std::move(request), std::move(handlers)));
}

void NetEnv::get(int replica, http::ClientRequest request, http::UpstreamPool::GetCallback cb) {
  struct State {
    std::string body;
    http::UpstreamPool::GetCallback cb;
  };
  auto st = std::make_shared<State>();
  st->cb = std::move(cb);
  http::ResponseHandlers h;
  h.on_body = [st](std::string_view data) { st->body.append(data); };
  h.on_complete = [st](const http::ClientResult& result) {
    auto f = std::move(st->cb);
    if (f) f(result.status, std::move(st->body), result);
  };
  endpoints_[static_cast<size_t>(replica)].pool->request(std::move(request), std::move(h));
}

}  // namespace eta::router
