// swift-tools-version:6.0
// Tycho: a Lua 5.4 workbench for preference-optimization research.
// Floors (see ../shared/docs/architecture.md): C system libraries -> TychoTensor -> TychoNN, TychoText
// -> TychoTrain, TychoInfer -> TychoLua -> tycho.
import PackageDescription

// The numeric core is compiled optimised even in debug builds: its kernels are the product's speed, and
// `swift test` (a debug build) must stay within its time budget. `-O` keeps every safety check.
let optimisedCore: [SwiftSetting] = [.unsafeFlags(["-O"])]

let package = Package(
    name: "Tycho",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "tycho", targets: ["tycho"]),
        .library(name: "TychoTensor", targets: ["TychoTensor"]),
        .library(name: "TychoNN", targets: ["TychoNN"]),
        .library(name: "TychoTrain", targets: ["TychoTrain"]),
        .library(name: "TychoInfer", targets: ["TychoInfer"]),
        .library(name: "TychoLua", targets: ["TychoLua"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.0.0"),
    ],
    targets: [
        .systemLibrary(name: "CLua", pkgConfig: "lua5.4",
                       providers: [.apt(["liblua5.4-dev"])]),
        .systemLibrary(name: "CReadline", pkgConfig: "readline",
                       providers: [.apt(["libreadline-dev"])]),
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        // ZeroMQ for the Jupyter kernel (`tycho kernel`).
        .systemLibrary(name: "CZMQ", pkgConfig: "libzmq",
                       providers: [.apt(["libzmq3-dev"])]),
        .target(name: "CLuaShim", dependencies: ["CLua", "CReadline"],
                cSettings: [.unsafeFlags(["-O2"])]),
        // Transcendental and softmax kernels in C, one build per instruction set, chosen at run time.
        // Optimised in debug builds too, for the same reason as the numeric core.
        .target(name: "CTensorKernels", cSettings: [.unsafeFlags(["-O2"])],
                linkerSettings: [.linkedLibrary("m", .when(platforms: [.linux]))]),
        // Generation's decode products (each element summed in a fixed order, so rows never depend on the batch).
        .target(name: "CDecodeKernels", cSettings: [.unsafeFlags(["-O2"])],
                linkerSettings: [.linkedLibrary("m", .when(platforms: [.linux]))]),
        .target(name: "TychoTensor", dependencies: ["COpenBLAS", "CTensorKernels"],
                swiftSettings: optimisedCore),
        .target(name: "TychoText", dependencies: [.product(name: "Crypto", package: "swift-crypto")], swiftSettings: optimisedCore),
        .target(name: "TychoNN", dependencies: ["TychoTensor", "CDecodeKernels"], swiftSettings: optimisedCore),
        .target(name: "TychoInfer", dependencies: ["TychoTensor", "TychoNN", "TychoText"], swiftSettings: optimisedCore),
        // Checkpoints write Hugging Face folders (TychoNN); run records hash files (Crypto) and write JSON (TychoText);
        // evals and RFT generate with TychoInfer (training may call inference, never the reverse).
        .target(name: "TychoTrain", dependencies: ["TychoTensor", "TychoNN", "TychoText", "TychoInfer",
                                                   .product(name: "Crypto", package: "swift-crypto")],
                swiftSettings: optimisedCore),
        .target(name: "TychoLua", dependencies: ["CLua", "CLuaShim", "TychoTensor", "TychoText", "TychoNN", "TychoTrain", "TychoInfer"]),
        .executableTarget(name: "tycho", dependencies: [
            "TychoLua", "TychoTensor", "TychoText", "TychoNN", "TychoTrain", "TychoInfer", "CLua", "CLuaShim", "CReadline", "CZMQ",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Crypto", package: "swift-crypto"),
        ]),
        .testTarget(name: "TychoTensorTests", dependencies: ["TychoTensor", "CTensorKernels"]),
        .testTarget(name: "TychoTextTests", dependencies: ["TychoText"]),
        .testTarget(name: "TychoNNTests", dependencies: ["TychoNN", "TychoTensor", "CDecodeKernels"]),
        .testTarget(name: "TychoTrainTests", dependencies: ["TychoTrain", "TychoTensor", "TychoNN", "TychoText", "TychoInfer"]),
        .testTarget(name: "TychoInferTests", dependencies: ["TychoInfer", "TychoNN", "TychoText", "TychoTensor"]),
        .testTarget(name: "TychoLuaTests", dependencies: ["TychoLua", "TychoTensor"]),
        .testTarget(name: "TychoCLITests", dependencies: ["tycho"]),
    ],
    swiftLanguageModes: [.v5]
)
