import ArgumentParser
import FieldSyncCore
import FieldSyncPresentation
import FieldSyncReplica
import Foundation

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

// MARK: - Schema documents

/// Reads a schema document for `schema load` (both CLIs): the file, as UTF-8 JSON, checked.
public func readSchemaDocument(_ path: String) throws -> Schema {
    guard let d = FileManager.default.contents(atPath: path) else {
        throw ReplicaError.invalidInput(InputError(path, "无法读取数据结构文件 (cannot read the schema file)"))
    }
    guard UTF8Validation.firstInvalidOffset([UInt8](d)) == nil else {
        throw ReplicaError.invalidInput(InputError(path, "不是 UTF-8 文本 (not valid UTF-8)"))
    }
    do {
        return try Schema(documentText: String(decoding: d, as: UTF8.self))
    } catch {
        throw ReplicaError.invalidInput(InputError(path, "数据结构文件有误，未载入 (the schema document is not valid; nothing was loaded): \(error)"))
    }
}

/// A store's refusal of a schema (`schema load`), said in Chinese first: nothing was taken.
public func schemaRefusal(_ e: InputError) -> ReplicaError {
    ReplicaError.invalidInput(InputError(e.location, "数据结构不能载入，只能在原有基础上增加 (refused: only additive changes are taken; nothing was loaded): \(e.reason)"))
}
