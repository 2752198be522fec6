import FieldSyncCore
import FieldSyncTrust

// MARK: - Enrolment

/// The hub's rules for devices and secrets, apart from storage: what a code, a token and a scope
/// look like, and what the hub keeps of them (hashes only). Every store uses these.
public enum Enrolment {
    static let codeAlphabet = Array("23456789ABCDEFGHJKLMNPQRSTUVWXYZ")

    /// Enrolment codes are typed by people: 12 characters without 0/O or 1/I, in groups of four.
    public static func makeCode() -> String {
        var g = SystemRandomNumberGenerator()
        let chars = (0..<12).map { _ in codeAlphabet[Int.random(in: 0..<codeAlphabet.count, using: &g)] }
        return String(chars[0..<4]) + "-" + String(chars[4..<8]) + "-" + String(chars[8..<12])
    }

    /// What a store keeps of a code, a device token or a session token: its SHA-256.
    public static func hash(_ secret: String) -> String { SecretHash.hex(secret) }

    public static func codeHash(_ code: String) -> String { hash(EnrollRequest.normalize(code: code)) }

    public static func newDeviceID() -> String { "dev-" + Hex.random(bytes: 4) }
    public static func newToken() -> String { "fst_" + Hex.random(bytes: 32) }

    /// A scope is a division-code prefix of 2, 4, 6, 9 or 12 digits.
    public static func scopeProblem(_ scope: String) -> String? { Scope.problem(scope) }

    /// Checks a new device's name and scope (422 when wrong).
    public static func checkNewDevice(name: String, scope: String) throws {
        guard !name.isEmpty, name.unicodeScalars.count <= 100 else { throw HubFailure(.invalid, "a device name is 1–100 characters") }
        if let p = scopeProblem(scope) { throw HubFailure(.invalid, p) }
    }

    public static func expired(_ exp: Int64) -> HubFailure {
        HubFailure(.codeExpired, "this enrolment code expired on \(UTCTime.human(exp)); ask for a new one")
    }

    public static let badCode = HubFailure(.badCode, "this enrolment code is not valid on this hub (mistyped, already used, or revoked)")

    public static func siteTaken(_ site: SiteID, byHub: Bool) -> HubFailure {
        HubFailure(.siteTaken, byHub ? "site \(site) is the hub's own: a device cannot take it"
                                            : "site \(site) belongs to another device on this hub: a device cannot take another's site id")
    }

    public static func tooManySites(_ device: String, _ held: Int) -> HubFailure {
        HubFailure(.tooManySites, "device \(device) writes under \(held) site ids already, the most one device may (\(SitePossession.maxSitesPerDevice)); an administrator enrols it again")
    }
}
