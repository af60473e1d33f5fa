import QuantaCore
import QuantaIO

/// SentencePiece-style vocabularies in files: recognizing them in `tokenizer.json`, loading
/// them from `tokenizer.json` and from GGUF `tokenizer.ggml.*` (model "llama"), and the GGUF
/// metadata llama.cpp's converter writes for such a folder.
public enum SentencePieceVocabulary {
    /// Whether a `tokenizer.json` is SentencePiece-style: BPE with `byte_fallback`, or with
    /// spaces written as "▁" (a `Metaspace` pre-tokenizer or a `Replace(" ", "▁")` normalizer).
    public static func isSentencePiece(_ json: JSONValue) -> Bool {
        guard json["model"]?["type"]?.stringValue == "BPE" else { return false }
        if json["model"]?["byte_fallback"]?.boolValue == true { return true }
        return metaspace(json["pre_tokenizer"]) != nil || normalizerSteps(json["normalizer"]).contains { $0["type"]?.stringValue == "Replace" }
    }

    static func normalizerSteps(_ n: JSONValue?) -> [JSONValue] {
        guard let n, n != .null else { return [] }
        if n["type"]?.stringValue == "Sequence" { return n["normalizers"]?.arrayValue ?? [] }
        return [n]
    }

    /// The `Metaspace` pre-tokenizer, alone or as the only member of a `Sequence`.
    static func metaspace(_ pre: JSONValue?) -> JSONValue? {
        guard let pre, pre != .null else { return nil }
        if pre["type"]?.stringValue == "Metaspace" { return pre }
        if pre["type"]?.stringValue == "Sequence", let parts = pre["pretokenizers"]?.arrayValue, parts.count == 1,
           parts[0]["type"]?.stringValue == "Metaspace" { return parts[0] }
        return nil
    }

    /// The prefix and piece splitting a tokenizer.json's normalizer and pre-tokenizer describe.
    static func form(_ json: JSONValue, path: String) throws -> (prefix: SentencePieceTokenizer.Prefix, split: Bool) {
        let space = String(SentencePieceTokenizer.space)
        if let meta = metaspace(json["pre_tokenizer"]) {
            guard normalizerSteps(json["normalizer"]).isEmpty else {
                throw QuantaError.unsupported("\(path): normalizer", "\(json["normalizer"]!.serialized()) together with a Metaspace pre-tokenizer")
            }
            guard (meta["replacement"]?.stringValue ?? space) == space else {
                throw QuantaError.unsupported("\(path): pre_tokenizer", "Metaspace replacement \(meta["replacement"]!.serialized()) is not \"▁\"")
            }
            let prefix: SentencePieceTokenizer.Prefix
            switch meta["prepend_scheme"]?.stringValue {
            case "first": prefix = .firstUnlessSpace
            case "always": prefix = .unlessSpace
            case "never": prefix = .never
            case nil: prefix = meta["add_prefix_space"]?.boolValue == false ? .never : .unlessSpace
            case let other?: throw QuantaError.unsupported("\(path): pre_tokenizer", "Metaspace prepend_scheme '\(other)'")
            }
            return (prefix, meta["split"]?.boolValue ?? true)
        }
        // Gemma's Split on " " finds no space once the normalizer has replaced them all.
        if let pre = json["pre_tokenizer"], pre != .null, !(pre["type"]?.stringValue == "Split" && pre["pattern"]?["String"]?.stringValue == " ") {
            throw QuantaError.unsupported("\(path): pre_tokenizer", "\(pre.serialized()) in a SentencePiece-style tokenizer (Quanta knows Metaspace, and Split on \" \" after the Replace normalizer)")
        }
        var prefix = SentencePieceTokenizer.Prefix.never, replaces = false
        for step in normalizerSteps(json["normalizer"]) {
            switch step["type"]?.stringValue {
            case "Prepend" where step["prepend"]?.stringValue == space && !replaces: prefix = .always
            case "Replace" where step["pattern"]?["String"]?.stringValue == " " && step["content"]?.stringValue == space: replaces = true
            default:
                throw QuantaError.unsupported("\(path): normalizer", "step \(step.serialized()) (Quanta knows Prepend(\"▁\") then Replace(\" \", \"▁\"))")
            }
        }
        guard replaces else {
            throw QuantaError.unsupported(path, "a byte-fallback BPE tokenizer that does not write spaces as \"▁\" (no Metaspace, no Replace normalizer)")
        }
        return (prefix, false)
    }

    /// Tokens by id from `model.vocab` and `added_tokens` (every id assigned), the added tokens, and the `model.vocab` count.
    static func tokensByID(_ json: JSONValue, path: String) throws -> (tokens: [String], added: [(String, Int32)], baseCount: Int) {
        let vocabulary = try TokenizerJSONVocabulary(json, path: path)
        return (try vocabulary.denseTokens(path: path), vocabulary.added.map { ($0.content, $0.id) }, vocabulary.baseCount)
    }

    /// Whether the post-processor puts `token` first (`TemplateProcessing` "single").
    static func templateStarts(with token: String?, _ json: JSONValue) -> Bool? {
        guard let token, let post = json["post_processor"], post != .null else { return nil }
        for processor in post["processors"]?.arrayValue ?? [post] where processor["type"]?.stringValue == "TemplateProcessing" {
            let single = processor["single"]?.arrayValue ?? []
            guard single.count > 1, let first = single[0]["SpecialToken"]?["id"]?.stringValue else { continue }
            return first == token
        }
        return nil
    }

    /// `SpecialVocab`'s reading of a `TemplateProcessing` post-processor (with tokenizer_config.json
    /// naming BOS/EOS/SEP): BOS added when "single" starts with it, EOS when it ends with it, SEP
    /// when "pair" has SEP or EOS between A and B.
    static func templateFlags(_ json: JSONValue, tokenizerConfig: JSONValue?) -> (bos: Bool?, sep: Bool?, eos: Bool?) {
        guard let post = json["post_processor"], post != .null else { return (nil, nil, nil) }
        let bos = configToken(tokenizerConfig, "bos_token"), eos = configToken(tokenizerConfig, "eos_token")
        let sep = configToken(tokenizerConfig, "sep_token"), cls = configToken(tokenizerConfig, "cls_token")
        var flags: (bos: Bool?, sep: Bool?, eos: Bool?) = (nil, nil, nil)
        for processor in post["processors"]?.arrayValue ?? [post] where processor["type"]?.stringValue == "TemplateProcessing" {
            func special(_ item: JSONValue?) -> String? { item?["SpecialToken"]?["id"]?.stringValue }
            let single = processor["single"]?.arrayValue ?? []
            var first: String?, last: String?
            if single.count > 1 {
                first = special(single.first)
                if let first { flags.bos = first == bos || first == cls }
                last = special(single.last)
                if let last { flags.eos = last == eos }
            }
            var pair = processor["pair"]?.arrayValue ?? []
            guard !pair.isEmpty else { continue }
            if first != nil && special(pair.first) == first { pair.removeFirst() }
            if last != nil && special(pair.last) == last && !pair.isEmpty { pair.removeLast() }
            guard pair.first?["Sequence"]?["id"]?.stringValue == "A", pair.last?["Sequence"]?["id"]?.stringValue == "B", pair.count > 2 else { continue }
            let middle = Array(pair[1..<(pair.count - 1)])
            var addSEP = false
            if let entry = special(middle.first), entry == sep || entry == eos, last == nil { addSEP = true }
            if middle.count == 2, let entry = special(middle[1]), entry == sep || entry == eos { addSEP = true }
            flags.sep = addSEP
        }
        return flags
    }

    static func configToken(_ tokenizerConfig: JSONValue?, _ key: String) -> String? {
        tokenizerConfig?[key]?.stringValue ?? tokenizerConfig?[key]?["content"]?.stringValue
    }

    /// From a SentencePiece-style `tokenizer.json` (see `isSentencePiece`), BOS/EOS from
    /// config.json's ids or tokenizer_config.json's tokens, BOS added when tokenizer_config says
    /// so, else when the post-processor does, else (as llama.cpp does for SPM) always.
    public static func tokenizer(json: JSONValue, path: String, tokenizerConfig: JSONValue?, config: ModelConfig?) throws -> SentencePieceTokenizer {
        let model = json["model"]!
        let (prefix, split) = try form(json, path: path)
        let (tokens, added, _) = try tokensByID(json, path: path)
        let merges = try TokenizerJSONVocabulary.merges(json, path: path)
        var index: [String: Int32] = [:]
        for (i, t) in tokens.enumerated() where index[t] == nil { index[t] = Int32(i) }
        func id(_ key: String) -> Int32? { configToken(tokenizerConfig, key).flatMap { index[$0] } }
        let bos = try config?.bosTokenIds.first.map { try BPETokenizer.tokenID($0, "bos_token_id", path: path) } ?? id("bos_token")
        let unknown: Int32?
        if let name = model["unk_token"]?.stringValue {
            guard let u = index[name] else { throw QuantaError.malformed(path, "unk_token '\(name)' is not in the vocabulary") }
            unknown = u
        } else {
            unknown = nil
        }
        let addBOS = tokenizerConfig?["add_bos_token"]?.boolValue
            ?? templateStarts(with: bos.flatMap { tokens.indices.contains(Int($0)) ? tokens[Int($0)] : nil }, json) ?? true
        if model["dropout"].map({ $0 != .null }) == true {
            throw QuantaError.unsupported("\(path): model.dropout", "BPE dropout makes tokenization random")
        }
        return try SentencePieceTokenizer(
            tokens: tokens, scores: [], merges: merges, joining: .mergeRanks, prefix: prefix, splitOnSpace: split,
            special: added, bosID: bos, eosID: try config?.eosTokenIds.first.map { try BPETokenizer.tokenID($0, "eos_token_id", path: path) } ?? id("eos_token"),
            unknownID: unknown, addBOS: addBOS, fuseUnknown: model["fuse_unk"]?.boolValue ?? false, source: path)
    }

    /// From GGUF metadata with `tokenizer.ggml.model` "llama": tokens, scores, token types
    /// (unknown, control and user-defined tokens are matched verbatim), the special ids, `add_bos_token`
    /// (default true) and `add_space_prefix` (default true), as llama.cpp reads them.
    public static func tokenizer(gguf file: GGUFFile) throws -> SentencePieceTokenizer {
        func key(_ name: String) -> String { "\(file.path): tokenizer.ggml.\(name)" }
        guard let tokens = file["tokenizer.ggml.tokens"]?.arrayValue?.compactMap(\.stringValue), !tokens.isEmpty else {
            throw QuantaError.malformed(key("tokens"), "missing or not an array of strings")
        }
        guard let scores = file["tokenizer.ggml.scores"]?.arrayValue?.compactMap({ $0.doubleValue.map(Float.init) }),
              scores.count == tokens.count else {
            throw QuantaError.malformed(key("scores"), "missing, not numbers, or not one per token (\(tokens.count) tokens)")
        }
        let types = file["tokenizer.ggml.token_type"]?.arrayValue?.compactMap(\.intValue) ?? []
        guard types.isEmpty || types.count == tokens.count else {
            throw QuantaError.malformed(key("token_type"), "\(types.count) types for \(tokens.count) tokens")
        }
        // Unknown, control and user-defined tokens, as llama.cpp matches them with parse_special.
        let special = types.enumerated().filter { (2...4).contains($0.element) }.map { (tokens[$0.offset], Int32($0.offset)) }
        func id(_ name: String) -> Int32? { file["tokenizer.ggml.\(name)"]?.intValue.flatMap { Int32(exactly: $0) } }
        return try SentencePieceTokenizer(
            tokens: tokens, scores: scores, merges: [], joining: .scores,
            prefix: file["tokenizer.ggml.add_space_prefix"]?.boolValue == false ? .never : .always, splitOnSpace: false,
            special: special, bosID: id("bos_token_id"), eosID: id("eos_token_id"), unknownID: id("unknown_token_id"),
            addBOS: file["tokenizer.ggml.add_bos_token"]?.boolValue ?? true, fuseUnknown: false, source: file.path)
    }

    /// `tokenizer.ggml.*` keys as llama.cpp's converter writes them for a folder with a
    /// SentencePiece-style tokenizer.json, then `SpecialVocab`'s special ids and flags:
    /// - with `tokenizer.model` (`sentencePieceModel`, `_set_vocab_sentencepiece`): its pieces,
    ///   scores and types (see `converterVocabulary`), `vocabSize` tokens;
    /// - without (`_set_vocab_llama_hf`): the tokenizer.json vocabulary then the added tokens
    ///   beyond it, every score -1000 (so llama.cpp joins leftmost pairs first and its ids differ
    ///   from `tokenizers`' on many words), types byte / control (special tokens) / normal / user-defined.
    static func ggufMetadata(tokenizer json: JSONValue, path: String, tokenizerConfig: JSONValue?, configJSON: JSONValue,
                             sentencePieceModel: SentencePieceModelFile? = nil, addedTokensJSON: JSONValue? = nil,
                             vocabSize: Int = 0, phi3: Bool = false) throws -> [(key: String, value: GGUFValue)] {
        let (jsonTokens, added, baseCount) = try tokensByID(json, path: path)
        var tokens = jsonTokens
        var scores = [Float](repeating: -1000, count: tokens.count)
        var modelTypes: [Int32]?
        if let sentencePieceModel {
            (tokens, scores, modelTypes) = try converterVocabulary(model: sentencePieceModel, vocabSize: vocabSize > 0 ? vocabSize : sentencePieceModel.pieces.count,
                                                                  addedTokensJSON: addedTokensJSON, tokenizerConfig: tokenizerConfig, path: path,
                                                                  phi3: phi3, tokenizerAddedTokens: json["added_tokens"]?.arrayValue ?? [])
        }
        var index: [String: Int] = [:]
        for (i, t) in jsonTokens.enumerated() where index[t] == nil { index[t] = i }
        // SpecialVocab: a token named in tokenizer_config.json is the first added token with that content.
        let kinds = [("bos", "bos_token_id"), ("eos", "eos_token_id"), ("unk", "unknown_token_id"), ("sep", "seperator_token_id"),
                     ("pad", "padding_token_id"), ("cls", "cls_token_id"), ("mask", "mask_token_id")]
        var ids: [String: Int] = [:]
        for (kind, _) in kinds {
            if let name = configToken(tokenizerConfig, kind + "_token"), let id = added.first(where: { $0.0 == name })?.1, id < tokens.count {
                ids[kind] = Int(id)
            }
        }
        for (kind, _) in kinds where ids[kind] == nil {
            if let id = configJSON[kind + "_token_id"]?.intValue, id >= 0, id < tokens.count { ids[kind] = id }
        }
        // transformers' all_special_ids: the tokens tokenizer_config.json names.
        var specialIDs = Set<Int>()
        for (kind, _) in kinds { if let name = configToken(tokenizerConfig, kind + "_token"), let id = index[name] { specialIDs.insert(id) } }
        for extra in tokenizerConfig?["additional_special_tokens"]?.arrayValue ?? [] {
            if let name = extra.stringValue ?? extra["content"]?.stringValue, let id = index[name] { specialIDs.insert(id) }
        }
        var texts: [GGUFValue] = [], types: [GGUFValue] = []
        texts.reserveCapacity(tokens.count)
        for (i, token) in tokens.enumerated() {
            texts.append(.string(token))
            let type: GGUFConverter.TokenType
            if let modelTypes {
                types.append(.int32(modelTypes[i]))
                continue
            } else if i >= baseCount {
                type = specialIDs.contains(i) ? .control : .userDefined
            } else if SentencePieceTokenizer.byteOfToken(token) != nil {
                type = .byte
            } else {
                type = specialIDs.contains(i) ? .control : .normal
            }
            types.append(.int32(type.rawValue))
        }
        var kv: [(key: String, value: GGUFValue)] = []
        if let addPrefix = tokenizerConfig?["add_prefix_space"]?.boolValue { kv.append(("tokenizer.ggml.add_space_prefix", .bool(addPrefix))) }
        kv += [
            ("tokenizer.ggml.model", .string("llama")),
            ("tokenizer.ggml.pre", .string("default")),
            ("tokenizer.ggml.tokens", .array(.string, texts)),
            ("tokenizer.ggml.scores", .array(.float32, scores.map { .float32($0) })),
            ("tokenizer.ggml.token_type", .array(.int32, types)),
        ]
        for (kind, key) in kinds { if let id = ids[kind] { kv.append(("tokenizer.ggml.\(key)", .uint32(UInt32(id)))) } }
        var (addBOS, addSEP, addEOS) = templateFlags(json, tokenizerConfig: tokenizerConfig)
        if let b = tokenizerConfig?["add_bos_token"]?.boolValue { addBOS = b }
        if let e = tokenizerConfig?["add_eos_token"]?.boolValue { addEOS = e }
        if let s = tokenizerConfig?["add_sep_token"]?.boolValue { addSEP = s }
        if let addBOS { kv.append(("tokenizer.ggml.add_bos_token", .bool(addBOS))) }
        if let addSEP { kv.append(("tokenizer.ggml.add_sep_token", .bool(addSEP))) }
        if let addEOS { kv.append(("tokenizer.ggml.add_eos_token", .bool(addEOS))) }
        if let template = tokenizerConfig?["chat_template"]?.stringValue { kv.append(("tokenizer.chat_template", .string(template))) }
        return kv
    }
}
