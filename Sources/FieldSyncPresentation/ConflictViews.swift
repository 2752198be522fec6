import FieldSyncCore
import FieldSyncReplica

// MARK: - ConflictViews

/// How conflicts look to people (tables with Chinese labels, values side by side, diffs of long
/// notes) and to scripts (the JSON documented in docs/cli.md), for the laptop and the hub alike.
public enum ConflictViews {
    // MARK: JSON

    public static func json(_ c: ConflictInfo) -> JSONValue {
        .object(JSONObject([
            ("id", .string("\(c.row)/\(c.field)")), ("shortId", .string("\(RecordID.short(c.row))/\(c.field)")),
            ("kind", .string(c.kind.rawValue)), ("row", .string(c.row)), ("field", .string(c.field)),
            ("type", .string(c.type.rawValue)), ("village", c.village.map { .string($0) } ?? .null),
            ("since", .string(UTCTime.iso(c.since))),
            ("resolutionsCompeting", .bool(c.candidates.filter(\.isResolution).count > 1)),
            ("candidates", .array(c.candidates.map(candidateJSON))),
        ]))
    }

    static func candidateJSON(_ x: ConflictInfo.Candidate) -> JSONValue {
        var o: JSONObject = ["change": .string(x.change.description), "field": .string(x.field), "value": x.value,
                             "author": .string(x.author), "site": .string(x.site), "hlc": .string(x.hlc.description),
                             "time": .string(UTCTime.iso(x.hlc.millis)), "wins": .bool(x.wins), "isResolution": .bool(x.isResolution)]
        if let n = x.note { o["note"] = .string(n) }
        return .object(o)
    }

    public static func json(_ d: ConflictDetail) -> JSONValue {
        var o = json(d.info).objectValue!
        o["record"] = d.record.json
        o["base"] = d.base.map { .array($0.map(candidateJSON)) } ?? .null
        o["why"] = .string(d.why)
        o["winnerAheadByMs"] = d.winnerAheadBy.map { .int($0) } ?? .null
        return .object(o)
    }

    // MARK: Tables

    public static func listTable(_ list: [ConflictInfo]) -> String {
        if list.isEmpty { return "没有未解决的冲突 no open conflicts" }
        var t = TextTable(["冲突", "类型", "记录", "村", "字段", "胜出值", "其他值", "发生于"])
        for c in list {
            let winner = c.candidates.first(where: \.wins)
            let others = c.candidates.filter { !$0.wins }
            func show(_ x: ConflictInfo.Candidate) -> String {
                let label = x.field == c.field || c.type == .concurrentValues ? "" : Display.fieldLabel(c.kind, x.field) + "="
                return label + Width.clip(Display.value(x.value, c.kind.spec.field(x.field)), 20) + " (\(x.author)@\(x.site))"
            }
            let type = c.type == .deleteVersusEdit ? "删除与修改" : c.candidates.filter(\.isResolution).count > 1 ? "处理决定冲突" : "同时修改"
            t.add([RecordID.short(c.row) + "/" + c.field, type, c.kind.spec.label, c.village ?? "—", Display.fieldLabel(c.kind, c.field),
                   winner.map(show) ?? "—", others.map(show).joined(separator: " | "), Display.time(c.since)])
        }
        return t.render() + "\n共 \(list.count) 个未解决冲突；胜出值在每个副本上相同 (winner: later clock, then larger site id)"
    }

    /// One conflict in full: the candidates side by side, where they started, who wins and why,
    /// the difference for long text, and how to settle it.
    public static func detail(_ d: ConflictDetail, now: Int64, command: String) -> String {
        let c = d.info
        let kind = c.kind
        var out: [String] = []
        let id = "\(RecordID.short(c.row))/\(c.field)"
        out.append("冲突 \(id) · \(kind.spec.label) \(c.row) · 村(社区) \(c.village ?? "—")")
        let days = max(0, now - c.since) / 86_400_000
        let type = c.type == .deleteVersusEdit ? "删除与修改 (delete versus edit)"
            : c.candidates.filter(\.isResolution).count > 1 ? "两个处理决定互相冲突 (competing resolutions)" : "同时修改 (concurrent edits)"
        out.append("字段 \(Display.fieldLabel(kind, c.field)) (\(c.field)) · \(type) · 发生于 \(Display.time(c.since))，已 \(days) 天")
        if d.record.deleted { out.append("记录目前为已删除状态") }
        if let base = d.base {
            for b in base {
                out.append("共同起点 base: \(Width.clip(Display.value(b.value, kind.spec.field(b.field)), 60)) — \(b.author) @ \(b.site), \(Display.time(b.hlc.millis))")
            }
        } else if c.type == .concurrentValues {
            out.append("共同起点 base: 本机历史中没有 (not in this replica's history)")
        }
        var t = TextTable([""] + c.candidates.indices.map { "[\($0 + 1)]" + (c.candidates[$0].wins ? " ← 胜出" : "") })
        t.add(["值 value"] + c.candidates.map { x in
            let field = kind.spec.field(x.field)
            let v = Width.clip(Display.value(x.value, field), 28)
            return c.type == .deleteVersusEdit ? (x.field == RowState.deletedField ? "删除记录" : "修改 \(Display.fieldLabel(kind, x.field))=\(v)") : v
        })
        t.add(["作者 author"] + c.candidates.map(\.author))
        t.add(["设备 device"] + c.candidates.map(\.site))
        t.add(["时间 time"] + c.candidates.map { Display.time($0.hlc.millis) })
        t.add(["变更 change"] + c.candidates.map { String($0.change.site.hex.prefix(8)) + "…:\($0.change.counter)" })
        if c.candidates.contains(where: { $0.note != nil }) { t.add(["备注 note"] + c.candidates.map { Width.clip($0.note ?? "—", 28) }) }
        out.append(t.render())
        out.append("为什么胜出 why: \(d.why)")
        // Long text: show what each candidate changed, sentence by sentence.
        if let field = kind.spec.field(c.field), field.type == .longText || field.type == .text(maxLength: 500) {
            let from = d.base?.first?.value.stringValue
            for (i, x) in c.candidates.enumerated() {
                guard let text = x.value.stringValue else { continue }
                let against = from ?? (i == 0 ? nil : c.candidates[0].value.stringValue)
                guard let a = against, !a.utf8.elementsEqual(text.utf8) else { continue }
                out.append("[\(i + 1)] 相对\(from != nil ? "共同起点" : "[1]")的改动 (changes against \(from != nil ? "the base" : "[1]")):")
                out += TextDiff.render(TextDiff.diff(a, text)).map { "    " + $0 }
            }
        }
        var how = "处理 resolve: \(command) \(id) --take N"
        if c.type == .concurrentValues { how += " | --value JSON" }
        how += " | --take-newest | --take-oldest   (N 为上面的候选编号 candidate number)"
        if c.type == .deleteVersusEdit { how += "\n    --take 删除的编号 = 确认删除；--take 某条修改的编号 = 恢复记录并保留修改" }
        out.append(how)
        return out.joined(separator: "\n")
    }

    public static func summary(_ s: ConflictSummary) -> String {
        var out = ["未解决冲突 open conflicts: \(s.total)" + (s.oldestSince.map { "，最早发生于 \(Display.time($0))" } ?? "")
                   + (s.medianAgeMs.map { "，中位时长 \(String(format: "%.1f", Double($0) / 86_400_000)) 天" } ?? "")]
        guard s.total > 0 else { return out[0] }
        var k = TextTable(["类型 kind", "冲突数"])
        for x in s.byKind { k.add([x.kind.spec.label, String(x.count)]) }
        var v = TextTable(["村(社区) village", "冲突数"])
        for x in s.byVillage { v.add([x.village, String(x.count)]) }
        var f = TextTable(["字段 field", "冲突数"])
        for x in s.byField { f.add(["\(x.kind.spec.label)·\(Display.fieldLabel(x.kind, x.field))", String(x.count)]) }
        var a = TextTable(["已持续 open for", "冲突数"])
        let labels = ["<1d": "不到 1 天", "1-7d": "1–7 天", "7-30d": "7–30 天", ">30d": "30 天以上"]
        for x in s.ageBuckets { a.add([labels[x.label] ?? x.label, String(x.count)]) }
        out += [k.render(), v.render(), f.render(), a.render()]
        return out.joined(separator: "\n\n")
    }

    /// The candidate a person means by `N` (its number in `conflicts show`) or by a change id
    /// (or a unique prefix of it).
    public static func pick(_ text: String, in c: ConflictInfo) throws -> ChangeID {
        let ids = Set(c.candidates.map(\.change.description)).sorted().joined(separator: ", ")
        // Up to three digits is a candidate's number, never the start of a change id ("9" must not
        // pick a change whose site id happens to begin with 9).
        if text.count <= 3, let n = Int(text) {
            guard n >= 1, n <= c.candidates.count else {
                throw ReplicaError.invalidInput(InputError("--take", "there is no candidate \(n): give its number 1–\(c.candidates.count) or its change id (\(ids))"))
            }
            return c.candidates[n - 1].change
        }
        // One edit of several fields is several candidates with one change id.
        let matches = text.count < 4 ? [] : Array(Set(c.candidates.map(\.change).filter { $0.description.hasPrefix(text) }))
        guard matches.count == 1 else {
            throw ReplicaError.invalidInput(InputError("--take", "\"\(text.prefix(40))\" is not one candidate: give its number 1–\(c.candidates.count) or its change id, at least 4 characters of it (\(ids))"))
        }
        return matches[0]
    }
}
