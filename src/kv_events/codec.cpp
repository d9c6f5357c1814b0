#include "kv_events/codec.hpp"

#define MP_SOURCE 1  // msgpuck's out-of-line definitions live in this translation unit
#include <msgpuck.h>

#include <cstring>

namespace eta::kv_events {

const char* to_string(EventType t) {
  switch (t) {
    case EventType::kBlockStored:
      return "BlockStored";
    case EventType::kBlockRemoved:
      return "BlockRemoved";
    case EventType::kAllBlocksCleared:
      return "AllBlocksCleared";
  }
  return "?";
}

uint64_t hash_from_bytes(std::string_view bytes) {
  const size_t n = bytes.size() < 8 ? bytes.size() : 8;
  uint64_t h = 0;
  for (size_t i = bytes.size() - n; i < bytes.size(); ++i)
    h = (h << 8) | static_cast<unsigned char>(bytes[i]);
  return h;
}

std::string digest_bytes(uint64_t hash) {
  std::string d(32, '\0');
  uint64_t x = hash;
  for (int i = 0; i < 24; ++i) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    d[static_cast<size_t>(i)] = static_cast<char>(x >> 56);
  }
  for (int i = 0; i < 8; ++i)
    d[static_cast<size_t>(24 + i)] = static_cast<char>(hash >> (56 - 8 * i));
  return d;
}

std::string encode_seq(uint64_t seq) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[static_cast<size_t>(i)] = static_cast<char>(seq >> (56 - 8 * i));
  return s;
}

bool decode_seq(std::string_view frame, uint64_t& seq) {
  if (frame.size() != 8) return false;
  seq = hash_from_bytes(frame);
  return true;
}

// ---------------------------------------------------------------------------------------------
// Encoding

namespace {

class Writer {
 public:
  explicit Writer(std::string& out) : out_(out) {}
  void array(uint32_t n) { put(mp_encode_array(room(5), n)); }
  void map(uint32_t n) { put(mp_encode_map(room(5), n)); }
  void uint(uint64_t v) { put(mp_encode_uint(room(9), v)); }
  void sint(int64_t v) {
    if (v >= 0)
      uint(static_cast<uint64_t>(v));
    else
      put(mp_encode_int(room(9), v));
  }
  void dbl(double v) { put(mp_encode_double(room(9), v)); }
  void nil() { put(mp_encode_nil(room(1))); }
  void str(std::string_view s) {
    put(mp_encode_str(room(5 + s.size()), s.data(), static_cast<uint32_t>(s.size())));
  }
  void bin(std::string_view s) {
    put(mp_encode_bin(room(5 + s.size()), s.data(), static_cast<uint32_t>(s.size())));
  }

 private:
  char* room(size_t n) {
    start_ = out_.size();
    out_.resize(start_ + n);
    return out_.data() + start_;
  }
  void put(char* end) { out_.resize(static_cast<size_t>(end - out_.data())); }
  std::string& out_;
  size_t start_ = 0;
};

void write_hash(Writer& w, uint64_t h, const EncodeOptions& o) {
  if (o.byte_hashes)
    w.bin(digest_bytes(h));
  else
    w.uint(h);
}

void write_hashes(Writer& w, const std::vector<uint64_t>& hs, const EncodeOptions& o) {
  w.array(static_cast<uint32_t>(hs.size()));
  for (uint64_t h : hs) write_hash(w, h, o);
}

void write_medium(Writer& w, const std::string& m) {
  if (m.empty())
    w.nil();
  else
    w.str(m);
}

void write_event(Writer& w, const Event& e, const EncodeOptions& o) {
  const bool maps = o.events_as_maps;
  switch (e.type) {
    case EventType::kBlockStored:
      // The 2026 fields as a real 0.26 stream shows them (vllm-interface.md §10); the older
      // positional form ends at medium (what those releases had).
      if (maps) {
        w.map(11);
        w.str("type");
        w.str("BlockStored");
        w.str("block_hashes");
      } else {
        w.array(7);
        w.str("BlockStored");
      }
      write_hashes(w, e.block_hashes, o);
      if (maps) w.str("parent_block_hash");
      if (e.parent_block_hash)
        write_hash(w, *e.parent_block_hash, o);
      else
        w.nil();
      if (maps) w.str("token_ids");
      w.array(static_cast<uint32_t>(e.token_ids.size()));
      for (uint32_t t : e.token_ids) w.uint(t);
      if (maps) w.str("block_size");
      w.sint(e.block_size);
      if (maps) w.str("lora_id");
      w.nil();
      if (maps) w.str("medium");
      write_medium(w, e.medium);
      if (!maps) return;
      w.str("lora_name");
      w.nil();
      w.str("extra_keys");
      w.array(static_cast<uint32_t>(e.block_hashes.size()));
      for (size_t i = 0; i < e.block_hashes.size(); ++i) w.nil();
      w.str("group_idx");
      w.sint(e.group_idx);
      w.str("kv_cache_spec_kind");
      w.str("full_attention");
      return;
    case EventType::kBlockRemoved:
      if (maps) {
        w.map(4);
        w.str("type");
        w.str("BlockRemoved");
        w.str("block_hashes");
      } else {
        w.array(3);
        w.str("BlockRemoved");
      }
      write_hashes(w, e.block_hashes, o);
      if (maps) w.str("medium");
      write_medium(w, e.medium);
      if (maps) {
        w.str("group_idx");
        w.sint(e.group_idx);
      }
      return;
    case EventType::kAllBlocksCleared:
      if (maps) {
        w.map(1);
        w.str("type");
      } else {
        w.array(1);
      }
      w.str("AllBlocksCleared");
      return;
  }
}

}  // namespace

void encode_batch(const EventBatch& batch, const EncodeOptions& o, std::string& out) {
  Writer w(out);
  if (o.batch_as_map) {
    w.map(3);
    w.str("ts");
  } else {
    w.array(3);
  }
  w.dbl(batch.ts);
  if (o.batch_as_map) w.str("events");
  w.array(static_cast<uint32_t>(batch.events.size()));
  for (const Event& e : batch.events) write_event(w, e, o);
  if (o.batch_as_map) w.str("data_parallel_rank");
  if (batch.data_parallel_rank)
    w.sint(*batch.data_parallel_rank);
  else
    w.nil();
}

// ---------------------------------------------------------------------------------------------
// Decoding (the payload has passed check_value: every read below is of a checked type)

namespace {

// Checks that [*p, end) starts with one whole msgpack value and moves *p past it. msgpuck's
// mp_check counts pending elements in an int that a declared 32-bit array or map count
// overflows (undefined behaviour; fuzz_kv_events under UBSan); here the count is 64-bit and
// never more than the bytes left, since every element takes one byte at least.
bool check_value(const char** p, const char* end) {
  const auto load = [&](int bytes, uint64_t& v) {
    if (end - *p < bytes) return false;
    v = 0;
    for (int i = 0; i < bytes; ++i) v = (v << 8) | static_cast<unsigned char>(*(*p)++);
    return true;
  };
  const auto skip = [&](uint64_t n) {
    if (static_cast<uint64_t>(end - *p) < n) return false;
    *p += n;
    return true;
  };
  uint64_t pending = 1;
  while (pending > 0) {
    if (*p >= end || pending > static_cast<uint64_t>(end - *p)) return false;
    --pending;
    const auto c = static_cast<unsigned char>(*(*p)++);
    uint64_t n = 0;
    if (c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3) continue;
    if (c >= 0x80 && c <= 0x8f) {
      pending += 2 * static_cast<uint64_t>(c & 0x0f);
    } else if (c >= 0x90 && c <= 0x9f) {
      pending += c & 0x0f;
    } else if (c >= 0xa0 && c <= 0xbf) {
      if (!skip(c & 0x1f)) return false;
    } else {
      switch (c) {
        case 0xc4:
        case 0xd9:
          if (!load(1, n) || !skip(n)) return false;
          break;
        case 0xc5:
        case 0xda:
          if (!load(2, n) || !skip(n)) return false;
          break;
        case 0xc6:
        case 0xdb:
          if (!load(4, n) || !skip(n)) return false;
          break;
        case 0xc7:
          if (!load(1, n) || !skip(n + 1)) return false;
          break;
        case 0xc8:
          if (!load(2, n) || !skip(n + 1)) return false;
          break;
        case 0xc9:
          if (!load(4, n) || !skip(n + 1)) return false;
          break;
        case 0xca:
        case 0xce:
        case 0xd2:
          if (!skip(4)) return false;
          break;
        case 0xcb:
        case 0xcf:
        case 0xd3:
          if (!skip(8)) return false;
          break;
        case 0xcc:
        case 0xd0:
          if (!skip(1)) return false;
          break;
        case 0xcd:
        case 0xd1:
          if (!skip(2)) return false;
          break;
        case 0xd4:
          if (!skip(2)) return false;
          break;
        case 0xd5:
          if (!skip(3)) return false;
          break;
        case 0xd6:
          if (!skip(5)) return false;
          break;
        case 0xd7:
          if (!skip(9)) return false;
          break;
        case 0xd8:
          if (!skip(17)) return false;
          break;
        case 0xdc:
          if (!load(2, n)) return false;
          pending += n;
          break;
        case 0xdd:
          if (!load(4, n)) return false;
          pending += n;
          break;
        case 0xde:
          if (!load(2, n)) return false;
          pending += 2 * n;
          break;
        case 0xdf:
          if (!load(4, n)) return false;
          pending += 2 * n;
          break;
        default:
          return false;  // 0xc1: never used
      }
    }
  }
  return true;
}

struct Reader {
  const char* p;
  const char* end;  // of the checked payload: a malformed batch may make a reader count past it
  std::string error;

  // MP_EXT (never accepted) at the end, so a read past the payload fails instead of overflowing
  // (fuzz_kv_events found one: a map whose field decoding stopped early).
  mp_type type() const { return p < end ? mp_typeof(*p) : MP_EXT; }
  // An array or map count bounded by the bytes left (each element takes one at least): a count
  // mp_check let overflow once made a 63-byte payload claim 2^31 entries (fuzz_kv_events: a
  // timeout); check_value refuses those now, and a clamped count still marks the batch
  // malformed.
  bool malformed = false;
  uint32_t count(uint32_t n, size_t per_element) {
    const size_t left = static_cast<size_t>(end - p);
    if (static_cast<uint64_t>(n) * per_element <= left) return n;
    malformed = true;
    return static_cast<uint32_t>(left / per_element);
  }
  bool fail(std::string message) {
    if (error.empty()) error = std::move(message);
    return false;
  }
  void skip() {
    if (p >= end || !check_value(&p, end)) p = end;
  }
  bool str(std::string_view& out) {
    if (type() != MP_STR) return false;
    uint32_t len = 0;
    const char* s = mp_decode_str(&p, &len);
    out = std::string_view(s, len);
    return true;
  }
  bool number(double& out) {
    switch (type()) {
      case MP_DOUBLE:
        out = mp_decode_double(&p);
        return true;
      case MP_FLOAT:
        out = mp_decode_float(&p);
        return true;
      case MP_UINT:
        out = static_cast<double>(mp_decode_uint(&p));
        return true;
      case MP_INT:
        out = static_cast<double>(mp_decode_int(&p));
        return true;
      default:
        return false;
    }
  }
  bool small_int(int& out) {  // fits an int
    if (type() == MP_UINT) {
      const uint64_t v = mp_decode_uint(&p);
      if (v > 0x7fffffffu) return false;
      out = static_cast<int>(v);
      return true;
    }
    if (type() == MP_INT) {
      const int64_t v = mp_decode_int(&p);
      if (v < -0x7fffffff) return false;
      out = static_cast<int>(v);
      return true;
    }
    return false;
  }
  bool hash(uint64_t& out) {
    switch (type()) {
      case MP_UINT:
        out = mp_decode_uint(&p);
        return true;
      case MP_INT:  // a signed 64-bit view of the same bits
        out = static_cast<uint64_t>(mp_decode_int(&p));
        return true;
      case MP_BIN:
      case MP_STR: {
        uint32_t len = 0;
        const char* b = type() == MP_BIN ? mp_decode_bin(&p, &len) : mp_decode_str(&p, &len);
        out = hash_from_bytes(std::string_view(b, len));
        return true;
      }
      default:
        return false;
    }
  }
  bool hashes(std::vector<uint64_t>& out) {
    if (type() != MP_ARRAY) return false;
    const uint32_t n = count(mp_decode_array(&p), 1);
    out.clear();
    out.reserve(n);
    for (uint32_t i = 0; i < n; ++i) {
      uint64_t h = 0;
      if (!hash(h)) return false;
      out.push_back(h);
    }
    return true;
  }
  bool tokens(std::vector<uint32_t>& out) {
    if (type() != MP_ARRAY) return false;
    const uint32_t n = count(mp_decode_array(&p), 1);
    out.clear();
    out.reserve(n);
    for (uint32_t i = 0; i < n; ++i) {
      if (type() != MP_UINT) return false;
      const uint64_t t = mp_decode_uint(&p);
      if (t > 0xffffffffu) return false;
      out.push_back(static_cast<uint32_t>(t));
    }
    return true;
  }
  bool medium(std::string& out) {
    if (type() == MP_NIL) {
      mp_decode_nil(&p);
      out.clear();
      return true;
    }
    std::string_view s;
    if (!str(s)) return false;
    out.assign(s);
    return true;
  }
  bool optional_hash(std::optional<uint64_t>& out) {
    if (type() == MP_NIL) {
      mp_decode_nil(&p);
      out.reset();
      return true;
    }
    uint64_t h = 0;
    if (!hash(h)) return false;
    out = h;
    return true;
  }
  bool group(int& out) {
    if (type() == MP_NIL) {
      mp_decode_nil(&p);
      out = 0;
      return true;
    }
    return small_int(out);
  }

  // One field of an event, by name (maps) or by position (arrays). Unknown: skipped.
  bool field(Event& e, std::string_view name) {
    bool ok = true;
    if (name == "block_hashes" && e.type != EventType::kAllBlocksCleared) {
      ok = hashes(e.block_hashes);
    } else if (name == "medium" && e.type != EventType::kAllBlocksCleared) {
      ok = medium(e.medium);
    } else if (name == "group_idx" && e.type != EventType::kAllBlocksCleared) {
      ok = group(e.group_idx);
    } else if (e.type == EventType::kBlockStored && name == "parent_block_hash") {
      ok = optional_hash(e.parent_block_hash);
    } else if (e.type == EventType::kBlockStored && name == "token_ids") {
      ok = tokens(e.token_ids);
    } else if (e.type == EventType::kBlockStored && name == "block_size") {
      ok = small_int(e.block_size) && e.block_size >= 0;
    } else {
      skip();
    }
    if (!ok)
      return fail(std::string(to_string(e.type)) + "." + std::string(name) + " has the wrong type");
    return true;
  }

  static bool event_type(std::string_view tag, EventType& t) {
    if (tag == "BlockStored")
      t = EventType::kBlockStored;
    else if (tag == "BlockRemoved")
      t = EventType::kBlockRemoved;
    else if (tag == "AllBlocksCleared")
      t = EventType::kAllBlocksCleared;
    else
      return false;
    return true;
  }

  // Returns false on error; `known` false for an unknown (skipped) event type.
  bool event(Event& e, bool& known) {
    static constexpr std::string_view kStored[] = {"block_hashes",
                                                   "parent_block_hash",
                                                   "token_ids",
                                                   "block_size",
                                                   "lora_id",
                                                   "medium",
                                                   "lora_name",
                                                   "extra_keys",
                                                   "group_idx",
                                                   "kv_cache_spec_kind",
                                                   "kv_cache_spec_sliding_window"};
    static constexpr std::string_view kRemoved[] = {"block_hashes", "medium", "group_idx"};
    e = Event{};
    known = true;
    if (type() == MP_MAP) {
      // The tag may be anywhere among the keys: find it first.
      const char* start = p;
      const uint32_t n = count(mp_decode_map(&p), 2);
      std::string_view tag;
      bool tagged = false;
      for (uint32_t i = 0; i < n; ++i) {
        std::string_view key;
        const bool is_str = str(key);
        if (!is_str) skip();
        if (is_str && key == "type") {
          if (!str(tag)) return fail("event type is not a string");
          tagged = true;
        } else {
          skip();
        }
      }
      if (!tagged) return fail("event map without \"type\"");
      if (!event_type(tag, e.type)) {
        known = false;
        return true;  // p is past the map
      }
      const char* map_end = p;
      p = start;
      mp_decode_map(&p);
      for (uint32_t i = 0; i < n; ++i) {
        std::string_view key;
        if (!str(key)) {
          skip();
          skip();
          continue;
        }
        if (key == "type") {
          skip();
          continue;
        }
        if (!field(e, key)) return false;
      }
      p = map_end;
      return true;
    }
    if (type() != MP_ARRAY) return fail("event is neither an array nor a map");
    const uint32_t n = count(mp_decode_array(&p), 1);
    if (n == 0) return fail("empty event array");
    std::string_view tag;
    if (!str(tag)) return fail("event tag is not a string");
    if (!event_type(tag, e.type)) {
      known = false;
      for (uint32_t i = 1; i < n; ++i) skip();
      return true;
    }
    const std::string_view* names = e.type == EventType::kBlockStored ? kStored : kRemoved;
    const uint32_t count = e.type == EventType::kBlockStored    ? std::size(kStored)
                           : e.type == EventType::kBlockRemoved ? std::size(kRemoved)
                                                                : 0;
    for (uint32_t i = 1; i < n; ++i) {
      if (i - 1 < count) {
        if (!field(e, names[i - 1])) return false;
      } else {
        skip();
      }
    }
    return true;
  }

  bool events(EventBatch& b, DecodeStats* stats) {
    if (type() != MP_ARRAY) return fail("events is not an array");
    const uint32_t n = count(mp_decode_array(&p), 1);
    b.events.clear();
    b.events.reserve(n < 4096 ? n : 4096);
    for (uint32_t i = 0; i < n; ++i) {
      Event e;
      bool known = true;
      if (!event(e, known)) return false;
      if (known)
        b.events.push_back(std::move(e));
      else if (stats)
        ++stats->unknown_events;
    }
    return true;
  }

  bool rank(EventBatch& b) {
    if (type() == MP_NIL) {
      mp_decode_nil(&p);
      b.data_parallel_rank.reset();
      return true;
    }
    int r = 0;
    if (!small_int(r)) return fail("data_parallel_rank is not an integer");
    b.data_parallel_rank = r;
    return true;
  }
};

}  // namespace

bool decode_batch(std::string_view payload, EventBatch& out, std::string& error,
                  DecodeStats* stats) {
  out = EventBatch{};
  const char* begin = payload.data();
  const char* end = begin + payload.size();
  const char* check = begin;
  if (payload.empty() || !check_value(&check, end)) {
    error = "payload is not one msgpack value";
    return false;
  }
  if (check != end) {
    error = "bytes after the msgpack value";
    return false;
  }
  Reader r{begin, end, {}};
  bool ok = true;
  bool have_events = false;
  if (r.type() == MP_ARRAY) {
    const uint32_t n = r.count(mp_decode_array(&r.p), 1);
    if (n < 2) {
      ok = r.fail("batch array shorter than [ts, events]");
    } else {
      ok = r.number(out.ts) || r.fail("batch ts is not a number");
      ok = ok && r.events(out, stats);
      have_events = ok;
      if (ok && n >= 3) ok = r.rank(out);
    }
  } else if (r.type() == MP_MAP) {
    const uint32_t n = r.count(mp_decode_map(&r.p), 2);
    for (uint32_t i = 0; ok && i < n; ++i) {
      std::string_view key;
      if (!r.str(key)) {
        r.skip();
        r.skip();
        continue;
      }
      if (key == "ts") {
        ok = r.number(out.ts) || r.fail("batch ts is not a number");
      } else if (key == "events") {
        ok = r.events(out, stats);
        have_events = ok;
      } else if (key == "data_parallel_rank") {
        ok = r.rank(out);
      } else {
        r.skip();
      }
    }
    if (ok && !have_events) ok = r.fail("batch map without events");
  } else {
    ok = r.fail("batch is neither an array nor a map");
  }
  if (ok && r.malformed) ok = r.fail("an array or map count larger than the payload");
  if (!ok) {
    error = r.error.empty() ? "malformed batch" : r.error;
    out = EventBatch{};
  }
  return ok;
}

}  // namespace eta::kv_events
