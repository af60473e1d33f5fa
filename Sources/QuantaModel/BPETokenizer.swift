import Dispatch
import QuantaCore
import QuantaIO

/// The tokenizer of a model, one of two kinds behind one interface:
/// - GPT-2 style byte-level BPE: special tokens split out first, then the pre-tokenizer's
///   pieces, each piece's UTF-8 bytes mapped to printable characters and merged by rank;
/// - SentencePiece-style BPE (`sentencePiece` set; Llama 2, Mistral): see `SentencePieceTokenizer`.
/// Built from a Hugging Face `tokenizer.json` or from GGUF tokenizer metadata (`tokenizer.ggml.model`
/// "gpt2" or "llama"), with identical ids to the `tokenizers` package (to llama.cpp for "llama").
public final class BPETokenizer: @unchecked Sendable {
    /// Token strings by id (byte-level form for normal byte-level tokens; "▁" for spaces in SentencePiece ones).
    public let tokens: [String]
    /// The byte-level pre-tokenizer; nil for a SentencePiece-style tokenizer.
    public var preTokenizer: PreTokenizer? { sentencePiece == nil ? byteLevel : nil }
    /// Set when the vocabulary is SentencePiece-style; it then encodes and decodes.
    public let sentencePiece: SentencePieceTokenizer?
    private let byteLevel: PreTokenizer
    /// Special (control) tokens matched verbatim in the text, longest first.
    public let specialTokens: [(text: [Unicode.Scalar], id: Int32)]
    public let bosID: Int32?
    public let eosID: Int32?
    /// Whether llama.cpp would prepend BOS (`tokenizer.ggml.add_bos_token` / `add_bos_token`).
    public let addBOS: Bool
    /// Use a piece's own token when the vocabulary has it, before merging (llama-3).
    public let ignoreMerges: Bool

    private let vocab: [String: Int32]
    /// (left id, right id) -> (rank, merged id).
    private let merges: [UInt64: (rank: Int32, id: Int32)]
    /// The token of each byte, or -1 when the vocabulary lacks it (such bytes are dropped, as
    /// `tokenizers` drops characters it cannot map when there is no unknown token).
    private let byteTokens: [Int32]
    private var cache: [[UInt8]: [Int32]] = [:]
    private let lock = PThreadMutex()

    static let byteToUnicode: [Unicode.Scalar] = {
        var bytes = Array(33...126) + Array(161...172) + Array(174...255)
        var chars = bytes
        var n = 0
        for b in 0..<256 where !bytes.contains(b) {
            bytes.append(b)
            chars.append(256 + n)
            n += 1
        }
        var table = [Unicode.Scalar](repeating: " ", count: 256)
        for (b, c) in zip(bytes, chars) { table[b] = Unicode.Scalar(UInt32(c))! }
        return table
    }()

    static let unicodeToByte: [UInt32: UInt8] = {
        var map: [UInt32: UInt8] = [:]
        for (b, c) in byteToUnicode.enumerated() { map[c.value] = UInt8(b) }
        return map
    }()

    /// `tokens` by id, `merges` as "left right" token strings in rank order.
    public init(tokens: [String], merges: [String], special: [(String, Int32)], preTokenizer: PreTokenizer,
                bosID: Int32?, eosID: Int32?, addBOS: Bool, ignoreMerges: Bool, source: String) throws {
        for (name, id) in [("bos", bosID), ("eos", eosID)] {
            if let id, id < 0 || Int(id) >= tokens.count {
                throw QuantaError.malformed(source, "\(name) token id \(id) is outside the vocabulary of \(tokens.count)")
            }
        }
        if let outside = special.first(where: { $0.1 < 0 || Int($0.1) >= tokens.count }) {
            throw QuantaError.malformed(source, "special token '\(outside.0)' has id \(outside.1), outside the vocabulary of \(tokens.count)")
        }
        self.tokens = tokens
        self.byteLevel = preTokenizer
        self.sentencePiece = nil
        self.bosID = bosID
        self.eosID = eosID
        self.addBOS = addBOS
        self.ignoreMerges = ignoreMerges
        var vocab: [String: Int32] = [:]
        vocab.reserveCapacity(tokens.count)
        for (i, t) in tokens.enumerated() where vocab[t] == nil { vocab[t] = Int32(i) }
        self.vocab = vocab
        let byteTokens = (0..<256).map { vocab[String(Character(BPETokenizer.byteToUnicode[$0]))] ?? -1 }
        guard byteTokens.filter({ $0 >= 0 }).count >= 128 else {
            throw QuantaError.malformed(source, "vocabulary lacks most single-byte tokens; not a byte-level BPE vocabulary")
        }
        self.byteTokens = byteTokens
        var table: [UInt64: (rank: Int32, id: Int32)] = [:]
        table.reserveCapacity(merges.count)
        for (rank, merge) in merges.enumerated() {
            let parts = merge.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2, let a = vocab[String(parts[0])], let b = vocab[String(parts[1])],
                  let merged = vocab[String(parts[0]) + String(parts[1])] else {
                throw QuantaError.malformed(source, "merge \(rank) '\(merge)' does not join two vocabulary tokens into one")
            }
            let key = UInt64(UInt32(bitPattern: a)) << 32 | UInt64(UInt32(bitPattern: b))
            if table[key] == nil { table[key] = (Int32(rank), merged) }
        }
        self.merges = table
        self.specialTokens = special.map { (Array($0.0.unicodeScalars), $0.1) }.sorted { $0.0.count > $1.0.count }
    }

    /// A SentencePiece-style tokenizer behind the common interface.
    public init(_ sentencePiece: SentencePieceTokenizer) {
        self.sentencePiece = sentencePiece
        tokens = sentencePiece.tokens
        byteLevel = .gpt2
        specialTokens = sentencePiece.specialTokens
        bosID = sentencePiece.bosID
        eosID = sentencePiece.eosID
        addBOS = sentencePiece.addBOS
        ignoreMerges = false
        vocab = [:]
        merges = [:]
        byteTokens = []
    }

    /// From a Hugging Face `tokenizer.json` (and `tokenizer_config.json` for BOS/EOS when given);
    /// SentencePiece-style when `SentencePieceVocabulary.isSentencePiece` says so.
    public convenience init(tokenizerJSON path: String, tokenizerConfig: JSONValue? = nil, config: ModelConfig? = nil) throws {
        let json: JSONValue
        do { json = try JSONParser.parse(FileSystem.read(path)) } catch let failure as JSONParser.Failure {
            throw QuantaError.malformed(path, "not valid JSON: \(failure)")
        }
        if SentencePieceVocabulary.isSentencePiece(json) {
            self.init(try SentencePieceVocabulary.tokenizer(json: json, path: path, tokenizerConfig: tokenizerConfig, config: config))
            return
        }
        guard let model = json["model"], model["type"]?.stringValue == "BPE", model["vocab"]?.objectValue != nil else {
            throw QuantaError.unsupported(path, "only byte-level BPE tokenizers are supported")
        }
        let vocabulary = try TokenizerJSONVocabulary(json, path: path)
        let tokens = try vocabulary.paddedTokens(path: path)
        let special = vocabulary.added.map { ($0.content, $0.id) }
        let merges = try TokenizerJSONVocabulary.merges(json, path: path)
        let preName = try GGUFConverter.preTokenizerName(json["pre_tokenizer"], path: path)
        guard let pre = PreTokenizer(rawValue: preName == "default" ? "gpt-2" : preName) else {
            throw QuantaError.unsupported(path, "pre-tokenizer '\(preName)' is not supported")
        }
        func id(_ key: String) -> Int32? {
            guard let name = tokenizerConfig?[key]?.stringValue ?? tokenizerConfig?[key]?["content"]?.stringValue else { return nil }
            return vocabulary.id(of: name).map { Int32($0) }
        }
        try self.init(tokens: tokens, merges: merges, special: special, preTokenizer: pre,
                      bosID: try config?.bosTokenIds.first.map { try BPETokenizer.tokenID($0, "bos_token_id", path: path) } ?? id("bos_token"),
                      eosID: try config?.eosTokenIds.first.map { try BPETokenizer.tokenID($0, "eos_token_id", path: path) } ?? id("eos_token"),
                      addBOS: tokenizerConfig?["add_bos_token"]?.boolValue ?? false,
                      ignoreMerges: model["ignore_merges"]?.boolValue ?? false, source: path)
    }

    /// From GGUF tokenizer metadata (`tokenizer.ggml.*`, model "gpt2", or "llama" for SentencePiece).
    public convenience init(gguf file: GGUFFile) throws {
        if file["tokenizer.ggml.model"]?.stringValue == "llama" {
            self.init(try SentencePieceVocabulary.tokenizer(gguf: file))
            return
        }
        guard file["tokenizer.ggml.model"]?.stringValue == "gpt2",
              let tokens = file["tokenizer.ggml.tokens"]?.arrayValue?.compactMap(\.stringValue) else {
            throw QuantaError.unsupported(file.path, "tokenizer.ggml.model is \(file["tokenizer.ggml.model"]?.summary() ?? "absent"); only gpt2 (byte-level BPE) and llama (SentencePiece) are supported")
        }
        guard tokens.count == file["tokenizer.ggml.tokens"]?.arrayValue?.count else {
            throw QuantaError.malformed("\(file.path): tokenizer.ggml.tokens", "is not an array of strings")
        }
        let types = file["tokenizer.ggml.token_type"]?.arrayValue?.compactMap(\.intValue) ?? []
        guard types.isEmpty || types.count == tokens.count else {
            throw QuantaError.malformed("\(file.path): tokenizer.ggml.token_type", "\(types.count) types for \(tokens.count) tokens")
        }
        let special = types.enumerated().filter { $0.element == 3 || $0.element == 4 }.map { (tokens[$0.offset], Int32($0.offset)) }
        let preName = file["tokenizer.ggml.pre"]?.stringValue ?? "default"
        let pre: PreTokenizer
        switch preName {
        case "default", "gpt-2", "gpt2": pre = .gpt2
        case "llama-bpe", "llama3": pre = .llama3
        case "smollm": pre = .smollm
        default: throw QuantaError.unsupported("\(file.path): tokenizer.ggml.pre", "'\(preName)' is not supported (gpt-2, llama-bpe, smollm)")
        }
        try self.init(tokens: tokens, merges: file["tokenizer.ggml.merges"]?.arrayValue?.compactMap(\.stringValue) ?? [],
                      special: special, preTokenizer: pre,
                      bosID: try file["tokenizer.ggml.bos_token_id"]?.intValue.map { try BPETokenizer.tokenID($0, "tokenizer.ggml.bos_token_id", path: file.path) },
                      eosID: try file["tokenizer.ggml.eos_token_id"]?.intValue.map { try BPETokenizer.tokenID($0, "tokenizer.ggml.eos_token_id", path: file.path) },
                      addBOS: file["tokenizer.ggml.add_bos_token"]?.boolValue ?? false,
                      ignoreMerges: pre == .llama3, source: file.path)
    }

    /// A token id read from a file, as Int32 (its range against the vocabulary is checked by `init`).
    /// A config.json token id as an Int32 (the tokenizer's init then checks it against the vocabulary).
    static func tokenID(_ value: Int, _ key: String, path: String) throws -> Int32 {
        guard let id = Int32(exactly: value) else { throw QuantaError.malformed("\(path): \(key)", "\(value) is not a token id") }
        return id
    }

    /// Token ids of `text` (no BOS; see `addBOS`).
    public func encode(_ text: String) -> [Int32] { sentencePiece?.encode(text) ?? encode(text, parallel: true) }

    /// `parallel`: long stretches of text are cut where every supported pre-tokenizer starts a
    /// new piece anyway (after a newline, before a letter) and the parts encoded on all cores.
    func encode(_ text: String, parallel: Bool) -> [Int32] {
        if let sentencePiece { return sentencePiece.encode(text) }
        let scalars = Array(text.unicodeScalars)
        var out: [Int32] = []
        out.reserveCapacity(scalars.count / 3)
        var start = 0
        var p = 0
        while p < scalars.count {
            if let (length, id) = special(at: p, in: scalars) {
                if start < p { encodeOrdinary(scalars, start..<p, into: &out, parallel: parallel) }
                out.append(id)
                p += length
                start = p
            } else {
                p += 1
            }
        }
        if start < scalars.count { encodeOrdinary(scalars, start..<scalars.count, into: &out, parallel: parallel) }
        return out
    }

    /// Whether every supported pre-tokenizer starts a piece at `p` whether or not the text ends
    /// there: a single newline between a non-space and a letter (two newlines would be one piece
    /// at the end of a part and two before a letter in GPT-2's `\s+(?!\S)`).
    static func isCut(_ s: [Unicode.Scalar], _ p: Int) -> Bool {
        guard p >= 2, s[p - 1] == "\n", !s[p - 2].properties.isWhitespace else { return false }
        switch s[p].properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return true
        default: return false
        }
    }

    /// Text shorter than this is encoded on one thread.
    static let parallelScalars = 1 << 17

    private func encodeOrdinary(_ s: [Unicode.Scalar], _ range: Range<Int>, into out: inout [Int32], parallel: Bool) {
        let parts = parallel && range.count >= BPETokenizer.parallelScalars ? 4 * Kernels.cores : 1
        guard parts > 1 else { return encodeOrdinary(s, range, into: &out) }
        var cuts = [range.lowerBound]
        for k in 1..<parts {
            var p = max(cuts.last!, range.lowerBound + range.count * k / parts)
            while p < range.upperBound && !BPETokenizer.isCut(s, p) { p += 1 }
            if p < range.upperBound && p > cuts.last! { cuts.append(p) }
        }
        cuts.append(range.upperBound)
        let bounds = cuts
        var pieces = [[Int32]](repeating: [], count: cuts.count - 1)
        pieces.withUnsafeMutableBufferPointer { results in
            nonisolated(unsafe) let base = results.baseAddress!
            // Each part keeps its own cache of merged pieces: a shared one behind a lock serializes them.
            DispatchQueue.concurrentPerform(iterations: bounds.count - 1) { i in
                var part: [Int32] = []
                var local: [[UInt8]: [Int32]] = [:]
                encodeOrdinary(s, bounds[i]..<bounds[i + 1], into: &part, cache: &local)
                base[i] = part
            }
        }
        for piece in pieces { out.append(contentsOf: piece) }
    }

    private func special(at p: Int, in s: [Unicode.Scalar]) -> (Int, Int32)? {
        guard !specialTokens.isEmpty, s[p] == "<" || specialTokens.contains(where: { $0.text.first == s[p] }) else { return nil }
        for (text, id) in specialTokens where p + text.count <= s.count && text.first == s[p] {
            if s[p..<(p + text.count)].elementsEqual(text) { return (text.count, id) }
        }
        return nil
    }

    private func encodeOrdinary(_ s: [Unicode.Scalar], _ range: Range<Int>, into out: inout [Int32]) {
        let piece = Array(s[range])
        for r in byteLevel.split(piece) {
            var bytes: [UInt8] = []
            for scalar in piece[r] { bytes.append(contentsOf: String(Character(scalar)).utf8) }
            out.append(contentsOf: bpe(bytes))
        }
    }

    /// The same with a caller-owned cache (no lock).
    private func encodeOrdinary(_ s: [Unicode.Scalar], _ range: Range<Int>, into out: inout [Int32], cache local: inout [[UInt8]: [Int32]]) {
        let piece = Array(s[range])
        for r in byteLevel.split(piece) {
            var bytes: [UInt8] = []
            for scalar in piece[r] { bytes.append(contentsOf: String(Character(scalar)).utf8) }
            if let hit = local[bytes] {
                out.append(contentsOf: hit)
            } else {
                let ids = merge(bytes)
                local[bytes] = ids
                out.append(contentsOf: ids)
            }
        }
    }

    private func bpe(_ bytes: [UInt8]) -> [Int32] {
        if let hit = lock.withLock({ cache[bytes] }) { return hit }
        let result = merge(bytes)
        lock.withLock { cache[bytes] = result }
        return result
    }

    /// The BPE merges of one pre-token's bytes.
    private func merge(_ bytes: [UInt8]) -> [Int32] {
        var result: [Int32]
        if ignoreMerges, let whole = vocab[String(String.UnicodeScalarView(bytes.map { BPETokenizer.byteToUnicode[Int($0)] }))] {
            result = [whole]
        } else {
            var symbols = bytes.map { byteTokens[Int($0)] }.filter { $0 >= 0 }
            while symbols.count > 1 {
                var best: (rank: Int32, index: Int, id: Int32)?
                for i in 0..<(symbols.count - 1) {
                    let key = UInt64(UInt32(bitPattern: symbols[i])) << 32 | UInt64(UInt32(bitPattern: symbols[i + 1]))
                    if let merge = merges[key], merge.rank < (best?.rank ?? .max) { best = (merge.rank, i, merge.id) }
                }
                guard let best else { break }
                // Merge every occurrence of the pair, left to right (as tokenizers does for one rank).
                let left = symbols[best.index], right = symbols[best.index + 1]
                var merged: [Int32] = []
                merged.reserveCapacity(symbols.count)
                var i = 0
                while i < symbols.count {
                    if i + 1 < symbols.count && symbols[i] == left && symbols[i + 1] == right {
                        merged.append(best.id)
                        i += 2
                    } else {
                        merged.append(symbols[i])
                        i += 1
                    }
                }
                symbols = merged
            }
            result = symbols
        }
        return result
    }

    /// The text of `ids` (byte-level tokens decoded back to UTF-8; invalid sequences replaced).
    public func decode(_ ids: [Int32]) -> String {
        if let sentencePiece { return sentencePiece.decode(ids) }
        var bytes: [UInt8] = []
        for id in ids where id >= 0 && Int(id) < tokens.count {
            let token = tokens[Int(id)]
            if specialTokens.contains(where: { $0.id == id }) {
                bytes.append(contentsOf: token.utf8)
                continue
            }
            for scalar in token.unicodeScalars {
                if let b = BPETokenizer.unicodeToByte[scalar.value] { bytes.append(b) } else { bytes.append(contentsOf: String(scalar).utf8) }
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// A minimal mutex (pthread) so the BPE cache can be shared across threads.
final class PThreadMutex: @unchecked Sendable {
    private var mutex = pthread_mutex_t()
    init() { pthread_mutex_init(&mutex, nil) }
    deinit { pthread_mutex_destroy(&mutex) }
    func withLock<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return try body()
    }
}

#if canImport(Glibc)
import Glibc
#endif
