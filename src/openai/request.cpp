#include "openai/request.hpp"

#include <simdjson.h>

#include <boost/json.hpp>
#include <cmath>
#include <exception>
#include <limits>
#include <utility>

#include <fmt/format.h>

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

// Reads the fields of one request. Every method returns false with error_ set on a bad field.
class RequestParser {
 public:
  RequestParser(Endpoint endpoint, RequestFields& out, Error& error)
      : endpoint_(endpoint), out_(out), error_(error) {}

  bool parse(const object& root) {
    out_ = RequestFields{};
    out_.endpoint = endpoint_;
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
    } else if (has_prompt_) {
      out_.endpoint = Endpoint::kCompletions;
    } else {
      return fail("`prompt` or `messages` is required", "prompt");
    }
    return true;
  }

 private:
  bool fail(std::string message, std::string param) {
    error_ = bad_request(std::move(message), std::move(param));
    return false;
  }

  bool wrong_type(std::string_view param, std::string_view expected, element value) {
    return fail(fmt::format("`{}` must be {}, got {}", param, expected, type_name(value.type())),
                std::string(param));
  }

  // An integer field. Accepts JSON integers, and numbers with no fractional part (as pydantic's
  // lax int does: 16.0 -> 16).
  bool integer(std::string_view param, element value, int64_t& out) {
    switch (value.type()) {
      case element_type::INT64:
        out = value.get_int64().value_unsafe();
        return true;
      case element_type::UINT64:
        return fail(fmt::format("`{}` is too large", param), std::string(param));
      case element_type::DOUBLE: {
        const double d = value.get_double().value_unsafe();
        if (std::trunc(d) == d && std::fabs(d) < 9.2e18) {
          out = static_cast<int64_t>(d);
          return true;
        }
        return wrong_type(param, "an integer", value);
      }
      default:
        return wrong_type(param, "an integer", value);
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
      default:
        return wrong_type(param, "a number", value);
    }
  }

  bool boolean(std::string_view param, element value, bool& out) {
    if (value.type() != element_type::BOOL) return wrong_type(param, "a boolean", value);
    out = value.get_bool().value_unsafe();
    return true;
  }

  bool string(std::string_view param, element value, std::string& out) {
    if (value.type() != element_type::STRING) return wrong_type(param, "a string", value);
    out.assign(value.get_string().value_unsafe());
    return true;
  }

  // max_tokens / max_completion_tokens: an integer >= 1, or null.
  bool max_tokens(std::string_view param, element value, std::optional<int64_t>& out) {
    if (value.is_null()) {
      out.reset();
      return true;
    }
    int64_t v = 0;
    if (!integer(param, value, v)) return false;
    if (v < 1)
      return fail(fmt::format("{} must be at least 1, got {}.", param, v), std::string(param));
    out = v;
    return true;
  }

  bool field(std::string_view key, element value) {
    if (key == "model") {
      has_model_ = true;
      return string("model", value, out_.model);
    }
    if (key == "stream") {
      out_.stream = false;
      return value.is_null() || boolean("stream", value, out_.stream);
    }
    if (key == "stream_options") return stream_options(value);
    if (key == "max_tokens") {
      max_tokens_null_ = value.is_null();
      return max_tokens("max_tokens", value, max_tokens_);
    }
    if (key == "max_completion_tokens" && endpoint_ == Endpoint::kChat) {
      return max_tokens("max_completion_tokens", value, max_completion_tokens_);
    }
    if (key == "n") {
      if (value.is_null()) return true;
      if (!integer("n", value, out_.n)) return false;
      if (out_.n != 1) {
        return fail(
            fmt::format("eta supports n=1 only (one choice per request), got n={}.", out_.n), "n");
      }
      return true;
    }
    if (key == "ignore_eos") {
      if (value.is_null()) return true;
      return boolean("ignore_eos", value, out_.ignore_eos);
    }
    if (key == "min_tokens") {
      if (value.is_null()) return true;
      if (!integer("min_tokens", value, out_.min_tokens)) return false;
      if (out_.min_tokens < 0) {
        return fail(
            fmt::format("min_tokens must be greater than or equal to 0, got {}.", out_.min_tokens),
            "min_tokens");
      }
      return true;
    }
    if (key == "user") {
      if (value.is_null()) return true;
      return string("user", value, out_.user);
    }
    if (key == "stop") return stop(value);
    if (key == "temperature") {
      if (value.is_null()) return true;
      double t = 0;
      if (!number("temperature", value, t)) return false;
      if (!(t >= 0)) {
        return fail(fmt::format("temperature must be non-negative, got {}.", t), "temperature");
      }
      return true;
    }
    if (key == "top_p") {
      if (value.is_null()) return true;
      double p = 0;
      if (!number("top_p", value, p)) return false;
      if (!(p > 0 && p <= 1))
        return fail(fmt::format("top_p must be in (0, 1], got {}.", p), "top_p");
      return true;
    }
    if (key == "eta_sim") return eta_sim(value);
    if (endpoint_ == Endpoint::kCompletions && key == "prompt") return prompt(value);
    if (endpoint_ == Endpoint::kChat && key == "messages") return messages(value);
    return true;  // unknown fields are ignored, as vLLM does
  }

  bool stream_options(element value) {
    if (value.is_null()) {
      out_.has_stream_options = false;
      return true;
    }
    object opts;
    if (value.get(opts) != simdjson::SUCCESS)
      return wrong_type("stream_options", "an object", value);
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
      return wrong_type("stop", "a string or an array of strings", value);
    }
    for (element item : items) {
      if (item.type() != element_type::STRING) {
        return fail(fmt::format("`stop` must be a string or an array of strings, got an array "
                                "containing {}",
                                type_name(item.type())),
                    "stop");
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

  bool token_ids(element value, std::vector<uint32_t>& out) {
    array items;
    if (value.get(items) != simdjson::SUCCESS) return false;
    out.clear();
    out.reserve(items.size());
    for (element item : items) {
      int64_t id = -1;
      if (item.type() == element_type::INT64) id = item.get_int64().value_unsafe();
      if (id < 0 || id > int64_t{std::numeric_limits<uint32_t>::max()}) {
        return fail("`prompt` token ids must be integers in [0, 2^32)", "prompt");
      }
      out.push_back(static_cast<uint32_t>(id));
    }
    return true;
  }

  bool batched(size_t n) {
    return fail(fmt::format("eta supports one prompt per request; got a batch of {} prompts.", n),
                "prompt");
  }

  bool prompt(element value) {
    has_prompt_ = false;
    out_.prompt_text.clear();
    out_.prompt_token_ids.clear();
    out_.prompt_is_tokens = false;
    if (value.is_null()) return true;
    const char* expected = "a string, an array of strings or an array of token ids";
    if (value.type() == element_type::STRING) {
      out_.prompt_text.assign(value.get_string().value_unsafe());
      has_prompt_ = true;
      return true;
    }
    array items;
    if (value.get(items) != simdjson::SUCCESS) return wrong_type("prompt", expected, value);
    const size_t n = items.size();
    if (n == 0) return fail("`prompt` must not be empty", "prompt");
    const element first = items.at(0).value_unsafe();
    switch (first.type()) {
      case element_type::STRING:
        for (element item : items) {
          if (item.type() != element_type::STRING) {
            return fail("`prompt` must not mix strings and other types", "prompt");
          }
        }
        if (n > 1) return batched(n);
        out_.prompt_text.assign(first.get_string().value_unsafe());
        break;
      case element_type::INT64:
      case element_type::UINT64:
      case element_type::DOUBLE:
        if (!token_ids(value, out_.prompt_token_ids)) return false;
        out_.prompt_is_tokens = true;
        break;
      case element_type::ARRAY:
        for (element item : items) {
          if (item.type() != element_type::ARRAY) {
            return fail("`prompt` must not mix token-id lists and other types", "prompt");
          }
        }
        if (n > 1) return batched(n);
        if (first.get_array().value_unsafe().size() == 0) {
          return fail("`prompt` must not be empty", "prompt");
        }
        if (!token_ids(first, out_.prompt_token_ids)) return false;
        out_.prompt_is_tokens = true;
        break;
      default:
        return fail(fmt::format("`prompt` must be {}, got an array containing {}", expected,
                                type_name(first.type())),
                    "prompt");
    }
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
    const std::string param = fmt::format("messages[{}].content", index);
    array parts;
    if (content.get(parts) != simdjson::SUCCESS) {
      return wrong_type(param, "a string or an array of content parts", content);
    }
    // Text parts are joined with newlines, as vLLM does for string-format chat templates.
    bool first = true;
    for (element part : parts) {
      object p;
      if (part.get(p) != simdjson::SUCCESS) {
        return fail(
            fmt::format("`{}` parts must be objects, got {}", param, type_name(part.type())),
            param);
      }
      std::string_view type;
      if (p["type"].get(type) != simdjson::SUCCESS) {
        return fail(fmt::format("`{}` parts need a string `type`", param), param);
      }
      if (type != "text") {
        return fail(fmt::format("eta supports only text content parts; got type `{}`", type),
                    param);
      }
      std::string_view text;
      if (p["text"].get(text) != simdjson::SUCCESS) {
        return fail(fmt::format("`{}` text parts need a string `text`", param), param);
      }
      if (!first) out += '\n';
      out.append(text);
      first = false;
    }
    return true;
  }

  bool messages(element value) {
    has_messages_ = false;
    out_.messages.clear();
    if (value.is_null()) return true;
    array items;
    if (value.get(items) != simdjson::SUCCESS) {
      return wrong_type("messages", "an array of messages", value);
    }
    if (items.size() == 0) return fail("`messages` must not be empty", "messages");
    out_.messages.reserve(items.size());
    size_t index = 0;
    for (element item : items) {
      object msg;
      if (item.get(msg) != simdjson::SUCCESS) {
        return wrong_type(fmt::format("messages[{}]", index), "an object", item);
      }
      ChatMessage& m = out_.messages.emplace_back();
      bool has_role = false;
      for (auto [k, v] : msg) {
        if (k == "role") {
          if (!string(fmt::format("messages[{}].role", index), v, m.role)) return false;
          has_role = true;
        } else if (k == "content") {
          if (!message_content(index, v, m.content)) return false;
        }
      }
      if (!has_role) {
        return fail(fmt::format("`messages[{}].role` is required", index),
                    fmt::format("messages[{}].role", index));
      }
      ++index;
    }
    has_messages_ = true;
    return true;
  }

  bool finish() {
    if (!has_model_) return fail("`model` is required", "model");
    if (out_.has_stream_options && !out_.stream) {
      return fail("Stream options (`stream_options`) can only be defined when `stream=True`.",
                  "stream_options");
    }
    if (!out_.has_stream_options) {
      out_.include_usage = false;
      out_.continuous_usage_stats = false;
    }
    if (endpoint_ == Endpoint::kCompletions) {
      if (!has_prompt_) return fail("`prompt` is required", "prompt");
      // Absent: OpenAI's default of 16. An explicit null means "up to the context limit".
      out_.max_tokens = max_tokens_;
      if (!max_tokens_ && !max_tokens_null_) out_.max_tokens = kDefaultCompletionMaxTokens;
    } else {
      if (!has_messages_) return fail("`messages` is required", "messages");
      out_.max_tokens = max_completion_tokens_ ? max_completion_tokens_ : max_tokens_;
      out_.prompt_text = render_chat_prompt(out_.messages);
    }
    if (out_.max_tokens && out_.min_tokens > *out_.max_tokens) {
      return fail(fmt::format("min_tokens must be less than or equal to max_tokens={}, got {}.",
                              *out_.max_tokens, out_.min_tokens),
                  "min_tokens");
    }
    return true;
  }

  Endpoint endpoint_;
  RequestFields& out_;
  Error& error_;
  bool has_model_ = false;
  bool has_prompt_ = false;
  bool has_messages_ = false;
  bool max_tokens_null_ = false;
  std::optional<int64_t> max_tokens_;
  std::optional<int64_t> max_completion_tokens_;
};

}  // namespace

Error bad_request(std::string message, std::string param) {
  return Error{400, "BadRequestError", std::move(message), std::move(param)};
}

Error not_found(std::string message) {
  return Error{404, "NotFoundError", std::move(message), {}};
}

Error internal_error(std::string message) {
  return Error{500, "InternalServerError", std::move(message), {}};
}

Error model_not_found(std::string_view model) {
  return not_found(fmt::format("The model `{}` does not exist.", model));
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
    error = bad_request("The request body is not valid UTF-8.");
    return false;
  }
  if (code == simdjson::EMPTY) {
    error = bad_request("The request body is empty; expected a JSON object.");
    return false;
  }
  if (code != simdjson::SUCCESS) {
    error = bad_request(
        fmt::format("The request body is not valid JSON: {}", simdjson::error_message(code)));
    return false;
  }
  if (root.get(obj) != simdjson::SUCCESS) {
    error = bad_request(
        fmt::format("The request body must be a JSON object, got {}.", type_name(root.type())));
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
