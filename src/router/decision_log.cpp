#include "router/decision_log.hpp"

#include <cmath>

#include <boost/json.hpp>

namespace eta::router {

DecisionRecord* DecisionLog::next() {
  if (capacity_ == 0) return nullptr;
  ++total_;
  if (ring_.size() < capacity_) {
    ring_.emplace_back();
    return &ring_.back();
  }
  DecisionRecord* r = &ring_[head_];
  head_ = (head_ + 1) % capacity_;
  return r;
}

const DecisionRecord& DecisionLog::recent(size_t i) const {
  // Newest is just before head_ once full, else the back.
  const size_t n = ring_.size();
  const size_t newest = ring_.size() < capacity_ ? n - 1 : (head_ + capacity_ - 1) % capacity_;
  return ring_[(newest + n - i) % n];
}

namespace {

boost::json::value number_or_null(double v) {
  if (!std::isfinite(v)) return nullptr;
  return v;
}

}  // namespace

namespace {

boost::json::array decisions_array(const DecisionLog& log, size_t n) {
  if (n > log.size()) n = log.size();
  boost::json::array decisions;
  decisions.reserve(n);
  for (size_t k = n; k-- > 0;) {
    const DecisionRecord& d = log.recent(k);
    boost::json::array candidates;
    for (const CandidateRecord& c : d.candidates) {
      candidates.push_back(boost::json::object{{"replica", c.replica},
                                               {"predicted_ttft_s", number_or_null(c.ttft_s)},
                                               {"predicted_e2e_s", number_or_null(c.e2e_s)},
                                               {"score", number_or_null(c.score)}});
    }
    decisions.push_back(boost::json::object{
        {"time", d.unix_time_s},
        {"request_id", d.request_id},
        {"attempt", d.attempt},
        {"policy", d.policy},
        {"model", d.model},
        {"prompt_tokens", d.prompt_tokens},
        {"cached_tokens", d.cached_tokens},
        {"prefix_source", d.prefix_source.empty() ? boost::json::value(nullptr)
                                                  : boost::json::value(d.prefix_source)},
        {"prompt_tokens_source", d.prompt_tokens_source},
        {"tokenize_s", d.tokenize_s},
        {"predicted_output_tokens", d.predicted_output_tokens},
        {"chosen", d.chosen.empty() ? boost::json::value(nullptr) : boost::json::value(d.chosen)},
        {"reason", d.reason},
        {"decision_s", d.decision_s},
        {"candidates", std::move(candidates)},
    });
  }
  return decisions;
}

}  // namespace

std::string DecisionLog::array_json(size_t n) const {
  return boost::json::serialize(decisions_array(*this, n));
}

std::string DecisionLog::to_json(size_t n) const {
  boost::json::object out{{"total", total_}, {"decisions", decisions_array(*this, n)}};
  return boost::json::serialize(out);
}

}  // namespace eta::router
