#include "kv_events/orderer.hpp"

namespace eta::kv_events {

Orderer::Verdict Orderer::accept(uint64_t seq, std::string payload, std::vector<Message>& deliver) {
  if (started_ && seq == 0 && next_ > 0) {
    // A new publisher (the engine restarted): everything before is void.
    held_.clear();
    next_ = 1;
    deliver.push_back({seq, std::move(payload)});
    return Verdict::kRestart;
  }
  started_ = true;
  if (seq < next_ || held_.count(seq)) {
    ++duplicates_;
    return Verdict::kDuplicate;
  }
  if (seq == next_ && held_.empty()) {
    ++next_;
    deliver.push_back({seq, std::move(payload)});
    return Verdict::kDeliver;
  }
  if (held_.empty()) ++gaps_;
  if (held_.size() >= max_held_) held_.erase(std::prev(held_.end()));
  held_.emplace(seq, std::move(payload));
  return Verdict::kHeld;
}

void Orderer::replayed(uint64_t seq, std::string payload, std::vector<Message>& deliver) {
  if (seq != next_) return;
  if (!held_.empty() && seq >= held_.begin()->first) return;  // close_gap delivers the held ones
  ++next_;
  deliver.push_back({seq, std::move(payload)});
}

bool Orderer::close_gap(std::vector<Message>& deliver) {
  if (held_.empty()) return true;
  const bool filled = held_.begin()->first == next_;
  // Held messages are consecutive from the first one on, up to the next hole (a later hole
  // stays a gap: those after it remain held).
  uint64_t expect = held_.begin()->first;
  auto it = held_.begin();
  while (it != held_.end() && it->first == expect) {
    deliver.push_back({it->first, std::move(it->second)});
    ++expect;
    it = held_.erase(it);
  }
  next_ = expect;
  if (!held_.empty()) ++gaps_;
  return filled;
}

}  // namespace eta::kv_events
