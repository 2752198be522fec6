// swift-tools-version:6.2
import PackageDescription

let package = Package(
    name: "FieldSync",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "fieldsync", targets: ["fieldsync"]),
        .executable(name: "fieldsync-hub", targets: ["fieldsync-hub"]),
        .library(name: "FieldSyncCore", targets: ["FieldSyncCore"]),
        .library(name: "FieldSyncReplica", targets: ["FieldSyncReplica"]),
    ],
    dependencies: [
        .package(url: "https://github.com/groue/GRDB.swift", exact: "7.10.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", exact: "1.8.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", exact: "2.28.1", traits: ["FullFoundation"]),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto", exact: "3.12.3"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.35.2"),
        .package(url: "https://github.com/vapor/postgres-nio", exact: "1.33.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", exact: "2.4.1"),
    ],
    targets: [
        // Pure merge rules, schema, change-set codec. No I/O.
        .target(name: "FieldSyncCore"),
        // Keys, signatures and digests (Protocol/changeset.md §7), token and password hashing:
        // swift-crypto, so no cryptography is written here.
        .target(
            name: "FieldSyncTrust",
            dependencies: [
                "FieldSyncCore",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
            ]),
        // zlib, for gzip bundles and (later) gzip on the wire.
        .systemLibrary(name: "CZlib", providers: [.apt(["zlib1g-dev"])]),
        // The SQLite replica: local writes, change log, applying changes, bundles.
        .target(
            name: "FieldSyncReplica",
            dependencies: [
                "FieldSyncCore", "FieldSyncTrust", "CZlib",
                .product(name: "GRDB", package: "GRDB.swift"),
            ]),
        // libcurl, through typed wrappers (curl_easy_setopt is variadic).
        .systemLibrary(name: "CCurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        // The sync client: HTTP over libcurl, push/pull/snapshot, retries.
        .target(name: "FieldSyncTransport", dependencies: ["FieldSyncCore", "FieldSyncReplica", "CCurl", "CZlib"]),
        // The hub: store behind a narrow interface, HTTP API on Hummingbird.
        .target(
            name: "FieldSyncHub",
            dependencies: [
                "FieldSyncCore", "FieldSyncTrust", "FieldSyncReplica", "FieldSyncPresentation", "FieldSyncWeb",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]),
        // The hub's PostgreSQL store (docs/deploy.md): the same rules as the SQLite store, for a
        // county or a province with several hub processes on one database.
        .target(
            name: "FieldSyncPostgres",
            dependencies: [
                "FieldSyncCore", "FieldSyncTrust", "FieldSyncReplica", "FieldSyncHub",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                // Only to read a SQLite hub file when moving it to PostgreSQL (PostgresImport).
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        // What the hub's console and the laptop's app share: safe HTML, forms, cookies, security
        // headers and the conflict views as pages.
        .target(
            name: "FieldSyncWeb",
            dependencies: [
                "FieldSyncCore", "FieldSyncTrust", "FieldSyncReplica", "FieldSyncPresentation",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ]),
        // The cadre's own app (docs/app.md): a web app on 127.0.0.1, served by `fieldsync app`
        // and `fieldsync daemon`, over the laptop's replica.
        .target(
            name: "FieldSyncApp",
            dependencies: [
                "FieldSyncCore", "FieldSyncTrust", "FieldSyncReplica", "FieldSyncTransport", "FieldSyncPresentation", "FieldSyncWeb",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        // Chinese tables and views shared by the two CLIs and the hub's console.
        .target(name: "FieldSyncPresentation", dependencies: ["FieldSyncCore", "FieldSyncReplica"]),
        // Command-line arguments shared by the two CLIs (the only users of swift-argument-parser).
        .target(
            name: "FieldSyncCommandLine",
            dependencies: ["FieldSyncCore", "FieldSyncReplica", "FieldSyncPresentation", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        // The fuzz harness: every decoder of outside data and the properties it promises
        // (fieldsync-fuzz and FuzzRegressionSpec); not part of any shipped library.
        .target(name: "FieldSyncFuzzing", dependencies: ["FieldSyncCore", "FieldSyncReplica", .product(name: "GRDB", package: "GRDB.swift")]),
        .executableTarget(
            name: "fieldsync",
            dependencies: [
                "FieldSyncCore", "FieldSyncReplica", "FieldSyncTransport", "FieldSyncPresentation", "FieldSyncCommandLine", "FieldSyncApp",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        .executableTarget(
            name: "fieldsync-hub",
            dependencies: [
                "FieldSyncCore", "FieldSyncReplica", "FieldSyncHub", "FieldSyncPostgres", "FieldSyncPresentation", "FieldSyncCommandLine",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        // A TCP proxy for the network lab and tests: adds delay, cuts connections at chosen bytes.
        .executableTarget(name: "fieldsync-netlab-proxy", swiftSettings: [.swiftLanguageMode(.v5)]),
        .executableTarget(
            name: "fieldsync-bench",
            dependencies: [
                "FieldSyncCore", "FieldSyncTrust", "FieldSyncReplica", "FieldSyncHub", "FieldSyncPostgres", "FieldSyncTransport",
                .product(name: "GRDB", package: "GRDB.swift"), .product(name: "PostgresNIO", package: "postgres-nio"),
            ]),
        // Fuzzer of the change-set and bundle decoders (scripts/fuzz); without FIELDSYNC_FUZZ it
        // runs the files it is given through the same harness (a regression runner).
        .executableTarget(name: "fieldsync-fuzz", dependencies: ["FieldSyncCore", "FieldSyncReplica", "FieldSyncFuzzing"]),
        // Helpers shared by the test targets (temporary folders, running the executables).
        .target(
            name: "FieldSyncTestSupport",
            dependencies: ["FieldSyncCore", .product(name: "GRDB", package: "GRDB.swift")],
            path: "Tests/FieldSyncTestSupport"),
        .testTarget(name: "FieldSyncCoreTests", dependencies: ["FieldSyncCore"]),
        .testTarget(name: "FieldSyncTrustTests", dependencies: ["FieldSyncCore", "FieldSyncTrust"]),
        .testTarget(
            name: "FieldSyncReplicaTests",
            dependencies: ["FieldSyncCore", "FieldSyncTrust", "FieldSyncReplica", "FieldSyncPresentation", "FieldSyncCommandLine", "FieldSyncFuzzing", "FieldSyncTestSupport", "fieldsync"]),
        .testTarget(
            name: "FieldSyncHubTests",
            dependencies: [
                "FieldSyncCore", "FieldSyncTrust", "FieldSyncReplica", "FieldSyncHub", "FieldSyncPostgres", "FieldSyncTransport", "FieldSyncTestSupport", "FieldSyncWeb", "FieldSyncApp",
                "fieldsync", "fieldsync-hub", "fieldsync-netlab-proxy",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ]),
    ]
)
