// swift-tools-version: 6.1
import PackageDescription

let swiftSettings: [SwiftSetting] = [
  .swiftLanguageMode(.v6),
  .enableUpcomingFeature("InternalImportsByDefault"),
]

// x86-64-v3 (Haswell, Zen and later) for the numeric modules: the indicator kernels reproduce
// TA-Lib's fused multiply-adds bit for bit, and an FMA instruction keeps them as fast as TA-Lib
// instead of calling libm's fma; the math kernels' SIMD lanes (four doubles, eight floats), the
// scaler's loops and the training reference's distances fill one AVX2 register each rather
// than two SSE ones. Swift does not
// contract a·b + c on its own, so results do not change, only their speed. F16C (in the same
// level) converts the nearest-sample screen's half-precision sample eight values at a time.
#if arch(x86_64)
let vectorSettings: [SwiftSetting] = [
  .unsafeFlags(["-Xcc", "-mavx2", "-Xcc", "-mfma", "-Xcc", "-mf16c"])
]
#else
let vectorSettings: [SwiftSetting] = []
#endif

// AVX-512 (Skylake-SP's F, CD, BW, DQ and VL) for the one module of kernels chosen at run time,
// where CPUFeatures finds them: Swift has no per-function target attribute.
#if arch(x86_64)
let avx512Settings: [SwiftSetting] = [
  .unsafeFlags(
    ["-mavx512f", "-mavx512cd", "-mavx512bw", "-mavx512dq", "-mavx512vl", "-mavx2", "-mfma"]
      .flatMap { ["-Xcc", $0] }
  )
]
#else
let avx512Settings: [SwiftSetting] = []
#endif

let package = Package(
  name: "Vane",
  platforms: [.macOS(.v15)],
  products: [
    .executable(name: "vane", targets: ["vane"])
  ],
  dependencies: [
    .package(url: "https://github.com/grpc/grpc-swift-2.git", from: "2.4.3"),
    .package(url: "https://github.com/grpc/grpc-swift-protobuf.git", from: "2.4.1"),
    .package(url: "https://github.com/apple/swift-protobuf.git", from: "1.39.0"),
    .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
    .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
    .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
    .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
    .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
    .package(url: "https://github.com/apple/swift-metrics.git", from: "2.7.0"),
    .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.1.0"),
  ],
  targets: [
    // C at the bottom: one target per foreign library.
    .target(
      name: "CGRPCShim",
      linkerSettings: [
        .linkedLibrary("grpc++_reflection"),
        .linkedLibrary("grpc++"),
        .linkedLibrary("grpc"),
        .linkedLibrary("gpr"),
        .linkedLibrary("protobuf"),
        .linkedLibrary("absl_synchronization"),
        .linkedLibrary("stdc++"),
      ]
    ),
    .systemLibrary(name: "CBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
    // libmicrohttpd: the HTTP listener of the Prometheus endpoint.
    .target(
      name: "CMicroHTTPD",
      linkerSettings: [.linkedLibrary("microhttpd")]
    ),
    .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
    // OpenSSL's libcrypto (Debian's libssl-dev): SHA-256 and Ed25519.
    .target(
      name: "COpenSSL",
      linkerSettings: [.linkedLibrary("crypto")]
    ),
    // The CPU's instruction sets (cpuid, xgetbv): checked against OpenBLAS's kernel choice.
    .target(name: "CCPUID"),

    .target(
      name: "GRPCShimTransport",
      dependencies: [
        "CGRPCShim",
        .product(name: "GRPCCore", package: "grpc-swift-2"),
      ],
      swiftSettings: swiftSettings
    ),
    // Generated code only: its messages keep their fields in a class, and every read or write
    // of one was a dynamic exclusivity check (two runtime calls; 1.3k instructions to encode a
    // PredictResponse, 1.8k to decode one). The generator's accesses never overlap.
    // The protobuf coders the generated stubs name (see ProtobufSerializer.swift).
    .target(
      name: "VaneWireCoding",
      dependencies: [
        .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        .product(name: "GRPCCore", package: "grpc-swift-2"),
      ],
      swiftSettings: swiftSettings
    ),
    .target(
      name: "VaneProto",
      dependencies: [
        "VaneWireCoding",
        .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        .product(name: "GRPCCore", package: "grpc-swift-2"),
      ],
      swiftSettings: swiftSettings + [.unsafeFlags(["-enforce-exclusivity=unchecked"])]
    ),
    // Prometheus metrics: swift-metrics' backend and the /metrics endpoint (no gRPC).
    .target(
      name: "VaneMetrics",
      dependencies: [
        "CMicroHTTPD", "VaneCore",
        .product(name: "Metrics", package: "swift-metrics"),
        .product(name: "CoreMetrics", package: "swift-metrics"),
        .product(name: "Prometheus", package: "swift-prometheus"),
        .product(name: "Logging", package: "swift-log"),
        .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
      ],
      swiftSettings: swiftSettings
    ),
    .target(
      name: "VaneCore",
      dependencies: [
        "CZlib", "COpenSSL",
        .product(name: "Logging", package: "swift-log"),
      ],
      swiftSettings: swiftSettings
    ),
    // SQLite stores: one open sequence and error mapping for every store.
    .target(
      name: "VaneStore",
      dependencies: [
        "VaneCore", .product(name: "GRDB", package: "GRDB.swift"),
        // SQLite's C API under GRDB, for the one statement bound without GRDB's arguments.
        .product(name: "GRDBSQLite", package: "GRDB.swift"),
      ],
      swiftSettings: swiftSettings
    ),
    // NVIDIA's CUDA runtime, cuBLAS and NVRTC, loaded with dlopen at run time (pip wheels).
    .target(
      name: "CCUDA",
      linkerSettings: [.linkedLibrary("dl")]
    ),
    .target(
      name: "VaneMath",
      dependencies: ["CBLAS", "CCPUID", "CCUDA", "VaneCore"],
      // Optimised in debug builds too: unspecialised SIMD code is some 50× slower at -Onone,
      // and the test suite trains float32 models through the eight-lane activations.
      swiftSettings: swiftSettings + vectorSettings
        + [.unsafeFlags(["-O"], .when(configuration: .debug))]
    ),
    // VaneMath's lane kernels again, for sixteen lanes (Sources/VaneMathAVX512 links the file).
    .target(
      name: "VaneMathAVX512",
      dependencies: ["VaneMath"],
      swiftSettings: swiftSettings + avx512Settings
        + [.define("VANE_WIDE_LANES"), .unsafeFlags(["-O"], .when(configuration: .debug))]
    ),
    .target(
      name: "VaneQuality",
      dependencies: [
        "VaneCore", "VaneMath", "VaneBundle", .product(name: "Yams", package: "Yams"),
      ],
      swiftSettings: swiftSettings
    ),
    // XGBoost's C API, loaded with dlopen at run time (a CUDA build can be dropped in).
    .target(
      name: "CXGBoost",
      linkerSettings: [.linkedLibrary("dl")]
    ),
    .target(
      name: "VaneModels",
      dependencies: ["CXGBoost", "VaneCore", "VaneMath"],
      swiftSettings: swiftSettings
    ),
    // ONNX export of the fitted models: the protobuf wire format written by hand (no fetched onnx.proto).
    .target(
      name: "VaneONNX",
      dependencies: ["VaneCore", "VaneModels"],
      swiftSettings: swiftSettings
    ),
    // The ONNX engine: a hostile-input reader (types generated from Debian's onnx.proto), a
    // planned graph and Vane's own operators on OpenBLAS.
    .target(
      name: "VaneONNXRuntime",
      dependencies: [
        "VaneCore", "VaneMath", "VaneMathAVX512",
        .product(name: "SwiftProtobuf", package: "swift-protobuf"),
      ],
      swiftSettings: swiftSettings
    ),
    .target(
      name: "VaneTraining",
      dependencies: [
        "VaneCore", "VaneFeatures", "VaneModels", "VaneQuality", "VaneBundle", "VaneONNX",
      ],
      swiftSettings: swiftSettings
    ),
    // Serving: bundles made ready to answer (no gRPC).
    .target(
      name: "VaneServing",
      dependencies: [
        "VaneCore", "VaneBundle", "VaneMath", "VaneModels", "VaneFeatures", "VaneQuality",
        "VaneStore", "VaneONNXRuntime", .product(name: "GRDB", package: "GRDB.swift"),
        .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        .product(name: "Yams", package: "Yams"),
      ],
      swiftSettings: swiftSettings
    ),
    // Rollouts: plans, analysis and the rollout state machine (no gRPC).
    .target(
      name: "VaneRollout",
      dependencies: [
        "VaneCore", "VaneQuality", "VaneBundle", "VaneStore",
        .product(name: "GRDB", package: "GRDB.swift"),
        .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        .product(name: "Yams", package: "Yams"),
      ],
      swiftSettings: swiftSettings
    ),
    .target(
      name: "VaneBundle",
      dependencies: ["VaneCore"],
      // The training reference's distances run on every served request.
      swiftSettings: swiftSettings + vectorSettings
    ),
    .target(
      name: "VaneFeatures",
      dependencies: [
        "VaneCore", "VaneStore", .product(name: "GRDB", package: "GRDB.swift"),
      ],
      swiftSettings: swiftSettings + vectorSettings
    ),
    .target(
      name: "VaneRuntime",
      dependencies: [
        "VaneCore", "VaneMath", "VaneFeatures", "VaneQuality", "VaneBundle", "VaneProto",
        "GRPCShimTransport", "VaneMetrics",
        .product(name: "CoreMetrics", package: "swift-metrics"),
        .product(name: "GRPCCore", package: "grpc-swift-2"),
        "VaneWireCoding",
        .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        .product(name: "Logging", package: "swift-log"),
        .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
      ],
      swiftSettings: swiftSettings
    ),
    .target(
      name: "FeatureService",
      dependencies: [
        "VaneRuntime", "VaneProto", "VaneCore", "VaneFeatures", "VaneMetrics",
        .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
      ],
      swiftSettings: swiftSettings
    ),
    .target(
      name: "TrainerService",
      dependencies: [
        "VaneRuntime", "VaneProto", "VaneCore", "VaneMath", "VaneModels", "VaneFeatures",
        "VaneTraining", "VaneBundle", "VaneQuality", "VaneServing", "VaneStore",
        "GRPCShimTransport", "VaneMetrics",
        .product(name: "GRDB", package: "GRDB.swift"),
        .product(name: "Logging", package: "swift-log"),
        .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
      ],
      swiftSettings: swiftSettings
    ),
    .target(
      name: "PredictorService",
      dependencies: [
        "VaneRuntime", "VaneProto", "VaneCore", "VaneServing", "VaneBundle", "VaneFeatures",
        "VaneMetrics", .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
      ],
      swiftSettings: swiftSettings
    ),
    .target(
      name: "GatekeeperService",
      dependencies: [
        "VaneRuntime", "VaneProto", "VaneCore", "VaneQuality", "VaneBundle", "VaneStore",
        .product(name: "GRDB", package: "GRDB.swift"),
      ],
      swiftSettings: swiftSettings
    ),
    .target(
      name: "DeployService",
      dependencies: [
        "VaneRuntime", "VaneProto", "VaneCore", "VaneRollout", "VaneBundle", "VaneQuality",
        "GRPCShimTransport", "VaneMetrics",
        .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
      ],
      swiftSettings: swiftSettings
    ),
    .executableTarget(
      name: "vane",
      dependencies: [
        "VaneCore", "VaneMath", "VaneProto", "VaneRuntime", "GRPCShimTransport", "VaneFeatures",
        "VaneQuality", "VaneModels", "VaneTraining",
        "FeatureService", "TrainerService", "PredictorService", "GatekeeperService",
        "DeployService", "VaneServing", "VaneRollout", "VaneBundle", "VaneMetrics",
        "VaneONNXRuntime",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
        .product(name: "GRPCCore", package: "grpc-swift-2"),
        .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        .product(name: "Logging", package: "swift-log"),
        .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        .product(name: "UnixSignals", package: "swift-service-lifecycle"),
        .product(name: "Yams", package: "Yams"),
      ],
      // The pipeline's default data: real 1h candles cut by scripts/cut_market_sample.py.
      resources: [.copy("Resources/market")],
      swiftSettings: swiftSettings
    ),
    // The plain C++ grpc++ client and server the RPC benchmark compares against.
    .executableTarget(
      name: "vane-bench-cxx",
      dependencies: ["CGRPCShim"]
    ),

    // Harness shared by the test targets: one service set-up over in-process or shim transports.
    .target(
      name: "VaneTestSupport",
      dependencies: [
        "VaneCore", "VaneBundle", "VaneFeatures", "VaneMath", "VaneQuality",
        "GRPCShimTransport",
        .product(name: "GRPCCore", package: "grpc-swift-2"),
        .product(name: "GRPCInProcessTransport", package: "grpc-swift-2"),
      ],
      path: "Tests/VaneTestSupport",
      swiftSettings: swiftSettings
    ),
    .testTarget(
      name: "GRPCShimTransportTests",
      dependencies: [
        "GRPCShimTransport", "VaneTestSupport",
        // A plain grpc++ server the client is tested against (and the RPC benchmark's reference).
        "vane-bench-cxx",
        .product(name: "GRPCCore", package: "grpc-swift-2"),
        .product(name: "GRPCInProcessTransport", package: "grpc-swift-2"),
      ],
      swiftSettings: swiftSettings
    ),
    .testTarget(
      name: "VaneFeaturesTests",
      dependencies: ["VaneFeatures", "VaneCore", "VaneTestSupport"],
      exclude: ["Fixtures"],
      swiftSettings: swiftSettings
    ),
    .testTarget(
      name: "VaneModelsTests",
      dependencies: ["VaneModels", "VaneCore", "VaneMath", "VaneMathAVX512", "VaneTestSupport"],
      exclude: ["Fixtures"],
      swiftSettings: swiftSettings
    ),
    .testTarget(
      name: "VaneONNXTests",
      dependencies: ["VaneONNX", "VaneONNXRuntime", "VaneModels", "VaneCore", "VaneTestSupport"],
      exclude: ["Fixtures"],
      swiftSettings: swiftSettings
    ),
    .testTarget(
      name: "VaneTrainingTests",
      dependencies: [
        "VaneTraining", "VaneServing", "VaneModels", "VaneFeatures", "VaneCore", "VaneBundle",
        "VaneQuality", "VaneTestSupport",
      ],
      swiftSettings: swiftSettings
    ),
    .testTarget(
      name: "VaneRolloutTests",
      dependencies: ["VaneRollout", "VaneCore", "VaneQuality", "VaneBundle"],
      swiftSettings: swiftSettings
    ),
    .testTarget(
      name: "VaneServingTests",
      dependencies: [
        "VaneServing", "VaneCore", "VaneBundle", "VaneQuality", "VaneTestSupport", "VaneStore",
        .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        .product(name: "GRDB", package: "GRDB.swift"),
      ],
      swiftSettings: swiftSettings
    ),
    .testTarget(
      name: "VaneBundleTests",
      dependencies: ["VaneBundle", "VaneCore", "VaneTestSupport"],
      swiftSettings: swiftSettings
    ),
    .testTarget(
      name: "VaneQualityTests",
      dependencies: ["VaneQuality", "VaneBundle", "VaneCore", "VaneMath", "VaneTestSupport"],
      exclude: ["Fixtures"],
      swiftSettings: swiftSettings
    ),
    .testTarget(
      name: "VaneTests",
      dependencies: [
        "vane", "VaneCore", "VaneMath", "VaneProto", "VaneRuntime", "GRPCShimTransport",
        "VaneTestSupport", "VaneFeatures",
        "VaneQuality", "VaneBundle", "VaneModels", "VaneTraining", "VaneServing", "VaneMetrics",
        "FeatureService", "TrainerService", "PredictorService", "GatekeeperService",
        "DeployService",
        .product(name: "GRPCCore", package: "grpc-swift-2"),
        .product(name: "GRPCInProcessTransport", package: "grpc-swift-2"),
        "VaneWireCoding",
        .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        .product(name: "Yams", package: "Yams"),
        .product(name: "Logging", package: "swift-log"),
        .product(name: "GRDB", package: "GRDB.swift"),
      ],
      swiftSettings: swiftSettings
    ),
  ],
  cxxLanguageStandard: .cxx17
)
