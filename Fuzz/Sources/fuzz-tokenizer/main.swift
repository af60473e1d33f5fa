#if canImport(Glibc)
import Glibc
#endif
import FuzzSupport
import QuantaCore
import QuantaIO
import QuantaModel

// tokenizer.json, optionally followed by a NUL byte and tokenizer_config.json: vocabulary,
// merges, added tokens, normalizer and pre-tokenizer; then encode and decode, and the same
// files as part of a model folder (real tiny config and weights, Fuzz/Fixtures/tiny-llama),
// where llama.cpp's converter metadata (tokens, types, merges, special ids) is made from them.
let texts = ["Hello, world! It's 2026 — naïve café 日本語 <s></s>\n\n  x\t y", "", " ", "\u{0}\u{FFFD}🙂🙂"]
let fixtures = getenv("QUANTA_FUZZ_FIXTURES").map { String(cString: $0) } ?? "Fuzz/Fixtures"
for name in ["config.json", "model.safetensors"] {
    guard let bytes = try? FileSystem.read("\(fixtures)/tiny-llama/\(name)") else { fatalError("missing \(fixtures)/tiny-llama/\(name)") }
    Scratch.write(bytes, to: name)
}

fuzzMain { bytes in
    let split = bytes.firstIndex(of: 0) ?? bytes.count
    let path = Scratch.write(UnsafeRawBufferPointer(rebasing: bytes[..<split]), to: "tokenizer.json")
    var config: JSONValue?
    Scratch.remove("tokenizer_config.json")
    if split < bytes.count {
        let configBytes = UnsafeRawBufferPointer(rebasing: bytes[(split + 1)...])
        guard let value = try? JSONParser.parse(configBytes) else { return }
        config = value
        Scratch.write(configBytes, to: "tokenizer_config.json")
    }
    if let tokenizer = try? BPETokenizer(tokenizerJSON: path, tokenizerConfig: config) {
        for text in texts {
            let ids = tokenizer.encode(text)
            precondition(ids.allSatisfy { $0 >= 0 && Int($0) < tokenizer.tokens.count }, "token id outside the vocabulary")
            _ = tokenizer.decode(ids)
        }
        _ = tokenizer.decode([0, 1, Int32(tokenizer.tokens.count - 1), -1, Int32.max])
    }
    guard let source = try? HuggingFaceSource(path: Scratch.folder) else { return }
    func count(_ key: String) -> Int? { source.metadata.first { $0.key == "tokenizer.ggml.\(key)" }?.value.arrayValue?.count }
    let tokens = count("tokens")
    precondition(tokens != nil && count("token_type") == tokens && (count("scores") ?? tokens) == tokens,
                 "converter metadata: \(tokens ?? -1) tokens, \(count("token_type") ?? -1) types, \(count("scores") ?? -1) scores")
    _ = try? source.tokenizer().encode(texts[0])
}
