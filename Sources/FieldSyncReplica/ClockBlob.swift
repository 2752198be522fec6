import FieldSyncCore

// MARK: - RowLogEntry

/// One change this replica logged for a record: its id and its place in `fs_change`.
package struct RowLogEntry: Equatable, Sendable {
    package var id: ChangeID
    package var seq: Int64

    package init(id: ChangeID, seq: Int64) {
        self.id = id
        self.seq = seq
    }
}

// MARK: - ClockBlob

/// Packs a record's merge metadata into the `_clock` column: the ``RowState`` minus the
/// winning values (which live in the columns), and the record's change list (which changes,
/// at which `fs_change.seq`), so that history and duplicate checks need no extra index.
///
/// Format 2, varints are unsigned LEB128:
///
///     02
///     sites:     n, n × site (u64 little-endian)           — each site id written once
///     dots:      n, n × (site#, counter, packed hlc)       — each change id written once
///     registers: n, n × (slot (u8, 255 = _deleted), entries,
///                        entries × (dot#, vector, flags, [value], [row context]))
///     log:       n, n × (site#, counter, seq)
///     vector  = n, n × (site#, counter)
///     flags   = 1: a value follows (registers holding several entries), 2: a row context follows
///     value   = 0 null | 1 zigzag integer | 2 length + UTF-8
///     row ctx = n, n × (field slot u8, vector)
package enum ClockBlob {
    static let deletedSlot: UInt8 = 255

    package static func encode(_ state: RowState, log: [RowLogEntry]) -> [UInt8] {
        var sites: [SiteID] = []
        var siteIndex: [UInt64: Int] = [:]
        func site(_ s: SiteID) -> Int {
            if let i = siteIndex[s.raw] { return i }
            siteIndex[s.raw] = sites.count
            sites.append(s)
            return sites.count - 1
        }
        var dots: [(Int, Int64, Int64)] = []
        var dotIndex: [ChangeID: Int] = [:]
        func dot(_ e: RegisterEntry) -> Int {
            if let i = dotIndex[e.dot] { return i }
            dotIndex[e.dot] = dots.count
            dots.append((site(e.dot.site), e.dot.counter, e.hlc.packed))
            return dots.count - 1
        }
        var body: [UInt8] = []
        body.reserveCapacity(96)
        func vector(_ v: VersionVector) {
            putVarint(&body, UInt64(v.count))
            for e in v.entries {
                putVarint(&body, UInt64(site(e.site)))
                putVarint(&body, UInt64(e.counter))
            }
        }
        let nonEmpty = state.registers.indices.filter { !state.registers[$0].isEmpty }
        putVarint(&body, UInt64(nonEmpty.count))
        for s in nonEmpty {
            let reg = state.registers[s]
            body.append(s == state.deletedSlot ? deletedSlot : UInt8(s))
            putVarint(&body, UInt64(reg.entries.count))
            let withValues = reg.entries.count > 1
            for e in reg.entries {
                putVarint(&body, UInt64(dot(e)))
                vector(e.context)
                var flags: UInt8 = withValues ? 1 : 0
                if e.rowContext != nil { flags |= 2 }
                body.append(flags)
                if withValues { putValue(&body, e.value) }
                if let rc = e.rowContext {
                    let items = rc.compactMap { k, v in state.kind.spec.fieldIndex(k).map { ($0, v) } }.sorted { $0.0 < $1.0 }
                    putVarint(&body, UInt64(items.count))
                    for (slot, v) in items {
                        body.append(UInt8(slot))
                        vector(v)
                    }
                }
            }
        }
        putVarint(&body, UInt64(log.count))
        for l in log {
            putVarint(&body, UInt64(site(l.id.site)))
            putVarint(&body, UInt64(l.id.counter))
            putVarint(&body, UInt64(l.seq))
        }
        var out: [UInt8] = [2]
        out.reserveCapacity(body.count + 16 + sites.count * 8 + dots.count * 12)
        putVarint(&out, UInt64(sites.count))
        for s in sites { putU64(&out, s.raw) }
        putVarint(&out, UInt64(dots.count))
        for (si, c, h) in dots {
            putVarint(&out, UInt64(si))
            putVarint(&out, UInt64(c))
            putVarint(&out, UInt64(bitPattern: h))
        }
        out.append(contentsOf: body)
        return out
    }

    /// Rebuilds the state and change list. `columns` are the stored winning values by field
    /// position and `deleted` the `_deleted` column: they give single-entry registers their value.
    package static func decode(_ bytes: UnsafeRawBufferPointer, kind: RecordKind, columns: [FieldValue], deleted: Bool) throws -> (RowState, [RowLogEntry]) {
        guard !bytes.isEmpty else { return (RowState(kind: kind), []) }
        var r = Reader(b: bytes)
        guard try r.u8() == 2 else { throw ReplicaError.storage("unknown _clock format in a \(kind.rawValue) row") }
        var sites: [SiteID] = []
        for _ in 0..<(try r.count()) { sites.append(SiteID(raw: try r.u64())) }
        func site() throws -> SiteID {
            let i = try r.count()
            guard i < sites.count else { throw ReplicaError.storage("corrupt _clock site reference") }
            return sites[i]
        }
        var dots: [(ChangeID, HybridTimestamp)] = []
        for _ in 0..<(try r.count()) {
            let s = try site()
            let c = Int64(try r.varint())
            dots.append((ChangeID(site: s, counter: c), HybridTimestamp(packed: Int64(bitPattern: try r.varint()))))
        }
        func vector() throws -> VersionVector {
            var items: [(SiteID, Int64)] = []
            for _ in 0..<(try r.count()) {
                let s = try site()
                items.append((s, Int64(try r.varint())))
            }
            return VersionVector(items)
        }
        let nFields = kind.spec.fields.count
        var registers = RowState(kind: kind).registers
        for _ in 0..<(try r.count()) {
            let rawSlot = try r.u8()
            let slot = rawSlot == deletedSlot ? nFields : Int(rawSlot)
            guard slot <= nFields else { throw ReplicaError.storage("corrupt _clock in a \(kind.rawValue) row") }
            let n = try r.count()
            var entries: [RegisterEntry] = []
            entries.reserveCapacity(n)
            for _ in 0..<n {
                let di = try r.count()
                guard di < dots.count else { throw ReplicaError.storage("corrupt _clock dot reference") }
                let ctx = try vector()
                let flags = try r.u8()
                var value: FieldValue
                if flags & 1 != 0 {
                    value = try r.value()
                } else {
                    value = slot == nFields ? .integer(deleted ? 1 : 0) : columns[slot]
                }
                if slot == nFields, value == .null { value = .integer(deleted ? 1 : 0) }
                var rowContext: [String: VersionVector]?
                if flags & 2 != 0 {
                    var rc: [String: VersionVector] = [:]
                    for _ in 0..<(try r.count()) {
                        let fs = Int(try r.u8())
                        let v = try vector()
                        if fs < nFields { rc[kind.spec.fields[fs].name] = v }
                    }
                    rowContext = rc
                }
                entries.append(RegisterEntry(dot: dots[di].0, hlc: dots[di].1, context: ctx, value: value, rowContext: rowContext))
            }
            registers[slot] = FieldRegister(entries: entries)
        }
        var log: [RowLogEntry] = []
        let nLog = try r.count()
        log.reserveCapacity(nLog)
        for _ in 0..<nLog {
            let s = try site()
            let c = Int64(try r.varint())
            log.append(RowLogEntry(id: ChangeID(site: s, counter: c), seq: Int64(try r.varint())))
        }
        return (RowState(kind: kind, registers: registers), log)
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

        /// A count or index: bounded by the bytes left, so corrupt data cannot ask for a huge loop.
        mutating func count() throws -> Int {
            let v = try varint()
            guard v <= UInt64(b.count) else { throw ReplicaError.storage("corrupt _clock count") }
            return Int(v)
        }

        mutating func value() throws -> FieldValue {
            switch try u8() {
            case 0: return .null
            case 1:
                let z = try varint()
                return .integer(Int64(bitPattern: (z >> 1) ^ (0 &- (z & 1))))
            case 2:
                let n = try count()
                guard i + n <= b.count else { throw ReplicaError.storage("truncated _clock text") }
                defer { i += n }
                return .text(String(decoding: UnsafeRawBufferPointer(rebasing: b[i..<(i + n)]), as: UTF8.self))
            default: throw ReplicaError.storage("corrupt _clock value tag")
            }
        }
    }
}
