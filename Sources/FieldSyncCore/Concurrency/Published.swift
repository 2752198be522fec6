import Synchronization

// MARK: - Published

/// A value read on hot paths without a lock and replaced rarely (the schema a process holds,
/// statements built from it). Each value published is kept for good — a reader may still hold
/// the one before — which costs nothing for values replaced a handful of times in a process's
/// life and must not be used for values replaced often.
public final class Published<Value: Sendable>: Sendable {
    private final class Box: Sendable {
        let value: Value
        init(_ value: Value) { self.value = value }
    }

    private let raw: Atomic<UInt>

    public init(_ value: Value) { raw = Atomic(Self.retained(value)) }

    public var value: Value {
        Unmanaged<Box>.fromOpaque(UnsafeRawPointer(bitPattern: raw.load(ordering: .acquiring))!).takeUnretainedValue().value
    }

    public func publish(_ value: Value) { raw.store(Self.retained(value), ordering: .releasing) }

    private static func retained(_ value: Value) -> UInt { UInt(bitPattern: Unmanaged.passRetained(Box(value)).toOpaque()) }
}
