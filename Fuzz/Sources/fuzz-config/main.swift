#if canImport(Glibc)
import Glibc
#endif
import FuzzSupport
import QuantaCore
import QuantaIO
import QuantaModel

// config.json of a Hugging Face folder, next to real tiny weights and tokenizer (written by
// Scripts/fuzz.sh from Fuzz/Corpus/config-folder): the config decoded by its family, the
// tensors checked against it, then a short forward pass.
let fixtures = getenv("QUANTA_FUZZ_FIXTURES").map { String(cString: $0) } ?? "Fuzz/Fixtures"
for name in ["model.safetensors", "tokenizer.json", "tokenizer_config.json"] {
    guard let bytes = try? FileSystem.read("\(fixtures)/tiny-llama/\(name)") else { fatalError("missing \(fixtures)/tiny-llama/\(name)") }
    Scratch.write(bytes, to: name)
}

DecoderModel.threads = 1  // no worker threads: their allocations would set off a leak scan after every input

fuzzMain { bytes in
    let path = Scratch.write(bytes, to: "config.json")
    guard let json = try? HFModelFolder.readJSON(path), (try? ArchitectureRegistry.config(hf: json, path: path)) != nil else { return }
    guard let model = try? DecoderModel(path: Scratch.folder) else { return }
    let vocab = model.config.vocabSize
    let ids = model.tokenizer.encode("It was a truth universally acknowledged")
    precondition(ids.allSatisfy { $0 >= 0 && Int($0) < vocab }, "token id outside the vocabulary of \(vocab)")
    if let logits = try? model.logits([Array(ids.prefix(3))]) {
        precondition(logits.count == min(ids.count, 3) * vocab, "wrong logits count")
    }
}
