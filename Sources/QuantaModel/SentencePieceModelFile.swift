import QuantaCore
import QuantaIO

/// A SentencePiece `tokenizer.model` (protobuf `ModelProto`): its pieces with their scores and
/// types, which is all llama.cpp's converter reads from it (`_create_vocab_sentencepiece`).
public struct SentencePieceModelFile: Sendable {
    /// SentencePiece's piece types (`ModelProto.SentencePiece.Type`).
    public enum PieceType: Int, Sendable { case normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6 }

    public struct Piece: Sendable, Equatable {
        public let text: String
        public let score: Float
        public let type: PieceType
    }

    public let pieces: [Piece]

    /// Reads `path`; a truncated field, a wrong wire type or a piece type outside 1...6 is an error naming the file.
    public init(path: String) throws {
        let bytes = try FileSystem.read(path)
        var pieces: [Piece] = []
        var reader = ProtoReader(bytes: bytes[...], path: path)
        while let (field, wire) = try reader.key() {
            if field == 1 && wire == 2 {
                var piece = ProtoReader(bytes: try reader.lengthDelimited(), path: path)
                var text: String?, score: Float = 0, type = PieceType.normal
                while let (f, w) = try piece.key() {
                    switch (f, w) {
                    case (1, 2): text = String(decoding: try piece.lengthDelimited(), as: UTF8.self)
                    case (2, 5): score = Float(bitPattern: try piece.fixed32())
                    case (3, 0):
                        let raw = try piece.varint()
                        guard let t = PieceType(rawValue: Int(truncatingIfNeeded: raw)), raw <= 6 else {
                            throw QuantaError.malformed(path, "piece \(pieces.count) has the type \(raw), not 1...6")
                        }
                        type = t
                    default: try piece.skip(w)
                    }
                }
                guard let text else { throw QuantaError.malformed(path, "piece \(pieces.count) has no text") }
                pieces.append(Piece(text: text, score: score, type: type))
            } else {
                try reader.skip(wire)
            }
        }
        guard !pieces.isEmpty else { throw QuantaError.malformed(path, "no pieces: not a SentencePiece model") }
        self.pieces = pieces
    }
}

/// The protobuf wire format, as far as reading fields goes.
struct ProtoReader {
    var bytes: ArraySlice<UInt8>
    let path: String

    mutating func varint() throws -> UInt64 {
        var value: UInt64 = 0, shift: UInt64 = 0
        while let b = bytes.popFirst() {
            guard shift < 64 else { break }
            value |= UInt64(b & 0x7F) << shift
            if b & 0x80 == 0 { return value }
            shift += 7
        }
        throw QuantaError.malformed(path, "truncated or overlong varint")
    }

    /// The next field number and wire type, or nil at the end.
    mutating func key() throws -> (Int, Int)? {
        guard !bytes.isEmpty else { return nil }
        let k = try varint()
        return (Int(truncatingIfNeeded: k >> 3), Int(k & 7))
    }

    mutating func take(_ n: Int) throws -> ArraySlice<UInt8> {
        guard n >= 0, n <= bytes.count else { throw QuantaError.malformed(path, "a field of \(n) bytes runs past the end") }
        let out = bytes.prefix(n)
        bytes = bytes.dropFirst(n)
        return out
    }

    mutating func lengthDelimited() throws -> ArraySlice<UInt8> {
        let n = try varint()
        guard n <= UInt64(bytes.count) else { throw QuantaError.malformed(path, "a field of \(n) bytes runs past the end") }
        return try take(Int(n))
    }

    mutating func fixed32() throws -> UInt32 {
        try take(4).reversed().reduce(0) { $0 << 8 | UInt32($1) }
    }

    mutating func skip(_ wire: Int) throws {
        switch wire {
        case 0: _ = try varint()
        case 1: _ = try take(8)
        case 2: _ = try lengthDelimited()
        case 5: _ = try take(4)
        default: throw QuantaError.malformed(path, "protobuf wire type \(wire) is not one SentencePiece models use")
        }
    }
}

extension SentencePieceVocabulary {
    /// The tokens, scores and types llama.cpp's converter takes from a folder's
    /// `tokenizer.model` (`_create_vocab_sentencepiece`): `vocabSize` slots, "[PAD<i>]" with score
    /// -10000 and type unused where nothing fills them; the model's pieces (user-defined pieces
    /// counted normal); `added_tokens.json` entries and tokenizer_config.json's
    /// `added_tokens_decoder` over them with score -1000, control when special or looking special.
    /// With `phi3` (`Phi3MiniModel.set_vocab`), `added_tokens_decoder` and then tokenizer.json's
    /// `added_tokens` (`tokenizerAddedTokens`) are control when special and user-defined otherwise, their text as it is.
    static func converterVocabulary(model: SentencePieceModelFile, vocabSize: Int, addedTokensJSON: JSONValue?,
                                    tokenizerConfig: JSONValue?, path: String, phi3: Bool = false,
                                    tokenizerAddedTokens: [JSONValue] = []) throws -> (tokens: [String], scores: [Float], types: [Int32]) {
        guard vocabSize > 0, vocabSize <= 1 << 24 else { throw QuantaError.malformed(path, "vocab_size \(vocabSize) is not 1...\(1 << 24)") }
        var tokens = (0..<vocabSize).map { "[PAD\($0)]" }
        var scores = [Float](repeating: -10000, count: vocabSize)
        var types = [Int32](repeating: GGUFConverter.TokenType.unused.rawValue, count: vocabSize)
        for (id, piece) in model.pieces.enumerated() where id < vocabSize {
            tokens[id] = piece.text
            scores[id] = piece.score
            let type: GGUFConverter.TokenType
            switch piece.type {
            case .unknown: type = .unknown
            case .control: type = .control
            case .unused: type = .unused
            case .byte: type = .byte
            case .normal, .userDefined: type = .normal
            }
            types[id] = type.rawValue
        }
        for (text, value) in addedTokensJSON?.objectValue ?? [] {
            guard let id = value.intValue, id >= 0 else { throw QuantaError.malformed(path, "added_tokens.json: '\(text)' has no non-negative id") }
            guard id < vocabSize else { continue }
            tokens[id] = text
            scores[id] = -1000
            types[id] = GGUFConverter.TokenType.userDefined.rawValue
        }
        for (key, data) in tokenizerConfig?["added_tokens_decoder"]?.objectValue ?? [] {
            guard let id = Int(key), id >= 0, let content = data["content"]?.stringValue else {
                throw QuantaError.malformed(path, "tokenizer_config.json: added_tokens_decoder entry '\(key)' has no id or content")
            }
            guard id < vocabSize else { continue }
            if phi3 {
                tokens[id] = content
                scores[id] = -1000
                types[id] = (data["special"]?.boolValue == true ? GGUFConverter.TokenType.control : .userDefined).rawValue
                continue
            }
            if data["special"]?.boolValue == true || looksSpecial(content) {
                types[id] = GGUFConverter.TokenType.control.rawValue
                tokens[id] = content
            } else {
                types[id] = GGUFConverter.TokenType.userDefined.rawValue
                tokens[id] = String(String.UnicodeScalarView(content.unicodeScalars.map { $0 == SentencePieceTokenizer.space ? " " : $0 }))
            }
            scores[id] = -1000
        }
        for data in phi3 ? tokenizerAddedTokens : [] {
            guard let id = data["id"]?.intValue, id >= 0, let content = data["content"]?.stringValue else {
                throw QuantaError.malformed(path, "added token \(data.serialized()) has no id or content")
            }
            guard id < vocabSize else {
                throw QuantaError.malformed(path, "added token '\(content)' has id \(id), outside vocab_size \(vocabSize)")
            }
            tokens[id] = content
            scores[id] = -1000
            types[id] = (data["special"]?.boolValue == true ? GGUFConverter.TokenType.control : .userDefined).rawValue
        }
        return (tokens, scores, types)
    }

    /// The converter's `does_token_look_special`.
    static func looksSpecial(_ t: String) -> Bool {
        ["<pad>", "<mask>", "<2mass>", "[@BOS@]"].contains(t) || (t.hasPrefix("<|") && t.hasSuffix("|>"))
            || (t.hasPrefix("<｜") && t.hasSuffix("｜>"))
    }
}
