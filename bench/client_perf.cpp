// Rough client overhead numbers, not assertions (a performance target belongs in a benchmark).
// Built as build/bench/eta_client_perf (not part of the test suite); run it by hand.
// Server and client each run on their own IoThread; "client CPU" is the CPU time of the client's
// io thread only, which is what `eta route` / `eta bench` pay per request and per chunk.
#include <time.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "http/client.hpp"
#include "http/server.hpp"

namespace eta::http {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

class HttpClientPerf : public ::testing::Test {
 protected:
  void start(Handler handler) {
    server_io_.run_sync([&] {
      server_ = std::make_unique<Server>(server_io_.io(), ServerOptions{}, std::move(handler));
      std::string error;
      ASSERT_TRUE(server_->listen(error)) << error;
      server_->start();
    });
    auto url = parse_url("http://127.0.0.1:" + std::to_string(server_->port()));
    client_io_.run_sync([&] { pool_ = std::make_unique<UpstreamPool>(client_io_.io(), *url); });
  }
  double client_cpu() {
    double t = 0;
    client_io_.run_sync([&] { t = thread_cpu_seconds(); });
    return t;
  }
  void TearDown() override {
    client_io_.run_sync([&] { pool_.reset(); });
    client_io_.stop();
    server_io_.run_sync([&] { server_.reset(); });
    server_io_.stop();
  }

  // Closed loop: `parallel` chains of sequential requests, `total` requests in all.
  void run_requests(int parallel, int total, const char* label) {
    struct Loop {
      UpstreamPool* pool;
      int left;
      int errors = 0;
      std::promise<void> done;
      int chains;
      void next() {
        ClientRequest r;
        r.method = "POST";
        r.target = "/v1/completions";
        r.body = R"({"prompt":"hello","max_tokens":1})";
        r.headers = {{"Content-Type", "application/json"}};
        ResponseHandlers h;
        h.on_complete = [this](const ClientResult& res) {
          if (!res.ok()) ++errors;
          if (left > 0) {
            --left;
            next();
          } else if (--chains == 0) {
            done.set_value();
          }
        };
        pool->request(std::move(r), std::move(h));
      }
    };
    Loop loop{pool_.get(), total - parallel, 0, {}, parallel};
    auto fut = loop.done.get_future();
    double cpu0 = client_cpu();
    auto t0 = Clock::now();
    client_io_.run_sync([&] {
      for (int i = 0; i < parallel; ++i) loop.next();
    });
    ASSERT_EQ(fut.wait_for(60s), std::future_status::ready);
    double wall = std::chrono::duration<double>(Clock::now() - t0).count();
    double cpu = client_cpu() - cpu0;
    PoolStats s;
    client_io_.run_sync([&] { s = pool_->stats(); });
    EXPECT_EQ(loop.errors, 0);
    std::printf("%-34s %8d req  %9.0f req/s  client CPU %5.2f us/req  connections %llu\n", label,
                total, total / wall, cpu / total * 1e6,
                static_cast<unsigned long long>(s.connections_opened));
  }

  IoThread server_io_;
  IoThread client_io_;
  std::unique_ptr<Server> server_;
  std::unique_ptr<UpstreamPool> pool_;
};

TEST_F(HttpClientPerf, RequestsPerSecond) {
  start([](ExchangePtr e) {
    Response r;
    r.body = R"({"id":"x","choices":[{"text":"hi"}]})";
    e->respond(std::move(r));
  });
  run_requests(1, 2000, "warm-up");
  run_requests(1, 30000, "1 connection, sequential");
  run_requests(16, 60000, "16 in flight");
}

TEST_F(HttpClientPerf, StreamedChunks) {
  std::promise<ExchangePtr> got;
  start([&](ExchangePtr e) {
    e->start_stream(200, "text/event-stream");
    got.set_value(e);
  });
  constexpr int kChunks = 200000;
  const std::string event =
      R"(data: {"id":"cmpl-1","object":"text_completion","choices":[{"text":" tok"}]})"
      "\n\n";
  std::atomic<long> calls{0};
  std::atomic<long> bytes{0};
  std::promise<ClientResult> done;
  ResponseHandlers h;
  std::function<void()> hook;  // set and called on the client io thread only
  h.on_body = [&](std::string_view d) {
    calls.fetch_add(1, std::memory_order_relaxed);
    bytes.fetch_add(static_cast<long>(d.size()), std::memory_order_relaxed);
    if (hook) hook();
  };
  h.on_complete = [&](const ClientResult& r) { done.set_value(r); };
  ClientRequest r;
  r.method = "POST";
  r.target = "/v1/completions";
  r.body = "{}";
  client_io_.run_sync([&] { pool_->request(std::move(r), std::move(h)); });
  ExchangePtr ex = got.get_future().get();

  // Bulk: the server writes as fast as it can (many chunks per socket read on the client).
  double cpu0 = client_cpu();
  auto t0 = Clock::now();
  for (int sent = 0; sent < kChunks; sent += 100) {
    size_t buffered = 0;
    server_io_.run_sync([&] {
      for (int i = 0; i < 100; ++i) ex->write(event);
      buffered = ex->buffered_bytes();
    });
    if (buffered > (1u << 20)) std::this_thread::sleep_for(200us);
  }
  while (bytes.load() < static_cast<long>(kChunks * event.size())) std::this_thread::sleep_for(1ms);
  double wall = std::chrono::duration<double>(Clock::now() - t0).count();
  double cpu = client_cpu() - cpu0;
  std::printf("%-34s %8d chunks %9.0f chunks/s  client CPU %5.3f us/chunk  on_body calls %ld\n",
              "bulk stream", kChunks, kChunks / wall, cpu / kChunks * 1e6, calls.load());
  EXPECT_GE(calls.load(), kChunks);  // a chunk split across two reads is two pieces

  // Lockstep: the server writes the next chunk only when the client has seen the previous one
  // (on_body asks the server thread for the next write): one socket read per chunk, as when an
  // engine emits one token per step.
  constexpr int kSteps = 20000;
  int seen = 0;
  std::promise<void> lockstep_done;
  client_io_.run_sync([&] {
    calls = 0;
    hook = [&] {
      if (++seen < kSteps) {
        ex->dispatch([&] { ex->write(event); });
      } else {
        lockstep_done.set_value();
      }
    };
  });
  cpu0 = client_cpu();
  t0 = Clock::now();
  server_io_.run_sync([&] { ex->write(event); });
  lockstep_done.get_future().wait();
  wall = std::chrono::duration<double>(Clock::now() - t0).count();
  cpu = client_cpu() - cpu0;
  std::printf(
      "%-34s %8d chunks %9.0f chunks/s  client CPU %5.2f us/chunk  (%.1f us from write "
      "to on_body and back)\n",
      "lockstep stream", kSteps, kSteps / wall, cpu / kSteps * 1e6, wall / kSteps * 1e6);
  client_io_.run_sync([&] { hook = nullptr; });
  EXPECT_EQ(calls.load(), kSteps);
  server_io_.run_sync([&] { ex->end_stream(); });
  auto res = done.get_future().get();
  EXPECT_TRUE(res.ok()) << res.detail;
  server_io_.run_sync([&] { ex.reset(); });
}

// Many concurrent streams, the server writing one event to each per "engine step": the shape of
// `eta bench` against a batch of decoding requests.
TEST_F(HttpClientPerf, ManyStreams) {
  constexpr int kStreams = 64;
  constexpr int kSteps = 3000;
  std::mutex mu;
  std::vector<ExchangePtr> exchanges;
  start([&](ExchangePtr e) {
    e->start_stream(200, "text/event-stream");
    std::lock_guard lock(mu);
    exchanges.push_back(std::move(e));
  });
  const std::string event =
      R"(data: {"id":"cmpl-1","object":"text_completion","choices":[{"text":" tok"}]})"
      "\n\n";
  long calls = 0;  // client io thread only
  long bytes = 0;
  int completes = 0;
  std::promise<void> all_done;
  client_io_.run_sync([&] {
    for (int i = 0; i < kStreams; ++i) {
      ClientRequest r;
      r.method = "POST";
      r.target = "/v1/completions";
      r.body = "{}";
      ResponseHandlers h;
      h.on_body = [&](std::string_view d) {
        ++calls;
        bytes += static_cast<long>(d.size());
      };
      h.on_complete = [&](const ClientResult& res) {
        EXPECT_TRUE(res.ok()) << res.detail;
        if (++completes == kStreams) all_done.set_value();
      };
      pool_->request(std::move(r), std::move(h));
    }
  });
  for (int i = 0; i < 500; ++i) {
    {
      std::lock_guard lock(mu);
      if (exchanges.size() == kStreams) break;
    }
    std::this_thread::sleep_for(2ms);
  }
  ASSERT_EQ(exchanges.size(), static_cast<size_t>(kStreams));
  double cpu0 = client_cpu();
  auto t0 = Clock::now();
  for (int step = 0; step < kSteps; ++step) {
    size_t buffered = 0;
    server_io_.run_sync([&] {
      for (auto& e : exchanges) {
        e->write(event);
        buffered = std::max(buffered, e->buffered_bytes());
      }
    });
    if (buffered > (256u << 10)) std::this_thread::sleep_for(100us);
  }
  server_io_.run_sync([&] {
    for (auto& e : exchanges) e->end_stream();
  });
  ASSERT_EQ(all_done.get_future().wait_for(60s), std::future_status::ready);
  double wall = std::chrono::duration<double>(Clock::now() - t0).count();
  double cpu = client_cpu() - cpu0;
  long total = static_cast<long>(kStreams) * kSteps;
  long seen_calls = 0;
  client_io_.run_sync([&] { seen_calls = calls; });
  std::printf("%-34s %8ld chunks %9.0f chunks/s  client CPU %5.3f us/chunk  on_body calls %ld\n",
              "64 streams, 1 event/step each", total, total / wall, cpu / total * 1e6, seen_calls);
  client_io_.run_sync([&] { EXPECT_EQ(bytes, total * static_cast<long>(event.size())); });
  server_io_.run_sync([&] { exchanges.clear(); });
}

}  // namespace
}  // namespace eta::http
