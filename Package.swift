// swift-tools-version:6.0
import Foundation
import PackageDescription

let package = Package(
    name: "Vigil",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "vigil", targets: ["vigil"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.80.0"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.1.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.0.0"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.0.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.27.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.1.0"),
    ],
    targets: [
        // System libraries.
        .systemLibrary(
            name: "CRdKafka",
            pkgConfig: "rdkafka",
            providers: [.apt(["librdkafka-dev"])]
        ),
        .systemLibrary(
            name: "CNghttp2",
            pkgConfig: "libnghttp2",
            providers: [.apt(["libnghttp2-dev"])]
        ),

        // Pure detection core: no I/O, no clocks, no actors.
        .target(
            name: "Detection",
            dependencies: [.product(name: "Collections", package: "swift-collections")]
        ),

        // Wire messages and HTTP/2 RPC over libnghttp2 + SwiftNIO.
        .target(
            name: "Protocol",
            dependencies: [
                "Detection",
                "CNghttp2",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),

        // librdkafka: consumer, producer, admin, embedded broker.
        .target(
            name: "Kafka",
            dependencies: [
                "CRdKafka",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),

        .target(
            name: "Worker",
            dependencies: [
                "Detection", "Protocol", "Kafka",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),

        .target(
            name: "Coordinator",
            dependencies: [
                "Detection", "Protocol",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),

        .target(
            name: "Ingest",
            dependencies: [
                "Detection", "Kafka",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),

        .executableTarget(
            name: "vigil",
            dependencies: [
                "Detection", "Protocol", "Kafka", "Worker", "Coordinator", "Ingest",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "TOMLKit", package: "TOMLKit"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ]
        ),

        .testTarget(name: "DetectionTests", dependencies: ["Detection"], exclude: ["Fixtures"]),
        .testTarget(
            name: "ProtocolTests",
            dependencies: [
                "Protocol",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        .testTarget(name: "KafkaTests", dependencies: ["Kafka", "Ingest", "Detection"]),
        .testTarget(
            name: "IngestTests",
            dependencies: [
                "Ingest", "Kafka", "Detection",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        .testTarget(name: "CoordinatorTests", dependencies: ["Coordinator", "Protocol", "Detection"]),
        .testTarget(
            name: "WorkerTests",
            dependencies: [
                "Worker", "Detection", "Protocol", "Kafka",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        .testTarget(name: "IntegrationTests", dependencies: ["Detection", "Protocol", "Kafka"]),
    ]
)

// libFuzzer targets (`make fuzz`, docs/security.md), declared only when VIGIL_FUZZ is set, so
// that ordinary builds and tests never compile them. Built with `-DFUZZING -sanitize=fuzzer` they
// fuzz; without, each replays the input files it is given (to reproduce a crash).
if ProcessInfo.processInfo.environment["VIGIL_FUZZ"] != nil {
    package.targets += [
        .target(name: "FuzzSupport", path: "Fuzz/Support"),
        .executableTarget(name: "FuzzTradeParser", dependencies: ["Detection", "FuzzSupport"], path: "Fuzz/TradeParser"),
        .executableTarget(name: "FuzzCheckpoint", dependencies: ["Detection", "FuzzSupport"], path: "Fuzz/Checkpoint"),
        .executableTarget(name: "FuzzRPCMessages", dependencies: ["Detection", "Protocol", "FuzzSupport"], path: "Fuzz/RPCMessages"),
        // The config loader lives in the vigil executable; Fuzz/Config compiles its source file
        // (a symlink to Sources/vigil/ClusterConfig.swift) with the libraries it imports.
        .executableTarget(
            name: "FuzzConfig",
            dependencies: ["Detection", "Protocol", "FuzzSupport", .product(name: "TOMLKit", package: "TOMLKit")],
            path: "Fuzz/Config"),
    ]
}
