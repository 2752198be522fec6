// swift-tools-version:6.2
import PackageDescription

let package = Package(
    name: "FieldSync",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "fieldsync", targets: ["fieldsync"]),
        .library(name: "FieldSyncCore", targets: ["FieldSyncCore"]),
        .library(name: "FieldSyncReplica", targets: ["FieldSyncReplica"]),
    ],
    dependencies: [
        .package(url: "https://github.com/groue/GRDB.swift", exact: "7.10.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", exact: "1.8.2"),
    ],
    targets: [
        // Pure merge rules, schema, change-set codec. No I/O.
        .target(name: "FieldSyncCore"),
        // zlib, for gzip bundles and (later) gzip on the wire.
        .systemLibrary(name: "CZlib", providers: [.apt(["zlib1g-dev"])]),
        // The SQLite replica: local writes, change log, applying changes, bundles.
        .target(
            name: "FieldSyncReplica",
            dependencies: [
                "FieldSyncCore", "CZlib",
                .product(name: "GRDB", package: "GRDB.swift"),
            ]),
        .executableTarget(
            name: "fieldsync",
            dependencies: [
                "FieldSyncCore", "FieldSyncReplica",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        .executableTarget(
            name: "fieldsync-bench",
            dependencies: ["FieldSyncCore", "FieldSyncReplica", .product(name: "GRDB", package: "GRDB.swift")]),
        .testTarget(name: "FieldSyncCoreTests", dependencies: ["FieldSyncCore"]),
        .testTarget(
            name: "FieldSyncReplicaTests",
            dependencies: ["FieldSyncCore", "FieldSyncReplica", "fieldsync"]),
    ]
)
