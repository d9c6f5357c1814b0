// bench/sse.hpp: SSE event splitting however the bytes are split into reads, the classification
// of OpenAI streaming events (with the simulator's own chunk writers), and per-request timing.
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "bench/sse.hpp"
#include "openai/response.hpp"

namespace eta::bench {
namespace {

std::vector<std::string> feed_all(SseScanner& s, const std::vector<std::string_view>& pieces) {
  std::vector<std::string> events;
  for (std::string_view p : pieces) {
    s.feed(p, [&](std::string_view data) { events.emplace_back(data); });
  }
  return events;
}

std::string sse(std::string_view json) {
  return "data: " + std::string(json) + "\n\n";
}

// A chat stream as `eta vllm-sim` writes it: role chunk, two content chunks (the last with its
// finish_reason), the usage chunk and [DONE].
std::string chat_stream() {
  openai::ResponseMeta meta{"chatcmpl-0123", 1700000000, "m"};
  openai::Finish fin{"length", ""};
  openai::Usage usage;
  usage.prompt_tokens = 7;
  usage.completion_tokens = 2;
  return sse(openai::chat_role_chunk(meta)) + sse(openai::chat_chunk(meta, " wab")) +
         sse(openai::chat_chunk(meta, " wcd", &fin)) +
         sse(openai::usage_chunk(openai::Endpoint::kChat, meta, usage)) + "data: [DONE]\n\n";
}

TEST(SseScannerTest, SplitsEventsInOneRead) {
  SseScanner s;
  auto events = feed_all(s, {"data: a\n\ndata: {\"x\":1}\n\ndata: [DONE]\n\n"});
  EXPECT_EQ(events, (std::vector<std::string>{"a", "{\"x\":1}", "[DONE]"}));
  EXPECT_EQ(s.pending_bytes(), 0u);
}

TEST(SseScannerTest, EverySplitPointGivesTheSameEvents) {
  const std::string stream = chat_stream();
  SseScanner whole;
  const auto expected = feed_all(whole, {stream});
  ASSERT_EQ(expected.size(), 5u);
  EXPECT_EQ(expected.back(), "[DONE]");
  for (size_t cut = 0; cut <= stream.size(); ++cut) {
    SseScanner s;
    auto got = feed_all(
        s, {std::string_view(stream).substr(0, cut), std::string_view(stream).substr(cut)});
    EXPECT_EQ(got, expected) << "cut at " << cut;
    EXPECT_EQ(s.pending_bytes(), 0u);
  }
}

TEST(SseScannerTest, ByteByByte) {
  const std::string stream = chat_stream();
  SseScanner whole;
  const auto expected = feed_all(whole, {stream});
  SseScanner s;
  std::vector<std::string> got;
  int reported = 0;
  for (char c : stream) {
    reported += s.feed(std::string_view(&c, 1), [&](std::string_view d) { got.emplace_back(d); });
  }
  EXPECT_EQ(got, expected);
  EXPECT_EQ(reported, 5);
}

TEST(SseScannerTest, EventCompletesOnlyAtTheBlankLine) {
  SseScanner s;
  std::vector<std::string> got;
  auto cb = [&](std::string_view d) { got.emplace_back(d); };
  EXPECT_EQ(s.feed("data: {\"a\":", cb), 0);
  EXPECT_EQ(s.feed("1}\n", cb), 0);
  EXPECT_GT(s.pending_bytes(), 0u);
  EXPECT_EQ(s.feed("\n", cb), 1);
  EXPECT_EQ(got, (std::vector<std::string>{"{\"a\":1}"}));
  EXPECT_EQ(s.pending_bytes(), 0u);
}

TEST(SseScannerTest, LineEndings) {
  for (const std::string stream :
       {"data: one\r\n\r\ndata: two\r\n\r\n", "data: one\r\rdata: two\r\r",
        "data: one\n\ndata: two\r\n\r\n"}) {
    for (size_t cut = 0; cut <= stream.size(); ++cut) {
      SseScanner s;
      auto got = feed_all(
          s, {std::string_view(stream).substr(0, cut), std::string_view(stream).substr(cut)});
      EXPECT_EQ(got, (std::vector<std::string>{"one", "two"})) << "cut " << cut;
    }
  }
}

TEST(SseScannerTest, MultiLineDataCommentsAndOtherFields) {
  SseScanner s;
  auto got = feed_all(s, {": keep-alive\n\nevent: message\nid: 3\ndata: first\ndata:second\n\n"
                          "retry: 10\n\ndata:\n\n"});
  // The comment-only and retry-only events have no data; "data:" alone is an empty event.
  EXPECT_EQ(got, (std::vector<std::string>{"first\nsecond", ""}));
}

TEST(SseScannerTest, ResetDropsAnUnfinishedEvent) {
  SseScanner s;
  auto got = feed_all(s, {"data: half"});
  EXPECT_TRUE(got.empty());
  s.reset();
  got = feed_all(s, {"data: whole\n\n"});
  EXPECT_EQ(got, (std::vector<std::string>{"whole"}));
}

// ---- classification --------------------------------------------------------------------------

class EventParserTest : public ::testing::Test {
 protected:
  EventParser parser_;
  openai::ResponseMeta meta_{"cmpl-0123", 1700000000, "m"};
};

TEST_F(EventParserTest, CompletionChunks) {
  EXPECT_EQ(parser_.parse(openai::completion_chunk(meta_, " wab")).kind, EventKind::kToken);
  // The last chunk carries the last token and its finish_reason.
  openai::Finish fin{"stop", ""};
  EXPECT_EQ(parser_.parse(openai::completion_chunk(meta_, " wab", &fin)).kind, EventKind::kToken);
  // A finish chunk whose token decodes to nothing (EOS) is still a token.
  EXPECT_EQ(parser_.parse(openai::completion_chunk(meta_, "", &fin)).kind, EventKind::kToken);
  // An empty chunk without a finish is not.
  EXPECT_EQ(parser_.parse(openai::completion_chunk(meta_, "")).kind, EventKind::kRole);
}

TEST_F(EventParserTest, ChatChunks) {
  EXPECT_EQ(parser_.parse(openai::chat_role_chunk(meta_)).kind, EventKind::kRole);
  EXPECT_EQ(parser_.parse(openai::chat_chunk(meta_, " wab")).kind, EventKind::kToken);
  EXPECT_EQ(parser_.parse(R"({"choices":[{"index":0,"delta":{"reasoning_content":"hm"}}]})").kind,
            EventKind::kToken);
  EXPECT_EQ(parser_
                .parse(R"({"choices":[{"index":0,"delta":{"content":null},
              "finish_reason":null}]})")
                .kind,
            EventKind::kRole);
}

TEST_F(EventParserTest, UsageChunks) {
  openai::Usage usage;
  usage.prompt_tokens = 12;
  usage.completion_tokens = 34;
  EventInfo info = parser_.parse(openai::usage_chunk(openai::Endpoint::kCompletions, meta_, usage));
  EXPECT_EQ(info.kind, EventKind::kUsage);
  EXPECT_EQ(info.prompt_tokens, 12);
  EXPECT_EQ(info.completion_tokens, 34);
  // continuous_usage_stats: usage on a token chunk.
  info = parser_.parse(openai::chat_chunk(meta_, " wab", nullptr, &usage));
  EXPECT_EQ(info.kind, EventKind::kToken);
  EXPECT_EQ(info.completion_tokens, 34);
}

TEST_F(EventParserTest, ErrorsDoneAndJunk) {
  EventInfo info = parser_.parse(
      R"({"error":{"message":"engine died","type":"InternalServerError","param":null,"code":500}})");
  EXPECT_EQ(info.kind, EventKind::kError);
  EXPECT_EQ(info.error_message, "engine died");
  info =
      parser_.parse(R"({"object":"error","message":"flat","type":"BadRequestError","code":400})");
  EXPECT_EQ(info.kind, EventKind::kError);
  EXPECT_EQ(info.error_message, "flat");
  EXPECT_EQ(parser_.parse("[DONE]").kind, EventKind::kDone);
  EXPECT_EQ(parser_.parse("{\"choices\":[{\"text\":\"a\"").kind, EventKind::kMalformed);
  EXPECT_EQ(parser_.parse("not json").kind, EventKind::kMalformed);
  EXPECT_EQ(parser_.parse("[1,2]").kind, EventKind::kMalformed);
  EXPECT_EQ(parser_.parse("{}").kind, EventKind::kOther);
}

TEST_F(EventParserTest, ReusesItsBufferForLongAndShortEvents) {
  std::string long_text(5000, 'a');
  EXPECT_EQ(parser_.parse(openai::completion_chunk(meta_, long_text)).kind, EventKind::kToken);
  EXPECT_EQ(parser_.parse(openai::completion_chunk(meta_, "")).kind, EventKind::kRole);
  EXPECT_EQ(parser_.parse("[DONE]").kind, EventKind::kDone);
}

// ---- timing ----------------------------------------------------------------------------------

EventInfo kind(EventKind k) {
  EventInfo e;
  e.kind = k;
  return e;
}

TEST(StreamTimerTest, TtftAndItlsCountOnlyTokenEvents) {
  StreamTimer t;
  t.on_event(kind(EventKind::kRole), 0.05);  // the role chunk does not start the clock
  t.on_event(kind(EventKind::kToken), 0.10);
  t.on_event(kind(EventKind::kToken), 0.20);
  t.on_event(kind(EventKind::kToken), 0.20);  // same read: a zero gap, as vllm bench serve
  t.on_event(kind(EventKind::kToken), 0.35);
  EventInfo usage = kind(EventKind::kUsage);
  usage.prompt_tokens = 9;
  usage.completion_tokens = 4;
  t.on_event(usage, 0.36);
  t.on_event(kind(EventKind::kDone), 0.36);
  EXPECT_TRUE(t.first_token_seen());
  EXPECT_DOUBLE_EQ(t.ttft(), 0.10);
  ASSERT_EQ(t.itls().size(), 3u);
  EXPECT_NEAR(t.itls()[0], 0.10, 1e-12);
  EXPECT_NEAR(t.itls()[1], 0.0, 1e-12);
  EXPECT_NEAR(t.itls()[2], 0.15, 1e-12);
  EXPECT_DOUBLE_EQ(t.last_token(), 0.35);
  EXPECT_EQ(t.token_events(), 4);
  EXPECT_EQ(t.output_tokens(), 4);
  EXPECT_EQ(t.usage_prompt_tokens(), 9);
  EXPECT_TRUE(t.done());
  EXPECT_FALSE(t.error());
}

TEST(StreamTimerTest, CountsTokensWithoutUsage) {
  StreamTimer t;
  t.on_event(kind(EventKind::kToken), 1);
  t.on_event(kind(EventKind::kToken), 2);
  t.on_event(kind(EventKind::kToken), 3);
  EXPECT_EQ(t.output_tokens(), 3);
  EXPECT_EQ(t.usage_completion_tokens(), -1);
  EXPECT_FALSE(t.done());
}

TEST(StreamTimerTest, UsageWinsOverTheEventCount) {
  // Several tokens per chunk (e.g. speculative decoding): usage says how many.
  StreamTimer t;
  t.on_event(kind(EventKind::kToken), 1);
  EventInfo usage = kind(EventKind::kUsage);
  usage.completion_tokens = 5;
  t.on_event(usage, 2);
  EXPECT_EQ(t.output_tokens(), 5);
  EXPECT_EQ(t.token_events(), 1);
}

TEST(StreamTimerTest, ErrorEvents) {
  StreamTimer t;
  t.on_event(kind(EventKind::kToken), 1);
  EventInfo err = kind(EventKind::kError);
  err.error_message = "boom";
  t.on_event(err, 2);
  t.on_event(kind(EventKind::kMalformed), 2);
  t.on_event(kind(EventKind::kDone), 2);
  EXPECT_TRUE(t.error());
  EXPECT_EQ(t.error_message(), "boom");
  EXPECT_EQ(t.malformed_events(), 1);
}

TEST(StreamTimerTest, EndToEndOnASimulatorStream) {
  const std::string stream = chat_stream();
  SseScanner scanner;
  EventParser parser;
  StreamTimer timer;
  // One read per byte, each a millisecond later.
  double t = 0;
  for (char c : stream) {
    t += 0.001;
    scanner.feed(std::string_view(&c, 1),
                 [&](std::string_view d) { timer.on_event(parser.parse(d), t); });
  }
  EXPECT_EQ(timer.token_events(), 2);
  EXPECT_EQ(timer.output_tokens(), 2);
  EXPECT_EQ(timer.usage_prompt_tokens(), 7);
  EXPECT_TRUE(timer.done());
  ASSERT_EQ(timer.itls().size(), 1u);
  EXPECT_GT(timer.ttft(), 0.0);
  EXPECT_GT(timer.itls()[0], 0.0);
}

}  // namespace
}  // namespace eta::bench

namespace eta::bench {
namespace {

TEST(SharedSseScanner, OverLongEventIsDroppedAndScanningResumesAfterIt) {
  SseScanner s(64);
  std::vector<std::string> events;
  auto on_event = [&](std::string_view d) { events.emplace_back(d); };
  s.feed("data: {\"a\":1}\n\ndata: ", on_event);
  s.feed(std::string(100, 'x'), on_event);  // the second event passes the 64-byte bound
  EXPECT_EQ(s.overflows(), 1u);
  EXPECT_EQ(s.pending_bytes(), 0u);
  s.feed(std::string(50, 'y') + "\n", on_event);  // still inside the dropped event
  s.feed("\ndata: {\"b\":2}\n\n", on_event);      // its blank line straddles two pieces
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0], "{\"a\":1}");
  EXPECT_EQ(events[1], "{\"b\":2}");
}

}  // namespace
}  // namespace eta::bench
