// MARK: - Scope

/// What a device or a supervisor may see and write: the records whose division code (the start
/// of their id) begins with a prefix of 2 (province), 4 (city), 6 (county), 9 (township) or 12
/// (village) digits. The one statement of the rule: the hub's admission, pulls, snapshots,
/// supervisors' views and both stores' queries ask this type.
public struct Scope: Sendable, Hashable, CustomStringConvertible {
    /// The division-code prefix; "" (the whole hub) only for the hub's own admin views.
    public let prefix: String

    public init(_ prefix: String) { self.prefix = prefix }

    public var description: String { prefix }

    /// Why `text` is not a scope a device or a supervisor can be given, or nil.
    public static func problem(_ text: String) -> String? {
        guard text.utf8.allSatisfy({ (0x30...0x39).contains($0) }), [2, 4, 6, 9, 12].contains(text.utf8.count) else {
            return "a scope is a division-code prefix: 2 (province), 4 (city), 6 (county), 9 (township) or 12 (village) digits, got \"\(text.prefix(40))\""
        }
        return nil
    }

    /// Whether a record (by its id, or a division code) lies in the scope.
    public func contains(_ row: some StringProtocol) -> Bool {
        prefix.isEmpty || row.utf8.starts(with: prefix.utf8)
    }

    /// A place asked for (a region prefix, or none for "all of mine") narrowed to this scope:
    /// a place inside it stays, one containing it becomes the scope, and one outside it is nil.
    public func narrow(_ wanted: String?) -> String? {
        guard let wanted, !wanted.isEmpty else { return prefix }
        if wanted.hasPrefix(prefix) { return wanted }
        if prefix.hasPrefix(wanted) { return prefix }
        return nil
    }

    /// The code length of the region index that lists this scope's changes (6, 9 or 12: a
    /// county, a township, a village); nil for a city or a province, whose scopes hold most of
    /// the log anyway and read it in order.
    public var indexedLength: Int? {
        [6, 9, 12].contains(prefix.utf8.count) ? prefix.utf8.count : nil
    }

    /// The end of the scope's id range: ids in it sort in `prefix ..< upperBound` (byte order;
    /// '~' sorts after every digit, dash and hex letter).
    public var upperBound: String { prefix + "~" }
}
