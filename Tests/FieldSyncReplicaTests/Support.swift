import FieldSyncCore
@testable import FieldSyncReplica
import Foundation
import Testing
@_exported import FieldSyncTestSupport

func makeReplica(_ dir: TempDir, _ name: String, author: String = "测试员", clock: ManualClock? = nil) throws -> Replica {
    let r = try Replica.create(path: dir.file("\(name).sqlite"), siteName: name, author: author)
    if let clock { r.wallClock = { clock.ms } }
    return r
}

/// Every change `from` holds, decoded, in its local order (not those whose text it pruned).
func allChanges(_ r: Replica) throws -> [Change] {
    try r.read { db in
        try String.fetchAll(db, sql: "SELECT body FROM fs_change WHERE body != '' ORDER BY seq").map { try ChangeCodec.decode(JSONValue.parse($0)) }
    }
}

/// Sends everything `from` has to `to`, with the site names a bundle's header would carry.
@discardableResult
func sync(_ from: Replica, _ to: Replica) throws -> ApplyReport {
    try to.noteSites(from.knownSiteNames())
    return try to.apply(allChanges(from))
}

let village1 = "520221105201"
let village2 = "520221105202"

func disputeInput(_ village: String = village1, status: String = "受理", parties: String = "张三与李四") -> JSONObject {
    JSONObject([
        ("village", .string(village)), ("category", "邻里纠纷"), ("parties", .string(parties)),
        ("summary", "因宅基地边界发生争执，双方多次协商未果。"), ("reported_on", "2026-11-20"), ("status", .string(status)),
    ])
}

/// A canonical picture of everything a replica holds: records, their registers and conflicts.
func snapshot(_ r: Replica) throws -> [String] {
    var out: [String] = []
    for k in RecordKind.allCases {
        for rec in try r.records(k, includeDeleted: true) {
            let state = try r.rowState(k, rec.id)!
            let regs = state.registers.enumerated().map { i, reg in
                "\(state.fieldName(i))=" + reg.entries.map { "\($0.dot)→\($0.value)" }.joined(separator: "|")
            }
            out.append("\(k.rawValue) \(rec.id) deleted=\(rec.deleted) " + regs.joined(separator: " ")
                       + " conflicts=" + state.conflicts.map { "\($0.field):\($0.dots.map(\.description).joined(separator: ","))" }.joined(separator: ";"))
        }
    }
    return out.sorted()
}

