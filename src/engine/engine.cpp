// The engine: vLLM V1's scheduler (vllm/v1/core/sched/scheduler.py) over a BlockPool, timed by
// the StepTimeModel. See ../shared/vllm-interface.md §6.
//
// Per step:
//  1. Running requests, in order: num_new = known tokens - computed tokens, capped by
//     long_prefill_token_threshold (if > 0) and the remaining token budget; allocate the blocks
//     it needs. If the pool is short, preempt the newest running request (running.back()): its
//     blocks are freed, its computed tokens reset to 0, and it goes to the front of waiting. If
//     the victim is the request being scheduled, stop scheduling.
//  2. Only if nothing was preempted: waiting requests FCFS while the budget lasts and fewer than
//     max_num_seqs run. A request's first scheduling (and its resumption after a preemption)
//     looks up the prefix cache: consecutive full blocks whose hashes are cached, at most
//     known tokens - 1 (the last token is always computed). Stop at the first that does not fit.
//  3. The step lasts StepTimeModel::step_seconds(batch shape). Afterwards each scheduled request
//     has computed num_new more tokens; blocks that became full are registered in the cache; a
//     request whose computed tokens cover all its known tokens (prompt + output so far) emits
//     one token, and finishes when it has emitted EngineRequest::output_tokens.
#include <algorithm>
#include <deque>
#include <unordered_map>

#include "engine/block_pool.hpp"
#include "engine/engine.hpp"
#include "engine/hash.hpp"

namespace eta::engine {

namespace {

enum class State : uint8_t { kWaiting, kRunning, kFinished };

// What every step reads comes first, in one cache line; the rest is read at scheduling changes.
struct alignas(64) Request {
  int prompt_tokens = 0;
  int num_output = 0;
  int num_computed = 0;
  int output_target = 1;
  int num_full_blocks = 0;  // leading blocks already full (their hash registered or tried)
  State state = State::kWaiting;
  bool scheduled_now = false;  // scheduled in the step being built
  bool cacheable = false;      // looks up and registers blocks
  bool extend_hashes = false;  // every full prompt block was hashed: output blocks get hashes
  RequestId id = 0;
  std::vector<int32_t> blocks;

  FinishReason reason = FinishReason::kLength;
  bool ever_scheduled = false;
  int cached_prompt_tokens = 0;
  uint64_t output_seed = 0;
  double arrival_time = 0;
  // The chain of block hashes known so far: the prompt's, then (if extend_hashes) hashes derived
  // for blocks that contain output, added as they are needed.
  std::vector<uint64_t> hashes;
  double first_scheduled_time = 0;
  double first_token_time = 0;

  int known_tokens() const { return prompt_tokens + num_output; }
};

struct Scheduled {
  Request* request;
  int num_new;
  int computed_before;
};

int ceil_div(int64_t a, int64_t b) {
  return static_cast<int>((a + b - 1) / b);
}

}  // namespace

struct Engine::Impl {
  explicit Impl(const EngineConfig& c)
      : config(c.resolved()), model(config), pool(config.num_gpu_blocks) {
    init_block_shift();
    hit_blocks.reserve(64);
    scheduled.reserve(static_cast<std::size_t>(config.max_num_seqs));
    running.reserve(static_cast<std::size_t>(config.max_num_seqs));
  }

  void init_block_shift() {
    const int bs = config.block_size;
    if (bs > 0 && (bs & (bs - 1)) == 0) {
      block_shift = 0;
      while ((1 << block_shift) < bs) ++block_shift;
    }
  }

  EngineConfig config;
  StepTimeModel model;
  BlockPool pool;
  EngineCounters counters;
  std::unordered_map<RequestId, std::unique_ptr<Request>> requests;
  std::vector<std::unique_ptr<Request>> spare;  // finished requests, reused (keeps capacity)
  std::deque<Request*> waiting;
  std::vector<Request*> running;
  std::vector<Scheduled> scheduled;  // the step being built, in batch order
  std::vector<int32_t> hit_blocks;   // scratch for prefix lookups

  int block_size() const { return config.block_size; }
  // Divisions by the block size of non-negative token counts; a shift when it is a power of two
  // (the same results; a division is the slowest instruction in the step loop).
  int block_shift = -1;
  int blocks_of(int64_t tokens) const {  // floor(tokens / block_size)
    return static_cast<int>(block_shift >= 0 ? tokens >> block_shift : tokens / block_size());
  }
  int blocks_for(int64_t tokens) const {  // ceil(tokens / block_size)
    return blocks_of(tokens + block_size() - 1);
  }

  // Hash of block `i` of `r`, or 0 if it has none.
  uint64_t hash_at(Request& r, int i) {
    while (static_cast<int>(r.hashes.size()) <= i) {
      if (!r.extend_hashes) return 0;
      const int k = static_cast<int>(r.hashes.size());
      const uint64_t parent = k == 0 ? kRootBlockHash : r.hashes.back();
      r.hashes.push_back(output_block_hash(parent, r.output_seed, k));
    }
    return r.hashes[static_cast<std::size_t>(i)];
  }

  // Blocks for a running request to compute `num_new` more tokens; false if the pool is short.
  bool allocate_running(Request& r, int num_new) {
    // The common case (a decode inside its last block) without a division.
    if (static_cast<int64_t>(r.num_computed) + num_new <=
        static_cast<int64_t>(r.blocks.size()) * block_size()) {
      return true;
    }
    const int needed = blocks_for(static_cast<int64_t>(r.num_computed) + num_new) -
                       static_cast<int>(r.blocks.size());
    if (needed <= 0) return true;
    if (needed > pool.num_free()) return false;
    for (int i = 0; i < needed; ++i) r.blocks.push_back(pool.allocate());
    return true;
  }

  // Blocks for a waiting request: the cache hits in hit_blocks plus new ones for `num_new`
  // tokens after them. Hits that sit in the free queue count against the free blocks too.
  bool allocate_waiting(Request& r, int num_new) {
    const int hits = static_cast<int>(hit_blocks.size());
    const int needed = blocks_for(static_cast<int64_t>(hits) * block_size() + num_new) - hits;
    int evictable_hits = 0;
    for (int32_t b : hit_blocks) evictable_hits += pool.is_free(b) ? 1 : 0;
    if (needed + evictable_hits > pool.num_free()) return false;
    r.blocks.clear();
    for (int32_t b : hit_blocks) {
      pool.touch(b);
      r.blocks.push_back(b);
    }
    for (int i = 0; i < needed; ++i) r.blocks.push_back(pool.allocate());
    return true;
  }

  // Fills hit_blocks with the consecutive cached blocks at the start of `r`.
  void lookup_prefix(Request& r) {
    hit_blocks.clear();
    if (!r.cacheable) return;
    const int max_blocks = blocks_of(r.known_tokens() - 1);
    for (int i = 0; i < max_blocks; ++i) {
      const uint64_t h = hash_at(r, i);
      if (h == 0) break;
      const int b = pool.lookup(h);
      if (b < 0) break;
      hit_blocks.push_back(b);
    }
  }

  void free_blocks(Request& r) {
    pool.release(r.blocks);
    r.blocks.clear();
    r.num_full_blocks = 0;
  }

  void preempt(Request* victim, StepResult& out) {
    free_blocks(*victim);
    victim->num_computed = 0;
    victim->state = State::kWaiting;
    waiting.push_front(victim);
    out.preempted.push_back(victim->id);
    ++counters.preemptions;
  }

  // Registers the blocks of `r` that its computed tokens have filled.
  // (Hashes are a function of the block index alone, so extending them up front is the same as
  // one at a time; the pool stops at the first block without a hash.)
  void register_full_blocks(Request& r) {
    const int full = blocks_of(r.num_computed);
    if (r.cacheable && full > r.num_full_blocks) {
      hash_at(r, full - 1);
      const int end = std::min(full, static_cast<int>(r.hashes.size()));
      if (end > r.num_full_blocks) {
        const auto first = static_cast<std::size_t>(r.num_full_blocks);
        const auto count = static_cast<std::size_t>(end - r.num_full_blocks);
        pool.register_hashes(std::span<const int32_t>(r.blocks).subspan(first, count),
                             std::span<const uint64_t>(r.hashes).subspan(first, count));
      }
    }
    r.num_full_blocks = full;
  }

  void release_request(Request* r) {
    auto it = requests.find(r->id);
    if (it == requests.end()) return;
    std::unique_ptr<Request> owned = std::move(it->second);
    requests.erase(it);
    if (spare.size() < 1024) spare.push_back(std::move(owned));
  }

  // Deep copy for Engine::clone(): requests are copied and the queues re-pointed at the copies;
  // the spare list (reused allocations) is not copied.
  Impl(const Impl& other)
      : config(other.config), model(other.model), pool(other.pool), counters(other.counters) {
    init_block_shift();
    hit_blocks.reserve(64);
    scheduled.reserve(static_cast<std::size_t>(config.max_num_seqs));
    running.reserve(std::max(other.running.size(), static_cast<std::size_t>(config.max_num_seqs)));
    requests.reserve(other.requests.size());
    for (const auto& [id, r] : other.requests) requests.emplace(id, std::make_unique<Request>(*r));
    for (const Request* r : other.waiting) waiting.push_back(requests.at(r->id).get());
    for (const Request* r : other.running) running.push_back(requests.at(r->id).get());
  }

  void schedule(double now, StepResult& out);
  void execute(StepResult& out);
};

void Engine::Impl::schedule(double now, StepResult& out) {
  const int threshold = config.long_prefill_token_threshold;
  int budget = config.max_num_batched_tokens;
  bool preempted_any = false;

  // 1. Running requests first.
  std::size_t idx = 0;
  while (idx < running.size() && budget > 0) {
    Request* r = running[idx];
    int num_new = r->known_tokens() - r->num_computed;
    if (threshold > 0 && num_new > threshold) num_new = threshold;
    num_new = std::min(num_new, budget);
    if (num_new <= 0) {
      ++idx;
      continue;
    }
    bool can_schedule = true;
    while (!allocate_running(*r, num_new)) {
      Request* victim = running.back();
      running.pop_back();
      if (victim->scheduled_now) {
        // Give back what it was granted this step (does not happen with FCFS order, where the
        // victim is never ahead of the request being scheduled, but keep it exact).
        auto s = std::find_if(scheduled.begin(), scheduled.end(),
                              [victim](const Scheduled& x) { return x.request == victim; });
        if (s != scheduled.end()) {
          budget += s->num_new;
          scheduled.erase(s);
        }
        victim->scheduled_now = false;
      }
      preempt(victim, out);
      preempted_any = true;
      if (victim == r) {
        can_schedule = false;
        break;
      }
    }
    if (!can_schedule) break;
    r->scheduled_now = true;
    scheduled.push_back({r, num_new, r->num_computed});
    budget -= num_new;
    ++idx;
  }

  // 2. Waiting requests, FCFS, only if nothing was preempted.
  if (preempted_any) return;
  const auto max_seqs = static_cast<std::size_t>(config.max_num_seqs);
  while (!waiting.empty() && budget > 0 && running.size() < max_seqs) {
    Request* r = waiting.front();
    lookup_prefix(*r);
    const int hit_tokens = static_cast<int>(hit_blocks.size()) * block_size();
    int num_new = r->known_tokens() - hit_tokens;
    if (threshold > 0 && num_new > threshold) num_new = threshold;
    num_new = std::min(num_new, budget);
    if (!allocate_waiting(*r, num_new)) break;
    waiting.pop_front();
    r->state = State::kRunning;
    running.push_back(r);
    r->num_computed = hit_tokens;
    r->num_full_blocks = static_cast<int>(hit_blocks.size());
    if (r->cacheable) {
      counters.prefix_cache_queries += static_cast<uint64_t>(r->known_tokens());
      counters.prefix_cache_hits += static_cast<uint64_t>(hit_tokens);
    }
    if (!r->ever_scheduled) {
      r->ever_scheduled = true;
      r->first_scheduled_time = now;
      r->cached_prompt_tokens = hit_tokens;
      out.first_scheduled.push_back(r->id);
    }
    r->scheduled_now = true;
    scheduled.push_back({r, num_new, hit_tokens});
    budget -= num_new;
  }
}

void Engine::Impl::execute(StepResult& out) {
  BatchShape shape;
  for (const Scheduled& s : scheduled) {
    const Request& r = *s.request;
    shape.num_tokens += s.num_new;
    const bool decode =
        s.num_new == 1 && r.num_output > 0 && s.computed_before == r.known_tokens() - 1;
    if (decode) {
      ++out.num_decode_seqs;
      shape.decode_kv_tokens += s.computed_before + 1;
    } else {
      out.num_prefill_tokens += s.num_new;
      shape.prefill_attn_pairs +=
          static_cast<double>(s.num_new) * (static_cast<double>(s.computed_before) + s.num_new);
      shape.prefill_kv_tokens += s.computed_before;
    }
  }
  // vLLM computes logits for the last token of every scheduled request (partial prefills
  // included, their samples are discarded).
  shape.num_sampled = static_cast<int>(scheduled.size());
  out.num_scheduled_tokens = shape.num_tokens;
  out.end = out.start + model.step_seconds(shape);
  ++counters.steps;

  bool any_finished = false;
  for (const Scheduled& s : scheduled) {
    Request& r = *s.request;
    r.scheduled_now = false;
    r.num_computed += s.num_new;
    if (blocks_of(r.num_computed) > r.num_full_blocks) register_full_blocks(r);
    if (r.num_computed < r.known_tokens()) continue;  // a prefill chunk that did not end it
    const int index = r.num_output++;
    ++counters.generation_tokens;
    // Built in place: a TokenEvent assembled on the stack and copied stalls on store forwarding.
    TokenEvent& ev = out.tokens.emplace_back();
    ev.id = r.id;
    ev.index = index;
    ev.first = index == 0;
    ev.finished = FinishReason::kNone;
    if (index == 0) {
      r.first_token_time = out.end;
      counters.prompt_tokens += static_cast<uint64_t>(r.prompt_tokens);
    }
    if (r.num_output >= r.output_target) {
      ev.finished = r.reason;
      r.state = State::kFinished;
      free_blocks(r);
      out.finished.push_back(FinishedRequest{r.id, r.reason, r.prompt_tokens, r.num_output,
                                             r.cached_prompt_tokens, r.arrival_time,
                                             r.first_scheduled_time, r.first_token_time, out.end});
      any_finished = true;
    }
  }
  if (any_finished) {
    std::erase_if(running, [](const Request* r) { return r->state == State::kFinished; });
    for (const Scheduled& s : scheduled) {
      if (s.request->state == State::kFinished) release_request(s.request);
    }
  }
}

Engine::Engine(const EngineConfig& config) : impl_(std::make_unique<Impl>(config)) {}
Engine::Engine(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Engine Engine::clone() const {
  return Engine(std::make_unique<Impl>(*impl_));
}
Engine::~Engine() = default;
Engine::Engine(Engine&&) noexcept = default;
Engine& Engine::operator=(Engine&&) noexcept = default;

const EngineConfig& Engine::config() const {
  return impl_->config;
}
const StepTimeModel& Engine::step_time_model() const {
  return impl_->model;
}

bool Engine::add_request(EngineRequest request) {
  Impl& m = *impl_;
  if (request.prompt_tokens < 1) return false;
  if (m.requests.count(request.id) != 0) return false;
  const int output = std::max(request.output_tokens, 1);
  // The most tokens it ever holds: everything but its last output token is computed.
  const int64_t max_tokens = static_cast<int64_t>(request.prompt_tokens) + output - 1;
  if (ceil_div(max_tokens, m.block_size()) > m.pool.num_blocks()) return false;

  std::unique_ptr<Request> r;
  if (!m.spare.empty()) {
    r = std::move(m.spare.back());
    m.spare.pop_back();
    std::vector<uint64_t> hashes = std::move(r->hashes);
    std::vector<int32_t> blocks = std::move(r->blocks);
    *r = Request{};
    r->hashes = std::move(hashes);
    r->blocks = std::move(blocks);
    r->hashes.clear();
    r->blocks.clear();
  } else {
    r = std::make_unique<Request>();
  }
  r->id = request.id;
  r->prompt_tokens = request.prompt_tokens;
  r->output_target = output;
  r->reason = request.finish_reason;
  r->output_seed = request.output_seed;
  r->arrival_time = request.arrival_time;
  const int full_prompt_blocks = request.prompt_tokens / m.block_size();
  if (static_cast<int>(request.block_hashes.size()) > full_prompt_blocks) {
    request.block_hashes.resize(static_cast<std::size_t>(full_prompt_blocks));
  }
  r->cacheable =
      m.config.enable_prefix_caching && (!request.block_hashes.empty() || full_prompt_blocks == 0);
  r->extend_hashes =
      r->cacheable && static_cast<int>(request.block_hashes.size()) == full_prompt_blocks;
  if (r->hashes.capacity() >= request.block_hashes.size()) {
    r->hashes.assign(request.block_hashes.begin(), request.block_hashes.end());
  } else {
    r->hashes = std::move(request.block_hashes);
  }
  Request* raw = r.get();
  m.requests.emplace(raw->id, std::move(r));
  m.waiting.push_back(raw);
  return true;
}

bool Engine::abort_request(RequestId id) {
  Impl& m = *impl_;
  auto it = m.requests.find(id);
  if (it == m.requests.end()) return false;
  Request* r = it->second.get();
  if (r->state == State::kWaiting) {
    auto w = std::find(m.waiting.begin(), m.waiting.end(), r);
    if (w != m.waiting.end()) m.waiting.erase(w);
  } else {
    auto w = std::find(m.running.begin(), m.running.end(), r);
    if (w != m.running.end()) m.running.erase(w);
  }
  m.free_blocks(*r);
  m.release_request(r);
  return true;
}

bool Engine::has_unfinished() const {
  return !impl_->waiting.empty() || !impl_->running.empty();
}

void Engine::step(double now, StepResult& out) {
  Impl& m = *impl_;
  out.start = now;
  out.end = now;
  out.num_scheduled_tokens = 0;
  out.num_prefill_tokens = 0;
  out.num_decode_seqs = 0;
  out.tokens.clear();
  out.finished.clear();
  out.preempted.clear();
  out.first_scheduled.clear();
  m.scheduled.clear();
  m.schedule(now, out);
  if (!m.scheduled.empty()) m.execute(out);
  out.num_running_after = static_cast<int>(m.running.size());
}

StepResult Engine::step(double now) {
  StepResult out;
  step(now, out);
  return out;
}

int Engine::num_running() const {
  return static_cast<int>(impl_->running.size());
}
int Engine::num_waiting() const {
  return static_cast<int>(impl_->waiting.size());
}
double Engine::kv_cache_usage() const {
  return impl_->pool.usage();
}
int Engine::num_free_blocks() const {
  return impl_->pool.num_free();
}
const EngineCounters& Engine::counters() const {
  return impl_->counters;
}
const BlockPool& Engine::block_pool() const {
  return impl_->pool;
}

void Engine::set_block_pool_listener(BlockPoolListener* listener) {
  impl_->pool.set_listener(listener);
}

}  // namespace eta::engine
