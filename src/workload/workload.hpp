// Workloads for `eta bench` and `eta cluster-sim`: a list of requests with arrival times, prompt
// and output lengths, and a prompt whose text is produced on demand (see docs/workloads.md).
//
// Prompt text is never stored: a prompt is a list of segments, each a deterministic stream of
// toy tokens (engine/tokenizer.hpp) — words " w" + 3 letters drawn from a seed, the simulator's
// output tokens, or a literal. Every segment starts on a toy-token boundary, so the tokens of the
// concatenated text are the concatenation of the segments' tokens: counts and chained block
// hashes are computed from token ids without building the text, and they equal
// engine::chain_block_hashes(engine::tokenize(text)) for the text that bench sends.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace eta::workload {

// Which OpenAI endpoint a request goes to.
enum class Api { kCompletions, kChat };
const char* to_string(Api api);
// "completions" | "chat" (also "chat-completions"); false if unknown.
bool parse_api(std::string_view text, Api& out);

// The engine's KV block size; block hashes are chained over blocks of this many tokens.
inline constexpr int kDefaultBlockSize = 16;
// Mooncake traces describe prompts in blocks of this many tokens.
inline constexpr int kMooncakeBlockTokens = 512;

// One piece of a prompt: the first `tokens` tokens of a deterministic token stream.
struct TextSegment {
  enum class Kind : uint8_t {
    kWords,    // word i is word_at(seed, i): " w" + 3 lowercase letters, exactly one toy token
    kOutput,   // token i is engine::output_token_text(seed, i): what the simulator generates
    kLiteral,  // the text `*literal` (must not start with an ASCII letter or digit)
  };
  Kind kind = Kind::kWords;
  uint64_t seed = 0;
  int tokens = 0;  // kLiteral: the literal's token count
  std::shared_ptr<const std::string> literal;

  static TextSegment words(uint64_t seed, int tokens);
  static TextSegment output(uint64_t seed, int tokens);
  static TextSegment text(std::string literal);
};

struct WorkloadRequest {
  int64_t index = 0;     // position in the workload (0-based, in arrival order)
  double arrival_s = 0;  // seconds from the start of the run
  // Prompt tokens as the server counts them for this request's API (chat: the rendered
  // template, see chat_template_tokens()). Equals the trace's input length for both APIs.
  int prompt_tokens = 0;
  int output_tokens = 1;  // the true (natural) output length
  // The prompt as a completions prompt (the chat message content is the same text with its
  // tail shortened by chat_template_tokens(), so the rendered chat prompt keeps prompt_tokens).
  std::vector<TextSegment> prompt;
  int content_tokens = 0;  // sum of prompt[i].tokens
  // Chained hashes of the full blocks of the server-side prompt tokens (empty if the loader was
  // asked not to compute them; compute_block_hashes() gives them on demand).
  std::vector<uint64_t> block_hashes;
  std::string session_id;  // conversation id ("" if none)
  std::string tag;         // the request's class in its workload ("short", "doc", ...) or ""
  int turn = 0;            // 0-based turn within the session
  std::optional<Api> api;  // the API this request asks for; unset: the caller's default
  // Seed the workload assumes the server uses for this request's generated text (multi-turn
  // workloads put engine::output_token_text(output_seed, i) into the next turn's prompt).
  // cluster-sim passes it as EngineRequest::output_seed.
  uint64_t output_seed = 0;
};

struct Workload {
  std::string name;
  std::vector<WorkloadRequest> requests;
  int block_size = kDefaultBlockSize;  // of block_hashes
  bool has_block_hashes = false;

  // Arrival time of the last request (0 if empty).
  double duration_s() const;
};

// Tokens the toy chat template adds around one user message:
// "<|user|>\n" + content + "\n<|assistant|>\n" (openai::render_chat_prompt) = 15.
int chat_template_tokens();

Api effective_api(const WorkloadRequest& r, Api fallback = Api::kCompletions);
// Tokens of the message content / completions prompt actually sent for `api`.
int content_tokens_for(const WorkloadRequest& r, Api api);

// The text sent as the completions prompt or the chat message content (for the request's
// effective API; `fallback` applies when r.api is unset).
std::string prompt_text(const WorkloadRequest& r, Api fallback = Api::kCompletions);
// The text the server tokenizes: the prompt, or for chat the rendered template.
std::string server_prompt_text(const WorkloadRequest& r, Api fallback = Api::kCompletions);
// Token ids of server_prompt_text(), computed without building the text.
std::vector<uint32_t> server_prompt_token_ids(const WorkloadRequest& r,
                                              Api fallback = Api::kCompletions);
// engine::chain_block_hashes(server_prompt_token_ids(r), block_size), streamed.
std::vector<uint64_t> compute_block_hashes(const WorkloadRequest& r, int block_size,
                                           Api fallback = Api::kCompletions);

// Sets content_tokens, prompt_tokens (for the effective API) and, if `with_hashes`,
// block_hashes. Loaders and generators call it; call it again after editing `prompt` or `api`.
void finalize_request(WorkloadRequest& r, bool with_hashes, int block_size = kDefaultBlockSize);
// Sets `api` on every request and recomputes prompt_tokens and hashes where the API changes.
void set_api(Workload& w, Api api);
// Renumbers `index` 0..n-1 in the current order.
void renumber(Workload& w);
// Sorts requests by arrival time (stable) and renumbers them.
void sort_by_arrival(Workload& w);

// Text of word `word` (0 <= word < kWordCount): " w" followed by 3 lowercase letters.
inline constexpr int kWordCount = 26 * 26 * 26;
std::string word_text(int word);
// Word i of the stream with this seed (random access).
int word_at(uint64_t seed, int64_t i);
// Toy token id of word_text(word) (a precomputed table).
uint32_t word_token_id(int word);

// Aggregate numbers for printing a workload.
struct WorkloadSummary {
  int64_t requests = 0;
  double duration_s = 0;
  double mean_rate_rps = 0;  // (n-1)/duration
  double mean_prompt_tokens = 0;
  double mean_output_tokens = 0;
  int max_prompt_tokens = 0;
  int max_output_tokens = 0;
  int64_t sessions = 0;
  // Fraction of full prompt blocks whose chained hash appeared in an earlier request
  // (an upper bound on the prefix-cache hit rate of an infinite cache); 0 without hashes.
  double repeated_block_fraction = 0;
};
WorkloadSummary summarize(const Workload& w);

}  // namespace eta::workload
