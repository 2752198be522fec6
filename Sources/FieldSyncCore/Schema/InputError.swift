// MARK: - InputError

/// Input that FieldSync refuses: what was wrong, where, and why.
///
/// This is the core layer's one error type. `location` names the place as precisely as the
/// caller knows it (`line 12: dispute.status (办理状态)`), `reason` says why it was refused.
public struct InputError: Error, Sendable, Equatable, CustomStringConvertible {
    public var location: String
    public var reason: String
    /// Made by a newer FieldSync (a schema version this one does not know): the input may be
    /// sound, and a receiver may keep it to take later, after an upgrade.
    public var newerSchema = false

    public init(_ location: String, _ reason: String, newerSchema: Bool = false) {
        self.location = location
        self.reason = reason
        self.newerSchema = newerSchema
    }

    public var description: String { location.isEmpty ? reason : "\(location): \(reason)" }

    /// The same error, placed inside an outer location (`line 3` + `fields.status`).
    public func within(_ outer: String) -> InputError {
        InputError(location.isEmpty ? outer : "\(outer): \(location)", reason, newerSchema: newerSchema)
    }
}
