#include "router/core/router_queue.hpp"

#include <algorithm>

namespace eta::router {

bool RouterQueue::push(uint64_t id, double deadline, int capacity) {
  if (static_cast<int>(entries_.size()) >= capacity) return false;
  entries_.push_back(Entry{id, deadline});
  return true;
}

void RouterQueue::drop(const std::function<bool(uint64_t)>& gone) {
  if (pumping_) return;
  std::erase_if(entries_, [&](const Entry& e) { return gone(e.id); });
}

void RouterQueue::pump(double now, const PumpHandlers& h) {
  if (pumping_) return;
  pumping_ = true;
  while (!entries_.empty()) {
    const Entry head = entries_.front();
    if (h.gone(head.id)) {
      entries_.pop_front();
      continue;
    }
    if (now >= head.deadline) {
      entries_.pop_front();
      h.timed_out(head.id);
      continue;
    }
    const RouteResult result = h.route(head.id);
    if (result == RouteResult::kAtCapacity || result == RouteResult::kSloShed ||
        result == RouteResult::kHeld) {
      break;
    }
    entries_.pop_front();
    if (result != RouteResult::kDispatched) h.refuse(head.id, result);
  }
  pumping_ = false;
}

double RouterQueue::next_wake(double now, double recheck_s) const {
  if (entries_.empty()) return -1;
  return now + std::clamp(entries_.front().deadline - now, 0.0, recheck_s);
}

}  // namespace eta::router
