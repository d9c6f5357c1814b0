// The router's core is pure: no file of the eta_router_core library includes Asio or Beast (the
// build enforces the link: this binary links eta_router_core alone; this test the includes,
// which Boost's include path would otherwise let through).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace {

std::vector<std::filesystem::path> core_sources() {
  const std::filesystem::path src = std::filesystem::path(ETA_SOURCE_DIR) / "src";
  std::vector<std::filesystem::path> out;
  for (const auto& e : std::filesystem::directory_iterator(src / "router" / "core")) {
    out.push_back(e.path());
  }
  // The pure files of src/router/ built into the core (CMakeLists.txt, ETA_ROUTER_PURE_SRC).
  for (const char* f : {"aliases", "decision_log", "features", "headers", "rate_limit",
                        "replica_state", "router_metrics", "routes", "sse", "window_stats"}) {
    out.push_back(src / "router" / (std::string(f) + ".cpp"));
    out.push_back(src / "router" / (std::string(f) + ".hpp"));
  }
  out.push_back(src / "http" / "message.hpp");
  out.push_back(src / "http" / "message.cpp");
  return out;
}

TEST(CorePurity, NoNetworkingHeaders) {
  const std::vector<std::filesystem::path> files = core_sources();
  ASSERT_GT(files.size(), 30u);
  for (const auto& path : files) {
    std::ifstream in(path);
    ASSERT_TRUE(in) << path;
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("#include", 0) != 0) continue;
      EXPECT_EQ(line.find("boost/asio"), std::string::npos) << path << ": " << line;
      EXPECT_EQ(line.find("boost/beast"), std::string::npos) << path << ": " << line;
      EXPECT_EQ(line.find("http/server.hpp"), std::string::npos) << path << ": " << line;
      EXPECT_EQ(line.find("http/client.hpp"), std::string::npos) << path << ": " << line;
      EXPECT_EQ(line.find("zmq"), std::string::npos) << path << ": " << line;
      EXPECT_EQ(line.find("nats"), std::string::npos) << path << ": " << line;
    }
  }
}

}  // namespace
