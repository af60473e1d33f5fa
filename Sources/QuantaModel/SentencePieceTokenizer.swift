import QuantaCore
import QuantaIO

/// A SentencePiece-style tokenizer (Llama 2, Mistral, TinyLlama): spaces written as "▁"
/// (U+2581), a "▁" put before the text, characters outside the vocabulary spelled as byte
/// tokens `<0xXX>`, and symbols joined in one of two ways:
/// - `.mergeRanks`: Hugging Face `tokenizers` BPE (`tokenizer.json`, `byte_fallback: true`),
///   lowest merge rank first, leftmost first among equal ranks;
/// - `.scores`: llama.cpp's SPM tokenizer (GGUF `tokenizer.ggml.model` "llama"): any adjacent
///   pair whose text is a token, highest token score first, leftmost first among equal scores.
/// Both run with a heap over a linked list of symbols, so a whole file encoded as one piece
/// costs O(n log n).
public final class SentencePieceTokenizer: @unchecked Sendable {
    public enum Joining: Sendable { case mergeRanks, scores }

    /// Where "▁" is put before a stretch of text between special tokens.
    public enum Prefix: Sendable, Equatable {
        case never
        /// Before every non-empty stretch (the `Prepend` normalizer; llama.cpp's `add_space_prefix`).
        case always
        /// Before every stretch not already starting with a space (`Metaspace`, prepend_scheme "always").
        case unlessSpace
        /// Before the stretch at the start of the text unless it starts with a space
        /// (`Metaspace`, prepend_scheme "first").
        case firstUnlessSpace
    }

    public static let space: Unicode.Scalar = "\u{2581}"

    /// Token strings by id ("▁" for spaces; `<0xXX>` byte tokens).
    public let tokens: [String]
    /// Token scores by id (GGUF `tokenizer.ggml.scores`; empty for `.mergeRanks`).
    public let scores: [Float]
    public let joining: Joining
    public let prefix: Prefix
    /// Each "▁" starts a new piece before joining (`Metaspace` with `split: true`).
    public let splitOnSpace: Bool
    /// Tokens matched verbatim in the text before anything else, longest first.
    public let specialTokens: [(text: [Unicode.Scalar], id: Int32)]
    public let bosID: Int32?
    public let eosID: Int32?
    public let unknownID: Int32?
    /// Whether BOS goes before the text (`add_bos_token`; llama.cpp's default for SPM is true).
    public let addBOS: Bool
    /// `tokenizers`' `fuse_unk`: consecutive unknown characters become one unknown token.
    public let fuseUnknown: Bool

    private let vocab: [String: Int32]
    /// Single-scalar tokens by scalar value (the starting symbols).
    private let scalarTokens: [UInt32: Int32]
    /// The `<0xXX>` token of each byte, or -1.
    private let byteTokens: [Int32]
    /// (left id, right id) -> (rank, merged id), for `.mergeRanks`.
    private let merges: [UInt64: (rank: Int32, id: Int32)]
    private var cache: [[Unicode.Scalar]: [Int32]] = [:]
    private let lock = PThreadMutex()

    /// `merges` as "left right" strings in rank order (ignored for `.scores`); `scores` by id
    /// (`.scores` only). Throws when a merge does not join two tokens into a third, when the
    /// scores do not match the tokens, or when the vocabulary lacks byte tokens it needs.
    public init(tokens: [String], scores: [Float], merges: [String], joining: Joining, prefix: Prefix, splitOnSpace: Bool,
                special: [(String, Int32)], bosID: Int32?, eosID: Int32?, unknownID: Int32?, addBOS: Bool,
                fuseUnknown: Bool, source: String) throws {
        guard joining == .mergeRanks || scores.count == tokens.count else {
            throw QuantaError.malformed(source, "\(scores.count) token scores for \(tokens.count) tokens")
        }
        for (name, id) in [("bos", bosID), ("eos", eosID), ("unknown", unknownID)] {
            if let id, id < 0 || Int(id) >= tokens.count {
                throw QuantaError.malformed(source, "\(name) token id \(id) is outside the vocabulary of \(tokens.count)")
            }
        }
        self.tokens = tokens
        self.scores = scores
        self.joining = joining
        self.prefix = prefix
        self.splitOnSpace = splitOnSpace
        self.bosID = bosID
        self.eosID = eosID
        self.unknownID = unknownID
        self.addBOS = addBOS
        self.fuseUnknown = fuseUnknown
        var vocab: [String: Int32] = [:]
        vocab.reserveCapacity(tokens.count)
        var scalarTokens: [UInt32: Int32] = [:]
        for (i, t) in tokens.enumerated() where vocab[t] == nil {
            vocab[t] = Int32(i)
            let scalars = t.unicodeScalars
            if scalars.count == 1 { scalarTokens[scalars.first!.value] = Int32(i) }
        }
        self.vocab = vocab
        self.scalarTokens = scalarTokens
        self.byteTokens = (0..<256).map { vocab[SentencePieceTokenizer.byteTokenText(UInt8($0))] ?? -1 }
        guard byteTokens.contains(where: { $0 >= 0 }) || unknownID != nil else {
            throw QuantaError.malformed(source, "the vocabulary has neither byte tokens <0xXX> nor an unknown token")
        }
        var table: [UInt64: (rank: Int32, id: Int32)] = [:]
        if joining == .mergeRanks {
            table.reserveCapacity(merges.count)
            for (rank, merge) in merges.enumerated() {
                let parts = merge.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false)
                guard parts.count == 2, let a = vocab[String(parts[0])], let b = vocab[String(parts[1])],
                      let merged = vocab[String(parts[0]) + String(parts[1])] else {
                    throw QuantaError.malformed(source, "merge \(rank) '\(merge)' does not join two vocabulary tokens into one")
                }
                let key = SentencePieceTokenizer.pair(a, b)
                if table[key] == nil { table[key] = (Int32(rank), merged) }
            }
        }
        self.merges = table
        self.specialTokens = special.filter { !$0.0.isEmpty }.map { (Array($0.0.unicodeScalars), $0.1) }
            .sorted { $0.0.count > $1.0.count }
    }

    /// "<0x0A>" for 10.
    public static func byteTokenText(_ byte: UInt8) -> String {
        let hex = Array("0123456789ABCDEF")
        return "<0x\(hex[Int(byte >> 4)])\(hex[Int(byte & 15)])>"
    }

    /// The byte of a `<0xXX>` token, else nil.
    public static func byteOfToken(_ token: String) -> UInt8? {
        let u = Array(token.utf8)
        guard u.count == 6, u[0] == 0x3C, u[1] == 0x30, u[2] == 0x78, u[5] == 0x3E else { return nil }
        return UInt8(String(decoding: u[3..<5], as: UTF8.self), radix: 16)
    }

    @inline(__always) static func pair(_ a: Int32, _ b: Int32) -> UInt64 {
        UInt64(UInt32(bitPattern: a)) << 32 | UInt64(UInt32(bitPattern: b))
    }

    // MARK: - Encoding

    /// Token ids of `text` (no BOS; see `addBOS`).
    public func encode(_ text: String) -> [Int32] {
        let scalars = Array(text.unicodeScalars)
        var out: [Int32] = []
        out.reserveCapacity(scalars.count / 3)
        var start = 0, p = 0
        while p < scalars.count {
            if let (length, id) = special(at: p, in: scalars) {
                if start < p { encodeStretch(scalars[start..<p], atStart: start == 0, into: &out) }
                out.append(id)
                p += length
                start = p
            } else {
                p += 1
            }
        }
        if start < scalars.count { encodeStretch(scalars[start..<scalars.count], atStart: start == 0, into: &out) }
        return out
    }

    private func special(at p: Int, in s: [Unicode.Scalar]) -> (Int, Int32)? {
        for (text, id) in specialTokens where p + text.count <= s.count && text[0] == s[p] {
            if s[p..<(p + text.count)].elementsEqual(text) { return (text.count, id) }
        }
        return nil
    }

    /// One stretch of text between special tokens: spaces to "▁", the prefix, pieces, joining.
    private func encodeStretch(_ stretch: ArraySlice<Unicode.Scalar>, atStart: Bool, into out: inout [Int32]) {
        var text: [Unicode.Scalar] = []
        text.reserveCapacity(stretch.count + 1)
        // Metaspace looks after spaces became "▁", so a literal "▁" counts as a space too.
        let startsWithSpace = stretch.first == " " || stretch.first == Self.space
        switch prefix {
        case .never: break
        case .always: text.append(Self.space)
        case .unlessSpace: if !startsWithSpace { text.append(Self.space) }
        case .firstUnlessSpace: if atStart && !startsWithSpace { text.append(Self.space) }
        }
        for c in stretch { text.append(c == " " ? Self.space : c) }
        guard splitOnSpace else { return out.append(contentsOf: join(text[...])) }
        var start = 0
        for i in 1..<max(text.count, 1) where text[i] == Self.space {
            out.append(contentsOf: cachedJoin(text[start..<i]))
            start = i
        }
        if start < text.count { out.append(contentsOf: cachedJoin(text[start..<text.count])) }
    }

    private func cachedJoin(_ piece: ArraySlice<Unicode.Scalar>) -> [Int32] {
        let key = Array(piece)
        if let hit = lock.withLock({ cache[key] }) { return hit }
        let ids = join(piece)
        lock.withLock { cache[key] = ids }
        return ids
    }

    private func join(_ piece: ArraySlice<Unicode.Scalar>) -> [Int32] {
        guard !piece.isEmpty else { return [] }
        switch joining {
        case .mergeRanks: return joinByRank(Array(piece))
        case .scores: return joinByScore(Array(piece))
        }
    }

    /// `tokenizers`' BPE `merge_word` and `merge_all`: each character its token, else its
    /// UTF-8 bytes' `<0xXX>` tokens, else the unknown token (fused when `fuseUnknown`); then
    /// the pair of lowest rank, leftmost first, merged until no pair has a merge.
    private func joinByRank(_ chars: [Unicode.Scalar]) -> [Int32] {
        var ids: [Int32] = []
        ids.reserveCapacity(chars.count)
        var pendingUnknown = false
        for c in chars {
            if let id = scalarTokens[c.value] {
                if pendingUnknown, let unknownID { ids.append(unknownID) }
                pendingUnknown = false
                ids.append(id)
                continue
            }
            let bytes = Array(String(Character(c)).utf8)
            if bytes.allSatisfy({ byteTokens[Int($0)] >= 0 }) {
                if pendingUnknown, let unknownID { ids.append(unknownID) }
                pendingUnknown = false
                ids += bytes.map { byteTokens[Int($0)] }
                continue
            }
            guard let unknownID else { continue }
            if pendingUnknown && !fuseUnknown { ids.append(unknownID) }
            pendingUnknown = true
        }
        if pendingUnknown, let unknownID { ids.append(unknownID) }
        guard ids.count > 1 else { return ids }

        var next = (0..<ids.count).map { Int32($0 + 1) }, prev = (0..<ids.count).map { Int32($0 - 1) }
        next[ids.count - 1] = -1
        var alive = [Bool](repeating: true, count: ids.count)
        // (rank, position, merged id); smallest rank, then position, first.
        var heap = BinaryHeap<(rank: Int32, pos: Int32, id: Int32)> { ($0.rank, $0.pos) < ($1.rank, $1.pos) }
        for i in 0..<(ids.count - 1) {
            if let m = merges[Self.pair(ids[i], ids[i + 1])] { heap.push((m.rank, Int32(i), m.id)) }
        }
        while let top = heap.pop() {
            let i = Int(top.pos)
            guard alive[i], next[i] >= 0 else { continue }
            let j = Int(next[i])
            guard let m = merges[Self.pair(ids[i], ids[j])], m.id == top.id else { continue }
            ids[i] = m.id
            alive[j] = false
            next[i] = next[j]
            if next[j] >= 0 { prev[Int(next[j])] = Int32(i) }
            if prev[i] >= 0, let left = merges[Self.pair(ids[Int(prev[i])], ids[i])] { heap.push((left.rank, prev[i], left.id)) }
            if next[i] >= 0, let right = merges[Self.pair(ids[i], ids[Int(next[i])])] { heap.push((right.rank, Int32(i), right.id)) }
        }
        var out: [Int32] = []
        var i = 0
        while i >= 0 { out.append(ids[i]); i = Int(next[i]) }
        return out
    }

    /// llama.cpp's `llm_tokenizer_spm_session::tokenize`: symbols are characters; every
    /// adjacent pair whose text is a token is a candidate with that token's score; the highest
    /// score (leftmost among equals) merges, and the new neighbours become candidates. Each
    /// final symbol is its token, or (a character outside the vocabulary) its bytes' tokens.
    private func joinByScore(_ chars: [Unicode.Scalar]) -> [Int32] {
        let n = chars.count
        var start = (0..<n).map { Int32($0) }, length = [Int32](repeating: 1, count: n)
        var next = (0..<n).map { Int32($0 + 1) }, prev = (0..<n).map { Int32($0 - 1) }
        next[n - 1] = -1
        var heap = BinaryHeap<(score: Float, left: Int32, right: Int32, size: Int32)> {
            $0.score > $1.score || ($0.score == $1.score && $0.left < $1.left)
        }
        func candidate(_ left: Int32, _ right: Int32) {
            guard left >= 0, right >= 0 else { return }
            let l = Int(left), r = Int(right)
            let text = String(String.UnicodeScalarView(chars[Int(start[l])..<Int(start[r] + length[r])]))
            guard let id = vocab[text] else { return }
            heap.push((scores[Int(id)], left, right, length[l] + length[r]))
        }
        for i in 1..<max(n, 1) { candidate(Int32(i - 1), Int32(i)) }
        while let top = heap.pop() {
            let l = Int(top.left), r = Int(top.right)
            // Stale when either side has merged since (llama.cpp compares lengths the same way).
            guard length[l] > 0, length[r] > 0, length[l] + length[r] == top.size, next[l] == top.right else { continue }
            length[l] += length[r]
            length[r] = 0
            next[l] = next[r]
            if next[r] >= 0 { prev[Int(next[r])] = top.left }
            candidate(prev[l], top.left)
            candidate(top.left, next[l])
        }
        var out: [Int32] = []
        var i = 0
        while i >= 0 {
            let symbol = chars[Int(start[i])..<Int(start[i] + length[i])]
            if let id = vocab[String(String.UnicodeScalarView(symbol))] {
                out.append(id)
            } else {
                // Only a single character can be outside the vocabulary (merges make tokens).
                for c in symbol {
                    for b in String(Character(c)).utf8 {
                        if byteTokens[Int(b)] >= 0 {
                            out.append(byteTokens[Int(b)])
                        } else if let id = scalarTokens[UInt32(b)], b < 0x80 {
                            out.append(id)
                        } else if let unknownID {
                            out.append(unknownID)
                        }
                    }
                }
            }
            i = Int(next[i])
        }
        return out
    }

    // MARK: - Decoding

    /// The text of `ids`: "▁" back to spaces, byte tokens back to bytes (invalid UTF-8
    /// replaced), special tokens as their text, and the prefix's leading space removed.
    public func decode(_ ids: [Int32]) -> String {
        var bytes: [UInt8] = []
        var first = true
        for id in ids where id >= 0 && Int(id) < tokens.count {
            let token = tokens[Int(id)]
            if specialTokens.contains(where: { $0.id == id }) {
                bytes.append(contentsOf: token.utf8)
                first = false
                continue
            }
            if let b = Self.byteOfToken(token) {
                bytes.append(b)
                first = false
                continue
            }
            var text = String(String.UnicodeScalarView(token.unicodeScalars.map { $0 == Self.space ? " " : $0 }))
            if first && prefix != .never && text.hasPrefix(" ") { text.removeFirst() }
            first = false
            bytes.append(contentsOf: text.utf8)
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// A binary heap ordered by `before` (the element that comes out first is the one no other
/// element is `before`).
struct BinaryHeap<Element> {
    private var items: [Element] = []
    private let before: (Element, Element) -> Bool

    init(_ before: @escaping (Element, Element) -> Bool) { self.before = before }

    mutating func push(_ e: Element) {
        items.append(e)
        var i = items.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard before(items[i], items[parent]) else { break }
            items.swapAt(i, parent)
            i = parent
        }
    }

    mutating func pop() -> Element? {
        guard let top = items.first else { return nil }
        let last = items.removeLast()
        guard !items.isEmpty else { return top }
        items[0] = last
        var i = 0
        while true {
            let l = 2 * i + 1, r = l + 1
            var best = i
            if l < items.count && before(items[l], items[best]) { best = l }
            if r < items.count && before(items[r], items[best]) { best = r }
            if best == i { break }
            items.swapAt(i, best)
            i = best
        }
        return top
    }
}
