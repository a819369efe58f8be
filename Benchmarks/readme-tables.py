#!/usr/bin/env python3
"""Prints README's per-section figure tables (Fibers, Channels, I/O and time, timer store)
from one saved `spindle bench --peers --json` run, so every figure in them comes from that
run. The headline and every-row tables come from `spindle bench --from-json RUN --markdown`.

    Benchmarks/readme-tables.py run.json
"""
import json
import sys

runs = json.load(open(sys.argv[1]))
R = {(r["name"], r["system"]): r for r in runs}


def v(row, system):
    r = R.get((row, system))
    return None if r is None or r["value"] != r["value"] else r["value"]


def ns(x, unit="ns"):
    if x is None:
        return "–"
    if x >= 10_000:
        return f"{x:,.0f} {unit}"
    if x >= 100:
        return f"{x:,.0f} {unit}"
    return f"{x:.1f} {unit}"


def allocs(row, system):
    r = R.get((row, system))
    a = None if r is None else r["allocs"]
    if a is None:
        return ""
    return f", {a:.0f} allocs" if a >= 0.5 or a == 0 else f", {a:.2f} allocs"


def rate(x):
    return "–" if x is None else f"{x / 1e6:.2f} M"


def ratio(a, b):
    return "" if a is None or b is None or b == 0 else f"{a / b:.2f}×"


print("#### Fibers\n")
print("| row | measured | target | |")
print("|---|---|---|---|")
print(f"| `fiber.switch` (fiber → fiber, through `Fiber.yield()`) | {ns(v('fiber.switch', 'spindle'))} (Go's goroutine switch: {ns(v('fiber.switch', 'go-1proc'))}) | ≤ 12 ns | {'✓' if (v('fiber.switch', 'spindle') or 99) <= 12 else '✗'} |")
print(f"| bare resume + suspend with the exclusivity swap (`context`) | {ns(v('fiber.switch', 'context'))} one way | | |")
print(f"| bare assembly switch (`asm`) | {ns(v('fiber.switch', 'asm'))} one way (Boost.Context: {ns(v('fiber.switch', 'boost'))}) | | |")
print(f"| `fiber.spawn` (spawn, run, end, join; warm pool) | {ns(v('fiber.spawn', 'spindle'))}{allocs('fiber.spawn', 'spindle')} | ≤ 100 ns | {'✓' if (v('fiber.spawn', 'spindle') or 1e9) <= 100 else '✗'} |")
m1 = v('fiber.memory.1m', 'spindle')
print(f"| `fiber.memory.1m` (1,000,000 fibers parked at once) | {m1:,.0f} B per fiber | ≤ 4.5 KiB (4,608 B) | {'✓' if m1 <= 4608 else '✗'} |")
print(f"| `fiber.memory.100k` | {v('fiber.memory.100k', 'spindle'):,.0f} B per fiber (a goroutine: {v('fiber.memory.100k', 'go') or 0:,.0f} B) | | |")
g = v('generator.next', 'spindle')
print(f"| `generator.next` | {ns(g)} per element | ≤ 30 ns | {'✓' if g <= 30 else '✗'} |")
print(f"| `thread.switch` for comparison | {v('thread.switch', 'threads') / 1000:.1f} µs ({v('thread.switch', 'threads-1cpu') / 1000:.1f} µs on one CPU) | | |")
print(f"| `task.yield` on the same runtime, for comparison | {ns(v('task.yield', 'spindle'))} | | |")

print("\n#### Channels\n")
print("| row | Spindle | AsyncStream | AsyncChannel | AsyncStream on Spindle | AsyncChannel on Spindle | Go | Tokio |")
print("|---|---|---|---|---|---|---|---|")
s = v('channel.rtt.task', 'spindle')
print(f"| `channel.rtt.task` (two tasks, two rendezvous channels; Tokio: mpsc(1)) | {ns(s)}{allocs('channel.rtt.task', 'spindle')} | {ns(v('channel.rtt.task', 'asyncstream'))} | {ns(v('channel.rtt.task', 'asyncchannel'))} | {ns(v('channel.rtt.task', 'asyncstream-spindle'))} (Spindle {ratio(s, v('channel.rtt.task', 'asyncstream-spindle'))}) | {ns(v('channel.rtt.task', 'asyncchannel-spindle'))} ({ratio(s, v('channel.rtt.task', 'asyncchannel-spindle'))}) | {ns(v('channel.rtt.task', 'go'))} | {ns(v('channel.rtt.task', 'tokio'))} |")
print(f"| `channel.rtt.fiber` (two fibers, one worker; Go `GOMAXPROCS=1`, Tokio current-thread) | {ns(v('channel.rtt.fiber', 'spindle'))}{allocs('channel.rtt.fiber', 'spindle')} | – | – | – | – | {ns(v('channel.rtt.fiber', 'go-1proc'))} | {ns(v('channel.rtt.fiber', 'tokio-1thread'))} |")
for row, what in [("channel.throughput.1p", "rendezvous, 1 producer → 1 consumer"), ("channel.throughput.4p", "rendezvous, 4 producers")]:
    print(f"| `{row}` ({what}) | {rate(v(row, 'spindle'))} msg/s | – | {rate(v(row, 'asyncchannel'))} | – | {rate(v(row, 'asyncchannel-spindle'))} | {rate(v(row, 'go'))} | – |")
for row, what in [("channel.throughput.buffered.1p", "1,024 slots; AsyncStream unbounded"), ("channel.throughput.buffered.4p", "4 producers")]:
    print(f"| `{row}` ({what}) | {rate(v(row, 'spindle'))} msg/s | {rate(v(row, 'asyncstream'))} | – | {rate(v(row, 'asyncstream-spindle'))} | – | {rate(v(row, 'go'))} | {rate(v(row, 'tokio'))} |")

print("\n#### TCP\n")
print("| row | Spindle (all workers) | Spindle, 1 worker | threads | Go | Tokio |")
print("|---|---|---|---|---|---|")
t = v('tcp.rtt.task', 'threads')
print(f"| `tcp.rtt.task` (1-byte round trip, client and server tasks) | {ns(v('tcp.rtt.task', 'spindle'))} ({ratio(v('tcp.rtt.task', 'spindle'), t)} threads) | {ns(v('tcp.rtt.task', 'spindle-1worker'))} | {ns(t)} | {ns(v('tcp.rtt.task', 'go'))} | {ns(v('tcp.rtt.task', 'tokio'))} |")
t = v('tcp.rtt.fiber', 'threads')
print(f"| `tcp.rtt.fiber` (the same with fibers) | {ns(v('tcp.rtt.fiber', 'spindle'))} ({ratio(v('tcp.rtt.fiber', 'spindle'), t)}) | {ns(v('tcp.rtt.fiber', 'spindle-1worker'))} ({ratio(v('tcp.rtt.fiber', 'spindle-1worker'), t)}) | {ns(t)} | | |")

print("\n#### Timers and idle memory\n")
print("| row | Spindle | Swift's default executor | |")
print("|---|---|---|---|")
a, b = v('timer.sleep', 'spindle'), v('timer.sleep', 'swift-default')
print(f"| `timer.sleep` (extra ns per timer armed and fired, 100k tasks sleeping 1 ms at once) | {ns(a)} | {ns(b)} (`Task.sleep`) | {ratio(a, b)} |")
a, b = v('timer.late.1ms', 'spindle'), v('timer.late.1ms', 'swift-default')
print(f"| `timer.late.1ms` (median lateness of a 1 ms sleep) | {a / 1000:.1f} µs | {b / 1000:.1f} µs | target < 1 ms {'✓' if a < 1e6 else '✗'} |")
a, b = v('timer.sleeping.memory', 'spindle'), v('timer.sleeping.memory', 'swift-default')
print(f"| `timer.sleeping.memory` (RSS per task, 1M tasks sleeping an hour) | {a:,.0f} B | {b:,.0f} B (`Task.sleep`) | {ratio(a, b)} |")
a, b = v('timer.cancelled.memory', 'spindle'), v('timer.cancelled.memory', 'swift-default')
print(f"| `timer.cancelled.memory` (RSS per task still held once those 1M are cancelled and done) | {a:,.1f} B | {b:,.0f} B | memory given back ✓ |")
print(f"| `tcp.idle.memory` (RSS per idle connection, 5,000 connections, both ends in the process, a reader task each) | {v('tcp.idle.memory', 'spindle'):,.0f} B (fibers: {v('tcp.idle.memory', 'fibers'):,.0f} B) | | |")
print(f"| `tcp.idle.10k` (RSS per connection, 10,000 held by one process, clients in another) | {v('tcp.idle.10k', 'spindle'):,.0f} B | | |")

print("\n#### Timer stores\n")
print("| row | wheel | heap |")
print("|---|---|---|")
for row, what in [("timer.store.cancel", "ns per timer, 1M inserted over 10 s, cancelled in random order"),
                  ("timer.store.fire", "ns per timer, 1M inserted over 10 s, fired 1 ms at a time"),
                  ("timer.store.fire.10k", "10k over 10 ms")]:
    print(f"| `{row}` ({what}) | {ns(v(row, 'wheel'))} | {ns(v(row, 'heap'))} |")
