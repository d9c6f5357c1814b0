// A small Prometheus registry: counters, gauges and histograms with labels, rendered in the
// text exposition format (version 0.0.4). Updating a child is lock-free (atomics); creating a
// child or rendering takes the family's mutex. Used by `eta vllm-sim` and `eta route`.
//
// Rendering follows the Python client vLLM uses: counters get `_total` on the HELP, TYPE and
// sample lines; histograms render cumulative `_bucket{...,le="..."}` lines (ending with
// le="+Inf"), then `_sum` and `_count`. Families render in registration order, children in
// lexicographic order of their label values.
//
// Registration and child creation are set-up operations: an invalid metric or label name, a
// histogram without strictly increasing bounds, a name registered twice with another type or
// other labels, or a wrong number of label values throws std::invalid_argument (a programming
// error, never caused by request data). Registering the same name, type and labels again returns
// the existing family.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace eta::metrics {

using Labels = std::vector<std::pair<std::string, std::string>>;

class Counter {
 public:
  void inc(double v = 1.0);  // negative and NaN increments are ignored
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

class Gauge {
 public:
  void set(double v) { value_.store(v, std::memory_order_relaxed); }
  void inc(double v = 1.0);
  void dec(double v = 1.0) { inc(-v); }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

class Histogram {
 public:
  explicit Histogram(const std::vector<double>* bounds);  // bounds owned by the family
  void observe(double v);
  uint64_t count() const { return count_.load(std::memory_order_relaxed); }
  double sum() const { return sum_.load(std::memory_order_relaxed); }
  // Non-cumulative count of bucket i (i == bounds.size() is +Inf).
  uint64_t bucket(size_t i) const { return buckets_[i].load(std::memory_order_relaxed); }
  const std::vector<double>& bounds() const { return *bounds_; }

 private:
  const std::vector<double>* bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;
  std::atomic<uint64_t> count_{0};
  std::atomic<double> sum_{0.0};
};

enum class Type { kCounter, kGauge, kHistogram };

// A metric family: one name, one help text, one type, children by label values.
template <typename T>
class Family {
 public:
  Family(std::string name, std::string help, std::vector<std::string> label_names,
         std::vector<double> bounds = {});
  // Returns the child for these label values (in label_names order), creating it on first use.
  // The reference stays valid for the registry's lifetime (until remove() of these values).
  T& with(const std::vector<std::string>& label_values);
  T& with() { return with(std::vector<std::string>{}); }
  // Drops the child; references to it obtained from with() dangle afterwards.
  void remove(const std::vector<std::string>& label_values);

  const std::string& name() const { return name_; }
  const std::vector<std::string>& label_names() const { return label_names_; }
  // Appends the family (HELP, TYPE, one line per sample) to `out`.
  void render(std::string& out) const;

 private:
  std::string name_;
  std::string help_;
  std::vector<std::string> label_names_;
  std::vector<double> bounds_;
  mutable std::mutex mu_;
  std::map<std::vector<std::string>, std::unique_ptr<T>> children_;
};

using CounterFamily = Family<Counter>;
using GaugeFamily = Family<Gauge>;
using HistogramFamily = Family<Histogram>;

class Registry {
 public:
  // Counter names are given without `_total`; it is added when rendering.
  CounterFamily& counter(const std::string& name, const std::string& help,
                         std::vector<std::string> label_names = {});
  GaugeFamily& gauge(const std::string& name, const std::string& help,
                     std::vector<std::string> label_names = {});
  HistogramFamily& histogram(const std::string& name, const std::string& help,
                             std::vector<std::string> label_names, std::vector<double> bounds);
  // The whole registry in Prometheus text format, families in registration order.
  std::string render() const;

 private:
  mutable std::mutex mu_;
  std::deque<CounterFamily> counters_;
  std::deque<GaugeFamily> gauges_;
  std::deque<HistogramFamily> histograms_;
  std::vector<std::pair<Type, const void*>> order_;
};

// Formats a double the way Prometheus clients do (integers without ".0", +Inf, NaN).
std::string format_value(double v);
// Escapes a label value (\\, \", \n).
std::string escape_label_value(const std::string& v);
// [a-zA-Z_:][a-zA-Z0-9_:]*
bool is_valid_metric_name(std::string_view name);
// [a-zA-Z_][a-zA-Z0-9_]*, not starting with "__".
bool is_valid_label_name(std::string_view name);

}  // namespace eta::metrics
