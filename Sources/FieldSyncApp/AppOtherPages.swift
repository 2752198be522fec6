import FieldSyncCore
import FieldSyncPresentation
import FieldSyncReplica
import FieldSyncTransport
import FieldSyncWeb
import Foundation
import HTTPTypes
import Hummingbird

// MARK: - Conflicts

extension AppPages {
    func conflicts(_ request: Request, _ s: AppSession) throws -> Response {
        try state.with { r in
            var f = ConflictFilter()
            if let k = AppRequest.query(request, "kind") {
                guard let kind = RecordKind(rawValue: k) else { throw WebPageError(400, "没有这种记录", "没有“\(k.prefix(40))”这种记录 (unknown kind)") }
                f.kind = kind
            }
            let list = try r.conflicts(matching: f)
            let rows = list.map { c in ConflictHTML.listRow(c, link: "/conflicts/\(WebURL.encode(c.row))/\(WebURL.encode(c.field))") }
            let settled: HTML = AppRequest.query(request, "settled").map { AppLayout.notice("ok", "冲突已处理：\($0)。处理结果会在下次同步时上传。", id: "conflict-settled") } ?? .empty
            let body: HTML = """
                <h1>冲突</h1>
                \(settled)
                <p id="conflict-total">本机未解决冲突共 <b>\(list.count)</b> 个。胜出值在每台电脑上相同（时间较晚者胜出，时间相同则设备编号较大者胜出）；请核实后处理。</p>
                \(list.isEmpty ? AppLayout.notice("ok", "没有未解决的冲突。", id: "no-conflicts") : .empty)
                <table id="conflicts">\(ConflictHTML.listHead)<tbody>\(rows)</tbody></table>
                """
            return html(AppLayout.page("冲突", .conflicts, try frame(r, s), body))
        }
    }

    func conflict(row: String, field: String, _ s: AppSession, error: String? = nil, typed: String = "") throws -> Response {
        let key = try ConflictHTML.key(row: row, field: field, path: "/conflicts")
        return try state.with { r in
            let detail: ConflictDetail
            do { detail = try r.conflictDetail(key) } catch ReplicaError.notFound {
                let rec = try r.record(row)
                let body: HTML = """
                    <h1>冲突 · \(rec.kind.spec.label) \(RecordID.short(rec.id)) · \(Display.fieldLabel(rec.kind, field))</h1>
                    \(AppLayout.notice("ok", "此字段目前没有未解决的冲突。", id: "conflict-settled"))
                    <p><a href="/record/\(WebURL.encode(rec.id))">查看这条记录和完整历史</a> · <a href="/conflicts">返回冲突列表</a></p>
                    """
                return html(AppLayout.page("冲突已解决", .conflicts, try frame(r, s), body))
            }
            let c = detail.info
            let body: HTML = """
                <h1>冲突 · \(c.kind.spec.label) <a href="/record/\(WebURL.encode(c.row))">\(RecordID.short(c.row))</a> · \(Display.fieldLabel(c.kind, c.field))</h1>
                <p>\(ConflictHTML.typeLabel(c)) · 村(社区) \(c.village ?? "—") · 发生于 \(AppLayout.time(c.since))</p>
                \(error.map { AppLayout.notice("error", "\($0)", id: "resolve-error") })
                \(ConflictHTML.detail(detail))
                <h2>处理</h2>
                \(ConflictHTML.resolveForm(c, action: "/conflicts/\(WebURL.encode(c.row))/\(WebURL.encode(c.field))/resolve", csrf: s.csrf, typed: typed))
                """
            return html(AppLayout.page("冲突 \(RecordID.short(c.row))/\(c.field)", .conflicts, try frame(r, s), body), status: error == nil ? .ok : .unprocessableContent)
        }
    }

    func resolve(row: String, field: String, _ s: AppSession, _ form: WebForm) throws -> Response {
        let key = try ConflictHTML.key(row: row, field: field, path: "/conflicts")
        let typed = form["value"] ?? ""
        do {
            let spec = form["how"] != "value" ? nil : try state.with { r -> FieldSpec? in
                let d = try r.conflictDetail(key)
                return d.info.type == .concurrentValues ? d.info.kind.spec.field(d.info.field) : nil
            }
            let (how, note) = try ConflictHTML.resolution(form, spec: spec)
            _ = try state.with { r in try r.resolveConflict(key, how, note: note) }
        } catch let e as WebPageError where e.status == 422 {
            return try conflict(row: row, field: field, s, error: e.detail, typed: typed)
        } catch ReplicaError.invalidInput(let e) {
            return try conflict(row: row, field: field, s, error: "无法这样处理：\(e.description)", typed: typed)
        }
        return WebHeaders.redirect(WebURL.make("/conflicts", [("settled", "\(RecordID.short(row))/\(field)")]))
    }
}

// MARK: - Sync

extension AppPages {
    func syncPage(_ request: Request, _ s: AppSession) throws -> Response {
        let p = state.sync.progress
        return try state.with { r in
            let f = try frame(r, s)
            guard let st = try r.syncState() else {
                let body: HTML = """
                    <h1>同步</h1>
                    \(AppLayout.notice("warn", "本机还没有注册到同步中心。请向管理员要一次性注册码，然后在命令行运行 fieldsync enroll --hub 地址 --code 注册码。没有注册也可以录入，记录都保存在本机；也可以在“文件”页用 U 盘交换数据包。", id: "not-enrolled"))
                    """
                return html(AppLayout.page("同步", .sync, f, body))
            }
            let running: HTML
            if p.running {
                let phase = p.phase == "pull" ? "正在下载中心的新变更…" : p.phase == "push" ? "正在上传本机的变更…" : "正在连接同步中心…"
                let secs = max(0, (state.now - (p.started ?? state.now)) / 1000)
                running = AppLayout.notice("info", "\(phase)（已用 \(secs) 秒）<progress id=\"sync-progress\"></progress>", id: "sync-running")
            } else if let rep = p.report, p.finished != nil {
                running = AppLayout.notice(rep.complete ? "ok" : "warn", """
                    刚才的同步\(rep.complete ? "已完成" : "已完成，但有变更被拒收或需稍后再试")：上传 \(rep.pushed) 条，下载 \(rep.pulled) 条，新冲突 \(rep.conflictsOpened) 个。
                    """, id: "sync-done")
            } else if let e = p.error {
                running = AppLayout.notice("error", "刚才的同步失败：\(e)", id: "sync-failed")
            } else { running = .empty }
            let refused = try r.refusedByHub()
            let refusedRows = refused.prefix(50).map { x -> HTML in
                "<tr><td>\(AppLayout.time(x.at))</td><td>\(x.code)</td><td>\(x.reason)</td></tr>"
            }
            let body: HTML = """
                <h1>同步</h1>
                \(running)
                <table id="sync-state"><tbody>
                  <tr><th>同步中心</th><td>\(st.hubName)（\(st.hubURL)）</td></tr>
                  <tr><th>本机</th><td>\(st.deviceName) · 同步范围 \(st.scope)（\(RegionCode.levelLabel(st.scope))）</td></tr>
                  <tr><th>未上传的变更</th><td id="sync-pending">\(f.pending) 条</td></tr>
                  <tr><th>最近一次成功上传</th><td id="last-push">\(AppLayout.time(st.lastPush))</td></tr>
                  <tr><th>最近一次成功下载</th><td id="last-pull">\(AppLayout.time(st.lastPull))</td></tr>
                  <tr><th>最近一次完整同步</th><td id="last-success">\(AppLayout.time(st.lastSuccess))</td></tr>
                  <tr><th>最近一次尝试</th><td>\(AppLayout.time(st.lastAttempt))</td></tr>
                  <tr><th>最近的错误</th><td id="last-error">\(st.lastError.map { "\(AppLayout.time(st.lastErrorAt))：\($0)" } ?? "无")</td></tr>
                  \(st.daemonState.map { "<tr><th>后台同步</th><td>\($0)</td></tr>" as HTML })
                </tbody></table>
                <form method="post" action="/sync" class="actions">
                  <input type="hidden" name="csrf" value="\(s.csrf)">
                  <button type="submit" class="primary" id="sync-now"\(p.running ? HTML(trusted: " disabled") : .empty)>立即同步</button>
                  <span class="muted">没有网络时不用同步：记录都保存在本机，联网后再同步即可。</span>
                </form>
                \(refused.isEmpty ? HTML.empty : """
                    <h2>被同步中心拒收的变更（\(refused.count)）</h2>
                    <p class="muted">请在对应记录的页面改正或删除；处理后不再提示。</p>
                    <table id="refused"><thead><tr><th>时间</th><th>原因代码</th><th>原因</th></tr></thead><tbody>\(refusedRows)</tbody></table>
                    """)
                """
            return html(AppLayout.page("同步", .sync, f, body, refresh: p.running ? 1 : nil))
        }
    }

    func startSync(_ s: AppSession) throws -> Response {
        guard try state.with({ try $0.syncState() }) != nil else {
            throw WebPageError(409, "本机还没有注册", "请先注册到同步中心：fieldsync enroll --hub 地址 --code 注册码")
        }
        _ = state.sync.start()
        return WebHeaders.redirect("/sync")
    }
}

// MARK: - Files

extension AppPages {
    func files(_ request: Request, _ s: AppSession) throws -> Response {
        try state.with { r in
            let imported: HTML = AppRequest.query(request, "imported").map { AppLayout.notice("ok", "已导入数据包：\($0)", id: "imported") } ?? .empty
            let csvDone: HTML = AppRequest.query(request, "csv").map { AppLayout.notice("ok", "已导入台账：\($0)", id: "csv-imported") } ?? .empty
            let kinds = RecordKind.listed.map { k -> HTML in
                "<li><a href=\"/records/\(k.rawValue)/export.csv\" id=\"csv-\(k.rawValue)\">\(k.spec.label)（全部）</a></li>"
            }
            let body: HTML = """
                <h1>文件</h1>
                \(imported)
                \(csvDone)
                <h2>用 U 盘交换数据（数据包）</h2>
                <p>没有网络时，可以把本机的全部变更导出为数据包，用 U 盘带到别的电脑或同步中心导入。导入同一个数据包多次不会重复。</p>
                <p><a class="button primary" href="/files/export.bundle" id="export-bundle">导出数据包</a></p>
                <form method="post" action="/files/import" enctype="multipart/form-data" class="filters" id="import-form">
                  <input type="hidden" name="csrf" value="\(s.csrf)">
                  <label>选择数据包文件（.bundle）<input type="file" name="bundle" id="bundle-file" accept=".bundle,.gz,application/gzip" required></label>
                  <button type="submit" class="primary" id="import-bundle">导入数据包</button>
                </form>
                <h2>导入 Excel 台账（CSV）</h2>
                <p>先预览：哪些行会新增、哪些会更新已有记录、哪些有误，确认后才写入。表头用字段名或中文名；金额列要写单位，如“预算金额(元)”。
                有“编号”列的行更新该记录；没有编号时，按“同一条记录”的字段认出已有记录（走访：村、户主、走访日期、走访方式；纠纷：村、当事人、受理日期；项目：村、项目名称；农户：村、户主姓名；干部：驻点、姓名），所以同一个文件导入两次不会重复。</p>
                <form method="post" action="/files/csv" enctype="multipart/form-data" class="filters" id="csv-form">
                  <input type="hidden" name="csrf" value="\(s.csrf)">
                  <label>记录种类 <select name="kind" id="csv-kind">\(HTML.join(RecordKind.listed.map { "<option value=\"\($0.rawValue)\">\($0.spec.label)</option>" as HTML }))</select></label>
                  <label>CSV 文件（UTF-8 或 GB18030）<input type="file" name="csv" id="csv-file" accept=".csv,text/csv" required></label>
                  <button type="submit" class="primary" id="csv-preview">预览</button>
                </form>
                <h2>导出为 Excel 表格（CSV）</h2>
                <p class="muted">在各记录列表页可按筛选条件导出；这里导出全部。金额以元为单位，文件带 UTF-8 标记，Excel 能直接打开中文。</p>
                <ul>\(kinds)</ul>
                """
            return html(AppLayout.page("文件", .files, try frame(r, s), body))
        }
    }

    func exportBundle(_ s: AppSession) throws -> Response {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fieldsync-app-\(Hex.random(bytes: 8))").path
        try OwnerOnly.makeFolder(dir)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/export.bundle"
        let site = try state.with { r in _ = try r.exportBundle(to: path); return try r.status().siteName }
        guard let data = FileManager.default.contents(atPath: path) else { throw WebPageError(500, "导出失败", "导出的数据包无法读取 (the bundle file could not be read back)") }
        var r = Response(status: .ok, headers: [.contentType: "application/gzip"], body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
        let safe = String(site.unicodeScalars.filter { ($0.value >= 0x30 && $0.value <= 0x39) || ($0.value >= 0x61 && $0.value <= 0x7A) || $0 == "-" })
        r.headers[.contentDisposition] = "attachment; filename=\"fieldsync-\(safe.isEmpty ? "export" : safe)-\(Display.today(state.now)).bundle\""
        return r
    }

    /// The largest bundle the page takes (a bigger one: `fieldsync bundle import` on the command line).
    static let maxUpload = 256 << 20

    func importBundle(_ request: inout Request, _ s: AppSession) async throws -> Response {
        let type = request.headers[.contentType] ?? ""
        guard let boundary = Multipart.boundary(type) else {
            throw WebPageError(415, "上传格式不对", "请用页面上的表单选择文件上传 (expected multipart/form-data, got \(type.prefix(60)))")
        }
        let body: ByteBuffer
        do { body = try await request.collectBody(upTo: Self.maxUpload) } catch {
            throw WebPageError(413, "文件太大", "网页最多导入 \(Self.maxUpload >> 20) MB 的数据包；更大的请用命令 fieldsync bundle import 文件")
        }
        let parts = try Multipart.parse(Array(body.readableBytesView), boundary: boundary)
        try WebGuard.checkCSRF(sent: parts.first { $0.name == "csrf" }.map { String(decoding: $0.body, as: UTF8.self) }, expected: s.csrf)
        guard let file = parts.first(where: { $0.name == "bundle" }), !file.body.isEmpty else {
            throw WebPageError(422, "没有选择文件", "请选择一个数据包文件（.bundle）再导入")
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fieldsync-app-\(Hex.random(bytes: 8))").path
        try OwnerOnly.makeFolder(dir)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/import.bundle"
        try OwnerOnly.writeAtomically(file.body, to: path)
        let report: ImportReport
        do { report = try state.with { r in try r.importBundle(from: path) } } catch ReplicaError.badBundle(_, let reason) {
            throw WebPageError(422, "数据包无法导入", "“\(file.filename ?? "文件")”不是完整的 FieldSync 数据包，本机数据没有改变（\(reason)）")
        }
        let a = report.apply
        let summary = "新变更 \(a.applied) 条，已有 \(a.duplicates) 条，新冲突 \(a.conflictsOpened) 个" + (a.setAside > 0 ? "，\(a.setAside) 条无法验证来源已搁置" : "")
        return WebHeaders.redirect(WebURL.make("/files", [("imported", summary)]))
    }
}

// MARK: - CSV ledgers

extension AppPages {
    static let maxCSV = 20 << 20

    /// Writes an uploaded CSV where the importer can read it, runs `body`, removes it.
    func withFile<T>(_ bytes: [UInt8], _ body: (String) throws -> T) throws -> T {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fieldsync-app-\(Hex.random(bytes: 8))").path
        try OwnerOnly.makeFolder(dir)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/ledger.csv"
        try OwnerOnly.writeAtomically(bytes, to: path)
        return try body(path)
    }

    func previewCSV(_ request: inout Request, _ s: AppSession) async throws -> Response {
        guard let boundary = Multipart.boundary(request.headers[.contentType] ?? "") else {
            throw WebPageError(415, "上传格式不对", "请用页面上的表单选择文件上传 (expected multipart/form-data)")
        }
        let body: ByteBuffer
        do { body = try await request.collectBody(upTo: Self.maxCSV) } catch {
            throw WebPageError(413, "文件太大", "网页最多导入 \(Self.maxCSV >> 20) MB 的台账；更大的请用命令 fieldsync record import")
        }
        let parts = try Multipart.parse(Array(body.readableBytesView), boundary: boundary)
        func text(_ n: String) -> String? { parts.first { $0.name == n }.map { String(decoding: $0.body, as: UTF8.self) } }
        try WebGuard.checkCSRF(sent: text("csrf"), expected: s.csrf)
        guard let kind = text("kind").flatMap(RecordKind.init(rawValue:)), kind != .region else {
            throw WebPageError(422, "请选择记录种类", "请选择文件里记录的种类 (choose the kind of records)")
        }
        guard let file = parts.first(where: { $0.name == "csv" }), !file.body.isEmpty else {
            throw WebPageError(422, "没有选择文件", "请选择一个 CSV 文件再预览")
        }
        let token = Hex.random(bytes: 16)
        state.uploads.withLock { $0[token] = (kind, file.filename ?? "ledger.csv", file.body) }
        return try preview(token, s)
    }

    func plan(_ token: String) throws -> (ImportPlan, String) {
        guard let upload = state.uploads.withLock({ $0[token] }) else {
            throw WebPageError(410, "预览已过期", "请重新选择文件预览（工作台重启后预览不再保留）")
        }
        do {
            let plan = try withFile(upload.bytes) { path in try state.with { r in try RecordImport.plan(kind: upload.kind, path: path, format: .csv, using: r) } }
            return (plan, upload.name)
        } catch ReplicaError.invalidInput(let e) {
            throw WebPageError(422, "台账无法读取", "“\(upload.name)”：\(e.reason)")
        }
    }

    func preview(_ token: String, _ s: AppSession) throws -> Response {
        let (plan, name) = try plan(token)
        let rows = plan.rows.prefix(500).map { row -> HTML in
            let (label, cls, detail): (String, String, HTML)
            switch row.action {
            case .add: (label, cls, detail) = ("新增", "ok", "\(row.summary)")
            case .update(let id, let values):
                (label, cls, detail) = ("更新", "warn", "<a href=\"/record/\(WebURL.encode(id))\">\(RecordID.short(id))</a>：" + HTML.join(values.map { v in
                    "\(Display.fieldLabel(plan.kind, v.field)) → \(Display.value(v.value, plan.kind.spec.field(v.field)))" as HTML }, separator: "；"))
            case .unchanged(let id): (label, cls, detail) = ("已有，相同", "off", "<a href=\"/record/\(WebURL.encode(id))\">\(RecordID.short(id))</a> \(row.summary)")
            case .wrong(let why): (label, cls, detail) = ("有误", "bad", "\(why)")
            }
            return "<tr><td>\(row.line)</td><td><span class=\"badge \(cls)\">\(label)</span></td><td>\(detail)</td></tr>"
        }
        let writes = plan.adds + plan.updates
        return try state.with { r in
            let body: HTML = """
                <h1>导入预览 · \(plan.kind.spec.label) · \(name)</h1>
                <p id="csv-summary">新增 <b>\(plan.adds)</b> 条 · 更新 <b>\(plan.updates)</b> 条 · 已有且相同 <b>\(plan.unchanged)</b> 条 · 有误 <b>\(plan.wrong)</b> 行（\(plan.encoding)）。还没有写入任何内容。</p>
                \(plan.wrong > 0 ? AppLayout.notice("error", "有 \(plan.wrong) 行有误，不会导入；可以改正文件后重新预览，或只导入其余的行。", id: "csv-wrong") : .empty)
                <form method="post" action="/files/csv/apply" class="actions">
                  <input type="hidden" name="csrf" value="\(s.csrf)"><input type="hidden" name="token" value="\(token)">
                  <button type="submit" class="primary" id="csv-apply"\(writes == 0 ? HTML(trusted: " disabled") : .empty)>确认导入（新增 \(plan.adds)，更新 \(plan.updates)）</button>
                  <a href="/files">取消</a>
                </form>
                <table id="csv-rows"><thead><tr><th>行</th><th>结果</th><th>内容</th></tr></thead><tbody>\(rows)</tbody></table>
                """
            return html(AppLayout.page("导入预览", .files, try frame(r, s), body))
        }
    }

    func applyCSV(_ s: AppSession, _ form: WebForm) throws -> Response {
        guard let token = form["token"], Replica.isFormKey(token) else { throw WebPageError(400, "预览已过期", "请重新选择文件预览 (the form names no preview)") }
        // Planned again against the replica as it is now (a sync may have come in meanwhile).
        let (plan, name) = try plan(token)
        let (added, updated) = try state.with { r in try r.apply(plan) }
        state.uploads.withLock { _ = $0.removeValue(forKey: token) }
        return WebHeaders.redirect(WebURL.make("/files", [("csv", "\(name)：新增 \(added.count) 条，更新 \(updated.count) 条，\(plan.unchanged) 条已有且相同，\(plan.wrong) 行有误未导入")]))
    }
}

// MARK: - Multipart

/// `multipart/form-data` (RFC 7578), as a browser sends a file input: strictly read.
enum Multipart {
    struct Part {
        var name: String
        var filename: String?
        var body: [UInt8]
    }

    static func boundary(_ contentType: String) -> String? {
        guard contentType.lowercased().hasPrefix("multipart/form-data") else { return nil }
        for p in contentType.split(separator: ";") {
            let kv = p.trimmingCharacters(in: .whitespaces).split(separator: "=", maxSplits: 1)
            if kv.count == 2, kv[0].lowercased() == "boundary" {
                let b = kv[1].trimmingCharacters(in: CharacterSet(charactersIn: "\""))
                return (1...70).contains(b.utf8.count) ? b : nil
            }
        }
        return nil
    }

    static func parse(_ body: [UInt8], boundary: String) throws -> [Part] {
        let delimiter = Array("--\(boundary)".utf8)
        func bad(_ why: String) -> WebPageError { WebPageError(400, "上传的内容无法读取", "the upload is not well-formed multipart/form-data: \(why)") }
        var parts: [Part] = []
        guard var i = find(delimiter, in: body, from: 0) else { throw bad("no boundary") }
        while true {
            i += delimiter.count
            if i + 2 <= body.count, body[i] == 0x2D, body[i + 1] == 0x2D { break }  // "--": the end
            guard i + 2 <= body.count, body[i] == 0x0D, body[i + 1] == 0x0A else { throw bad("a boundary without a line break") }
            i += 2
            guard let headEnd = find([0x0D, 0x0A, 0x0D, 0x0A], in: body, from: i) else { throw bad("a part without headers") }
            let head = String(decoding: body[i..<headEnd], as: UTF8.self)
            guard let next = find([0x0D, 0x0A] + delimiter, in: body, from: headEnd + 4) else { throw bad("a part without an end") }
            var name: String?, filename: String?
            for line in head.split(separator: "\r\n") where line.lowercased().hasPrefix("content-disposition:") {
                name = value("name", in: String(line))
                filename = value("filename", in: String(line))
            }
            guard let name else { throw bad("a part without a name") }
            parts.append(Part(name: name, filename: filename, body: Array(body[(headEnd + 4)..<next])))
            i = next + 2
        }
        return parts
    }

    static func value(_ key: String, in line: String) -> String? {
        for p in line.split(separator: ";") {
            let kv = p.trimmingCharacters(in: .whitespaces).split(separator: "=", maxSplits: 1)
            if kv.count == 2, kv[0] == key { return kv[1].trimmingCharacters(in: CharacterSet(charactersIn: "\"")) }
        }
        return nil
    }

    static func find(_ needle: [UInt8], in hay: [UInt8], from: Int) -> Int? {
        guard !needle.isEmpty, hay.count >= needle.count, from <= hay.count - needle.count else { return nil }
        var i = from
        let first = needle[0]
        while i <= hay.count - needle.count {
            if hay[i] == first, hay[i..<(i + needle.count)].elementsEqual(needle) { return i }
            i += 1
        }
        return nil
    }
}
