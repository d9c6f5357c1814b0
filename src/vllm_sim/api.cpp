#include "vllm_sim/api.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include <boost/json.hpp>

#include "engine/tokenizer.hpp"

namespace eta::vllm_sim::api {

namespace json = boost::json;

namespace {

uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

openai::Error invalid(const std::string& loc, const std::string& msg) {
  return openai::validation_error("1 validation error: body." + loc + ": " + msg);
}

// Parses the body into a JSON object, or a 400 "Bad Request" as vLLM's FastAPI layer answers.
bool parse_object(std::string_view body, json::object& out, openai::Error& error) {
  boost::system::error_code ec;
  json::value v = json::parse(json::string_view(body.data(), body.size()), ec);
  if (ec) {
    error =
        openai::validation_error("1 validation error: body: JSON decode error: " + ec.message());
    return false;
  }
  if (!v.is_object()) {
    error =
        openai::validation_error("1 validation error: body: Input should be a valid dictionary");
    return false;
  }
  out = std::move(v.as_object());
  return true;
}

const json::value* get(const json::object& o, std::string_view key) {
  auto it = o.find(json::string_view(key.data(), key.size()));
  if (it == o.end() || it->value().is_null()) return nullptr;
  return &it->value();
}

bool optional_string(const json::object& o, std::string_view key, std::string& out,
                     openai::Error& error) {
  const json::value* v = get(o, key);
  if (!v) return true;
  if (!v->is_string()) {
    error = invalid(std::string(key), "Input should be a valid string");
    return false;
  }
  out = std::string(v->as_string());
  return true;
}

// pydantic's lax int.
bool lax_int(const json::value& v, int64_t& out) {
  if (v.is_int64()) {
    out = v.as_int64();
    return true;
  }
  if (v.is_double() && std::trunc(v.as_double()) == v.as_double()) {
    out = static_cast<int64_t>(v.as_double());
    return true;
  }
  if (v.is_bool()) {
    out = v.as_bool() ? 1 : 0;
    return true;
  }
  if (v.is_string()) {
    const std::string s(v.as_string());
    char* end = nullptr;
    const long long x = std::strtoll(s.c_str(), &end, 10);
    if (!s.empty() && end == s.c_str() + s.size()) {
      out = x;
      return true;
    }
  }
  return false;
}

bool lax_bool(const json::value& v, bool& out) {
  if (v.is_bool()) {
    out = v.as_bool();
    return true;
  }
  if (v.is_int64() && (v.as_int64() == 0 || v.as_int64() == 1)) {
    out = v.as_int64() == 1;
    return true;
  }
  if (v.is_string()) {
    std::string s(v.as_string());
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (s == "true" || s == "1" || s == "yes" || s == "on" || s == "t" || s == "y") {
      out = true;
      return true;
    }
    if (s == "false" || s == "0" || s == "no" || s == "off" || s == "f" || s == "n") {
      out = false;
      return true;
    }
  }
  return false;
}

bool token_list(const json::array& a, std::vector<uint32_t>& out) {
  out.clear();
  for (const auto& x : a) {
    int64_t id = 0;
    if (x.is_string() || !lax_int(x, id) || id < 0 || id > 0xffffffffll) return false;
    out.push_back(static_cast<uint32_t>(id));
  }
  return true;
}

// `input` of embeddings/pooling/classify: str | [str] | [int] | [[int]].
bool inputs(const json::value& v, std::vector<std::vector<uint32_t>>& out) {
  out.clear();
  if (v.is_string()) {
    out.push_back(engine::tokenize(std::string_view(v.as_string())));
    return true;
  }
  if (!v.is_array()) return false;
  const json::array& a = v.as_array();
  if (a.empty()) return false;
  if (a[0].is_string()) {
    for (const auto& x : a) {
      if (!x.is_string()) return false;
      out.push_back(engine::tokenize(std::string_view(x.as_string())));
    }
    return true;
  }
  if (a[0].is_array()) {
    for (const auto& x : a) {
      if (!x.is_array()) return false;
      if (!token_list(x.as_array(), out.emplace_back())) return false;
    }
    return true;
  }
  return token_list(a, out.emplace_back());
}

// A side of a score pair: a string or a list of strings (or {"text"} / {"content"} objects).
bool texts(const json::value& v, std::vector<std::string>& out) {
  out.clear();
  auto one = [&](const json::value& x) {
    if (x.is_string()) {
      out.emplace_back(x.as_string());
      return true;
    }
    if (x.is_object()) {
      for (const char* k : {"text", "content"}) {
        const json::value* t = get(x.as_object(), k);
        if (t && t->is_string()) {
          out.emplace_back(t->as_string());
          return true;
        }
      }
    }
    return false;
  };
  if (v.is_array()) {
    for (const auto& x : v.as_array()) {
      if (!one(x)) return false;
    }
    return !out.empty();
  }
  return one(v);
}

std::vector<uint32_t> pair_tokens(const std::string& a, const std::string& b) {
  std::vector<uint32_t> t = engine::tokenize(a);
  std::vector<uint32_t> u = engine::tokenize(b);
  t.insert(t.end(), u.begin(), u.end());
  return t;
}

json::object usage_json(int64_t prompt_tokens) {
  json::object u;
  u["prompt_tokens"] = prompt_tokens;
  u["total_tokens"] = prompt_tokens;
  u["completion_tokens"] = 0;
  u["prompt_tokens_details"] = nullptr;
  return u;
}

json::string_view js(std::string_view s) {
  return json::string_view(s.data(), s.size());
}

}  // namespace

bool parse_pooling(PoolingKind kind, std::string_view body, PoolingRequest& out,
                   openai::Error& error) {
  out = PoolingRequest{};
  out.kind = kind;
  json::object o;
  if (!parse_object(body, o, error)) return false;
  if (!optional_string(o, "model", out.model, error)) return false;
  switch (kind) {
    case PoolingKind::kEmbed:
    case PoolingKind::kPool:
    case PoolingKind::kClassify: {
      const json::value* in = get(o, "input");
      if (!in) {
        error = invalid("input", "Field required");
        return false;
      }
      if (!inputs(*in, out.prompts)) {
        error =
            invalid("input", "Input should be a valid string, a list of strings or of token ids");
        return false;
      }
      if (const json::value* d = get(o, "dimensions")) {
        int64_t dim = 0;
        if (!lax_int(*d, dim)) {
          error = invalid("dimensions", "Input should be a valid integer");
          return false;
        }
        if (dim < 1) {
          error = openai::bad_request("dimensions must be a positive integer.", "dimensions");
          return false;
        }
        out.dimensions = static_cast<int>(std::min<int64_t>(dim, 65536));
      }
      break;
    }
    case PoolingKind::kScore: {
      const json::value* a = get(o, "text_1");
      const json::value* b = get(o, "text_2");
      if (!a) a = get(o, "queries");
      if (!b) b = get(o, "documents");
      if (!b) b = get(o, "items");
      std::vector<std::string> left, right;
      if (!a || !texts(*a, left)) {
        error = invalid("text_1", a ? "Input should be a valid string or list" : "Field required");
        return false;
      }
      if (!b || !texts(*b, right)) {
        error = invalid("text_2", b ? "Input should be a valid string or list" : "Field required");
        return false;
      }
      if (left.size() != 1 && right.size() != 1 && left.size() != right.size()) {
        error = openai::bad_request(
            "text_1 and text_2 must have the same length, or one of "
            "them must be a single text.");
        return false;
      }
      const size_t n = std::max(left.size(), right.size());
      for (size_t i = 0; i < n; ++i) {
        out.prompts.push_back(
            pair_tokens(left[left.size() == 1 ? 0 : i], right[right.size() == 1 ? 0 : i]));
      }
      break;
    }
    case PoolingKind::kRerank: {
      std::string query;
      const json::value* q = get(o, "query");
      if (!q || !q->is_string()) {
        error = invalid("query", q ? "Input should be a valid string" : "Field required");
        return false;
      }
      query = std::string(q->as_string());
      const json::value* d = get(o, "documents");
      if (!d || !texts(*d, out.documents)) {
        error = invalid("documents", d ? "Input should be a valid list" : "Field required");
        return false;
      }
      for (const auto& doc : out.documents) out.prompts.push_back(pair_tokens(query, doc));
      if (const json::value* t = get(o, "top_n")) {
        int64_t n = 0;
        if (!lax_int(*t, n)) {
          error = invalid("top_n", "Input should be a valid integer");
          return false;
        }
        out.top_n = n;
      }
      break;
    }
  }
  return true;
}

std::vector<double> embedding(const std::vector<uint32_t>& tokens, int dim) {
  std::vector<double> v(static_cast<size_t>(std::max(dim, 1)), 0.0);
  for (size_t i = 0; i < tokens.size(); ++i) {
    uint64_t state = mix64(tokens[i] * 0x9e3779b97f4a7c15ull + 1);
    for (auto& x : v) {
      state = mix64(state + 0x9e3779b97f4a7c15ull);
      x += static_cast<double>(state >> 11) * 0x1.0p-53 - 0.5;
    }
  }
  double norm = 0;
  for (double x : v) norm += x * x;
  norm = std::sqrt(norm);
  if (norm == 0) {
    v[0] = 1;
    return v;
  }
  for (auto& x : v) x /= norm;
  return v;
}

double pair_score(const std::vector<uint32_t>& tokens) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (uint32_t t : tokens) h = mix64(h ^ t);
  const double u = static_cast<double>(h >> 11) * 0x1.0p-53;  // [0, 1)
  return 1.0 / (1.0 + std::exp(-8.0 * (u - 0.5)));
}

std::string pooling_body(const PoolingRequest& req, std::string_view id, int64_t created,
                         std::string_view model, const std::vector<int>& prompt_tokens) {
  const int64_t total = std::accumulate(prompt_tokens.begin(), prompt_tokens.end(), int64_t{0});
  json::object o;
  o["id"] = js(id);
  if (req.kind == PoolingKind::kRerank) {
    o["model"] = js(model);
    json::object usage;
    usage["total_tokens"] = total;
    o["usage"] = std::move(usage);
    std::vector<size_t> order(req.prompts.size());
    std::iota(order.begin(), order.end(), size_t{0});
    std::vector<double> scores;
    for (const auto& p : req.prompts) scores.push_back(pair_score(p));
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t a, size_t b) { return scores[a] > scores[b]; });
    if (req.top_n && *req.top_n > 0 && static_cast<size_t>(*req.top_n) < order.size()) {
      order.resize(static_cast<size_t>(*req.top_n));
    }
    json::array results;
    for (size_t i : order) {
      json::object r;
      r["index"] = static_cast<int64_t>(i);
      json::object doc;
      doc["text"] = js(req.documents[i]);
      r["document"] = std::move(doc);
      r["relevance_score"] = scores[i];
      results.emplace_back(std::move(r));
    }
    o["results"] = std::move(results);
    return json::serialize(o);
  }
  o["object"] = "list";
  o["created"] = created;
  o["model"] = js(model);
  json::array data;
  for (size_t i = 0; i < req.prompts.size(); ++i) {
    json::object d;
    d["index"] = static_cast<int64_t>(i);
    switch (req.kind) {
      case PoolingKind::kEmbed:
      case PoolingKind::kPool: {
        const auto v =
            embedding(req.prompts[i], req.dimensions > 0 ? req.dimensions : kEmbeddingDim);
        json::array a;
        a.reserve(v.size());
        for (double x : v) a.emplace_back(x);
        d["object"] = req.kind == PoolingKind::kEmbed ? "embedding" : "pooling";
        d[req.kind == PoolingKind::kEmbed ? "embedding" : "data"] = std::move(a);
        break;
      }
      case PoolingKind::kClassify: {
        const double p = pair_score(req.prompts[i]);
        d["label"] = p >= 0.5 ? "LABEL_1" : "LABEL_0";
        json::array probs;
        probs.emplace_back(1.0 - p);
        probs.emplace_back(p);
        d["probs"] = std::move(probs);
        d["num_classes"] = 2;
        break;
      }
      case PoolingKind::kScore:
        d["object"] = "score";
        d["score"] = pair_score(req.prompts[i]);
        break;
      case PoolingKind::kRerank:
        break;
    }
    data.emplace_back(std::move(d));
  }
  o["data"] = std::move(data);
  o["usage"] = usage_json(total);
  return json::serialize(o);
}

// ---- /v1/responses and /v1/messages ------------------------------------------------------------

namespace {

// The content of a message item: a string, or parts (text-like parts join with "\n", media
// parts are counted).
bool item_content(const json::value& c, std::string& text, int64_t& media, const std::string& loc,
                  openai::Error& error) {
  text.clear();
  if (c.is_string()) {
    text = std::string(c.as_string());
    return true;
  }
  if (!c.is_array()) {
    error = invalid(loc, "Input should be a valid string or list");
    return false;
  }
  bool first = true;
  for (const auto& part : c.as_array()) {
    if (!part.is_object()) {
      error = invalid(loc, "Input should be a valid dictionary");
      return false;
    }
    const json::object& p = part.as_object();
    std::string type;
    if (const json::value* t = get(p, "type"); t && t->is_string())
      type = std::string(t->as_string());
    if (type == "input_text" || type == "output_text" || type == "text") {
      const json::value* t = get(p, "text");
      if (!t || !t->is_string()) {
        error = invalid(loc + ".text", "Field required");
        return false;
      }
      if (!first) text += '\n';
      text += std::string(t->as_string());
      first = false;
    } else if (type == "input_image" || type == "image" || type == "input_audio" ||
               type == "input_file" || type == "image_url" || type == "document") {
      ++media;
    } else {
      error = openai::bad_request("Unknown part type: " + type, loc);
      return false;
    }
  }
  return true;
}

bool finish_chat(openai::RequestFields& out, openai::Error& error) {
  out.endpoint = openai::Endpoint::kChat;
  out.prompt_text = openai::render_chat_prompt(out.messages);
  if (out.max_tokens && *out.max_tokens < 1) {
    error = openai::bad_request(
        "max_tokens must be at least 1, got " + std::to_string(*out.max_tokens) + ".",
        "max_tokens");
    return false;
  }
  return true;
}

}  // namespace

bool parse_responses(std::string_view body, openai::RequestFields& out, bool& store,
                     bool& background, openai::Error& error) {
  out = openai::RequestFields{};
  out.endpoint = openai::Endpoint::kChat;
  store = true;
  background = false;
  json::object o;
  if (!parse_object(body, o, error)) return false;
  if (!optional_string(o, "model", out.model, error)) return false;
  std::string instructions;
  if (!optional_string(o, "instructions", instructions, error)) return false;
  if (!instructions.empty()) out.messages.push_back({"system", instructions});
  const json::value* in = get(o, "input");
  if (!in) {
    error = invalid("input", "Field required");
    return false;
  }
  if (in->is_string()) {
    out.messages.push_back({"user", std::string(in->as_string())});
  } else if (in->is_array()) {
    size_t i = 0;
    for (const auto& item : in->as_array()) {
      const std::string loc = "input." + std::to_string(i++);
      if (!item.is_object()) {
        error = invalid(loc, "Input should be a valid dictionary");
        return false;
      }
      const json::object& it = item.as_object();
      openai::ChatMessage m;
      m.role = "user";
      if (!optional_string(it, "role", m.role, error)) return false;
      if (const json::value* c = get(it, "content")) {
        if (!item_content(*c, m.content, out.media_parts, loc + ".content", error)) return false;
      }
      out.messages.push_back(std::move(m));
    }
  } else {
    error = invalid("input", "Input should be a valid string or list");
    return false;
  }
  for (const char* key : {"max_output_tokens"}) {
    if (const json::value* v = get(o, key)) {
      int64_t m = 0;
      if (!lax_int(*v, m)) {
        error = invalid(key, "Input should be a valid integer");
        return false;
      }
      out.max_tokens = m;
    }
  }
  const struct {
    const char* key;
    bool* dst;
  } flags[] = {{"stream", &out.stream}, {"store", &store}, {"background", &background}};
  for (const auto& f : flags) {
    if (const json::value* v = get(o, f.key); v && !lax_bool(*v, *f.dst)) {
      error = invalid(f.key, "Input should be a valid boolean");
      return false;
    }
  }
  if (background && !store) {
    error = openai::bad_request("background can only be used when `store` is true", "background");
    return false;
  }
  if (const json::value* v = get(o, "eta_sim"); v && v->is_object()) {
    int64_t n = 0;
    if (const json::value* t = get(v->as_object(), "output_tokens"); t && lax_int(*t, n) && n > 0) {
      out.sim_output_tokens = n;
    }
  }
  return finish_chat(out, error);
}

bool parse_messages(std::string_view body, bool count_tokens, openai::RequestFields& out,
                    openai::Error& error) {
  out = openai::RequestFields{};
  out.endpoint = openai::Endpoint::kChat;
  json::object o;
  if (!parse_object(body, o, error)) return false;
  if (!optional_string(o, "model", out.model, error)) return false;
  if (const json::value* s = get(o, "system")) {
    openai::ChatMessage m;
    m.role = "system";
    if (!item_content(*s, m.content, out.media_parts, "system", error)) return false;
    out.messages.push_back(std::move(m));
  }
  const json::value* msgs = get(o, "messages");
  if (!msgs || !msgs->is_array()) {
    error = invalid("messages", msgs ? "Input should be a valid list" : "Field required");
    return false;
  }
  size_t i = 0;
  for (const auto& item : msgs->as_array()) {
    const std::string loc = "messages." + std::to_string(i++);
    if (!item.is_object()) {
      error = invalid(loc, "Input should be a valid dictionary");
      return false;
    }
    const json::object& it = item.as_object();
    openai::ChatMessage m;
    const json::value* role = get(it, "role");
    if (!role || !role->is_string()) {
      error = invalid(loc + ".role", "Field required");
      return false;
    }
    m.role = std::string(role->as_string());
    if (const json::value* c = get(it, "content")) {
      if (!item_content(*c, m.content, out.media_parts, loc + ".content", error)) return false;
    }
    out.messages.push_back(std::move(m));
  }
  if (!count_tokens) {
    const json::value* mt = get(o, "max_tokens");
    int64_t m = 0;
    if (!mt || !lax_int(*mt, m)) {
      error = invalid("max_tokens", mt ? "Input should be a valid integer" : "Field required");
      return false;
    }
    out.max_tokens = m;
    if (const json::value* v = get(o, "stream"); v && !lax_bool(*v, out.stream)) {
      error = invalid("stream", "Input should be a valid boolean");
      return false;
    }
  }
  if (const json::value* v = get(o, "eta_sim"); v && v->is_object()) {
    int64_t n = 0;
    if (const json::value* t = get(v->as_object(), "output_tokens"); t && lax_int(*t, n) && n > 0) {
      out.sim_output_tokens = n;
    }
  }
  return finish_chat(out, error);
}

std::string anthropic_error_body(const openai::Error& e) {
  json::object inner;
  inner["type"] = e.status == 404   ? "not_found_error"
                  : e.status == 401 ? "authentication_error"
                  : e.status == 503 ? "overloaded_error"
                  : e.status >= 500 ? "api_error"
                                    : "invalid_request_error";
  inner["message"] = js(e.message);
  json::object o;
  o["type"] = "error";
  o["error"] = std::move(inner);
  return json::serialize(o);
}

std::string response_json(const ResponseObject& r) {
  json::object o;
  o["id"] = js(r.id);
  o["object"] = "response";
  o["created_at"] = r.created_at;
  o["model"] = js(r.model);
  o["status"] = js(r.status);
  o["background"] = r.background;
  if (r.status == "incomplete") {
    json::object d;
    d["reason"] = js(r.incomplete_reason);
    o["incomplete_details"] = std::move(d);
  } else {
    o["incomplete_details"] = nullptr;
  }
  o["error"] = nullptr;
  o["instructions"] = nullptr;
  if (r.max_output_tokens) {
    o["max_output_tokens"] = *r.max_output_tokens;
  } else {
    o["max_output_tokens"] = nullptr;
  }
  json::array output;
  if (r.status != "queued") {
    json::object part;
    part["type"] = "output_text";
    part["text"] = js(r.text);
    part["annotations"] = json::array();
    json::array content;
    content.emplace_back(std::move(part));
    json::object item;
    item["id"] = js(r.item_id);
    item["type"] = "message";
    item["role"] = "assistant";
    item["status"] = r.status == "in_progress" ? "in_progress" : "completed";
    item["content"] = std::move(content);
    output.emplace_back(std::move(item));
  }
  o["output"] = std::move(output);
  o["parallel_tool_calls"] = true;
  o["tool_choice"] = "auto";
  o["tools"] = json::array();
  json::object usage;
  usage["input_tokens"] = r.input_tokens;
  json::object in_details;
  in_details["cached_tokens"] = 0;
  usage["input_tokens_details"] = std::move(in_details);
  usage["output_tokens"] = r.output_tokens;
  json::object out_details;
  out_details["reasoning_tokens"] = 0;
  usage["output_tokens_details"] = std::move(out_details);
  usage["total_tokens"] = r.input_tokens + r.output_tokens;
  o["usage"] = std::move(usage);
  return json::serialize(o);
}

namespace {

std::string sse(std::string_view type, json::object o) {
  std::string out = "event: ";
  out.append(type);
  out += "\ndata: ";
  out += json::serialize(o);
  out += "\n\n";
  return out;
}

json::object event(std::string_view type, int64_t& seq) {
  json::object o;
  o["type"] = js(type);
  o["sequence_number"] = seq++;
  return o;
}

json::value parsed(const std::string& s) {
  return json::parse(s);
}

json::object text_part(std::string_view text) {
  json::object part;
  part["type"] = "output_text";
  part["text"] = js(text);
  part["annotations"] = json::array();
  return part;
}

}  // namespace

std::string responses_stream_start(const ResponseObject& r, int64_t& seq) {
  std::string out;
  for (const char* type : {"response.created", "response.in_progress"}) {
    json::object o = event(type, seq);
    o["response"] = parsed(response_json(r));
    out += sse(type, std::move(o));
  }
  json::object item;
  item["id"] = js(r.item_id);
  item["type"] = "message";
  item["role"] = "assistant";
  item["status"] = "in_progress";
  item["content"] = json::array();
  json::object added = event("response.output_item.added", seq);
  added["output_index"] = 0;
  added["item"] = std::move(item);
  out += sse("response.output_item.added", std::move(added));
  json::object part = event("response.content_part.added", seq);
  part["item_id"] = js(r.item_id);
  part["output_index"] = 0;
  part["content_index"] = 0;
  part["part"] = text_part("");
  out += sse("response.content_part.added", std::move(part));
  return out;
}

std::string responses_delta(const ResponseObject& r, int64_t& seq, std::string_view delta) {
  json::object o = event("response.output_text.delta", seq);
  o["item_id"] = js(r.item_id);
  o["output_index"] = 0;
  o["content_index"] = 0;
  o["delta"] = js(delta);
  o["logprobs"] = json::array();
  return sse("response.output_text.delta", std::move(o));
}

std::string responses_stream_end(const ResponseObject& r, int64_t& seq) {
  std::string out;
  json::object done = event("response.output_text.done", seq);
  done["item_id"] = js(r.item_id);
  done["output_index"] = 0;
  done["content_index"] = 0;
  done["text"] = js(r.text);
  done["logprobs"] = json::array();
  out += sse("response.output_text.done", std::move(done));
  json::object part = event("response.content_part.done", seq);
  part["item_id"] = js(r.item_id);
  part["output_index"] = 0;
  part["content_index"] = 0;
  part["part"] = text_part(r.text);
  out += sse("response.content_part.done", std::move(part));
  json::array content;
  content.emplace_back(text_part(r.text));
  json::object item;
  item["id"] = js(r.item_id);
  item["type"] = "message";
  item["role"] = "assistant";
  item["status"] = "completed";
  item["content"] = std::move(content);
  json::object item_done = event("response.output_item.done", seq);
  item_done["output_index"] = 0;
  item_done["item"] = std::move(item);
  out += sse("response.output_item.done", std::move(item_done));
  const char* final_type = r.status == "incomplete" ? "response.incomplete" : "response.completed";
  json::object completed = event(final_type, seq);
  completed["response"] = parsed(response_json(r));
  out += sse(final_type, std::move(completed));
  return out;
}

std::string message_json(std::string_view id, std::string_view model, std::string_view text,
                         std::string_view stop_reason, int64_t input_tokens,
                         int64_t output_tokens) {
  json::object o;
  o["id"] = js(id);
  o["type"] = "message";
  o["role"] = "assistant";
  json::array content;
  if (!text.empty() || stop_reason.empty()) {
    json::object block;
    block["type"] = "text";
    block["text"] = js(text);
    content.emplace_back(std::move(block));
  }
  o["content"] = std::move(content);
  o["model"] = js(model);
  if (stop_reason.empty()) {
    o["stop_reason"] = nullptr;
  } else {
    o["stop_reason"] = js(stop_reason);
  }
  o["stop_sequence"] = nullptr;
  json::object usage;
  usage["input_tokens"] = input_tokens;
  usage["output_tokens"] = output_tokens;
  o["usage"] = std::move(usage);
  return json::serialize(o);
}

std::string messages_stream_start(std::string_view id, std::string_view model,
                                  int64_t input_tokens) {
  std::string out;
  json::object msg = parsed(message_json(id, model, "", "", input_tokens, 0)).as_object();
  msg["content"] = json::array();
  json::object start;
  start["type"] = "message_start";
  start["message"] = std::move(msg);
  out += sse("message_start", std::move(start));
  json::object block;
  block["type"] = "text";
  block["text"] = "";
  json::object cbs;
  cbs["type"] = "content_block_start";
  cbs["index"] = 0;
  cbs["content_block"] = std::move(block);
  out += sse("content_block_start", std::move(cbs));
  return out;
}

std::string messages_delta(std::string_view text) {
  json::object delta;
  delta["type"] = "text_delta";
  delta["text"] = js(text);
  json::object o;
  o["type"] = "content_block_delta";
  o["index"] = 0;
  o["delta"] = std::move(delta);
  return sse("content_block_delta", std::move(o));
}

std::string messages_stream_end(std::string_view stop_reason, int64_t output_tokens) {
  std::string out;
  json::object stop;
  stop["type"] = "content_block_stop";
  stop["index"] = 0;
  out += sse("content_block_stop", std::move(stop));
  json::object delta;
  delta["stop_reason"] = js(stop_reason);
  delta["stop_sequence"] = nullptr;
  json::object usage;
  usage["output_tokens"] = output_tokens;
  json::object md;
  md["type"] = "message_delta";
  md["delta"] = std::move(delta);
  md["usage"] = std::move(usage);
  out += sse("message_delta", std::move(md));
  json::object ms;
  ms["type"] = "message_stop";
  out += sse("message_stop", std::move(ms));
  return out;
}

std::string transcription_json(std::string_view text, double seconds) {
  json::object usage;
  usage["type"] = "duration";
  usage["seconds"] = static_cast<int64_t>(std::ceil(seconds));
  json::object o;
  o["text"] = js(text);
  o["usage"] = std::move(usage);
  return json::serialize(o);
}

std::string transcription_chunk(std::string_view id, int64_t created, std::string_view model,
                                std::string_view text, std::string_view finish_reason) {
  json::object delta;
  delta["content"] = js(text);
  json::object choice;
  choice["delta"] = std::move(delta);
  if (finish_reason.empty()) {
    choice["finish_reason"] = nullptr;
  } else {
    choice["finish_reason"] = js(finish_reason);
  }
  choice["stop_reason"] = nullptr;
  json::array choices;
  choices.emplace_back(std::move(choice));
  json::object o;
  o["id"] = js(id);
  o["object"] = "transcription.chunk";
  o["created"] = created;
  o["model"] = js(model);
  o["choices"] = std::move(choices);
  return "data: " + json::serialize(o) + "\n\n";
}

// ---- render, detokenize, audio -----------------------------------------------------------------

std::string render_body(const std::vector<std::vector<uint32_t>>& prompts,
                        const std::vector<std::string>& texts, bool list) {
  json::array all;
  for (size_t i = 0; i < prompts.size(); ++i) {
    json::object o;
    json::array ids;
    for (uint32_t t : prompts[i]) ids.emplace_back(static_cast<uint64_t>(t));
    o["prompt_token_ids"] = std::move(ids);
    if (i < texts.size()) {
      o["prompt"] = js(texts[i]);
    } else {
      o["prompt"] = nullptr;
    }
    all.emplace_back(std::move(o));
  }
  if (!list && all.size() == 1) return json::serialize(all[0]);
  return json::serialize(all);
}

bool parse_detokenize(std::string_view body, std::string& model, std::vector<uint32_t>& tokens,
                      openai::Error& error) {
  json::object o;
  if (!parse_object(body, o, error)) return false;
  model.clear();
  if (!optional_string(o, "model", model, error)) return false;
  const json::value* t = get(o, "tokens");
  if (!t || !t->is_array() || !token_list(t->as_array(), tokens)) {
    error = invalid("tokens", t ? "Input should be a valid list of integers" : "Field required");
    return false;
  }
  return true;
}

bool parse_multipart(std::string_view content_type, std::string_view body,
                     std::vector<FormField>& out) {
  out.clear();
  std::string lower(content_type);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower.rfind("multipart/form-data", 0) != 0) return false;
  const size_t b = lower.find("boundary=");
  if (b == std::string::npos) return false;
  std::string boundary(content_type.substr(b + 9));
  if (const size_t semi = boundary.find(';'); semi != std::string::npos) boundary.resize(semi);
  if (boundary.size() >= 2 && boundary.front() == '"')
    boundary = boundary.substr(1, boundary.size() - 2);
  if (boundary.empty()) return false;
  const std::string delim = "--" + boundary;
  size_t pos = body.find(delim);
  if (pos == std::string_view::npos) return false;
  while (true) {
    pos += delim.size();
    if (body.substr(pos, 2) == "--") return true;  // the closing delimiter
    if (body.substr(pos, 2) != "\r\n") return false;
    pos += 2;
    const size_t head_end = body.find("\r\n\r\n", pos);
    if (head_end == std::string_view::npos) return false;
    const std::string_view head = body.substr(pos, head_end - pos);
    const size_t next = body.find("\r\n" + delim, head_end + 4);
    if (next == std::string_view::npos) return false;
    FormField f;
    f.value = std::string(body.substr(head_end + 4, next - head_end - 4));
    // Content-Disposition: form-data; name="x"; filename="y"
    auto param = [&](std::string_view key) -> std::string {
      const std::string k = std::string(key) + "=\"";
      size_t at = 0;
      while ((at = head.find(k, at)) != std::string_view::npos) {
        if (at == 0 || head[at - 1] == ' ' || head[at - 1] == ';') {
          const size_t start = at + k.size();
          const size_t end = head.find('"', start);
          if (end == std::string_view::npos) return {};
          return std::string(head.substr(start, end - start));
        }
        at += k.size();
      }
      return {};
    };
    f.name = param("name");
    f.filename = param("filename");
    out.push_back(std::move(f));
    pos = next + 2;
  }
}

double audio_seconds(std::string_view file) {
  auto u32 = [&](size_t at) -> uint32_t {
    if (at + 4 > file.size()) return 0;
    const auto* p = reinterpret_cast<const unsigned char*>(file.data() + at);
    return p[0] | (p[1] << 8) | (p[2] << 16) | (static_cast<uint32_t>(p[3]) << 24);
  };
  if (file.size() >= 12 && file.substr(0, 4) == "RIFF" && file.substr(8, 4) == "WAVE") {
    uint32_t byte_rate = 0;
    size_t at = 12;
    while (at + 8 <= file.size()) {
      const std::string_view id = file.substr(at, 4);
      const uint32_t size = u32(at + 4);
      if (id == "fmt ") byte_rate = u32(at + 8 + 8);
      if (id == "data" && byte_rate > 0) {
        const double bytes = std::min<double>(size, static_cast<double>(file.size() - at - 8));
        return bytes / byte_rate;
      }
      at += 8 + size + (size & 1);
    }
  }
  return static_cast<double>(file.size()) / 16000.0;
}

int audio_prompt_tokens(double seconds) {
  return std::max(1, static_cast<int>(std::ceil(50.0 * seconds)));
}

int audio_output_tokens(double seconds) {
  return std::max(1, static_cast<int>(std::lround(3.0 * seconds)));
}

}  // namespace eta::vllm_sim::api
