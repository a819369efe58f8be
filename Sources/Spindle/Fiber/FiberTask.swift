// FiberTask: a fiber with a typed body and result, kept in FiberCore's untyped payload.
// UNSAFE FILE: the payload words are raw memory (see FiberCore's payload notes).

/// A fiber with a typed body and result.
///
/// Why untyped storage: in code that is not specialized for `Value` (this module's own
/// copy of any generic method, and every deinit), touching a `Value?` or a
/// `Result<Value, Error>` field makes the Swift runtime look up that type's metadata in a
/// global cache, every time. Measured: those lookups were half the cost of spawning a
/// fiber (~1,100 → ~500 ns). So FiberTask has no stored properties: the body and the
/// result live in FiberCore's `payload` words, and everything that knows `Value` is
/// inlinable (specialized where the value type is known) or one of the three closures
/// created in `init`, which capture nothing and so cost no allocation once specialized.
@usableFromInline
final class FiberTask<Value: Sendable>: FiberCore, @unchecked Sendable {
    // SAFETY (@unchecked Sendable): see FiberCore's note and `payloadState`.
    @usableFromInline typealias Body = () throws -> Value

    /// A value this small lives in the payload itself; larger ones are boxed.
    @inlinable static var valueIsInline: Bool {
        MemoryLayout<Value>.size <= 32 && MemoryLayout<Value>.alignment <= 8
    }

    @inlinable
    init(name: String?, stackSize: Int?, body: @escaping Body) {
        super.init(name: name, stackSize: stackSize, run: { core in
            let body = core.withPayload { p -> Body in
                core.payloadState = 0
                return p.assumingMemoryBound(to: Body.self).move()
            }
            do {
                FiberTask<Value>.store(value: try body(), in: core)
            } catch {
                FiberTask<Value>.store(error: error, in: core)
            }
            // `body` (and whatever it captured) is released here, still on the fiber's
            // stack, before control leaves the fiber for the last time.
        }, abandon: { core, error in
            FiberTask<Value>.destroy(core)
            FiberTask<Value>.store(error: error, in: core)
        }, destroyPayload: { core in
            FiberTask<Value>.destroy(core)
        })
        withPayload { p in
            // SAFETY: 32 bytes, 8-aligned; a closure is two words.
            _ = p.initializeMemory(as: Body.self, repeating: body, count: 1)
        }
        payloadState = 1
    }

    @inlinable
    static func store(value: Value, in core: FiberCore) {
        core.withPayload { p in
            if valueIsInline {
                _ = p.initializeMemory(as: Value.self, repeating: value, count: 1)
            } else {
                let box = UnsafeMutablePointer<Value>.allocate(capacity: 1)
                box.initialize(to: value)
                p.storeBytes(of: box, as: UnsafeMutablePointer<Value>.self)
            }
        }
        core.payloadState = 2
    }

    @inlinable
    static func store(error: any Error, in core: FiberCore) {
        core.withPayload { p in _ = p.initializeMemory(as: (any Error).self, repeating: error, count: 1) }
        core.payloadState = 3
    }

    @inlinable
    static func destroy(_ core: FiberCore) {
        core.withPayload { p in
            switch core.payloadState {
            case 1: p.assumingMemoryBound(to: Body.self).deinitialize(count: 1)
            case 2:
                if valueIsInline {
                    p.assumingMemoryBound(to: Value.self).deinitialize(count: 1)
                } else {
                    let box = p.load(as: UnsafeMutablePointer<Value>.self)
                    box.deinitialize(count: 1)
                    box.deallocate()
                }
            case 3: p.assumingMemoryBound(to: (any Error).self).deinitialize(count: 1)
            default: break
            }
        }
        core.payloadState = 0
    }

    /// The result, once `isFinished` is true.
    @inlinable
    func finishedResult() -> Result<Value, any Error> {
        withPayload { p in
            switch payloadState {
            case 2:
                if FiberTask<Value>.valueIsInline { return .success(p.assumingMemoryBound(to: Value.self).pointee) }
                return .success(p.load(as: UnsafeMutablePointer<Value>.self).pointee)
            case 3:
                return .failure(p.assumingMemoryBound(to: (any Error).self).pointee)
            default:
                fatalError("Spindle fatal: fiber result read before it finished")
            }
        }
    }
}
