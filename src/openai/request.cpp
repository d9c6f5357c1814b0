#include "openai/request.hpp"

#include <simdjson.h>

#include <boost/json.hpp>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <exception>
#include <limits>
#include <utility>

#include <fmt/format.h>

#include "openai/lax.hpp"

namespace eta::openai {

namespace {

using simdjson::dom::array;
using simdjson::dom::element;
using simdjson::dom::element_type;
using simdjson::dom::object;

const char* type_name(element_type t) {
  switch (t) {
    case element_type::OBJECT:
      return "object";
    case element_type::ARRAY:
      return "array";
    case element_type::STRING:
      return "string";
    case element_type::INT64:
    case element_type::UINT64:
      return "integer";
    case element_type::DOUBLE:
      return "number";
    case element_type::BOOL:
      return "boolean";
    case element_type::NULL_VALUE:
      return "null";
  }
  return "unknown";
}

// Python's truthiness of a raw JSON value (vLLM's `mode="before"` validators test raw data).
bool truthy(element v) {
  switch (v.type()) {
    case element_type::NULL_VALUE:
      return false;
    case element_type::BOOL:
      return v.get_bool().value_unsafe();
    case element_type::INT64:
      return v.get_int64().value_unsafe() != 0;
    case element_type::UINT64:
      return true;
    case element_type::DOUBLE:
      return v.get_double().value_unsafe() != 0;
    case element_type::STRING:
      return !v.get_string().value_unsafe().empty();
    case element_type::ARRAY:
      return v.get_array().value_unsafe().size() != 0;
    case element_type::OBJECT:
      return v.get_object().value_unsafe().size() != 0;
  }
  return false;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// Content-part types of vLLM's chat parser: text-like ones add to the message's text, media
// ones are counted.
bool is_text_part(std::string_view t) {
  return t == "text" || t == "input_text" || t == "refusal" || t == "thinking" ||
         t == "output_text";
}
bool is_media_part(std::string_view t) {
  return t == "image_url" || t == "image_embeds" || t == "image_pil" || t == "input_image" ||
         t == "audio_url" || t == "input_audio" || t == "audio_embeds" || t == "video_url" ||
         t == "file";
}

// Reads the fields of one request. Every method returns false with error_ set on a bad field.
class RequestParser {
 public:
  RequestParser(Endpoint endpoint, RequestFields& out, Error& error)
      : endpoint_(endpoint), out_(out), error_(error) {}

  bool parse(const object& root) {
    out_ = RequestFields{};
    out_.endpoint = endpoint_;
    // vLLM's mode="before" model validators see the raw body first.
    element so;
    element st;
    const bool has_so = root["stream_options"].get(so) == simdjson::SUCCESS;
    const bool has_st = root["stream"].get(st) == simdjson::SUCCESS;
    if (has_so && truthy(so) && !(has_st && truthy(st))) {
      return invalid("Stream options can only be defined when `stream=True`.", "stream_options",
                     "stream_options");
    }
    if (endpoint_ == Endpoint::kCompletions) {
      element pr;
      const bool has_pr = root["prompt"].get(pr) == simdjson::SUCCESS;
      if (!has_pr || pr.is_null() ||
          (pr.type() == element_type::STRING && pr.get_string().value_unsafe().empty())) {
        return invalid("Either prompt or prompt_embeds must be provided and non-empty.", "prompt",
                       "prompt");
      }
    }
    // Iterate every member: with duplicate keys the last one wins, as in Python's json.
    for (auto [key, value] : root) {
      if (!field(key, value)) return false;
    }
    return finish();
  }

  // POST /tokenize: {model?, prompt | messages, add_special_tokens?, return_token_strs?}.
  bool parse_tokenize(const object& root) {
    out_ = RequestFields{};
    out_.max_tokens.reset();
    for (auto [key, value] : root) {
      bool ok = true;
      if (key == "model") {
        ok = value.is_null() || string("model", value, out_.model);
      } else if (key == "prompt") {
        ok = prompt(value);
      } else if (key == "messages") {
        ok = messages(value);
      } else if (key == "return_token_strs") {
        out_.return_token_strs = false;
        ok = value.is_null() || boolean("return_token_strs", value, out_.return_token_strs);
      } else if (key == "add_special_tokens") {
        bool ignored = true;
        ok = value.is_null() || boolean("add_special_tokens", value, ignored);
      }
      if (!ok) return false;
    }
    if (has_messages_) {
      out_.endpoint = Endpoint::kChat;
      out_.prompt_text = render_chat_prompt(out_.messages);
      out_.prompt_token_ids.clear();
      out_.prompt_is_tokens = false;
      out_.prompts.clear();
    } else if (has_prompt_) {
      if (out_.prompts.size() > 1) {
        return fail(fmt::format("/tokenize takes one prompt; got a batch of {} prompts.",
                                out_.prompts.size()),
                    "prompt");
      }
      out_.endpoint = Endpoint::kCompletions;
    } else {
      return invalid("Field required", "prompt");
    }
    return true;
  }

 private:
  // A serving-time error (vLLM's BadRequestError).
  bool fail(std::string message, std::string param) {
    error_ = bad_request(std::move(message), std::move(param));
    return false;
  }

  // A SamplingParams check: VLLMValidationError's text carries "(parameter=P, value=V)".
  template <typename V>
  bool sampling(std::string message, std::string_view param, V value) {
    return fail(fmt::format("{} (parameter={}, value={})", message, param, value),
                std::string(param));
  }

  // A pydantic validation failure at `loc`; `param` is set only for vLLM's own validators.
  bool invalid(std::string_view msg, std::string_view loc, std::string param = {}) {
    if (!param.empty()) {
      std::string message =
          fmt::format("1 validation error: body: Value error, {} (parameter={})", msg, param);
      error_ = validation_error(std::move(message), std::move(param));
    } else {
      error_ = validation_error(fmt::format("1 validation error: body.{}: {}", loc, msg));
    }
    return false;
  }

  bool wrong_type(std::string_view param, std::string_view expected, element value) {
    return invalid(fmt::format("Input should be {}, got {}", expected, type_name(value.type())),
                   param);
  }

  // An integer field, with pydantic's lax int (openai/lax.hpp); vLLM's text when it fails.
  bool integer(std::string_view param, element value, int64_t& out) {
    if (const std::optional<int64_t> v = lax_int(value)) {
      out = *v;
      return true;
    }
    switch (value.type()) {
      case element_type::UINT64:
        return invalid("Input should be less than 2^63", param);
      case element_type::DOUBLE:
        return invalid("Input should be a valid integer, got a number with a fractional part",
                       param);
      case element_type::STRING:
        return invalid("Input should be a valid integer, unable to parse string as an integer",
                       param);
      default:
        return wrong_type(param, "a valid integer", value);
    }
  }

  bool number(std::string_view param, element value, double& out) {
    switch (value.type()) {
      case element_type::INT64:
        out = static_cast<double>(value.get_int64().value_unsafe());
        return true;
      case element_type::UINT64:
        out = static_cast<double>(value.get_uint64().value_unsafe());
        return true;
      case element_type::DOUBLE:
        out = value.get_double().value_unsafe();
        return true;
      case element_type::BOOL:
        out = value.get_bool().value_unsafe() ? 1 : 0;
        return true;
      case element_type::STRING: {
        const std::string s(trim(value.get_string().value_unsafe()));
        char* end = nullptr;
        errno = 0;
        const double d = s.empty() ? 0 : std::strtod(s.c_str(), &end);
        if (!s.empty() && end == s.c_str() + s.size() && errno == 0) {
          out = d;
          return true;
        }
        return invalid("Input should be a valid number, unable to parse string as a number", param);
      }
      default:
        return wrong_type(param, "a valid number", value);
    }
  }

  bool boolean(std::string_view param, element value, bool& out) {
    switch (value.type()) {
      case element_type::BOOL:
        out = value.get_bool().value_unsafe();
        return true;
      case element_type::INT64: {
        const int64_t v = value.get_int64().value_unsafe();
        if (v == 0 || v == 1) {
          out = v == 1;
          return true;
        }
        break;
      }
      case element_type::DOUBLE: {
        const double v = value.get_double().value_unsafe();
        if (v == 0 || v == 1) {
          out = v == 1;
          return true;
        }
        break;
      }
      case element_type::STRING: {
        std::string s(value.get_string().value_unsafe());
        for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        for (const char* t : {"1", "on", "t", "true", "y", "yes"}) {
          if (s == t) {
            out = true;
            return true;
          }
        }
        for (const char* f : {"0", "off", "f", "false", "n", "no"}) {
          if (s == f) {
            out = false;
            return true;
          }
        }
        return invalid("Input should be a valid boolean, unable to interpret input", param);
      }
      default:
        break;
    }
    return wrong_type(param, "a valid boolean", value);
  }

  bool string(std::string_view param, element value, std::string& out) {
    if (value.type() != element_type::STRING) return wrong_type(param, "a valid string", value);
    out.assign(value.get_string().value_unsafe());
    return true;
  }

  // max_tokens / max_completion_tokens: an integer, or null. Checked against 1 in finish().
  bool max_tokens(std::string_view param, element value, std::optional<int64_t>& out) {
    if (value.is_null()) {
      out.reset();
      return true;
    }
    int64_t v = 0;
    if (!integer(param, value, v)) return false;
    out = v;
    return true;
  }

  bool field(std::string_view key, element value) {
    if (key == "model") {
      out_.model.clear();
      return value.is_null() || string("model", value, out_.model);
    }
    if (key == "stream") {
      out_.stream = false;
      return value.is_null() || boolean("stream", value, out_.stream);
    }
    if (key == "stream_options") return stream_options(value);
    if (key == "max_tokens") return max_tokens("max_tokens", value, max_tokens_);
    if (key == "max_completion_tokens" && endpoint_ == Endpoint::kChat) {
      return max_tokens("max_completion_tokens", value, max_completion_tokens_);
    }
    if (key == "n") {
      out_.n = 1;
      return value.is_null() || integer("n", value, out_.n);
    }
    if (key == "stream_interval") {
      out_.stream_interval.reset();
      if (value.is_null()) return true;
      int64_t v = 0;
      if (!integer("stream_interval", value, v)) return false;
      if (v < 1) return invalid("Input should be greater than or equal to 1", "stream_interval");
      out_.stream_interval = v;
      return true;
    }
    if (key == "session_id") {
      out_.session_id.clear();
      return value.is_null() || string("session_id", value, out_.session_id);
    }
    if (key == "echo" && endpoint_ == Endpoint::kCompletions) {
      out_.echo = false;
      return value.is_null() || boolean("echo", value, out_.echo);
    }
    if (key == "ignore_eos") {
      if (value.is_null()) return true;
      return boolean("ignore_eos", value, out_.ignore_eos);
    }
    if (key == "min_tokens") {
      if (value.is_null()) return true;
      return integer("min_tokens", value, out_.min_tokens);
    }
    if (key == "user") {
      if (value.is_null()) return true;
      return string("user", value, out_.user);
    }
    if (key == "stop") return stop(value);
    if (key == "temperature") {
      temperature_.reset();
      if (value.is_null()) return true;
      double t = 0;
      if (!number("temperature", value, t)) return false;
      temperature_ = t;
      return true;
    }
    if (key == "top_p") {
      top_p_.reset();
      if (value.is_null()) return true;
      double p = 0;
      if (!number("top_p", value, p)) return false;
      top_p_ = p;
      return true;
    }
    if (key == "eta_sim") return eta_sim(value);
    if (endpoint_ == Endpoint::kCompletions && key == "prompt") return prompt(value);
    if (endpoint_ == Endpoint::kChat && key == "messages") return messages(value);
    return true;  // unknown fields are ignored, as vLLM does
  }

  bool stream_options(element value) {
    out_.has_stream_options = false;
    if (value.is_null()) return true;
    object opts;
    if (value.get(opts) != simdjson::SUCCESS)
      return wrong_type("stream_options", "a valid dictionary or instance of StreamOptions", value);
    out_.has_stream_options = true;
    out_.include_usage = true;  // vLLM's StreamOptions default
    out_.continuous_usage_stats = false;
    for (auto [k, v] : opts) {
      if (k == "include_usage") {
        // An explicit null is falsy in vLLM (`if stream_options.include_usage`).
        if (v.is_null()) {
          out_.include_usage = false;
        } else if (!boolean("stream_options.include_usage", v, out_.include_usage)) {
          return false;
        }
      } else if (k == "continuous_usage_stats") {
        if (v.is_null()) {
          out_.continuous_usage_stats = false;
        } else if (!boolean("stream_options.continuous_usage_stats", v,
                            out_.continuous_usage_stats)) {
          return false;
        }
      }
    }
    return true;
  }

  bool stop(element value) {
    out_.stop.clear();
    if (value.is_null()) return true;
    if (value.type() == element_type::STRING) {
      out_.stop.emplace_back(value.get_string().value_unsafe());
      return true;
    }
    array items;
    if (value.get(items) != simdjson::SUCCESS) {
      return wrong_type("stop", "a valid string or a valid list of strings", value);
    }
    for (element item : items) {
      if (item.type() != element_type::STRING) {
        return invalid(
            fmt::format("Input should be a valid string, got {}", type_name(item.type())), "stop");
      }
      out_.stop.emplace_back(item.get_string().value_unsafe());
    }
    return true;
  }

  bool eta_sim(element value) {
    if (value.is_null()) return true;
    object obj;
    if (value.get(obj) != simdjson::SUCCESS) return wrong_type("eta_sim", "an object", value);
    for (auto [k, v] : obj) {
      if (k != "output_tokens") continue;
      if (v.is_null()) {
        out_.sim_output_tokens.reset();
        continue;
      }
      int64_t n = 0;
      if (!integer("eta_sim.output_tokens", v, n)) return false;
      if (n < 1) {
        return fail(fmt::format("eta_sim.output_tokens must be a positive integer, got {}.", n),
                    "eta_sim.output_tokens");
      }
      out_.sim_output_tokens = n;
    }
    return true;
  }

  // A list of token ids (list[int] with ge=0; lax ints; below 2^32 for the toy vocabulary).
  bool token_ids(element value, std::vector<uint32_t>& out) {
    array items;
    if (value.get(items) != simdjson::SUCCESS) return false;
    out.clear();
    out.reserve(items.size());
    for (element item : items) {
      int64_t id = -1;
      if (item.type() == element_type::ARRAY || item.type() == element_type::OBJECT ||
          item.type() == element_type::NULL_VALUE) {
        return wrong_type("prompt", "a valid integer", item);
      }
      if (!integer("prompt", item, id)) return false;
      if (id < 0) return invalid("Input should be greater than or equal to 0", "prompt");
      if (id > int64_t{std::numeric_limits<uint32_t>::max()}) {
        return fail("`prompt` token ids must be below 2^32", "prompt");
      }
      out.push_back(static_cast<uint32_t>(id));
    }
    return true;
  }

  bool prompt(element value) {
    has_prompt_ = false;
    out_.prompt_text.clear();
    out_.prompt_token_ids.clear();
    out_.prompt_is_tokens = false;
    out_.prompts.clear();
    if (value.is_null()) return true;
    const char* expected = "a valid string, a list of strings or a list of token ids";
    if (value.type() == element_type::STRING) {
      Prompt& p = out_.prompts.emplace_back();
      p.text.assign(value.get_string().value_unsafe());
    } else {
      array items;
      if (value.get(items) != simdjson::SUCCESS) return wrong_type("prompt", expected, value);
      if (items.size() == 0) {
        out_.prompts.emplace_back().is_tokens = true;  // list[int] of no tokens
      } else {
        const element first = items.at(0).value_unsafe();
        switch (first.type()) {
          case element_type::STRING:
            for (element item : items) {
              if (item.type() != element_type::STRING) return wrong_type("prompt", expected, item);
              out_.prompts.emplace_back().text.assign(item.get_string().value_unsafe());
            }
            break;
          case element_type::INT64:
          case element_type::UINT64:
          case element_type::DOUBLE:
          case element_type::BOOL: {
            Prompt& p = out_.prompts.emplace_back();
            p.is_tokens = true;
            if (!token_ids(value, p.token_ids)) return false;
            break;
          }
          case element_type::ARRAY:
            for (element item : items) {
              if (item.type() != element_type::ARRAY) return wrong_type("prompt", expected, item);
              Prompt& p = out_.prompts.emplace_back();
              p.is_tokens = true;
              if (!token_ids(item, p.token_ids)) return false;
            }
            break;
          default:
            return wrong_type("prompt", expected, first);
        }
      }
    }
    const Prompt& p0 = out_.prompts.front();
    out_.prompt_text = p0.text;
    out_.prompt_token_ids = p0.token_ids;
    out_.prompt_is_tokens = p0.is_tokens;
    has_prompt_ = true;
    return true;
  }

  bool message_content(size_t index, element content, std::string& out) {
    out.clear();
    if (content.is_null()) return true;  // e.g. an assistant message with tool calls
    if (content.type() == element_type::STRING) {
      out.assign(content.get_string().value_unsafe());
      return true;
    }
    const std::string param = fmt::format("messages.{}.content", index);
    array parts;
    if (content.get(parts) != simdjson::SUCCESS) {
      return wrong_type(param, "a valid string or a list of content parts", content);
    }
    // Text parts are joined with newlines, as vLLM does for string-format chat templates.
    bool first = true;
    for (element part : parts) {
      if (part.type() == element_type::STRING) {  // vLLM takes a bare string as a text part
        if (!first) out += '\n';
        out.append(part.get_string().value_unsafe());
        first = false;
        continue;
      }
      object p;
      if (part.get(p) != simdjson::SUCCESS) {
        return wrong_type(param, "a valid dictionary", part);
      }
      std::string_view type;
      if (p["type"].get(type) != simdjson::SUCCESS) {
        // vLLM's "simple" parts without a type: {"image_url": "..."}, {"text": "..."}, ...
        std::string_view text;
        if (p["text"].get(text) == simdjson::SUCCESS) {
          if (!first) out += '\n';
          out.append(text);
          first = false;
          continue;
        }
        for (const char* key : {"image_url", "audio_url", "video_url", "input_audio"}) {
          element ignored;
          if (p[key].get(ignored) == simdjson::SUCCESS) {
            type = key;
            break;
          }
        }
        if (type.empty()) return invalid("Field required", param + ".type");
      }
      if (is_text_part(type)) {
        std::string_view text;
        const char* key = type == "refusal" ? "refusal" : type == "thinking" ? "thinking" : "text";
        if (p[key].get(text) != simdjson::SUCCESS) {
          return invalid("Field required", fmt::format("{}.{}", param, key));
        }
        if (!first) out += '\n';
        out.append(text);
        first = false;
      } else if (is_media_part(type)) {
        ++out_.media_parts;
      } else {
        return fail(fmt::format("Unknown part type: {}", type), param);
      }
    }
    return true;
  }

  bool messages(element value) {
    has_messages_ = false;
    out_.messages.clear();
    out_.media_parts = 0;
    if (value.is_null()) return true;
    array items;
    if (value.get(items) != simdjson::SUCCESS) {
      return wrong_type("messages", "a valid list", value);
    }
    out_.messages.reserve(items.size());
    size_t index = 0;
    for (element item : items) {
      object msg;
      if (item.get(msg) != simdjson::SUCCESS) {
        return wrong_type(fmt::format("messages.{}", index), "a valid dictionary", item);
      }
      ChatMessage& m = out_.messages.emplace_back();
      bool has_role = false;
      for (auto [k, v] : msg) {
        if (k == "role") {
          if (!string(fmt::format("messages.{}.role", index), v, m.role)) return false;
          has_role = true;
        } else if (k == "content") {
          if (!message_content(index, v, m.content)) return false;
        }
      }
      if (!has_role) return invalid("Field required", fmt::format("messages.{}.role", index));
      ++index;
    }
    has_messages_ = true;
    return true;
  }

  bool finish() {
    if (!out_.has_stream_options) {
      out_.include_usage = false;
      out_.continuous_usage_stats = false;
    }
    if (endpoint_ == Endpoint::kCompletions) {
      if (!has_prompt_) {
        return invalid("Either prompt or prompt_embeds must be provided and non-empty.", "prompt",
                       "prompt");
      }
      // Absent or null: 16 (vLLM's normalize_null_max_tokens).
      out_.max_tokens = max_tokens_ ? *max_tokens_ : kDefaultCompletionMaxTokens;
    } else {
      if (!has_messages_) return invalid("Field required", "messages");
      out_.max_tokens = max_completion_tokens_ ? max_completion_tokens_ : max_tokens_;
      out_.prompt_text = render_chat_prompt(out_.messages);
    }
    // SamplingParams._verify_args, in vLLM's order.
    if (out_.n < 1)
      return sampling(fmt::format("n must be at least 1, got {}.", out_.n), "n", out_.n);
    if (temperature_ && *temperature_ < 0) {
      return sampling(fmt::format("temperature must be non-negative, got {}.", *temperature_),
                      "temperature", *temperature_);
    }
    if (top_p_ && !(*top_p_ > 0 && *top_p_ <= 1)) {
      return sampling(fmt::format("top_p must be in (0, 1], got {}.", *top_p_), "top_p", *top_p_);
    }
    const bool echo_only = out_.echo && out_.max_tokens && *out_.max_tokens == 0;
    if (out_.max_tokens && *out_.max_tokens < 1 && !echo_only) {
      return sampling(fmt::format("max_tokens must be at least 1, got {}.", *out_.max_tokens),
                      "max_tokens", *out_.max_tokens);
    }
    if (out_.min_tokens < 0) {
      return sampling(
          fmt::format("min_tokens must be greater than or equal to 0, got {}.", out_.min_tokens),
          "min_tokens", out_.min_tokens);
    }
    if (out_.max_tokens && !echo_only && out_.min_tokens > *out_.max_tokens) {
      return sampling(fmt::format("min_tokens must be less than or equal to max_tokens={}, got {}.",
                                  *out_.max_tokens, out_.min_tokens),
                      "min_tokens", out_.min_tokens);
    }
    return true;
  }

  Endpoint endpoint_;
  RequestFields& out_;
  Error& error_;
  bool has_prompt_ = false;
  bool has_messages_ = false;
  std::optional<int64_t> max_tokens_;
  std::optional<int64_t> max_completion_tokens_;
  std::optional<double> temperature_;
  std::optional<double> top_p_;
};

}  // namespace

Error bad_request(std::string message, std::string param) {
  return Error{400, "BadRequestError", std::move(message), std::move(param)};
}

Error validation_error(std::string message, std::string param) {
  return Error{400, std::string(kValidationErrorType), std::move(message), std::move(param)};
}

Error not_found(std::string message) {
  return Error{404, "NotFoundError", std::move(message), {}};
}

Error internal_error(std::string message) {
  return Error{500, "InternalServerError", std::move(message), {}};
}

Error model_not_found(std::string_view model) {
  Error e = not_found(fmt::format("The model `{}` does not exist.", model));
  e.param = "model";
  return e;
}

std::string error_body(const Error& e) {
  unsigned char buffer[512];
  boost::json::monotonic_resource mr(buffer, sizeof buffer);
  boost::json::object inner(&mr);
  inner.reserve(4);
  inner.emplace("message", e.message);
  inner.emplace("type", e.type);
  if (e.param.empty()) {
    inner.emplace("param", nullptr);
  } else {
    inner.emplace("param", e.param);
  }
  inner.emplace("code", e.status);
  boost::json::object outer(&mr);
  outer.emplace("error", std::move(inner));
  return boost::json::serialize(outer);
}

namespace {

// Parses `body` into a JSON object with a per-thread parser; false with a 400 on failure.
bool parse_object(std::string_view body, object& obj, Error& error) {
  thread_local simdjson::dom::parser parser;
  element root;
  const auto code = parser.parse(body.data(), body.size()).get(root);
  if (code == simdjson::UTF8_ERROR) {
    error = validation_error("1 validation error: body: JSON decode error: invalid UTF-8");
    return false;
  }
  if (code == simdjson::EMPTY) {
    error = validation_error("1 validation error: body: Field required (an empty body)");
    return false;
  }
  if (code != simdjson::SUCCESS) {
    error = validation_error(fmt::format("1 validation error: body: JSON decode error: {}",
                                         simdjson::error_message(code)));
    return false;
  }
  if (root.get(obj) != simdjson::SUCCESS) {
    error = validation_error(
        fmt::format("1 validation error: body: Input should be a valid dictionary, got {}",
                    type_name(root.type())));
    return false;
  }
  return true;
}

}  // namespace

bool parse_tokenize_request(std::string_view body, RequestFields& out, Error& error) {
  try {
    object obj;
    return parse_object(body, obj, error) &&
           RequestParser(Endpoint::kCompletions, out, error).parse_tokenize(obj);
  } catch (const std::exception& e) {
    error = internal_error(fmt::format("Failed to read the request: {}", e.what()));
    return false;
  }
}

bool parse_request(Endpoint endpoint, std::string_view body, RequestFields& out, Error& error) {
  try {
    object obj;
    return parse_object(body, obj, error) && RequestParser(endpoint, out, error).parse(obj);
  } catch (const std::exception& e) {
    error = internal_error(fmt::format("Failed to read the request: {}", e.what()));
    return false;
  }
}

std::string render_chat_prompt(const std::vector<ChatMessage>& messages) {
  size_t size = 16;
  for (const auto& m : messages) size += m.role.size() + m.content.size() + 6;
  std::string out;
  out.reserve(size);
  for (const auto& m : messages) {
    out += "<|";
    out += m.role;
    out += "|>\n";
    out += m.content;
    out += '\n';
  }
  out += "<|assistant|>\n";
  return out;
}

}  // namespace eta::openai
