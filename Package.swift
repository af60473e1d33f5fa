// swift-tools-version: 6.1
import PackageDescription

/// Release builds are tuned for the build machine; debug builds stay portable.
let native: [SwiftSetting] = [.unsafeFlags(["-target-cpu", "native"], .when(configuration: .release))]
/// Numeric kernels are optimized in debug builds too: unoptimized block quantizers are ~50x
/// slower, which would make the golden-byte tests take minutes. The same holds for checksums and
/// half-precision conversion (QuantaCore) and file parsing (QuantaIO), which every command runs:
/// the test command's report check runs debug binaries. On x86-64 they target Haswell (AVX2 and
/// FMA, every x86-64 CPU since 2013): without hardware FMA each fused multiply-add of ggml's
/// summation orders and of the exponential is a libm call, 5.9 ns against 0.06.
#if arch(x86_64)
let debugCPU = ["-target-cpu", "haswell"]
#else
let debugCPU: [String] = []
#endif
let kernels: [SwiftSetting] = native + [.unsafeFlags(["-O"] + debugCPU, .when(configuration: .debug))]

let package = Package(
    name: "Quanta",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "quanta", targets: ["quanta"]),
        .library(name: "QuantaCore", targets: ["QuantaCore"]),
        .library(name: "QuantaIO", targets: ["QuantaIO"]),
        .library(name: "QuantaFormats", targets: ["QuantaFormats"]),
        .library(name: "QuantaModel", targets: ["QuantaModel"]),
        .library(name: "QuantaCalibration", targets: ["QuantaCalibration"]),
        .library(name: "QuantaAlgorithms", targets: ["QuantaAlgorithms"]),
        .library(name: "QuantaEval", targets: ["QuantaEval"]),
        .library(name: "QuantaReport", targets: ["QuantaReport"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
    ],
    targets: [
        // OpenBLAS, LAPACKE and HDF5 are opened on first use (CLibraryLoader): their headers are
        // needed to build (libopenblas-dev, liblapacke-dev, libhdf5-dev), their libraries only by
        // the commands that multiply matrices or read and write statistics.
        .target(name: "CLibraryLoader"),
        .target(name: "CBLAS", dependencies: ["CLibraryLoader"]),
        .target(name: "CHDF5", dependencies: ["CLibraryLoader"]),
        .target(name: "QuantaCore", swiftSettings: kernels),
        .target(name: "QuantaIO", dependencies: ["QuantaCore", "CHDF5"], swiftSettings: kernels),
        .target(name: "QuantaFormats", dependencies: ["QuantaCore"], swiftSettings: kernels),
        .target(name: "QuantaModel", dependencies: ["QuantaCore", "QuantaIO", "QuantaFormats", "CBLAS"], swiftSettings: kernels),
        .target(name: "QuantaCalibration", dependencies: ["QuantaCore", "QuantaIO", "QuantaModel", "CBLAS"], swiftSettings: kernels),
        .target(name: "QuantaAlgorithms", dependencies: ["QuantaCore", "QuantaIO", "QuantaFormats", "QuantaModel", "QuantaCalibration", "CBLAS",
                                                   .product(name: "Yams", package: "Yams")], swiftSettings: kernels),
        .target(name: "QuantaEval", dependencies: ["QuantaCore", "QuantaIO", "QuantaFormats", "QuantaModel", "QuantaCalibration", "QuantaAlgorithms", "CBLAS"], swiftSettings: kernels),
        .target(name: "QuantaReport", dependencies: ["QuantaCore", "QuantaIO", "QuantaModel"], swiftSettings: native),
        .executableTarget(
            name: "quanta",
            dependencies: ["QuantaCore", "QuantaIO", "QuantaFormats", "QuantaAlgorithms", "QuantaModel", "QuantaEval", "QuantaReport", "QuantaCalibration",
                           .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: native),
        .target(name: "TestSupport", dependencies: ["QuantaCore", "QuantaIO"], path: "Tests/TestSupport"),
        .target(name: "BenchSupport", dependencies: ["QuantaCore", "CBLAS"], path: "Benchmarks/BenchSupport", swiftSettings: native),
        .executableTarget(name: "quanta-bench", dependencies: ["BenchSupport", "QuantaAlgorithms", "QuantaModel", "QuantaReport"], path: "Benchmarks/QuantaBench",
                          swiftSettings: native),
        .executableTarget(name: "quanta-forward-bench", dependencies: ["BenchSupport", "QuantaModel", "QuantaIO", "QuantaReport"], path: "Benchmarks/ForwardBench",
                          swiftSettings: native),
        .executableTarget(name: "quanta-calibrate-bench", dependencies: ["BenchSupport", "CBLAS", "QuantaAlgorithms", "QuantaCalibration", "QuantaModel", "QuantaReport"],
                          path: "Benchmarks/CalibrateBench", swiftSettings: native),
        .testTarget(name: "QuantaCoreTests", dependencies: ["QuantaCore", "TestSupport"]),
        .testTarget(name: "QuantaIOTests", dependencies: ["QuantaIO", "CLibraryLoader", "TestSupport"]),
        .testTarget(name: "QuantaFormatsTests", dependencies: ["QuantaFormats", "QuantaIO", "QuantaModel", "TestSupport"]),
        .testTarget(name: "QuantaModelTests", dependencies: ["QuantaModel", "TestSupport"]),
        .testTarget(name: "QuantaCalibrationTests", dependencies: ["QuantaCalibration", "QuantaModel", "QuantaFormats", "TestSupport"]),
        .testTarget(name: "QuantaAlgorithmsTests", dependencies: ["QuantaAlgorithms", "QuantaModel", "QuantaEval", "QuantaCalibration", "QuantaFormats", "CBLAS", "TestSupport"]),
        .testTarget(name: "QuantaEvalTests", dependencies: ["QuantaEval", "TestSupport"]),
        .testTarget(name: "QuantaReportTests", dependencies: ["QuantaReport", "TestSupport"]),
        .testTarget(name: "QuantaCLITests", dependencies: ["QuantaCore", "QuantaIO", "QuantaFormats", "QuantaModel", "QuantaCalibration", "QuantaAlgorithms", "quanta", "TestSupport"]),
    ]
)
