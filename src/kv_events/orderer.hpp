// Orders one publisher's messages by sequence number (pure; the subscriber thread drives it).
// Delivery is at least once and a SUB socket drops messages at its high-water mark, so a
// consumer sees duplicates, and gaps it must fill from the replay socket or give up on:
//
//   accept(seq, payload)   a live message: delivered at once when it is the next one; a lower
//                          one is a duplicate (dropped); a higher one opens a gap and is held.
//                          seq 0 after higher ones is a restarted publisher (kRestart: the
//                          consumer clears what it knew, then this message is delivered).
//   replayed(seq, payload) a message from the replay socket: delivered if it is the next one.
//   close_gap()            replay is over: the held messages follow; returns false if the gap
//                          was not filled (the consumer must drop what it knew first).
//
// The first message ever may have any sequence number: one above 0 is a gap from 0 (a
// subscriber that joined late; replay may still hold the beginning).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace eta::kv_events {

class Orderer {
 public:
  enum class Verdict { kDeliver, kDuplicate, kHeld, kRestart };
  struct Message {
    uint64_t seq = 0;
    std::string payload;
  };

  explicit Orderer(size_t max_held = 100000) : max_held_(max_held) {}

  Verdict accept(uint64_t seq, std::string payload, std::vector<Message>& deliver);
  // Appends to `deliver` if `seq` is the next one.
  void replayed(uint64_t seq, std::string payload, std::vector<Message>& deliver);
  // Ends the gap: appends the held messages (in order, from the first held) to `deliver`.
  // Returns true if nothing was missing before them.
  bool close_gap(std::vector<Message>& deliver);

  bool in_gap() const { return !held_.empty(); }
  uint64_t next() const { return next_; }  // the sequence number expected next
  uint64_t first_held() const { return held_.empty() ? next_ : held_.begin()->first; }
  uint64_t duplicates() const { return duplicates_; }
  uint64_t gaps() const { return gaps_; }

 private:
  bool started_ = false;
  uint64_t next_ = 0;
  std::map<uint64_t, std::string> held_;
  size_t max_held_;
  uint64_t duplicates_ = 0;
  uint64_t gaps_ = 0;
};

}  // namespace eta::kv_events
