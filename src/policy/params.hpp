// Reads a policy's parameters from PolicyParams, remembering errors and which keys were used so
// that a typo is reported instead of ignored. Internal to src/policy/.
#pragma once

#include <charconv>
#include <initializer_list>
#include <set>
#include <string>
#include <string_view>

#include "policy/registry.hpp"

namespace eta::policy {

class ParamReader {
 public:
  ParamReader(std::string_view policy, const PolicyParams& params)
      : policy_(policy), params_(params) {}

  double number(std::string_view key, double fallback, double min, double max) {
    const std::string* text = find(key);
    if (!text) return fallback;
    double v = 0;
    const char* end = text->data() + text->size();
    auto [ptr, ec] = std::from_chars(text->data(), end, v);
    if (ec != std::errc() || ptr != end || !(v >= min && v <= max)) {
      fail(std::string(key) + " must be a number in [" + fmt_num(min) + ", " + fmt_num(max) +
           "], got '" + *text + "'");
      return fallback;
    }
    return v;
  }
  int integer(std::string_view key, int fallback, int min, int max) {
    const double v = number(key, fallback, min, max);
    if (v != static_cast<int>(v)) fail(std::string(key) + " must be an integer");
    return static_cast<int>(v);
  }
  bool boolean(std::string_view key, bool fallback) {
    const std::string* text = find(key);
    if (!text) return fallback;
    if (*text == "true" || *text == "1" || *text == "yes" || *text == "on") return true;
    if (*text == "false" || *text == "0" || *text == "no" || *text == "off") return false;
    fail(std::string(key) + " must be true or false, got '" + *text + "'");
    return fallback;
  }
  std::string text(std::string_view key, std::string_view fallback) {
    const std::string* t = find(key);
    return t ? *t : std::string(fallback);
  }
  std::string choice(std::string_view key, std::string_view fallback,
                     std::initializer_list<std::string_view> allowed) {
    const std::string* text = find(key);
    if (!text) return std::string(fallback);
    for (std::string_view a : allowed)
      if (*text == a) return *text;
    std::string list;
    for (std::string_view a : allowed) list += (list.empty() ? "" : "|") + std::string(a);
    fail(std::string(key) + " must be one of " + list + ", got '" + *text + "'");
    return std::string(fallback);
  }

  // Call after reading every parameter: false (with the error) if any was bad or unknown.
  bool finish(std::string& error) {
    for (const auto& [k, v] : params_) {
      if (!used_.count(k)) fail("unknown parameter '" + k + "'");
    }
    if (!error_.empty()) error = "policy " + std::string(policy_) + ": " + error_;
    return error_.empty();
  }
  void fail(std::string message) {
    if (error_.empty()) error_ = std::move(message);
  }

 private:
  const std::string* find(std::string_view key) {
    used_.insert(std::string(key));
    auto it = params_.find(key);
    return it == params_.end() ? nullptr : &it->second;
  }
  static std::string fmt_num(double v) {
    std::string s = std::to_string(v);
    while (!s.empty() && s.back() == '0') s.pop_back();
    if (!s.empty() && s.back() == '.') s.pop_back();
    return s;
  }

  std::string_view policy_;
  const PolicyParams& params_;
  std::set<std::string, std::less<>> used_;
  std::string error_;
};

}  // namespace eta::policy
