#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "router/aliases.hpp"
#include "router/config.hpp"

namespace eta::router {
namespace {

std::string feed_in_pieces(std::string_view text, size_t piece, std::string_view from,
                           std::string_view to, bool top = false) {
  FieldRewriter r;
  r.reset("model", from, to, top);
  std::string out;
  for (size_t i = 0; i < text.size(); i += piece) r.feed(text.substr(i, piece), out);
  r.finish(out);
  return out;
}

TEST(RouterAliases, RewritesTheModelMemberOfABody) {
  const std::string body =
      R"({"id":"cmpl-1","object":"chat.completion","created":1,"model":"llama-2-7b-replica-1",)"
      R"("choices":[{"index":0,"message":{"role":"assistant","content":"Paris"}}]})";
  const std::string out = rewrite_field(body, "model", "llama-2-7b-replica-1", "llama-2-7b-chat");
  EXPECT_EQ(out, R"({"id":"cmpl-1","object":"chat.completion","created":1,)"
                 R"("model":"llama-2-7b-chat","choices":[{"index":0,"message":{"role":)"
                 R"("assistant","content":"Paris"}}]})");
}

TEST(RouterAliases, LeavesEverythingElseByteForByte) {
  for (const std::string& body : {
           std::string(R"({"model":"other","x":1})"),             // another value
           std::string(R"({"object":"model","model2":"a"})"),     // "model" as a value
           std::string(R"({"text":"\"model\":\"a\" is text"})"),  // inside a string
           std::string(R"({"xmodel":"a","model_":"a"})"),         // other keys
           std::string(R"({"model":null,"m":["model","a"]})"),    // not a string value
           std::string(R"({"model":"ab","model":"a b"})"),        // longer values
           std::string("data: [DONE]\n\n: keep-alive\n\n"),       // SSE without JSON
           std::string(R"({"k\"model":"a"})"),                    // escaped quote in a key
       }) {
    EXPECT_EQ(rewrite_field(body, "model", "a", "PUBLIC"), body) << body;
  }
}

TEST(RouterAliases, KeepsWhitespaceAndMatchesEscapedSpellings) {
  EXPECT_EQ(rewrite_field("{ \"model\" :\n \"a-1\" }", "model", "a-1", "pub"),
            "{ \"model\" :\n \"pub\" }");
  // "a-1" spelled with escapes still is "a-1".
  EXPECT_EQ(rewrite_field(R"({"mod\u0065l":"a\u002d1"})", "model", "a-1", "pub"),
            R"({"mod\u0065l":"pub"})");
  // The new name is escaped as JSON needs.
  EXPECT_EQ(rewrite_field(R"({"model":"a"})", "model", "a", "q\"b\\c"), R"({"model":"q\"b\\c"})");
  // Non-ASCII names, as UTF-8 or as \u escapes (surrogate pair).
  EXPECT_EQ(rewrite_field(R"({"model":"\ud83d\ude00"})", "model", "\xF0\x9F\x98\x80", "x"),
            R"({"model":"x"})");
}

TEST(RouterAliases, StreamEventsSplitAnywhere) {
  std::string stream;
  std::string expected;
  for (int i = 0; i < 5; ++i) {
    const std::string event = "data: {\"id\":\"cmpl-1\",\"object\":\"chat.completion.chunk\"," +
                              std::string("\"created\":1,\"model\":\"llama-2-7b-replica-2\",") +
                              "\"choices\":[{\"index\":0,\"delta\":{\"content\":\" w" +
                              std::to_string(i) + "\\\"\"}}]}\n\n";
    stream += event;
    std::string e = event;
    e.replace(e.find("llama-2-7b-replica-2"), 20, "llama-2-7b-chat");
    expected += e;
  }
  stream += "data: [DONE]\n\n";
  expected += "data: [DONE]\n\n";
  for (size_t piece = 1; piece <= stream.size(); ++piece) {
    ASSERT_EQ(feed_in_pieces(stream, piece, "llama-2-7b-replica-2", "llama-2-7b-chat"), expected)
        << "pieces of " << piece;
  }
}

TEST(RouterAliases, HoldsOnlyWhatMayBelongToAMember) {
  FieldRewriter r;
  r.reset("model", "abc", "public");
  std::string out;
  r.feed(R"(data: {"id":"x","mo)", out);
  EXPECT_EQ(out, R"(data: {"id":"x",)");  // "id" and "x" were decided; "mo... is held
  EXPECT_EQ(r.held(), 3u);
  r.feed(R"(del": "ab)", out);
  EXPECT_EQ(r.held(), 12u);
  r.feed("c\"}\n\n", out);
  EXPECT_EQ(r.held(), 0u);
  EXPECT_EQ(out, "data: {\"id\":\"x\",\"model\": \"public\"}\n\n");
  EXPECT_EQ(r.rewritten(), 1);
  // A long string is passed on once it cannot match any more.
  out.clear();
  r.feed("data: {\"content\":\"" + std::string(100, 'x'), out);
  EXPECT_EQ(r.held(), 0u);
}

TEST(RouterAliases, AnUnfinishedMemberIsKeptAtTheEnd) {
  FieldRewriter r;
  r.reset("model", "abc", "public");
  std::string out;
  r.feed(R"(data: {"model":"ab)", out);
  r.finish(out);
  EXPECT_EQ(out, R"(data: {"model":"ab)");
}

TEST(RouterAliases, ANonJsonLineDoesNotDesynchronize) {
  const std::string text = "data: \"unterminated\ndata: {\"model\":\"a\"}\n\n";
  EXPECT_EQ(rewrite_field(text, "model", "a", "b"),
            "data: \"unterminated\ndata: {\"model\":\"b\"}\n\n");
}

TEST(RouterAliases, TopLevelOnlyForRequests) {
  const std::string body =
      R"({"model":"pub","tools":[{"model":"pub"}],"metadata":{"model":"pub"},"n":1})";
  EXPECT_EQ(rewrite_field(body, "model", "pub", "served-1", true),
            R"({"model":"served-1","tools":[{"model":"pub"}],"metadata":{"model":"pub"},"n":1})");
  EXPECT_EQ(rewrite_field(body, "model", "pub", "s", false),
            R"({"model":"s","tools":[{"model":"s"}],"metadata":{"model":"s"},"n":1})");
}

TEST(RouterAliases, LookUps) {
  const std::vector<ModelAlias> aliases = {{"chat", {"r1", "r2"}}, {"code", {"c1"}}};
  const std::vector<std::string> ids1 = {"r1"};
  const std::vector<std::string> ids2 = {"x", "r2"};
  const std::vector<std::string> both = {"chat", "r1"};
  ASSERT_NE(served_name_for(aliases, "chat", ids1), nullptr);
  EXPECT_EQ(*served_name_for(aliases, "chat", ids1), "r1");
  EXPECT_EQ(*served_name_for(aliases, "chat", ids2), "r2");
  EXPECT_EQ(*served_name_for(aliases, "chat", both), "chat");  // served under its own name
  EXPECT_EQ(served_name_for(aliases, "code", ids1), nullptr);
  EXPECT_EQ(*served_name_for(aliases, "r1", ids1), "r1");  // a served name asked for directly
  EXPECT_EQ(served_name_for(aliases, "other", ids2), nullptr);
  EXPECT_EQ(*public_name_of(aliases, "r2"), "chat");
  EXPECT_EQ(public_name_of(aliases, "chat"), nullptr);
}

TEST(RouterAliases, Validation) {
  std::string error;
  EXPECT_TRUE(validate_aliases({{"chat", {"r1", "r2"}}, {"code", {"c1"}}}, error)) << error;
  EXPECT_TRUE(validate_aliases({{"chat", {"chat", "r2"}}}, error)) << error;
  EXPECT_FALSE(validate_aliases({{"chat", {"r1"}}, {"code", {"r1"}}}, error));
  EXPECT_EQ(error,
            "served name r1 appears twice in models (a replica's name belongs to one "
            "public name)");
  EXPECT_FALSE(validate_aliases({{"chat", {"r1", "r1"}}}, error));
  EXPECT_FALSE(validate_aliases({{"chat", {}}}, error));
  EXPECT_EQ(error, "model chat: served_names must list at least one name");
  EXPECT_FALSE(validate_aliases({{"", {"r1"}}}, error));
  EXPECT_FALSE(validate_aliases({{"chat", {""}}}, error));
  EXPECT_FALSE(validate_aliases({{"chat", {"a"}}, {"chat", {"b"}}}, error));
  EXPECT_FALSE(validate_aliases({{"chat", {"a"}}, {"code", {"chat"}}}, error));
  EXPECT_EQ(error, "model chat is also a served name of model code");
}

TEST(RouterAliases, ConfigFile) {
  RouterConfig c;
  std::string error;
  ASSERT_TRUE(
      parse_config_yaml("models:\n"
                        "  - name: llama-2-7b-chat\n"
                        "    served_names: [llama-2-7b-replica-1, llama-2-7b-replica-2]\n",
                        "eta.yaml", c, error))
      << error;
  ASSERT_EQ(c.models.aliases.size(), 1u);
  EXPECT_EQ(c.models.aliases[0].name, "llama-2-7b-chat");
  EXPECT_EQ(c.models.aliases[0].served_names,
            (std::vector<std::string>{"llama-2-7b-replica-1", "llama-2-7b-replica-2"}));
  EXPECT_EQ(c.models.refresh_interval_s, 5.0);
  EXPECT_TRUE(validate_config(c, error)) << error;

  // The map form keeps refresh_interval_s and takes aliases too.
  RouterConfig m;
  ASSERT_TRUE(
      parse_config_yaml("models:\n  refresh_interval_s: 2\n  aliases:\n"
                        "    - {name: a, served_names: [b]}\n",
                        "eta.yaml", m, error))
      << error;
  EXPECT_EQ(m.models.refresh_interval_s, 2.0);
  ASSERT_EQ(m.models.aliases.size(), 1u);

  for (const auto& [yaml, message] : std::vector<std::pair<std::string, std::string>>{
           {"models:\n  - {name: a}\n", "eta.yaml:2: models[0] needs served_names"},
           {"models:\n  - {name: a, served_names: []}\n",
            "model a: served_names must list at least one name"},
           {"models:\n  - {name: a, served_names: b}\n",
            "eta.yaml:2: models[0].served_names must be a list of names"},
           {"models:\n  - {name: a, served: [b]}\n",
            "eta.yaml:2: unknown key 'served' in models[0] (known: name, served_names)"},
           {"models:\n  - {served_names: [b]}\n", "eta.yaml:2: models[0] needs a name"},
           {"models:\n  - {name: a, served_names: [b]}\n  - {name: c, served_names: [b]}\n",
            "served name b appears twice in models (a replica's name belongs to one public name)"},
           {"models: 3\n", "eta.yaml:1: models must be a list of {name, served_names} or a map"},
       }) {
    RouterConfig bad;
    std::string e;
    const bool ok = parse_config_yaml(yaml, "eta.yaml", bad, e) && validate_config(bad, e);
    EXPECT_FALSE(ok) << yaml;
    EXPECT_EQ(e, message) << yaml;
  }
}

}  // namespace
}  // namespace eta::router
