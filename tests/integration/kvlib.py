"""A KV-cache event subscriber written from vLLM's documented format (vllm-interface.md §10,
vllm/distributed/kv_events.py), with Debian's python3-zmq and python3-msgpack: three frames per
message (topic, 8-byte big-endian sequence number, msgpack payload); replay by sending the start
sequence to the ROUTER socket and reading (seq, payload) pairs up to seq -1."""

import sys
import time

try:
    import msgpack
    import zmq
except ImportError:  # a pyenv interpreter beside Debian's packages
    sys.path.append("/usr/lib/python3/dist-packages")
    import msgpack
    import zmq

END_SEQ = -1

STORED_FIELDS = ["block_hashes", "parent_block_hash", "token_ids", "block_size", "lora_id",
                 "medium", "lora_name", "extra_keys", "group_idx", "kv_cache_spec_kind",
                 "kv_cache_spec_sliding_window"]
REMOVED_FIELDS = ["block_hashes", "medium", "group_idx"]


def normalize_event(ev):
    """An event as a dict with "type", whether it came as a map or a positional array."""
    if isinstance(ev, dict):
        return dict(ev)
    tag = ev[0]
    names = {"BlockStored": STORED_FIELDS, "BlockRemoved": REMOVED_FIELDS}.get(tag, [])
    out = {"type": tag}
    out.update(zip(names, ev[1:]))
    return out


def normalize_batch(batch):
    if isinstance(batch, dict):
        return batch["ts"], batch["events"], batch.get("data_parallel_rank")
    ts, events = batch[0], batch[1]
    return ts, events, batch[2] if len(batch) > 2 else None


class Subscriber:
    """SUB socket; bind=True binds it (for a publisher whose endpoint it connects to)."""

    def __init__(self, endpoint, topic=b"", bind=False, replay=None):
        self.ctx = zmq.Context()
        self.sub = self.ctx.socket(zmq.SUB)
        self.sub.setsockopt(zmq.SUBSCRIBE, topic)
        self.sub.setsockopt(zmq.LINGER, 0)
        if bind:
            self.sub.bind(endpoint)
        else:
            self.sub.connect(endpoint)
        self.replay_endpoint = replay
        self.messages = []  # (topic, seq, payload bytes)

    def receive(self, quiet=0.7, limit=30.0):
        """Reads messages until none came for `quiet` seconds."""
        deadline = time.time() + limit
        while time.time() < deadline:
            if not self.sub.poll(int(quiet * 1000)):
                break
            frames = self.sub.recv_multipart()
            assert len(frames) == 3, frames
            self.messages.append((frames[0], int.from_bytes(frames[1], "big"), frames[2]))
        return self.messages

    def replay(self, start, timeout=3.0):
        """[(seq, payload)] from `start` on, from the ROUTER socket (a DEALER here: a REQ socket
        would take only the first of several replies)."""
        s = self.ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.connect(self.replay_endpoint)
        s.send_multipart([b"", start.to_bytes(8, "big")])
        out = []
        deadline = time.time() + timeout
        while time.time() < deadline:
            if not s.poll(int(max(deadline - time.time(), 0.01) * 1000)):
                break
            empty, seq, payload = s.recv_multipart()
            assert empty == b""
            seq = int.from_bytes(seq, "big", signed=True)
            if seq == END_SEQ:
                assert payload == b""
                s.close()
                return out, True
            out.append((seq, payload))
        s.close()
        return out, False

    def close(self):
        self.sub.close()
        self.ctx.term()


def decode(payload):
    return msgpack.unpackb(payload, raw=False)
