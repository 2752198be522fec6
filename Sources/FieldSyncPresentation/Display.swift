import FieldSyncCore
import FieldSyncReplica
import Foundation

// MARK: - Display

/// How values and times look to people: money in 元, 是/否, Chinese labels, times with their zone.
public enum Display {
    /// Display offset from FIELDSYNC_TZ (`+08:00`); UTC when unset.
    public static let offsetMinutes: Int = ProcessInfo.processInfo.environment["FIELDSYNC_TZ"].flatMap(UTCTime.parseOffset) ?? 0

    public static func time(_ ms: Int64) -> String { UTCTime.human(ms, offsetMinutes: offsetMinutes) }

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
        }
    }

    public static func printJSON(_ v: JSONValue) { print(v.prettyText) }
}
