// Model aliases: the cost of rewriting "model" in what the router relays (router/aliases.hpp).
// Per SSE event of a vLLM chat stream (one token per event, ~300 bytes), against copying the
// same bytes (what relaying an event costs without an alias), and per request body (the
// top-level "model" of a 2 KB chat request).
#include <benchmark/benchmark.h>

#include <string>

#include "router/aliases.hpp"

namespace {

using eta::router::FieldRewriter;

std::string chat_event() {
  return "data: {\"id\":\"chatcmpl-0123456789abcdef0123456789abcdef\",\"object\":"
         "\"chat.completion.chunk\",\"created\":1754812345,\"model\":\"llama-2-7b-replica-1\","
         "\"choices\":[{\"index\":0,\"delta\":{\"content\":\" Paris\"},\"logprobs\":null,"
         "\"finish_reason\":null}]}\n\n";
}

void BM_CopyEvent(benchmark::State& state) {
  const std::string event = chat_event();
  std::string out;
  for (auto _ : state) {
    out.clear();
    out.append(event);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * event.size()));
}
BENCHMARK(BM_CopyEvent);

void BM_RewriteEvent(benchmark::State& state) {
  const std::string event = chat_event();
  FieldRewriter r;
  r.reset("model", "llama-2-7b-replica-1", "llama-2-7b-chat");
  std::string out;
  for (auto _ : state) {
    out.clear();
    r.feed(event, out);
    benchmark::DoNotOptimize(out.data());
  }
  if (r.rewritten() != static_cast<int>(state.iterations())) state.SkipWithError("not rewritten");
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * event.size()));
}
BENCHMARK(BM_RewriteEvent);

void BM_RewriteRequestBody(benchmark::State& state) {
  std::string body = "{\"model\":\"llama-2-7b-chat\",\"max_tokens\":128,\"messages\":[";
  for (int i = 0; i < 8; ++i) {
    body += "{\"role\":\"user\",\"content\":\"" + std::string(220, 'x') + "\"},";
  }
  body += "{\"role\":\"user\",\"content\":\"What is the capital of France?\"}]}";
  for (auto _ : state) {
    std::string out =
        eta::router::rewrite_field(body, "model", "llama-2-7b-chat", "llama-2-7b-replica-1", true);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * body.size()));
}
BENCHMARK(BM_RewriteRequestBody);

}  // namespace
