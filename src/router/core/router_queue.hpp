// The router queue: requests admission held back (at capacity, or every replica predicted over
// the TTFT objective), first in first out, bounded, each with a deadline. A request leaves it
// when an attempt dispatches it, when its deadline passes (429 queue_timeout), when routing
// refuses it for good (503/404), or when its client goes away. Pure: entries are request ids and
// times on the owner's clock; the live router and eta cluster-sim both drive one.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>

#include "router/core/admission.hpp"

namespace eta::router {

class RouterQueue {
 public:
  struct Entry {
    uint64_t id = 0;
    double deadline = 0;
  };

  size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }
  const Entry& front() const { return entries_.front(); }

  // Appends `id` unless `capacity` entries wait already (the caller refuses: kQueueFull).
  bool push(uint64_t id, double deadline, int capacity);
  // Drops the entries for which `gone(id)` is true (clients that went away hold no place). A
  // no-op while pumping: the pump holds the head.
  void drop(const std::function<bool(uint64_t)>& gone);

  struct PumpHandlers {
    std::function<bool(uint64_t)> gone;                 // the request finished meanwhile: drop it
    std::function<RouteResult(uint64_t)> route;         // one attempt for the head
    std::function<void(uint64_t)> timed_out;            // its deadline passed: 429 queue_timeout
    std::function<void(uint64_t, RouteResult)> refuse;  // routing refused it for good
  };
  // Routes the queue's head while it dispatches: stops at the first head still at capacity,
  // over the SLO or held by late binding (the order is kept). Re-entrant calls (from a handler)
  // return at once.
  void pump(double now, const PumpHandlers& handlers);
  bool pumping() const { return pumping_; }

  // When the owner should pump again: at the head's deadline, or within `recheck_s` (routing
  // predictions move with every scrape). Negative when the queue is empty.
  double next_wake(double now, double recheck_s) const;

  void clear() { entries_.clear(); }

 private:
  std::deque<Entry> entries_;
  bool pumping_ = false;
};

}  // namespace eta::router
