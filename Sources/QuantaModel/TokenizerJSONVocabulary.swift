import QuantaCore
import QuantaIO

/// The vocabulary of a Hugging Face `tokenizer.json`: `model.vocab` and `added_tokens`, every id
/// checked once, here, for the three readers of the file (the byte-level BPE tokenizer, the
/// SentencePiece-style tokenizer and the GGUF converter's `tokenizer.ggml.*` metadata).
struct TokenizerJSONVocabulary {
    /// Token text by id; every id is in `0..<Int32.max`. An added token replaces a vocabulary
    /// entry with the same id, as `tokenizers` does.
    private(set) var byID: [Int: String] = [:]
    /// `added_tokens` in file order: text, id and the `special` flag (false when absent).
    private(set) var added: [(content: String, id: Int32, special: Bool)] = []
    /// The number of `model.vocab` entries.
    let baseCount: Int
    /// One past the largest id; 0 for an empty vocabulary.
    let idEnd: Int

    /// Reads `json`'s `model.vocab` (an object of token -> id) and `added_tokens` (objects with
    /// `id` and `content`). `path` names the file in errors.
    /// - Throws: `QuantaError.malformed` when `model.vocab` is not an object, an id is not an
    ///   integer in `0..<Int32.max`, or an added token lacks its id or content.
    init(_ json: JSONValue, path: String) throws {
        guard let vocab = json["model"]?["vocab"]?.objectValue else { throw QuantaError.malformed(path, "model.vocab is missing") }
        let limit = Int(Int32.max)
        for (token, value) in vocab {
            guard let id = value.intValue, id >= 0, id < limit else {
                throw QuantaError.malformed(path, "vocab entry '\(token)' has id \(value.serialized()), not an integer in 0..<\(limit)")
            }
            byID[id] = token
        }
        for entry in json["added_tokens"]?.arrayValue ?? [] {
            guard let content = entry["content"]?.stringValue, let value = entry["id"] else {
                throw QuantaError.malformed(path, "added token \(entry.serialized()) has no content or no id")
            }
            guard let id = value.intValue, id >= 0, id < limit else {
                throw QuantaError.malformed(path, "added token '\(content)' has id \(value.serialized()), not an integer in 0..<\(limit)")
            }
            byID[id] = content
            added.append((content, Int32(id), entry["special"]?.boolValue ?? false))
        }
        baseCount = vocab.count
        idEnd = (byID.keys.max() ?? -1) + 1
    }

    /// Whether every id in `0..<idEnd` names a token.
    var isDense: Bool { idEnd == byID.count }

    /// The token texts of ids `0..<max(minimumCount, idEnd)`, unassigned ids as `"[PADn]"` (as
    /// transformers and llama.cpp's converter pad). Ids may run up to `minimumCount` (a config's
    /// `vocab_size`, already bounded) or leave at most `max(1024, assigned)` holes.
    /// - Throws: `QuantaError.malformed` for a vocabulary mostly of holes (its size would come
    ///   from one outsized id, not from the file).
    func paddedTokens(minimumCount: Int = 0, path: String) throws -> [String] {
        guard idEnd <= max(minimumCount, byID.count + max(1024, byID.count)) else {
            throw QuantaError.malformed(path, "token ids run to \(idEnd - 1) but only \(byID.count) are assigned")
        }
        return (0..<max(minimumCount, idEnd)).map { byID[$0] ?? "[PAD\($0)]" }
    }

    /// The tokens of ids `0..<idEnd`, which must all be assigned.
    /// - Throws: `QuantaError.malformed` naming the largest id when some id below it is unassigned.
    func denseTokens(path: String) throws -> [String] {
        guard isDense else { throw QuantaError.malformed(path, "token ids are not 0..<\(byID.count): the largest is \(idEnd - 1)") }
        return (0..<idEnd).map { byID[$0]! }
    }

    /// The smallest id whose text is `text`, or nil.
    func id(of text: String) -> Int? {
        byID.lazy.filter { $0.value == text }.map(\.key).min()
    }

    /// `model.merges` of a BPE `tokenizer.json` as `"a b"` strings (the file may hold either that
    /// form or `[a, b]` pairs); none when absent.
    /// - Throws: `QuantaError.malformed` naming the first merge of neither form.
    static func merges(_ json: JSONValue, path: String) throws -> [String] {
        try (json["model"]?["merges"]?.arrayValue ?? []).map { merge in
            if let text = merge.stringValue { return text }
            if let pair = merge.arrayValue, pair.count == 2, let a = pair[0].stringValue, let b = pair[1].stringValue { return a + " " + b }
            throw QuantaError.malformed(path, "merge \(merge.serialized()) is neither \"a b\" nor [a, b]")
        }
    }
}
