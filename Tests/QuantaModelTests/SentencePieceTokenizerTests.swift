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
        }
        for name, v in variants.items():
            k = dict(j); k.update(v); k["decoder"] = decoder; k["post_processor"] = post
            text = json.dumps(k, ensure_ascii=False)
            Tokenizer.from_str(text)
            open(f"{out}/{name}.json", "w", encoding="utf-8").write(text)
        """#

    static let forms = ["legacy", "metaspace", "metaspace-split"]

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
            XCTAssertEqual(sp.prefix, ["legacy": .always, "metaspace": .firstUnlessSpace, "metaspace-split": .unlessSpace][form])
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
}
