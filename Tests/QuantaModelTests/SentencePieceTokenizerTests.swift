import Foundation
import QuantaCore
import QuantaIO
@testable import QuantaModel
import TestSupport
import XCTest

/// SentencePiece-style BPE (byte fallback, "▁" for spaces) against Hugging Face `tokenizers`
/// (tokenizer.json) and against llama.cpp's SPM algorithm (GGUF "llama"), on a vocabulary
/// trained here with `tokenizers` from calib-c4.txt: 3 special tokens, the 256 byte tokens, and
/// 997 BPE tokens from an alphabet limited to 90 characters (so other characters fall back to bytes).
final class SentencePieceTokenizerTests: XCTestCase {
    /// Trains the vocabulary and writes it in three tokenizer.json forms to `folder`:
    /// `legacy` (Llama 2 / Mistral: normalizer Prepend("▁") + Replace(" ", "▁"), no pre-tokenizer),
    /// `metaspace` (Metaspace pre-tokenizer, prepend_scheme "first", split false: transformers'
    /// current Llama form) and `metaspace-split` (prepend_scheme "always", split true: older form).
    static let trainScript = #"""
        import sys, json
        from tokenizers import Tokenizer, models, trainers, pre_tokenizers
        out, corpus = sys.argv[1], sys.argv[2]
        t = Tokenizer(models.BPE(byte_fallback=True, unk_token="<unk>", fuse_unk=True))
        t.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always", split=True)
        t.train([corpus], trainers.BpeTrainer(vocab_size=1000, special_tokens=["<unk>", "<s>", "</s>"], limit_alphabet=90, show_progress=False))
        j = json.loads(t.to_str())
        old = sorted(j["model"]["vocab"].items(), key=lambda kv: kv[1])
        vocab = {}
        for tok, _ in old[:3]: vocab[tok] = len(vocab)
        for b in range(256): vocab["<0x%02X>" % b] = len(vocab)
        for tok, _ in old[3:]:
            if tok not in vocab: vocab[tok] = len(vocab)
        j["model"]["vocab"] = vocab
        for a in j["added_tokens"]: a["id"] = vocab[a["content"]]
        sp = "\u2581"
        decoder = {"type": "Sequence", "decoders": [{"type": "Replace", "pattern": {"String": sp}, "content": " "},
                   {"type": "ByteFallback"}, {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}
        bos = {"SpecialToken": {"id": "<s>", "type_id": 0}}
        post = {"type": "TemplateProcessing", "single": [bos, {"Sequence": {"id": "A", "type_id": 0}}],
                "pair": [bos, {"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "<s>", "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
                "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}}
        variants = {
            "legacy": dict(normalizer={"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": sp},
                           {"type": "Replace", "pattern": {"String": " "}, "content": sp}]}, pre_tokenizer=None),
            "metaspace": dict(normalizer=None, pre_tokenizer={"type": "Metaspace", "replacement": sp, "prepend_scheme": "first", "split": False}),
            "metaspace-split": dict(normalizer=None, pre_tokenizer={"type": "Metaspace", "replacement": sp, "prepend_scheme": "always", "split": True}),
            # transformers' GemmaConverter: no "▁" prefix, a Split on " " that the normalizer leaves nothing to split, no Strip.
            "gemma": dict(normalizer={"type": "Replace", "pattern": {"String": " "}, "content": sp},
                          pre_tokenizer={"type": "Split", "pattern": {"String": " "}, "behavior": "MergedWithPrevious", "invert": False},
                          decoder={"type": "Sequence", "decoders": decoder["decoders"][:3]}),
        }
        for name, v in variants.items():
            k = dict(j); k["decoder"] = decoder; k.update(v); k["post_processor"] = post
            text = json.dumps(k, ensure_ascii=False)
            Tokenizer.from_str(text)
            open(f"{out}/{name}.json", "w", encoding="utf-8").write(text)
        """#

    static let forms = ["legacy", "metaspace", "metaspace-split", "gemma"]

    static let adversarial: [String] = [
        "", " ", "  ", "   x", "x ", "x   ", "a  b   c", "\n", "\n\n\n", " \n \n", "\t", "\t\tx\t", "line\r\nnext\r\n",
        "Hello, world!", " Hello", "Hello world.", "digits 0123456789 1234567 3.14159 -42 1,000,000", "x1y22z333",
        "café naïve résumé Ångström ﬁ", "e\u{301} combining", "日本語のテキスト", "한국어", "emoji 🙂👍🏽 👨‍👩‍👧",
        "\u{1F600}\u{1F600} \u{1F600}", "zero\u{200B}width\u{FEFF}", "nbsp\u{00A0}em\u{2003}ideo\u{3000}x", "▁literal ▁▁ bar",
        "<s>", "<s>Hello</s> world<unk>", "a<s>b", " <s> ", "<0x41> is not A", "symbols ~!@#$%^&*()_+{}|:\"<>?`-=[]\\;',./",
        String(repeating: "the ", count: 200), String(repeating: "ab", count: 300), "\u{10FFFF}\u{E000}",
    ]

    /// Every line of every Calibration/*.txt.
    static func calibrationLines() throws -> [String] {
        let folder = TestSupport.path("Calibration")
        let files = try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.hasSuffix(".txt") }.sorted()
        XCTAssertEqual(files.count, 4, "Calibration/*.txt")
        var lines: [String] = []
        for file in files {
            let text = String(decoding: try TestSupport.read(folder + "/" + file), as: UTF8.self)
            lines += text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        }
        return lines
    }

    static func trainedFolder() throws -> String {
        let folder = try TestSupport.temporaryFolder("spm-vocabulary")
        _ = try TestSupport.oracle(trainScript, [folder, TestSupport.path("Calibration/calib-c4.txt")])
        return folder
    }

    /// `tokenizers`' ids (and decoded text) for each line.
    static func reference(tokenizerJSON: String, lines: [String]) throws -> (ids: [[Int32]], decoded: [String]) {
        let folder = try TestSupport.temporaryFolder("spm-reference")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try TestSupport.write(Array(JSONValue.array(lines.map { .string($0) }).serialized().utf8), to: folder + "/lines.json")
        _ = try TestSupport.oracle("""
            import sys, json, numpy as np, tokenizers
            from safetensors.numpy import save_file
            t = tokenizers.Tokenizer.from_file(sys.argv[1])
            lines = json.load(open(sys.argv[2], encoding="utf-8"))
            ids = [e.ids for e in t.encode_batch(lines, add_special_tokens=False)]
            save_file({"ids": np.array([i for x in ids for i in x], dtype=np.int32),
                       "lengths": np.array([len(x) for x in ids], dtype=np.int64)}, sys.argv[3])
            json.dump(t.decode_batch(ids, skip_special_tokens=False), open(sys.argv[4], "w", encoding="utf-8"))
            """, [tokenizerJSON, folder + "/lines.json", folder + "/ids.safetensors", folder + "/decoded.json"])
        return try readIDs(folder + "/ids.safetensors", count: lines.count,
                           decoded: JSONParser.parse(TestSupport.read(folder + "/decoded.json")).arrayValue?.compactMap(\.stringValue) ?? [])
    }

    static func readIDs(_ path: String, count: Int, decoded: [String] = []) throws -> (ids: [[Int32]], decoded: [String]) {
        let file = try SafetensorsFile(path: path)
        let flat = try file.integerTensor("ids", as: Int32.self).storage
        let lengths = try file.integerTensor("lengths", as: Int64.self).storage
        XCTAssertEqual(lengths.count, count)
        var out: [[Int32]] = [], offset = 0
        for n in lengths {
            out.append(Array(flat[offset..<(offset + Int(n))]))
            offset += Int(n)
        }
        return (out, decoded)
    }

    static func assertSame(_ ours: [[Int32]], _ expected: [[Int32]], lines: [String], label: String,
                           file: StaticString = #filePath, line: UInt = #line) {
        var mismatches = 0
        for (i, text) in lines.enumerated() where ours[i] != expected[i] {
            mismatches += 1
            if mismatches <= 3 {
                XCTFail("\(label): \(text.debugDescription.prefix(100)): ours \(ours[i].prefix(16)) expected \(expected[i].prefix(16))", file: file, line: line)
            }
        }
        XCTAssertEqual(mismatches, 0, "\(label): \(mismatches) of \(lines.count) lines differ", file: file, line: line)
    }

    /// Ids equal `tokenizers` on every calibration line and every adversarial string, for each
    /// tokenizer.json form; decoding gives `tokenizers`' text.
    func testTokenizerJSONFormsAgainstTokenizers() throws {
        let folder = try Self.trainedFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let lines = try Self.calibrationLines() + Self.adversarial
        XCTAssertGreaterThan(lines.count, 80_000)
        for form in Self.forms {
            let path = folder + "/\(form).json"
            let tokenizer = try BPETokenizer(tokenizerJSON: path)
            let sp = try XCTUnwrap(tokenizer.sentencePiece, form)
            XCTAssertNil(tokenizer.preTokenizer)
            XCTAssertEqual(tokenizer.tokens.count, 1256)
            XCTAssertEqual(sp.unknownID, 0)
            XCTAssertEqual(tokenizer.addBOS, true, "\(form): the post-processor puts <s> first")
            XCTAssertEqual(sp.prefix, ["legacy": .always, "metaspace": .firstUnlessSpace, "metaspace-split": .unlessSpace, "gemma": .never][form])
            let reference = try Self.reference(tokenizerJSON: path, lines: lines)
            let ours = lines.map { tokenizer.encode($0) }
            Self.assertSame(ours, reference.ids, lines: lines, label: form)
            // Byte fallback was exercised: some line has byte tokens (ids 3..<259).
            XCTAssertTrue(ours.contains { $0.contains { (3..<259).contains($0) } }, form)
            var decodeMismatches = 0
            for (i, ids) in ours.enumerated() where tokenizer.decode(ids) != reference.decoded[i] {
                decodeMismatches += 1
                if decodeMismatches <= 3 { XCTFail("\(form) decode \(lines[i].debugDescription.prefix(80)): \(tokenizer.decode(ids).debugDescription.prefix(80)) vs \(reference.decoded[i].debugDescription.prefix(80))") }
            }
            XCTAssertEqual(decodeMismatches, 0, "\(form): decoded text differs from tokenizers'")
        }
    }

    // MARK: - GGUF

    /// Two tiny random Llama folders (hidden 64, 2 layers, 4 heads, 2 KV heads, seed 0):
    /// `json` has only the `legacy` tokenizer.json trained above (1256 tokens); `model` has a
    /// SentencePiece BPE `tokenizer.model` (byte fallback, 1000 pieces) trained with
    /// `sentencepiece` on calib-c4.txt and the tokenizer.json transformers' extractor makes from
    /// it (Llama 2's form; Scripts/sentencepiece_vocabulary.py), as real Llama 2 / Mistral folders have both; `mistral` is `model`'s
    /// shapes and tokenizer as a MistralForCausalLM with a sliding window of 256.
    static let folderScript = #"""
        import sys, json, shutil, torch
        from transformers import LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM
        root, legacy = sys.argv[1], sys.argv[2]
        for name, tokenizer_json in [("json", legacy), ("model", root + "/sp.json"), ("mistral", root + "/sp.json")]:
            folder = root + "/" + name
            n = len(json.load(open(tokenizer_json, encoding="utf-8"))["model"]["vocab"])
            torch.manual_seed(0)
            shape = dict(vocab_size=n, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, max_position_embeddings=512, bos_token_id=1, eos_token_id=2, tie_word_embeddings=False)
            if name == "mistral":
                model = MistralForCausalLM(MistralConfig(sliding_window=256, **shape))
            else:
                model = LlamaForCausalLM(LlamaConfig(**shape))
            with torch.no_grad():
                for p in model.parameters(): p.normal_(0, 0.2)
            model.save_pretrained(folder, safe_serialization=True)
            if name == "mistral":  # 300 positions: the window of 256 binds
                ids = [(7 * i + 3) % n for i in range(300)]
                with torch.no_grad():
                    logits = model(input_ids=torch.tensor([ids])).logits[0]
                json.dump({"ids": ids, "logits": logits[:, ::37].reshape(-1).tolist()}, open(root + "/mistral-reference.json", "w"))
            shutil.copy(tokenizer_json, folder + "/tokenizer.json")
            if name != "json": shutil.copy(root + "/sp.model", folder + "/tokenizer.model")
            json.dump({"add_bos_token": True, "add_eos_token": False, "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>",
                       "pad_token": None, "legacy": True, "model_max_length": 512, "tokenizer_class": "LlamaTokenizerFast",
                       "clean_up_tokenization_spaces": False}, open(folder + "/tokenizer_config.json", "w"))
        """#

    /// The folders above and their F32 GGUFs written by `quanta quantize`, made once per run
    /// and removed after the class's last test.
    nonisolated(unsafe) static var madeFolders: String?

    override class func tearDown() {
        if let madeFolders { try? FileManager.default.removeItem(atPath: madeFolders) }
        madeFolders = nil
        super.tearDown()
    }

    static func folders() throws -> String {
        if let madeFolders { return madeFolders }
        let python = try TestSupport.python()
        let probe = try TestSupport.run(python, ["-c", "import torch, transformers, sentencepiece"])
        guard probe.status == 0 else {
            throw XCTSkip("torch, transformers or sentencepiece absent from the oracle venv: run `bash Scripts/setup.sh --torch`")
        }
        let root = try trainedFolder()
        let vocabulary = try TestSupport.run(python, [TestSupport.path("Scripts/sentencepiece_vocabulary.py"), root,
                                                      TestSupport.path("Calibration/calib-c4.txt")])
        XCTAssertEqual(vocabulary.status, 0, vocabulary.stderr)
        _ = try TestSupport.oracle(folderScript, [root, root + "/legacy.json"])
        for name in ["json", "model"] {
            let run = try TestSupport.quanta(["quantize", root + "/" + name, root + "/\(name).gguf", "F32"])
            XCTAssertEqual(run.status, 0, run.stderr)
        }
        madeFolders = root
        return root
    }

    /// The llama.cpp tree named by QUANTA_LLAMA_CPP (its converter and built llama-tokenize), or nil.
    static var llamaCpp: String? {
        ProcessInfo.processInfo.environment["QUANTA_LLAMA_CPP"].flatMap { FileManager.default.fileExists(atPath: $0 + "/convert_hf_to_gguf.py") ? $0 : nil }
    }

    static func tokenizerKeys(_ file: GGUFFile) -> [(String, GGUFValue)] {
        file.metadata.filter { $0.key.hasPrefix("tokenizer.") }.map { ($0.key, $0.value) }
    }

    /// The GGUF tokenizer metadata `quanta quantize` writes: with tokenizer.model, its pieces,
    /// scores and types; without, the tokenizer.json vocabulary with scores -1000.
    func testGGUFExportKeys() throws {
        let root = try Self.folders()
        let json = try GGUFFile(path: root + "/json.gguf"), model = try GGUFFile(path: root + "/model.gguf")
        for file in [json, model] {
            XCTAssertEqual(file["tokenizer.ggml.model"]?.stringValue, "llama")
            XCTAssertEqual(file["tokenizer.ggml.pre"]?.stringValue, "default")
            XCTAssertEqual(file["tokenizer.ggml.bos_token_id"]?.intValue, 1)
            XCTAssertEqual(file["tokenizer.ggml.eos_token_id"]?.intValue, 2)
            XCTAssertEqual(file["tokenizer.ggml.unknown_token_id"]?.intValue, 0)
            XCTAssertEqual(file["tokenizer.ggml.add_bos_token"]?.boolValue, true)
            XCTAssertEqual(file["tokenizer.ggml.add_eos_token"]?.boolValue, false)
            XCTAssertEqual(file["tokenizer.ggml.add_sep_token"]?.boolValue, false)
        }
        let jsonScores = json["tokenizer.ggml.scores"]?.arrayValue?.compactMap(\.doubleValue) ?? []
        XCTAssertEqual(jsonScores, [Double](repeating: -1000, count: 1256))
        let jsonTypes = json["tokenizer.ggml.token_type"]?.arrayValue?.compactMap(\.intValue) ?? []
        XCTAssertEqual(jsonTypes, [3, 3, 3] + [Int](repeating: 6, count: 256) + [Int](repeating: 1, count: 997))
        let sp = try SentencePieceModelFile(path: root + "/model/tokenizer.model")
        XCTAssertEqual(sp.pieces.count, 1000)
        XCTAssertEqual(model["tokenizer.ggml.tokens"]?.arrayValue?.compactMap(\.stringValue), sp.pieces.map(\.text))
        XCTAssertEqual(model["tokenizer.ggml.scores"]?.arrayValue?.compactMap(\.doubleValue), sp.pieces.map { Double($0.score) })
        let modelTypes = model["tokenizer.ggml.token_type"]?.arrayValue?.compactMap(\.intValue) ?? []
        XCTAssertEqual(Array(modelTypes.prefix(4)), [2, 3, 3, 6])
        XCTAssertEqual(modelTypes.filter { $0 == 6 }.count, 256)
    }

    /// Every tensor (dimensions, type, bytes) and every llama.* and tokenizer.* key (order, type,
    /// value) equals what convert_hf_to_gguf.py --outtype f32 writes for the same folder
    /// (QUANTA_LLAMA_CPP names the llama.cpp tree).
    func testGGUFExportAgainstConverter() throws {
        guard let llamaCpp = Self.llamaCpp else {
            throw XCTSkip("QUANTA_LLAMA_CPP (a llama.cpp tree with convert_hf_to_gguf.py) not set: the converter comparison did not run")
        }
        let root = try Self.folders()
        for name in ["json", "model"] {
            let out = root + "/\(name)-converter.gguf"
            let run = try TestSupport.run(try TestSupport.python(), [llamaCpp + "/convert_hf_to_gguf.py", root + "/" + name, "--outtype", "f32", "--outfile", out])
            XCTAssertEqual(run.status, 0, run.stderr)
            TestSupport.assertSameGGUF(try GGUFFile(path: root + "/\(name).gguf"), try GGUFFile(path: out), keyPrefixes: ["llama.", "tokenizer."])
        }
    }

    /// The GGUF tokenizers run llama.cpp's SPM algorithm. With tokenizer.model's scores its ids
    /// equal `tokenizers`' on every calibration line and adversarial string; with the -1000
    /// scores of a tokenizer.json-only folder they differ on many lines (llama.cpp joins the
    /// leftmost pair first), as llama.cpp's do (see `testGGUFTokenizerAgainstLlamaTokenize`).
    func testGGUFTokenizerIds() throws {
        let root = try Self.folders()
        let lines = try Self.calibrationLines() + Self.adversarial
        let tokenizers = try Self.ggufTokenizers(root)
        let model = tokenizers["model"]!, json = tokenizers["json"]!
        let modelReference = try Self.reference(tokenizerJSON: root + "/model/tokenizer.json", lines: lines)
        Self.assertSame(lines.map { model.encode($0) }, modelReference.ids, lines: lines, label: "tokenizer.model scores vs tokenizers")
        let folderTokenizer = try HuggingFaceSource(path: root + "/model").tokenizer()
        Self.assertSame(lines.map { folderTokenizer.encode($0) }, modelReference.ids, lines: lines, label: "model folder vs tokenizers")
        let jsonReference = try Self.reference(tokenizerJSON: root + "/json/tokenizer.json", lines: lines)
        let differing = zip(lines, jsonReference.ids).filter { json.encode($0.0) != $0.1 }.count
        XCTAssertGreaterThan(differing, lines.count / 10, "scores -1000 should make llama.cpp's ids differ from tokenizers' on many lines")
        print("tokenizer.json-only GGUF: \(differing) of \(lines.count) lines tokenize differently from tokenizers")
    }

    static func ggufTokenizers(_ root: String) throws -> [String: BPETokenizer] {
        var tokenizers: [String: BPETokenizer] = [:]
        for name in ["json", "model"] {
            let tokenizer = try BPETokenizer(gguf: GGUFFile(path: root + "/\(name).gguf"))
            XCTAssertEqual(tokenizer.sentencePiece?.joining, .scores)
            XCTAssertEqual(tokenizer.sentencePiece?.prefix, .always)
            XCTAssertTrue(tokenizer.addBOS)
            tokenizers[name] = tokenizer
        }
        return tokenizers
    }

    /// Ids equal llama-tokenize's (BOS added) on each whole calibration file and on each
    /// adversarial string without special-token text (llama-tokenize does not parse special
    /// tokens; Quanta always does, as `tokenizers` does), for both GGUFs (QUANTA_LLAMA_CPP names
    /// a llama.cpp tree with build/bin/llama-tokenize).
    func testGGUFTokenizerAgainstLlamaTokenize() throws {
        guard let llamaCpp = Self.llamaCpp else {
            throw XCTSkip("QUANTA_LLAMA_CPP not set: llama-tokenize comparison did not run")
        }
        let binary = llamaCpp + "/build/bin/llama-tokenize"
        guard FileManager.default.isExecutableFile(atPath: binary) else {
            throw XCTSkip("\(binary) is not built: llama-tokenize comparison did not run")
        }
        let root = try Self.folders()
        let tokenizers = try Self.ggufTokenizers(root)
        let scratch = try TestSupport.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let texts = try FileManager.default.contentsOfDirectory(atPath: TestSupport.path("Calibration")).filter { $0.hasSuffix(".txt") }.sorted()
            .map { String(decoding: try TestSupport.read(TestSupport.path("Calibration/" + $0)), as: UTF8.self) }
        for name in ["json", "model"] {
            for (i, text) in (texts + Self.adversarial.filter { !$0.isEmpty && !$0.contains("<s>") && !$0.contains("<unk>") }).enumerated() {
                try TestSupport.write(Array(text.utf8), to: scratch + "/text")
                let run = try TestSupport.run(binary, ["-m", root + "/\(name).gguf", "-f", scratch + "/text", "--ids", "--log-disable", "--no-escape"],
                                              environment: ["LD_LIBRARY_PATH": llamaCpp + "/build/bin"])
                XCTAssertEqual(run.status, 0, run.stderr)
                let theirs = run.stdout.trimmingCharacters(in: .whitespacesAndNewlines).dropFirst().dropLast()
                    .split(separator: ",").compactMap { Int32($0.trimmingCharacters(in: .whitespaces)) }
                let ours = [1] + tokenizers[name]!.encode(text)
                XCTAssertEqual(ours.count, theirs.count, "\(name) text \(i): token counts")
                XCTAssertTrue(ours == theirs, "\(name) text \(i) \(text.prefix(40).debugDescription): first difference at \(zip(ours, theirs).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? -1)")
            }
        }
    }

    /// `quanta quantize` of the tokenizer.model folder to F32 and Q8_0 GGUF, then `quanta eval`:
    /// the folder and both GGUFs read the same number of tokens, the F32 GGUF's perplexity is
    /// the folder's within 1e-4 relative, Q8_0's within 1 %.
    func testEndToEndQuantizeAndEval() throws {
        let root = try Self.folders()
        let q8 = try TestSupport.quanta(["quantize", root + "/model", root + "/model-q8.gguf", "Q8_0"])
        XCTAssertEqual(q8.status, 0, q8.stderr)
        func eval(_ model: String) throws -> JSONValue {
            let run = try TestSupport.quanta(["eval", model, "--text", TestSupport.path("Calibration/austen-persuasion-eval.txt"),
                                              "--ctx", "128", "--chunks", "8", "--json"])
            XCTAssertEqual(run.status, 0, run.stderr)
            return try JSONParser.parse(Array(run.stdout.utf8))
        }
        let folder = try eval(root + "/model"), f32 = try eval(root + "/model.gguf"), q8_0 = try eval(root + "/model-q8.gguf")
        let tokens = folder["text_tokens"]?.intValue ?? -1
        XCTAssertGreaterThan(tokens, 100_000)
        XCTAssertEqual(f32["text_tokens"]?.intValue, tokens)
        XCTAssertEqual(q8_0["text_tokens"]?.intValue, tokens)
        XCTAssertEqual(folder["add_bos"]?.boolValue, true)
        XCTAssertEqual(f32["add_bos"]?.boolValue, true)
        let ppl = folder["perplexity"]?.doubleValue ?? .nan
        XCTAssertEqual(f32["perplexity"]?.doubleValue ?? .nan, ppl, accuracy: ppl * 1e-4)
        XCTAssertEqual(q8_0["perplexity"]?.doubleValue ?? .nan, ppl, accuracy: ppl * 0.01)
        print("perplexity: folder \(ppl), F32 GGUF \(f32["perplexity"]?.doubleValue ?? .nan), Q8_0 GGUF \(q8_0["perplexity"]?.doubleValue ?? .nan), \(tokens) tokens")
    }
    /// A Mistral folder with the SentencePiece tokenizer end to end: logits of 300 positions
    /// within 1e-4 of transformers' (the window of 256 binds); `quanta quantize` to F32
    /// and Q8_0 GGUF (architecture llama, the window dropped as llama.cpp's converter drops it;
    /// the tokenizer keys those of the Llama folder with the same files), `quanta eval` of the
    /// folder and both files at a context of 128 (inside the window of 256): F32 within 1e-4
    /// relative, Q8_0 within 1 %. With QUANTA_LLAMA_CPP, the F32 file equals the converter's
    /// (tensors, bytes, llama.* and tokenizer.* keys).
    func testMistralEndToEnd() throws {
        let root = try Self.folders()
        let folder = root + "/mistral", f32 = root + "/mistral.gguf", q8 = root + "/mistral-q8.gguf"
        XCTAssertEqual(try ModelFolder(path: folder).config.slidingWindow, 256)
        // The forward pass against transformers' MistralForCausalLM over 300 positions (the window binds).
        let reference = try JSONParser.parse(TestSupport.read(root + "/mistral-reference.json"))
        let ids = try XCTUnwrap(reference["ids"]?.arrayValue?.compactMap(\.intValue)).map(Int32.init)
        let expected = try XCTUnwrap(reference["logits"]?.arrayValue?.compactMap(\.doubleValue)).map(Float.init)
        let model = try DecoderModel(path: folder)
        let vocab = model.config.vocabSize
        let logits = try model.logits([ids])
        let sampled = (0..<ids.count).flatMap { t in stride(from: 0, to: vocab, by: 37).map { logits[t * vocab + $0] } }
        XCTAssertEqual(sampled.count, expected.count)
        XCTAssertLessThan(zip(sampled, expected).map { abs($0 - $1) }.max() ?? .infinity, 1e-4)
        for (out, type) in [(f32, "F32"), (q8, "Q8_0")] {
            let run = try TestSupport.quanta(["quantize", folder, out, type])
            XCTAssertEqual(run.status, 0, run.stderr)
        }
        let file = try GGUFFile(path: f32)
        XCTAssertEqual(file["general.architecture"]?.stringValue, "llama")
        XCTAssertNil(file["llama.attention.sliding_window"])
        let llama = Self.tokenizerKeys(try GGUFFile(path: root + "/model.gguf")), mistral = Self.tokenizerKeys(file)
        XCTAssertEqual(mistral.map(\.0), llama.map(\.0))
        for ((key, a), (_, b)) in zip(mistral, llama) { XCTAssertEqual(a, b, key) }
        func eval(_ model: String) throws -> JSONValue {
            let run = try TestSupport.quanta(["eval", model, "--text", TestSupport.path("Calibration/austen-persuasion-eval.txt"),
                                              "--ctx", "128", "--chunks", "8", "--json"])
            XCTAssertEqual(run.status, 0, run.stderr)
            return try JSONParser.parse(Array(run.stdout.utf8))
        }
        let fromFolder = try eval(folder), fromF32 = try eval(f32), fromQ8 = try eval(q8)
        XCTAssertEqual(fromF32["text_tokens"], fromFolder["text_tokens"])
        XCTAssertEqual(fromQ8["text_tokens"], fromFolder["text_tokens"])
        let ppl = fromFolder["perplexity"]?.doubleValue ?? .nan
        XCTAssertEqual(fromF32["perplexity"]?.doubleValue ?? .nan, ppl, accuracy: ppl * 1e-4)
        XCTAssertEqual(fromQ8["perplexity"]?.doubleValue ?? .nan, ppl, accuracy: ppl * 0.01)
        print("mistral perplexity: folder \(ppl), F32 GGUF \(fromF32["perplexity"]?.doubleValue ?? .nan), Q8_0 GGUF \(fromQ8["perplexity"]?.doubleValue ?? .nan)")

        guard let llamaCpp = Self.llamaCpp else {
            throw XCTSkip("QUANTA_LLAMA_CPP (a llama.cpp tree with convert_hf_to_gguf.py) not set: the converter comparison did not run")
        }
        let theirs = root + "/mistral-converter.gguf"
        let run = try TestSupport.run(try TestSupport.python(), [llamaCpp + "/convert_hf_to_gguf.py", folder, "--outtype", "f32", "--outfile", theirs])
        XCTAssertEqual(run.status, 0, run.stderr)
        TestSupport.assertSameGGUF(file, try GGUFFile(path: theirs), keyPrefixes: ["llama.", "tokenizer."])
    }
}
