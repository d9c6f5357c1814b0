#include "openai/extract.hpp"

#include <simdjson.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "engine/tokenizer.hpp"
#include "openai/lax.hpp"

namespace eta::openai {

namespace {

using simdjson::dom::array;
using simdjson::dom::element;
using simdjson::dom::element_type;
using simdjson::dom::object;

// pydantic's lax boolean: true/false, 0/1, "true"/"false"/"1"/"0"/"yes"/"no"/"on"/"off".
std::optional<bool> lax_bool(element v) {
  switch (v.type()) {
    case element_type::BOOL:
      return v.get_bool().value();
    case element_type::INT64:
    case element_type::UINT64: {
      const std::optional<int64_t> i = lax_int(v);
      if (i == 0) return false;
      if (i == 1) return true;
      return std::nullopt;
    }
    case element_type::STRING: {
      std::string s(v.get_string().value());
      std::transform(s.begin(), s.end(), s.begin(),
                     [](unsigned char c) { return std::tolower(c); });
      if (s == "true" || s == "1" || s == "yes" || s == "on" || s == "t" || s == "y") return true;
      if (s == "false" || s == "0" || s == "no" || s == "off" || s == "f" || s == "n") return false;
      return std::nullopt;
    }
    default:
      return std::nullopt;
  }
}

std::optional<std::string_view> str(element v) {
  std::string_view s;
  if (v.get_string().get(s) != simdjson::SUCCESS) return std::nullopt;
  return s;
}

// A member of `o`, or nullopt when absent or null.
std::optional<element> field(const object& o, std::string_view key) {
  element v;
  if (o.at_key(key).get(v) != simdjson::SUCCESS || v.is_null()) return std::nullopt;
  return v;
}

class Extractor {
 public:
  Extractor(const ExtractOptions& options, ExtractedRequest& out) : opt_(options), out_(out) {}

  void run(openai::Api api, const object& root) {
    out_.readable = true;
    out_.api = api;
    if (auto m = field(root, "model")) {
      if (auto s = str(*m)) out_.model = std::string(*s);
    }
    if (auto s = field(root, "stream")) out_.stream = lax_bool(*s).value_or(false);
    if (auto so = field(root, "stream_options")) {
      object o;
      if (so->get_object().get(o) == simdjson::SUCCESS && o.size() > 0) {
        out_.stream_options_sent = true;
        if (auto v = field(o, "include_usage")) out_.include_usage = lax_bool(*v).value_or(false);
        if (auto v = field(o, "continuous_usage_stats"))
          out_.continuous_usage_stats = lax_bool(*v).value_or(false);
      }
    }
    if (auto v = field(root, "session_id")) {
      if (auto s = str(*v)) out_.session_id = std::string(*s);
    }
    if (auto v = field(root, "user")) {
      if (auto s = str(*v)) out_.user = std::string(*s);
    }
    if (auto v = field(root, "ignore_eos")) out_.ignore_eos = lax_bool(*v).value_or(false);
    if (auto v = field(root, "stop")) {
      if (auto s = str(*v)) {
        out_.stop.emplace_back(*s);
      } else {
        simdjson::dom::array a;
        if (v->get_array().get(a) == simdjson::SUCCESS) {
          for (element item : a) {
            if (auto t = str(item)) out_.stop.emplace_back(*t);
          }
        }
      }
    }
    switch (api) {
      case Api::kCompletions:
      case Api::kCompletionsRender:
        prompt_field(root, "prompt");
        completions_limits(root);
        if (api == Api::kCompletionsRender) out_.decode = false;
        break;
      case Api::kChat:
      case Api::kChatRender:
        chat_messages(root, "messages", {});
        chat_limits(root);
        if (api == Api::kChatRender) out_.decode = false;
        break;
      case Api::kResponses:
        responses_input(root);
        if (auto v = field(root, "max_output_tokens")) max_tokens(*v);
        break;
      case Api::kMessages:
      case Api::kCountTokens:
        anthropic(root);
        if (api == Api::kCountTokens) {
          out_.decode = false;
        } else if (auto v = field(root, "max_tokens")) {
          max_tokens(*v);
        }
        break;
      case Api::kEmbeddings:
      case Api::kPooling:
      case Api::kClassify:
        out_.decode = false;
        if (field(root, "messages")) {
          chat_messages(root, "messages", {});
        } else {
          prompt_field(root, "input");
        }
        break;
      case Api::kScore:
        out_.decode = false;
        pairs(root);
        break;
      case Api::kRerank:
        out_.decode = false;
        rerank(root);
        break;
      case Api::kTokenize:
        out_.decode = false;
        if (field(root, "messages")) {
          chat_messages(root, "messages", {});
        } else {
          prompt_field(root, "prompt");
        }
        break;
      case Api::kDetokenize:
        out_.decode = false;
        prompt_field(root, "tokens");
        break;
      case Api::kAudio:
      case Api::kNone:
        break;
    }
    if (!out_.decode) {
      out_.n = 1;
      out_.max_tokens.reset();
    }
  }

 private:
  void max_tokens(element v) {
    const std::optional<int64_t> m = lax_int(v);
    if (m && *m >= 0) out_.max_tokens = *m;
  }

  void completions_limits(const object& root) {
    out_.max_tokens = 16;  // vLLM's default, also for an explicit null (2026)
    if (auto v = field(root, "max_tokens")) {
      const std::optional<int64_t> m = lax_int(*v);
      if (m && *m >= 0) out_.max_tokens = *m;
    }
    if (out_.max_tokens == 0) out_.decode = false;  // echo with max_tokens 0: the prompt only
    sequences(root);
  }

  void chat_limits(const object& root) {
    if (auto v = field(root, "max_tokens")) max_tokens(*v);
    if (auto v = field(root, "max_completion_tokens")) {
      const std::optional<int64_t> m = lax_int(*v);
      if (m && *m >= 0) out_.max_tokens = *m;
    }
    if (out_.max_tokens == 0) out_.decode = false;
    sequences(root);
  }

  void sequences(const object& root) {
    // `best_of` is gone from vLLM 2026 (ignored there, so here too).
    int64_t n = 1;
    if (auto v = field(root, "n")) n = std::max<int64_t>(n, lax_int(*v).value_or(1));
    out_.n = std::clamp<int64_t>(n, 1, 1 << 16);
  }

  static bool is_token_list(const array& a) {
    for (element e : a) {
      if (e.type() != element_type::INT64 && e.type() != element_type::UINT64) return false;
    }
    return true;
  }

  static std::vector<uint32_t> tokens_of(const array& a) {
    std::vector<uint32_t> ids;
    ids.reserve(a.size());
    for (element e : a) {
      const std::optional<int64_t> v = lax_int(e);
      ids.push_back(static_cast<uint32_t>(std::clamp<int64_t>(v.value_or(0), 0, 0xffffffffLL)));
    }
    return ids;
  }

  // One prompt of a batch: the first is kept for hashing, the others only counted.
  void add_text_prompt(std::string_view text) {
    if (prompts_seen_++ == 0) {
      out_.prompt_text.assign(text);
    } else {
      out_.extra_prompt_tokens += engine::count_tokens(text);
    }
  }
  void add_token_prompt(const array& a) {
    if (prompts_seen_++ == 0) {
      out_.prompt_token_ids = tokens_of(a);
      out_.prompt_is_tokens = true;
    } else {
      out_.extra_prompt_tokens += static_cast<int64_t>(a.size());
    }
  }

  // A completions-style prompt: string, [string...], [int...], [[int...]...].
  void prompt_field(const object& root, std::string_view key) {
    std::optional<element> p = field(root, key);
    if (!p) return;
    if (auto s = str(*p)) {
      add_text_prompt(*s);
    } else if (array a; p->get_array().get(a) == simdjson::SUCCESS) {
      if (a.size() > 0 && is_token_list(a)) {
        add_token_prompt(a);
      } else {
        for (element e : a) {
          if (auto s = str(e)) {
            add_text_prompt(*s);
          } else if (array inner; e.get_array().get(inner) == simdjson::SUCCESS) {
            add_token_prompt(inner);
          } else if (object o; e.get_object().get(o) == simdjson::SUCCESS) {
            // a multimodal embeddings input ({"text":...} / {"image":...}): count what is known
            ++prompts_seen_;
            for (auto [k, v] : o) part(k, v);
          }
        }
      }
    }
    out_.prompts = std::max<int64_t>(1, prompts_seen_);
  }

  // A content part's estimate: text is rendered, media count their estimate.
  void part(std::string_view type, element v, std::string* text = nullptr) {
    if (type.find("image") != std::string_view::npos) {
      out_.extra_prompt_tokens += opt_.image_tokens;
    } else if (type.find("audio") != std::string_view::npos) {
      out_.extra_prompt_tokens += opt_.audio_tokens;
    } else if (type.find("video") != std::string_view::npos) {
      out_.extra_prompt_tokens += opt_.video_tokens;
    } else if (type.find("file") != std::string_view::npos ||
               type.find("document") != std::string_view::npos) {
      out_.extra_prompt_tokens += opt_.file_tokens;
    } else if (auto s = str(v); s && text) {
      if (!text->empty()) *text += '\n';
      text->append(*s);
    } else if (auto s2 = str(v)) {
      out_.extra_prompt_tokens += engine::count_tokens(*s2);
    }
  }

  // A message's content: string, null, or a list of parts {type, text | image_url | ...}.
  std::string content(element c) {
    std::string text;
    if (auto s = str(c)) return std::string(*s);
    array parts;
    if (c.get_array().get(parts) != simdjson::SUCCESS) return text;
    for (element p : parts) {
      if (auto s = str(p)) {  // a bare string part (Anthropic allows it in system)
        if (!text.empty()) text += '\n';
        text.append(*s);
        continue;
      }
      object o;
      if (p.get_object().get(o) != simdjson::SUCCESS) continue;
      std::string_view type = "text";
      if (auto t = field(o, "type")) type = str(*t).value_or("text");
      if (type == "text" || type == "input_text" || type == "output_text") {
        if (auto t = field(o, "text")) {
          if (auto s = str(*t)) {
            if (!text.empty()) text += '\n';
            text.append(*s);
          }
        }
      } else if (type == "tool_result" || type == "tool_use") {
        if (auto t = field(o, "content")) {
          const std::string inner = content(*t);
          out_.extra_prompt_tokens += engine::count_tokens(inner);
        }
      } else {
        part(type, p);
      }
    }
    return text;
  }

  struct Message {
    std::string role;
    std::string content;
  };

  // The toy chat template (openai::render_chat_prompt's): "<|ROLE|>\n" + content + "\n" per
  // message, then "<|assistant|>\n".
  void render(const std::vector<Message>& messages) {
    std::string out;
    for (const Message& m : messages) {
      out += "<|";
      out += m.role;
      out += "|>\n";
      out += m.content;
      out += '\n';
    }
    out += "<|assistant|>\n";
    add_text_prompt(out);
    out_.prompts = 1;
  }

  void read_messages(const array& a, std::vector<Message>& messages) {
    for (element e : a) {
      object o;
      if (e.get_object().get(o) != simdjson::SUCCESS) continue;
      Message m;
      m.role = "user";
      if (auto r = field(o, "role")) m.role = std::string(str(*r).value_or("user"));
      if (auto c = field(o, "content")) m.content = content(*c);
      messages.push_back(std::move(m));
    }
  }

  void chat_messages(const object& root, std::string_view key, std::vector<Message> messages) {
    if (auto v = field(root, key)) {
      if (array a; v->get_array().get(a) == simdjson::SUCCESS) read_messages(a, messages);
    }
    render(messages);
  }

  void responses_input(const object& root) {
    std::vector<Message> messages;
    if (auto v = field(root, "instructions")) {
      if (auto s = str(*v)) messages.push_back({"system", std::string(*s)});
    }
    if (auto v = field(root, "input")) {
      if (auto s = str(*v)) {
        messages.push_back({"user", std::string(*s)});
      } else if (array a; v->get_array().get(a) == simdjson::SUCCESS) {
        read_messages(a, messages);
      }
    }
    render(messages);
  }

  void anthropic(const object& root) {
    std::vector<Message> messages;
    if (auto v = field(root, "system")) {
      const std::string s = content(*v);
      if (!s.empty()) messages.push_back({"system", s});
    }
    chat_messages(root, "messages", std::move(messages));
  }

  // A text or a list of texts (score's text_1 / queries): their strings.
  static std::vector<std::string_view> texts(std::optional<element> v) {
    std::vector<std::string_view> out;
    if (!v) return out;
    if (auto s = str(*v)) {
      out.push_back(*s);
    } else if (array a; v->get_array().get(a) == simdjson::SUCCESS) {
      for (element e : a) {
        if (auto s = str(e)) {
          out.push_back(*s);
        } else if (object o; e.get_object().get(o) == simdjson::SUCCESS) {
          if (auto t = field(o, "text")) {
            if (auto s2 = str(*t)) out.push_back(*s2);
          }
        }
      }
    }
    return out;
  }

  // Score / rerank: each (query, document) pair is one prefill of both texts.
  void pair_prompts(const std::vector<std::string_view>& left,
                    const std::vector<std::string_view>& right) {
    if (left.empty() && right.empty()) return;
    const size_t pairs = std::max(left.size(), right.size());
    for (size_t i = 0; i < pairs; ++i) {
      std::string text;
      if (!left.empty()) text.append(left[std::min(i, left.size() - 1)]);
      if (!right.empty()) {
        text += '\n';
        text.append(right[std::min(i, right.size() - 1)]);
      }
      add_text_prompt(text);
    }
    out_.prompts = static_cast<int64_t>(pairs);
  }

  void pairs(const object& root) {
    std::vector<std::string_view> left = texts(field(root, "text_1"));
    std::vector<std::string_view> right = texts(field(root, "text_2"));
    if (left.empty()) left = texts(field(root, "queries"));
    if (right.empty()) right = texts(field(root, "documents"));
    if (right.empty()) right = texts(field(root, "items"));
    pair_prompts(left, right);
  }

  void rerank(const object& root) {
    pair_prompts(texts(field(root, "query")), texts(field(root, "documents")));
  }

  const ExtractOptions& opt_;
  ExtractedRequest& out_;
  int64_t prompts_seen_ = 0;
};

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

bool iequal_prefix(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(s[i])) != prefix[i]) return false;
  }
  return true;
}

std::string_view boundary_of(std::string_view content_type) {
  size_t pos = 0;
  while (pos < content_type.size()) {
    const size_t semi = content_type.find(';', pos);
    std::string_view param = trim(content_type.substr(
        pos, semi == std::string_view::npos ? std::string_view::npos : semi - pos));
    pos = semi == std::string_view::npos ? content_type.size() : semi + 1;
    if (iequal_prefix(param, "boundary=")) {
      std::string_view b = param.substr(9);
      if (b.size() >= 2 && b.front() == '"' && b.back() == '"') b = b.substr(1, b.size() - 2);
      return b;
    }
  }
  return {};
}

}  // namespace

std::optional<std::string> multipart_field(std::string_view body, std::string_view content_type,
                                           std::string_view name) {
  const std::string_view boundary = boundary_of(content_type);
  if (boundary.empty() || boundary.size() > 200) return std::nullopt;
  const std::string delim = "--" + std::string(boundary);
  size_t pos = body.find(delim);
  while (pos != std::string_view::npos) {
    pos += delim.size();
    if (body.substr(pos, 2) == "--") return std::nullopt;  // the closing delimiter
    const size_t head_end = body.find("\r\n\r\n", pos);
    if (head_end == std::string_view::npos) return std::nullopt;
    const std::string_view head = body.substr(pos, head_end - pos);
    const size_t next = body.find(delim, head_end + 4);
    if (next == std::string_view::npos) return std::nullopt;
    // name="..." in Content-Disposition, and no filename (a file part is not a field)
    bool named = false;
    bool file = false;
    size_t line_start = 0;
    while (line_start <= head.size()) {
      size_t eol = head.find("\r\n", line_start);
      if (eol == std::string_view::npos) eol = head.size();
      const std::string_view line = head.substr(line_start, eol - line_start);
      line_start = eol + 2;
      if (!iequal_prefix(trim(line), "content-disposition:")) continue;
      size_t p = 0;
      while ((p = line.find("name=", p)) != std::string_view::npos) {
        const bool is_filename = p >= 4 && line.substr(p - 4, 4) == "file";
        p += 5;
        std::string_view v = line.substr(p);
        if (!v.empty() && v.front() == '"') {
          const size_t q = v.find('"', 1);
          v = v.substr(1, q == std::string_view::npos ? std::string_view::npos : q - 1);
        } else {
          v = v.substr(0, v.find(';'));
        }
        if (is_filename) {
          file = true;
        } else if (v == name) {
          named = true;
        }
      }
    }
    if (named && !file) {
      // The value ends before the CRLF that precedes the next delimiter.
      size_t end = next;
      if (end >= 2 && body.substr(end - 2, 2) == "\r\n") end -= 2;
      return std::string(body.substr(head_end + 4, end - (head_end + 4)));
    }
    pos = next;
  }
  return std::nullopt;
}

void extract_request(Api api, std::string_view body, std::string_view content_type,
                     const ExtractOptions& options, ExtractedRequest& out) {
  out = ExtractedRequest{};
  if (api == Api::kAudio) {
    if (auto m = multipart_field(body, content_type, "model")) {
      out.model = *m;
      out.readable = true;
    }
    if (auto s = multipart_field(body, content_type, "stream")) {
      out.readable = true;
      out.stream = *s == "true" || *s == "True" || *s == "1";
    }
    out.extra_prompt_tokens = options.audio_tokens;
    if (auto m = multipart_field(body, content_type, "max_completion_tokens")) {
      char* end = nullptr;
      const long long v = std::strtoll(m->c_str(), &end, 10);
      if (end != m->c_str() && v >= 0) out.max_tokens = v;
    }
    return;
  }
  if (api == Api::kNone) return;
  static thread_local simdjson::dom::parser parser;
  element doc;
  if (parser.parse(body.data(), body.size(), true).get(doc) != simdjson::SUCCESS) return;
  object root;
  if (doc.get_object().get(root) != simdjson::SUCCESS) return;
  Extractor(options, out).run(api, root);
}

std::optional<MemberSpan> find_member(std::string_view t, std::string_view key) {
  size_t i = 0;
  auto skip_ws = [&] {
    while (i < t.size() && (t[i] == ' ' || t[i] == '\t' || t[i] == '\n' || t[i] == '\r')) ++i;
  };
  // Past the end of the string starting at t[i] == '"'.
  auto skip_string = [&] {
    ++i;
    while (i < t.size() && t[i] != '"') i += t[i] == '\\' ? 2 : 1;
    ++i;
  };
  // Past the end of the value starting at i.
  auto skip_value = [&] {
    int depth = 0;
    while (i < t.size()) {
      const char c = t[i];
      if (c == '"') {
        skip_string();
        if (depth == 0) return;
        continue;
      }
      if (c == '{' || c == '[') {
        ++depth;
      } else if (c == '}' || c == ']') {
        if (depth == 0) return;  // the end of the enclosing object
        if (--depth == 0) {
          ++i;
          return;
        }
      } else if (depth == 0 && c == ',') {
        return;
      }
      ++i;
    }
  };
  skip_ws();
  if (i >= t.size() || t[i] != '{') return std::nullopt;
  ++i;
  size_t prev_comma = std::string_view::npos;  // the comma before this member
  while (true) {
    skip_ws();
    if (i >= t.size() || t[i] != '"') return std::nullopt;
    const size_t member_begin = i;
    const size_t name_begin = i + 1;
    skip_string();
    if (i > t.size()) return std::nullopt;
    const std::string_view name = t.substr(name_begin, i - 1 - name_begin);
    skip_ws();
    if (i >= t.size() || t[i] != ':') return std::nullopt;
    ++i;
    skip_ws();
    const size_t value_begin = i;
    skip_value();
    if (i > t.size()) return std::nullopt;
    size_t value_end = i;
    while (value_end > value_begin && (t[value_end - 1] == ' ' || t[value_end - 1] == '\n' ||
                                       t[value_end - 1] == '\r' || t[value_end - 1] == '\t'))
      --value_end;
    skip_ws();
    const bool last = i >= t.size() || t[i] != ',';
    if (name == key) {
      MemberSpan s;
      s.value_begin = value_begin;
      s.value_end = value_end;
      if (!last) {
        s.member_begin = member_begin;
        s.member_end = i + 1;  // through the following comma
      } else if (prev_comma != std::string_view::npos) {
        s.member_begin = prev_comma;  // from the preceding comma
        s.member_end = value_end;
      } else {
        s.member_begin = member_begin;  // the only member
        s.member_end = value_end;
      }
      return s;
    }
    if (last) return std::nullopt;
    prev_comma = i;
    ++i;
  }
}

}  // namespace eta::openai
