// libFuzzer harness: the SSE framer/scanner (openai::SseScanner) and event classifier
// (openai::EventParser), which read replica streams the router does not trust.
// Properties: never crashes; the events do not depend on how the bytes were split into reads
// (the first input byte picks the split sizes); a tiny max_event_bytes bounds what is held back;
// every event classifies without crashing.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "openai/sse.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const unsigned seed = data[0];
  const std::string_view bytes(reinterpret_cast<const char*>(data) + 1, size - 1);

  std::vector<std::string> whole;
  eta::openai::SseScanner a;
  int na = a.feed(bytes, [&](std::string_view ev) { whole.emplace_back(ev); });
  if (na != static_cast<int>(whole.size())) std::abort();

  std::vector<std::string> split;
  eta::openai::SseScanner b;
  size_t pos = 0;
  unsigned step = seed % 7 + 1;
  while (pos < bytes.size()) {
    const size_t n = std::min<size_t>(step, bytes.size() - pos);
    b.feed(bytes.substr(pos, n), [&](std::string_view ev) { split.emplace_back(ev); });
    pos += n;
    step = (step * 5 + seed) % 13 + 1;
  }
  if (whole != split) std::abort();
  if (a.pending_bytes() != b.pending_bytes()) std::abort();

  eta::openai::SseScanner bounded(16);
  pos = 0;
  while (pos < bytes.size()) {
    const size_t n = std::min<size_t>(3, bytes.size() - pos);
    bounded.feed(bytes.substr(pos, n), [](std::string_view) {});
    if (bounded.pending_bytes() > 16 + 3) std::abort();
    pos += n;
  }

  eta::openai::EventParser parser;
  for (const auto& ev : whole) {
    const eta::openai::EventInfo info = parser.parse(ev);
    if (info.error_message.size() > 200) std::abort();
  }
  (void)parser.parse(bytes);
  return 0;
}
