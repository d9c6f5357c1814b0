// Per-event CPU of counting a relayed stream (router::StreamTokenCounter) with and without giving
// the client back its own stream (router::UsageStreamRewriter), on a 64-event chat stream with
// continuous usage cut into 4 KiB reads (docs/benchmarks.md §2, "Exact stream token counts").
// Standalone, not part of the CMake build:
//   g++ -O2 -std=c++20 -Isrc bench/stream_usage_cost.cpp src/router/sse.cpp src/openai/sse.cpp \
//       src/openai/extract.cpp src/engine/tokenizer.cpp -lsimdjson -o /tmp/stream_usage_cost
//   /tmp/stream_usage_cost
#include <chrono>
#include <cstdio>
#include <ctime>
#include <string>
#include "router/sse.hpp"
using namespace eta::router;
static std::string chunk(const std::string& c, int n) {
  return "data: "
         "{\"id\":\"chatcmpl-0123456789abcdef0123456789abcdef\",\"object\":\"chat.completion."
         "chunk\",\"created\":1796189606,\"model\":\"sim-model\",\"choices\":[{\"index\":0,"
         "\"delta\":{\"content\":\"" +
         c +
         "\"},\"logprobs\":null,\"finish_reason\":null}],\"usage\":{\"prompt_tokens\":7,\"total_"
         "tokens\":" +
         std::to_string(7 + n) + ",\"completion_tokens\":" + std::to_string(n) + "}}\n\n";
}
int main() {
  std::string s;
  for (int i = 1; i <= 64; ++i) s += chunk(" abcd", i);
  const int reps = 20000;
  for (int mode = 0; mode < 2; ++mode) {
    long sink = 0;
    timespec a{}, b{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a);
    for (int r = 0; r < reps; ++r) {
      StreamTokenCounter c;
      UsageStreamRewriter w(false, false);
      std::string out;
      for (size_t off = 0; off < s.size(); off += 4096) {  // pieces as reads deliver them
        std::string_view piece = std::string_view(s).substr(off, 4096);
        if (mode == 1) {
          out.clear();
          w.feed(piece, out);
          sink += out.size();
        }
        sink += c.feed(piece);
      }
    }
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b);
    double ns = ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / (reps * 64.0);
    std::printf("%s: %.0f ns of CPU per event (sink %ld)\n",
                mode ? "count + rewrite" : "count only", ns, sink);
  }
}
