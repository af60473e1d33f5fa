import QuantaCore
import QuantaIO
@testable import QuantaModel
import TestSupport
import XCTest

/// Token ids read from files are checked before they size a vocabulary or become Int32 ids.
/// Found by reading the paths the `tokenizer` and `gguf-model` fuzzers exercise: each of these
/// inputs trapped (Int32 conversion, index out of range) or asked for a vocabulary of 2^40 strings.
final class TokenizerRefusalTests: XCTestCase {
    /// The bundled tokenizer.json with `change` applied, written to a temporary file.
    func tokenizerJSON(_ change: (inout [(String, JSONValue)]) -> Void) throws -> String {
        guard case var .object(members) = try HFModelFolder.readJSON(TestSupport.austenModel + "/tokenizer.json") else {
            throw XCTSkip("the bundled tokenizer.json is not an object")
        }
        change(&members)
        let path = try TestSupport.temporaryFolder() + "/tokenizer.json"
        try TestSupport.write(Array(JSONValue.object(members).serialized().utf8), to: path)
        return path
    }

    func setVocabID(_ members: inout [(String, JSONValue)], token: String, id: Int64) {
        let i = members.firstIndex { $0.0 == "model" }!
        guard case var .object(model) = members[i].1, let v = model.firstIndex(where: { $0.0 == "vocab" }),
              case var .object(vocab) = model[v].1, let t = vocab.firstIndex(where: { $0.0 == token }) else { return XCTFail("no vocab") }
        vocab[t].1 = .integer(id)
        model[v].1 = .object(vocab)
        members[i].1 = .object(model)
    }

    func assertRefused(_ path: String, config: ModelConfig? = nil, _ message: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try BPETokenizer(tokenizerJSON: path, config: config), file: file, line: line) { error in
            XCTAssertEqual("\(error)", message, file: file, line: line)
        }
    }

    func testTokenizerJSONIdsOutsideInt32() throws {
        let path = try tokenizerJSON { setVocabID(&$0, token: "!", id: 1 << 40) }
        assertRefused(path, "\(path): vocab entry '!' has id 1099511627776, not an integer in 0..<2147483647")
        let added = try tokenizerJSON { members in
            let i = members.firstIndex { $0.0 == "added_tokens" }!
            members[i].1 = .array([.object([("id", .integer(3_000_000_000)), ("content", .string("<x>"))])])
        }
        assertRefused(added, "\(added): added token '<x>' has id 3000000000, not an integer in 0..<2147483647")
    }

    /// The GGUF converter reads tokenizer.json on its own (`quanta quantize FOLDER`).
    func testConverterIdsOutsideInt32() throws {
        // Int64.max: the largest id plus one overflowed (a trap) before the bound.
        let tokenizer = try tokenizerJSON { setVocabID(&$0, token: "!", id: Int64.max) }
        let folder = String(tokenizer.dropLast("/tokenizer.json".count))
        for name in ["config.json", "model.safetensors", "tokenizer_config.json"] {
            XCTAssertEqual(symlink(TestSupport.austenModel + "/" + name, folder + "/" + name), 0)
        }
        XCTAssertThrowsError(try HuggingFaceSource(path: folder)) { error in
            XCTAssertEqual("\(error)", "\(tokenizer): vocab entry '!' has id 9223372036854775807, not an integer in 0..<2147483647")
        }
    }

    /// The SentencePiece-style reader shares the checks: a config.json BOS beyond Int32 or beyond
    /// the vocabulary (it trapped, indexing the tokens for the post-processor's template) and an
    /// added token without an id (the byte-level reader skipped it) are refused.
    func testSentencePieceTokenizerJSONIds() throws {
        let seed = TestSupport.path("Fuzz/Corpus/tokenizer/austen-sentencepiece.json")
        for (bos, message) in [(1000, "\(seed): bos token id 1000 is outside the vocabulary of 1000"),
                               (1 << 40, "\(seed): bos_token_id: 1099511627776 is not a token id")] {
            var config = try ModelFolder(path: TestSupport.austenModel).config
            config.bosTokenIds = [bos]
            assertRefused(seed, config: config, message)
        }
        guard case var .object(members) = try HFModelFolder.readJSON(seed), let i = members.firstIndex(where: { $0.0 == "added_tokens" }) else {
            return XCTFail("no added_tokens in \(seed)")
        }
        members[i].1 = .array([.object([("content", .string("<x>"))])])
        let path = try TestSupport.temporaryFolder() + "/tokenizer.json"
        try TestSupport.write(Array(JSONValue.object(members).serialized().utf8), to: path)
        assertRefused(path, "\(path): added token {\"content\":\"<x>\"} has no content or no id")
    }

    func testTokenizerJSONMostlyHoles() throws {
        let path = try tokenizerJSON { setVocabID(&$0, token: "!", id: 1_000_000) }
        assertRefused(path, "\(path): token ids run to 1000000 but only 4096 are assigned")
    }

    func testConfigBOSOutsideTheVocabulary() throws {
        let path = try tokenizerJSON { _ in }
        for (bos, message) in [(5000, "\(path): bos token id 5000 is outside the vocabulary of 4096"),
                               (1 << 40, "\(path): bos_token_id: 1099511627776 is not a token id")] {
            var config = try ModelFolder(path: TestSupport.austenModel).config
            config.bosTokenIds = [bos]
            assertRefused(path, config: config, message)
        }
    }

    /// A GGUF with a gpt2 vocabulary of the 256 byte tokens and `extra` metadata.
    func gguf(_ extra: [[UInt8]]) throws -> String {
        func array(_ type: UInt32, _ elements: [[UInt8]]) -> [UInt8] {
            var w = ByteWriter()
            w.integer(type)
            w.integer(UInt64(elements.count))
            for e in elements { w.raw(e) }
            return w.bytes
        }
        let tokens = (0..<256).map { RawGGUF.string(String(Character(BPETokenizer.byteToUnicode[$0]))) }
        let raw = RawGGUF().with {
            $0.metadata += [RawGGUF.kv("tokenizer.ggml.model", type: 8, RawGGUF.string("gpt2")),
                            RawGGUF.kv("tokenizer.ggml.tokens", type: 9, array(8, tokens))] + extra
        }
        let path = try TestSupport.temporaryFolder() + "/t.gguf"
        try TestSupport.write(raw.bytes, to: path)
        return path
    }

    func testGGUFTokenTypesAndIds() throws {
        let fine = try gguf([])
        XCTAssertEqual(try BPETokenizer(gguf: GGUFFile(path: fine)).tokens.count, 256)
        let types = try gguf([RawGGUF.kv("tokenizer.ggml.token_type", type: 9, [5, 0, 0, 0] + withUnsafeBytes(of: UInt64(300).littleEndian) { Array($0) }
                                         + (0..<300).flatMap { _ in RawGGUF.u32(3) })])
        XCTAssertThrowsError(try BPETokenizer(gguf: GGUFFile(path: types))) { error in
            XCTAssertEqual("\(error)", "\(types): tokenizer.ggml.token_type: 300 types for 256 tokens")
        }
        let bos = try gguf([RawGGUF.kv("tokenizer.ggml.bos_token_id", type: 4, RawGGUF.u32(256))])
        XCTAssertThrowsError(try BPETokenizer(gguf: GGUFFile(path: bos))) { error in
            XCTAssertEqual("\(error)", "\(bos): bos token id 256 is outside the vocabulary of 256")
        }
    }
}
