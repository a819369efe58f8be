// `spindle bench`: runs every benchmark row for every system, each (row, system) pair in a
// fresh child process (`spindle bench-child`, or a peer program), interleaving systems so
// that machine noise hits them alike, and prints the cost table, then medians per row with
// allocations and context switches per operation, as text, Markdown or JSON.
import ArgumentParser
import Foundation
import SpindleBenchCore

/// Systems:
/// - `spindle`: Spindle installed as Swift's global executors (`Runtime.main`), the way a
///   program opts in; plain `Task`s run on it.
/// Every row's `spindle` is that global install (tcp.rtt.fiber: fibers on the global
/// runtime); other shapes carry their own names.
/// - `spindle-preference`: a `Runtime` reached through `Task(executorPreference:)`, with
///   Swift's default executor still installed. Swift reads the preference on every
///   enqueue, which costs extra (see README).
/// - `spindle-1worker`: like `spindle`, with one worker.
/// - `swift-default`: Swift's own default executor (Dispatch), no Spindle.
/// - `swift-iterator`: plain Swift with no runtime (for rows that need none).
/// - `task.floor`: the cheapest one-thread executor for Swift jobs (FloorExecutor.swift):
///   what Swift's concurrency runtime itself costs, with no scheduler around it.
/// - `context`, `asm`: the fiber switch's layers alone (C loops, CSpindleBench).
/// - `threads`, `threads-1cpu`: two OS threads, free to use any CPU or pinned to one.
/// - Peers (`--peers`, Benchmarks/peers/): `go`, `go-1proc` (GOMAXPROCS=1), `tokio`,
///   `tokio-1thread`, `boost`, `c-futex`, `c-futex-1cpu`.
/// - `asyncstream`, `asyncchannel`: the standard library's AsyncStream and
///   swift-async-algorithms' AsyncChannel, on Swift's default executor;
///   `asyncstream-spindle`, `asyncchannel-spindle`: the same code with Spindle installed as
///   Swift's executor (like for like with Spindle's channel).
let allRows: [Row] = [
    Row(name: "task.yield", unit: "ns", systems: ["spindle", "spindle-1worker", "spindle-preference", "swift-default", "task.floor"],
        summary: "ns per await Task.yield() of one task looping"),
    Row(name: "task.pingpong", unit: "ns", systems: ["spindle", "spindle-preference", "swift-default", "task.floor"],
        summary: "ns per one-way hand-off between two tasks"),
    Row(name: "task.spawn", unit: "ns", systems: ["spindle", "spindle-preference", "swift-default", "task.floor"],
        summary: "ns per child task spawned and completed (1M children, task group)"),
    Row(name: "task.fanout", unit: "ns", systems: ["spindle", "spindle-1worker", "spindle-preference", "swift-default"],
        summary: "ns per task, 1M tiny tasks spread over all workers"),
    Row(name: "task.memory", unit: "bytes", systems: ["spindle", "swift-default"],
        summary: "RSS bytes per suspended task (100k tasks)"),
    Row(name: "generator.next", unit: "ns", systems: ["spindle", "swift-iterator"],
        summary: "ns per element from a Generator (fiber) vs an AnyIterator closure"),
    Row(name: "fiber.switch", unit: "ns", systems: ["spindle", "context", "asm"],
        summary: "ns per one-way switch: two fibers yielding on one worker; the bare resume/suspend; the bare assembly"),
    Row(name: "fiber.spawn", unit: "ns", systems: ["spindle"],
        summary: "ns per fiber spawned, run and joined (warm stack pool, one worker)"),
    Row(name: "fiber.memory.100k", unit: "bytes", systems: ["spindle"],
        summary: "RSS bytes per suspended fiber, 100k alive"),
    Row(name: "fiber.memory.1m", unit: "bytes", systems: ["spindle"],
        summary: "RSS bytes per suspended fiber, 1M alive", maxRuns: 3),
    Row(name: "thread.switch", unit: "ns", systems: ["threads", "threads-1cpu"],
        summary: "ns per one-way hand-off between two OS threads through futexes (any CPUs; one CPU)"),
    Row(name: "channel.rtt.task", unit: "ns", systems: ["spindle", "asyncstream", "asyncchannel", "asyncstream-spindle", "asyncchannel-spindle"],
        summary: "ns per round trip between two tasks through two channels"),
    Row(name: "channel.rtt.fiber", unit: "ns", systems: ["spindle"],
        summary: "ns per round trip between two fibers through two channels (one worker)"),
    Row(name: "channel.throughput.1p", unit: "msg/s", systems: ["spindle", "asyncchannel", "asyncchannel-spindle"],
        summary: "messages per second from one producer task into one consumer task, rendezvous channels (Spindle capacity 0, AsyncChannel)"),
    Row(name: "channel.throughput.4p", unit: "msg/s", systems: ["spindle", "asyncchannel", "asyncchannel-spindle"],
        summary: "messages per second from four producer tasks into one consumer task, rendezvous channels"),
    Row(name: "channel.throughput.buffered.1p", unit: "msg/s", systems: ["spindle", "asyncstream", "asyncstream-spindle"],
        summary: "messages per second, one producer, buffered: Spindle 1,024 slots (senders wait when full); AsyncStream unbounded (it has no waiting bounded policy)"),
    Row(name: "channel.throughput.buffered.4p", unit: "msg/s", systems: ["spindle", "asyncstream", "asyncstream-spindle"],
        summary: "messages per second, four producers, buffered as above"),
    Row(name: "tcp.rtt.task", unit: "ns", systems: ["spindle", "spindle-1worker", "spindle-preference", "threads"],
        summary: "ns per 1-byte loopback TCP round trip, client and server tasks (threads: blocking calls, the baseline)"),
    Row(name: "tcp.rtt.fiber", unit: "ns", systems: ["spindle", "spindle-1worker", "threads"],
        summary: "ns per 1-byte loopback TCP round trip, client and server fibers (threads: blocking calls, the baseline)"),
    Row(name: "timer.sleep", unit: "ns", systems: ["spindle", "swift-default"],
        summary: "extra ns per timer armed and fired (100k tasks sleeping 1 ms at once)"),
    Row(name: "timer.late.1ms", unit: "ns", systems: ["spindle", "swift-default"],
        summary: "median ns a 1 ms sleep ends late (200 sleeps in a row, idle machine)"),
    Row(name: "timer.store.cancel", unit: "ns", systems: ["wheel", "heap"],
        summary: "ns per timer inserted and cancelled (1M timers over 10 s, cancelled in random order)"),
    Row(name: "timer.store.fire", unit: "ns", systems: ["wheel", "heap"],
        summary: "ns per timer inserted and fired (1M timers over 10 s, clock advanced 1 ms at a time)"),
    Row(name: "timer.store.fire.10k", unit: "ns", systems: ["wheel", "heap"],
        summary: "ns per timer inserted and fired (10k timers over 10 ms)"),
    Row(name: "timer.sleeping.memory", unit: "bytes", systems: ["spindle", "swift-default"],
        summary: "RSS bytes per sleeping task (1M tasks sleeping 1 hour)", maxRuns: 3),
    Row(name: "timer.cancelled.memory", unit: "bytes", systems: ["spindle", "swift-default"],
        summary: "RSS bytes per task still held after 1M sleeping tasks are cancelled and done", maxRuns: 3),
    Row(name: "tcp.idle.memory", unit: "bytes", systems: ["spindle", "fibers"],
        summary: "RSS bytes per idle open connection (5,000 connections, a waiting reader each)"),
    Row(name: "tcp.idle.10k", unit: "bytes", systems: ["spindle"],
        summary: "RSS bytes per idle connection, 10,000 held in one process (clients in another)"),
    Row(name: "runtime.idle.cpu", unit: "%", systems: ["spindle"],
        summary: "CPU used over 3 s by a truly idle runtime (every worker parked, a listener registered, a timer an hour ahead), percent of one core"),
    Row(name: "runtime.idle.wakeups", unit: "/s", systems: ["spindle"],
        summary: "context switches per second of that idle runtime's threads (the measuring main thread excluded)"),
]

