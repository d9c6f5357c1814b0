#!/usr/bin/env python3
"""CPU used by one `eta vllm-sim` while streaming to N concurrent clients.

Starts the simulator at the given time scale, opens N concurrent streaming completions (each
asking for --tokens tokens with ignore_eos), and reads the simulator's own CPU time (utime +
stime from /proc/PID/stat) over the run. Clients use asyncio on raw sockets so the load
generator stays light. Prints one Markdown row.

usage: bench/sim_cpu.py ETA_BIN [--clients 256] [--tokens 500] [--time-scale 1] [--gpu h100]
"""
import argparse
import asyncio
import json
import os
import subprocess
import sys
import time


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


async def one_stream(port, tokens, index):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    body = json.dumps({"model": "m", "prompt": f"client {index} says hello to the simulator",
                       "max_tokens": tokens, "ignore_eos": True, "stream": True}).encode()
    writer.write(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    await writer.drain()
    events = 0
    data = b""
    while True:
        chunk = await reader.read(65536)
        if not chunk:
            break
        data += chunk
        events += chunk.count(b"data: ")
        if b"data: [DONE]" in data[-64:]:
            break
        data = data[-64:]
    writer.close()
    return events


async def run(port, clients, tokens):
    return await asyncio.gather(*(one_stream(port, tokens, i) for i in range(clients)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("eta")
    ap.add_argument("--clients", type=int, default=256)
    ap.add_argument("--tokens", type=int, default=500)
    ap.add_argument("--time-scale", default="1")
    ap.add_argument("--gpu", default="h100")
    a = ap.parse_args()
    proc = subprocess.Popen([a.eta, "vllm-sim", "--port", "0", "--model", "m", "--gpu", a.gpu,
                             "--time-scale", a.time_scale], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline().strip()
        port = int(line.rsplit(":", 1)[1])
        cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
        events = asyncio.run(run(port, a.clients, a.tokens))
        cpu1, t1 = cpu_seconds(proc.pid), time.monotonic()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    wall, cpu, total = t1 - t0, cpu1 - cpu0, sum(events)
    print(f"| {a.gpu} | {a.clients} | {a.tokens} | {a.time_scale} | {wall:.2f} | {cpu:.2f} | "
          f"{100 * cpu / wall:.1f} % | {total} | {1e6 * cpu / max(total, 1):.1f} |")


if __name__ == "__main__":
    sys.exit(main())
