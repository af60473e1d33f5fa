import FuzzSupport
import QuantaCore
import QuantaIO
import QuantaModel

// tokenizer.json, optionally followed by a NUL byte and tokenizer_config.json: vocabulary,
// merges, added tokens, normalizer and pre-tokenizer; then encode and decode.
let texts = ["Hello, world! It's 2026 — naïve café 日本語 <s></s>\n\n  x\t y", "", " ", "\u{0}\u{FFFD}🙂🙂"]

fuzzMain { bytes in
    let split = bytes.firstIndex(of: 0) ?? bytes.count
    let path = Scratch.write(UnsafeRawBufferPointer(rebasing: bytes[..<split]), to: "tokenizer.json")
    var config: JSONValue?
    if split < bytes.count {
        guard let value = try? JSONParser.parse(UnsafeRawBufferPointer(rebasing: bytes[(split + 1)...])) else { return }
        config = value
    }
    guard let tokenizer = try? BPETokenizer(tokenizerJSON: path, tokenizerConfig: config) else { return }
    for text in texts {
        let ids = tokenizer.encode(text)
        precondition(ids.allSatisfy { $0 >= 0 && Int($0) < tokenizer.tokens.count }, "token id outside the vocabulary")
        _ = tokenizer.decode(ids)
    }
    _ = tokenizer.decode([0, 1, Int32(tokenizer.tokens.count - 1), -1, Int32.max])
}
