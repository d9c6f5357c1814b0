#include "openai/response.hpp"

#include <boost/json.hpp>
#include <cmath>

namespace eta::openai {

namespace json = boost::json;

namespace {

// A stack arena for building one document: the JSON tree of a chunk fits in it, so building
// allocates nothing; serialize() then allocates the result string once.
class Arena {
 public:
  json::storage_ptr sp() { return json::storage_ptr(&mr_); }

 private:
  unsigned char buffer_[4096];
  json::monotonic_resource mr_{buffer_, sizeof buffer_};
};

json::string_view js(std::string_view s) {
  return json::string_view(s.data(), s.size());
}

json::value nullable(std::string_view s, const json::storage_ptr& sp) {
  if (s.empty()) return json::value(nullptr, sp);
  return json::value(js(s), sp);
}

void add_meta(json::object& o, std::string_view object, const ResponseMeta& meta) {
  o.emplace("id", js(meta.id));
  o.emplace("object", js(object));
  o.emplace("created", meta.created);
  o.emplace("model", js(meta.model));
}

json::object usage_object(const Usage& u, bool streaming, const json::storage_ptr& sp) {
  json::object o(sp);
  o.reserve(4);
  o.emplace("prompt_tokens", u.prompt_tokens);
  o.emplace("total_tokens", u.prompt_tokens + u.completion_tokens);
  o.emplace("completion_tokens", u.completion_tokens);
  if (u.cached_tokens) {
    json::object details(sp);
    details.emplace("cached_tokens", *u.cached_tokens);
    o.emplace("prompt_tokens_details", std::move(details));
  } else if (!streaming) {
    o.emplace("prompt_tokens_details", nullptr);
  }
  return o;
}

void add_finish(json::object& choice, const Finish* finish, const json::storage_ptr& sp) {
  choice.emplace("finish_reason", nullable(finish ? finish->reason : std::string_view{}, sp));
  choice.emplace("stop_reason", nullable(finish ? finish->stop_reason : std::string_view{}, sp));
}

json::array one(json::object choice, const json::storage_ptr& sp) {
  json::array a(sp);
  a.emplace_back(std::move(choice));
  return a;
}

void append_hex(std::string& out, uint64_t v) {
  static constexpr char kDigits[] = "0123456789abcdef";
  for (int shift = 60; shift >= 0; shift -= 4) out += kDigits[(v >> shift) & 0xf];
}

uint64_t fnv1a(std::string_view s, uint64_t h) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

}  // namespace

std::string make_response_id(Endpoint endpoint, uint64_t random_hi, uint64_t random_lo) {
  std::string id = endpoint == Endpoint::kChat ? "chatcmpl-" : "cmpl-";
  id.reserve(id.size() + 32);
  append_hex(id, random_hi);
  append_hex(id, random_lo);
  return id;
}

std::string completion_body(const ResponseMeta& meta, std::span<const Choice> choices,
                            const Usage& usage) {
  Arena arena;
  const auto sp = arena.sp();
  json::array list(sp);
  list.reserve(choices.size());
  for (const Choice& c : choices) {
    json::object choice(sp);
    choice.reserve(5);
    choice.emplace("index", c.index);
    choice.emplace("text", js(c.text));
    choice.emplace("logprobs", nullptr);
    add_finish(choice, &c.finish, sp);
    list.emplace_back(std::move(choice));
  }
  json::object o(sp);
  o.reserve(6);
  add_meta(o, "text_completion", meta);
  o.emplace("choices", std::move(list));
  o.emplace("usage", usage_object(usage, false, sp));
  return json::serialize(o);
}

std::string completion_body(const ResponseMeta& meta, std::string_view text, const Finish& finish,
                            const Usage& usage) {
  const Choice c{0, std::string(text), finish};
  return completion_body(meta, std::span<const Choice>(&c, 1), usage);
}

std::string chat_completion_body(const ResponseMeta& meta, std::span<const Choice> choices,
                                 const Usage& usage) {
  Arena arena;
  const auto sp = arena.sp();
  json::array list(sp);
  list.reserve(choices.size());
  for (const Choice& c : choices) {
    json::object message(sp);
    message.reserve(2);
    message.emplace("role", "assistant");
    message.emplace("content", js(c.text));
    json::object choice(sp);
    choice.reserve(5);
    choice.emplace("index", c.index);
    choice.emplace("message", std::move(message));
    choice.emplace("logprobs", nullptr);
    add_finish(choice, &c.finish, sp);
    list.emplace_back(std::move(choice));
  }
  json::object o(sp);
  o.reserve(6);
  add_meta(o, "chat.completion", meta);
  o.emplace("choices", std::move(list));
  o.emplace("usage", usage_object(usage, false, sp));
  return json::serialize(o);
}

std::string chat_completion_body(const ResponseMeta& meta, std::string_view content,
                                 const Finish& finish, const Usage& usage) {
  const Choice c{0, std::string(content), finish};
  return chat_completion_body(meta, std::span<const Choice>(&c, 1), usage);
}

std::string completion_chunk(const ResponseMeta& meta, std::string_view text, const Finish* finish,
                             const Usage* usage) {
  Arena arena;
  const auto sp = arena.sp();
  json::object choice(sp);
  choice.reserve(5);
  choice.emplace("index", meta.index);
  choice.emplace("text", js(text));
  choice.emplace("logprobs", nullptr);
  add_finish(choice, finish, sp);
  json::object o(sp);
  o.reserve(6);
  add_meta(o, "text_completion", meta);
  o.emplace("choices", one(std::move(choice), sp));
  if (usage) o.emplace("usage", usage_object(*usage, true, sp));
  return json::serialize(o);
}

std::string chat_role_chunk(const ResponseMeta& meta, const Usage* usage) {
  Arena arena;
  const auto sp = arena.sp();
  json::object delta(sp);
  delta.emplace("role", "assistant");
  delta.emplace("content", "");
  json::object choice(sp);
  choice.reserve(4);
  choice.emplace("index", meta.index);
  choice.emplace("delta", std::move(delta));
  choice.emplace("logprobs", nullptr);
  choice.emplace("finish_reason", nullptr);
  json::object o(sp);
  o.reserve(6);
  add_meta(o, "chat.completion.chunk", meta);
  o.emplace("choices", one(std::move(choice), sp));
  if (usage) o.emplace("usage", usage_object(*usage, true, sp));
  return json::serialize(o);
}

std::string chat_chunk(const ResponseMeta& meta, std::string_view content, const Finish* finish,
                       const Usage* usage) {
  Arena arena;
  const auto sp = arena.sp();
  json::object delta(sp);
  delta.emplace("content", js(content));
  json::object choice(sp);
  choice.reserve(5);
  choice.emplace("index", meta.index);
  choice.emplace("delta", std::move(delta));
  choice.emplace("logprobs", nullptr);
  if (finish) {
    add_finish(choice, finish, sp);
  } else {
    choice.emplace("finish_reason", nullptr);
  }
  json::object o(sp);
  o.reserve(6);
  add_meta(o, "chat.completion.chunk", meta);
  o.emplace("choices", one(std::move(choice), sp));
  if (usage) o.emplace("usage", usage_object(*usage, true, sp));
  return json::serialize(o);
}

std::string usage_chunk(Endpoint endpoint, const ResponseMeta& meta, const Usage& usage) {
  Arena arena;
  const auto sp = arena.sp();
  json::object o(sp);
  o.reserve(6);
  add_meta(o, endpoint == Endpoint::kChat ? "chat.completion.chunk" : "text_completion", meta);
  o.emplace("choices", json::array(sp));
  o.emplace("usage", usage_object(usage, true, sp));
  return json::serialize(o);
}

std::string models_body(std::span<const ModelCard> cards) {
  Arena arena;
  const auto sp = arena.sp();
  json::array data(sp);
  data.reserve(cards.size());
  for (const auto& card : cards) {
    const std::string created = std::to_string(card.created);
    std::string perm_id = "modelperm-";
    append_hex(perm_id, fnv1a(card.id, fnv1a(created, 0xcbf29ce484222325ull)));
    append_hex(perm_id, fnv1a(created, fnv1a(card.id, 0x84222325cbf29ce4ull)));
    json::object perm(sp);
    perm.reserve(12);
    perm.emplace("id", perm_id);
    perm.emplace("object", "model_permission");
    perm.emplace("created", card.created);
    perm.emplace("allow_create_engine", false);
    perm.emplace("allow_sampling", true);
    perm.emplace("allow_logprobs", true);
    perm.emplace("allow_search_indices", false);
    perm.emplace("allow_view", true);
    perm.emplace("allow_fine_tuning", false);
    perm.emplace("organization", "*");
    perm.emplace("group", nullptr);
    perm.emplace("is_blocking", false);
    json::array perms(sp);
    perms.emplace_back(std::move(perm));

    json::object m(sp);
    m.reserve(8);
    m.emplace("id", card.id);
    m.emplace("object", "model");
    m.emplace("created", card.created);
    m.emplace("owned_by", card.owned_by);
    m.emplace("root", card.root);
    m.emplace("parent", nullable(card.parent, sp));
    m.emplace("max_model_len", card.max_model_len);
    m.emplace("permission", std::move(perms));
    if (card.eta_time_scale) {
      const double scale = *card.eta_time_scale;
      if (std::trunc(scale) == scale && std::fabs(scale) < 9e15) {
        m.emplace("eta_time_scale", static_cast<int64_t>(scale));
      } else {
        m.emplace("eta_time_scale", scale);
      }
    }
    data.emplace_back(std::move(m));
  }
  json::object o(sp);
  o.emplace("object", "list");
  o.emplace("data", std::move(data));
  return json::serialize(o);
}

std::string version_body(std::string_view version) {
  Arena arena;
  json::object o(arena.sp());
  o.emplace("version", js(version));
  return json::serialize(o);
}

std::string load_body(int64_t server_load) {
  Arena arena;
  json::object o(arena.sp());
  o.emplace("server_load", server_load);
  return json::serialize(o);
}

std::string tokenize_body(std::span<const uint32_t> tokens, int64_t max_model_len,
                          const std::vector<std::string>* token_strs) {
  Arena arena;
  const auto sp = arena.sp();
  json::array ids(sp);
  ids.reserve(tokens.size());
  for (uint32_t t : tokens) ids.emplace_back(static_cast<uint64_t>(t));
  json::object o(sp);
  o.reserve(4);
  o.emplace("count", static_cast<int64_t>(tokens.size()));
  o.emplace("max_model_len", max_model_len);
  o.emplace("tokens", std::move(ids));
  if (token_strs) {
    json::array strs(sp);
    strs.reserve(token_strs->size());
    for (const auto& s : *token_strs) strs.emplace_back(js(s));
    o.emplace("token_strs", std::move(strs));
  } else {
    o.emplace("token_strs", nullptr);
  }
  return json::serialize(o);
}

std::string detokenize_body(std::string_view prompt) {
  Arena arena;
  json::object o(arena.sp());
  o.emplace("prompt", js(prompt));
  return json::serialize(o);
}

}  // namespace eta::openai
