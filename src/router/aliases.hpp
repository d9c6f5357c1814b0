// Model aliases: one public model name served by replicas under other names (production-stack's
// static aliases, llm-d's model rewrites). Configured as
//   models: [{name: llama-2-7b-chat, served_names: [llama-2-7b-replica-1, llama-2-7b-replica-2]}]
// A request for the public name may go to any replica that lists one of its served names; its
// body's "model" is rewritten to that replica's served name on the way in, and every
// "model":"<served name>" member of the answer (the JSON body, each SSE event) back to the
// public name on the way out. Pure: no networking; unit-tested in router_aliases_test.cpp.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace eta::router {

struct ModelAlias {
  std::string name;                       // the public name clients ask for
  std::vector<std::string> served_names;  // names replicas serve it under (vLLM's
                                          //   --served-model-name)
  bool operator==(const ModelAlias&) const = default;
};

// Checks a list of aliases: non-empty names, non-empty served_names, no served name twice (in
// one alias or two), no public name twice, no public name that is another alias's served name.
// One line on failure.
bool validate_aliases(const std::vector<ModelAlias>& aliases, std::string& error);

// The alias whose public name is `model`, or nullptr.
const ModelAlias* find_alias(const std::vector<ModelAlias>& aliases, std::string_view model);

// The name under which a replica listing `ids` serves `model`: `model` itself when listed, else
// the first of its alias's served names that is listed; nullptr when it serves neither.
const std::string* served_name_for(const std::vector<ModelAlias>& aliases, std::string_view model,
                                   const std::vector<std::string>& ids);

// The public name of a served name (the alias listing it), or nullptr.
const std::string* public_name_of(const std::vector<ModelAlias>& aliases, std::string_view served);

// Appends `text` to `out` as a JSON string literal (quotes included).
void append_json_string(std::string& out, std::string_view text);

// Rewrites, in a stream of JSON text (a body, or SSE events with JSON data lines), the string
// value of every member named `key` whose decoded value is `from` to `to`, leaving every other
// byte as it was. Exact: it follows JSON strings and escapes (a `"model":"x"` inside a string
// value is text, not a member; escaped spellings of `from` match), whitespace around the colon is
// kept. Input may arrive in pieces split anywhere: bytes that may belong to a member being
// matched are held back until it is decided (at most the key, the colon and a value as long as
// `from` escaped), everything else is passed on at once. With `top_level_only` only members of
// the outermost object count (the request body's "model", not one nested in a tool schema).
// A newline ends any string (JSON strings hold none), so a non-JSON SSE line cannot desynchronize
// the scanner for the events after it.
class FieldRewriter {
 public:
  FieldRewriter() = default;
  void reset(std::string_view key, std::string_view from, std::string_view to,
             bool top_level_only = false);
  bool active() const { return active_; }
  // Off: feed() copies its input.
  void clear() {
    active_ = false;
    held_.clear();
  }
  // Appends the rewritten form of `data` to `out` (what can be decided now).
  void feed(std::string_view data, std::string& out);
  // End of the input: appends what is held, unchanged.
  void finish(std::string& out);
  // Bytes held back now.
  size_t held() const { return held_.size(); }
  // Members rewritten so far.
  int rewritten() const { return rewritten_; }

 private:
  enum class State { kOut, kString, kKey, kAfterKey, kAfterColon, kValue };
  struct Scan;  // one feed() call's walk over its input (aliases.cpp)
  void flush(std::string& out);

  bool active_ = false;
  bool top_level_only_ = false;
  std::string key_;
  std::string from_;
  std::string to_literal_;  // `to` as a JSON string literal
  size_t max_key_raw_ = 0;
  size_t max_value_raw_ = 0;
  State state_ = State::kOut;
  bool plain_ = true;       // the string held now has no backslash so far
  bool escape_ = false;     // inside a string: the previous byte was an unescaped backslash
  int depth_ = 0;           // nesting of objects/arrays outside strings
  std::string held_;        // bytes held back (from the candidate key's opening quote)
  size_t raw_start_ = 0;    // in held_: where the raw content of the current string starts
  size_t value_quote_ = 0;  // in held_: the value's opening quote
  int rewritten_ = 0;
};

// One-shot form of FieldRewriter over a whole text.
std::string rewrite_field(std::string_view json, std::string_view key, std::string_view from,
                          std::string_view to, bool top_level_only = false);

// Decodes the raw content of a JSON string (between its quotes). False on a bad escape.
bool decode_json_string(std::string_view raw, std::string& out);

}  // namespace eta::router
