#if canImport(Glibc)
import Glibc
#endif
import FuzzSupport
import QuantaCore
import QuantaIO
import QuantaModel

// A quantized Hugging Face folder (GPTQ v1, MLX affine, compressed-tensors pack-quantized), the
// input being config.json, NUL, quantize_config.json (may be empty), NUL, model.safetensors:
// the quantization config, the packed integer tensors, scales, zeros and group indices
// dequantized into a model, then a short forward pass. The tokenizer is the fixture's.
let fixtures = getenv("QUANTA_FUZZ_FIXTURES").map { String(cString: $0) } ?? "Fuzz/Fixtures"
for name in ["tokenizer.json", "tokenizer_config.json"] {
    guard let bytes = try? FileSystem.read("\(fixtures)/tiny-llama/\(name)") else { fatalError("missing \(fixtures)/tiny-llama/\(name)") }
    Scratch.write(bytes, to: name)
}
DecoderModel.threads = 1  // no worker threads: their allocations would set off a leak scan after every input

fuzzMain { bytes in
    guard let first = bytes.firstIndex(of: 0), let second = bytes[(first + 1)...].firstIndex(of: 0) else { return }
    Scratch.write(UnsafeRawBufferPointer(rebasing: bytes[..<first]), to: "config.json")
    if second > first + 1 {
        Scratch.write(UnsafeRawBufferPointer(rebasing: bytes[(first + 1)..<second]), to: "quantize_config.json")
    } else {
        Scratch.remove("quantize_config.json")
    }
    Scratch.write(UnsafeRawBufferPointer(rebasing: bytes[(second + 1)...]), to: "model.safetensors")
    guard let folder = try? ModelFolder(path: Scratch.folder), let weights = try? DecoderWeights.load(folder: folder),
          let tokenizer = try? BPETokenizer(tokenizerJSON: Scratch.path("tokenizer.json"), config: folder.config) else { return }
    let model = DecoderModel(config: folder.config, weights: weights, tokenizer: tokenizer, path: Scratch.folder, maxPositions: 16)
    if let logits = try? model.logits([[1, 2, 3]]) {
        precondition(logits.count == 3 * folder.config.vocabSize, "wrong logits count")
    }
}
