// http::UpstreamPool against the real http::Server (each on its own IoThread) on 127.0.0.1, and
// against a scripted raw POSIX server for misbehaving upstreams.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
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

// --- what a request saw, filled on the client's io thread, read by the test thread ---

struct Recorder {
  std::mutex mu;
  std::condition_variable cv;
  bool head = false;
  int status = 0;
  std::string content_type;
  std::optional<uint64_t> content_length;
  std::vector<std::string> chunks;
  std::vector<Clock::time_point> chunk_times;
  std::string body;
  int completes = 0;
  int bodies_after_complete = 0;
  ClientResult result;
  std::function<void(std::string_view)> on_chunk;  // extra hook, runs on the io thread

  template <class Pred>
  bool wait(Pred pred, std::chrono::milliseconds timeout = 2s) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, timeout, [&] { return pred(); });
  }
  bool wait_complete(std::chrono::milliseconds timeout = 2s) {
    return wait([&] { return completes > 0; }, timeout);
  }
  bool wait_chunks(size_t n, std::chrono::milliseconds timeout = 2s) {
    return wait([&] { return chunks.size() >= n || completes > 0; }, timeout) && chunks.size() >= n;
  }
};

ResponseHandlers handlers_for(const std::shared_ptr<Recorder>& rec) {
  ResponseHandlers h;
  h.on_head = [rec](const ResponseHead& head) {
    std::lock_guard lock(rec->mu);
    rec->head = true;
    rec->status = head.status;
    rec->content_type = std::string(head.header("content-type"));
    rec->content_length = head.content_length;
    rec->cv.notify_all();
  };
  h.on_body = [rec](std::string_view data) {
    {
      std::lock_guard lock(rec->mu);
      if (rec->completes > 0) ++rec->bodies_after_complete;
      rec->chunks.emplace_back(data);
      rec->chunk_times.push_back(Clock::now());
      rec->body.append(data);
      rec->cv.notify_all();
    }
    if (rec->on_chunk) rec->on_chunk(data);
  };
  h.on_complete = [rec](const ClientResult& r) {
    std::lock_guard lock(rec->mu);
    ++rec->completes;
    rec->result = r;
    rec->cv.notify_all();
  };
  return h;
}

// --- a scripted upstream on plain POSIX sockets ---

class RawServer {
 public:
  RawServer() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    ::listen(fd_, 16);
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
  }
  ~RawServer() {
    if (thread_.joinable()) thread_.join();
    ::close(fd_);
  }
  uint16_t port() const { return port_; }

  // Runs script on a thread; the script calls accept() for each connection it expects.
  void run(std::function<void(RawServer&)> script) {
    thread_ = std::thread([this, script = std::move(script)] { script(*this); });
  }
  void join() {
    if (thread_.joinable()) thread_.join();
  }

  // Accepts one connection (or returns -1 after the timeout).
  int accept(std::chrono::milliseconds timeout = 2s) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return -1;
    ++accepted;
    return ::accept(fd_, nullptr, nullptr);
  }
  // Reads one request head (and a Content-Length body); returns it, or empty on EOF/timeout.
  static std::string read_request(int fd, std::chrono::milliseconds timeout = 2s) {
    std::string data;
    auto deadline = Clock::now() + timeout;
    while (true) {
      auto end = data.find("\r\n\r\n");
      if (end != std::string::npos) {
        size_t length = 0;
        auto cl = data.find("Content-Length: ");
        if (cl != std::string::npos && cl < end) length = std::stoul(data.substr(cl + 16));
        if (data.size() >= end + 4 + length) return data;
      }
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      pollfd p{fd, POLLIN, 0};
      if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) return {};
      char buf[4096];
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) return {};
      data.append(buf, static_cast<size_t>(n));
    }
  }
  static void send_all(int fd, std::string_view data) {
    size_t off = 0;
    while (off < data.size()) {
      ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return;
      off += static_cast<size_t>(n);
    }
  }
  // Waits until the peer closes (or the timeout); true if it closed.
  static bool wait_closed(int fd, std::chrono::milliseconds timeout = 2s) {
    auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 50) > 0) {
        char buf[256];
        if (::recv(fd, buf, sizeof buf, 0) <= 0) return true;
      }
    }
    return false;
  }

  std::atomic<int> accepted{0};

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
  std::thread thread_;
};

// --- fixture: a real Server on one IoThread, the client pool on another ---

class HttpClientTest : public ::testing::Test {
 protected:
  void start_server(Handler handler, ServerOptions options = {}) {
    server_io_.run_sync([&] {
      server_ = std::make_unique<Server>(server_io_.io(), options, std::move(handler));
      std::string error;
      ASSERT_TRUE(server_->listen(error)) << error;
      server_->start();
    });
    ASSERT_NE(server_->port(), 0);
  }
  void make_pool(uint16_t port, PoolOptions options = {}, std::string base = "") {
    std::string error;
    auto url = parse_url("http://127.0.0.1:" + std::to_string(port) + base, &error);
    ASSERT_TRUE(url) << error;
    client_io_.run_sync(
        [&] { pool_ = std::make_unique<UpstreamPool>(client_io_.io(), *url, options); });
  }
  RequestHandle send(ClientRequest request, const std::shared_ptr<Recorder>& rec) {
    RequestHandle handle;
    client_io_.run_sync([&] { handle = pool_->request(std::move(request), handlers_for(rec)); });
    return handle;
  }
  PoolStats stats() {
    PoolStats s;
    client_io_.run_sync([&] { s = pool_->stats(); });
    return s;
  }
  size_t server_connections() {
    size_t n = 0;
    server_io_.run_sync([&] { n = server_->num_connections(); });
    return n;
  }
  void TearDown() override {
    client_io_.run_sync([&] { pool_.reset(); });
    client_io_.stop();
    server_io_.run_sync([&] { server_.reset(); });
    server_io_.stop();
  }

  IoThread server_io_;
  IoThread client_io_;
  std::unique_ptr<Server> server_;
  std::unique_ptr<UpstreamPool> pool_;
};

ClientRequest post(std::string target, std::string body) {
  ClientRequest r;
  r.method = "POST";
  r.target = std::move(target);
  r.body_storage = std::move(body);
  r.headers = {{"Content-Type", "application/json"}};
  return r;
}

ClientRequest get(std::string target) {
  ClientRequest r;
  r.target = std::move(target);
  return r;
}

// ---------------------------------------------------------------------------------------------

TEST(UrlTest, ParsesGoodUrls) {
  auto u = parse_url("http://127.0.0.1:8000");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->host, "127.0.0.1");
  EXPECT_EQ(u->port, 8000);
  EXPECT_EQ(u->base_path, "");
  EXPECT_EQ(u->str(), "http://127.0.0.1:8000");

  u = parse_url("HTTP://replica-1.local:9/base/path/");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->host, "replica-1.local");
  EXPECT_EQ(u->port, 9);
  EXPECT_EQ(u->base_path, "/base/path");
  EXPECT_EQ(u->authority(), "replica-1.local:9");

  u = parse_url("http://localhost/");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->port, 80);
  EXPECT_EQ(u->base_path, "");

  u = parse_url("http://[::1]:8001");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->authority(), "[::1]:8001");
  EXPECT_FALSE(u->tls);

  u = parse_url("HTTPS://replica.example/v/");
  ASSERT_TRUE(u);
  EXPECT_TRUE(u->tls);
  EXPECT_EQ(u->port, 443);
  EXPECT_EQ(u->str(), "https://replica.example:443/v");
  u = parse_url("https://127.0.0.1:8443");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->str(), "https://127.0.0.1:8443");
}

TEST(UrlTest, TlsContextErrorsAreOneLine) {
  std::string error;
  EXPECT_TRUE(make_tls_client_context(TlsClientOptions{}, error)) << error;  // system store
  TlsClientOptions o;
  o.ca_file = "/nonexistent/ca.pem";
  EXPECT_FALSE(make_tls_client_context(o, error));
  EXPECT_EQ(error, "cannot read TLS CA file /nonexistent/ca.pem");
  o = TlsClientOptions{};
  o.cert_file = "/nonexistent/cert.pem";
  EXPECT_FALSE(make_tls_client_context(o, error));
  EXPECT_EQ(error, "a TLS client certificate needs both cert_file and key_file");
  o.ca_file = ETA_SOURCE_DIR "/README.md";  // readable, not PEM
  o.cert_file.clear();
  EXPECT_FALSE(make_tls_client_context(o, error));
  EXPECT_EQ(error.rfind("TLS CA file " ETA_SOURCE_DIR "/README.md: ", 0), 0u) << error;
}

TEST(UrlTest, RejectsBadUrlsWithOneLine) {
  for (const char* bad : {"", "localhost:8000", "https://", "ftp://h:1", "http://", "http://:80",
                          "http://h:", "http://h:0", "http://h:65536", "http://h:8a",
                          "http://h:80?x=1", "http://h:80/p#f", "http://u@h:80", "http://h h:80",
                          "http://::1:80", "http://[::1", "http://h$:80", "http://h:80\n"}) {
    std::string error;
    EXPECT_FALSE(parse_url(bad, &error)) << bad;
    EXPECT_EQ(error.rfind("bad URL '", 0), 0u) << error;
    EXPECT_EQ(error.find('\n'), std::string::npos) << error;  // one line
  }
  std::string error;
  parse_url("ftp://h:1", &error);
  EXPECT_NE(error.find("https://"), std::string::npos) << error;
  parse_url("http://h:70000", &error);
  EXPECT_NE(error.find("port"), std::string::npos) << error;
}

TEST_F(HttpClientTest, GetAndPostWithContentLength) {
  std::atomic<int> calls{0};
  std::string seen_target, seen_body, seen_host, seen_type, seen_length;
  start_server([&](ExchangePtr e) {
    ++calls;
    const auto& req = e->request();
    seen_target = req.target;
    seen_body = req.body;
    seen_host = std::string(req.header("host"));
    seen_type = std::string(req.header("content-type"));
    seen_length = std::string(req.header("content-length"));
    Response r;
    r.content_type = "text/plain";
    r.body = req.method == "POST" ? "echo:" + req.body : "hello";
    e->respond(std::move(r));
  });
  make_pool(server_->port(), {}, "/base");

  auto rec = std::make_shared<Recorder>();
  send(get("/v1/models?x=1"), rec);
  ASSERT_TRUE(rec->wait_complete());
  EXPECT_TRUE(rec->result.ok()) << rec->result.detail;
  EXPECT_TRUE(rec->result.head_received);
  EXPECT_TRUE(rec->result.connected);
  EXPECT_EQ(rec->result.status, 200);
  EXPECT_EQ(rec->status, 200);
  EXPECT_EQ(rec->content_type, "text/plain");
  EXPECT_EQ(rec->content_length, std::optional<uint64_t>(5));
  EXPECT_EQ(rec->body, "hello");
  EXPECT_EQ(seen_target, "/base/v1/models?x=1");
  EXPECT_EQ(seen_host, "127.0.0.1:" + std::to_string(server_->port()));
  EXPECT_EQ(seen_length, "");

  auto rec2 = std::make_shared<Recorder>();
  std::string body = R"({"prompt":"hi"})";
  ClientRequest p = post("/v1/completions", "");
  p.body = body;                                    // caller-owned view
  p.headers.emplace_back("Content-Length", "999");  // the client's own: dropped
  send(std::move(p), rec2);
  ASSERT_TRUE(rec2->wait_complete());
  EXPECT_TRUE(rec2->result.ok()) << rec2->result.detail;
  EXPECT_EQ(rec2->body, "echo:" + body);
  EXPECT_EQ(seen_body, body);
  EXPECT_EQ(seen_type, "application/json");
  EXPECT_EQ(seen_length, std::to_string(body.size()));
  EXPECT_EQ(rec2->completes, 1);
}

TEST_F(HttpClientTest, KeepAliveReusesOneConnection) {
  start_server([](ExchangePtr e) {
    Response r;
    r.body = "{}";
    e->respond(std::move(r));
  });
  make_pool(server_->port());
  for (int i = 0; i < 3; ++i) {
    auto rec = std::make_shared<Recorder>();
    send(i == 1 ? post("/x", "{\"a\":1}") : get("/x"), rec);
    ASSERT_TRUE(rec->wait_complete());
    EXPECT_TRUE(rec->result.ok()) << rec->result.detail;
    EXPECT_EQ(rec->body, "{}");
  }
  auto s = stats();
  EXPECT_EQ(s.requests, 3u);
  EXPECT_EQ(s.connections_opened, 1u);
  EXPECT_EQ(s.reused, 2u);
  EXPECT_EQ(s.idle, 1u);
  EXPECT_EQ(s.active, 0u);
  EXPECT_EQ(server_connections(), 1u);
}

TEST_F(HttpClientTest, HeadRequestHasNoBodyAndKeepsConnection) {
  start_server([](ExchangePtr e) {
    Response r;
    r.body = "hello";
    e->respond(std::move(r));
  });
  make_pool(server_->port());
  auto rec = std::make_shared<Recorder>();
  ClientRequest h = get("/");
  h.method = "HEAD";
  send(std::move(h), rec);
  ASSERT_TRUE(rec->wait_complete());
  EXPECT_TRUE(rec->result.ok()) << rec->result.detail;
  EXPECT_EQ(rec->body, "");
  EXPECT_EQ(rec->content_length, std::optional<uint64_t>(5));
  auto rec2 = std::make_shared<Recorder>();
  send(get("/"), rec2);
  ASSERT_TRUE(rec2->wait_complete());
  EXPECT_EQ(rec2->body, "hello");
  EXPECT_EQ(stats().connections_opened, 1u);
}

TEST_F(HttpClientTest, StreamingChunksArriveOneByOneAsWritten) {
  std::promise<ExchangePtr> got;
  start_server([&](ExchangePtr e) {
    e->start_stream(200, "text/event-stream");
    got.set_value(e);
  });
  make_pool(server_->port());
  auto rec = std::make_shared<Recorder>();
  send(post("/v1/completions", R"({"stream":true})"), rec);
  auto fut = got.get_future();
  ASSERT_EQ(fut.wait_for(2s), std::future_status::ready);
  ExchangePtr ex = fut.get();
  ASSERT_TRUE(rec->wait([&] { return rec->head; }));
  EXPECT_EQ(rec->content_type, "text/event-stream");

  constexpr int kChunks = 8;
  std::vector<std::string> sent;
  std::vector<Clock::time_point> written;
  for (int i = 0; i < kChunks; ++i) {
    std::string event = "data: {\"i\":" + std::to_string(i) + "}\n\n";
    written.push_back(Clock::now());
    server_io_.run_sync([&] { EXPECT_TRUE(ex->write(event)); });
    sent.push_back(event);
    // The client must see this chunk before the server writes the next one.
    ASSERT_TRUE(rec->wait_chunks(static_cast<size_t>(i) + 1)) << "chunk " << i << " not seen";
    std::this_thread::sleep_for(3ms);
  }
  server_io_.run_sync([&] { EXPECT_TRUE(ex->end_stream()); });
  ASSERT_TRUE(rec->wait_complete());
  EXPECT_TRUE(rec->result.ok()) << rec->result.detail;
  ASSERT_EQ(rec->chunks.size(), static_cast<size_t>(kChunks));  // one on_body per event
  for (int i = 0; i < kChunks; ++i) {
    EXPECT_EQ(rec->chunks[i], sent[i]);
    EXPECT_GE(rec->chunk_times[i], written[i]);
    if (i + 1 < kChunks) {
      EXPECT_LT(rec->chunk_times[i], written[i + 1]);
    }
  }
  server_io_.run_sync([&] { ex.reset(); });
  EXPECT_EQ(stats().idle, 1u);  // a complete chunked response leaves the connection reusable
}

TEST_F(HttpClientTest, ConnectRefusedBeforeHead) {
  // A bound socket that does not listen: connecting to it is refused.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  make_pool(ntohs(addr.sin_port));
  auto rec = std::make_shared<Recorder>();
  send(get("/health"), rec);
  ASSERT_TRUE(rec->wait_complete());
  ::close(fd);
  EXPECT_EQ(rec->result.error, ClientError::kConnectRefused) << rec->result.detail;
  EXPECT_FALSE(rec->result.connected);
  EXPECT_FALSE(rec->result.head_received);
  EXPECT_FALSE(rec->head);
  EXPECT_EQ(to_string(rec->result.error), "connect_refused");
  EXPECT_EQ(stats().active, 0u);
}

TEST_F(HttpClientTest, ServerClosingMidBodyIsAnErrorAfterHead) {
  RawServer raw;
  raw.run([](RawServer& s) {
    int c = s.accept();
    RawServer::read_request(c);
    RawServer::send_all(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789");
    std::this_thread::sleep_for(20ms);
    ::close(c);
    c = s.accept();  // the chunked variant
    RawServer::read_request(c);
    RawServer::send_all(c,
                        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                        "6\r\ndata: \r\n");
    std::this_thread::sleep_for(20ms);
    ::close(c);
  });
  make_pool(raw.port());
  for (int i = 0; i < 2; ++i) {
    auto rec = std::make_shared<Recorder>();
    send(get("/stream"), rec);
    ASSERT_TRUE(rec->wait_complete());
    EXPECT_EQ(rec->result.error, ClientError::kReset) << rec->result.detail;
    EXPECT_TRUE(rec->result.head_received);
    EXPECT_TRUE(rec->head);
    EXPECT_EQ(rec->body, i == 0 ? "0123456789" : "data: ");
    EXPECT_EQ(rec->completes, 1);
  }
  raw.join();
  EXPECT_EQ(stats().idle, 0u);
}

TEST_F(HttpClientTest, CancelMidStreamDisconnectsUpstream) {
  std::promise<void> disconnected;
  ExchangePtr held;
  start_server([&](ExchangePtr e) {
    e->on_disconnect([&] { disconnected.set_value(); });
    e->start_stream(200, "text/event-stream");
    e->write("data: first\n\n");
    held = e;
  });
  make_pool(server_->port());
  auto rec = std::make_shared<Recorder>();
  auto handle = std::make_shared<RequestHandle>();
  // Cancel from inside on_body, the hardest place: no more callbacks may follow but on_complete.
  rec->on_chunk = [handle](std::string_view) { handle->cancel(); };
  client_io_.run_sync([&] {
    *handle = pool_->request(post("/v1/completions", "{}"), handlers_for(rec));
    EXPECT_TRUE(handle->active());
  });
  ASSERT_TRUE(rec->wait_complete());
  EXPECT_EQ(rec->result.error, ClientError::kCanceled);
  EXPECT_TRUE(rec->result.head_received);
  auto fut = disconnected.get_future();
  EXPECT_EQ(fut.wait_for(2s), std::future_status::ready);  // the upstream saw the disconnect
  server_io_.run_sync([&] { EXPECT_FALSE(held->write("data: late\n\n")); });
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(rec->chunks.size(), 1u);
  EXPECT_EQ(rec->completes, 1);
  EXPECT_EQ(rec->bodies_after_complete, 0);
  client_io_.run_sync([&] {
    EXPECT_FALSE(handle->active());
    handle->cancel();  // harmless
  });
  EXPECT_EQ(stats().idle, 0u);
  server_io_.run_sync([&] { held.reset(); });
}

TEST_F(HttpClientTest, CancelBeforeHeadFromOutside) {
  std::promise<void> disconnected;
  ExchangePtr held;
  start_server([&](ExchangePtr e) {
    e->on_disconnect([&] { disconnected.set_value(); });
    held = e;  // never answered
  });
  make_pool(server_->port());
  auto rec = std::make_shared<Recorder>();
  auto handle = send(get("/slow"), rec);
  auto has_exchange = [&] {
    bool has = false;
    server_io_.run_sync([&] { has = held != nullptr; });
    return has;
  };
  for (int i = 0; i < 400 && !has_exchange(); ++i) std::this_thread::sleep_for(5ms);
  ASSERT_TRUE(has_exchange());
  client_io_.run_sync([&] {
    handle.cancel();
    EXPECT_EQ(rec->completes, 0);  // on_complete comes later, never from inside cancel()
  });
  ASSERT_TRUE(rec->wait_complete());
  EXPECT_EQ(rec->result.error, ClientError::kCanceled);
  EXPECT_FALSE(rec->result.head_received);
  EXPECT_EQ(disconnected.get_future().wait_for(2s), std::future_status::ready);
  server_io_.run_sync([&] { held.reset(); });
}

TEST_F(HttpClientTest, HeadTimeout) {
  ExchangePtr held;
  std::atomic<bool> disconnected{false};
  start_server([&](ExchangePtr e) {
    e->on_disconnect([&] { disconnected = true; });
    held = e;
  });
  make_pool(server_->port());
  auto rec = std::make_shared<Recorder>();
  ClientRequest r = get("/slow");
  r.head_timeout = 100ms;
  auto t0 = Clock::now();
  send(std::move(r), rec);
  ASSERT_TRUE(rec->wait_complete());
  auto took = Clock::now() - t0;
  EXPECT_EQ(rec->result.error, ClientError::kTimeout) << rec->result.detail;
  EXPECT_TRUE(rec->result.connected);
  EXPECT_FALSE(rec->result.head_received);
  EXPECT_GE(took, 100ms);
  EXPECT_LT(took, 1s);
  for (int i = 0; i < 200 && !disconnected; ++i) std::this_thread::sleep_for(5ms);
  EXPECT_TRUE(disconnected);
  server_io_.run_sync([&] { held.reset(); });
}

TEST_F(HttpClientTest, IdleTimeoutAfterHead) {
  ExchangePtr held;
  start_server([&](ExchangePtr e) {
    e->start_stream(200, "text/event-stream");
    e->write("data: one\n\n");
    held = e;
  });
  make_pool(server_->port());
  auto rec = std::make_shared<Recorder>();
  ClientRequest r = post("/v1/completions", "{}");
  r.head_timeout = 50ms;   // met: the head comes at once
  r.idle_timeout = 100ms;  // then nothing more
  send(std::move(r), rec);
  ASSERT_TRUE(rec->wait_complete());
  EXPECT_EQ(rec->result.error, ClientError::kTimeout) << rec->result.detail;
  EXPECT_TRUE(rec->result.head_received);
  EXPECT_EQ(rec->body, "data: one\n\n");
  server_io_.run_sync([&] { held.reset(); });
}

TEST_F(HttpClientTest, TotalTimeoutAndConnectTimeoutIgnoredWhenMet) {
  start_server([](ExchangePtr e) { e->respond(Response{}); });
  PoolOptions o;
  o.connect_timeout = 1000ms;
  make_pool(server_->port(), o);
  auto rec = std::make_shared<Recorder>();
  ClientRequest r = get("/");
  r.total_timeout = 1000ms;
  r.idle_timeout = 1000ms;
  r.head_timeout = 1000ms;
  send(std::move(r), rec);
  ASSERT_TRUE(rec->wait_complete());
  EXPECT_TRUE(rec->result.ok()) << rec->result.detail;
}

TEST_F(HttpClientTest, TooLargeBodies) {
  ExchangePtr held;
  start_server([&](ExchangePtr e) {
    if (e->request().path() == "/metrics") {
      Response r;
      r.content_type = "text/plain";
      r.body = std::string(1000, 'm');
      e->respond(std::move(r));
      return;
    }
    e->start_stream(200, "text/event-stream");
    e->write(std::string(30, 'a'));
    e->write(std::string(30, 'b'));
    held = e;
  });
  make_pool(server_->port());

  std::promise<std::tuple<int, std::string, ClientResult>> done;
  client_io_.run_sync([&] {
    pool_->get("/metrics", 100, 1s, [&](int status, std::string body, const ClientResult& r) {
      done.set_value({status, std::move(body), r});
    });
  });
  auto fut = done.get_future();
  ASSERT_EQ(fut.wait_for(2s), std::future_status::ready);
  auto [status, body, result] = fut.get();
  EXPECT_EQ(result.error, ClientError::kTooLarge) << result.detail;
  EXPECT_EQ(status, 200);  // the head said so, before its body was refused

  // A chunked stream going over the limit: error after head.
  auto rec = std::make_shared<Recorder>();
  ClientRequest r = post("/v1/completions", "{}");
  r.max_body_bytes = 50;
  send(std::move(r), rec);
  ASSERT_TRUE(rec->wait_complete());
  EXPECT_EQ(rec->result.error, ClientError::kTooLarge) << rec->result.detail;
  EXPECT_TRUE(rec->result.head_received);
  EXPECT_EQ(rec->body, std::string(30, 'a'));
  server_io_.run_sync([&] { held.reset(); });

  // Within the limit, get() collects the body.
  std::promise<std::pair<int, std::string>> ok;
  client_io_.run_sync([&] {
    pool_->get("/metrics", 4096, 1s, [&](int s, std::string b, const ClientResult& res) {
      EXPECT_TRUE(res.ok()) << res.detail;
      ok.set_value({s, std::move(b)});
    });
  });
  auto okf = ok.get_future();
  ASSERT_EQ(okf.wait_for(2s), std::future_status::ready);
  auto [s2, b2] = okf.get();
  EXPECT_EQ(s2, 200);
  EXPECT_EQ(b2, std::string(1000, 'm'));
}

TEST_F(HttpClientTest, StalePooledConnectionIsRetriedOnce) {
  RawServer raw;
  raw.run([](RawServer& s) {
    int c = s.accept();
    RawServer::read_request(c);
    RawServer::send_all(c, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\none");
    RawServer::read_request(c);  // the second request on this connection: close, no answer
    ::close(c);
    c = s.accept();
    RawServer::read_request(c);
    RawServer::send_all(c, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\ntwo");
    RawServer::wait_closed(c, 500ms);
    ::close(c);
  });
  make_pool(raw.port());
  auto rec = std::make_shared<Recorder>();
  send(get("/a"), rec);
  ASSERT_TRUE(rec->wait_complete());
  EXPECT_EQ(rec->body, "one");
  auto rec2 = std::make_shared<Recorder>();
  send(post("/b", "{}"), rec2);
  ASSERT_TRUE(rec2->wait_complete());
  EXPECT_TRUE(rec2->result.ok()) << rec2->result.detail;
  EXPECT_EQ(rec2->body, "two");
  auto s = stats();
  EXPECT_EQ(s.retried, 1u);
  EXPECT_EQ(s.connections_opened, 2u);
  client_io_.run_sync([&] { pool_->close_idle(); });
  raw.join();
}

TEST_F(HttpClientTest, IdleConnectionClosedByServerIsDropped) {
  ServerOptions so;
  so.idle_timeout = 50ms;
  start_server([](ExchangePtr e) { e->respond(Response{}); }, so);
  make_pool(server_->port());
  auto rec = std::make_shared<Recorder>();
  send(get("/"), rec);
  ASSERT_TRUE(rec->wait_complete());
  EXPECT_EQ(stats().idle, 1u);
  for (int i = 0; i < 200 && stats().idle != 0; ++i) std::this_thread::sleep_for(5ms);
  EXPECT_EQ(stats().idle, 0u);  // the pool noticed the server's close while idle
  auto rec2 = std::make_shared<Recorder>();
  send(get("/"), rec2);
  ASSERT_TRUE(rec2->wait_complete());
  EXPECT_TRUE(rec2->result.ok()) << rec2->result.detail;
  auto s = stats();
  EXPECT_EQ(s.connections_opened, 2u);
  EXPECT_EQ(s.retried, 0u);
}

TEST_F(HttpClientTest, ConnectionCloseAndCloseDelimitedBodies) {
  RawServer raw;
  raw.run([](RawServer& s) {
    int c = s.accept();
    RawServer::read_request(c);
    RawServer::send_all(c, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nhi");
    RawServer::wait_closed(c);
    ::close(c);
    c = s.accept();
    RawServer::read_request(c);
    RawServer::send_all(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil ");
    std::this_thread::sleep_for(10ms);
    RawServer::send_all(c, "eof");
    ::close(c);
  });
  make_pool(raw.port());
  auto rec = std::make_shared<Recorder>();
  send(get("/"), rec);
  ASSERT_TRUE(rec->wait_complete());
  EXPECT_TRUE(rec->result.ok()) << rec->result.detail;
  EXPECT_EQ(rec->body, "hi");
  EXPECT_EQ(stats().idle, 0u);
  auto rec2 = std::make_shared<Recorder>();
  send(get("/"), rec2);
  ASSERT_TRUE(rec2->wait_complete());
  EXPECT_TRUE(rec2->result.ok()) << rec2->result.detail;
  EXPECT_EQ(rec2->body, "until eof");
  EXPECT_EQ(rec2->chunks.size(), 2u);
  raw.join();
  EXPECT_EQ(stats().connections_opened, 2u);
  EXPECT_EQ(stats().idle, 0u);
}

TEST_F(HttpClientTest, ChunkExtensionsTrailersAndInterimResponses) {
  RawServer raw;
  raw.run([](RawServer& s) {
    int c = s.accept();
    RawServer::read_request(c);
    RawServer::send_all(c,
                        "HTTP/1.1 100 Continue\r\n\r\n"
                        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                        "5;ext=1\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\nX-Trailer: t\r\n\r\n");
    RawServer::read_request(c);  // reused for the next request
    RawServer::send_all(c, "HTTP/1.1 204 No Content\r\n\r\n");
    RawServer::wait_closed(c);
    ::close(c);
  });
  make_pool(raw.port());
  auto rec = std::make_shared<Recorder>();
  send(get("/"), rec);
  ASSERT_TRUE(rec->wait_complete());
  EXPECT_TRUE(rec->result.ok()) << rec->result.detail;
  EXPECT_EQ(rec->status, 200);
  EXPECT_EQ(rec->body, "hello world");
  EXPECT_EQ(rec->chunks.size(), 3u);
  auto rec2 = std::make_shared<Recorder>();
  send(get("/"), rec2);
  ASSERT_TRUE(rec2->wait_complete());
  EXPECT_TRUE(rec2->result.ok()) << rec2->result.detail;
  EXPECT_EQ(rec2->status, 204);
  EXPECT_EQ(stats().connections_opened, 1u);
  client_io_.run_sync([&] { pool_->close_idle(); });
  raw.join();
}

TEST_F(HttpClientTest, ProtocolErrorAndEarlyClose) {
  RawServer raw;
  raw.run([](RawServer& s) {
    int c = s.accept();
    RawServer::read_request(c);
    RawServer::send_all(c, "SPDY/9 what\r\n\r\n");
    RawServer::wait_closed(c);
    ::close(c);
    c = s.accept();
    RawServer::read_request(c);
    ::close(c);  // closes before any response byte
  });
  make_pool(raw.port());
  auto rec = std::make_shared<Recorder>();
  send(get("/"), rec);
  ASSERT_TRUE(rec->wait_complete());
  EXPECT_EQ(rec->result.error, ClientError::kProtocolError) << rec->result.detail;
  EXPECT_FALSE(rec->result.head_received);
  auto rec2 = std::make_shared<Recorder>();
  send(get("/"), rec2);
  ASSERT_TRUE(rec2->wait_complete());
  EXPECT_EQ(rec2->result.error, ClientError::kReset) << rec2->result.detail;
  EXPECT_TRUE(rec2->result.connected);
  EXPECT_FALSE(rec2->result.head_received);
  raw.join();
}

TEST_F(HttpClientTest, EarlyAnswerToALargeBodyIsDelivered) {
  // The real server refuses the body with 413 (and drains it before closing).
  ServerOptions so;
  so.max_body_bytes = 1000;
  start_server([](ExchangePtr e) { e->respond(Response{}); }, so);
  make_pool(server_->port());
  auto rec = std::make_shared<Recorder>();
  send(post("/v1/completions", std::string(2u << 20, 'x')), rec);
  ASSERT_TRUE(rec->wait_complete());
  EXPECT_TRUE(rec->result.ok()) << rec->result.detail;
  EXPECT_EQ(rec->status, 413);
  EXPECT_EQ(stats().idle, 0u);

  // A raw upstream answers without reading the body at all and keeps the connection open: the
  // response is complete although the request write never finishes; the connection is dropped.
  RawServer raw;
  raw.run([](RawServer& s) {
    int c = s.accept();
    std::string head;
    char ch;
    while (head.find("\r\n\r\n") == std::string::npos && ::recv(c, &ch, 1, 0) == 1) head += ch;
    RawServer::send_all(c, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnope");
    std::this_thread::sleep_for(100ms);  // not reading
    ::close(c);
  });
  std::string error;
  auto url = parse_url("http://127.0.0.1:" + std::to_string(raw.port()), &error);
  ASSERT_TRUE(url) << error;
  std::unique_ptr<UpstreamPool> pool;
  auto rec2 = std::make_shared<Recorder>();
  client_io_.run_sync([&] {
    pool = std::make_unique<UpstreamPool>(client_io_.io(), *url);
    pool->request(post("/", std::string(32u << 20, 'y')), handlers_for(rec2));
  });
  ASSERT_TRUE(rec2->wait_complete());
  EXPECT_TRUE(rec2->result.ok()) << rec2->result.detail;
  EXPECT_EQ(rec2->body, "nope");
  client_io_.run_sync([&] {
    EXPECT_EQ(pool->stats().idle, 0u);
    pool.reset();
  });
  raw.join();
}

TEST_F(HttpClientTest, ConcurrentRequestsAndBoundedIdle) {
  start_server([](ExchangePtr e) {
    Response r;
    r.body = std::string(e->request().target);
    e->respond(std::move(r));
  });
  PoolOptions o;
  o.max_idle_connections = 4;
  make_pool(server_->port(), o);
  constexpr int kN = 40;
  std::vector<std::shared_ptr<Recorder>> recs;
  client_io_.run_sync([&] {
    for (int i = 0; i < kN; ++i) {
      recs.push_back(std::make_shared<Recorder>());
      pool_->request(get("/r" + std::to_string(i)), handlers_for(recs.back()));
    }
  });
  for (int i = 0; i < kN; ++i) {
    ASSERT_TRUE(recs[i]->wait_complete());
    EXPECT_TRUE(recs[i]->result.ok()) << recs[i]->result.detail;
    EXPECT_EQ(recs[i]->body, "/r" + std::to_string(i));
  }
  auto s = stats();
  EXPECT_EQ(s.connections_opened, static_cast<uint64_t>(kN));
  EXPECT_EQ(s.idle, 4u);
  EXPECT_EQ(s.active, 0u);
}

TEST_F(HttpClientTest, DestroyingThePoolDropsRequestsSilently) {
  ExchangePtr held;
  start_server([&](ExchangePtr e) {
    e->start_stream(200, "text/event-stream");
    e->write("data: x\n\n");
    held = e;
  });
  make_pool(server_->port());
  auto rec = std::make_shared<Recorder>();
  send(post("/", "{}"), rec);
  ASSERT_TRUE(rec->wait_chunks(1));
  client_io_.run_sync([&] { pool_.reset(); });
  server_io_.run_sync([&] { held->write("data: y\n\n"); });
  std::this_thread::sleep_for(30ms);
  client_io_.run_sync([] {});
  EXPECT_EQ(rec->completes, 0);
  EXPECT_EQ(rec->chunks.size(), 1u);
  server_io_.run_sync([&] { held.reset(); });
}

TEST_F(HttpClientTest, ResolvesHostNames) {
  start_server([](ExchangePtr e) {
    Response r;
    r.body = "named";
    e->respond(std::move(r));
  });
  auto url = parse_url("http://localhost:" + std::to_string(server_->port()));
  ASSERT_TRUE(url);
  client_io_.run_sync([&] { pool_ = std::make_unique<UpstreamPool>(client_io_.io(), *url); });
  auto rec = std::make_shared<Recorder>();
  send(get("/"), rec);
  ASSERT_TRUE(rec->wait_complete());
  // localhost may resolve to ::1 first; the server listens on 127.0.0.1 only, so the client
  // must fall through to the next address.
  EXPECT_TRUE(rec->result.ok()) << rec->result.detail;
  EXPECT_EQ(rec->body, "named");
}

}  // namespace
}  // namespace eta::http
