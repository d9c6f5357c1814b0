#include <gtest/gtest.h>

#include <string>

#include "router/sse.hpp"

namespace eta::router {
namespace {

const std::string kCompletionStream =
    "data: {\"id\":\"cmpl-1\",\"object\":\"text_completion\",\"choices\":[{\"index\":0,\"text\":"
    "\" ab\",\"finish_reason\":null}]}\n\n"
    "data: {\"id\":\"cmpl-1\",\"object\":\"text_completion\",\"choices\":[{\"index\":0,\"text\":"
    "\" cd\",\"finish_reason\":null}]}\n\n"
    "data: {\"id\":\"cmpl-1\",\"object\":\"text_completion\",\"choices\":[{\"index\":0,\"text\":"
    "\" ef\",\"finish_reason\":\"length\"}]}\n\n"
    "data: {\"id\":\"cmpl-1\",\"object\":\"text_completion\",\"choices\":[],\"usage\":{"
    "\"prompt_tokens\":5,\"total_tokens\":8,\"completion_tokens\":3}}\n\n"
    "data: [DONE]\n\n";

TEST(RouterSse, CountsCompletionTokensAndUsage) {
  StreamTokenCounter s;
  EXPECT_EQ(s.feed(kCompletionStream), 3);
  EXPECT_EQ(s.tokens(), 3);
  EXPECT_EQ(s.events(), 5u);
  EXPECT_TRUE(s.done());
  EXPECT_FALSE(s.saw_error());
  EXPECT_EQ(s.usage_completion_tokens(), 3);
  EXPECT_EQ(s.usage_prompt_tokens(), 5);
  EXPECT_EQ(s.malformed(), 0u);
}

TEST(RouterSse, EverySplitGivesTheSameCount) {
  for (size_t cut = 0; cut <= kCompletionStream.size(); ++cut) {
    StreamTokenCounter s;
    const int a = s.feed(std::string_view(kCompletionStream).substr(0, cut));
    const int b = s.feed(std::string_view(kCompletionStream).substr(cut));
    EXPECT_EQ(a + b, 3) << "cut at " << cut;
    EXPECT_TRUE(s.done()) << cut;
    EXPECT_EQ(s.usage_completion_tokens(), 3) << cut;
  }
}

TEST(RouterSse, ByteByByte) {
  StreamTokenCounter s;
  int total = 0;
  for (char c : kCompletionStream) total += s.feed(std::string_view(&c, 1));
  EXPECT_EQ(total, 3);
  EXPECT_TRUE(s.done());
}

TEST(RouterSse, ChatRoleChunkDoesNotCount) {
  const std::string chat =
      "data: {\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{"
      "\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n"
      "data: {\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{"
      "\"content\":\" hi\"},\"finish_reason\":null}]}\n\n"
      "data: {\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{"
      "\"reasoning_content\":\"hmm\"},\"finish_reason\":null}]}\n\n"
      "data: {\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{},"
      "\"finish_reason\":\"stop\"}]}\n\n"
      "data: [DONE]\n\n";
  StreamTokenCounter s;
  // The role chunk carries no token; the last chunk, with an empty delta and a finish_reason,
  // carries the EOS token, which decodes to nothing (openai/sse.hpp's rule, shared with bench).
  EXPECT_EQ(s.feed(chat), 3);
  EXPECT_TRUE(s.done());
  EXPECT_FALSE(s.usage_completion_tokens().has_value());
}

TEST(RouterSse, CrLfAndMultiLineDataAndComments) {
  const std::string text =
      ": keep-alive\r\n\r\n"
      "event: message\r\n"
      "data: {\"choices\":[{\"text\":\r\n"
      "data: \"x\"}]}\r\n\r\n"
      "data:[DONE]\r\n\r\n";
  StreamTokenCounter s;
  EXPECT_EQ(s.feed(text), 1);
  EXPECT_TRUE(s.done());
}

TEST(RouterSse, ErrorEventAndMalformedData) {
  StreamTokenCounter s;
  EXPECT_EQ(s.feed("data: {\"error\":{\"message\":\"boom\",\"code\":500}}\n\n"), 0);
  EXPECT_TRUE(s.saw_error());
  EXPECT_EQ(s.feed("data: not json\n\n"), 0);
  EXPECT_EQ(s.malformed(), 1u);
  EXPECT_EQ(s.feed("data: {\"choices\":[{\"text\":\"a\"}]}\n\n"), 1);
}

TEST(RouterSse, OverlongLineIsDropped) {
  StreamTokenCounter s(64);
  EXPECT_EQ(s.feed("data: {\"choices\":[{\"text\":\"" + std::string(100, 'a')), 0);
  EXPECT_EQ(s.feed("\"}]}\n\n"), 0);
  EXPECT_EQ(s.malformed(), 1u);
  EXPECT_EQ(s.feed("data: {\"choices\":[{\"text\":\"a\"}]}\n\n"), 1);
}

TEST(RouterSse, IncompleteEventIsNotCountedUntilItsBlankLine) {
  StreamTokenCounter s;
  EXPECT_EQ(s.feed("data: {\"choices\":[{\"text\":\"a\"}]}\n"), 0);
  EXPECT_EQ(s.feed("\n"), 1);
}

TEST(RouterSse, BodyUsage) {
  const BodyUsage u = parse_body_usage(
      "{\"id\":\"cmpl-1\",\"choices\":[],\"usage\":{\"prompt_tokens\":4,\"total_tokens\":9,"
      "\"completion_tokens\":5,\"prompt_tokens_details\":null}}");
  EXPECT_EQ(u.completion_tokens, 5);
  EXPECT_EQ(u.prompt_tokens, 4);
  EXPECT_FALSE(parse_body_usage("{\"error\":{}}").completion_tokens.has_value());
  EXPECT_FALSE(parse_body_usage("garbage").completion_tokens.has_value());
}

}  // namespace
}  // namespace eta::router
