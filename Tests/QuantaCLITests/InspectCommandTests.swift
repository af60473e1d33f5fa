import QuantaCore
import QuantaIO
import TestSupport
import XCTest

/// `quanta inspect` run as a user runs it: the built executable, its output and exit codes.
final class InspectCommandTests: XCTestCase {
    private func inspect(_ arguments: [String]) throws -> TestSupport.Run {
        let run = try TestSupport.run(try TestSupport.quantaExecutable(), ["inspect"] + arguments)
        XCTAssertFalse(run.signalled, "quanta crashed: \(run.stderr)")
        return run
    }

    private func json(_ run: TestSupport.Run) throws -> JSONValue {
        XCTAssertEqual(run.status, 0, run.stderr)
        return try JSONParser.parse(Array(run.stdout.utf8))
    }

    func testBundledModelJSON() throws {
        let report = try json(inspect([TestSupport.austenModel, "--json"]))
        XCTAssertEqual(report["format"], .string("huggingface-folder"))
        XCTAssertEqual(report["architecture"], .string("llama"))
        XCTAssertEqual(report["parameter_count"]?.intValue, 6_819_072)  // the model README's count
        XCTAssertEqual(report["tensor_count"]?.intValue, 57)
        XCTAssertEqual(report["total_bytes"]?.intValue, 27_276_288)
        XCTAssertEqual(report["bits_per_weight"]?.doubleValue, 32)
        XCTAssertEqual(report["metadata"]?["tie_word_embeddings"], .bool(false))
        XCTAssertEqual(report["metadata"]?["__metadata__.format"], .string("pt"))
        let q = report["tensors"]?.arrayValue?.first { $0["name"] == .string("model.layers.2.self_attn.k_proj.weight") }
        XCTAssertEqual(q?["shape"], .array([.integer(128), .integer(256)]))
        XCTAssertEqual(q?["bytes"]?.intValue, 131_072)
    }

    func testSmolLM2JSON() throws {
        let path = try TestSupport.smolLM2()
        let report = try json(inspect([path, "--json"]))
        XCTAssertEqual(report["format"], .string("gguf"))
        XCTAssertEqual(report["architecture"], .string("llama"))
        XCTAssertEqual(report["parameter_count"]?.intValue, 134_515_008)
        XCTAssertEqual(report["tensor_count"]?.intValue, 272)
        XCTAssertEqual(report["tensor_types"], .object([("Q8_0", .integer(1)), ("F32", .integer(61)), ("Q4_1", .integer(210))]))
        let tensors = report["tensors"]?.arrayValue ?? []
        XCTAssertEqual(tensors.count, 272)
        XCTAssertEqual(tensors.filter { $0["dtype"] == .string("Q4_1") }.count, 210)
        XCTAssertEqual(tensors.first?["name"], .string("token_embd.weight"))
        XCTAssertEqual(tensors.first?["shape"], .array([.integer(576), .integer(49152)]))
        let metadata = report["metadata"]
        XCTAssertEqual(metadata?.objectValue?.count, 33)
        XCTAssertEqual(metadata?["tokenizer.ggml.tokens"]?["length"]?.intValue, 49152)
        XCTAssertEqual(metadata?["tokenizer.ggml.tokens"]?["element_type"], .string("string"))
        XCTAssertEqual(metadata?["tokenizer.ggml.merges"]?["length"]?.intValue, 48900)
        XCTAssertEqual(metadata?["tokenizer.ggml.token_type"]?["length"]?.intValue, 49152)
        XCTAssertEqual(metadata?["tokenizer.ggml.pre"], .string("smollm"))
        XCTAssertEqual(metadata?["llama.attention.head_count"]?.intValue, 9)
        XCTAssertEqual(metadata?["general.languages"], .array([.string("en")]))
    }

    func testTextReport() throws {
        let run = try inspect([try TestSupport.smolLM2()])
        XCTAssertEqual(run.status, 0)
        let lines = run.stdout.split(separator: "\n").map(String.init)
        XCTAssertTrue(lines.contains("  parameters:    134,515,008"))
        XCTAssertTrue(lines.contains("  tensors:       272"))
        XCTAssertTrue(lines.contains("  bits/weight:   5.7437"))
        XCTAssertTrue(lines.contains { $0.hasPrefix("  tokenizer.ggml.merges ") && $0.hasSuffix("[string x 48900] [\"Ġ t\", \"Ġ a\", \"i n\", \"h e\", ...]") })
        XCTAssertTrue(lines.contains { $0.hasPrefix("  token_embd.weight ") && $0.contains("Q8_0") && $0.hasSuffix("30,081,024") })
    }

    func testHDF5Store() throws {
        let path = try TestSupport.temporaryFolder() + "/s.h5"
        let store = try HDF5Store(path: path, mode: .create)
        try store.write("ids", [Int64](0..<6), shape: [2, 3], attributes: [("source", .string("test"))])
        try store.close()
        let report = try json(inspect([path, "--json"]))
        XCTAssertEqual(report["format"], .string("hdf5"))
        XCTAssertEqual(report["tensors"]?.arrayValue?.first?["dtype"], .string("int64"))
        XCTAssertEqual(report["tensors"]?.arrayValue?.first?["bytes"]?.intValue, 48)
        XCTAssertEqual(report["metadata"]?["ids.source"], .string("test"))
    }

    /// A statistics file with one group per layer: grouped datasets as "group/dataset", root
    /// attributes as "key", group attributes as "group.key", theirs as "group/dataset.key".
    func testHDF5GroupsAndAttributes() throws {
        let path = try TestSupport.temporaryFolder() + "/stats.h5"
        let layer = "model.layers.0.self_attn.q_proj"
        let store = try HDF5Store(path: path, mode: .create)
        try store.setRootAttributes([("format", .string("quanta-stats")), ("tokens", .int64(512))])
        try store.write("ids", [Int64](0..<4), shape: [4], attributes: [("source", .string("test"))])
        try store.createGroup(layer, attributes: [("in_features", .int64(3)), ("kind", .string("linear"))])
        try store.write("\(layer)/xtx", [Float](repeating: 1, count: 9), shape: [3, 3], attributes: [("samples", .int64(7))])
        try store.write("\(layer)/mean", [Double](repeating: 0.5, count: 3), shape: [3])
        try store.close()
        let report = try json(inspect([path, "--json"]))
        XCTAssertEqual(report["format"], .string("hdf5"))
        XCTAssertEqual(report["tensor_count"]?.intValue, 3)
        XCTAssertEqual(report["tensors"]?.arrayValue?.compactMap { $0["name"]?.stringValue }, ["ids", "\(layer)/mean", "\(layer)/xtx"])
        let xtx = report["tensors"]?.arrayValue?.first { $0["name"] == .string("\(layer)/xtx") }
        XCTAssertEqual(xtx?["dtype"], .string("float32"))
        XCTAssertEqual(xtx?["shape"], .array([.integer(3), .integer(3)]))
        XCTAssertEqual(xtx?["bytes"]?.intValue, 36)
        let metadata = report["metadata"]
        XCTAssertEqual(metadata?.objectValue?.map(\.0), ["format", "tokens", "ids.source", "\(layer).in_features", "\(layer).kind", "\(layer)/xtx.samples"])
        XCTAssertEqual(metadata?["format"], .string("quanta-stats"))
        XCTAssertEqual(metadata?["\(layer).in_features"]?.intValue, 3)
        XCTAssertEqual(metadata?["\(layer).kind"], .string("linear"))
        XCTAssertEqual(metadata?["\(layer)/xtx.samples"]?.intValue, 7)
    }

    /// Every malformed input: its own message on stderr, exit code 65 (69 for an unsupported
    /// version), nothing on stdout, no crash.
    func testMalformedInputsFailCleanly() throws {
        let folder = try TestSupport.temporaryFolder()
        let cases = MalformedFixtures.safetensors.map { ($0.name + ".safetensors", $0.bytes, $0.message) }
            + MalformedFixtures.gguf.map { ($0.name + ".gguf", $0.bytes, $0.message) }
        XCTAssertGreaterThanOrEqual(Set(cases.map(\.2)).count, 15)
        for (name, bytes, message) in cases {
            let path = folder + "/" + name
            try TestSupport.write(bytes, to: path)
            let run = try inspect([path])
            XCTAssertEqual(run.status, name == "version.gguf" ? 69 : 65, name)
            XCTAssertEqual(run.stderr, "quanta: error: \(path): \(message)\n", name)
            XCTAssertEqual(run.stdout, "", name)
        }
    }

    func testRefusalsAndMissingInputs() throws {
        let folder = try TestSupport.temporaryFolder()
        try TestSupport.write(Array(#"{"model_type": "llama"}"#.utf8), to: folder + "/config.json")
        try TestSupport.write([0x80, 0x02], to: folder + "/pytorch_model.bin")
        let pickle = try inspect([folder])
        XCTAssertEqual(pickle.status, 65, "config is checked before weights: \(pickle.stderr)")
        XCTAssertEqual(pickle.stderr, "quanta: error: \(folder)/config.json: hidden_size: required key is missing\n")

        try TestSupport.write(Array(HFModelFolderTestsConfig.valid.utf8), to: folder + "/config.json")
        let refused = try inspect([folder])
        XCTAssertEqual(refused.status, 77)
        XCTAssertTrue(refused.stderr.hasPrefix("quanta: error: \(folder): holds only pickle checkpoints (pytorch_model.bin). Quanta never unpickles"))

        let missing = try inspect([folder + "/nothing.gguf"])
        XCTAssertEqual(missing.status, 66)
        XCTAssertEqual(missing.stderr, "quanta: error: \(folder)/nothing.gguf: no such file or folder\n")

        let usage = try TestSupport.run(try TestSupport.quantaExecutable(), ["inspect"])
        XCTAssertEqual(usage.status, 64)
        XCTAssertTrue(usage.stderr.contains("Missing expected argument '<path>'"), usage.stderr)
    }

    /// A folder of an architecture Quanta does not run: inspect lists it and says so; quantize refuses it.
    func testUnknownArchitectureFolder() throws {
        let folder = try TestSupport.temporaryFolder()
        try TestSupport.write(Array(#"{"model_type": "gpt2", "n_embd": 8, "architectures": ["GPT2LMHeadModel"]}"#.utf8), to: folder + "/config.json")
        try SafetensorsWriter.write([try .init(name: "wte.weight", tensor: Tensor(shape: [4, 8], storage: [Float](repeating: 0.5, count: 32)))],
                                    to: folder + "/model.safetensors")
        let report = try json(inspect([folder, "--json"]))
        XCTAssertEqual(report["architecture"], .string("gpt2"))
        XCTAssertEqual(report["parameter_count"]?.intValue, 32)
        XCTAssertEqual(report["tensors"]?.arrayValue?.first?["name"], .string("wte.weight"))
        XCTAssertEqual(report["metadata"]?["n_embd"]?.intValue, 8)
        XCTAssertEqual(report["metadata"]?["quanta.support"],
                       .string("model_type 'gpt2' is not supported for quantize/eval (supported: llama, mistral, qwen2, qwen3, gemma3_text, gemma3, phi3)"))
        let quantize = try TestSupport.run(try TestSupport.quantaExecutable(), ["quantize", folder, folder + "/out.gguf", "Q8_0"])
        XCTAssertEqual(quantize.status, 69)
        XCTAssertEqual(quantize.stderr, "quanta: error: \(folder)/config.json: model_type: 'gpt2' is not supported (supported: llama, mistral, qwen2, qwen3, gemma3_text, gemma3, phi3)\n")
    }
}

enum HFModelFolderTestsConfig {
    static let valid = """
        {"model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
         "num_attention_heads": 4, "vocab_size": 100}
        """
}
