import FuzzSupport
import QuantaModel

// tokenizer.model, SentencePiece's protobuf (read when converting Llama-2, Mistral and Gemma
// folders): pieces, scores, types and the trainer/normalizer fields around them.
fuzzMain { bytes in
    let path = Scratch.write(bytes, to: "tokenizer.model")
    guard let model = try? SentencePieceModelFile(path: path) else { return }
    precondition(model.pieces.count <= bytes.count / 2, "\(model.pieces.count) pieces from \(bytes.count) bytes")
}
