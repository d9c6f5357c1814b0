// The peer-sync wire format (issue 13): what one `eta route` tells the other routers of its
// cluster so that each prices the others' work as its own. Pure: bytes in, frames out; no sockets.
//
// One packet (one NATS message on subject `eta.peer.<cluster>`) carries a batch of frames from one
// router, numbered consecutively from `first_seq` (per-router sequence numbers start at 1):
//
//   packet  = "EP" u8:version(1) u64le:origin varint:first_seq varint:count frame{count}
//   frame   = u8:kind body
//   kDispatch    varint:id u32le:replica varint:prompt varint:cached varint:predicted_output
//                varint:max_tokens+1 (0: none) u8:flags(1: exact output) str:model
//                varint:n u64le:block_hash{n}
//   kFirstToken  varint:id varint:tokens
//   kFinish      varint:id varint:output_tokens
//   kAbort       varint:id
//   kHeartbeat   varint:in_flight (the origin's published dispatches not yet finished, at this
//                point of its sequence) varint:interval_ms
//   kSnapshot    varint:n entry{n}; entry = varint:id u32le:replica varint:prompt varint:cached
//                varint:predicted_output varint:max_tokens+1 u8:flags varint:generated str:model
//                (the origin's whole in-flight set: it replaces what a receiver holds of it)
//   kResync      u64le:target (0: every router) — "send me your snapshot"
//   kRateCharge  u64le:key_hash varint:requests varint:tokens (an admission charged a rate-limited
//                API key; the hash is a keyed hash, never the key)
//   kOutageCharges varint:outage varint:n {u64le:key_hash varint:requests varint:tokens}{n}
//                (what the origin admitted while its channel was down, per key, younger than a
//                minute; `outage` numbers the origin's outages from 1: a receiver applies each
//                (origin, outage) once, and the origin sends it again with its snapshots for a
//                minute, so routers that reconnect later get it too)
//   str = varint:length bytes (at most 255); varint = LEB128 (at most 10 bytes)
//
// `replica` is replica_key(canonical URL): routers index their replicas differently, and a
// receiver maps the key to its own index (entries on replicas it does not know are counted, not
// priced). A packet that does not decode completely is rejected whole (counted as garbage).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace eta::peer {

inline constexpr uint8_t kWireVersion = 1;

enum class Kind : uint8_t {
  kDispatch = 1,
  kFirstToken = 2,
  kFinish = 3,
  kAbort = 4,
  kHeartbeat = 5,
  kSnapshot = 6,
  kResync = 7,
  kRateCharge = 8,
  kOutageCharges = 9,
};

struct KeyCharge {  // kOutageCharges: one key's aggregate
  uint64_t key_hash = 0;
  uint64_t requests = 0;
  uint64_t tokens = 0;
  bool operator==(const KeyCharge&) const = default;
};

struct WorkItem {   // a dispatch, or one entry of a snapshot
  uint64_t id = 0;  // the origin's request id
  uint32_t replica = 0;
  uint32_t prompt_tokens = 0;
  uint32_t cached_tokens = 0;
  uint32_t predicted_output = 1;
  std::optional<uint32_t> max_tokens;
  bool exact_output = false;
  uint32_t generated = 0;  // snapshot only: output tokens so far
  std::string model;
  std::vector<uint64_t> block_hashes;  // dispatch only
};

struct Frame {
  Kind kind = Kind::kHeartbeat;
  uint64_t seq = 0;                // filled by decode_packet
  WorkItem work;                   // kDispatch
  uint64_t id = 0;                 // kFirstToken, kFinish, kAbort
  uint32_t tokens = 0;             // kFirstToken: tokens so far; kFinish: output tokens
  uint32_t in_flight = 0;          // kHeartbeat
  uint32_t interval_ms = 0;        // kHeartbeat
  std::vector<WorkItem> entries;   // kSnapshot
  uint64_t target = 0;             // kResync
  uint64_t key_hash = 0;           // kRateCharge
  uint32_t requests = 0;           // kRateCharge
  uint64_t charge_tokens = 0;      // kRateCharge
  uint64_t outage = 0;             // kOutageCharges
  std::vector<KeyCharge> charges;  // kOutageCharges
};

struct Packet {
  uint64_t origin = 0;
  uint64_t first_seq = 0;
  std::vector<Frame> frames;
};

// FNV-1a of the canonical replica URL: the same replica has the same key on every router.
uint32_t replica_key(std::string_view url);

// Appends one frame's bytes (kind + body) to `out`.
void encode_frame(const Frame& f, std::string& out);
// The packet: header + already encoded frames (`count` of them, numbered from first_seq).
std::string encode_packet(uint64_t origin, uint64_t first_seq, uint32_t count,
                          std::string_view frames);
// False (and `out` unspecified) unless `bytes` is one whole well-formed packet.
bool decode_packet(std::string_view bytes, Packet& out);

}  // namespace eta::peer
