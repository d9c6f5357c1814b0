#include "workload/workload.hpp"

#include <algorithm>
#include <array>
#include <unordered_set>
#include <utility>

#include "engine/engine.hpp"
#include "engine/tokenizer.hpp"
#include "workload/random.hpp"

namespace eta::workload {

namespace {

// The toy chat template around one user message (openai::render_chat_prompt).
constexpr std::string_view kChatHead = "<|user|>\n";
constexpr std::string_view kChatTail = "\n<|assistant|>\n";

const TextSegment& chat_head() {
  static const TextSegment s = TextSegment::text(std::string(kChatHead));
  return s;
}
const TextSegment& chat_tail() {
  static const TextSegment s = TextSegment::text(std::string(kChatTail));
  return s;
}

const std::array<uint32_t, kWordCount>& word_ids() {
  static const std::array<uint32_t, kWordCount> table = [] {
    std::array<uint32_t, kWordCount> t{};
    for (int w = 0; w < kWordCount; ++w) {
      const auto ids = engine::tokenize(word_text(w));
      t[static_cast<std::size_t>(w)] = ids.empty() ? 0 : ids.front();
    }
    return t;
  }();
  return table;
}

inline int word_from_mixed(uint64_t mixed_seed, int64_t i) {
  return static_cast<int>(mix_seed(mixed_seed ^ static_cast<uint64_t>(i)) % kWordCount);
}

// Bytes of the first `take` toy tokens of `text` (count_tokens of a prefix never decreases as
// the prefix grows, so the largest prefix with at most `take` tokens ends on a token boundary).
std::size_t literal_prefix_bytes(std::string_view text, int take) {
  std::size_t lo = 0;
  std::size_t hi = text.size();
  while (lo < hi) {
    const std::size_t mid = lo + (hi - lo + 1) / 2;
    if (engine::count_tokens(text.substr(0, mid)) <= take) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  return lo;
}

void append_text(const TextSegment& s, int take, std::string& out) {
  switch (s.kind) {
    case TextSegment::Kind::kWords: {
      const uint64_t ms = mix_seed(s.seed);
      for (int i = 0; i < take; ++i) {
        const int w = word_from_mixed(ms, i);
        out += " w";
        out += static_cast<char>('a' + w % 26);
        out += static_cast<char>('a' + (w / 26) % 26);
        out += static_cast<char>('a' + w / 676);
      }
      break;
    }
    case TextSegment::Kind::kOutput:
      for (int i = 0; i < take; ++i) out += engine::output_token_text(s.seed, i);
      break;
    case TextSegment::Kind::kLiteral: {
      const std::string_view text = s.literal ? std::string_view(*s.literal) : std::string_view();
      out += take >= s.tokens ? text : text.substr(0, literal_prefix_bytes(text, take));
      break;
    }
  }
}

template <class Sink>
void emit_tokens(const TextSegment& s, int take, Sink& sink) {
  switch (s.kind) {
    case TextSegment::Kind::kWords: {
      const auto& ids = word_ids();
      const uint64_t ms = mix_seed(s.seed);
      for (int i = 0; i < take; ++i) sink(ids[static_cast<std::size_t>(word_from_mixed(ms, i))]);
      break;
    }
    case TextSegment::Kind::kOutput:
      for (int i = 0; i < take; ++i) {
        for (uint32_t id : engine::tokenize(engine::output_token_text(s.seed, i))) sink(id);
      }
      break;
    case TextSegment::Kind::kLiteral: {
      if (!s.literal) break;
      const auto ids = engine::tokenize(*s.literal);
      const std::size_t n = std::min(ids.size(), static_cast<std::size_t>(std::max(take, 0)));
      for (std::size_t i = 0; i < n; ++i) sink(ids[i]);
      break;
    }
  }
}

// Visits (segment, tokens taken) of the server-side prompt for `api`.
template <class Visit>
void visit_server_prompt(const WorkloadRequest& r, Api api, Visit&& visit) {
  const bool chat = api == Api::kChat;
  if (chat) visit(chat_head(), chat_head().tokens);
  int remaining = content_tokens_for(r, api);
  for (const TextSegment& s : r.prompt) {
    if (remaining <= 0) break;
    const int take = std::min(s.tokens, remaining);
    visit(s, take);
    remaining -= take;
  }
  if (chat) visit(chat_tail(), chat_tail().tokens);
}

class BlockHasher {
 public:
  explicit BlockHasher(int block_size) : block_(static_cast<std::size_t>(block_size)) {}
  void operator()(uint32_t id) {
    block_[fill_++] = id;
    if (fill_ == block_.size()) {
      parent_ = engine::hash_block(parent_, block_);
      hashes_.push_back(parent_);
      fill_ = 0;
    }
  }
  std::vector<uint64_t> take() { return std::move(hashes_); }
  void reserve(std::size_t n) { hashes_.reserve(n); }

 private:
  std::vector<uint32_t> block_;
  std::size_t fill_ = 0;
  uint64_t parent_ = engine::kRootBlockHash;
  std::vector<uint64_t> hashes_;
};

}  // namespace

const char* to_string(Api api) {
  return api == Api::kChat ? "chat" : "completions";
}

bool parse_api(std::string_view text, Api& out) {
  if (text == "completions" || text == "completion") {
    out = Api::kCompletions;
  } else if (text == "chat" || text == "chat-completions" || text == "chat_completions") {
    out = Api::kChat;
  } else {
    return false;
  }
  return true;
}

TextSegment TextSegment::words(uint64_t seed, int tokens) {
  TextSegment s;
  s.kind = Kind::kWords;
  s.seed = seed;
  s.tokens = std::max(tokens, 0);
  return s;
}

TextSegment TextSegment::output(uint64_t seed, int tokens) {
  TextSegment s;
  s.kind = Kind::kOutput;
  s.seed = seed;
  s.tokens = std::max(tokens, 0);
  return s;
}

TextSegment TextSegment::text(std::string literal) {
  TextSegment s;
  s.kind = Kind::kLiteral;
  s.tokens = engine::count_tokens(literal);
  s.literal = std::make_shared<const std::string>(std::move(literal));
  return s;
}

double Workload::duration_s() const {
  return requests.empty() ? 0.0 : requests.back().arrival_s;
}

int chat_template_tokens() {
  return chat_head().tokens + chat_tail().tokens;
}

Api effective_api(const WorkloadRequest& r, Api fallback) {
  return r.api.value_or(fallback);
}

int content_tokens_for(const WorkloadRequest& r, Api api) {
  if (api == Api::kCompletions) return r.content_tokens;
  return std::max(std::min(r.content_tokens, 1), r.content_tokens - chat_template_tokens());
}

std::string prompt_text(const WorkloadRequest& r, Api fallback) {
  const Api api = effective_api(r, fallback);
  std::string out;
  out.reserve(static_cast<std::size_t>(content_tokens_for(r, api)) * 5);
  int remaining = content_tokens_for(r, api);
  for (const TextSegment& s : r.prompt) {
    if (remaining <= 0) break;
    const int take = std::min(s.tokens, remaining);
    append_text(s, take, out);
    remaining -= take;
  }
  return out;
}

std::string server_prompt_text(const WorkloadRequest& r, Api fallback) {
  const Api api = effective_api(r, fallback);
  std::string out;
  out.reserve(static_cast<std::size_t>(r.content_tokens) * 5 + 32);
  visit_server_prompt(r, api, [&](const TextSegment& s, int take) { append_text(s, take, out); });
  return out;
}

std::vector<uint32_t> server_prompt_token_ids(const WorkloadRequest& r, Api fallback) {
  std::vector<uint32_t> ids;
  ids.reserve(static_cast<std::size_t>(r.content_tokens) + 32);
  auto sink = [&](uint32_t id) { ids.push_back(id); };
  visit_server_prompt(r, effective_api(r, fallback),
                      [&](const TextSegment& s, int take) { emit_tokens(s, take, sink); });
  return ids;
}

std::vector<uint64_t> compute_block_hashes(const WorkloadRequest& r, int block_size, Api fallback) {
  if (block_size <= 0) return {};
  BlockHasher hasher(block_size);
  hasher.reserve(static_cast<std::size_t>(r.content_tokens + 32) /
                 static_cast<std::size_t>(block_size));
  visit_server_prompt(r, effective_api(r, fallback),
                      [&](const TextSegment& s, int take) { emit_tokens(s, take, hasher); });
  return hasher.take();
}

void finalize_request(WorkloadRequest& r, bool with_hashes, int block_size) {
  int total = 0;
  for (const TextSegment& s : r.prompt) total += s.tokens;
  r.content_tokens = total;
  const Api api = effective_api(r);
  r.prompt_tokens = content_tokens_for(r, api) + (api == Api::kChat ? chat_template_tokens() : 0);
  if (with_hashes) {
    r.block_hashes = compute_block_hashes(r, block_size);
  } else {
    r.block_hashes.clear();
  }
}

void set_api(Workload& w, Api api) {
  for (WorkloadRequest& r : w.requests) {
    const bool changed = effective_api(r) != api;
    r.api = api;
    if (changed) finalize_request(r, w.has_block_hashes, w.block_size);
  }
}

void renumber(Workload& w) {
  for (std::size_t i = 0; i < w.requests.size(); ++i) {
    w.requests[i].index = static_cast<int64_t>(i);
  }
}

void sort_by_arrival(Workload& w) {
  std::stable_sort(
      w.requests.begin(), w.requests.end(),
      [](const WorkloadRequest& a, const WorkloadRequest& b) { return a.arrival_s < b.arrival_s; });
  renumber(w);
}

std::string word_text(int word) {
  std::string s = " w";
  s += static_cast<char>('a' + word % 26);
  s += static_cast<char>('a' + (word / 26) % 26);
  s += static_cast<char>('a' + (word / 676) % 26);
  return s;
}

int word_at(uint64_t seed, int64_t i) {
  return word_from_mixed(mix_seed(seed), i);
}

uint32_t word_token_id(int word) {
  return word_ids()[static_cast<std::size_t>(word)];
}

WorkloadSummary summarize(const Workload& w) {
  WorkloadSummary s;
  s.requests = static_cast<int64_t>(w.requests.size());
  if (w.requests.empty()) return s;
  s.duration_s = w.requests.back().arrival_s - w.requests.front().arrival_s;
  if (s.requests > 1 && s.duration_s > 0) {
    s.mean_rate_rps = static_cast<double>(s.requests - 1) / s.duration_s;
  }
  double prompt_sum = 0;
  double output_sum = 0;
  std::unordered_set<std::string_view> sessions;
  std::unordered_set<uint64_t> seen;
  int64_t blocks = 0;
  int64_t repeated = 0;
  for (const WorkloadRequest& r : w.requests) {
    prompt_sum += r.prompt_tokens;
    output_sum += r.output_tokens;
    s.max_prompt_tokens = std::max(s.max_prompt_tokens, r.prompt_tokens);
    s.max_output_tokens = std::max(s.max_output_tokens, r.output_tokens);
    if (!r.session_id.empty()) sessions.insert(r.session_id);
    for (uint64_t h : r.block_hashes) {
      ++blocks;
      if (!seen.insert(h).second) ++repeated;
    }
  }
  s.mean_prompt_tokens = prompt_sum / static_cast<double>(s.requests);
  s.mean_output_tokens = output_sum / static_cast<double>(s.requests);
  s.sessions = static_cast<int64_t>(sessions.size());
  if (blocks > 0) s.repeated_block_fraction = static_cast<double>(repeated) / blocks;
  return s;
}

}  // namespace eta::workload
