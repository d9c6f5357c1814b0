#!/usr/bin/env bash
# Starts two simulated vLLM replicas (one H100, one A100) on free ports, sends them a few
# streaming and non-streaming requests with curl, prints what came back and a readable subset of
# their `vllm:` metrics, and stops them. Leaves nothing running, also on Ctrl-C or failure.
#
# Usage: scripts/demo.sh path/to/eta
set -euo pipefail

ETA=${1:?usage: scripts/demo.sh path/to/eta}
[[ -x "$ETA" ]] || { echo "demo: $ETA is not an executable" >&2; exit 2; }
command -v curl >/dev/null || { echo "demo: needs curl" >&2; exit 2; }
command -v python3 >/dev/null || { echo "demo: needs python3" >&2; exit 2; }

MODEL=demo-model
WORK=$(mktemp -d)
PIDS=()

cleanup() {
  local pid
  # Every background job (replicas and any curl still streaming), then make sure the replicas
  # are gone.
  for pid in $(jobs -p) "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'echo; echo "demo: interrupted" >&2; exit 130' INT TERM

# start_replica NAME GPU: starts a replica, sets URL_<NAME>.
start_replica() {
  local name=$1 gpu=$2 url=""
  "$ETA" vllm-sim --port 0 --model "$MODEL" --gpu "$gpu" >"$WORK/$name.out" 2>"$WORK/$name.err" &
  PIDS+=($!)
  for _ in $(seq 100); do
    url=$(sed -n 's/^listening on //p' "$WORK/$name.out" 2>/dev/null | head -n1)
    [[ -n "$url" ]] && break
    sleep 0.1
  done
  if [[ -z "$url" ]]; then
    echo "demo: replica $name did not start: $(cat "$WORK/$name.err")" >&2
    exit 1
  fi
  printf -v "URL_$name" '%s' "$url"
  echo "replica $name ($gpu): $url"
}

# Compact views of a JSON body and of an SSE stream (stdin).
show_json() {
  python3 -c '
import json, sys
b = json.load(sys.stdin)
if "error" in b:
    print("  error %s: %s" % (b["error"]["code"], b["error"]["message"]))
    sys.exit()
c = b["choices"][0]
text = c.get("text", c.get("message", {}).get("content"))
u = b["usage"]
print("  %s  finish=%s  prompt=%d completion=%d" % (b["object"], c["finish_reason"],
      u["prompt_tokens"], u["completion_tokens"]))
print("  text: %r" % (text if len(text) <= 70 else text[:67] + "..."))
'
}
# show_stream START: stdin is "ARRIVAL_TIME LINE" per line (from stamp_lines).
show_stream() {
  python3 -c '
import json, sys
t0 = float(sys.argv[1])
events, text, first, finish, usage, last = 0, "", None, None, None, t0
for raw in sys.stdin:
    stamp, _, line = raw.partition(" ")
    line = line.strip()
    if not line.startswith("data: "):
        continue
    data = line[6:]
    last = float(stamp)
    if data == "[DONE]":
        break
    events += 1
    chunk = json.loads(data)
    if first is None:
        first = last - t0
    for c in chunk["choices"]:
        text += c.get("text") or c.get("delta", {}).get("content") or ""
        finish = c.get("finish_reason") or finish
    usage = chunk.get("usage") or usage
total = last - t0
print("  %d events, first after %.0f ms, all in %.0f ms, finish=%s" % (
      events, 1000 * (first or 0), 1000 * total, finish))
if usage:
    print("  usage: prompt=%d completion=%d" % (usage["prompt_tokens"], usage["completion_tokens"]))
print("  text: %r" % (text if len(text) <= 70 else text[:67] + "..."))
' "$1"
}
# Prefixes every line with its arrival time (seconds, bash 5 $EPOCHREALTIME).
stamp_lines() {
  local line
  while IFS= read -r line; do printf '%s %s\n' "$EPOCHREALTIME" "$line"; done
}

post() {  # post URL PATH JSON
  curl -sS --max-time 60 -H 'Content-Type: application/json' -d "$3" "$1$2"
}
post_stream() {
  curl -sS -N --max-time 60 -H 'Content-Type: application/json' -d "$3" "$1$2"
}

metrics() {  # a readable subset of a replica's vllm: metrics
  curl -sS --max-time 10 "$1/metrics" | grep -E '^vllm:(num_requests_running|num_requests_waiting|kv_cache_usage_perc|prefix_cache_queries_total|prefix_cache_hits_total|prompt_tokens_total|generation_tokens_total|request_success_total|time_to_first_token_seconds_(count|sum))[{ ]' |
    sed -E 's/\{model_name="[^"]*",engine="0"(,)?/{/; s/\{\}//' | sed 's/^/  /'
}

echo "== starting two simulated replicas"
start_replica h100 h100
start_replica a100 a100

SYSTEM="You are a helpful assistant. Answer briefly and precisely, citing sources where you can."
for name in h100 a100; do
  url_var="URL_$name"
  url=${!url_var}
  echo
  echo "== $name: GET /v1/models"
  curl -sS --max-time 10 "$url/v1/models" | python3 -c '
import json, sys
m = json.load(sys.stdin)["data"][0]
print("  %s  max_model_len=%d  time_scale=%s" % (m["id"], m["max_model_len"], m.get("eta_time_scale")))
'
  echo "== $name: POST /v1/completions (non-streaming, 32 tokens)"
  post "$url" /v1/completions \
    "{\"model\":\"$MODEL\",\"prompt\":\"The quick brown fox\",\"max_tokens\":32,\"ignore_eos\":true}" | show_json
  echo "== $name: POST /v1/chat/completions (streaming, 64 tokens, usage)"
  start=$EPOCHREALTIME
  post_stream "$url" /v1/chat/completions \
    "{\"model\":\"$MODEL\",\"messages\":[{\"role\":\"system\",\"content\":\"$SYSTEM\"},{\"role\":\"user\",\"content\":\"Tell me about foxes.\"}],\"max_tokens\":64,\"ignore_eos\":true,\"stream\":true,\"stream_options\":{\"include_usage\":true}}" | stamp_lines | show_stream "$start"
  echo "== $name: the same system prompt again (prefix cache)"
  start=$EPOCHREALTIME
  post_stream "$url" /v1/chat/completions \
    "{\"model\":\"$MODEL\",\"messages\":[{\"role\":\"system\",\"content\":\"$SYSTEM\"},{\"role\":\"user\",\"content\":\"And about dogs?\"}],\"max_tokens\":16,\"stream\":true}" | stamp_lines | show_stream "$start"
  echo "== $name: an unknown model"
  post "$url" /v1/completions "{\"model\":\"nope\",\"prompt\":\"hi\"}" | show_json
done

echo
echo "== eight concurrent streams on each replica"
for name in h100 a100; do
  url_var="URL_$name"
  url=${!url_var}
  start=$EPOCHREALTIME
  curls=()
  for i in $(seq 8); do
    # curl itself is the background job (not a function's subshell), so cleanup can stop it.
    curl -sS -N --max-time 60 -H 'Content-Type: application/json' \
      -d "{\"model\":\"$MODEL\",\"prompt\":\"request $i\",\"max_tokens\":128,\"ignore_eos\":true,\"stream\":true}" \
      "$url/v1/completions" >"$WORK/stream-$name-$i.txt" &
    curls+=($!)
  done
  for pid in "${curls[@]}"; do wait "$pid" || { echo "demo: a stream failed" >&2; exit 1; }; done
  end=$EPOCHREALTIME
  done_count=$(grep -l '^data: \[DONE\]' "$WORK"/stream-"$name"-*.txt | wc -l)
  python3 -c "print('  %s: %d/8 streams of 128 tokens complete in %.2f s' % ('$name', $done_count, $end - $start))"
done

echo
for name in h100 a100; do
  url_var="URL_$name"
  echo "== $name metrics"
  metrics "${!url_var}"
done
echo
echo "== stopping the replicas"
