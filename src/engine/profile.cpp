// Loading and validating engine profiles (data/profiles/*.yaml). Parsing happens at start-up
// only; yaml-cpp's exceptions are caught here and turned into one-line errors.
#include "engine/profile.hpp"

#include <yaml-cpp/yaml.h>

#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <initializer_list>
#include <string_view>
#include <type_traits>

#include <fmt/format.h>

namespace eta::engine {

extern const char* const kBuiltinProfilesYaml;

double ModelArch::kv_bytes_per_token() const {
  return 2.0 * layers * kv_heads * static_cast<double>(head_dim) * dtype_bytes;
}

double ModelArch::linear_params_per_layer() const {
  const double h = hidden;
  const double qkv = h * (static_cast<double>(q_heads) + 2.0 * kv_heads) * head_dim;
  const double out = static_cast<double>(q_heads) * head_dim * h;
  const double mlp = 3.0 * h * intermediate;  // gate, up, down
  return qkv + out + mlp;
}

namespace {

// One-line description of where a node came from, for error messages.
std::string where(const YAML::Node& n) {
  const YAML::Mark m = n.Mark();
  if (m.line < 0) return "";
  return fmt::format(" (line {})", m.line + 1);
}

bool check_keys(const YAML::Node& map, const std::string& path,
                std::initializer_list<std::string_view> allowed, std::string& error) {
  for (const auto& kv : map) {
    const std::string key = kv.first.as<std::string>();
    bool ok = false;
    for (std::string_view a : allowed) ok = ok || key == a;
    if (!ok) {
      error = fmt::format("{}: unknown key '{}'{}", path, key, where(kv.first));
      return false;
    }
  }
  return true;
}

// Reads a required (or optional, with `out` keeping its default) scalar and checks that it is
// positive (or, for `allow_zero`, non-negative).
template <typename T>
bool read_number(const YAML::Node& map, const std::string& path, const char* key, bool required,
                 bool allow_zero, T& out, std::string& error) {
  const YAML::Node n = map[key];
  if (!n) {
    if (!required) return true;
    error = fmt::format("{}: missing field '{}'", path, key);
    return false;
  }
  if (!n.IsScalar()) {
    error = fmt::format("{}.{}: expected a number{}", path, key, where(n));
    return false;
  }
  T v{};
  if (!YAML::convert<T>::decode(n, v)) {
    error = fmt::format("{}.{}: '{}' is not a valid number{}", path, key, n.Scalar(), where(n));
    return false;
  }
  if constexpr (std::is_floating_point_v<T>) {
    if (!std::isfinite(v)) {
      error = fmt::format("{}.{}: '{}' is not finite{}", path, key, n.Scalar(), where(n));
      return false;
    }
  }
  if (v < 0 || (!allow_zero && v == 0)) {
    error = fmt::format("{}.{}: must be {} (got {}){}", path, key,
                        allow_zero ? "non-negative" : "positive", n.Scalar(), where(n));
    return false;
  }
  out = v;
  return true;
}

bool read_string(const YAML::Node& map, const std::string& path, const char* key, bool required,
                 std::string& out, std::string& error) {
  const YAML::Node n = map[key];
  if (!n) {
    if (!required) return true;
    error = fmt::format("{}: missing field '{}'", path, key);
    return false;
  }
  if (!n.IsScalar()) {
    error = fmt::format("{}.{}: expected a string{}", path, key, where(n));
    return false;
  }
  out = n.Scalar();
  return true;
}

bool parse_arch(const std::string& name, const YAML::Node& n, ModelArch& a, std::string& error) {
  const std::string path = "archs." + name;
  if (!n.IsMap()) {
    error = fmt::format("{}: expected a map of fields{}", path, where(n));
    return false;
  }
  if (!check_keys(n, path,
                  {"layers", "hidden", "q_heads", "kv_heads", "head_dim", "intermediate", "vocab",
                   "params", "dtype_bytes", "max_model_len", "activation_reserve_gib", "models"},
                  error)) {
    return false;
  }
  a.name = name;
  if (const YAML::Node models = n["models"]; models) {
    if (!models.IsSequence()) {
      error = fmt::format("{}.models: expected a list of model names{}", path, where(models));
      return false;
    }
    for (const auto& m : models) {
      if (!m.IsScalar() || m.Scalar().empty()) {
        error = fmt::format("{}.models: expected a list of model names{}", path, where(m));
        return false;
      }
      a.models.push_back(m.Scalar());
    }
  }
  return read_number(n, path, "layers", true, false, a.layers, error) &&
         read_number(n, path, "hidden", true, false, a.hidden, error) &&
         read_number(n, path, "q_heads", true, false, a.q_heads, error) &&
         read_number(n, path, "kv_heads", true, false, a.kv_heads, error) &&
         read_number(n, path, "head_dim", true, false, a.head_dim, error) &&
         read_number(n, path, "intermediate", true, false, a.intermediate, error) &&
         read_number(n, path, "vocab", true, false, a.vocab, error) &&
         read_number(n, path, "params", true, false, a.params, error) &&
         read_number(n, path, "dtype_bytes", false, false, a.dtype_bytes, error) &&
         read_number(n, path, "max_model_len", true, false, a.max_model_len, error) &&
         read_number(n, path, "activation_reserve_gib", false, true, a.activation_reserve_gib,
                     error);
}

bool parse_linear_table(const YAML::Node& n, const std::string& path,
                        std::vector<std::pair<int, double>>& out, std::string& error) {
  const std::string tpath = path + ".linear_ops_ms";
  if (!n.IsSequence() || n.size() == 0) {
    error = fmt::format("{}: expected a non-empty list of [tokens, ms] pairs{}", tpath, where(n));
    return false;
  }
  out.clear();
  for (std::size_t i = 0; i < n.size(); ++i) {
    const YAML::Node e = n[i];
    int tokens = 0;
    double ms = 0;
    if (!e.IsSequence() || e.size() != 2 || !e[0].IsScalar() || !e[1].IsScalar() ||
        !YAML::convert<int>::decode(e[0], tokens) || !YAML::convert<double>::decode(e[1], ms)) {
      error = fmt::format("{}: entry {} is not a [tokens, ms] pair{}", tpath, i, where(e));
      return false;
    }
    if (tokens <= 0 || !(ms > 0) || !std::isfinite(ms)) {
      error = fmt::format("{}: entry {} needs tokens > 0 and ms > 0{}", tpath, i, where(e));
      return false;
    }
    if (!out.empty() && tokens <= out.back().first) {
      error = fmt::format("{}: entry {} ({} tokens) is not in ascending order of tokens{}", tpath,
                          i, tokens, where(e));
      return false;
    }
    out.emplace_back(tokens, ms);
  }
  return true;
}

bool parse_gpu(const std::string& name, const YAML::Node& n, GpuProfile& g, std::string& error) {
  const std::string path = "gpus." + name;
  if (!n.IsMap()) {
    error = fmt::format("{}: expected a map of fields{}", path, where(n));
    return false;
  }
  if (!check_keys(
          n, path,
          {"description", "peak_tflops", "mem_bw_tbps", "mem_gib", "bw_efficiency",
           "flops_efficiency", "step_overhead_ms", "max_num_seqs", "max_num_batched_tokens",
           "allreduce_busbw_gbps", "allreduce_latency_us", "linear_ops_arch", "linear_ops_ms"},
          error)) {
    return false;
  }
  g.name = name;
  if (!(read_string(n, path, "description", false, g.description, error) &&
        read_number(n, path, "peak_tflops", true, false, g.peak_tflops, error) &&
        read_number(n, path, "mem_bw_tbps", true, false, g.mem_bw_tbps, error) &&
        read_number(n, path, "mem_gib", true, false, g.mem_gib, error) &&
        read_number(n, path, "bw_efficiency", true, false, g.bw_efficiency, error) &&
        read_number(n, path, "flops_efficiency", true, false, g.flops_efficiency, error) &&
        read_number(n, path, "step_overhead_ms", true, true, g.step_overhead_ms, error) &&
        read_number(n, path, "max_num_seqs", true, false, g.max_num_seqs, error) &&
        read_number(n, path, "max_num_batched_tokens", true, false, g.max_num_batched_tokens,
                    error) &&
        read_number(n, path, "allreduce_busbw_gbps", false, false, g.allreduce_busbw_gbps, error) &&
        read_number(n, path, "allreduce_latency_us", false, false, g.allreduce_latency_us, error) &&
        read_string(n, path, "linear_ops_arch", true, g.linear_ops_arch, error))) {
    return false;
  }
  if (g.bw_efficiency > 1 || g.flops_efficiency > 1) {
    error = fmt::format("{}: bw_efficiency and flops_efficiency must be in (0, 1]", path);
    return false;
  }
  const YAML::Node table = n["linear_ops_ms"];
  if (!table) {
    error = fmt::format("{}: missing field 'linear_ops_ms'", path);
    return false;
  }
  return parse_linear_table(table, path, g.linear_ops_ms, error);
}

bool parse_root(const YAML::Node& root, ProfileSet& out, std::string& error) {
  if (root.IsNull()) return true;  // an empty document is an empty set
  if (!root.IsMap()) {
    error = "profiles: expected a map with keys 'gpus' and/or 'archs'";
    return false;
  }
  if (!check_keys(root, "profiles", {"gpus", "archs"}, error)) return false;
  if (const YAML::Node archs = root["archs"]; archs && !archs.IsNull()) {
    if (!archs.IsMap()) {
      error = fmt::format("archs: expected a map of name -> fields{}", where(archs));
      return false;
    }
    for (const auto& kv : archs) {
      const std::string name = kv.first.as<std::string>();
      ModelArch a;
      if (!parse_arch(name, kv.second, a, error)) return false;
      out.archs[name] = std::move(a);
    }
  }
  if (const YAML::Node gpus = root["gpus"]; gpus && !gpus.IsNull()) {
    if (!gpus.IsMap()) {
      error = fmt::format("gpus: expected a map of name -> fields{}", where(gpus));
      return false;
    }
    for (const auto& kv : gpus) {
      const std::string name = kv.first.as<std::string>();
      GpuProfile g;
      if (!parse_gpu(name, kv.second, g, error)) return false;
      out.gpus[name] = std::move(g);
    }
  }
  return true;
}

}  // namespace

bool ProfileSet::from_yaml(const std::string& text, ProfileSet& out, std::string& error) {
  ProfileSet parsed;
  try {
    const YAML::Node root = YAML::Load(text);
    if (!parse_root(root, parsed, error)) return false;
  } catch (const YAML::Exception& e) {
    // yaml-cpp messages are one line ("yaml-cpp: error at line 3, column 5: ...").
    error = fmt::format("profiles: invalid YAML: {}", e.what());
    for (char& c : error) {
      if (c == '\n') c = ' ';
    }
    return false;
  }
  out = std::move(parsed);
  return true;
}

const ProfileSet& ProfileSet::builtin() {
  static const ProfileSet set = [] {
    ProfileSet s;
    std::string error;
    if (!from_yaml(kBuiltinProfilesYaml, s, error)) {
      std::fprintf(stderr, "eta: built-in engine profiles are invalid: %s\n", error.c_str());
      std::abort();
    }
    return s;
  }();
  return set;
}

void ProfileSet::merge(const ProfileSet& other) {
  for (const auto& [name, g] : other.gpus) gpus[name] = g;
  for (const auto& [name, a] : other.archs) archs[name] = a;
}

namespace {

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

// A Hugging Face id's or a path's last component ("meta-llama/Llama-2-7b-hf" -> "Llama-2-7b-hf",
// "/models/llama/" -> "llama").
std::string_view last_component(std::string_view s) {
  while (!s.empty() && s.back() == '/') s.remove_suffix(1);
  const auto slash = s.rfind('/');
  return slash == std::string_view::npos ? s : s.substr(slash + 1);
}

}  // namespace

const ModelArch* ProfileSet::arch_for_model(const std::string& model) const {
  for (const std::string_view candidate : {std::string_view(model), last_component(model)}) {
    if (candidate.empty()) continue;
    for (const auto& [name, a] : archs) {
      if (iequals(candidate, name)) return &a;
      for (const std::string& m : a.models) {
        if (iequals(candidate, m) || iequals(candidate, last_component(m))) return &a;
      }
    }
  }
  return nullptr;
}

}  // namespace eta::engine
