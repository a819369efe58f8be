// ByteInbox: a connection's read buffer, raw memory the socket reads into across an
// `await` (an array's storage cannot be lent across a suspension).
// UNSAFE FILE: raw memory.
import Spindle

/// Bytes read from a socket and not consumed yet: `[start, end)` of `base`.
/// Owned by one connection, used by one task or fiber at a time.
final class ByteInbox {
    // SAFETY: `base` points to `capacity` bytes allocated here and freed in deinit; only
    // [start, end) holds data; every access below stays inside [0, capacity).
    private(set) var base: UnsafeMutableRawPointer
    private(set) var capacity: Int
    private(set) var start = 0
    private(set) var end = 0
    let maxCapacity: Int

    init(capacity: Int, maxCapacity: Int) {
        self.capacity = capacity
        self.maxCapacity = max(capacity, maxCapacity, Self.adaptiveLimit)
        base = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
    }

    deinit { base.deallocate() }

    var count: Int { end - start }
    var isEmpty: Bool { end == start }

    /// The unconsumed bytes, valid until the next call that changes the inbox.
    var bytes: UnsafeRawBufferPointer {
        // SAFETY: [start, end) is initialized data inside the allocation.
        UnsafeRawBufferPointer(start: base + start, count: end - start)
    }

    /// A copy of `range` of ``bytes``.
    func copy(_ range: Range<Int>) -> [UInt8] {
        // SAFETY: callers pass ranges the parser returned for the current ``bytes``.
        [UInt8](UnsafeRawBufferPointer(start: base + start + range.lowerBound, count: range.count))
    }

    func consume(_ n: Int) {
        start += n
        if start == end { start = 0; end = 0 }
    }

    /// Free room at the end, compacting or growing first; nil if the inbox is full at its
    /// maximum (the caller's parser limit was not enforced: a head larger than the limits
    /// allow cannot fit, so this only happens with limits above `maxCapacity`).
    func room() -> UnsafeMutableRawBufferPointer? {
        if start == end && growTo > capacity {
            // Empty, and the last reads filled all the room they had: a bigger buffer
            // means fewer reads for a large body (Netty's adaptive allocation, simply).
            let b = UnsafeMutableRawPointer.allocate(byteCount: growTo, alignment: 16)
            base.deallocate()
            base = b
            capacity = growTo
            start = 0
            end = 0
        }
        if end == capacity {
            if start > 0 {
                // SAFETY: moves the live bytes to the front; memmove semantics.
                (base).copyMemory(from: base + start, byteCount: end - start)
                end -= start
                start = 0
            } else if capacity < maxCapacity {
                let bigger = min(maxCapacity, capacity * 2)
                let b = UnsafeMutableRawPointer.allocate(byteCount: bigger, alignment: 16)
                // SAFETY: copies [0, end) into a buffer at least as large.
                b.copyMemory(from: base, byteCount: end)
                base.deallocate()
                base = b
                capacity = bigger
            } else {
                return nil
            }
        }
        // SAFETY: [end, capacity) is inside the allocation and holds no live data.
        return UnsafeMutableRawBufferPointer(start: base + end, count: capacity - end)
    }

    /// `n` bytes were written into ``room()``.
    func commit(_ n: Int) { end += n }

    /// Capacity to grow to when next empty (0: stay).
    private var growTo = 0
    /// Reads larger than this gain little from a bigger buffer.
    static let adaptiveLimit = 64 << 10

    /// After a read that was offered `offered` bytes and got `got`.
    private func adapt(offered: Int, got: Int) {
        if got == offered && capacity < min(maxCapacity, Self.adaptiveLimit) {
            growTo = min(capacity * 2, Self.adaptiveLimit, maxCapacity)
        }
    }

    /// Appends bytes (tests and the client's replays).
    func append(_ data: UnsafeRawBufferPointer) {
        var offset = 0
        while offset < data.count {
            guard let r = room() else { return }
            let n = min(r.count, data.count - offset)
            // SAFETY: n bytes fit in the room returned.
            r.baseAddress!.copyMemory(from: data.baseAddress! + offset, byteCount: n)
            commit(n)
            offset += n
        }
    }

    /// Reads once from `socket` into the free room. Returns the byte count (0: end).
    func fill(from socket: Transport, timeout: Duration?) async throws -> Int {
        guard let r = room() else { throw HTTPInboxFull() }
        let n = try await socket.read(into: r, timeout: timeout)
        commit(n)
        adapt(offered: r.count, got: n)
        return n
    }

    /// Fiber/thread form of ``fill(from:timeout:)``.
    @available(*, noasync)
    func fillBlocking(from socket: Transport, timeout: Duration?) throws -> Int {
        guard let r = room() else { throw HTTPInboxFull() }
        let n = try socket.read(into: r, timeout: timeout)
        commit(n)
        adapt(offered: r.count, got: n)
        return n
    }
}

struct HTTPInboxFull: Error {}
