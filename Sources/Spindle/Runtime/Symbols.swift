// Backtraces and their names, for stall reports (and, later, fiber dumps): a thread's
// return addresses taken by a signal (Stall.c), then dladdr or the file's symbol table for
// the symbol and object, Swift's demangler for the readable name. Runs on the Monitor's
// thread, never in a signal handler. UNSAFE FILE: C strings from dladdr and the
// demangler, a raw buffer the capture fills.
import CSpindle
#if canImport(Glibc)
import Glibc
#endif

enum Symbols {
    /// The return addresses of `thread` (a pthread_t) where it is now, innermost first,
    /// taken on that thread by a signal (Stall.c); nil if it did not answer within 50 ms.
    static func backtrace(ofThread thread: UInt) -> [UInt]? {
        capture(thread)?.frames
    }

    /// The same, with the name of the fiber the thread was running (nil: not in a fiber;
    /// "?" for an unnamed one).
    static func capture(_ thread: UInt) -> (frames: [UInt], fiber: String?)? {
        if thread == 0 { return nil }
        var frames = [UInt](repeating: 0, count: 64)
        var name = [CChar](repeating: 0, count: 64)
        let n = frames.withUnsafeMutableBufferPointer { b in
            name.withUnsafeMutableBufferPointer { nb in
                // SAFETY: the capture writes at most `b.count` words into `b` and at most
                // `nb.count` bytes (NUL included) into `nb`, synchronously.
                Int(spindle_stall_capture(UInt64(thread), b.baseAddress!, Int32(b.count), 50_000_000,
                                          nb.baseAddress, nb.count))
            }
        }
        if n < 0 { return nil }
        let fiber = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return (Array(frames.prefix(n)), fiber.isEmpty ? nil : fiber)
    }

    /// "Module.function(args) + 0x1c (libfoo.so)" or the bare address when unknown.
    /// `isReturnAddress`: look up the call instruction before it (a return address may
    /// be the first byte of the next function).
    static func describe(_ address: UInt, isReturnAddress: Bool) -> String {
        let lookup = isReturnAddress && address > 0 ? address - 1 : address
        var name = [CChar](repeating: 0, count: 1024)
        var file: UnsafePointer<CChar>?
        var start: UInt = 0
        let hex = "0x" + String(address, radix: 16)
        guard spindle_symbolize(lookup, &name, name.count, &file, &start) != 0 else { return hex }
        // SAFETY: dladdr's file name belongs to the loaded object, alive while it is
        // loaded (the runtime's and the program's own objects, never unloaded here).
        let object = file.map { String(cString: $0) }.map { $0.split(separator: "/").last.map(String.init) ?? $0 } ?? "?"
        let raw = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        if raw.isEmpty { return "\(hex) (\(object))" }
        let symbol = demangle(raw)
        return "\(symbol) + 0x\(String(address - start, radix: 16)) (\(object))"
    }

    /// A Swift symbol's readable form; other names as they are.
    static func demangle(_ mangled: String) -> String {
        guard mangled.hasPrefix("$s") || mangled.hasPrefix("_$s") || mangled.hasPrefix("$S") else { return mangled }
        return mangled.withCString { p -> String in
            guard let out = swift_demangle(p, strlen(p), nil, nil, 0) else { return mangled }
            // SAFETY: the demangler returns a malloc'd NUL-terminated string we own.
            defer { free(out) }
            return String(cString: out)
        }
    }
}
