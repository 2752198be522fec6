import Foundation
import PostgresNIO

// MARK: - PostgresURL

/// Where the hub's PostgreSQL store lives: `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE`, or a
/// unix socket folder as libpq writes it, `postgres://USER@localhost/DATABASE?host=/run/postgresql`.
///
///     try PostgresURL("postgres://fieldsync@db.county.internal/hub")
///     try PostgresURL("postgres://postgres@localhost/fieldsync?host=/tmp/fieldsync-pg.Ab12Cd")
public struct PostgresURL: Sendable, CustomStringConvertible {
    public var user: String
    public var password: String?
    public var host: String
    public var port: Int
    public var database: String
    /// A unix socket folder (the socket is `FOLDER/.s.PGSQL.PORT`).
    public var socketFolder: String?
    /// TLS to the database server (`?sslmode=require`).
    public var requireTLS: Bool

    public struct Invalid: Error, CustomStringConvertible {
        public let description: String
    }

    public init(_ text: String) throws {
        guard let u = URLComponents(string: text), u.scheme == "postgres" || u.scheme == "postgresql" else {
            throw Invalid(description: "a PostgreSQL store is postgres://USER@HOST[:PORT]/DATABASE (or …?host=/socket/folder), got \"\(text.prefix(80))\"")
        }
        guard let user = u.user, !user.isEmpty else { throw Invalid(description: "the PostgreSQL URL names no user: postgres://USER@HOST/DATABASE") }
        let db = String(u.path.drop { $0 == "/" })
        guard !db.isEmpty else { throw Invalid(description: "the PostgreSQL URL names no database: postgres://USER@HOST/DATABASE") }
        self.user = user.removingPercentEncoding ?? user
        password = u.password?.removingPercentEncoding
        host = u.host ?? "localhost"
        port = u.port ?? 5432
        database = db
        socketFolder = u.queryItems?.first { $0.name == "host" }?.value.flatMap { $0.hasPrefix("/") ? $0 : nil }
        requireTLS = u.queryItems?.first { $0.name == "sslmode" }?.value.map { ["require", "verify-ca", "verify-full"].contains($0) } ?? false
    }

    /// The URL with its password hidden, for logs and messages.
    public var description: String {
        "postgres://\(user)\(password == nil ? "" : ":***")@\(host)\(port == 5432 ? "" : ":\(port)")/\(database)" + (socketFolder.map { "?host=\($0)" } ?? "")
    }

    var configuration: PostgresClient.Configuration {
        var c: PostgresClient.Configuration
        if let socketFolder {
            c = .init(unixSocketPath: socketFolder + "/.s.PGSQL.\(port)", username: user, password: password, database: database)
        } else {
            c = .init(host: host, port: port, username: user, password: password, database: database,
                      tls: requireTLS ? .require(.makeClientConfiguration()) : .disable)
        }
        c.options.maximumConnections = 16
        return c
    }
}
