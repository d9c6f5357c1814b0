// bench/loadgen.hpp against a scripted http::Server on 127.0.0.1: per-event timing, the router's
// headers, every error kind, open-loop sending and the concurrency cap.
#include <chrono>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "bench/loadgen.hpp"
#include "http/server.hpp"

namespace eta::bench {
namespace {

using namespace std::chrono_literals;

std::string token(std::string_view text, bool finish = false) {
  return "data: "
         "{\"id\":\"cmpl-1\",\"object\":\"text_completion\",\"choices\":[{\"index\":0,\"text\":\"" +
         std::string(text) + "\",\"finish_reason\":" + (finish ? "\"length\"" : "null") + "}]}\n\n";
}
const std::string kUsage =
    "data: {\"id\":\"cmpl-1\",\"choices\":[],\"usage\":{\"prompt_tokens\":11,\"total_tokens\":14,"
    "\"completion_tokens\":3}}\n\n";
const std::string kDone = "data: [DONE]\n\n";

using Step = std::pair<std::chrono::milliseconds, std::function<void(http::Exchange&)>>;

// Runs `steps` one after the other on a helper thread, each after its delay, on the exchange's
// executor (the server's io thread); the exchange is released there too.
void script(http::ExchangePtr e, std::vector<Step> steps) {
  std::thread([e = std::move(e), steps = std::move(steps)]() mutable {
    for (const Step& step : steps) {
      const auto& fn = step.second;  // not a structured binding: clang 14 cannot capture those
      std::this_thread::sleep_for(step.first);
      std::promise<void> done;
      auto fut = done.get_future();
      http::Exchange* ex = e.get();
      ex->dispatch([&] {
        fn(*ex);
        done.set_value();
      });
      fut.wait();
    }
    http::Exchange* ex = e.get();
    ex->dispatch([keep = std::move(e)]() mutable { keep.reset(); });
  }).detach();
}

class LoadgenTest : public ::testing::Test {
 protected:
  void SetUp() override {
    io_.run_sync([&] {
      server_ = std::make_unique<http::Server>(io_.io(), http::ServerOptions{},
                                               [this](http::ExchangePtr e) { handle(e); });
      std::string error;
      ASSERT_TRUE(server_->listen(error)) << error;
      server_->start();
    });
  }
  void TearDown() override {
    // Let detached script threads finish before the server goes.
    std::this_thread::sleep_for(50ms);
    io_.run_sync([&] {
      held_.clear();
      server_.reset();
    });
    io_.stop();
  }

  void handle(const http::ExchangePtr& e) {
    const std::string path(e->request().path());
    ++hits_[path];
    if (path == "/stream") {
      http::Headers h = {{"x-eta-replica", "replica-7"},
                         {"x-eta-predicted-ttft-ms", "12.5"},
                         {"x-eta-predicted-e2e-ms", " 250 "}};
      e->start_stream(200, "text/event-stream", h);
      script(e, {{0ms, [](http::Exchange& x) { x.write(token(" wab")); }},
                 {50ms, [](http::Exchange& x) { x.write(token(" wcd")); }},
                 {50ms, [](http::Exchange& x) {
                    x.write(token(" wef", true) + kUsage);
                    x.write(kDone);
                    x.end_stream();
                  }}});
    } else if (path == "/slow") {  // one token after 200 ms
      e->start_stream(200, "text/event-stream");
      script(e, {{200ms, [](http::Exchange& x) {
                    x.write(token(" wab", true) + kDone);
                    x.end_stream();
                  }}});
    } else if (path == "/http500") {
      e->respond(http::error_response(500, "InternalServerError", "engine is dead"));
    } else if (path == "/error-event") {
      e->start_stream(200, "text/event-stream");
      e->write(token(" wab"));
      e->write(
          "data: {\"error\":{\"message\":\"out of blocks\",\"type\":\"InternalServerError\","
          "\"param\":null,\"code\":500}}\n\n" +
          kDone);
      e->end_stream();
    } else if (path == "/no-done") {
      e->start_stream(200, "text/event-stream");
      e->write(token(" wab", true));
      e->end_stream();
    } else if (path == "/no-token") {
      e->start_stream(200, "text/event-stream");
      e->write(kUsage + kDone);
      e->end_stream();
    } else if (path == "/reset") {
      e->start_stream(200, "text/event-stream");
      e->write(token(" wab"));
      // Dropping the exchange without finishing the response closes the connection.
      script(e, {{20ms, [](http::Exchange&) {}}});
    } else if (path == "/hang") {
      held_.push_back(e);  // never answered
    } else {
      e->respond(http::error_response(404, "NotFoundError", "no such path"));
    }
  }

  LoadgenConfig config(std::vector<std::pair<double, std::string_view>> plan) {
    LoadgenConfig c;
    std::string error;
    auto url = http::parse_url("http://127.0.0.1:" + std::to_string(server_->port()), &error);
    EXPECT_TRUE(url) << error;
    c.target = *url;
    for (const auto& [at, path] : plan) c.plan.push_back(PlannedRequest{at, path});
    c.make_body = [](size_t i) { return "{\"i\":" + std::to_string(i) + "}"; };
    c.timeout_s = 5;
    return c;
  }

  http::IoThread io_;
  std::unique_ptr<http::Server> server_;
  std::map<std::string, int> hits_;
  std::vector<http::ExchangePtr> held_;
};

TEST_F(LoadgenTest, TimesEveryTokenEventAndReadsTheRouterHeaders) {
  LoadgenResult r = run_loadgen(config({{0.0, "/stream"}}));
  ASSERT_EQ(r.requests.size(), 1u);
  const RawResult& x = r.requests[0];
  EXPECT_TRUE(x.sent);
  EXPECT_EQ(x.error_kind, "") << x.error_detail;
  EXPECT_EQ(x.http_status, 200);
  EXPECT_TRUE(x.first_token);
  EXPECT_GT(x.ttft_s, 0.0);
  EXPECT_LT(x.ttft_s, 0.045);
  ASSERT_EQ(x.itls_s.size(), 2u);
  for (double itl : x.itls_s) {
    EXPECT_GT(itl, 0.045);
    EXPECT_LT(itl, 0.5);
  }
  EXPECT_GE(x.e2e_s, x.ttft_s + x.itls_s[0] + x.itls_s[1] - 1e-9);
  EXPECT_EQ(x.token_events, 3);
  EXPECT_EQ(x.usage_prompt_tokens, 11);
  EXPECT_EQ(x.usage_completion_tokens, 3);
  EXPECT_EQ(x.replica, "replica-7");
  ASSERT_TRUE(x.predicted_ttft_ms);
  EXPECT_DOUBLE_EQ(*x.predicted_ttft_ms, 12.5);
  ASSERT_TRUE(x.predicted_e2e_ms);
  EXPECT_DOUBLE_EQ(*x.predicted_e2e_ms, 250);
  EXPECT_FALSE(r.interrupted);
  EXPECT_GE(r.last_done_s, r.first_send_s + x.e2e_s - 1e-3);
}

TEST_F(LoadgenTest, ErrorKinds) {
  LoadgenConfig c = config({{0.0, "/http500"},
                            {0.0, "/error-event"},
                            {0.0, "/no-done"},
                            {0.0, "/reset"},
                            {0.0, "/hang"},
                            {0.0, "/stream"}});
  c.timeout_s = 0.3;
  LoadgenResult r = run_loadgen(c);
  ASSERT_EQ(r.requests.size(), 6u);
  EXPECT_EQ(r.requests[0].error_kind, "http_500");
  EXPECT_EQ(r.requests[0].http_status, 500);
  EXPECT_EQ(r.requests[0].error_detail, "engine is dead");
  EXPECT_EQ(r.requests[1].error_kind, "stream");
  EXPECT_EQ(r.requests[1].error_detail, "out of blocks");
  EXPECT_EQ(r.requests[2].error_kind, "stream");
  EXPECT_NE(r.requests[2].error_detail.find("[DONE]"), std::string::npos);
  EXPECT_EQ(r.requests[3].error_kind, "reset") << r.requests[3].error_detail;
  EXPECT_EQ(r.requests[4].error_kind, "timeout") << r.requests[4].error_detail;
  EXPECT_GE(r.requests[4].e2e_s, 0.29);
  EXPECT_EQ(r.requests[5].error_kind, "");
}

TEST_F(LoadgenTest, ConnectErrors) {
  LoadgenConfig c = config({{0.0, "/stream"}});
  // A port nothing listens on: bind one, then close it.
  {
    http::IoThread other;
    std::unique_ptr<http::Server> s;
    other.run_sync([&] {
      s = std::make_unique<http::Server>(other.io(), http::ServerOptions{},
                                         [](http::ExchangePtr) {});
      std::string error;
      ASSERT_TRUE(s->listen(error));
      c.target.port = s->port();
      s.reset();
    });
  }
  LoadgenResult r = run_loadgen(c);
  ASSERT_EQ(r.requests.size(), 1u);
  EXPECT_EQ(r.requests[0].error_kind, "connect") << r.requests[0].error_detail;
}

TEST_F(LoadgenTest, OpenLoopSendsOnScheduleWhileEarlierRequestsRun) {
  // Ten requests 20 ms apart, each taking 200 ms: they overlap, and each leaves on time.
  std::vector<std::pair<double, std::string_view>> plan;
  for (int i = 0; i < 10; ++i) plan.emplace_back(0.02 * i, "/slow");
  LoadgenResult r = run_loadgen(config(plan));
  ASSERT_EQ(r.requests.size(), 10u);
  for (size_t i = 0; i < r.requests.size(); ++i) {
    const RawResult& x = r.requests[i];
    EXPECT_EQ(x.error_kind, "") << i << ": " << x.error_detail;
    EXPECT_DOUBLE_EQ(x.scheduled_s, 0.02 * static_cast<double>(i));
    EXPECT_GE(x.lateness_s, 0.0);
    EXPECT_LT(x.lateness_s, 0.1) << i;  // closed loop would be >= 0.18 from the second on
    EXPECT_GT(x.ttft_s, 0.19);
  }
  EXPECT_GE(r.pool.connections_opened, 9u);  // all in flight at once
}

TEST_F(LoadgenTest, ConcurrencyCapDelaysSends) {
  LoadgenConfig c = config({{0.0, "/slow"}, {0.0, "/slow"}, {0.0, "/slow"}});
  c.max_concurrency = 1;
  LoadgenResult r = run_loadgen(c);
  ASSERT_EQ(r.requests.size(), 3u);
  EXPECT_LT(r.requests[0].lateness_s, 0.1);
  EXPECT_GT(r.requests[1].lateness_s, 0.19);
  EXPECT_GT(r.requests[2].lateness_s, 0.39);
  EXPECT_LE(r.pool.connections_opened, 1u);  // one connection, reused
}

TEST_F(LoadgenTest, StreamWithoutTokensIsReported) {
  LoadgenResult r = run_loadgen(config({{0.0, "/no-token"}}));
  ASSERT_EQ(r.requests.size(), 1u);
  // The load generator reports what it saw; bench.cpp calls a token-less success an error.
  EXPECT_EQ(r.requests[0].error_kind, "");
  EXPECT_FALSE(r.requests[0].first_token);
  EXPECT_EQ(r.requests[0].usage_completion_tokens, 3);
}

TEST_F(LoadgenTest, EmptyPlanReturnsAtOnce) {
  LoadgenResult r = run_loadgen(config({}));
  EXPECT_TRUE(r.requests.empty());
  EXPECT_FALSE(r.interrupted);
}

TEST_F(LoadgenTest, ProgressCallbacks) {
  LoadgenConfig c = config({{0.0, "/slow"}, {0.1, "/slow"}});
  int updates = 0;
  int finals = 0;
  ProgressCounts last;
  c.progress_interval_s = 0.05;
  c.on_progress = [&](const ProgressCounts& p, bool final) {
    (final ? finals : updates)++;
    last = p;
  };
  run_loadgen(c);
  EXPECT_GE(updates, 2);
  EXPECT_EQ(finals, 1);
  EXPECT_EQ(last.total, 2);
  EXPECT_EQ(last.sent, 2);
  EXPECT_EQ(last.finished, 2);
  EXPECT_EQ(last.in_flight, 0);
  EXPECT_EQ(last.errors, 0);
}

TEST(HttpGetTest, ReportsUnreachableTargets) {
  std::string body;
  std::string error;
  auto url = http::parse_url("http://127.0.0.1:1");
  ASSERT_TRUE(url);
  EXPECT_FALSE(http_get(*url, "/v1/models", 2.0, body, error));
  EXPECT_NE(error.find("/v1/models"), std::string::npos) << error;
  EXPECT_EQ(error.find('\n'), std::string::npos);
}

}  // namespace
}  // namespace eta::bench
