// swift-tools-version: 6.1
// libFuzzer harnesses for every parser that reads outside input. Built only by
// Scripts/fuzz.sh (with -sanitize=fuzzer,address), never by the main package.
import PackageDescription

func quanta(_ modules: String...) -> [Target.Dependency] { modules.map { .product(name: $0, package: "Quanta") } }

/// One harness per parser of outside input; Scripts/fuzz.sh runs them by these names.
let harnesses: [(name: String, dependencies: [Target.Dependency])] = [
    ("json", quanta("QuantaIO")),
    ("safetensors", quanta("QuantaCore", "QuantaIO")),
    ("safetensors-index", quanta("QuantaCore", "QuantaIO")),
    ("gguf", quanta("QuantaCore", "QuantaIO", "QuantaFormats")),
    ("gguf-model", quanta("QuantaCore", "QuantaIO", "QuantaModel")),
    ("config", quanta("QuantaCore", "QuantaIO", "QuantaModel")),
    ("quantized-folder", quanta("QuantaCore", "QuantaIO", "QuantaModel")),
    ("tokenizer", quanta("QuantaCore", "QuantaIO", "QuantaModel")),
    ("sentencepiece", quanta("QuantaModel")),
    ("imatrix", quanta("QuantaIO")),
    ("statistics", quanta("QuantaCore", "QuantaIO", "QuantaModel", "QuantaCalibration")),
    ("logits", quanta("QuantaIO", "QuantaEval")),
    ("recipe", quanta("QuantaAlgorithms")),
    ("report", quanta("QuantaReport")),
]

let package = Package(
    name: "QuantaFuzz",
    dependencies: [.package(name: "Quanta", path: "..")],
    targets: [
        .target(name: "FuzzSupport", dependencies: quanta("QuantaCore", "QuantaIO")),
    ] + harnesses.map { h in
        .executableTarget(name: "fuzz-\(h.name)", dependencies: ["FuzzSupport"] + h.dependencies)
    }
)
