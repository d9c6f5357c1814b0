#include "workload/catalog.hpp"

#include <cstdlib>
#include <filesystem>

#include <fmt/format.h>

#include <charconv>
#include <cmath>
#include <limits>
#include <set>

#include "workload/arrivals.hpp"
#include "workload/synthetic.hpp"
#include "workload/trace.hpp"

namespace eta::workload {

namespace {

// Reads typed values from a spec's parameters, remembering which keys were used.
class Params {
 public:
  Params(const WorkloadSpec& spec) : spec_(spec) {}

  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }

  const std::string* find(const std::string& key) {
    auto it = spec_.params.find(key);
    if (it == spec_.params.end()) return nullptr;
    used_.insert(key);
    return &it->second;
  }

  void get(const std::string& key, int64_t& v, int64_t lo, int64_t hi) {
    const std::string* s = find(key);
    if (!s || !ok()) return;
    int64_t x = 0;
    const auto [p, ec] = std::from_chars(s->data(), s->data() + s->size(), x);
    if (ec != std::errc() || p != s->data() + s->size() || x < lo || x > hi) {
      fail(key, *s, fmt::format("an integer in [{}, {}]", lo, hi));
      return;
    }
    v = x;
  }
  void get(const std::string& key, int& v, int lo, int hi) {
    int64_t x = v;
    get(key, x, lo, hi);
    v = static_cast<int>(x);
  }
  void get(const std::string& key, uint64_t& v) {
    const std::string* s = find(key);
    if (!s || !ok()) return;
    uint64_t x = 0;
    const auto [p, ec] = std::from_chars(s->data(), s->data() + s->size(), x);
    if (ec != std::errc() || p != s->data() + s->size()) {
      fail(key, *s, "an unsigned integer");
      return;
    }
    v = x;
  }
  void get(const std::string& key, double& v, double lo, double hi, bool allow_inf = false) {
    const std::string* s = find(key);
    if (!s || !ok()) return;
    double x = 0;
    if (allow_inf && (*s == "inf" || *s == "infinity")) {
      v = std::numeric_limits<double>::infinity();
      return;
    }
    const auto [p, ec] = std::from_chars(s->data(), s->data() + s->size(), x);
    if (ec != std::errc() || p != s->data() + s->size() || !(x >= lo && x <= hi)) {
      fail(key, *s, fmt::format("a number in [{}, {}]{}", lo, hi, allow_inf ? " or inf" : ""));
      return;
    }
    v = x;
  }
  // A length distribution under `prefix`: prefix (mean / fixed value), prefix_dist,
  // prefix_cv, prefix_min, prefix_max.
  void get(const std::string& prefix, LengthDist& d) {
    if (const std::string* s = find(prefix + "_dist"); s && ok()) {
      if (!parse_length_kind(*s, d.kind)) fail(prefix + "_dist", *s, "fixed|uniform|lognormal");
    }
    get(prefix, d.mean, 1, 1e7);
    get(prefix + "_cv", d.cv, 0, 100);
    get(prefix + "_min", d.min, 1, 1 << 24);
    get(prefix + "_max", d.max, 1, 1 << 24);
    if (ok() && d.max < d.min) {
      error_ = fmt::format("workload '{}': {}_max ({}) < {}_min ({})", spec_.name, prefix, d.max,
                           prefix, d.min);
    }
  }

  // Fails on keys nobody read.
  void check_all_used(const std::string& known) {
    if (!ok()) return;
    for (const auto& [key, value] : spec_.params) {
      if (!used_.count(key)) {
        error_ = fmt::format("workload '{}': unknown key '{}' (known: {})", spec_.name, key, known);
        return;
      }
    }
  }

 private:
  void fail(const std::string& key, const std::string& value, const std::string& expected) {
    if (ok()) {
      error_ = fmt::format("workload '{}': {}='{}' is not {}", spec_.name, key, value, expected);
    }
  }

  const WorkloadSpec& spec_;
  std::set<std::string> used_;
  std::string error_;
};

constexpr const char* kCommonKeys = "n, seed, api, rate";

bool is_path(const std::string& name) {
  auto ends = [&](std::string_view suf) {
    return name.size() >= suf.size() &&
           name.compare(name.size() - suf.size(), suf.size(), suf.data(), suf.size()) == 0;
  };
  return name.find('/') != std::string::npos || ends(".csv") || ends(".jsonl") || ends(".json");
}

std::string join_path(const std::string& dir, std::string_view file) {
  if (dir.empty()) return std::string(file);
  if (dir.back() == '/') return dir + std::string(file);
  return dir + "/" + std::string(file);
}

}  // namespace

bool parse_workload_spec(std::string_view text, WorkloadSpec& out, std::string& error) {
  WorkloadSpec spec;
  const std::size_t colon = text.find(':');
  spec.name = std::string(text.substr(0, colon));
  if (spec.name.empty()) {
    error = fmt::format("workload '{}': empty name", text);
    return false;
  }
  std::string_view rest = colon == std::string_view::npos ? "" : text.substr(colon + 1);
  while (!rest.empty()) {
    const std::size_t comma = rest.find(',');
    const std::string_view item = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? "" : rest.substr(comma + 1);
    if (item.empty()) continue;
    const std::size_t eq = item.find('=');
    if (eq == std::string_view::npos || eq == 0) {
      error = fmt::format("workload '{}': expected key=value, got '{}'", text, item);
      return false;
    }
    const std::string key(item.substr(0, eq));
    if (!spec.params.emplace(key, std::string(item.substr(eq + 1))).second) {
      error = fmt::format("workload '{}': key '{}' given twice", text, key);
      return false;
    }
  }
  out = std::move(spec);
  return true;
}

const std::vector<std::string>& workload_names() {
  static const std::vector<std::string> names = {"azure-conv",    "mooncake-conv", "synthetic",
                                                 "shared-prefix", "multi-turn",    "bursty-mix"};
  return names;
}

bool make_workload(std::string_view text, const WorkloadContext& context, Workload& out,
                   std::string& error) {
  WorkloadSpec spec;
  if (!parse_workload_spec(text, spec, error)) return false;
  Params params(spec);
  int64_t n = 0;
  uint64_t seed = context.seed;
  double rate = -1;  // unset
  Api api = Api::kCompletions;
  bool api_set = false;
  params.get("n", n, 0, int64_t{1} << 40);
  params.get("seed", seed);
  params.get("rate", rate, 1e-9, 1e12, true);
  if (const std::string* s = params.find("api")) {
    if (!parse_api(*s, api)) {
      error = fmt::format("workload '{}': api='{}' is not completions|chat", spec.name, *s);
      return false;
    }
    api_set = true;
  }
  if (!params.ok()) {
    error = params.error();
    return false;
  }

  GenerateOptions gen;
  gen.compute_block_hashes = context.compute_block_hashes;
  gen.block_size = context.block_size;
  Workload w;
  const std::string& name = spec.name;
  const bool trace = name == "azure-conv" || name == "mooncake-conv" || is_path(name);
  if (trace) {
    params.check_all_used(kCommonKeys);
    if (!params.ok()) {
      error = params.error();
      return false;
    }
    TraceOptions options;
    options.compute_block_hashes = context.compute_block_hashes;
    options.block_size = context.block_size;
    options.seed = seed;
    options.max_requests = n;
    bool ok = false;
    if (name == "azure-conv") {
      ok = load_azure_csv(join_path(context.data_dir, kAzureConvFile), options, w, error);
    } else if (name == "mooncake-conv") {
      ok = load_mooncake_jsonl(join_path(context.data_dir, kMooncakeConvFile), options, w, error);
    } else {
      ok = load_trace_file(name, options, w, error);
    }
    if (!ok) return false;
    if (!is_path(name)) w.name = name;
    if (rate > 0) {
      ArrivalSpec scale;
      scale.kind = ArrivalKind::kTrace;
      scale.rate = rate;
      if (!apply_arrivals(w, scale, error)) return false;
    }
  } else if (name == "synthetic") {
    SyntheticParams p;
    p.seed = seed;
    if (n > 0) p.n = n;
    if (rate > 0) p.rate = rate;
    params.get("in", p.input);
    params.get("out", p.output);
    params.check_all_used(std::string(kCommonKeys) +
                          ", in, in_dist, in_cv, in_min, in_max, out, out_dist, out_cv, out_min, "
                          "out_max");
    if (!params.ok()) {
      error = params.error();
      return false;
    }
    w = generate_synthetic(p, gen);
  } else if (name == "shared-prefix") {
    SharedPrefixParams p;
    p.seed = seed;
    if (n > 0) p.n = n;
    if (rate > 0) p.rate = rate;
    params.get("k", p.k, 1, 1 << 20);
    params.get("L", p.prefix_tokens, 0, 1 << 24);
    params.get("f", p.shared_fraction, 0, 1);
    params.get("suffix", p.suffix);
    params.get("out", p.output);
    params.check_all_used(std::string(kCommonKeys) +
                          ", k, L, f, suffix[_dist|_cv|_min|_max], out[_dist|_cv|_min|_max]");
    if (!params.ok()) {
      error = params.error();
      return false;
    }
    w = generate_shared_prefix(p, gen);
  } else if (name == "multi-turn") {
    MultiTurnParams p;
    p.seed = seed;
    if (rate > 0) p.rate = rate;
    params.get("conversations", p.conversations, 1, int64_t{1} << 30);
    params.get("turns_min", p.turns_min, 1, 1 << 16);
    params.get("turns_max", p.turns_max, 1, 1 << 16);
    params.get("gap", p.gap_s, 0, 1e9);
    params.get("sys", p.system_tokens, 0, 1 << 24);
    params.get("max_prompt", p.max_prompt_tokens, 1, 1 << 24);
    params.get("first", p.first_user);
    params.get("user", p.user);
    params.get("out", p.output);
    params.check_all_used(std::string(kCommonKeys) +
                          ", conversations, turns_min, turns_max, gap, sys, max_prompt, "
                          "first[_dist|_cv|_min|_max], user[...], out[...]");
    if (!params.ok()) {
      error = params.error();
      return false;
    }
    if (p.turns_max < p.turns_min) {
      error = fmt::format("workload '{}': turns_max ({}) < turns_min ({})", name, p.turns_max,
                          p.turns_min);
      return false;
    }
    w = generate_multi_turn(p, gen);
  } else if (name == "bursty-mix") {
    BurstyMixParams p;
    p.seed = seed;
    if (rate > 0) p.rate = rate;
    params.get("duration", p.duration_s, 0, 1e9);
    params.get("docs", p.docs, 1, 1 << 20);
    params.get("doc", p.doc_tokens, 1, 1 << 24);
    params.get("every", p.burst_every_s, 0, 1e9);
    params.get("first_burst", p.first_burst_s, 0, 1e9);
    params.get("burst", p.burst_size, 0, 1 << 20);
    params.get("span", p.burst_span_s, 0, 1e9);
    params.get("short_in", p.short_input);
    params.get("short_out", p.short_output);
    params.get("q", p.question);
    params.get("doc_out", p.doc_output);
    params.check_all_used(std::string(kCommonKeys) +
                          ", duration, docs, doc, every, first_burst, burst, span, "
                          "short_in[_dist|_cv|_min|_max], short_out[...], q[...], doc_out[...]");
    if (!params.ok()) {
      error = params.error();
      return false;
    }
    w = generate_bursty_mix(p, gen);
  } else {
    error = fmt::format(
        "unknown workload '{}' (azure-conv, mooncake-conv, synthetic, "
        "shared-prefix, multi-turn, bursty-mix, or a .csv/.jsonl path)",
        name);
    return false;
  }
  if (!trace && n > 0) truncate(w, n, std::nullopt);
  if (api_set) set_api(w, api);
  renumber(w);
  out = std::move(w);
  return true;
}

std::string workload_help() {
  const SyntheticParams s;
  const SharedPrefixParams sp;
  const MultiTurnParams mt;
  const BurstyMixParams bm;
  auto dist = [](const LengthDist& d) {
    switch (d.kind) {
      case LengthDist::Kind::kFixed:
        return fmt::format("fixed {}", d.mean);
      case LengthDist::Kind::kUniform:
        return fmt::format("uniform [{}, {}]", d.min, d.max);
      case LengthDist::Kind::kLognormal:
        break;
    }
    return fmt::format("lognormal mean {} cv {} in [{}, {}]", d.mean, d.cv, d.min, d.max);
  };
  std::string out;
  out +=
      "Workloads: NAME or NAME:key=value,... Every workload takes n (keep the first n), seed, "
      "api (completions|chat) and rate.\n"
      "A length key X also has X_dist (fixed|uniform|lognormal), X_cv, X_min, X_max.\n\n";
  out += fmt::format(
      "azure-conv      Azure LLM 2023 conversation trace ({}): 19,366 requests, "
      "unique prompts. rate=R scales times to mean rate R.\n",
      kAzureConvFile);
  out += fmt::format(
      "mooncake-conv   Mooncake conversation trace ({}): 12,031 requests, "
      "shared 512-token prefix blocks. rate=R scales times.\n",
      kMooncakeConvFile);
  out += "PATH            a .csv (Azure columns) or .jsonl (Mooncake fields) trace file.\n";
  out += fmt::format("synthetic       n={} rate={} (Poisson) in=[{}] out=[{}]\n", s.n, s.rate,
                     dist(s.input), dist(s.output));
  out += fmt::format(
      "shared-prefix   n={} rate={} k={} system prompts of L={} tokens shared by a fraction "
      "f={}; suffix=[{}] out=[{}]\n",
      sp.n, sp.rate, sp.k, sp.prefix_tokens, sp.shared_fraction, dist(sp.suffix), dist(sp.output));
  out += fmt::format(
      "multi-turn      conversations={} turns_min={} turns_max={} rate={} conversations/s "
      "gap={} s between turns, sys={} shared system tokens, first=[{}] user=[{}] out=[{}] "
      "max_prompt={}\n",
      mt.conversations, mt.turns_min, mt.turns_max, mt.rate, mt.gap_s, mt.system_tokens,
      dist(mt.first_user), dist(mt.user), dist(mt.output), mt.max_prompt_tokens);
  out += fmt::format(
      "bursty-mix      duration={} s, short requests rate={}/s short_in=[{}] short_out=[{}]; "
      "bursts of burst={} document requests every={} s from first_burst={} s over span={} s, "
      "docs={} documents of doc={} tokens + q=[{}], doc_out=[{}]\n",
      bm.duration_s, bm.rate, dist(bm.short_input), dist(bm.short_output), bm.burst_size,
      bm.burst_every_s, bm.first_burst_s, bm.burst_span_s, bm.docs, bm.doc_tokens,
      dist(bm.question), dist(bm.doc_output));
  return out;
}

std::string resolve_data_dir(const std::string& given) {
  namespace fs = std::filesystem;
  if (!given.empty()) return given;
  std::error_code ec;
  if (const char* shared = std::getenv("ETA_SHARED_DIR"); shared && *shared) {
    const fs::path candidate = fs::path(shared) / "data";
    if (fs::is_directory(candidate, ec)) return candidate.string();
  }
  std::vector<fs::path> starts{fs::current_path(ec)};
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) starts.push_back(exe.parent_path());
  for (fs::path dir : starts) {
    while (!dir.empty()) {
      const fs::path candidate = dir / "shared" / "data";
      if (fs::is_directory(candidate, ec)) return candidate.string();
      if (dir == dir.root_path()) break;
      dir = dir.parent_path();
    }
  }
  return "../shared/data";
}

}  // namespace eta::workload
