// MARK: - TextDiff

/// A diff of two texts by sentence, for showing competing versions of long notes.
///
/// Chinese notes rarely have line breaks, so the unit is the sentence: text is cut after
/// 。！？；!?; and line breaks. Unchanged runs are kept so a renderer can fold them.
///
///     TextDiff.diff("甲。乙。丙。", "甲。乙改。丙。")
///     // [.same("甲。"), .removed("乙。"), .added("乙改。"), .same("丙。")]
public enum TextDiff {
    public enum Line: Equatable, Sendable {
        case same(String)
        case removed(String)
        case added(String)
    }

    /// Sentences of `text`, each with its ending punctuation; concatenated they give back `text` exactly.
    public static func sentences(_ text: String) -> [String] {
        var out: [String] = []
        var current = ""
        for ch in text {
            current.append(ch)
            if "。！？；!?;\n".contains(ch) || ch == "\r\n" {
                out.append(current)
                current = ""
            }
        }
        if !current.isEmpty { out.append(current) }
        return out
    }

    /// The longest-common-subsequence diff of two texts' sentences (texts of up to 3,000 sentences
    /// each; beyond that, the differing middle is shown as removed then added).
    public static func diff(_ a: String, _ b: String) -> [Line] {
        let x = sentences(a), y = sentences(b)
        // Common prefix and suffix first: most edits touch one place.
        var p = 0
        while p < x.count && p < y.count && x[p].utf8.elementsEqual(y[p].utf8) { p += 1 }
        var s = 0
        while s < x.count - p && s < y.count - p && x[x.count - 1 - s].utf8.elementsEqual(y[y.count - 1 - s].utf8) { s += 1 }
        let xm = Array(x[p..<(x.count - s)]), ym = Array(y[p..<(y.count - s)])
        var out = x[0..<p].map { Line.same($0) }
        if xm.count * ym.count > 9_000_000 {
            out += xm.map { .removed($0) } + ym.map { .added($0) }
        } else {
            out += lcs(xm, ym)
        }
        out += x[(x.count - s)...].map { .same($0) }
        return out
    }

    static func lcs(_ x: [String], _ y: [String]) -> [Line] {
        let n = x.count, m = y.count
        guard n > 0 || m > 0 else { return [] }
        // table[i][j] = LCS length of x[i...] and y[j...]
        var table = [Int32](repeating: 0, count: (n + 1) * (m + 1))
        for i in stride(from: n - 1, through: 0, by: -1) {
            for j in stride(from: m - 1, through: 0, by: -1) {
                table[i * (m + 1) + j] = x[i].utf8.elementsEqual(y[j].utf8)
                    ? table[(i + 1) * (m + 1) + j + 1] + 1
                    : max(table[(i + 1) * (m + 1) + j], table[i * (m + 1) + j + 1])
            }
        }
        var out: [Line] = []
        var i = 0, j = 0
        while i < n || j < m {
            if i < n && j < m && x[i].utf8.elementsEqual(y[j].utf8) {
                out.append(.same(x[i])); i += 1; j += 1
            } else if i < n && (j == m || table[(i + 1) * (m + 1) + j] >= table[i * (m + 1) + j + 1]) {
                out.append(.removed(x[i])); i += 1  // what went, then what came
            } else {
                out.append(.added(y[j])); j += 1
            }
        }
        return out
    }

    /// The diff as lines for a terminal: "- " removed, "+ " added, runs of more than `context`
    /// unchanged sentences folded into one line.
    public static func render(_ lines: [Line], context: Int = 1, fold: (Int) -> String = { "  …（\($0) 句未改动）…" }) -> [String] {
        var out: [String] = []
        var i = 0
        while i < lines.count {
            if case .same = lines[i] {
                var j = i
                while j < lines.count, case .same = lines[j] { j += 1 }
                let run = lines[i..<j].map { if case .same(let s) = $0 { return s } else { return "" } }
                let keepHead = i == 0 ? 0 : context, keepTail = j == lines.count ? 0 : context
                if run.count > keepHead + keepTail + 1 {
                    out += run.prefix(keepHead).map { "  " + $0.trimmingLineEnd }
                    out.append(fold(run.count - keepHead - keepTail))
                    out += run.suffix(keepTail).map { "  " + $0.trimmingLineEnd }
                } else {
                    out += run.map { "  " + $0.trimmingLineEnd }
                }
                i = j
            } else {
                if case .removed(let s) = lines[i] { out.append("- " + s.trimmingLineEnd) }
                if case .added(let s) = lines[i] { out.append("+ " + s.trimmingLineEnd) }
                i += 1
            }
        }
        return out
    }
}

extension String {
    var trimmingLineEnd: String {
        var s = self
        while let l = s.last, l == "\n" || l == "\r" || l == "\r\n" { s.removeLast() }
        return s
    }
}
