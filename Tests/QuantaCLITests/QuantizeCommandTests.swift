import QuantaCore
import QuantaIO
import QuantaModel
import TestSupport
import XCTest

/// `quanta quantize` and `quanta convert` end to end, checked with gguf-py and the golden files.
final class QuantizeCommandTests: XCTestCase {
    private func quanta(_ arguments: [String], file: StaticString = #filePath, line: UInt = #line) throws -> TestSupport.Run {
        try TestSupport.quanta(arguments, file: file, line: line)
    }

    private func json(_ run: TestSupport.Run) throws -> JSONValue {
        XCTAssertEqual(run.status, 0, run.stderr)
        return try JSONParser.parse(Array(run.stdout.utf8))
    }

    /// llama-quantize's types for `preset` on `model` from presets.tsv.
    private func presetTypes(_ model: String, _ preset: String) throws -> [String: String] {
        let text = try String(contentsOfFile: TestSupport.path("Tests/Fixtures/golden/presets.tsv"), encoding: .utf8)
        var types: [String: String] = [:]
        for line in text.split(separator: "\n") {
            let f = line.split(separator: "\t").map(String.init)
            if f[0] == model && f[1] == preset { types[f[2]] = f[3] }
        }
        return types
    }

    /// Every tensor of `file` whose type matches a golden file's type has the golden bytes.
    private func assertGoldenBytes(_ file: GGUFFile, prefix: String, expectMatches: Int, line: UInt = #line) throws {
        var matched = 0
        for tensor in file.tensors {
            let golden = TestSupport.golden("\(prefix)-\(tensor.type.name).gguf")
            guard FileManager.default.fileExists(atPath: golden) else { continue }
            let goldenFile = try GGUFFile(path: golden)  // kept alive: rawBytes points into its map
            guard let reference = try? goldenFile.info(tensor.name), reference.type == tensor.type else { continue }
            XCTAssertTrue(file.rawBytes(tensor).elementsEqual(goldenFile.rawBytes(reference)),
                          "\(tensor.name) (\(tensor.type.name)) differs from \(prefix)-\(tensor.type.name).gguf", line: line)
            matched += 1
        }
        XCTAssertEqual(matched, expectMatches, "tensors compared with golden files", line: line)
    }

    func testBundledModelToQ4_K_M() throws {
        let output = try TestSupport.temporaryFolder() + "/austen-Q4_K_M.gguf"
        let report = try json(quanta(["quantize", TestSupport.austenModel, output, "Q4_K_M", "--json", "--threads", "2"]))
        let expected = try presetTypes("austen", "Q4_K_M")
        let tensors = report["tensors"]?.arrayValue ?? []
        XCTAssertEqual(tensors.count, 57)
        for tensor in tensors {
            XCTAssertEqual(tensor["to"]?.stringValue, expected[tensor["name"]?.stringValue ?? ""], tensor["name"]?.stringValue ?? "")
        }
        let size = try FileManager.default.attributesOfItem(atPath: output)[.size] as? Int
        XCTAssertEqual(report["file_bytes"]?.intValue, size)
        let file = try GGUFFile(path: output)
        XCTAssertEqual(file["general.file_type"], .uint32(15))
        XCTAssertEqual(file["llama.attention.head_count_kv"], .uint32(4))
        XCTAssertEqual(file["tokenizer.ggml.pre"], .string("gpt-2"))
        // q/k permutation and quantization through the whole pipeline: the tensors whose type
        // has a golden file (Q4_K, Q6_K) carry llama-quantize's bytes.
        try assertGoldenBytes(file, prefix: "pure", expectMatches: 9)

        let oracle = try TestSupport.oracle("""
            import sys, gguf
            r = gguf.GGUFReader(sys.argv[1])
            f = r.fields
            print(len(r.tensors), len(f["tokenizer.ggml.tokens"].data), len(f["tokenizer.ggml.merges"].data),
                  f["tokenizer.ggml.model"].contents(), f["tokenizer.ggml.bos_token_id"].contents(), f["llama.block_count"].contents())
            print(sorted({t.tensor_type.name for t in r.tensors}))
            """, [output])
        XCTAssertEqual(oracle.split(separator: "\n").map(String.init), ["57 4096 3839 gpt2 0 6", "['F32', 'Q4_K', 'Q6_K']"])
    }

    /// The low-bit presets with the golden importance matrix: every tensor of the whole model
    /// byte-identical with llama-quantize's file (the sha256 of all tensor data in file order,
    /// Tests/Fixtures/llama-quantize-low-bit-sha256.tsv), and llama-quantize's refusals without one.
    func testLowBitPresetsEqualLlamaQuantize() throws {
        let folder = try TestSupport.temporaryFolder()
        let text = try String(contentsOfFile: TestSupport.path("Tests/Fixtures/llama-quantize-low-bit-sha256.tsv"), encoding: .utf8)
        let rows = text.split(separator: "\n").map { $0.split(separator: "\t").map(String.init) }
        XCTAssertEqual(rows.map { $0[0] }, ["IQ1_S", "IQ1_M", "IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ2_M", "IQ3_XXS", "IQ3_XS", "IQ3_S", "IQ3_M"])
        for row in rows {
            let output = folder + "/\(row[0]).gguf"
            let run = try quanta(["quantize", TestSupport.austenModel, output, row[0], "--imatrix", TestSupport.golden("austen-imatrix.gguf")])
            XCTAssertEqual(run.status, 0, run.stderr)
            let file = try GGUFFile(path: output)
            var hash = SHA256()
            for tensor in file.tensors { hash.update(file.rawBytes(tensor)) }
            XCTAssertEqual(SHA256.hex(hash.finalize()), row[1], "\(row[0]): tensor bytes differ from llama-quantize's")
            let types = try presetTypes("austen", row[0])
            XCTAssertEqual(Dictionary(uniqueKeysWithValues: file.tensors.map { ($0.name, $0.type.name) }), types, row[0])
        }

        let output = folder + "/refused.gguf"
        var run = try quanta(["quantize", TestSupport.austenModel, output, "IQ3_XXS"])
        XCTAssertEqual(run.status, 64, run.stderr)
        XCTAssertTrue(run.stderr.contains("tensor 'blk.0.attn_k.weight' (IQ2_S): this quantization requires an importance matrix (--imatrix FILE)"), run.stderr)
        run = try quanta(["quantize", TestSupport.austenModel, output, "IQ2_XXS", "--pure", "--imatrix", TestSupport.golden("austen-imatrix.gguf")])
        XCTAssertEqual(run.status, 64, run.stderr)
        XCTAssertTrue(run.stderr.contains("tensor 'output.weight' (IQ2_XXS): the importance matrix has no entry for it, and IQ2_XXS needs one; "
                                          + "choose another type for it with --output-tensor-type"), run.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: output), "refused before any work")
        // How the golden file was made: those two given types the importance matrix does not need.
        run = try quanta(["quantize", TestSupport.austenModel, output, "IQ2_XXS", "--pure", "--imatrix", TestSupport.golden("austen-imatrix.gguf"),
                          "--token-embedding-type", "q2_K", "--output-tensor-type", "q5_K"])
        XCTAssertEqual(run.status, 0, run.stderr)
        try assertGoldenBytes(GGUFFile(path: output), prefix: "imatrix", expectMatches: 9)
        try FileManager.default.removeItem(atPath: output)
        // IQ1_M needs no importance matrix for token_embd and output (ggml quantizes them without).
        run = try quanta(["quantize", TestSupport.austenModel, output, "IQ1_M", "--pure", "--imatrix", TestSupport.golden("austen-imatrix.gguf")])
        XCTAssertEqual(run.status, 0, run.stderr)
        try assertGoldenBytes(GGUFFile(path: output), prefix: "imatrix", expectMatches: 9)
    }

    /// Q2_K_S: Q2_K with llama-quantize's few raises, and an importance matrix required for its
    /// Q2_K block tensors (`tensor_requires_imatrix`). The sha256 of all tensor data is that of
    /// `llama-quantize --imatrix golden/austen-llama/austen-imatrix.gguf F32.gguf OUT Q2_K_S 2`
    /// (llama.cpp d32676d; F32.gguf from `quanta quantize Models/austen-llama F32.gguf F32`).
    func testQ2_K_SEqualsLlamaQuantize() throws {
        let folder = try TestSupport.temporaryFolder()
        let output = folder + "/Q2_K_S.gguf"
        var run = try quanta(["quantize", TestSupport.austenModel, output, "Q2_K_S"])
        XCTAssertEqual(run.status, 64, run.stderr)
        XCTAssertTrue(run.stderr.contains("tensor 'blk.0.attn_k.weight' (Q2_K): this quantization requires an importance matrix (--imatrix FILE)"),
                      run.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: output), "refused before any work")
        run = try quanta(["quantize", TestSupport.austenModel, output, "Q2_K_S", "--imatrix", TestSupport.golden("austen-imatrix.gguf")])
        XCTAssertEqual(run.status, 0, run.stderr)
        let file = try GGUFFile(path: output)
        var hash = SHA256()
        for tensor in file.tensors { hash.update(file.rawBytes(tensor)) }
        XCTAssertEqual(SHA256.hex(hash.finalize()), "e3ed496275ccf90a6ea153e7ec4a4a5a41b6e668b22a404972f0a7a21b4ca99b")
        let types = Dictionary(uniqueKeysWithValues: file.tensors.map { ($0.name, $0.type.name) })
        XCTAssertEqual(types["output.weight"], "Q6_K")
        XCTAssertEqual(types["token_embd.weight"], "Q2_K")
        XCTAssertEqual(types["blk.0.attn_v.weight"], "Q2_K", "n_gqa 2: attn_v is raised only from 4")
        XCTAssertEqual(Set(types.values), ["Q2_K", "Q6_K", "F32"])
        XCTAssertEqual(file["general.file_type"], .uint32(21))
    }

    func testImportanceMatrixAndDryRun() throws {
        let folder = try TestSupport.temporaryFolder()
        let output = folder + "/austen-imatrix-Q4_K.gguf"
        let dry = try json(quanta(["quantize", TestSupport.austenModel, output, "Q4_K", "--pure", "--dry-run", "--json",
                                   "--imatrix", TestSupport.golden("austen-imatrix.dat")]))
        XCTAssertEqual(dry["dry_run"], .bool(true))
        XCTAssertFalse(FileManager.default.fileExists(atPath: output), "--dry-run writes nothing")
        let written = try json(quanta(["quantize", TestSupport.austenModel, output, "Q4_K", "--pure", "--json",
                                       "--imatrix", TestSupport.golden("austen-imatrix.dat")]))
        XCTAssertEqual(dry["file_bytes"], written["file_bytes"], "the dry run predicts the exact size")
        try assertGoldenBytes(GGUFFile(path: output), prefix: "imatrix", expectMatches: 9)
    }

    func testSmolLM2ConvertAndRequantizeReproducesTheOriginal() throws {
        let original = try TestSupport.smolLM2()
        let folder = try TestSupport.temporaryFolder()
        let converted = try json(quanta(["convert", original, folder + "/smollm2", "--json"]))
        XCTAssertEqual(converted["tensor_count"]?.intValue, 272)
        XCTAssertEqual(converted["parameter_count"]?.intValue, 134_515_008)
        let model = try ModelFolder(path: folder + "/smollm2")
        XCTAssertTrue(model.config.tieWordEmbeddings)
        XCTAssertEqual([model.config.headCount, model.config.kvHeadCount, model.config.layerCount, model.config.vocabSize], [9, 3, 30, 49152])
        XCTAssertFalse(model.weights.contains("lm_head.weight"))

        let output = folder + "/requantized.gguf"
        _ = try json(quanta(["quantize", folder + "/smollm2", output, "Q4_1", "--pure", "--token-embedding-type", "Q8_0", "--json"]))
        let a = try GGUFFile(path: original), b = try GGUFFile(path: output)
        XCTAssertEqual(Set(a.tensors.map(\.name)), Set(b.tensors.map(\.name)))
        var identical = 0
        for tensor in a.tensors {
            let other = try b.info(tensor.name)
            if other.type == tensor.type && a.rawBytes(tensor).elementsEqual(b.rawBytes(other)) { identical += 1 }
        }
        XCTAssertEqual(identical, 272, "tensors byte-identical with the original file")
        XCTAssertEqual(b["tokenizer.ggml.pre"], .string("smollm"))
        XCTAssertEqual(b["tokenizer.ggml.merges"]?.arrayValue, a["tokenizer.ggml.merges"]?.arrayValue)
        XCTAssertEqual(b["tokenizer.ggml.tokens"]?.arrayValue, a["tokenizer.ggml.tokens"]?.arrayValue)
        XCTAssertEqual(b["tokenizer.ggml.token_type"]?.arrayValue, a["tokenizer.ggml.token_type"]?.arrayValue)

        // The rebuilt tokenizer.json loads in Hugging Face `tokenizers` and round-trips text.
        let tokens = try TestSupport.oracle("""
            import sys, tokenizers
            t = tokenizers.Tokenizer.from_file(sys.argv[1])
            s = "Persuasion, 1818: Sir Walter Elliot, of Kellynch-hall!"
            e = t.encode(s)
            print(t.decode(e.ids) == s, t.token_to_id("<|im_start|>"))
            """, [folder + "/smollm2/tokenizer.json"])
        XCTAssertEqual(tokens, "True 1\n")

        let q4km = folder + "/smollm2-Q4_K_M.gguf"
        let report = try json(quanta(["quantize", folder + "/smollm2", q4km, "Q4_K_M", "--json"]))
        let expected = try presetTypes("smollm2", "Q4_K_M")
        XCTAssertEqual(report["tensors"]?.arrayValue?.filter { expected[$0["name"]?.stringValue ?? ""] == $0["to"]?.stringValue }.count, 272)
        let oracle = try TestSupport.oracle("import sys, gguf; print(len(gguf.GGUFReader(sys.argv[1]).tensors))", [q4km])
        XCTAssertEqual(oracle, "272\n")
    }

    func testErrors() throws {
        let folder = try TestSupport.temporaryFolder()
        let unknown = try quanta(["quantize", TestSupport.austenModel, folder + "/x.gguf", "Q9_K"])
        XCTAssertEqual(unknown.status, 64)
        XCTAssertTrue(unknown.stderr.contains("unknown type 'Q9_K'"), unknown.stderr)
        let regex = try quanta(["quantize", TestSupport.austenModel, folder + "/x.gguf", "Q4_0", "--tensor-type", "attn_(=Q8_0"])
        XCTAssertEqual(regex.status, 64)
        XCTAssertTrue(regex.stderr.hasPrefix("quanta: error: --tensor-type attn_(: not a valid regular expression"), regex.stderr)
        // The trimmed golden files keep only general.* metadata: a GGUF source needs its architecture's keys.
        let trimmed = try quanta(["quantize", TestSupport.golden("pure-Q4_0.gguf"), folder + "/x.gguf", "Q4_1"])
        XCTAssertEqual(trimmed.status, 65)
        XCTAssertEqual(trimmed.stderr, "quanta: error: \(TestSupport.golden("pure-Q4_0.gguf")): missing or invalid 'llama.embedding_length'\n")
        XCTAssertEqual(try quanta(["quantize", TestSupport.austenModel, folder + "/q4_0.gguf", "Q4_0", "--pure"]).status, 0)
        let quantized = try quanta(["quantize", folder + "/q4_0.gguf", folder + "/x.gguf", "Q4_1"])
        XCTAssertEqual(quantized.status, 64)
        XCTAssertTrue(quantized.stderr.contains("is already Q4_0; requantizing loses precision twice (pass --allow-requantize"), quantized.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/x.gguf"))
        try FileManager.default.createDirectory(atPath: folder + "/taken", withIntermediateDirectories: true)
        let taken = try quanta(["convert", TestSupport.golden("pure-Q4_0.gguf"), folder + "/taken"])
        XCTAssertEqual(taken.status, 64)
        XCTAssertEqual(taken.stderr, "quanta: error: OUT \(folder)/taken: already exists; choose a new output folder\n")
        let noTokenizer = folder + "/no-tokenizer"
        try FileManager.default.createDirectory(atPath: noTokenizer, withIntermediateDirectories: true)
        for name in ["config.json", "model.safetensors"] {
            try FileManager.default.copyItem(atPath: TestSupport.austenModel + "/" + name, toPath: noTokenizer + "/" + name)
        }
        let missing = try quanta(["quantize", noTokenizer, folder + "/x.gguf", "Q4_0"])
        XCTAssertEqual(missing.status, 66)
        XCTAssertEqual(missing.stderr, "quanta: error: \(noTokenizer)/tokenizer.json: a GGUF needs the tokenizer, and the model folder has no tokenizer.json\n")
    }
}
