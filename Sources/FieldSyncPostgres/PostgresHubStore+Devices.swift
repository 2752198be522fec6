import FieldSyncCore
import FieldSyncHub
import FieldSyncReplica
import FieldSyncTrust
import Foundation
import PostgresNIO

// MARK: - Devices, enrolment, tokens, sites

extension PostgresHubStore {
    public func addDevice(name: String, scope: String, codeLifetimeMs: Int64) async throws -> NewDevice {
        try Enrolment.checkNewDevice(name: name, scope: scope)
        let code = Enrolment.makeCode(), id = Enrolment.newDeviceID(), now = self.now()
        try await transaction { pg in
            try await pg.exec("INSERT INTO hub_device(id, name, scope, code_hash, code_expires, created) VALUES ($1, $2, $3, $4, $5, $6)",
                              [.text(id), .text(name), .text(scope), .text(Enrolment.codeHash(code)), .int(now + codeLifetimeMs), .int(now)])
        }
        return NewDevice(id: id, name: name, scope: scope, code: code, expires: now + codeLifetimeMs)
    }

    public func devices() async throws -> [DeviceInfo] {
        try await read { pg in
            var out: [DeviceInfo] = []
            for r in try await pg.rows("""
                SELECT id, name, scope, site, site_name, created, enrolled, revoked, code_expires, last_seen, last_sync, last_error,
                  last_error_at, pull_cursor, pushed, clock_skew, client_release, client_schema, client_pending, client_oldest
                FROM hub_device ORDER BY created, id
                """) {
                let id = try r.text(0), scope = try r.text(2), cursor = try r.int(13), enrolled = try r.optInt(6)
                out.append(DeviceInfo(
                    id: id, name: try r.text(1), scope: scope, site: try r.optText(3), siteName: try r.optText(4), created: try r.int(5),
                    enrolled: enrolled, revoked: try r.optInt(7), codeExpires: try r.optInt(8), lastSeen: try r.optInt(9),
                    lastSync: try r.optInt(10), lastError: try r.optText(11), lastErrorAt: try r.optInt(12), pullCursor: cursor,
                    pending: enrolled == nil ? 0 : try await Self.pendingCount(pg, after: cursor, scope: scope, device: id),
                    pushed: Int(try r.int(14)), clockSkew: try r.optInt(15),
                    client: try r.optInt(16).map { ClientReport(release: Int($0), schema: Int(try r.optInt(17) ?? 0), pending: Int(try r.optInt(18) ?? 0), oldestUnsent: try r.optInt(19)) }))
            }
            return out
        }
    }

    /// Changes in `scope` after `after` that `device` did not push: through the region index.
    static func pendingCount(_ pg: PG, after: Int64, scope: String, device: String) async throws -> Int {
        let (cond, binds) = ScopeSQL.condition(scope, column: "row", firstBind: 3)
        let r = try await pg.one("SELECT count(*) FROM hub_change WHERE seq > $1 AND (peer IS NULL OR peer <> $2) AND \(cond)",
                                 [.int(after), .text(device)] + binds)
        return Int(try r?.int(0) ?? 0)
    }

    public func revoke(device: String) async throws -> DeviceInfo {
        let now = self.now()
        let changed = try await transaction { pg -> Bool in
            let rows = try await pg.rows("UPDATE hub_device SET revoked = $1, code_hash = NULL WHERE id = $2 AND revoked IS NULL RETURNING id",
                                         [.int(now), .text(device)])
            return !rows.isEmpty
        }
        guard let info = try await devices().first(where: { $0.id == device }) else {
            throw HubFailure(.notFound, "no device \(device) on this hub (see fieldsync-hub device list)")
        }
        if !changed && info.revoked == nil { throw HubFailure(.conflict, "device \(device) could not be revoked") }
        return info
    }

    public func enroll(_ request: EnrollRequest) async throws -> EnrollResponse {
        try SitePossession.check(site: request.site, key: request.key, proof: request.proof,
                                 message: EnrollRequest.possessionMessage(code: request.code, site: request.site))
        let h = Enrolment.codeHash(request.code), token = Enrolment.newToken(), now = self.now()
        let (site, name, key) = (hubSite, hubName, hubKey.publicKey)
        return try await transaction { pg in
            var row = try await pg.one("SELECT id, name, scope, code_expires, revoked FROM hub_device WHERE code_hash = $1 FOR UPDATE", [.text(h)])
            if row == nil {
                // The same laptop again with the code it just used, its token never seen: the
                // answer was lost on the way (sync.md §1). It gets a fresh token.
                row = try await pg.one("""
                    SELECT id, name, scope, code_expires, revoked FROM hub_device
                    WHERE used_code_hash = $1 AND site = $2 AND token_used IS NULL AND revoked IS NULL FOR UPDATE
                    """, [.text(h), .text(request.site.hex)])
            }
            guard let row else { throw Enrolment.badCode }
            let id = try row.text(0)
            if try row.optInt(4) != nil { throw HubFailure.revoked(id) }
            if let exp = try row.optInt(3), exp < now { throw Enrolment.expired(exp) }
            try await Self.bind(pg, site: request.site, key: request.key, to: id, now: now)
            try await pg.exec("""
                UPDATE hub_device SET token_hash = $1, code_hash = NULL, used_code_hash = $2, token_used = NULL, site = $3, site_name = $4,
                  enrolled = $5, last_seen = $5 WHERE id = $6
                """, [.text(Enrolment.hash(token)), .text(h), .text(request.site.hex), .text(request.siteName), .int(now), .text(id)])
            try await Self.noteSite(pg, request.site, name: request.siteName)
            return EnrollResponse(device: id, name: try row.text(1), scope: try row.text(2), token: token, hubSite: site, hubName: name, hubKey: key)
        }
    }

    /// Binds `site` to device `id` in the directory (the rules of ``SQLiteHubStore``'s binding:
    /// a site of another device or of the hub is refused, at most 16 per device).
    static func bind(_ pg: PG, site: SiteID, key: [UInt8], to id: String, now: Int64) async throws {
        // Two processes binding at once: the first insert wins, the second sees it.
        try await pg.exec("SELECT pg_advisory_xact_lock(2026120103)")
        if let row = try await pg.one("SELECT device FROM hub_site WHERE site = $1", [.int(Int64(bitPattern: site.raw))]) {
            let owner = try row.optText(0)
            guard owner == id else { throw Enrolment.siteTaken(site, byHub: owner == nil) }
            return
        }
        let held = Int(try await pg.one("SELECT count(*) FROM hub_site WHERE device = $1", [.text(id)])?.int(0) ?? 0)
        guard held < SitePossession.maxSitesPerDevice else { throw Enrolment.tooManySites(id, held) }
        try await pg.exec("INSERT INTO hub_site(site, hex, device, key, bound) VALUES ($1, $2, $3, $4, $5)",
                          [.int(Int64(bitPattern: site.raw)), .text(site.hex), .text(id), .bytes(key), .int(now)])
    }

    static func noteSite(_ pg: PG, _ site: SiteID, name: String?) async throws {
        try await pg.exec("""
            INSERT INTO fs_site(id, hex, name) VALUES ($1, $2, COALESCE($3, ''))
            ON CONFLICT (id) DO UPDATE SET name = COALESCE(NULLIF(excluded.name, ''), fs_site.name)
            """, [.int(Int64(bitPattern: site.raw)), .text(site.hex), .opt(name)])
    }

    public func bindSite(_ b: SiteBinding, for device: Device) async throws {
        try SitePossession.check(site: b.site, key: b.key, proof: b.proof, message: SiteBinding.possessionMessage(device: device.id, site: b.site))
        let now = self.now()
        try await transaction { pg in
            try await Self.bind(pg, site: b.site, key: b.key, to: device.id, now: now)
            let name = try await pg.one("SELECT site_name FROM hub_device WHERE id = $1", [.text(device.id)])?.optText(0) ?? device.name
            try await Self.noteSite(pg, b.site, name: name)
        }
    }

    public func authenticate(token: String) async throws -> Device {
        let h = Enrolment.hash(token)
        return try await transaction { pg in
            guard let row = try await pg.one("SELECT id, name, scope, revoked, token_used FROM hub_device WHERE token_hash = $1", [.text(h)]) else {
                throw HubFailure.badToken
            }
            let id = try row.text(0)
            if try row.optInt(3) != nil { throw HubFailure.revoked(id) }
            if try row[4].decode(Int16?.self) == nil {
                // The first use of this token: from now on its enrolment code cannot be replayed.
                try await pg.exec("UPDATE hub_device SET token_used = 1 WHERE id = $1", [.text(id)])
            }
            return Device(id: id, name: try row.text(1), scope: try row.text(2))
        }
    }

    public func note(device: Device, deviceTime: Int64?, client: ClientReport?, error: String?) async {
        let now = self.now()
        _ = try? await transaction { pg in
            // One statement per request: the client report's columns keep their values when the
            // device sent none (release is null then).
            try await pg.exec("""
                UPDATE hub_device SET last_seen = $1, clock_skew = COALESCE($2, clock_skew),
                  client_release = COALESCE($3, client_release), client_schema = COALESCE($4, client_schema),
                  client_pending = COALESCE($5, client_pending), client_oldest = CASE WHEN $3::bigint IS NULL THEN client_oldest ELSE $6 END
                WHERE id = $7
                """, [.int(now), .opt(deviceTime.map { $0 &- now }), .opt(client.map { Int64($0.release) }), .opt(client.map { Int64($0.schema) }),
                      .opt(client.map { Int64($0.pending) }), .opt(client?.oldestUnsent), .text(device.id)])
            if let error {
                try await pg.exec("UPDATE hub_device SET last_error = $1, last_error_at = $2 WHERE id = $3", [.text(error), .int(now), .text(device.id)])
            }
        }
    }

    public func siteNames(_ ids: Set<SiteID>) async throws -> [SiteID: String] {
        guard !ids.isEmpty else { return [:] }
        return try await read { pg in
            var out: [SiteID: String] = [:]
            for r in try await pg.rows("SELECT id, name FROM fs_site WHERE id = ANY($1::bigint[])", [.ints(ids.map { Int64(bitPattern: $0.raw) })]) {
                let id = SiteID(raw: UInt64(bitPattern: try r.int(0)))
                let name = try r.text(1)
                out[id] = name.isEmpty ? id.hex : name
            }
            return out
        }
    }
}

// MARK: - ScopeSQL

/// The condition "the record lies in the scope" on a change's or record's id, as the region
/// indexes serve it: `substr(row, 1, 6|9|12) = scope` (an index scan by region and position), or a
/// prefix match for a province's or city's 2- and 4-digit scopes.
enum ScopeSQL {
    static func condition(_ scope: String, column: String, firstBind: Int) -> (String, [PGValue]) {
        let s = Scope(scope)
        if s.prefix.isEmpty { return ("true", []) }
        if let n = s.indexedLength { return ("substr(\(column), 1, \(n)) = $\(firstBind)", [.text(s.prefix)]) }
        return ("(\(column) >= $\(firstBind) AND \(column) < $\(firstBind + 1))", [.text(s.prefix), .text(s.upperBound)])
    }
}
