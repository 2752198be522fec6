import FieldSyncCore

// MARK: - ClockBlob

/// Packs a record's merge metadata (``RowState`` minus the winning values, which live in the
/// columns) into the `_clock` column, and unpacks it.
///
/// Format v1, little-endian, varints are unsigned LEB128:
/// `01` then per non-empty register: slot (u8, 255 = `_deleted`), entry count (u8), then per
/// entry: site (u64), counter, packed hlc, context length and (site u64, counter) pairs, a flag
/// byte (1 = value follows, 2 = row context follows), the value when the register holds more
/// than one entry (tag 0 null, 1 integer as zigzag varint, 2 text as length + UTF-8), and a
/// delete's row context (count, then slot + context per field).
enum ClockBlob {
    static let deletedSlot: UInt8 = 255

    static func encode(_ state: RowState) -> [UInt8] {
        var out: [UInt8] = [1]
        out.reserveCapacity(64)
        for s in state.registers.indices where !state.registers[s].isEmpty {
            let reg = state.registers[s]
            out.append(s == state.deletedSlot ? deletedSlot : UInt8(s))
            out.append(UInt8(min(reg.entries.count, 255)))
            let withValues = reg.entries.count > 1
            for e in reg.entries.prefix(255) {
                putU64(&out, e.dot.site.raw)
                putVarint(&out, UInt64(e.dot.counter))
                putVarint(&out, UInt64(bitPattern: e.hlc.packed))
                putVector(&out, e.context)
                var flags: UInt8 = withValues ? 1 : 0
                if e.rowContext != nil { flags |= 2 }
                out.append(flags)
                if withValues { putValue(&out, e.value) }
                if let rc = e.rowContext {
                    let items = rc.compactMap { k, v in state.kind.spec.fieldIndex(k).map { ($0, v) } }.sorted { $0.0 < $1.0 }
                    putVarint(&out, UInt64(items.count))
                    for (slot, v) in items {
                        out.append(UInt8(slot))
                        putVector(&out, v)
                    }
                }
            }
        }
        return out
    }

    /// Rebuilds the state. `columns` are the stored winning values by field position, and
    /// `deleted` the `_deleted` column; they supply the value of single-entry registers.
    static func decode(_ bytes: UnsafeRawBufferPointer, kind: RecordKind, columns: [FieldValue], deleted: Bool) throws -> RowState {
        var state = RowState(kind: kind)
        guard !bytes.isEmpty else { return state }
        var r = Reader(b: bytes)
        guard try r.u8() == 1 else { throw ReplicaError.storage("unknown _clock format in a \(kind.rawValue) row") }
        var registers = state.registers
        let nFields = kind.spec.fields.count
        while !r.atEnd {
            let rawSlot = try r.u8()
            let slot = rawSlot == deletedSlot ? nFields : Int(rawSlot)
            guard slot <= nFields else { throw ReplicaError.storage("corrupt _clock in a \(kind.rawValue) row") }
            let n = Int(try r.u8())
            var entries: [RegisterEntry] = []
            entries.reserveCapacity(n)
            for _ in 0..<n {
                let site = SiteID(raw: try r.u64())
                let counter = Int64(try r.varint())
                let hlc = HybridTimestamp(packed: Int64(bitPattern: try r.varint()))
                let ctx = try r.vector()
                let flags = try r.u8()
                var value: FieldValue
                if flags & 1 != 0 {
                    value = try r.value()
                } else if slot == nFields {
                    value = .integer(deleted ? 1 : 0)
                } else {
                    value = columns[slot]
                }
                var rowContext: [String: VersionVector]?
                if flags & 2 != 0 {
                    var rc: [String: VersionVector] = [:]
                    for _ in 0..<(try r.varint()) {
                        let fs = Int(try r.u8())
                        let v = try r.vector()
                        if fs < nFields { rc[kind.spec.fields[fs].name] = v }
                    }
                    rowContext = rc
                }
                if slot == nFields, value == .null { value = .integer(deleted ? 1 : 0) }
                entries.append(RegisterEntry(dot: ChangeID(site: site, counter: counter), hlc: hlc, context: ctx, value: value, rowContext: rowContext))
            }
            registers[slot] = FieldRegister(entries: entries)
        }
        state = RowState(kind: kind, registers: registers)
        return state
    }

    // MARK: Primitives

    static func putU64(_ out: inout [UInt8], _ v: UInt64) {
        for k in 0..<8 { out.append(UInt8(truncatingIfNeeded: v >> (8 * UInt64(k)))) }
    }

    static func putVarint(_ out: inout [UInt8], _ v: UInt64) {
        var v = v
        while v >= 0x80 {
            out.append(UInt8(v & 0x7F) | 0x80)
            v >>= 7
        }
        out.append(UInt8(v))
    }

    static func putVector(_ out: inout [UInt8], _ v: VersionVector) {
        putVarint(&out, UInt64(v.count))
        for e in v.entries {
            putU64(&out, e.site.raw)
            putVarint(&out, UInt64(e.counter))
        }
    }

    static func putValue(_ out: inout [UInt8], _ v: FieldValue) {
        switch v {
        case .null: out.append(0)
        case .integer(let i):
            out.append(1)
            putVarint(&out, UInt64(bitPattern: (i << 1) ^ (i >> 63)))
        case .text(let s):
            out.append(2)
            putVarint(&out, UInt64(s.utf8.count))
            out.append(contentsOf: s.utf8)
        }
    }

    struct Reader {
        let b: UnsafeRawBufferPointer
        var i = 0
        var atEnd: Bool { i >= b.count }

        mutating func u8() throws -> UInt8 {
            guard i < b.count else { throw ReplicaError.storage("truncated _clock metadata") }
            defer { i += 1 }
            return b[i]
        }

        mutating func u64() throws -> UInt64 {
            guard i + 8 <= b.count else { throw ReplicaError.storage("truncated _clock metadata") }
            var v: UInt64 = 0
            for k in 0..<8 { v |= UInt64(b[i + k]) << (8 * UInt64(k)) }
            i += 8
            return v
        }

        mutating func varint() throws -> UInt64 {
            var v: UInt64 = 0
            var shift: UInt64 = 0
            while true {
                let c = try u8()
                v |= UInt64(c & 0x7F) << shift
                if c & 0x80 == 0 { return v }
                shift += 7
                guard shift < 64 else { throw ReplicaError.storage("corrupt _clock varint") }
            }
        }

        mutating func vector() throws -> VersionVector {
            let n = try varint()
            var items: [(SiteID, Int64)] = []
            for _ in 0..<n { items.append((SiteID(raw: try u64()), Int64(try varint()))) }
            return VersionVector(items)
        }

        mutating func value() throws -> FieldValue {
            switch try u8() {
            case 0: return .null
            case 1:
                let z = try varint()
                return .integer(Int64(bitPattern: (z >> 1) ^ (0 &- (z & 1))))
            case 2:
                let n = Int(try varint())
                guard i + n <= b.count else { throw ReplicaError.storage("truncated _clock text") }
                defer { i += n }
                return .text(String(decoding: UnsafeRawBufferPointer(rebasing: b[i..<(i + n)]), as: UTF8.self))
            default: throw ReplicaError.storage("corrupt _clock value tag")
            }
        }
    }
}
