// libFuzzer harness: the KV-cache event decoder (kv_events::decode_batch), which reads msgpack
// from replicas the router does not trust, and the sequence orderer.
// Properties: never crashes; a decoded batch re-encodes (in every encoding) to bytes that decode
// to the same batch; the orderer, fed sequence numbers from the input, delivers each number at
// most once and in increasing order between restarts.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "kv_events/codec.hpp"
#include "kv_events/orderer.hpp"

using namespace eta::kv_events;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  EventBatch batch;
  std::string error;
  if (decode_batch(bytes, batch, error)) {
    for (int variant = 0; variant < 8; ++variant) {
      EncodeOptions o{(variant & 1) != 0, (variant & 2) != 0, (variant & 4) != 0};
      std::string again;
      encode_batch(batch, o, again);
      EventBatch back;
      std::string e2;
      if (!decode_batch(again, back, e2)) std::abort();
      // Positional arrays carry no group_idx (the older releases had none).
      if (!o.events_as_maps)
        for (Event& e : batch.events) e.group_idx = 0;
      // ts survives as a double; NaN never compares equal.
      if (batch.ts != batch.ts) back.ts = batch.ts = 0;
      if (!(back == batch)) std::abort();
    }
  } else if (error.empty()) {
    std::abort();
  }

  // The orderer: pairs of bytes are sequence numbers (small, so that duplicates and gaps occur).
  Orderer o(64);
  std::vector<Orderer::Message> out;
  uint64_t last = 0;
  bool any = false;
  for (size_t i = 0; i + 1 < size; i += 2) {
    const uint64_t seq = data[i] % 32;
    const bool replay = (data[i + 1] & 3) == 0;
    const bool close = (data[i + 1] & 7) == 1;
    out.clear();
    Orderer::Verdict v = Orderer::Verdict::kDuplicate;
    if (replay)
      o.replayed(seq, "", out);
    else
      v = o.accept(seq, "", out);
    if (close) o.close_gap(out);
    if (v == Orderer::Verdict::kRestart) any = false;
    for (const auto& m : out) {
      if (any && m.seq <= last) std::abort();
      last = m.seq;
      any = true;
    }
  }
  return 0;
}
