// MARK: - HybridTimestamp

/// A hybrid logical clock reading: wall-clock milliseconds plus a counter for events
/// within one millisecond.
///
/// Written `MILLIS-COUNTER` on the wire (`1763784245123-0`), packed as `millis << 16 | counter`
/// in SQLite. Readings from different replicas compare by (millis, counter).
public struct HybridTimestamp: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let millis: Int64
    public let counter: UInt16

    public static let zero = HybridTimestamp(millis: 0, counter: 0)
    /// The largest millisecond value that fits the packed form (year 10889).
    public static let maxMillis: Int64 = (1 << 47) - 1

    public init(millis: Int64, counter: UInt16) {
        self.millis = millis
        self.counter = counter
    }

    public init(packed: Int64) {
        millis = packed >> 16
        counter = UInt16(truncatingIfNeeded: packed)
    }

    public var packed: Int64 { millis << 16 | Int64(counter) }

    public init?(_ text: String) {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2, let ms = Int64(parts[0]), let c = UInt16(parts[1]),
            ms >= 0, ms <= Self.maxMillis,
            parts.allSatisfy({ p in p.utf8.allSatisfy { (0x30...0x39).contains($0) } && (p.count == 1 || p.first != "0") })
        else { return nil }
        self.init(millis: ms, counter: c)
    }

    public var description: String { "\(millis)-\(counter)" }

    public static func < (a: HybridTimestamp, b: HybridTimestamp) -> Bool {
        a.millis != b.millis ? a.millis < b.millis : a.counter < b.counter
    }
}

// MARK: - HybridLogicalClock

/// A replica's hybrid logical clock, with a bound on how far peers may push it.
///
/// A write that has seen another always gets a later reading (the receive rule), *unless*
/// the other reading lies more than `maxDrift` beyond this machine's wall clock: such a
/// reading is kept and merged like any other, but it does not drag this clock into the
/// future. That is the rule for a laptop whose clock is a year fast: its edits are never
/// lost, yet it cannot make every other replica stamp its edits a year ahead.
///
///     var clock = HybridLogicalClock(maxDrift: 3_600_000)
///     let t = clock.tick(wall: 1_763_784_245_123)
public struct HybridLogicalClock: Sendable {
    /// One hour: laptops without network time drift minutes a month, not hours.
    public static let defaultMaxDrift: Int64 = 3_600_000

    public private(set) var last: HybridTimestamp
    public let maxDrift: Int64

    public init(last: HybridTimestamp = .zero, maxDrift: Int64 = defaultMaxDrift) {
        self.last = last
        self.maxDrift = maxDrift
    }

    /// The reading for a new local event.
    public mutating func tick(wall: Int64) -> HybridTimestamp {
        let wall = min(max(wall, 0), HybridTimestamp.maxMillis)
        if wall > last.millis {
            last = HybridTimestamp(millis: wall, counter: 0)
        } else if last.counter == UInt16.max {
            // At the very end of the range the reading stays put rather than leave it.
            if last.millis < HybridTimestamp.maxMillis { last = HybridTimestamp(millis: last.millis + 1, counter: 0) }
        } else {
            last = HybridTimestamp(millis: last.millis, counter: last.counter + 1)
        }
        return last
    }

    /// Takes note of a reading from another replica. When it lies beyond the drift bound, returns
    /// how far ahead of this machine's wall clock it is (in milliseconds); nil when within bounds.
    @discardableResult
    public mutating func observe(_ remote: HybridTimestamp, wall: Int64) -> Int64? {
        let bound = wall + maxDrift
        if remote.millis > bound {
            let capped = HybridTimestamp(millis: min(bound, HybridTimestamp.maxMillis), counter: 0)
            if capped > last { last = capped }
            return remote.millis - wall
        }
        if remote > last { last = remote }
        return nil
    }
}
