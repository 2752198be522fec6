import FieldSyncCore
import FieldSyncReplica
import Foundation

// MARK: - Display

/// How values and times look to people: money in 元, 是/否, Chinese labels, times with their zone.
public enum Display {
    /// The zone people read times in: `FIELDSYNC_TZ` as an IANA name (`Asia/Shanghai`,
    /// `Asia/Urumqi`, `UTC`) or an offset (`+08:00`); Asia/Shanghai when unset. Times are stored
    /// in UTC everywhere; only what people read is shifted, always with the zone named.
    public static let zone: DisplayZone = {
        let env = ProcessInfo.processInfo.environment["FIELDSYNC_TZ"] ?? ""
        return env.isEmpty ? .shanghai : (DisplayZone(env) ?? .shanghai)
    }()

    /// The zone's offset from UTC now, in minutes.
    public static var offsetMinutes: Int { zone.offsetMinutes(at: Int64(Date().timeIntervalSince1970 * 1000)) }

    /// `2026-11-22 12:04:05 Asia/Shanghai`
    public static func time(_ ms: Int64) -> String { zone.human(ms) }

    /// How pages and tables name the zone: `Asia/Shanghai (UTC+08:00)`.
    public static var zoneLabel: String { zone.label }

    /// Today's date in the zone, `YYYY-MM-DD`.
    public static func today(_ nowMs: Int64) -> String { String(zone.human(nowMs).prefix(10)) }

    public static func value(_ v: FieldValue, _ field: FieldSpec?) -> String {
        guard let field else {
            // _deleted
            return v == .integer(1) ? "已删除" : "正常"
        }
        switch (field.type, v) {
        case (_, .null): return "—"
        case (.money, .integer(let fen)): return yuan(fen)
        case (.bool, .integer(let b)): return b != 0 ? "是" : "否"
        case (.choices, .text):
            if case .array(let items) = field.encode(v) { return items.compactMap(\.stringValue).joined(separator: "、") }
            return v.description
        default: return v.description
        }
    }

    public static func value(_ json: JSONValue, _ field: FieldSpec?) -> String {
        guard let field else { return json == .bool(true) ? "已删除" : "正常(恢复)" }
        return (try? field.decode(json)).map { value($0, field) } ?? json.compactText
    }

    /// 123456 分 → "1,234.56 元"
    public static func yuan(_ fen: Int64) -> String {
        let neg = fen < 0
        let a = abs(fen)
        var whole = String(a / 100)
        var groups: [String] = []
        while whole.count > 3 {
            groups.insert(String(whole.suffix(3)), at: 0)
            whole = String(whole.dropLast(3))
        }
        groups.insert(whole, at: 0)
        let cents = a % 100
        return (neg ? "-" : "") + groups.joined(separator: ",") + "." + (cents < 10 ? "0" : "") + String(cents) + " 元"
    }

    public static func fieldLabel(_ kind: RecordKind, _ name: String) -> String {
        switch name {
        case RowState.deletedField: return "删除状态"
        case RowState.recordConflictField: return "整条记录(删除与修改)"
        default: return kind.spec.field(name)?.label ?? name
        }
    }

    /// How tables name a record: its last 8 digits, which `record get` accepts.
    public static func short(_ id: String) -> String { RecordID.short(id) }

    public static func status(_ s: HistoryEntry.Status) -> String {
        switch s {
        case .current: return "当前值"
        case .competing: return "冲突中"
        case .superseded: return "已被覆盖"
        case .pruned: return "已清理（内容存于同步中心）"
        }
    }

    public static func printJSON(_ v: JSONValue) { print(v.prettyText) }
}

// MARK: - DisplayZone

/// A time zone for people: an IANA name (with its rules, daylight saving included) or a fixed offset.
public struct DisplayZone: Sendable {
    public let name: String
    let fixedMinutes: Int?
    let zone: TimeZone?

    public static let shanghai = DisplayZone("Asia/Shanghai")!

    /// An IANA name or an offset such as `+08:00`; nil when it is neither.
    public init?(_ text: String) {
        if let m = UTCTime.parseOffset(text) {
            name = UTCTime.zoneName(m)
            fixedMinutes = m
            zone = nil
        } else if let tz = TimeZone(identifier: text), text.contains("/") || text == "UTC" {
            name = text
            fixedMinutes = nil
            zone = tz
        } else if text == "Asia/Shanghai" || text == "PRC" {
            // China has kept UTC+8 without daylight saving since 1991.
            name = "Asia/Shanghai"
            fixedMinutes = 480
            zone = nil
        } else {
            return nil
        }
    }

    public func offsetMinutes(at ms: Int64) -> Int {
        if let fixedMinutes { return fixedMinutes }
        return (zone?.secondsFromGMT(for: Date(timeIntervalSince1970: Double(ms) / 1000)) ?? 0) / 60
    }

    public func human(_ ms: Int64) -> String {
        let local = UTCTime.human(ms, offsetMinutes: offsetMinutes(at: ms))
        guard fixedMinutes == nil || name == "Asia/Shanghai" else { return local }
        // "… UTC+08:00" → "… Asia/Shanghai"
        return String(local.prefix(19)) + " " + name
    }

    public var label: String {
        let m = offsetMinutes(at: Int64(Date().timeIntervalSince1970 * 1000))
        return fixedMinutes != nil && name != "Asia/Shanghai" ? name : "\(name) (\(UTCTime.zoneName(m)))"
    }
}
