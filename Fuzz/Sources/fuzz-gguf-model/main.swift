import FuzzSupport
import QuantaCore
import QuantaIO
import QuantaModel

// A GGUF model from bytes to logits: architecture metadata (head counts, widths, RoPE), the
// tokenizer metadata, the weights checked against the config, then a short forward pass.
fuzzMain { bytes in
    let path = Scratch.write(bytes, to: "model.gguf")
    guard let model = try? DecoderModel(path: path) else { return }
    let ids = model.tokenizer.encode("Hello, world! naïve café 日本語\n  x")
    _ = model.tokenizer.decode(ids)
    let vocab = model.config.vocabSize
    precondition(ids.allSatisfy { $0 >= 0 && Int($0) < vocab }, "token id outside the vocabulary of \(vocab)")
    let sequence = Array(([Int32(0)] + ids).prefix(4))
    if let logits = try? model.logits([sequence]) {
        precondition(logits.count == sequence.count * vocab, "wrong logits count")
    }
}
