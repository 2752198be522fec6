import FieldSyncCore

// MARK: - HubFailure

/// A refusal the hub sends as an HTTP status and `{"error":{"code","message"}}`. The kind of
/// refusal is typed (``Code``); its HTTP status and wire code follow from it, so no caller picks a
/// status, and no status is ever chosen by reading a message.
public struct HubFailure: Error, Sendable, CustomStringConvertible {
    /// Every kind of refusal the hub sends; the raw value is the wire code (Protocol/openapi.yaml).
    public enum Code: String, Sendable, CaseIterable {
        // 400: the request itself cannot be read
        case badParameter = "bad_parameter", badJSON = "bad_json", badGzip = "bad_gzip", badName = "bad_name"
        // 401: who is asking is not established
        case missingToken = "missing_token", badToken = "bad_token", badSession = "bad_session"
        case sessionExpired = "session_expired", badCredentials = "bad_credentials"
        // 403: known, but not allowed
        case revoked, disabled, locked, outOfScope = "out_of_scope", notASupervisor = "not_a_supervisor"
        case badCode = "bad_code", codeExpired = "code_expired"
        // 404, 405, 409, 410
        case notFound = "not_found", methodNotAllowed = "method_not_allowed"
        case conflict, exists, nameTaken = "name_taken", siteTaken = "site_taken", behindHorizon = "behind_horizon"
        // 413, 415, 422: the content is refused
        case tooLarge = "too_large", unsupportedEncoding = "unsupported_encoding", upgradeRequired = "upgrade_required"
        case invalid, badBundle = "bad_bundle", tooManySites = "too_many_sites", tooManyManifests = "too_many_manifests"
        // 429, 5xx: later, or the hub's fault
        case busy, tooManyAttempts = "too_many_attempts", io, internalError = "internal", unavailable

        /// The HTTP status this refusal is sent with.
        public var status: Int {
            switch self {
            case .badParameter, .badJSON, .badGzip, .badName: 400
            case .missingToken, .badToken, .badSession, .sessionExpired, .badCredentials: 401
            case .revoked, .disabled, .locked, .outOfScope, .notASupervisor, .badCode, .codeExpired: 403
            case .notFound: 404
            case .methodNotAllowed: 405
            case .conflict, .exists, .nameTaken, .siteTaken: 409
            case .behindHorizon: 410
            case .tooLarge: 413
            case .unsupportedEncoding: 415
            case .upgradeRequired: 426
            case .invalid, .badBundle, .tooManySites, .tooManyManifests: 422
            case .busy, .tooManyAttempts: 429
            case .io, .internalError: 500
            case .unavailable: 503
            }
        }
    }

    public let kind: Code
    public let message: String
    /// Seconds the client should wait before trying again (503, 429).
    public let retryAfter: Int?

    public init(_ kind: Code, _ message: String, retryAfter: Int? = nil) {
        self.kind = kind
        self.message = message
        self.retryAfter = retryAfter
    }

    /// The HTTP status (from the kind).
    public var status: Int { kind.status }
    /// The wire code (from the kind).
    public var code: String { kind.rawValue }
    public var description: String { "\(status) \(code): \(message)" }

    public static let missingToken = HubFailure(.missingToken, "this request needs a device token: Authorization: Bearer TOKEN (enrol with `fieldsync enroll`)")
    public static let badToken = HubFailure(.badToken, "the device token is not known to this hub (enrol again with a new code)")
    public static func revoked(_ device: String) -> HubFailure {
        HubFailure(.revoked, "device \(device) has been revoked on this hub; ask the hub's administrator for a new enrolment code")
    }
}
