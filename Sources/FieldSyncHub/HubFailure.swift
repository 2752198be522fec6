import FieldSyncCore

// MARK: - HubFailure

/// A refusal the hub sends as an HTTP status and `{"error":{"code","message"}}`.
public struct HubFailure: Error, Sendable, CustomStringConvertible {
    public let status: Int
    public let code: String
    public let message: String
    /// Seconds the client should wait before trying again (503, 429).
    public let retryAfter: Int?

    public init(_ status: Int, _ code: String, _ message: String, retryAfter: Int? = nil) {
        self.status = status
        self.code = code
        self.message = message
        self.retryAfter = retryAfter
    }

    public var description: String { "\(status) \(code): \(message)" }

    public static func badRequest(_ code: String, _ m: String) -> HubFailure { HubFailure(400, code, m) }
    public static let missingToken = HubFailure(401, "missing_token", "this request needs a device token: Authorization: Bearer TOKEN (enrol with `fieldsync enroll`)")
    public static let badToken = HubFailure(401, "bad_token", "the device token is not known to this hub (enrol again with a new code)")
    public static func revoked(_ device: String) -> HubFailure {
        HubFailure(403, "revoked", "device \(device) has been revoked on this hub; ask the hub's administrator for a new enrolment code")
    }
}
