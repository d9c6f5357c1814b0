// msgpack encoding and decoding of vLLM's KV-event batches (the third frame of each message).
// Pure: no sockets, no allocation beyond the outputs. The decoder reads untrusted bytes from
// the network: it validates the whole payload first (check_value in codec.cpp) and then only reads
// values of the types it checked, so any input gives a batch or an error, never a crash
// (fuzz/fuzz_kv_events).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "kv_events/event.hpp"

namespace eta::kv_events {

// Appends the msgpack encoding of `batch` to `out`.
void encode_batch(const EventBatch& batch, const EncodeOptions& options, std::string& out);

struct DecodeStats {
  int unknown_events = 0;  // events of a type this decoder does not know (skipped)
};

// Decodes a batch in any of the encodings (batch as array or map; events as arrays or maps;
// integer or byte hashes). Unknown map keys and unknown event types are skipped (newer vLLM
// versions add fields); wrong types for known fields are errors. Returns false with a one-line
// `error` on malformed input.
bool decode_batch(std::string_view payload, EventBatch& out, std::string& error,
                  DecodeStats* stats = nullptr);

// A hash given as bytes, reduced to 64 bits: the last 8 bytes big-endian (shorter: all of them).
uint64_t hash_from_bytes(std::string_view bytes);
// The 32-byte digest stand-in the simulator publishes for a 64-bit hash when byte hashes are
// asked for: 24 bytes derived from it, then the hash big-endian (so hash_from_bytes inverts it).
std::string digest_bytes(uint64_t hash);

// The 8-byte big-endian sequence frame.
std::string encode_seq(uint64_t seq);
// false if `frame` is not 8 bytes.
bool decode_seq(std::string_view frame, uint64_t& seq);

}  // namespace eta::kv_events
