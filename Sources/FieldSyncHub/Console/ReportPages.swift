import FieldSyncCore
import Foundation
import Hummingbird

// MARK: - Reports

extension ConsolePages {
    /// 报表: waits for the report engine (branch issue6-reports).
    func reports(_ request: Request, _ s: Session) async throws -> HTML {
        ConsoleLayout.page("报表", .reports, s, "<h1>报表</h1>\(ConsoleLayout.notice("info", "报表功能即将提供。"))")
    }
}
