import FuzzSupport
import QuantaCore
import QuantaIO
import QuantaModel

// A GGUF model from bytes to logits: architecture metadata (head counts, widths, RoPE), the
// tokenizer metadata, the weights checked against the config, then a short forward pass.
// As `DecoderModel(path:)` opens a GGUF, with RoPE tables for 16 positions instead of 4096
// (the tables are the same function of the config; this keeps an execution near a millisecond).
DecoderModel.threads = 1  // no worker threads: their allocations would set off a leak scan after every input

fuzzMain { bytes in
    let path = Scratch.write(bytes, to: "model.gguf")
    guard let file = try? GGUFFile(path: path), let config = try? ArchitectureRegistry.config(gguf: file),
          let tokenizer = try? BPETokenizer(gguf: file) else { return }
    let ids = tokenizer.encode("Hello, world! naïve café 日本語\n  x")
    _ = tokenizer.decode(ids)
    precondition(ids.allSatisfy { $0 >= 0 && Int($0) < tokenizer.tokens.count }, "token id outside the vocabulary")
    guard let weights = try? DecoderWeights.load(gguf: file, config: config) else { return }
    let model = DecoderModel(config: config, weights: weights, tokenizer: tokenizer, path: path, maxPositions: 16)
    let vocab = config.vocabSize
    let sequence = Array(([Int32(0)] + ids).prefix(4))
    if let logits = try? model.logits([sequence]) {
        precondition(logits.count == sequence.count * vocab, "wrong logits count")
    }
}
