#include <gtest/gtest.h>

#include <string>

#include "engine/tokenizer.hpp"

namespace eta::engine {
namespace {

TEST(EngineTokenizer, CountsFollowTheRules) {
  EXPECT_EQ(count_tokens(""), 0);
  EXPECT_EQ(count_tokens("Hello"), 2);        // "Hell" "o"
  EXPECT_EQ(count_tokens("Hello world"), 4);  // "Hell" "o" " worl" "d"
  EXPECT_EQ(count_tokens(" the cat"), 2);     // " the" " cat"
  EXPECT_EQ(count_tokens("a, b."), 4);        // "a" "," " b" "."
  EXPECT_EQ(count_tokens("  x"), 2);          // " " " x"
  EXPECT_EQ(count_tokens("x \n"), 3);         // "x" " " "\n"
  EXPECT_EQ(count_tokens("abc123def"), 3);    // "abc1" "23de" "f"
  EXPECT_EQ(count_tokens("caf\xc3\xa9"), 3);  // "caf" + 2 UTF-8 bytes
  const std::string text = "The quick brown fox jumps over the lazy dog, again and again.";
  EXPECT_EQ(count_tokens(text), static_cast<int>(tokenize(text).size()));
  EXPECT_NEAR(static_cast<double>(text.size()) / count_tokens(text), 3.5, 1.0);
}

TEST(EngineTokenizer, IdsAreDeterministicAndInVocab) {
  const auto a = tokenize("Hello world, hello world");
  const auto b = tokenize("Hello world, hello world");
  EXPECT_EQ(a, b);
  // "Hell" "o" " worl" "d" "," " hel" "lo" " worl" "d"
  ASSERT_EQ(a.size(), 9u);
  for (uint32_t id : a) EXPECT_LT(id, kToyVocab);
  EXPECT_EQ(a[2], a[7]);  // the same piece gets the same id
  EXPECT_EQ(a[3], a[8]);
  EXPECT_NE(a[0], a[5]);
  EXPECT_NE(tokenize("abcd")[0], tokenize("abce")[0]);
}

TEST(EngineTokenizer, OutputTextRetokenizesToItsCount) {
  for (uint64_t seed = 0; seed < 20; ++seed) {
    std::string all;
    for (int i = 0; i < 200; ++i) {
      const std::string t = output_token_text(seed, i);
      ASSERT_GE(t.size(), 2u);
      ASSERT_LE(t.size(), 5u);
      ASSERT_EQ(t[0], ' ');
      for (std::size_t k = 1; k < t.size(); ++k) ASSERT_TRUE(t[k] >= 'a' && t[k] <= 'z') << t;
      EXPECT_EQ(count_tokens(t), 1);
      all += t;
    }
    EXPECT_EQ(count_tokens(all), 200);
    EXPECT_EQ(output_token_text(seed, 5), output_token_text(seed, 5));
  }
  EXPECT_NE(output_token_text(1, 0) + output_token_text(1, 1) + output_token_text(1, 2),
            output_token_text(2, 0) + output_token_text(2, 1) + output_token_text(2, 2));
}

}  // namespace
}  // namespace eta::engine
