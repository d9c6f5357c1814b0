#include "metrics/registry.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <system_error>

namespace eta::metrics {

namespace {

void atomic_add(std::atomic<double>& a, double v) {
  double current = a.load(std::memory_order_relaxed);
  while (!a.compare_exchange_weak(current, current + v, std::memory_order_relaxed,
                                  std::memory_order_relaxed)) {
  }
}

bool is_name_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
bool is_name_char(char c) {
  return is_name_start(c) || (c >= '0' && c <= '9');
}

void append_value(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
    return;
  }
  if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
    return;
  }
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  if (ec != std::errc{}) {  // cannot happen with 32 bytes; keep the output well formed anyway
    out += "NaN";
    return;
  }
  out.append(buf, end);
}

void append_uint(std::string& out, uint64_t v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  (void)ec;
  out.append(buf, end);
}

void append_escaped_label_value(std::string& out, const std::string& v) {
  for (char c : v) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
}

// HELP text escapes only backslash and newline (text format 0.0.4).
void append_escaped_help(std::string& out, const std::string& v) {
  for (char c : v) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
}

// Writes `{k1="v1",k2="v2"` (no closing brace) or nothing when there are no labels and no
// extra label follows. Returns whether a brace was opened.
bool append_label_pairs(std::string& out, const std::vector<std::string>& names,
                        const std::vector<std::string>& values) {
  if (names.empty()) return false;
  out += '{';
  for (size_t i = 0; i < names.size(); ++i) {
    if (i) out += ',';
    out += names[i];
    out += "=\"";
    append_escaped_label_value(out, values[i]);
    out += '"';
  }
  return true;
}

void append_sample(std::string& out, const std::string& name, std::string_view suffix,
                   const std::vector<std::string>& names, const std::vector<std::string>& values,
                   double value) {
  out += name;
  out += suffix;
  if (append_label_pairs(out, names, values)) out += '}';
  out += ' ';
  append_value(out, value);
  out += '\n';
}

void append_header(std::string& out, const std::string& name, std::string_view suffix,
                   const std::string& help, std::string_view type) {
  out += "# HELP ";
  out += name;
  out += suffix;
  out += ' ';
  append_escaped_help(out, help);
  out += "\n# TYPE ";
  out += name;
  out += suffix;
  out += ' ';
  out += type;
  out += '\n';
}

void render_children(std::string& out, const std::string& name, const std::string& help,
                     const std::vector<std::string>& label_names,
                     const std::map<std::vector<std::string>, std::unique_ptr<Counter>>& children) {
  append_header(out, name, "_total", help, "counter");
  for (const auto& [values, child] : children) {
    append_sample(out, name, "_total", label_names, values, child->value());
  }
}

void render_children(std::string& out, const std::string& name, const std::string& help,
                     const std::vector<std::string>& label_names,
                     const std::map<std::vector<std::string>, std::unique_ptr<Gauge>>& children) {
  append_header(out, name, "", help, "gauge");
  for (const auto& [values, child] : children) {
    append_sample(out, name, "", label_names, values, child->value());
  }
}

void render_children(
    std::string& out, const std::string& name, const std::string& help,
    const std::vector<std::string>& label_names,
    const std::map<std::vector<std::string>, std::unique_ptr<Histogram>>& children) {
  append_header(out, name, "", help, "histogram");
  for (const auto& [values, child] : children) {
    const auto& bounds = child->bounds();
    // Cumulative counts computed from one pass over the buckets, and _count taken from the same
    // pass, so a render racing with observe() is still self-consistent (+Inf bucket == _count).
    uint64_t cumulative = 0;
    for (size_t i = 0; i <= bounds.size(); ++i) {
      cumulative += child->bucket(i);
      out += name;
      out += "_bucket";
      if (append_label_pairs(out, label_names, values)) {
        out += ',';
      } else {
        out += '{';
      }
      out += "le=\"";
      if (i < bounds.size()) {
        append_value(out, bounds[i]);
      } else {
        out += "+Inf";
      }
      out += "\"} ";
      append_uint(out, cumulative);
      out += '\n';
    }
    append_sample(out, name, "_sum", label_names, values, child->sum());
    out += name;
    out += "_count";
    if (append_label_pairs(out, label_names, values)) out += '}';
    out += ' ';
    append_uint(out, cumulative);
    out += '\n';
  }
}

template <typename T>
constexpr Type type_of();
template <>
constexpr Type type_of<Counter>() {
  return Type::kCounter;
}
template <>
constexpr Type type_of<Gauge>() {
  return Type::kGauge;
}
template <>
constexpr Type type_of<Histogram>() {
  return Type::kHistogram;
}

}  // namespace

bool is_valid_metric_name(std::string_view name) {
  if (name.empty()) return false;
  if (!is_name_start(name[0]) && name[0] != ':') return false;
  for (char c : name) {
    if (!is_name_char(c) && c != ':') return false;
  }
  return true;
}

bool is_valid_label_name(std::string_view name) {
  if (name.empty() || !is_name_start(name[0])) return false;
  for (char c : name) {
    if (!is_name_char(c)) return false;
  }
  // Names beginning with "__" are reserved for Prometheus' internal use.
  return !(name.size() >= 2 && name[0] == '_' && name[1] == '_');
}

void Counter::inc(double v) {
  if (!(v >= 0)) return;  // counters never go down; NaN is dropped too
  atomic_add(value_, v);
}

void Gauge::inc(double v) {
  atomic_add(value_, v);
}

Histogram::Histogram(const std::vector<double>* bounds)
    : bounds_(bounds), buckets_(new std::atomic<uint64_t>[bounds->size() + 1]) {
  for (size_t i = 0; i <= bounds->size(); ++i) buckets_[i].store(0, std::memory_order_relaxed);
}

void Histogram::observe(double v) {
  // Buckets are "less than or equal": the first bound >= v. NaN lands in +Inf.
  size_t i = bounds_->size();
  if (!std::isnan(v)) {
    i = static_cast<size_t>(std::lower_bound(bounds_->begin(), bounds_->end(), v) -
                            bounds_->begin());
  }
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  atomic_add(sum_, v);
  count_.fetch_add(1, std::memory_order_relaxed);
}

template <typename T>
Family<T>::Family(std::string name, std::string help, std::vector<std::string> label_names,
                  std::vector<double> bounds)
    : name_(std::move(name)),
      help_(std::move(help)),
      label_names_(std::move(label_names)),
      bounds_(std::move(bounds)) {
  if (!is_valid_metric_name(name_)) {
    throw std::invalid_argument("invalid Prometheus metric name: \"" + name_ + "\"");
  }
  for (size_t i = 0; i < label_names_.size(); ++i) {
    const auto& l = label_names_[i];
    if (!is_valid_label_name(l)) {
      throw std::invalid_argument("metric " + name_ + ": invalid label name \"" + l + "\"");
    }
    if (std::is_same_v<T, Histogram> && l == "le") {
      throw std::invalid_argument("histogram " + name_ + ": label name \"le\" is reserved");
    }
    for (size_t j = 0; j < i; ++j) {
      if (label_names_[j] == l) {
        throw std::invalid_argument("metric " + name_ + ": duplicate label name \"" + l + "\"");
      }
    }
  }
  if constexpr (std::is_same_v<T, Histogram>) {
    // A trailing +Inf bound is implicit.
    if (!bounds_.empty() && std::isinf(bounds_.back()) && bounds_.back() > 0) bounds_.pop_back();
    for (size_t i = 0; i < bounds_.size(); ++i) {
      if (std::isnan(bounds_[i]) || (i > 0 && !(bounds_[i - 1] < bounds_[i]))) {
        throw std::invalid_argument("histogram " + name_ +
                                    ": bucket bounds must be strictly increasing numbers");
      }
    }
  } else if (!bounds_.empty()) {
    throw std::invalid_argument("metric " + name_ + ": only histograms take bucket bounds");
  }
}

template <typename T>
T& Family<T>::with(const std::vector<std::string>& label_values) {
  if (label_values.size() != label_names_.size()) {
    throw std::invalid_argument("metric " + name_ + ": expected " +
                                std::to_string(label_names_.size()) + " label values, got " +
                                std::to_string(label_values.size()));
  }
  std::lock_guard lock(mu_);
  auto it = children_.find(label_values);
  if (it == children_.end()) {
    std::unique_ptr<T> child;
    if constexpr (std::is_same_v<T, Histogram>) {
      child = std::make_unique<Histogram>(&bounds_);
    } else {
      child = std::make_unique<T>();
    }
    it = children_.emplace(label_values, std::move(child)).first;
  }
  return *it->second;
}

template <typename T>
void Family<T>::remove(const std::vector<std::string>& label_values) {
  std::lock_guard lock(mu_);
  children_.erase(label_values);
}

template <typename T>
void Family<T>::render(std::string& out) const {
  std::lock_guard lock(mu_);
  render_children(out, name_, help_, label_names_, children_);
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

namespace {

template <typename F>
const std::string& family_name(const std::pair<Type, const void*>& entry) {
  return static_cast<const F*>(entry.second)->name();
}

const std::string& entry_name(const std::pair<Type, const void*>& entry) {
  switch (entry.first) {
    case Type::kCounter:
      return family_name<CounterFamily>(entry);
    case Type::kGauge:
      return family_name<GaugeFamily>(entry);
    case Type::kHistogram:
      break;
  }
  return family_name<HistogramFamily>(entry);
}

// Returns the existing family registered under `name`, or nullptr. Throws when the name is taken
// by a family of another type or with other labels.
template <typename F>
F* find_existing(const std::vector<std::pair<Type, const void*>>& order, const std::string& name,
                 Type type, const std::vector<std::string>& label_names) {
  for (const auto& entry : order) {
    if (entry_name(entry) != name) continue;
    if (entry.first != type) {
      throw std::invalid_argument("metric " + name + " is already registered with another type");
    }
    auto* f = const_cast<F*>(static_cast<const F*>(entry.second));
    if (f->label_names() != label_names) {
      throw std::invalid_argument("metric " + name +
                                  " is already registered with other label names");
    }
    return f;
  }
  return nullptr;
}

}  // namespace

CounterFamily& Registry::counter(const std::string& name, const std::string& help,
                                 std::vector<std::string> label_names) {
  std::lock_guard lock(mu_);
  if (auto* f = find_existing<CounterFamily>(order_, name, Type::kCounter, label_names)) return *f;
  auto& f = counters_.emplace_back(name, help, std::move(label_names));
  order_.emplace_back(Type::kCounter, &f);
  return f;
}

GaugeFamily& Registry::gauge(const std::string& name, const std::string& help,
                             std::vector<std::string> label_names) {
  std::lock_guard lock(mu_);
  if (auto* f = find_existing<GaugeFamily>(order_, name, Type::kGauge, label_names)) return *f;
  auto& f = gauges_.emplace_back(name, help, std::move(label_names));
  order_.emplace_back(Type::kGauge, &f);
  return f;
}

HistogramFamily& Registry::histogram(const std::string& name, const std::string& help,
                                     std::vector<std::string> label_names,
                                     std::vector<double> bounds) {
  std::lock_guard lock(mu_);
  if (auto* f = find_existing<HistogramFamily>(order_, name, Type::kHistogram, label_names)) {
    return *f;
  }
  auto& f = histograms_.emplace_back(name, help, std::move(label_names), std::move(bounds));
  order_.emplace_back(Type::kHistogram, &f);
  return f;
}

std::string Registry::render() const {
  std::string out;
  out.reserve(4096);
  std::lock_guard lock(mu_);
  for (const auto& entry : order_) {
    switch (entry.first) {
      case Type::kCounter:
        static_cast<const CounterFamily*>(entry.second)->render(out);
        break;
      case Type::kGauge:
        static_cast<const GaugeFamily*>(entry.second)->render(out);
        break;
      case Type::kHistogram:
        static_cast<const HistogramFamily*>(entry.second)->render(out);
        break;
    }
  }
  return out;
}

std::string format_value(double v) {
  std::string out;
  append_value(out, v);
  return out;
}

std::string escape_label_value(const std::string& v) {
  std::string out;
  out.reserve(v.size());
  append_escaped_label_value(out, v);
  return out;
}

}  // namespace eta::metrics
