import ArgumentParser
import FieldSyncCore
import FieldSyncPresentation
import FieldSyncReplica

// MARK: - Arguments shared by the two CLIs

extension RecordKind: ExpressibleByArgument {
    public init?(argument: String) { self.init(named: argument) }
    public static var allValueStrings: [String] { allCases.map(\.rawValue) }
}

/// The conflict filters of `conflicts list|summary|resolve`, on the laptop and at the hub.
public struct ConflictFilterOptions: ParsableArguments {
    @Option(help: "Only this kind (visit, dispute, project, …).") public var kind: RecordKind?
    @Option(help: "Only records whose division code starts with this (a village or township).") public var village: String?
    @Option(help: "Only this field (e.g. status; _record for delete versus edit, _deleted for delete versus undelete).") public var field: String?
    @Option(name: .customLong("by"), help: "Only conflicts where this author made one of the competing writes.") public var author: String?
    @Option(help: "Only conflicts open at least this many days.") public var olderThanDays: Double?
    @Option(help: "Only conflicts open at most this many days.") public var newerThanDays: Double?

    public init() {}

    public var value: ConflictFilter {
        ConflictFilter(kind: kind, villagePrefix: village, field: field, author: author,
                       olderThan: olderThanDays.map { Int64($0 * 86_400_000) }, newerThan: newerThanDays.map { Int64($0 * 86_400_000) })
    }
}
