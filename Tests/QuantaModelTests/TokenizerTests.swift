import QuantaCore
import QuantaIO
@testable import QuantaModel
import TestSupport
import XCTest

/// Token ids against Hugging Face `tokenizers` on every line of the calibration texts and on
/// adversarial strings.
final class TokenizerTests: XCTestCase {
    static let adversarial: [String] = [
        "", " ", "  ", "\n", "\n\n\n", " \n \n", "\t\t x", "x  ", "Hello,   world!!  ", "don't DON'T y'all 'tis '' 'S",
        "café naïve résumé Ångström ﬁ", "e\u{301}e\u{301}\u{301} combining", "日本語のテキスト、句読点。", "한국어 텍스트",
        "emoji 🙂👍🏽 family 👨‍👩‍👧 flags 🇫🇷", "digits 1234567890 ١٢٣ ³⁴ ½ Ⅻ", "mixed123abc456 7 89",
        String(repeating: "supercalifragilistic", count: 40), String(repeating: "ab", count: 300) + " x",
        "tabs\tand\u{00A0}nbsp\u{2003}em\u{3000}ideographic", "\r\nwindows\r\nlines\r\n", "<|endoftext|>mid<|endoftext|>",
        "zero\u{200B}width\u{FEFF}", "symbols ~!@#$%^&*()_+{}|:\"<>?`-=[]\\;',./", "'''s 's's", "\u{1F600}\u{1F600} \u{1F600}",
    ]

    /// Writes `lines` to a file, one per line with escapes, runs `tokenizers`, compares every line.
    func compare(_ tokenizer: BPETokenizer, tokenizerJSON: String, lines: [String], label: String) throws {
        let folder = try TestSupport.temporaryFolder()
        let input = folder + "/lines.json"
        try TestSupport.write(Array(JSONValue.array(lines.map { .string($0) }).serialized().utf8), to: input)
        let output = folder + "/ids.safetensors"
        _ = try TestSupport.oracle("""
            import sys, json, numpy as np, tokenizers
            from safetensors.numpy import save_file
            t = tokenizers.Tokenizer.from_file(sys.argv[1])
            lines = json.load(open(sys.argv[2], encoding="utf-8"))
            enc = t.encode_batch(lines, add_special_tokens=False)
            ids = [e.ids for e in enc]
            save_file({"ids": np.array([i for x in ids for i in x], dtype=np.int32),
                       "lengths": np.array([len(x) for x in ids], dtype=np.int64)}, sys.argv[3])
            """, [tokenizerJSON, input, output])
        let reference = try SafetensorsFile(path: output)
        let ids = try reference.integerTensor("ids", as: Int32.self).storage
        let lengths = try reference.integerTensor("lengths", as: Int64.self).storage
        XCTAssertEqual(lengths.count, lines.count)
        var offset = 0, mismatches = 0, total = 0
        for (line, length) in zip(lines, lengths) {
            let expected = Array(ids[offset..<(offset + Int(length))])
            offset += Int(length)
            total += expected.count
            let ours = tokenizer.encode(line)
            if ours != expected {
                mismatches += 1
                if mismatches <= 3 { XCTFail("\(label): \(line.debugDescription.prefix(120)): ours \(ours.prefix(20)) tokenizers \(expected.prefix(20))") }
            }
            if ours == expected && !line.contains("<|") {
                XCTAssertEqual(tokenizer.decode(ours), line, "\(label) decode")
            }
        }
        XCTAssertEqual(mismatches, 0, "\(label): \(mismatches) of \(lines.count) lines differ (\(total) tokens)")
    }

    func testBundledTokenizerOnCalibrationTexts() throws {
        let model = TestSupport.austenModel
        let tokenizer = try BPETokenizer(tokenizerJSON: model + "/tokenizer.json")
        XCTAssertEqual(tokenizer.preTokenizer, .gpt2)
        XCTAssertEqual(tokenizer.tokens.count, 4096)
        var lines: [String] = []
        for file in ["austen-train.txt", "austen-persuasion-eval.txt", "calib-wiki.txt", "calib-c4.txt"] {
            let text = try String(contentsOfFile: TestSupport.path("Calibration/" + file), encoding: .utf8)
            lines += text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        }
        XCTAssertGreaterThan(lines.count, 80_000)
        try compare(tokenizer, tokenizerJSON: model + "/tokenizer.json", lines: lines + TokenizerTests.adversarial, label: "austen")
        // The whole held-out text in one call, as perplexity tokenizes it (131,210 tokens per the model README).
        let persuasion = try String(contentsOfFile: TestSupport.path("Calibration/austen-persuasion-eval.txt"), encoding: .utf8)
        XCTAssertEqual(tokenizer.encode(persuasion).count, 131_210)
    }

    func testSmolLM2TokenizerFromGGUF() throws {
        let gguf = try GGUFFile(path: TestSupport.smolLM2())
        let tokenizer = try BPETokenizer(gguf: gguf)
        XCTAssertEqual(tokenizer.preTokenizer, .smollm)
        XCTAssertEqual(tokenizer.bosID, 1)
        XCTAssertFalse(tokenizer.addBOS)
        // tokenizers oracle: the tokenizer.json that `quanta convert` rebuilds from this GGUF.
        let folder = try TestSupport.temporaryFolder()
        let files = try GGUFConverter.huggingFaceFiles(from: gguf)
        let json = files.first { $0.name == "tokenizer.json" }!.json
        try TestSupport.write(Array(json.serialized().utf8), to: folder + "/tokenizer.json")
        var lines = TokenizerTests.adversarial + ["<|im_start|>user\nHi 2024!<|im_end|>"]
        let text = try String(contentsOfFile: TestSupport.path("Calibration/calib-wiki.txt"), encoding: .utf8)
        lines += text.split(separator: "\n").prefix(3000).map(String.init)
        try compare(tokenizer, tokenizerJSON: folder + "/tokenizer.json", lines: lines, label: "smollm2")
    }

    /// The llama-3 pre-tokenizer (Split with its regex, then ByteLevel without regex, merges
    /// ignored for whole-vocabulary pieces) on the bundled vocabulary, against `tokenizers`.
    func testLlama3PreTokenizerAgainstTokenizers() throws {
        let folder = try TestSupport.temporaryFolder()
        var json = try JSONParser.parse(FileSystem.read(TestSupport.austenModel + "/tokenizer.json"))
        guard case var .object(members) = json else { return XCTFail("tokenizer.json is not an object") }
        let pre = try GGUFConverter.preTokenizerJSON("llama-bpe")
        for (i, member) in members.enumerated() where member.0 == "pre_tokenizer" { members[i].1 = pre }
        for (i, member) in members.enumerated() where member.0 == "model" {
            guard case var .object(model) = member.1 else { continue }
            for (j, field) in model.enumerated() where field.0 == "ignore_merges" { model[j].1 = .bool(true) }
            members[i].1 = .object(model)
        }
        json = .object(members)
        let path = folder + "/tokenizer.json"
        try TestSupport.write(Array(json.serialized().utf8), to: path)
        let tokenizer = try BPETokenizer(tokenizerJSON: path)
        XCTAssertEqual(tokenizer.preTokenizer, .llama3)
        XCTAssertTrue(tokenizer.ignoreMerges)
        let text = try String(contentsOfFile: TestSupport.path("Calibration/calib-c4.txt"), encoding: .utf8)
        let lines = TokenizerTests.adversarial + ["HELLO's World'S 12345 678\r\n\r\n  x\t?!\n"]
            + text.split(separator: "\n").map(String.init)
        try compare(tokenizer, tokenizerJSON: path, lines: lines, label: "llama3")
    }

    func testLlama3PreTokenizer() {
        let text = "Hello's WORLD'S  123456 a\n\n b\t?!\r\n  x"
        let scalars = Array(text.unicodeScalars)
        let pieces = PreTokenizer.llama3.split(scalars).map { String(String.UnicodeScalarView(scalars[$0])) }
        XCTAssertEqual(pieces, ["Hello", "'s", " WORLD", "'S", " ", " ", "123", "456", " a", "\n\n", " b", "\t", "?!\r\n", " ", " x"])
    }

    /// Long texts are encoded in parts on all cores, cut at a lone newline before a letter: the
    /// ids equal one serial pass, for the bundled model's tokenizer (llama-3 style) and SmolLM2's.
    func testParallelEncodingEqualsSerial() throws {
        var tokenizers = [("austen", try HuggingFaceSource(path: TestSupport.austenModel).tokenizer())]
        if let smol = try? TestSupport.smolLM2() { tokenizers.append(("smollm2", try BPETokenizer(gguf: GGUFFile(path: smol)))) }
        for file in ["calib-wiki.txt", "calib-c4.txt", "austen-train.txt"] {
            let text = try String(decoding: TestSupport.read(TestSupport.path("Calibration/" + file)), as: UTF8.self)
            for (tokenizerName, tokenizer) in tokenizers {
                let name = tokenizerName + " " + file
                let serial = tokenizer.encode(text, parallel: false), parallel = tokenizer.encode(text)
                XCTAssertGreaterThan(serial.count, 70_000, name)
                XCTAssertEqual(parallel.count, serial.count, name)
                let first = zip(parallel, serial).enumerated().first { $0.element.0 != $0.element.1 }?.offset
                XCTAssertNil(first, "\(name): first difference at token \(first ?? -1)")
            }
        }
    }
}
