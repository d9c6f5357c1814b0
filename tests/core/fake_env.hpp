// Virtual time for the router core's tests: a clock the test moves, timers and posted work run
// in time order, upstream requests the test answers by hand (FakeUpstream), and client
// exchanges that record what the client received (FakeExchange).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "router/core/ports.hpp"
#include "router/core/router_core.hpp"
#include "router/routes.hpp"

namespace eta::router::testing {

// What the client got.
class FakeExchange final : public http::Exchange {
 public:
  explicit FakeExchange(http::Request r) : request_(std::move(r)) {}
  const http::Request& request() const override { return request_; }
  void respond(http::Response r) override {
    if (done_ || streaming_ || gone_) return;
    status_ = r.status;
    headers_ = r.headers;
    body_ = r.body;
    done_ = true;
  }
  bool start_stream(int status, std::string_view, const http::Headers& h) override {
    if (done_ || streaming_ || gone_) return false;
    status_ = status;
    headers_ = h;
    streaming_ = true;
    return true;
  }
  bool write(std::string_view data) override {
    if (!streaming_ || gone_) return false;
    body_.append(data);
    return true;
  }
  bool end_stream() override {
    if (!streaming_ || gone_) return false;
    done_ = true;
    return true;
  }
  void on_disconnect(std::function<void()> cb) override { disconnect_ = std::move(cb); }
  bool disconnected() const override { return gone_; }
  bool finished() const override { return done_; }
  size_t buffered_bytes() const override { return 0; }
  void dispatch(std::function<void()> fn) override { fn(); }
  std::string remote_address() const override { return "127.0.0.1:1"; }

  // The client goes away.
  void disconnect() {
    gone_ = true;
    if (auto f = std::move(disconnect_)) f();
  }
  int status() const { return status_; }
  bool done() const { return done_; }
  bool streaming() const { return streaming_; }
  const std::string& body() const { return body_; }
  std::string header(std::string_view name) const {
    for (const auto& [k, v] : headers_)
      if (http::iequals(k, name)) return v;
    return "";
  }

 private:
  http::Request request_;
  int status_ = 0;
  http::Headers headers_;
  std::string body_;
  bool done_ = false;
  bool streaming_ = false;
  bool gone_ = false;
  std::function<void()> disconnect_;
};

// One request sent to a replica, answered by the test.
struct UpstreamRequest {
  int replica = 0;
  http::ClientRequest request;
  http::ResponseHandlers handlers;
  bool canceled = false;
  bool completed = false;

  void head(int status, bool sse = false, std::optional<uint64_t> length = std::nullopt) {
    http::ResponseHead h;
    h.status = status;
    h.content_length = length;
    h.chunked = !length.has_value();
    header_storage = {{"content-type", sse ? "text/event-stream" : "application/json"}};
    h.headers = header_storage;
    if (handlers.on_head) handlers.on_head(h);
  }
  void body(std::string_view data) {
    if (handlers.on_body) handlers.on_body(data);
  }
  void complete(http::ClientError error = http::ClientError::kOk, bool head_received = true) {
    completed = true;
    http::ClientResult r;
    r.error = error;
    r.head_received = head_received;
    r.detail = error == http::ClientError::kOk ? "" : std::string(http::to_string(error));
    if (handlers.on_complete) handlers.on_complete(r);
  }
  // A whole JSON response with a Content-Length.
  void answer(int status, const std::string& json) {
    head(status, false, json.size());
    body(json);
    complete();
  }
  std::vector<http::HeaderView> header_storage;
};

class FakeEnv final : public Env {
 public:
  double now() const override { return now_; }
  double unix_now() const override { return 1.7e9 + now_; }
  void post(std::function<void()> fn) override { schedule(now_, std::move(fn)); }
  std::unique_ptr<Timer> make_timer() override { return std::make_unique<FakeTimer>(*this); }
  std::unique_ptr<UpstreamCall> send(int /*worker*/, int replica, http::ClientRequest request,
                                     http::ResponseHandlers handlers) override {
    auto u = std::make_shared<UpstreamRequest>();
    u->replica = replica;
    u->request = std::move(request);
    u->handlers = std::move(handlers);
    sent.push_back(u);
    return std::make_unique<FakeCall>(u);
  }

  // Runs everything due up to `t` (posted work and timers, in time order).
  void advance_to(double t) {
    while (!events_.empty() && events_.begin()->first.first <= t) {
      auto it = events_.begin();
      now_ = std::max(now_, it->first.first);
      auto fn = std::move(it->second);
      events_.erase(it);
      fn();
    }
    now_ = std::max(now_, t);
  }
  void advance(double dt) { advance_to(now_ + dt); }
  void run_posted() { advance_to(now_); }
  // The requests sent to replicas, oldest first.
  std::vector<std::shared_ptr<UpstreamRequest>> sent;
  std::vector<std::shared_ptr<UpstreamRequest>> pending() const {
    std::vector<std::shared_ptr<UpstreamRequest>> out;
    for (const auto& u : sent)
      if (!u->canceled && !u->completed) out.push_back(u);
    return out;
  }

 private:
  class FakeTimer final : public Timer {
   public:
    explicit FakeTimer(FakeEnv& env) : env_(env) {}
    ~FakeTimer() override { *alive_ = false; }
    void arm(double at_s, std::function<void()> fn) override {
      cancel();
      const uint64_t gen = ++generation_;
      armed_ = true;
      env_.schedule(at_s, [this, gen, fn = std::move(fn), alive = alive_] {
        if (!*alive || gen != generation_) return;
        armed_ = false;
        fn();
      });
    }
    void cancel() override {
      ++generation_;
      armed_ = false;
    }

   private:
    FakeEnv& env_;
    uint64_t generation_ = 0;
    bool armed_ = false;
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  };
  class FakeCall final : public UpstreamCall {
   public:
    explicit FakeCall(std::shared_ptr<UpstreamRequest> u) : u_(std::move(u)) {}
    void cancel() override {
      if (!u_->completed) u_->canceled = true;
    }

   private:
    std::shared_ptr<UpstreamRequest> u_;
  };
  void schedule(double at, std::function<void()> fn) {
    events_.emplace(std::make_pair(at, seq_++), std::move(fn));
  }

  double now_ = 0;
  uint64_t seq_ = 0;
  std::map<std::pair<double, uint64_t>, std::function<void()>> events_;
};

// Records what the core reported.
struct RecordingObserver final : CallObserver, ReplicaObserver {
  std::vector<std::pair<uint64_t, int>> finished_calls;  // (id, status)
  std::vector<std::string> errors;                       // the call's error at its end
  std::vector<int> restarts, removals;
  int decisions = 0, sheds = 0;
  void decided(const Call&, const cluster::Decision&, int chosen) override {
    ++decisions;
    if (chosen < 0) ++sheds;
  }
  void finished(const Call& c, int status) override {
    finished_calls.emplace_back(c.id, status);
    errors.push_back(c.error);
  }
  void restarted(int r) override { restarts.push_back(r); }
  void removed(int r) override { removals.push_back(r); }
};

// Adds `n` replicas (http://10.0.0.1:8000, ...), healthy and serving model "m".
inline void add_serving_replicas(RouterCore& core, int n) {
  for (int i = 0; i < n; ++i) {
    ReplicaConfig rc;
    rc.url = "http://10.0.0." + std::to_string(i + 1) + ":8000";
    std::string error;
    EXPECT_EQ(core.add_replica(rc, error), i) << error;
    core.health_result(i, true, "");
    ModelList models;
    models.ids = {"m"};
    models.cards = {R"({"id":"m","object":"model"})"};
    core.models_result(i, models);
  }
}

// A RouterCore with `n` healthy replicas serving model "m", in virtual time.
struct CoreFixture {
  FakeEnv env;
  RouterMetrics metrics{"round-robin"};
  RecordingObserver observer;
  std::unique_ptr<RouterCore> core;

  static RouterConfig round_robin() {
    RouterConfig c;
    c.policy.name = "round-robin";
    return c;
  }
  explicit CoreFixture(int n, RouterConfig config = round_robin()) {
    RouterCore::Ports p{&env, &metrics, &observer, &observer};
    core = std::make_unique<RouterCore>(config, p);
    add_serving_replicas(*core, n);
  }
  // A client request on `path` (POST, JSON body).
  std::shared_ptr<FakeExchange> send(
      std::string body = R"({"model":"m","prompt":"hi","max_tokens":4})",
      std::string path = "/v1/completions", http::Headers headers = {},
      std::string method = "POST") {
    http::Request r;
    r.method = method;
    r.target = path;
    r.headers = std::move(headers);
    r.headers.emplace_back("content-type", "application/json");
    r.body = std::move(body);
    auto e = std::make_shared<FakeExchange>(std::move(r));
    const RouteMatch m = match_route(e->request().method, e->request().path());
    EXPECT_NE(m.spec, nullptr);
    core->proxy(e, *m.spec, m.id);
    env.run_posted();
    return e;
  }
  // The value of one series of the router's metrics, e.g.
  // metric(R"(eta_errors_total{reason="shed_capacity"})"); 0 when absent.
  double metric(const std::string& series) {
    const std::string text = "\n" + metrics.registry.render();
    const size_t pos = text.find("\n" + series + " ");
    if (pos == std::string::npos) return 0;
    return std::stod(text.substr(pos + series.size() + 2));
  }
};

}  // namespace eta::router::testing
