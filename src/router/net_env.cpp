// The router core's ports on Asio: its clock, timers and posting on the main io_context, and its
// upstream requests on the replicas' pools of the call's worker (router_impl.hpp, "Threads").
// With one thread everything here runs on that thread, directly, as it always did; with more,
// whatever comes from another thread is posted to the io_context that owns the object.
#include <atomic>
#include <chrono>
#include <cmath>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "router/router_impl.hpp"

namespace eta::router {

namespace asio = boost::asio;
using SteadyClock = std::chrono::steady_clock;

namespace {

// The worker this thread is (0: the main thread, and any thread that is no worker's).
thread_local int tls_worker = 0;

bool on_worker(int worker) {
  return tls_worker == worker;
}

// Runs f on worker `worker` (io is its loop): at once when this is its thread, or when the loop
// has stopped (the router is going away: nothing runs there any more), else posted there.
template <typename F>
void on_worker_io(asio::io_context& io, int worker, F&& f) {
  if (on_worker(worker) || io.stopped()) return f();
  asio::post(io, std::forward<F>(f));
}

// Runs fn under the mutex (when there is one).
void locked(std::recursive_mutex* mu, const std::function<void()>& fn) {
  if (!mu) return fn();
  std::lock_guard lock(*mu);
  fn();
}

// arm() and cancel() come from whoever holds the core's mutex, on any thread; the steady_timer is
// only touched on its io_context's thread (posted there from elsewhere). The generation, bumped
// at once, voids every earlier wait: the function runs only if it is still the last arm() when
// the timer fires, checked under the mutex.
class AsioTimer final : public Timer {
 public:
  // `mu`: where the core's mutex is (set before the first timer fires).
  AsioTimer(asio::io_context& io, SteadyClock::time_point start, std::recursive_mutex* const* mu)
      : io_(io), st_(std::make_shared<State>(io, start, mu)) {}
  ~AsioTimer() override { cancel(); }
  void arm(double at_s, std::function<void()> fn) override {
    const uint64_t generation = ++st_->generation;
    run_there([at_s, generation, fn = std::move(fn)](const std::shared_ptr<State>& st) mutable {
      if (generation != st->generation) return;  // re-armed or canceled meanwhile
      st->timer.expires_at(st->start + std::chrono::duration_cast<SteadyClock::duration>(
                                           std::chrono::duration<double>(at_s)));
      std::weak_ptr<State> weak = st;
      st->timer.async_wait(
          [weak, generation, fn = std::move(fn)](const boost::system::error_code& ec) {
            std::shared_ptr<State> s = weak.lock();
            if (ec || !s) return;
            locked(*s->mu, [&] {
              if (generation == s->generation) fn();
            });
          });
    });
  }
  void cancel() override {
    ++st_->generation;
    run_there([](const std::shared_ptr<State>& st) { st->timer.cancel(); });
  }

 private:
  struct State {
    State(asio::io_context& io, SteadyClock::time_point s, std::recursive_mutex* const* m)
        : timer(io), start(s), mu(m) {}
    asio::steady_timer timer;
    SteadyClock::time_point start;
    std::recursive_mutex* const* mu;
    std::atomic<uint64_t> generation{0};
  };
  template <typename F>
  void run_there(F&& f) {
    if (on_worker(0)) return f(st_);  // the main thread: its io_context's
    asio::post(io_, [st = st_, f = std::forward<F>(f)]() mutable { f(st); });
  }
  asio::io_context& io_;
  std::shared_ptr<State> st_;
};

// An upstream request of worker `io`: started, canceled and ended on that worker's thread.
class PoolCall final : public UpstreamCall {
 public:
  struct State {
    http::RequestHandle handle;
    bool canceled = false;  // on the worker's thread only
  };
  PoolCall(asio::io_context& io, int worker, std::shared_ptr<State> st)
      : io_(io), worker_(worker), st_(std::move(st)) {}
  void cancel() override {
    on_worker_io(io_, worker_, [st = st_] {
      st->canceled = true;
      st->handle.cancel();
    });
  }

 private:
  asio::io_context& io_;
  int worker_;
  std::shared_ptr<State> st_;
};

// A client exchange of a worker, used by the core from any thread (threads > 1). On its worker's
// thread every method goes straight through; from another one, what changes the response is
// posted there in call order (the core calls it under its mutex) and what reads it answers from
// the state seen so far. The inner exchange is released on its worker.
class WorkerExchange final : public http::Exchange {
 public:
  WorkerExchange(asio::io_context& io, int worker, http::ExchangePtr inner,
                 std::recursive_mutex* mu)
      : io_(io),
        worker_(worker),
        inner_(std::move(inner)),
        mu_(mu),
        remote_(inner_->remote_address()) {}
  ~WorkerExchange() override {
    if (!here()) on_worker_io(io_, worker_, [e = std::move(inner_)] {});
  }
  const http::Request& request() const override { return inner_->request(); }
  void respond(http::Response r) override {
    finished_ = true;
    if (here()) return inner_->respond(std::move(r));
    asio::post(io_, [e = inner_, r = std::move(r)]() mutable { e->respond(std::move(r)); });
  }
  bool start_stream(int status, std::string_view type, const http::Headers& h) override {
    if (here()) return inner_->start_stream(status, type, h);
    asio::post(io_,
               [e = inner_, status, t = std::string(type), h] { e->start_stream(status, t, h); });
    return !gone_;
  }
  bool write(std::string_view data) override {
    if (here()) return inner_->write(data);
    asio::post(io_, [e = inner_, d = std::string(data)] { e->write(d); });
    return !gone_;
  }
  bool end_stream() override {
    finished_ = true;
    if (here()) return inner_->end_stream();
    asio::post(io_, [e = inner_] { e->end_stream(); });
    return !gone_;
  }
  void on_disconnect(std::function<void()> cb) override {
    // Posted, not run inline: a write that finds the client gone calls it from inside
    // relay_stream, which holds the call's stream_mu (the core's mutex is taken first, never
    // after it).
    auto wrapped = [gone = gone_ptr_, mu = mu_, io = &io_, cb = std::move(cb)] {
      *gone = true;
      asio::post(*io, [mu, cb] { locked(mu, cb); });  // the core's on_client_gone
    };
    if (here()) return inner_->on_disconnect(std::move(wrapped));
    asio::post(io_,
               [e = inner_, w = std::move(wrapped)]() mutable { e->on_disconnect(std::move(w)); });
  }
  bool disconnected() const override { return here() ? inner_->disconnected() : gone_.load(); }
  bool finished() const override { return here() ? inner_->finished() : finished_.load(); }
  size_t buffered_bytes() const override { return here() ? inner_->buffered_bytes() : 0; }
  void dispatch(std::function<void()> fn) override { asio::dispatch(io_, std::move(fn)); }
  std::string remote_address() const override { return remote_; }

 private:
  bool here() const { return on_worker(worker_); }
  asio::io_context& io_;
  int worker_;
  http::ExchangePtr inner_;
  std::recursive_mutex* mu_;
  std::string remote_;
  std::shared_ptr<std::atomic<bool>> gone_ptr_ = std::make_shared<std::atomic<bool>>(false);
  std::atomic<bool>& gone_ = *gone_ptr_;
  std::atomic<bool> finished_{false};
};

}  // namespace

NetEnv::NetEnv(asio::io_context& io, std::vector<Endpoint>& endpoints, std::vector<Worker>& workers)
    : io_(io), endpoints_(endpoints), workers_(workers) {}

double NetEnv::now() const {
  return std::chrono::duration<double>(SteadyClock::now() - start_).count();
}

double NetEnv::unix_now() const {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

int NetEnv::worker() const {
  return workers_.size() > 1 ? tls_worker : 0;
}

void NetEnv::enter_worker(int worker) {
  tls_worker = worker;
}

void NetEnv::post(std::function<void()> fn) {
  asio::post(io_, [mu = mu_, fn = std::move(fn)] { locked(mu, fn); });
}

std::unique_ptr<Timer> NetEnv::make_timer() {
  return std::make_unique<AsioTimer>(io_, start_, &mu_);
}

std::unique_ptr<UpstreamCall> NetEnv::send(int worker, int replica, http::ClientRequest request,
                                           http::ResponseHandlers handlers) {
  const size_t w =
      worker > 0 && static_cast<size_t>(worker) < workers_.size() ? static_cast<size_t>(worker) : 0;
  Endpoint& ep = endpoints_[static_cast<size_t>(replica)];
  std::shared_ptr<http::UpstreamPool> pool = w == 0 ? ep.pool
                                             : w - 1 < ep.worker_pools.size()
                                                 ? ep.worker_pools[w - 1]
                                                 : nullptr;
  asio::io_context& wio = w == 0 ? io_ : *workers_[w].io;
  auto st = std::make_shared<PoolCall::State>();
  auto start = [st, pool = std::move(pool), req = std::move(request),
                h = std::move(handlers)]() mutable {
    if (st->canceled) return;
    if (!pool) {
      // Removed meanwhile (the core routes only to live replicas): a failed connect.
      http::ClientResult r;
      r.error = http::ClientError::kConnectFailed;
      r.detail = "replica removed";
      if (h.on_complete) h.on_complete(r);
      return;
    }
    st->handle = pool->request(std::move(req), std::move(h));
  };
  if (pool && on_worker(static_cast<int>(w))) {
    start();  // the usual case: the call's own worker
  } else {
    asio::post(wio, std::move(start));  // later, on the call's worker (handlers never inline)
  }
  return std::make_unique<PoolCall>(wio, static_cast<int>(w), std::move(st));
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
  h.on_complete = [st, mu = mu_](const http::ClientResult& result) {
    auto f = std::move(st->cb);
    if (f) locked(mu, [&] { f(result.status, std::move(st->body), result); });
  };
  endpoints_[static_cast<size_t>(replica)].pool->request(std::move(request), std::move(h));
}

http::ExchangePtr NetEnv::own_exchange(http::ExchangePtr e, int worker) {
  if (workers_.size() <= 1) return e;
  asio::io_context& wio = worker == 0 ? io_ : *workers_[static_cast<size_t>(worker)].io;
  return std::make_shared<WorkerExchange>(wio, worker, std::move(e), mu_);
}

void NetEnv::release_pools(int replica) {
  Endpoint& ep = endpoints_[static_cast<size_t>(replica)];
  asio::post(io_, [pool = std::move(ep.pool)] {});  // it may be inside one of its callbacks
  for (size_t w = 1; w < workers_.size() && w - 1 < ep.worker_pools.size(); ++w) {
    asio::io_context& wio = *workers_[w].io;
    if (wio.stopped())
      ep.worker_pools[w - 1].reset();
    else
      asio::post(wio, [pool = std::move(ep.worker_pools[w - 1])] {});
  }
  ep.worker_pools.clear();
}

}  // namespace eta::router
