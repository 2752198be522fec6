import FieldSyncWeb
import Foundation

// MARK: - SVGChart

/// Charts drawn on the server as inline SVG: no script, no outside assets, styled by the
/// console's stylesheet (classes only, so the Content-Security-Policy needs no inline styles).
/// Labels and values are text from data and escaped like everything else.
enum SVGChart {
    struct Item {
        let label: String
        let value: Int64
        /// What the bar says next to it (`12`, `1,234.00 元`, `98.5%`).
        let shown: String
    }

    /// Horizontal bars, one per item: good for long Chinese place names.
    static func bars(_ title: String, _ items: [Item], id: String) -> HTML {
        let rowHeight = 26, labelWidth = 190, width = 760, barMax = width - labelWidth - 120
        let height = max(1, items.count) * rowHeight + 40
        let top = max(1, items.map(\.value).max() ?? 1)
        var parts: [HTML] = []
        for (i, item) in items.enumerated() {
            let y = 30 + i * rowHeight
            let w = item.value <= 0 ? 0 : max(1, Int(Double(barMax) * Double(item.value) / Double(top)))
            parts.append("""
                <text x="\(labelWidth - 8)" y="\(y + 16)" text-anchor="end">\(clip(item.label, 14))</text>
                <rect class="bar" x="\(labelWidth)" y="\(y + 3)" width="\(w)" height="\(rowHeight - 8)"><title>\(item.label)：\(item.shown)</title></rect>
                <text x="\(labelWidth + w + 6)" y="\(y + 16)">\(item.shown)</text>
                """)
        }
        if items.isEmpty { parts.append("<text x=\"\(labelWidth)\" y=\"46\">（没有数据）</text>") }
        return """
            <svg class="chart" id="\(id)" role="img" aria-label="\(title)" viewBox="0 0 \(width) \(height)" width="\(width)" height="\(height)" xmlns="http://www.w3.org/2000/svg">
            <text x="10" y="18" font-weight="bold">\(title)</text>
            <line class="axis" x1="\(labelWidth)" y1="26" x2="\(labelWidth)" y2="\(height - 8)"/>
            \(parts)
            </svg>
            """
    }

    /// Columns over time (months), with a line through their tops: a trend at a glance.
    static func columns(_ title: String, _ items: [Item], id: String) -> HTML {
        let width = 760, height = 300, left = 60, right = 20, top = 36, bottom = 50
        let plotW = width - left - right, plotH = height - top - bottom
        let maxV = max(1, items.map(\.value).max() ?? 1)
        let slot = items.isEmpty ? plotW : plotW / items.count
        var parts: [HTML] = []
        let ticks = Int(min(4, maxV))  // grid lines at whole numbers: a top of 2 gets 0, 1, 2
        for k in 0...ticks {
            let y = top + plotH - plotH * k / ticks
            parts.append("<line class=\"grid\" x1=\"\(left)\" y1=\"\(y)\" x2=\"\(width - right)\" y2=\"\(y)\"/><text x=\"\(left - 6)\" y=\"\(y + 4)\" text-anchor=\"end\">\(scaleLabel(maxV * Int64(k) / Int64(ticks)))</text>")
        }
        var points: [String] = []
        for (i, item) in items.enumerated() {
            let h = item.value <= 0 ? 0 : max(1, Int(Double(plotH) * Double(item.value) / Double(maxV)))
            let x = left + i * slot + slot / 6, w = max(2, slot * 2 / 3)
            let cx = x + w / 2, cy = top + plotH - h
            points.append("\(cx),\(cy)")
            parts.append("""
                <rect class="bar2" x="\(x)" y="\(cy)" width="\(w)" height="\(h)"><title>\(item.label)：\(item.shown)</title></rect>
                <text x="\(cx)" y="\(max(top - 4, cy - 4))" text-anchor="middle">\(item.shown)</text>
                <text x="\(cx)" y="\(top + plotH + 18)" text-anchor="middle">\(clip(item.label, 8))</text>
                """)
        }
        if points.count > 1 { parts.append("<polyline class=\"line\" points=\"\(points.joined(separator: " "))\"/>") }
        if items.isEmpty { parts.append("<text x=\"\(left + 10)\" y=\"\(top + plotH / 2)\">（没有数据）</text>") }
        return """
            <svg class="chart" id="\(id)" role="img" aria-label="\(title)" viewBox="0 0 \(width) \(height)" width="\(width)" height="\(height)" xmlns="http://www.w3.org/2000/svg">
            <text x="10" y="20" font-weight="bold">\(title)</text>
            <line class="axis" x1="\(left)" y1="\(top + plotH)" x2="\(width - right)" y2="\(top + plotH)"/>
            \(parts)
            </svg>
            """
    }

    static func clip(_ s: String, _ n: Int) -> String { s.count > n ? String(s.prefix(n - 1)) + "…" : s }

    /// Axis numbers: 1200 → 1200, 15000 → 1.5万, 230000000 → 2.3亿.
    static func scaleLabel(_ v: Int64) -> String {
        if v >= 100_000_000 { return String(format: "%.1f亿", Double(v) / 1e8) }
        if v >= 10_000 { return String(format: "%.1f万", Double(v) / 1e4) }
        return String(v)
    }
}
