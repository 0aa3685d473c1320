// swift-tools-version: 6.1
import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("InternalImportsByDefault"),
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "FileFleet",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "filefleet", targets: ["filefleet"]),
        .library(name: "FileFleet", targets: ["FileFleet"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/x-sheep/swift-property-based", from: "2.0.1"),
        // /metrics: swift-metrics' API with the Prometheus backend (neither pulls in swift-nio).
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        // Log lines (levels, metadata carried per run and worker) and one lifecycle per process:
        // service-lifecycle brings only swift-log and swift-async-algorithms (no swift-nio).
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
    ],
    targets: [
        // C libraries, reached through pkg-config. Nothing above FleetKafka/FleetPostgres imports them.
        .systemLibrary(name: "CRdKafka", pkgConfig: "rdkafka",
                       providers: [.apt(["librdkafka-dev (>= 2.8, or run scripts/setup)"])]),
        .systemLibrary(name: "CLibPQ", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
        // SHA-256 only; imported by exactly one file, FleetCrypto's.
        .systemLibrary(name: "COpenSSL", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        // glibc's <malloc.h> (mallopt), which the Glibc module leaves out; imported by FleetMemory only.
        .systemLibrary(name: "CMalloc"),

        // The wrappers: the only Swift that imports a C module.
        .target(name: "FleetKafka", dependencies: ["CRdKafka"], swiftSettings: strict),
        .target(name: "FleetPostgres", dependencies: ["CLibPQ", "FleetCalendar"], swiftSettings: strict),
        .target(name: "FleetCrypto", dependencies: ["COpenSSL"], swiftSettings: strict),
        .target(name: "FleetMemory", dependencies: ["CMalloc"], swiftSettings: strict),
        // Calendar arithmetic shared by the Postgres wrapper and the frontmatter parser.
        .target(name: "FleetCalendar", swiftSettings: strict),
        .target(
            name: "FileFleet",
            dependencies: ["FleetKafka", "FleetPostgres", "FleetCrypto", "FleetCalendar", "FleetMemory",
                           .product(name: "Yams", package: "Yams"),
                           .product(name: "CoreMetrics", package: "swift-metrics"),
                           .product(name: "Prometheus", package: "swift-prometheus"),
                           .product(name: "Logging", package: "swift-log"),
                           .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                           .product(name: "UnixSignals", package: "swift-service-lifecycle")],
            swiftSettings: strict),
        .executableTarget(
            name: "filefleet",
            dependencies: ["FileFleet", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: strict),

        .executableTarget(name: "postgres-bench", dependencies: ["FleetPostgres"],
                          path: "Benchmarks/PostgresBench", swiftSettings: strict),

        .target(name: "TestSupport", dependencies: ["FileFleet"],
                path: "Tests/TestSupport", swiftSettings: strict),
        .testTarget(name: "FleetPostgresTests", dependencies: ["FleetPostgres", "TestSupport"], swiftSettings: strict),
        .testTarget(name: "FleetKafkaTests", dependencies: ["FleetKafka", "TestSupport"], swiftSettings: strict),
        .testTarget(
            name: "FileFleetTests",
            dependencies: ["FileFleet", "FleetCrypto", "TestSupport", .product(name: "PropertyBased", package: "swift-property-based")],
            swiftSettings: strict),
        // FleetKafkaTests runs it as a child process and kills it.
        .executableTarget(name: "kafka-test-consumer", dependencies: ["FleetKafka"],
                          path: "Tests/KafkaTestConsumer", swiftSettings: strict),
        .executableTarget(name: "kafka-bench", dependencies: ["FleetKafka"],
                          path: "Benchmarks/KafkaBench", swiftSettings: strict),
    ],
    swiftLanguageModes: [.v6]
)
