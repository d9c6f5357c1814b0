// KV-cache events (issue 15): the msgpack codec against payloads packed by Python's msgpack from
// vLLM's documented shapes (vllm-interface.md §10), the sequence orderer, the event-driven
// prefix index, and the recorder that turns a block pool's reports into events.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cluster/state.hpp"
#include "engine/block_pool.hpp"
#include "engine/engine.hpp"
#include "engine/tokenizer.hpp"
#include "kv_events/codec.hpp"
#include "kv_events/orderer.hpp"
#include "kv_events/recorder.hpp"
#include "prefix/kv_event_index.hpp"

namespace eta::kv_events {
namespace {

std::string unhex(const std::string& h) {
  std::string out;
  for (size_t i = 0; i + 1 < h.size(); i += 2)
    out.push_back(static_cast<char>(std::stoi(h.substr(i, 2), nullptr, 16)));
  return out;
}

// msgpack.packb(..., use_bin_type=True) of (see the generator in the commit that added them):
// the event seen on a real vLLM 0.26 stream (2026 encoding: events as maps),
const std::string k2026 = unhex(
    "93cb41daa8dbe0351eb8918ba474797065ab426c6f636b53746f726564ac626c6f636b5f68617368657391cfdab89b"
    "aa7b5857c0b1706172656e745f626c6f636b5f68617368c0a9746f6b656e5f696473dc00106465666768696a6b6c6d"
    "6e6f70717273aa626c6f636b5f73697a6510a76c6f72615f6964c0a66d656469756da3475055a96c6f72615f6e616d"
    "65c0aa65787472615f6b65797391c0a967726f75705f69647800b26b765f63616368655f737065635f6b696e64ae66"
    "756c6c5f617474656e74696f6e00");
// [1700000000.5, [["BlockStored", [11, 12], None, range(32), 16, None, "GPU"],
//  ["BlockRemoved", [11], "GPU"], ["AllBlocksCleared"]]]: the older positional events, and a
// batch without the data-parallel rank,
const std::string kLegacy = unhex(
    "92cb41d954fc402000009397ab426c6f636b53746f726564920b0cc0dc0020000102030405060708090a0b0c0d0e0f"
    "101112131415161718191a1b1c1d1e1f10c0a347505593ac426c6f636b52656d6f766564910ba347505591b0416c6c"
    "426c6f636b73436c6561726564");
// {"ts": 1.25, "events": [{"medium": "GPU", "type": "BlockRemoved", "block_hashes":
//  [bytes(range(24)) + 0x0102030405060708 big-endian]}], "data_parallel_rank": 1}: the batch as
// a map, the tag not first, a byte hash,
const std::string kMapBatch = unhex(
    "83a27473cb3ff4000000000000a66576656e74739183a66d656469756da3475055a474797065ac426c6f636b52656d"
    "6f766564ac626c6f636b5f68617368657391c420000102030405060708090a0b0c0d0e0f1011121314151617010203"
    "0405060708b2646174615f706172616c6c656c5f72616e6b01");
// [2.0, [{"type": "BlockPinned", "x": 1}, {"type": "BlockStored", "future_field": [1, 2],
//  "block_hashes": [5], "parent_block_hash": 4, "token_ids": range(16), "block_size": 16}], None]:
// an unknown event type and an unknown field.
const std::string kUnknown = unhex(
    "93cb40000000000000009282a474797065ab426c6f636b50696e6e6564a1780186a474797065ab426c6f636b53746f"
    "726564ac6675747572655f6669656c64920102ac626c6f636b5f6861736865739105b1706172656e745f626c6f636b"
    "5f6861736804a9746f6b656e5f696473dc0010000102030405060708090a0b0c0d0e0faa626c6f636b5f73697a6510"
    "c0");

TEST(KvEventsCodec, DecodesThe2026EncodingSeenOnARealStream) {
  EventBatch b;
  std::string error;
  ASSERT_TRUE(decode_batch(k2026, b, error)) << error;
  EXPECT_DOUBLE_EQ(b.ts, 1789095808.83);
  ASSERT_EQ(b.data_parallel_rank, 0);
  ASSERT_EQ(b.events.size(), 1u);
  const Event& e = b.events[0];
  EXPECT_EQ(e.type, EventType::kBlockStored);
  EXPECT_EQ(e.block_hashes, std::vector<uint64_t>{15760518052499183552ull});
  EXPECT_FALSE(e.parent_block_hash);
  ASSERT_EQ(e.token_ids.size(), 16u);
  EXPECT_EQ(e.token_ids[0], 100u);
  EXPECT_EQ(e.token_ids[15], 115u);
  EXPECT_EQ(e.block_size, 16);
  EXPECT_EQ(e.medium, "GPU");
}

TEST(KvEventsCodec, DecodesTheOlderPositionalArrays) {
  EventBatch b;
  std::string error;
  ASSERT_TRUE(decode_batch(kLegacy, b, error)) << error;
  EXPECT_FALSE(b.data_parallel_rank);
  ASSERT_EQ(b.events.size(), 3u);
  EXPECT_EQ(b.events[0].type, EventType::kBlockStored);
  EXPECT_EQ(b.events[0].block_hashes, (std::vector<uint64_t>{11, 12}));
  EXPECT_EQ(b.events[0].token_ids.size(), 32u);
  EXPECT_EQ(b.events[1].type, EventType::kBlockRemoved);
  EXPECT_EQ(b.events[1].block_hashes, std::vector<uint64_t>{11});
  EXPECT_EQ(b.events[2].type, EventType::kAllBlocksCleared);
}

TEST(KvEventsCodec, DecodesABatchMapAndByteHashes) {
  EventBatch b;
  std::string error;
  ASSERT_TRUE(decode_batch(kMapBatch, b, error)) << error;
  EXPECT_DOUBLE_EQ(b.ts, 1.25);
  EXPECT_EQ(b.data_parallel_rank, 1);
  ASSERT_EQ(b.events.size(), 1u);
  EXPECT_EQ(b.events[0].type, EventType::kBlockRemoved);
  EXPECT_EQ(b.events[0].block_hashes, std::vector<uint64_t>{0x0102030405060708ull});
}

TEST(KvEventsCodec, SkipsUnknownEventsAndFields) {
  EventBatch b;
  std::string error;
  DecodeStats stats;
  ASSERT_TRUE(decode_batch(kUnknown, b, error, &stats)) << error;
  EXPECT_EQ(stats.unknown_events, 1);
  ASSERT_EQ(b.events.size(), 1u);
  EXPECT_EQ(b.events[0].block_hashes, std::vector<uint64_t>{5});
  EXPECT_EQ(b.events[0].parent_block_hash, 4u);
  EXPECT_EQ(b.events[0].medium, "GPU");  // absent: the default
}

TEST(KvEventsCodec, EveryEncodingRoundTrips) {
  EventBatch b;
  b.ts = 12.5;
  b.data_parallel_rank = 3;
  Event s;
  s.block_hashes = {1ull << 63 | 7, 9};
  s.parent_block_hash = 42;
  for (uint32_t t = 0; t < 32; ++t) s.token_ids.push_back(t * 1000);
  s.block_size = 16;
  Event r;
  r.type = EventType::kBlockRemoved;
  r.block_hashes = {9};
  Event c;
  c.type = EventType::kAllBlocksCleared;
  c.medium = "GPU";
  b.events = {s, r, c};
  for (bool maps : {true, false}) {
    for (bool batch_map : {true, false}) {
      for (bool bytes : {true, false}) {
        std::string payload;
        encode_batch(b, EncodeOptions{maps, batch_map, bytes}, payload);
        EventBatch back;
        std::string error;
        ASSERT_TRUE(decode_batch(payload, back, error)) << error;
        EXPECT_EQ(back, b) << maps << batch_map << bytes;
      }
    }
  }
}

TEST(KvEventsCodec, RefusesMalformedPayloadsWithAReason) {
  const std::vector<std::string> bad = {
      "",                                           // nothing
      unhex("93"),                                  // a truncated array
      unhex("c0"),                                  // nil
      unhex("9201"),                                // [1] then nothing: truncated
      unhex("920190"),                              // [1, []] fine ... plus trailing byte below
      unhex("92a1789000"),                          // ts a string
      unhex("920191a178"),                          // an event that is a string
      unhex("92019181a47479706501"),                // {"type": 1}
      unhex("92019192ab426c6f636b53746f72656401"),  // BlockStored block_hashes = 1
  };
  std::string payload_ok = unhex("920190");
  EventBatch b;
  std::string error;
  EXPECT_TRUE(decode_batch(payload_ok, b, error)) << error;
  int refused = 0;
  for (size_t i = 0; i < bad.size(); ++i) {
    std::string p = bad[i];
    if (p == payload_ok) p.push_back('\0');  // trailing bytes
    error.clear();
    if (!decode_batch(p, b, error)) {
      ++refused;
      EXPECT_FALSE(error.empty()) << i;
      EXPECT_TRUE(b.events.empty()) << i;
    } else {
      ADD_FAILURE() << "accepted payload " << i;
    }
  }
  EXPECT_EQ(refused, static_cast<int>(bad.size()));
}

TEST(KvEventsCodec, SequenceFramesAreEightBytesBigEndian) {
  EXPECT_EQ(encode_seq(0x0102030405060708ull), unhex("0102030405060708"));
  uint64_t s = 0;
  EXPECT_TRUE(decode_seq(unhex("ffffffffffffffff"), s));
  EXPECT_EQ(s, ~0ull);
  EXPECT_FALSE(decode_seq("1234567", s));
  EXPECT_EQ(hash_from_bytes(digest_bytes(0xdeadbeefcafef00dull)), 0xdeadbeefcafef00dull);
}

std::vector<uint64_t> seqs(const std::vector<Orderer::Message>& m) {
  std::vector<uint64_t> out;
  for (const auto& x : m) out.push_back(x.seq);
  return out;
}

TEST(KvEventsOrderer, DeliversInOrderAndDropsDuplicates) {
  Orderer o;
  std::vector<Orderer::Message> out;
  EXPECT_EQ(o.accept(0, "a", out), Orderer::Verdict::kDeliver);
  EXPECT_EQ(o.accept(1, "b", out), Orderer::Verdict::kDeliver);
  EXPECT_EQ(o.accept(1, "b", out), Orderer::Verdict::kDuplicate);
  EXPECT_EQ(o.accept(2, "c", out), Orderer::Verdict::kDeliver);
  EXPECT_EQ(o.accept(1, "b", out), Orderer::Verdict::kDuplicate);
  EXPECT_EQ(seqs(out), (std::vector<uint64_t>{0, 1, 2}));
  EXPECT_EQ(o.duplicates(), 2u);
  EXPECT_EQ(o.gaps(), 0u);
}

TEST(KvEventsOrderer, OutOfOrderIsHeldUntilReplayFillsTheGap) {
  Orderer o;
  std::vector<Orderer::Message> out;
  o.accept(0, "a", out);
  EXPECT_EQ(o.accept(3, "d", out), Orderer::Verdict::kHeld);
  EXPECT_EQ(o.accept(2, "c", out), Orderer::Verdict::kHeld);  // out of order: held too
  EXPECT_EQ(o.accept(3, "d", out), Orderer::Verdict::kDuplicate);
  EXPECT_TRUE(o.in_gap());
  EXPECT_EQ(o.next(), 1u);
  o.replayed(1, "b", out);
  o.replayed(2, "c", out);  // held already: close_gap delivers it
  EXPECT_TRUE(o.close_gap(out));
  EXPECT_EQ(seqs(out), (std::vector<uint64_t>{0, 1, 2, 3}));
  EXPECT_FALSE(o.in_gap());
  EXPECT_EQ(o.accept(4, "e", out), Orderer::Verdict::kDeliver);
}

TEST(KvEventsOrderer, AnUnfilledGapSaysSoAndGoesOn) {
  Orderer o;
  std::vector<Orderer::Message> out;
  o.accept(0, "a", out);
  o.accept(5, "f", out);
  o.accept(6, "g", out);
  out.clear();
  EXPECT_FALSE(o.close_gap(out));  // 1..4 never came
  EXPECT_EQ(seqs(out), (std::vector<uint64_t>{5, 6}));
  EXPECT_EQ(o.next(), 7u);
  EXPECT_EQ(o.gaps(), 1u);
}

TEST(KvEventsOrderer, ALateJoinIsAGapFromZeroAndSequenceZeroAgainIsARestart) {
  Orderer o;
  std::vector<Orderer::Message> out;
  EXPECT_EQ(o.accept(7, "h", out), Orderer::Verdict::kHeld);
  EXPECT_EQ(o.next(), 0u);
  for (uint64_t s = 0; s < 7; ++s) o.replayed(s, "x", out);
  EXPECT_TRUE(o.close_gap(out));
  EXPECT_EQ(out.size(), 8u);
  out.clear();
  EXPECT_EQ(o.accept(0, "new", out), Orderer::Verdict::kRestart);
  EXPECT_EQ(seqs(out), std::vector<uint64_t>{0});
  EXPECT_EQ(o.accept(1, "new", out), Orderer::Verdict::kDeliver);
}

}  // namespace
}  // namespace eta::kv_events

namespace eta::prefix {
namespace {

using kv_events::Event;
using kv_events::EventBatch;
using kv_events::EventType;

std::vector<uint32_t> toks(uint32_t base, int n) {
  std::vector<uint32_t> t;
  for (int i = 0; i < n; ++i) t.push_back(base + static_cast<uint32_t>(i));
  return t;
}

Event stored(std::vector<uint64_t> hashes, std::optional<uint64_t> parent,
             std::vector<uint32_t> t) {
  Event e;
  e.block_hashes = std::move(hashes);
  e.parent_block_hash = parent;
  e.token_ids = std::move(t);
  e.block_size = 16;
  return e;
}

Event removed(std::vector<uint64_t> hashes) {
  Event e;
  e.type = EventType::kBlockRemoved;
  e.block_hashes = std::move(hashes);
  return e;
}

TEST(KvEventIndex, KeysAreRecomputedFromTokenIdsWhateverTheEngineHashes) {
  KvEventIndex idx(16);
  idx.resize(2);
  idx.set_active(0, true);
  const std::vector<uint32_t> prompt = toks(1000, 48);
  const std::vector<uint64_t> keys = engine::chain_block_hashes(prompt, 16);
  // Opaque engine hashes 901, 902 (a seeded sha256 in vLLM), then a child stored later.
  EventBatch b;
  b.events = {
      stored({901, 902}, std::nullopt, std::vector<uint32_t>(prompt.begin(), prompt.begin() + 32))};
  idx.apply(0, b, 1.0);
  EXPECT_EQ(idx.match(0, keys), 2u);
  b.events = {stored({903}, 902, std::vector<uint32_t>(prompt.begin() + 32, prompt.end()))};
  idx.apply(0, b, 1.0);
  EXPECT_EQ(idx.match(0, keys), 3u);
  EXPECT_EQ(idx.match(1, keys), 0u);
  // A child of a parent never seen gets no key.
  b.events = {stored({950}, 949, toks(5, 16))};
  idx.apply(0, b, 1.0);
  EXPECT_EQ(idx.stats(0).unkeyed, 1u);
  // Another block size cannot be matched against 16-token keys.
  Event other = stored({960}, std::nullopt, toks(1000, 32));
  other.block_size = 32;
  b.events = {other};
  idx.apply(0, b, 1.0);
  EXPECT_EQ(idx.stats(0).unkeyed, 2u);
}

TEST(KvEventIndex, RemovalsAreCountedPerPhysicalCopy) {
  KvEventIndex idx(16);
  idx.resize(1);
  idx.set_active(0, true);
  const std::vector<uint32_t> p = toks(7, 16);
  const std::vector<uint64_t> keys = engine::chain_block_hashes(p, 16);
  EventBatch b;
  b.events = {stored({1}, std::nullopt, p), stored({1}, std::nullopt, p)};  // two copies
  idx.apply(0, b, 0);
  b.events = {removed({1})};
  idx.apply(0, b, 0);
  EXPECT_EQ(idx.match(0, keys), 1u);  // one copy left
  idx.apply(0, b, 0);
  EXPECT_EQ(idx.match(0, keys), 0u);
  idx.apply(0, b, 0);  // a third removal of a block no longer known
  EXPECT_EQ(idx.stats(0).removed_unknown, 1u);
  // Two engine hashes with the same tokens (another seed): one key, held while either is.
  b.events = {stored({1}, std::nullopt, p), stored({2}, std::nullopt, p)};
  idx.apply(0, b, 0);
  b.events = {removed({1})};
  idx.apply(0, b, 0);
  EXPECT_EQ(idx.match(0, keys), 1u);
}

TEST(KvEventIndex, ClearsAndSeeds) {
  KvEventIndex idx(16, 5.0);
  idx.resize(1);
  idx.set_active(0, true);
  const std::vector<uint32_t> p = toks(3, 32);
  const std::vector<uint64_t> keys = engine::chain_block_hashes(p, 16);
  idx.seed(0, keys, 10.0);
  EXPECT_EQ(idx.match(0, keys), 2u);  // before any event: the dispatch's seed
  EXPECT_FALSE(idx.live(0));          // (ClusterState still matches its own index then)
  EventBatch b;
  b.events = {stored({1}, std::nullopt, std::vector<uint32_t>(p.begin(), p.begin() + 16))};
  idx.apply(0, b, 11.0);
  EXPECT_EQ(idx.stats(0).seeds, 1u);  // block 0 confirmed; block 1 still a seed
  EXPECT_EQ(idx.match(0, keys), 2u);
  idx.apply(0, EventBatch{}, 15.5);  // past the seed's expiry
  EXPECT_EQ(idx.match(0, keys), 1u);
  Event c;
  c.type = EventType::kAllBlocksCleared;
  b.events = {c};
  idx.apply(0, b, 16.0);
  EXPECT_EQ(idx.match(0, keys), 0u);
  EXPECT_EQ(idx.stats(0).clears, 1u);
  // CPU-offloaded copies are not GPU prefix-cache hits.
  Event cpu = stored({1}, std::nullopt, std::vector<uint32_t>(p.begin(), p.begin() + 16));
  cpu.medium = "CPU";
  b.events = {cpu};
  idx.apply(0, b, 16.0);
  EXPECT_EQ(idx.match(0, keys), 0u);
}

TEST(KvEventIndex, ExpiredSeedsDoNotAccumulate) {
  KvEventIndex idx(16, 1.0);
  idx.resize(1);
  idx.set_active(0, true);
  // Seeds that no event ever confirms (say the requests failed): the map stays bounded.
  for (uint64_t i = 0; i < 100000; ++i) {
    const uint64_t key = i + 1;
    idx.seed(0, std::span<const uint64_t>(&key, 1), static_cast<double>(i));
  }
  EXPECT_LE(idx.stats(0).seeds, 8192u);
  const uint64_t last = 100000;
  EXPECT_EQ(idx.match(0, std::span<const uint64_t>(&last, 1)), 1u);
}

TEST(KvEventIndex, ClusterStateMatchesActiveReplicasFromEventsOnly) {
  cluster::ClusterState state;
  cluster::ReplicaSpec spec;
  std::string error;
  ASSERT_TRUE(
      engine::make_config(engine::ProfileSet::builtin(), "llama-2-7b", "h100", spec.engine, error));
  spec.name = "a";
  state.add_replica(spec);
  spec.name = "b";
  state.add_replica(spec);
  state.kv_events().set_active(1, true);
  const std::vector<uint32_t> p = toks(11, 64);
  const std::vector<uint64_t> keys = engine::chain_block_hashes(p, 16);
  cluster::PreparedRequest prep;
  state.prepare("m", 64, keys, std::nullopt, false, std::nullopt, prep);
  ASSERT_TRUE(state.on_dispatch(1, 0, prep.features, 0.0));
  ASSERT_TRUE(state.on_dispatch(2, 1, prep.features, 0.0));
  state.prepare("m", 64, keys, std::nullopt, false, std::nullopt, prep);
  EXPECT_EQ(prep.matched_blocks[0], 4u);  // the router's own index
  EXPECT_EQ(prep.matched_blocks[1], 4u);  // no event yet: its own index too
  EventBatch empty;
  state.kv_events().apply(1, empty, 0.5);  // the first batch: from now on, events
  state.prepare("m", 64, keys, std::nullopt, false, std::nullopt, prep);
  EXPECT_EQ(prep.matched_blocks[1], 4u);  // the seed of its dispatch
  state.forget_prefix_cache(1);           // restarted
  state.prepare("m", 64, keys, std::nullopt, false, std::nullopt, prep);
  EXPECT_EQ(prep.matched_blocks[1], 0u);
  // Traffic that reached replica b by another path shows up through its events alone.
  EventBatch b;
  b.events = {stored({77, 78}, std::nullopt, std::vector<uint32_t>(p.begin(), p.begin() + 32))};
  state.kv_events().apply(1, b, 1.0);
  state.prepare("m", 64, keys, std::nullopt, false, std::nullopt, prep);
  EXPECT_EQ(prep.matched_blocks[1], 2u);
}

}  // namespace
}  // namespace eta::prefix

namespace eta::kv_events {
namespace {

TEST(KvEventsRecorder, ASimulatedEngineReportsEveryStoreAndEvictionWithItsTokens) {
  engine::EngineConfig config;
  std::string error;
  ASSERT_TRUE(
      engine::make_config(engine::ProfileSet::builtin(), "llama-2-7b", "h100", config, error));
  config.num_gpu_blocks = 12;
  config.max_model_len = 160;
  engine::Engine eng(config);
  BlockEventRecorder rec(16);
  eng.set_block_pool_listener(&rec);
  prefix::KvEventIndex idx(16);
  idx.resize(1);
  idx.set_active(0, true);
  std::vector<std::vector<uint64_t>> keys;
  double now = 0;
  uint64_t stored = 0, removed = 0;
  for (uint64_t id = 1; id <= 6; ++id) {
    std::string text;
    for (int w = 0; w < 40; ++w) text += " w" + std::to_string(id * 100 + static_cast<uint64_t>(w));
    const std::vector<uint32_t> prompt = engine::tokenize(text);
    engine::EngineRequest r;
    r.id = id;
    r.prompt_tokens = static_cast<int>(prompt.size());
    r.block_hashes = engine::chain_block_hashes(prompt, 16);
    r.output_tokens = 20;
    r.output_seed = id;
    keys.push_back(r.block_hashes);
    rec.add_request(id, prompt, r.block_hashes, r.output_seed, r.output_tokens);
    ASSERT_TRUE(eng.add_request(r));
    while (eng.has_unfinished()) {
      engine::StepResult s = eng.step(now);
      now = s.end;
      EventBatch b;
      if (rec.take(b)) {
        for (const Event& e : b.events) {
          (e.type == EventType::kBlockStored ? stored : removed) += e.block_hashes.size();
          if (e.type == EventType::kBlockStored) {
            EXPECT_EQ(e.token_ids.size(), 16 * e.block_hashes.size());
          }
        }
        idx.apply(0, b, now);
      }
      for (const auto& f : s.finished) rec.end_request(f.id);
    }
  }
  EXPECT_EQ(rec.unknown_stores(), 0u);
  EXPECT_GT(removed, 0u);  // 12 blocks: earlier prompts were evicted
  // What the events say the replica holds is what its pool holds, block for block.
  EXPECT_EQ(stored - removed, static_cast<uint64_t>(eng.block_pool().num_cached()));
  for (const auto& k : keys) {
    uint32_t in_pool = 0;
    while (in_pool < k.size() && eng.block_pool().lookup(k[in_pool]) >= 0) ++in_pool;
    EXPECT_EQ(idx.match(0, k), in_pool);
  }
  // A clone has no listener: stepping it reports nothing.
  engine::Engine copy = eng.clone();
  engine::EngineRequest r;
  r.id = 99;
  r.prompt_tokens = 64;
  r.block_hashes = engine::chain_block_hashes(std::vector<uint32_t>(64, 5), 16);
  ASSERT_TRUE(copy.add_request(r));
  while (copy.has_unfinished()) now = copy.step(now).end;
  EXPECT_TRUE(rec.empty());
}

}  // namespace
}  // namespace eta::kv_events
