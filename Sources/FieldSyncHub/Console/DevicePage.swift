import FieldSyncWeb
import FieldSyncCore
import FieldSyncPresentation
import FieldSyncReplica
import Foundation
import Hummingbird

// MARK: - DeviceSyncState

/// How a device's syncing looks, in one word and a colour.
struct DeviceSyncState {
    /// `ok`, `warn`, `bad` or `off`
    let level: String
    let label: String

    /// A device is behind when it has not caught up for three days.
    static let lagWarning: Int64 = 3 * 86_400_000
    /// The drift bound the replicas use (docs/architecture.md): a clock further off is a problem.
    static let skewWarning: Int64 = 3_600_000

    init(of d: DeviceInfo, now: Int64) {
        if d.revoked != nil { (level, label) = ("off", "已吊销"); return }
        if d.enrolled == nil { (level, label) = ("off", "待注册"); return }
        if let e = d.lastErrorAt, d.lastError != nil, e >= (d.lastSync ?? 0) { (level, label) = ("bad", "最近同步出错"); return }
        if let k = d.clockSkew, abs(k) > Self.skewWarning { (level, label) = ("bad", "时钟偏差过大"); return }
        guard let last = d.lastSync else { (level, label) = ("warn", "尚未完成同步"); return }
        if now - last > Self.lagWarning { (level, label) = ("warn", "同步滞后"); return }
        (level, label) = ("ok", "正常")
    }
}

extension ConsolePages {
    /// The devices whose scope lies within the supervisor's (a device for a wider region is the
    /// county's business, not a township supervisor's).
    func scopedDevices(_ s: Session) async throws -> [DeviceInfo] {
        try await store.devices().filter { Replica.inScope(row: $0.scope, scope: s.supervisor.scope) }
    }

    /// 设备: each laptop in the scope with its sync health.
    func devices(_ request: Request, _ s: Session) async throws -> HTML {
        let list = try await scopedDevices(s)
        let now = store.now()
        let rows = list.map { d -> HTML in
            let health = DeviceSyncState(of: d, now: now)
            let lag: String = d.lastSync.map { ConsoleLayout.duration(now - $0) } ?? "—"
            let skew: String = d.clockSkew.map { k in
                abs(k) < 1000 ? "准确" : (k > 0 ? "快 " : "慢 ") + ConsoleLayout.duration(k)
            } ?? "—"
            let error: HTML = d.lastError.map { e in "\(e)<br><span class=\"muted\">\(ConsoleLayout.time(d.lastErrorAt))</span>" } ?? "—"
            // What the laptop said of itself at its last request (release 3 on).
            let version: String = d.client.map { "第 \($0.release) 版 · 数据格式 \($0.schema)" } ?? "早于第 3 版"
            let unsent: String = d.client.map { c in
                c.pending == 0 ? "0" : "\(c.pending)（最早 \(c.oldestUnsent.map { ConsoleLayout.duration(now - $0) + "前" } ?? "—")）"
            } ?? "—"
            return """
                <tr id="device-\(d.id)"><td>\(d.name)<br><span class="muted">\(d.id)</span></td><td>\(d.siteName ?? "—")</td><td>\(d.scope)</td>
                <td><span class="badge \(health.level)">\(health.label)</span></td>
                <td>\(ConsoleLayout.time(d.lastSync))</td><td class="num">\(lag)</td><td class="num">\(d.enrolled == nil ? 0 : d.pending)</td>
                <td class="num">\(d.pushed)</td><td>\(error)</td><td>\(skew)</td><td>\(ConsoleLayout.time(d.lastSeen))</td>
                <td>\(d.revoked.map { "已吊销 " + ConsoleLayout.time($0) } ?? (d.enrolled == nil ? "待注册" : "有效"))</td>
                <td class="version">\(version)</td><td class="num unsent">\(unsent)</td></tr>
                """
        }
        let body: HTML = """
            <h1>设备与同步状况</h1>
            <p class="muted">同步滞后：超过 \(DeviceSyncState.lagWarning / 86_400_000) 天没有同步完成；时钟偏差：设备时钟与同步中心相差超过 \(DeviceSyncState.skewWarning / 3_600_000) 小时。待拉取是同步中心有而设备还没取走的变更数；设备上未上传是设备最近一次联系时报告的、还没交给同步中心的变更数和其中最早一条的时间。</p>
            \(list.isEmpty ? ConsoleLayout.notice("info", "本范围内没有设备。", id: "no-devices") : .empty)
            <table id="devices">
              <thead><tr><th>设备</th><th>副本名</th><th>范围</th><th>状况</th><th>最近同步完成</th><th>已过去</th><th>待拉取</th><th>已推送</th><th>最近错误</th><th>时钟偏差</th><th>最近联系</th><th>状态</th><th>程序版本</th><th>设备上未上传</th></tr></thead>
              <tbody>\(rows)</tbody>
            </table>
            """
        return ConsoleLayout.page("设备", .devices, s, body)
    }
}
