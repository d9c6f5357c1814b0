// A small open-addressing hash map from 64-bit keys (block hashes) to 32-bit values: linear
// probing, power-of-two capacity, load <= 1/2, backward-shift deletion (no tombstones). Faster
// and far smaller than std::unordered_map for the prefix index's millions of entries.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace eta::prefix {

class FlatMap64 {
 public:
  static constexpr uint32_t kNone = 0xffffffffu;  // "absent"; never store it as a value

  explicit FlatMap64(size_t initial_capacity = 1024) { rehash(round_up(initial_capacity)); }

  size_t size() const { return size_; }
  size_t capacity() const { return slots_.size(); }

  uint32_t find(uint64_t key) const {
    size_t i = slot_of(key);
    for (;;) {
      const Slot& s = slots_[i];
      if (s.value == kNone) return kNone;
      if (s.key == key) return s.value;
      i = (i + 1) & mask_;
    }
  }

  // Inserts or overwrites.
  void set(uint64_t key, uint32_t value) {
    if ((size_ + 1) * 2 > slots_.size()) rehash(slots_.size() * 2);
    size_t i = slot_of(key);
    for (;;) {
      Slot& s = slots_[i];
      if (s.value == kNone) {
        s.key = key;
        s.value = value;
        ++size_;
        return;
      }
      if (s.key == key) {
        s.value = value;
        return;
      }
      i = (i + 1) & mask_;
    }
  }

  bool erase(uint64_t key) {
    size_t i = slot_of(key);
    for (;;) {
      if (slots_[i].value == kNone) return false;
      if (slots_[i].key == key) break;
      i = (i + 1) & mask_;
    }
    // Backward-shift: pull later members of the probe run into the hole.
    size_t hole = i;
    size_t j = i;
    for (;;) {
      j = (j + 1) & mask_;
      if (slots_[j].value == kNone) break;
      const size_t home = slot_of(slots_[j].key);
      // Move j into the hole unless its home lies cyclically in (hole, j].
      const bool home_between = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
      if (!home_between) {
        slots_[hole] = slots_[j];
        hole = j;
      }
    }
    slots_[hole].value = kNone;
    --size_;
    return true;
  }

  void clear() {
    for (Slot& s : slots_) s.value = kNone;
    size_ = 0;
  }

 private:
  struct Slot {
    uint64_t key = 0;
    uint32_t value = kNone;
  };

  static size_t round_up(size_t n) {
    size_t c = 16;
    while (c < n) c *= 2;
    return c;
  }
  // Block hashes are already hashes, but mix anyway: callers may pass weak keys.
  size_t slot_of(uint64_t key) const {
    key ^= key >> 33;
    key *= 0xff51afd7ed558ccdull;
    key ^= key >> 33;
    return static_cast<size_t>(key) & mask_;
  }
  void rehash(size_t capacity) {
    std::vector<Slot> old;
    old.swap(slots_);
    slots_.assign(capacity, Slot{});
    mask_ = capacity - 1;
    size_ = 0;
    for (const Slot& s : old)
      if (s.value != kNone) set(s.key, s.value);
  }

  std::vector<Slot> slots_;
  size_t mask_ = 0;
  size_t size_ = 0;
};

}  // namespace eta::prefix
