// The dashboard's pure parts: the per-replica minute window (TTFT quantiles, rates), the
// completion log and its accuracy summary, snapshots and their cursors, the stream's query.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <limits>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include <boost/json.hpp>

#include "http/server.hpp"
#include "router/dashboard.hpp"
#include "router/window_stats.hpp"

namespace {

using namespace eta::router;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

double exact_quantile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  size_t k = static_cast<size_t>(std::ceil(q * static_cast<double>(v.size())));
  return v[std::max<size_t>(k, 1) - 1];
}

TEST(ReplicaWindow, QuantilesWithinBinResolution) {
  ReplicaWindow w(0);
  std::mt19937_64 rng(7);
  std::lognormal_distribution<double> d(std::log(0.2), 0.8);
  std::vector<double> all;
  for (int i = 0; i < 5000; ++i) {
    const double v = d(rng);
    all.push_back(v);
    w.record(10.0 + i * 0.005, v, 10);  // 25 s of samples, all in the window
  }
  EXPECT_EQ(w.ttft_samples(), 5000u);
  for (double q : {0.5, 0.9, 0.99}) {
    const double exact = exact_quantile(all, q);
    EXPECT_NEAR(w.ttft_quantile(q) / exact, 1.0, 0.045) << "q=" << q;
  }
}

TEST(ReplicaWindow, ForgetsWhatIsOlderThanAMinute) {
  ReplicaWindow w(0);
  for (int i = 0; i < 100; ++i) w.record(1.0 + i * 0.01, 5.0, 1);    // slow, at t = 1..2
  for (int i = 0; i < 100; ++i) w.record(30.0 + i * 0.01, 0.05, 1);  // fast, at t = 30..31
  EXPECT_EQ(w.ttft_samples(), 200u);
  EXPECT_GT(w.ttft_quantile(0.99), 4.0);
  w.advance(61.5);  // the first second has left the window, the 30th not
  EXPECT_EQ(w.ttft_samples(), 100u);
  EXPECT_NEAR(w.ttft_quantile(0.99), 0.05, 0.05 * 0.045);
  w.advance(1000);  // a jump far beyond the window empties it
  EXPECT_EQ(w.ttft_samples(), 0u);
  EXPECT_TRUE(std::isnan(w.ttft_quantile(0.5)));
  w.record(1000.5, 0.3, 1);
  EXPECT_EQ(w.ttft_samples(), 1u);
  EXPECT_NEAR(w.ttft_quantile(0.5), 0.3, 0.3 * 0.045);
}

TEST(ReplicaWindow, RatesOverTheLastTenSeconds) {
  ReplicaWindow w(0);
  // 20 requests/s of 50 tokens each for 30 s; TTFT unknown for half (non-streamed).
  for (int i = 0; i < 600; ++i) w.record(i * 0.05, i % 2 ? kNaN : 0.1, 50);
  const double t = 30.0;
  w.advance(t);
  EXPECT_NEAR(w.requests_per_s(t), 20.0, 20.0 * 0.12);
  EXPECT_NEAR(w.tokens_per_s(t), 1000.0, 1000.0 * 0.12);
  EXPECT_EQ(w.ttft_samples(), 600u / 2);
  // Quiet for 15 s: nothing left in the rate window.
  w.advance(45.0);
  EXPECT_EQ(w.requests_per_s(45.0), 0.0);
  // A replica added at t = 100 that served 10 requests by t = 102 does 5/s, not 1/s.
  ReplicaWindow late(100);
  for (int i = 0; i < 10; ++i) late.record(100.0 + i * 0.2, 0.1, 1);
  late.advance(102.0);
  EXPECT_NEAR(late.requests_per_s(102.0), 5.0, 0.01);
}

TEST(ReplicaWindow, Bins) {
  EXPECT_EQ(ReplicaWindow::bin_of(0), 0);
  EXPECT_EQ(ReplicaWindow::bin_of(-1), 0);
  EXPECT_EQ(ReplicaWindow::bin_of(kNaN), 0);
  EXPECT_EQ(ReplicaWindow::bin_of(1e9), ReplicaWindow::kBins - 1);
  for (double v : {0.001, 0.0123, 0.5, 1.0, 7.7, 300.0}) {
    EXPECT_NEAR(ReplicaWindow::bin_value(ReplicaWindow::bin_of(v)) / v, 1.0, 0.045) << v;
  }
}

CompletionRecord completion(uint64_t id, double pt, double at, double pe, double ae) {
  CompletionRecord r;
  r.request_id = id;
  r.replica = 0;
  r.predicted_ttft_s = pt;
  r.actual_ttft_s = at;
  r.predicted_e2e_s = pe;
  r.actual_e2e_s = ae;
  return r;
}

TEST(CompletionLog, RingAndAccuracy) {
  CompletionLog log(4);
  EXPECT_EQ(log.size(), 0u);
  for (uint64_t i = 1; i <= 6; ++i) log.add(completion(i, 1.0, 1.0 + 0.1 * i, 2.0, 2.0));
  EXPECT_EQ(log.total(), 6u);
  EXPECT_EQ(log.size(), 4u);
  EXPECT_EQ(log.recent(0).request_id, 6u);
  EXPECT_EQ(log.recent(3).request_id, 3u);
  // The last 3: actual TTFT 1.4, 1.5, 1.6 against 1.0 predicted.
  const AccuracySummary s = summarize(log, 3);
  EXPECT_EQ(s.ttft_n, 3u);
  EXPECT_DOUBLE_EQ(s.ttft_actual_median_s, 1.5);
  EXPECT_DOUBLE_EQ(s.ttft_predicted_median_s, 1.0);
  EXPECT_NEAR(s.ttft_abs_rel_error_median, 0.5 / 1.5, 1e-12);
  EXPECT_NEAR(s.ttft_abs_rel_error_p90, 0.6 / 1.6, 1e-12);
  EXPECT_EQ(s.e2e_n, 3u);
  EXPECT_DOUBLE_EQ(s.e2e_abs_rel_error_median, 0);
  // Completions without a prediction or a first token do not count.
  log.add(completion(7, kNaN, 1.0, 2.0, 4.0));
  log.add(completion(8, 1.0, kNaN, 2.0, 4.0));
  const AccuracySummary t = summarize(log, 2);
  EXPECT_EQ(t.ttft_n, 0u);
  EXPECT_TRUE(std::isnan(t.ttft_actual_median_s));
  EXPECT_EQ(t.e2e_n, 2u);
  EXPECT_DOUBLE_EQ(t.e2e_abs_rel_error_median, 0.5);
}

DecisionRecord* add_decision(DecisionLog& log, uint64_t id, int n_candidates) {
  DecisionRecord* d = log.next();
  d->request_id = id;
  d->policy = "eta";
  d->model = "m";
  d->chosen = "http://127.0.0.1:1";
  d->candidates.resize(static_cast<size_t>(n_candidates));
  for (int i = 0; i < n_candidates; ++i) {
    d->candidates[static_cast<size_t>(i)] = {"http://127.0.0.1:" + std::to_string(i + 1),
                                             0.1 * (i + 1), 1.0 * (i + 1), 1.0 * (i + 1)};
  }
  return d;
}

TEST(Snapshot, CarriesReplicasAndOnlyNewDecisions) {
  DecisionLog decisions(100);
  CompletionLog completions(100);
  std::vector<ReplicaReport> replicas(3);
  for (size_t i = 0; i < replicas.size(); ++i) {
    replicas[i].url = "http://127.0.0.1:" + std::to_string(i + 1);
    replicas[i].ttft_p50_s = 0.1;
    replicas[i].ttft_p99_s = kNaN;
    replicas[i].requests_per_s = 2.5;
  }
  SnapshotMeta meta;
  meta.policy = "eta";
  meta.max_decisions = 2;
  StreamCursor cursor;
  for (uint64_t i = 1; i <= 5; ++i) add_decision(decisions, i, 3);
  completions.add(completion(1, 0.1, 0.2, 1.0, 1.0));

  auto parse = [](const std::string& s) { return boost::json::parse(s).as_object(); };
  boost::json::object a = parse(snapshot_json(replicas, decisions, completions, meta, cursor));
  ASSERT_EQ(a["replicas"].as_array().size(), 3u);
  const auto& r0 = a["replicas"].as_array()[0].as_object();
  EXPECT_EQ(r0.at("url").as_string(), "http://127.0.0.1:1");
  EXPECT_DOUBLE_EQ(r0.at("window").as_object().at("ttft_p50_s").as_double(), 0.1);
  EXPECT_TRUE(r0.at("window").as_object().at("ttft_p99_s").is_null());
  EXPECT_DOUBLE_EQ(r0.at("window").as_object().at("requests_per_s").as_double(), 2.5);
  // At most max_decisions, the newest, oldest first.
  const auto& d = a["decisions"].as_array();
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0].as_object().at("request_id").to_number<uint64_t>(), 4u);
  EXPECT_EQ(d[1].as_object().at("request_id").to_number<uint64_t>(), 5u);
  EXPECT_EQ(d[1].as_object().at("candidates").as_array().size(), 3u);
  EXPECT_EQ(a["decisions_total"].to_number<uint64_t>(), 5u);
  EXPECT_EQ(a["completions_new"].to_number<uint64_t>(), 1u);
  EXPECT_EQ(
      a["accuracy"].as_object()["tick"].as_object()["ttft"].as_object()["n"].to_number<uint64_t>(),
      1u);

  // Nothing new: no decisions, no completions in the tick, the replicas again.
  boost::json::object b = parse(snapshot_json(replicas, decisions, completions, meta, cursor));
  EXPECT_EQ(b["decisions"].as_array().size(), 0u);
  EXPECT_EQ(b["completions_new"].to_number<uint64_t>(), 0u);
  EXPECT_EQ(
      b["accuracy"].as_object()["tick"].as_object()["ttft"].as_object()["n"].to_number<uint64_t>(),
      0u);
  EXPECT_EQ(b["accuracy"]
                .as_object()["recent"]
                .as_object()["ttft"]
                .as_object()["n"]
                .to_number<uint64_t>(),
            1u);
  EXPECT_EQ(b["replicas"].as_array().size(), 3u);

  add_decision(decisions, 6, 1);
  boost::json::object c = parse(snapshot_json(replicas, decisions, completions, meta, cursor));
  ASSERT_EQ(c["decisions"].as_array().size(), 1u);
  EXPECT_EQ(c["decisions"].as_array()[0].as_object().at("request_id").to_number<uint64_t>(), 6u);
}

TEST(StreamQuery, ParsesAndRejects) {
  StreamParams p;
  std::string error;
  ASSERT_TRUE(parse_stream_query("", p, error));
  EXPECT_DOUBLE_EQ(p.interval_s, 0.25);
  EXPECT_EQ(p.max_decisions, 10u);
  ASSERT_TRUE(parse_stream_query("interval_ms=500&decisions=3", p, error));
  EXPECT_DOUBLE_EQ(p.interval_s, 0.5);
  EXPECT_EQ(p.max_decisions, 3u);
  EXPECT_FALSE(parse_stream_query("interval_ms=50", p, error));
  EXPECT_NE(error.find("interval_ms"), std::string::npos);
  EXPECT_FALSE(parse_stream_query("interval_ms=abc", p, error));
  EXPECT_FALSE(parse_stream_query("decisions=101", p, error));
  EXPECT_FALSE(parse_stream_query("colour=red", p, error));
  EXPECT_NE(error.find("unknown parameter 'colour'"), std::string::npos);
}

TEST(DashboardAssets, AreBuiltIn) {
  const Asset html = dashboard_asset("/dashboard");
  EXPECT_NE(html.content_type.find("text/html"), std::string_view::npos);
  EXPECT_NE(html.body.find("/dashboard/dashboard.css"), std::string_view::npos);
  EXPECT_NE(html.body.find("/dashboard/dashboard.js"), std::string_view::npos);
  EXPECT_NE(dashboard_asset("/dashboard/dashboard.js").body.find("EventSource"),
            std::string_view::npos);
  EXPECT_NE(dashboard_asset("/dashboard/dashboard.css").content_type.find("text/css"),
            std::string_view::npos);
  EXPECT_TRUE(dashboard_asset("/dashboard/other.js").body.empty());
}

// A stream client on a real socket: sends a GET and collects what arrives.
class StreamClient {
 public:
  StreamClient(uint16_t port, const std::string& target) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return;
    const std::string req = "GET " + target + " HTTP/1.1\r\nHost: x\r\n\r\n";
    (void)::send(fd_, req.data(), req.size(), MSG_NOSIGNAL);
  }
  ~StreamClient() { close(); }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  // Everything received so far (waits up to `wait` for more).
  const std::string& read(std::chrono::milliseconds wait = std::chrono::milliseconds(200)) {
    const auto deadline = std::chrono::steady_clock::now() + wait;
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
      char buf[4096];
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) break;
      data_.append(buf, static_cast<size_t>(n));
    }
    return data_;
  }
  size_t count(const std::string& needle) {
    const std::string& d = read();
    size_t n = 0;
    for (size_t p = d.find(needle); p != std::string::npos; p = d.find(needle, p + 1)) ++n;
    return n;
  }

 private:
  int fd_ = -1;
  std::string data_;
};

// DashboardStream with a real server: groups by parameters, one build per due group shared by
// its clients, clients that went away dropped, the client limit. The clock is passed in, so
// nothing here depends on timing but the loopback delivery.
TEST(DashboardStream, SharesOneBuildPerGroupAndDropsLeavers) {
  eta::http::IoThread io;
  DashboardStream hub(3);
  std::unique_ptr<eta::http::Server> server;
  std::atomic<int> added{0}, refused{0};
  io.run_sync([&] {
    server = std::make_unique<eta::http::Server>(
        io.io(), eta::http::ServerOptions{}, [&](eta::http::ExchangePtr e) {
          StreamParams params;
          std::string error;
          ASSERT_TRUE(parse_stream_query(e->request().query(), params, error)) << error;
          e->start_stream(200, "text/event-stream");
          if (hub.add(e, params, 0.0, StreamCursor{})) {
            ++added;
          } else {
            ++refused;
            e->end_stream();
          }
        });
    std::string error;
    ASSERT_TRUE(server->listen(error)) << error;
    server->start();
  });
  const uint16_t port = server->port();
  StreamClient a(port, "/s?interval_ms=100");
  StreamClient b(port, "/s?interval_ms=100");
  StreamClient c(port, "/s?interval_ms=200");
  for (int i = 0; i < 200 && added < 3; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_EQ(added.load(), 3);
  StreamClient d(port, "/s?interval_ms=100");  // over the limit of 3
  for (int i = 0; i < 200 && refused < 1; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ(refused.load(), 1);

  int builds = 0;
  auto tick = [&](double now) {
    int n = 0;
    io.run_sync([&] {
      n = hub.tick(now, [&](StreamCursor& cursor, const StreamParams& params) {
        ++builds;
        cursor.decisions += 1;  // what this group has been sent
        return "{\"build\":" + std::to_string(builds) +
               ",\"interval\":" + std::to_string(params.interval_s) +
               ",\"seq\":" + std::to_string(cursor.decisions) + "}";
      });
    });
    return n;
  };
  EXPECT_EQ(tick(0.0), 2);  // both groups are due at once
  EXPECT_EQ(builds, 2);
  EXPECT_EQ(a.count("data: {"), 1u);
  EXPECT_EQ(b.count("data: {"), 1u);
  EXPECT_EQ(c.count("data: {"), 1u);
  // a and b got the same bytes (one build).
  EXPECT_EQ(a.read(), b.read());
  EXPECT_NE(a.read().find("\"seq\":1}\n\n"), std::string::npos);
  EXPECT_EQ(tick(0.05), 0);
  double due = 0;
  io.run_sync([&] { due = hub.next_due(); });
  EXPECT_DOUBLE_EQ(due, 0.1);
  EXPECT_EQ(tick(0.1), 1);  // only the 100 ms group
  EXPECT_EQ(a.count("data: {"), 2u);
  EXPECT_EQ(c.count("data: {"), 1u);
  EXPECT_NE(a.read().find("\"seq\":2}"), std::string::npos);

  // b goes away: dropped at the next tick once the server has noticed.
  b.close();
  size_t clients = 3;
  for (int i = 0; i < 200 && clients == 3; ++i) {
    tick(0.2 + i * 0.1);
    io.run_sync([&] { clients = hub.clients(); });
  }
  EXPECT_EQ(clients, 2u);
  io.run_sync([&] {
    hub.close_all();
    EXPECT_EQ(hub.clients(), 0u);
    EXPECT_TRUE(std::isinf(hub.next_due()));
    server.reset();
  });
  io.stop();
}

}  // namespace
