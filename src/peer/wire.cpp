#include "peer/wire.hpp"

#include <cstring>
#include <limits>

namespace eta::peer {

namespace {

constexpr size_t kMaxFrames = 1u << 20;
constexpr size_t kMaxHashes = 1u << 16;

void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

void put_u32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

void put_u64(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

void put_str(std::string& out, std::string_view s) {
  if (s.size() > 255) s = s.substr(0, 255);
  put_varint(out, s.size());
  out.append(s);
}

void put_work(std::string& out, const WorkItem& w, bool snapshot) {
  put_varint(out, w.id);
  put_u32(out, w.replica);
  put_varint(out, w.prompt_tokens);
  put_varint(out, w.cached_tokens);
  put_varint(out, w.predicted_output);
  put_varint(out, w.max_tokens ? uint64_t{*w.max_tokens} + 1 : 0);
  out.push_back(static_cast<char>(w.exact_output ? 1 : 0));
  if (snapshot) {
    put_varint(out, w.generated);
    put_str(out, w.model);
    return;
  }
  put_str(out, w.model);
  put_varint(out, w.block_hashes.size());
  for (uint64_t h : w.block_hashes) put_u64(out, h);
}

class Reader {
 public:
  explicit Reader(std::string_view b) : b_(b) {}
  bool ok() const { return ok_; }
  bool done() const { return pos_ == b_.size(); }
  size_t left() const { return b_.size() - pos_; }

  uint8_t u8() {
    if (pos_ >= b_.size()) return fail(), 0;
    return static_cast<uint8_t>(b_[pos_++]);
  }
  uint64_t fixed(int n) {
    if (left() < static_cast<size_t>(n)) return fail(), 0;
    uint64_t v = 0;
    for (int i = 0; i < n; ++i) v |= uint64_t{static_cast<uint8_t>(b_[pos_ + i])} << (8 * i);
    pos_ += n;
    return v;
  }
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= b_.size()) return fail(), 0;
      const uint8_t c = static_cast<uint8_t>(b_[pos_++]);
      if (shift == 63 && (c & 0x7e)) return fail(), 0;  // over 64 bits
      v |= uint64_t{c & 0x7fu} << shift;
      if (!(c & 0x80)) return v;
    }
    return fail(), 0;
  }
  uint32_t u32v() {  // a varint that must fit 32 bits
    const uint64_t v = varint();
    if (v > std::numeric_limits<uint32_t>::max()) return fail(), 0;
    return static_cast<uint32_t>(v);
  }
  std::string str() {
    const uint64_t n = varint();
    if (!ok_ || n > 255 || n > left()) return fail(), std::string();
    std::string s(b_.substr(pos_, n));
    pos_ += n;
    return s;
  }
  void fail() { ok_ = false; }

 private:
  std::string_view b_;
  size_t pos_ = 0;
  bool ok_ = true;
};

bool get_work(Reader& r, WorkItem& w, bool snapshot) {
  w.id = r.varint();
  w.replica = static_cast<uint32_t>(r.fixed(4));
  w.prompt_tokens = r.u32v();
  w.cached_tokens = r.u32v();
  w.predicted_output = r.u32v();
  const uint64_t max_tokens = r.varint();
  if (max_tokens > uint64_t{std::numeric_limits<uint32_t>::max()} + 1) r.fail();
  w.max_tokens.reset();
  if (max_tokens > 0) w.max_tokens = static_cast<uint32_t>(max_tokens - 1);
  const uint8_t flags = r.u8();
  if (flags > 1) r.fail();
  w.exact_output = flags == 1;
  if (snapshot) {
    w.generated = r.u32v();
    w.model = r.str();
    return r.ok();
  }
  w.model = r.str();
  const uint64_t n = r.varint();
  if (!r.ok() || n > kMaxHashes || n * 8 > r.left()) return false;
  w.block_hashes.resize(n);
  for (uint64_t& h : w.block_hashes) h = r.fixed(8);
  return r.ok() && w.cached_tokens <= w.prompt_tokens && w.predicted_output >= 1;
}

}  // namespace

uint32_t replica_key(std::string_view url) {
  uint32_t h = 2166136261u;
  for (char c : url) {
    h ^= static_cast<uint8_t>(c);
    h *= 16777619u;
  }
  return h;
}

void encode_frame(const Frame& f, std::string& out) {
  out.push_back(static_cast<char>(f.kind));
  switch (f.kind) {
    case Kind::kDispatch:
      put_work(out, f.work, false);
      return;
    case Kind::kFirstToken:
    case Kind::kFinish:
      put_varint(out, f.id);
      put_varint(out, f.tokens);
      return;
    case Kind::kAbort:
      put_varint(out, f.id);
      return;
    case Kind::kHeartbeat:
      put_varint(out, f.in_flight);
      put_varint(out, f.interval_ms);
      return;
    case Kind::kSnapshot:
      put_varint(out, f.entries.size());
      for (const WorkItem& w : f.entries) put_work(out, w, true);
      return;
    case Kind::kResync:
      put_u64(out, f.target);
      return;
    case Kind::kRateCharge:
      put_u64(out, f.key_hash);
      put_varint(out, f.requests);
      put_varint(out, f.charge_tokens);
      return;
    case Kind::kOutageCharges:
      put_varint(out, f.outage);
      put_varint(out, f.charges.size());
      for (const KeyCharge& c : f.charges) {
        put_u64(out, c.key_hash);
        put_varint(out, c.requests);
        put_varint(out, c.tokens);
      }
      return;
  }
}

std::string encode_packet(uint64_t origin, uint64_t first_seq, uint32_t count,
                          std::string_view frames) {
  std::string out;
  out.reserve(24 + frames.size());
  out.append("EP");
  out.push_back(static_cast<char>(kWireVersion));
  put_u64(out, origin);
  put_varint(out, first_seq);
  put_varint(out, count);
  out.append(frames);
  return out;
}

bool decode_packet(std::string_view bytes, Packet& out) {
  if (bytes.size() < 3 || bytes[0] != 'E' || bytes[1] != 'P' ||
      static_cast<uint8_t>(bytes[2]) != kWireVersion)
    return false;
  Reader r(bytes.substr(3));
  out.origin = r.fixed(8);
  out.first_seq = r.varint();
  const uint64_t count = r.varint();
  if (!r.ok() || out.origin == 0 || out.first_seq == 0 || count == 0 || count > kMaxFrames ||
      count > r.left())
    return false;
  out.frames.clear();
  out.frames.resize(count);
  for (uint64_t i = 0; i < count; ++i) {
    Frame& f = out.frames[i];
    f.seq = out.first_seq + i;
    const uint8_t kind = r.u8();
    if (!r.ok()) return false;
    f.kind = static_cast<Kind>(kind);
    switch (f.kind) {
      case Kind::kDispatch:
        if (!get_work(r, f.work, false)) return false;
        break;
      case Kind::kFirstToken:
      case Kind::kFinish:
        f.id = r.varint();
        f.tokens = r.u32v();
        break;
      case Kind::kAbort:
        f.id = r.varint();
        break;
      case Kind::kHeartbeat:
        f.in_flight = r.u32v();
        f.interval_ms = r.u32v();
        break;
      case Kind::kSnapshot: {
        const uint64_t n = r.varint();
        if (!r.ok() || n > r.left()) return false;
        f.entries.resize(n);
        for (WorkItem& w : f.entries)
          if (!get_work(r, w, true)) return false;
        break;
      }
      case Kind::kResync:
        f.target = r.fixed(8);
        break;
      case Kind::kRateCharge:
        f.key_hash = r.fixed(8);
        f.requests = r.u32v();
        f.charge_tokens = r.varint();
        break;
      case Kind::kOutageCharges: {
        f.outage = r.varint();
        const uint64_t n = r.varint();
        if (!r.ok() || f.outage == 0 || n > r.left() / 10) return false;  // 10+ bytes each
        f.charges.resize(n);
        for (KeyCharge& c : f.charges) {
          c.key_hash = r.fixed(8);
          c.requests = r.varint();
          c.tokens = r.varint();
        }
        break;
      }
      default:
        return false;
    }
    if (!r.ok()) return false;
  }
  return r.done();
}

}  // namespace eta::peer
