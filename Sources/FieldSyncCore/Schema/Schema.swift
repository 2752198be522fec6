import Synchronization

// MARK: - Schema

/// The record schema every replica and the hub agree on, with its version: data, not code
/// (issue 12 point 1, docs/operations.md §11).
///
/// Version 1 is built in (``builtin``); a later version comes as a schema document
/// (``init(document:)``) that a hub administrator loads and laptops take on their next sync.
/// Changes are additive only (``evolutionProblems(from:to:)``): fields are only ever appended,
/// so a field's position never changes meaning, and a value one version allows every later
/// version allows.
public struct Schema: Sendable {
    public let version: Int
    public let kinds: [KindSpec]
    private let byName: [String: Int]

    init(version: Int, kinds: [KindSpec]) {
        self.version = version
        self.kinds = kinds
        var byName: [String: Int] = [:]
        for (i, k) in kinds.enumerated() { byName[k.kind.rawValue] = i }
        self.byName = byName
    }

    /// One of this schema's kinds, by key.
    public func kind(named name: String) -> RecordKind? { byName[name].map { kinds[$0].kind } }

    /// The schema compiled into this release: version 1.
    public static let builtin = Schema(version: 1, kinds: Catalog.kinds)

    /// Serialises ``adopt(_:)``; readers do not take it.
    private static let installed = Mutex<Schema>(builtin)

    /// The schema held, for readers: every merged field asks for its kind's spec, so reading
    /// takes no lock.
    private static let published = Published(builtin)

    /// The newest schema this process holds: the built-in one, or a newer one taken from a
    /// store it opened, a hub it synced with or an administrator (``adopt(_:)``). Forms,
    /// validation, CSV headers, reports and the console all read it.
    public static var current: Schema { published.value }

    /// Makes `newer` this process's schema when it is newer than the one held and a lawful
    /// successor of it; true when it was taken. One process only ever moves forward.
    @discardableResult
    public static func adopt(_ newer: Schema) throws(InputError) -> Bool {
        try installed.withLock { (held: inout Schema) throws(InputError) -> Bool in
            // An older one is simply not taken; the same version must be the same schema.
            guard newer.version >= held.version else { return false }
            let next = try target(stored: held, held: held, offered: newer)
            guard next.version > held.version else { return false }
            held = next
            published.publish(next)
            return true
        }
    }

    public func spec(_ kind: RecordKind) -> KindSpec { kinds[kind.ordinal] }
}

// MARK: - Enumerations

/// The fixed lists, as the teams name things (../shared/domain.md).
public enum Enumerations {
    public static let visitKinds = ["入户走访", "回访", "院坝会", "群众会", "电话回访"]
    public static let visitTopics = ["政策宣传", "民意收集", "矛盾排查", "帮扶措施", "就业", "医疗", "教育", "住房", "产业发展", "其他"]
    public static let disputeCategories = ["土地承包", "邻里纠纷", "婚姻家庭", "征地拆迁", "山林权属", "劳资", "其他"]
    public static let disputeStatuses = ["受理", "调解中", "已化解", "已上报", "未化解"]
    public static let projectKinds = ["产业发展", "基础设施", "公共服务", "集体经济"]
    public static let fundingSources = ["中央", "省", "市", "县", "帮扶单位", "社会"]
    public static let projectStatuses = ["规划", "在建", "完工", "验收", "运营"]
    public static let regionLevels = ["市", "县", "乡镇", "村"]
    public static let cadreRoles = ["第一书记", "工作队长", "工作队员", "村干部", "乡镇干部", "其他"]
    public static let householdCategories = ["脱贫户", "监测户", "低保户", "一般户"]
}

// MARK: - Catalog

enum Catalog {
    static let village = FieldSpec(
        "village", "村(社区)代码", .regionCode(RegionCode.village), required: true,
        help: "12 位统计用区划代码，决定记录归属和同步范围；是记录编号的前缀，创建后不能修改")

    static let kinds: [KindSpec] = [
        KindSpec(.visit, "走访记录", regionField: "village",
                 list: ["visit_date", "village", "household_head", "visit_kind", "cadre_name", "follow_up_done"], [
            village,
            FieldSpec("household_id", "农户编号", .reference(.household)),
            FieldSpec("household_head", "户主", .text(maxLength: 50)),
            FieldSpec("cadre_id", "走访干部编号", .reference(.cadre)),
            FieldSpec("cadre_name", "走访干部", .text(maxLength: 50), required: true),
            FieldSpec("visit_date", "走访日期", .date, required: true),
            FieldSpec("visit_kind", "走访方式", .choice(Enumerations.visitKinds), required: true),
            FieldSpec("topics", "走访事项", .choices(Enumerations.visitTopics)),
            FieldSpec("attendees", "参加人数", .integer(0...100_000), help: "院坝会、群众会的到会人数"),
            FieldSpec("notes", "走访情况", .longText),
            FieldSpec("needs", "群众诉求", .longText),
            FieldSpec("follow_up", "后续措施", .longText),
            FieldSpec("follow_up_due", "办理时限", .date),
            FieldSpec("follow_up_done", "是否办结", .bool),
            FieldSpec("location", "定位", .geo),
        ]),
        KindSpec(.dispute, "矛盾纠纷", regionField: "village",
                 list: ["reported_on", "village", "category", "parties", "status", "mediator_name"], [
            village,
            FieldSpec("category", "纠纷类型", .choice(Enumerations.disputeCategories), required: true),
            FieldSpec("parties", "当事人", .text(maxLength: 500), required: true),
            FieldSpec("summary", "纠纷概要", .longText, required: true),
            FieldSpec("reported_on", "受理日期", .date, required: true),
            FieldSpec("mediator_id", "调解人编号", .reference(.cadre)),
            FieldSpec("mediator_name", "调解人", .text(maxLength: 50)),
            FieldSpec("status", "办理状态", .choice(Enumerations.disputeStatuses), required: true),
            FieldSpec("resolution", "调解结果", .longText),
            FieldSpec("agreement_signed", "是否签订协议", .bool),
            FieldSpec("resolved_on", "化解日期", .date),
        ]),
        KindSpec(.project, "帮扶项目", regionField: "village",
                 list: ["name", "village", "project_kind", "status", "budget_fen", "spent_fen"], [
            village,
            FieldSpec("name", "项目名称", .text(maxLength: 200), required: true),
            FieldSpec("project_kind", "项目类别", .choice(Enumerations.projectKinds), required: true),
            FieldSpec("funding_source", "资金来源", .choice(Enumerations.fundingSources)),
            FieldSpec("budget_fen", "预算金额", .money, help: "整数分；人看到的是元"),
            FieldSpec("spent_fen", "已支出金额", .money, help: "整数分；人看到的是元"),
            FieldSpec("status", "项目状态", .choice(Enumerations.projectStatuses), required: true),
            FieldSpec("started_on", "开工日期", .date),
            FieldSpec("completed_on", "完工日期", .date),
            FieldSpec("households_benefiting", "受益户数", .integer(0...10_000_000)),
            FieldSpec("lead_unit", "牵头单位", .text(maxLength: 200)),
            FieldSpec("progress_notes", "进展情况", .longText),
        ]),
        KindSpec(.region, "行政区划", regionField: nil, list: ["name", "level", "parent_code"], [
            FieldSpec("name", "名称", .text(maxLength: 100), required: true),
            FieldSpec("level", "层级", .choice(Enumerations.regionLevels), required: true),
            FieldSpec("parent_code", "上级代码", .regionCode(RegionCode.anyLevel)),
        ]),
        KindSpec(.cadre, "驻村干部", regionField: "village", list: ["name", "role", "unit", "village", "phone"], [
            FieldSpec("village", "驻点区划代码", .regionCode(RegionCode.anyLevel), required: true,
                      help: "驻村干部填村代码，乡镇干部填乡镇代码；是记录编号的前缀。换岗请填驻村结束日期并新增一条"),
            FieldSpec("name", "姓名", .text(maxLength: 50), required: true),
            FieldSpec("unit", "派出单位", .text(maxLength: 200)),
            FieldSpec("role", "职务", .choice(Enumerations.cadreRoles), required: true),
            FieldSpec("phone", "联系电话", .text(maxLength: 30)),
            FieldSpec("started_on", "驻村开始日期", .date),
            FieldSpec("ended_on", "驻村结束日期", .date),
        ]),
        KindSpec(.household, "农户", regionField: "village",
                 list: ["head_name", "village", "group_name", "members", "category"], [
            village,
            FieldSpec("head_name", "户主姓名", .text(maxLength: 50), required: true),
            FieldSpec("household_no", "户编号", .text(maxLength: 50)),
            FieldSpec("group_name", "村民小组", .text(maxLength: 50)),
            FieldSpec("members", "家庭人口", .integer(0...100)),
            FieldSpec("category", "户类型", .choice(Enumerations.householdCategories)),
            FieldSpec("phone", "联系电话", .text(maxLength: 30)),
            FieldSpec("address", "住址", .text(maxLength: 200)),
            FieldSpec("notes", "备注", .longText),
        ]),
    ]
}
