// http::Server over real sockets on 127.0.0.1, with a plain blocking POSIX client.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "http/server.hpp"

namespace eta::http {
namespace {

using namespace std::chrono_literals;

class RawClient {
 public:
  explicit RawClient(uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  }
  ~RawClient() { close(); }
  bool connected() const { return connected_; }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  void send(const std::string& data) {
    size_t off = 0;
    while (off < data.size()) {
      ssize_t n = ::send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return;
      off += static_cast<size_t>(n);
    }
  }
  // Reads until `needle` is in the received bytes, EOF, or the timeout.
  std::string read_until(const std::string& needle, std::chrono::milliseconds timeout = 3s) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (buffer_.find(needle) == std::string::npos) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
      char buf[4096];
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) {
        eof_ = true;
        break;
      }
      buffer_.append(buf, static_cast<size_t>(n));
    }
    return buffer_;
  }
  // Reads one complete response with Content-Length; removes it from the buffer.
  std::string read_response() {
    read_until("\r\n\r\n");
    auto head_end = buffer_.find("\r\n\r\n");
    if (head_end == std::string::npos) return {};
    size_t length = 0;
    auto cl = buffer_.find("Content-Length: ");
    if (cl != std::string::npos && cl < head_end) length = std::stoul(buffer_.substr(cl + 16));
    size_t total = head_end + 4 + length;
    while (buffer_.size() < total && !eof_) {
      std::string before = buffer_;
      read_until(std::string(1, '\x01'), 200ms);  // read more
      if (buffer_ == before) break;
    }
    std::string r = buffer_.substr(0, std::min(total, buffer_.size()));
    buffer_.erase(0, r.size());
    return r;
  }
  bool eof() const { return eof_; }

 private:
  int fd_ = -1;
  bool connected_ = false;
  bool eof_ = false;
  std::string buffer_;
};

std::string body_of(const std::string& response) {
  auto p = response.find("\r\n\r\n");
  return p == std::string::npos ? std::string() : response.substr(p + 4);
}

class ServerTest : public ::testing::Test {
 protected:
  void start(ServerOptions options, Handler handler) {
    io_.run_sync([&] {
      server_ = std::make_unique<Server>(io_.io(), options, std::move(handler));
      std::string error;
      ASSERT_TRUE(server_->listen(error)) << error;
      server_->start();
    });
    ASSERT_NE(server_->port(), 0);
  }
  void TearDown() override {
    io_.run_sync([&] { server_.reset(); });
    io_.stop();
  }

  IoThread io_;
  std::unique_ptr<Server> server_;
};

TEST_F(ServerTest, FullResponseKeepAliveAndRoutes) {
  auto routes = std::make_shared<Routes>();
  routes->add("GET", "/hello", [](ExchangePtr e) {
    Response r;
    r.content_type = "text/plain";
    r.body = "hi " + std::string(e->request().header("x-name"));
    e->respond(std::move(r));
  });
  start({}, [routes](ExchangePtr e) { routes->dispatch(e); });

  RawClient c(server_->port());
  ASSERT_TRUE(c.connected());
  c.send("GET /hello?x=1 HTTP/1.1\r\nHost: a\r\nX-Name: bob\r\n\r\n");
  std::string r1 = c.read_response();
  EXPECT_EQ(r1.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << r1;
  EXPECT_NE(r1.find("Content-Type: text/plain\r\n"), std::string::npos);
  EXPECT_EQ(body_of(r1), "hi bob");

  // Same connection: keep-alive, then 404 and 405 with the nested error body.
  c.send("GET /nope HTTP/1.1\r\nHost: a\r\n\r\n");
  std::string r2 = c.read_response();
  EXPECT_EQ(r2.rfind("HTTP/1.1 404 ", 0), 0u) << r2;
  EXPECT_EQ(body_of(r2),
            R"({"error":{"message":"Not Found","type":"NotFoundError","param":null,"code":404}})");
  c.send("POST /hello HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n");
  std::string r3 = c.read_response();
  EXPECT_EQ(r3.rfind("HTTP/1.1 405 ", 0), 0u) << r3;
  EXPECT_NE(r3.find("Allow: GET\r\n"), std::string::npos);
}

TEST_F(ServerTest, ConnectionCloseClosesAfterResponse) {
  start({}, [](ExchangePtr e) { e->respond(Response{}); });
  RawClient c(server_->port());
  c.send("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
  std::string r = c.read_until("never-there", 2s);
  EXPECT_TRUE(c.eof());
  EXPECT_NE(r.find("Connection: close\r\n"), std::string::npos);
}

TEST_F(ServerTest, StreamingChunksArriveAsWritten) {
  std::shared_ptr<Exchange> held;
  std::atomic<bool> got{false};
  start({}, [&](ExchangePtr e) {
    e->start_stream(200, "text/event-stream");
    e->write("data: one\n\n");
    held = e;
    got = true;
  });
  RawClient c(server_->port());
  c.send("POST /s HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n{}");
  std::string r = c.read_until("data: one\n\n\r\n");
  EXPECT_NE(r.find("Transfer-Encoding: chunked\r\n"), std::string::npos) << r;
  EXPECT_NE(r.find("b\r\ndata: one\n\n\r\n"), std::string::npos) << r;
  ASSERT_TRUE(got);
  io_.run_sync([&] { held->write("data: two\n\n"); });
  r = c.read_until("data: two\n\n\r\n");
  EXPECT_NE(r.find("data: two"), std::string::npos);
  io_.run_sync([&] { EXPECT_TRUE(held->end_stream()); });
  r = c.read_until("0\r\n\r\n");
  EXPECT_NE(r.find("0\r\n\r\n"), std::string::npos);
  // finished() turns true once the write completion has run on the server.
  bool finished = false;
  for (int i = 0; i < 200 && !finished; ++i) {
    io_.run_sync([&] { finished = held->finished(); });
    if (!finished) std::this_thread::sleep_for(5ms);
  }
  EXPECT_TRUE(finished);
  io_.run_sync([&] {
    EXPECT_FALSE(held->write("late"));
    held.reset();
  });
}

TEST_F(ServerTest, DisconnectIsReportedWhileResponsePending) {
  std::shared_ptr<Exchange> held;
  std::atomic<int> disconnects{0};
  start({}, [&](ExchangePtr e) {
    e->on_disconnect([&] { ++disconnects; });
    held = e;  // never answered
  });
  {
    RawClient c(server_->port());
    c.send("GET /slow HTTP/1.1\r\nHost: a\r\n\r\n");
    for (int i = 0; i < 100 && !held; ++i) std::this_thread::sleep_for(5ms);
  }  // closes the socket
  for (int i = 0; i < 200 && disconnects == 0; ++i) std::this_thread::sleep_for(5ms);
  EXPECT_EQ(disconnects, 1);
  io_.run_sync([&] {
    EXPECT_TRUE(held->disconnected());
    EXPECT_FALSE(held->write("x"));
    held.reset();
  });
}

TEST_F(ServerTest, BodyAndHeaderLimits) {
  ServerOptions o;
  o.max_body_bytes = 100;
  o.max_header_bytes = 1024;
  start(o, [](ExchangePtr e) { e->respond(Response{}); });
  {
    RawClient c(server_->port());
    c.send("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 200\r\n\r\n" + std::string(200, 'x'));
    std::string r = c.read_response();
    EXPECT_EQ(r.rfind("HTTP/1.1 413 ", 0), 0u) << r;
    EXPECT_NE(body_of(r).find("\"code\":413"), std::string::npos);
  }
  {
    RawClient c(server_->port());
    c.send("GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + std::string(2000, 'y') + "\r\n\r\n");
    std::string r = c.read_response();
    EXPECT_EQ(r.rfind("HTTP/1.1 431 ", 0), 0u) << r;
  }
  {
    RawClient c(server_->port());
    c.send("NOT HTTP AT ALL\r\n\r\n");
    std::string r = c.read_response();
    EXPECT_EQ(r.rfind("HTTP/1.1 400 ", 0), 0u) << r;
  }
}

TEST_F(ServerTest, DroppedExchangeClosesConnection) {
  start({}, [](ExchangePtr) {});  // drops it without an answer
  RawClient c(server_->port());
  c.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
  c.read_until("never-there", 2s);
  EXPECT_TRUE(c.eof());
}

TEST_F(ServerTest, IdleTimeoutClosesConnection) {
  ServerOptions o;
  o.idle_timeout = 100ms;
  start(o, [](ExchangePtr e) { e->respond(Response{}); });
  RawClient c(server_->port());
  auto t0 = std::chrono::steady_clock::now();
  c.read_until("never-there", 2s);
  EXPECT_TRUE(c.eof());
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);
}

TEST(RequestTest, PathQueryHeaders) {
  Request r;
  r.target = "/v1/models?a=b";
  r.headers = {{"Content-Type", "application/json"}};
  EXPECT_EQ(r.path(), "/v1/models");
  EXPECT_EQ(r.query(), "a=b");
  EXPECT_EQ(r.header("content-type"), "application/json");
  EXPECT_TRUE(r.has_header("CONTENT-TYPE"));
  EXPECT_EQ(r.header("x"), "");
}

}  // namespace
}  // namespace eta::http
