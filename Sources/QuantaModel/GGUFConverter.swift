import QuantaCore
import QuantaIO

/// What llama.cpp's converter writes besides the tensors: `general.*` and `tokenizer.ggml.*`
/// metadata (the `<arch>.*` keys come from the architecture family), and the way back from a
/// GGUF to Hugging Face `config.json` / `tokenizer.json`.
public enum GGUFConverter {
    /// gguf TokenType values.
    public enum TokenType: Int32 { case normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6 }

    /// General, architecture and tokenizer metadata for `model` (`general.file_type` is set by the sink).
    public static func metadata(for model: ModelFolder, name: String) throws -> [(key: String, value: GGUFValue)] {
        let c = model.config
        var kv: [(key: String, value: GGUFValue)] = [
            ("general.architecture", .string(c.architecture.ggufArchitecture)),
            ("general.type", .string("model")),
            ("general.name", .string(name)),
        ]
        kv += c.architecture.ggufMetadata(c)
        guard let tokenizerPath = model.files.tokenizerPath else {
            throw QuantaError(.notFound, FileSystem.join(model.path, "tokenizer.json"),
                              "a GGUF needs the tokenizer, and the model folder has no tokenizer.json")
        }
        let tokenizer = try HFModelFolder.readJSON(tokenizerPath)
        if SentencePieceVocabulary.isSentencePiece(tokenizer) {
            let modelPath = FileSystem.join(model.path, "tokenizer.model"), addedPath = FileSystem.join(model.path, "added_tokens.json")
            let spModel = FileSystem.kind(of: modelPath) == .file ? try SentencePieceModelFile(path: modelPath) : nil
            let addedTokens = FileSystem.kind(of: addedPath) == .file ? try HFModelFolder.readJSON(addedPath) : nil
            kv += try SentencePieceVocabulary.ggufMetadata(tokenizer: tokenizer, path: tokenizerPath, tokenizerConfig: model.files.tokenizerConfig,
                                                          configJSON: model.files.configJSON, sentencePieceModel: spModel,
                                                          addedTokensJSON: addedTokens, vocabSize: c.vocabSize,
                                                          phi3: c.architecture.sentencePieceExport == .phi3)
            if spModel != nil && c.architecture.sentencePieceExport == .gemma {
                kv.removeAll { $0.key == "tokenizer.ggml.add_space_prefix" }
                kv.append(("tokenizer.ggml.add_space_prefix", .bool(false)))
            }
        } else {
            kv += try tokenizerMetadata(tokenizer: tokenizer, path: tokenizerPath, tokenizerConfig: model.files.tokenizerConfig,
                                        config: c, generationConfig: model.files.generationConfig)
        }
        try checkPhi3Name(name, architecture: c.architecture.ggufArchitecture, tokens: kv.first { $0.key == "tokenizer.ggml.tokens" }?.value)
        return kv
    }

    /// llama.cpp gives the tokens `<s>`, `</s>`, `<unk>` and `<|endoftext|>` Phi-3's attributes
    /// whenever `general.name` contains "phi3" or "phi-3", and fails to load the file when one is
    /// missing: such a file is refused before it is written.
    static func checkPhi3Name(_ name: String, architecture: String, tokens: GGUFValue?) throws {
        let lowered = name.lowercased()
        guard architecture == "phi3", lowered.contains("phi3") || lowered.contains("phi-3") else { return }
        let present = Set(tokens?.arrayValue?.compactMap(\.stringValue) ?? [])
        let missing = ["<s>", "</s>", "<unk>", "<|endoftext|>"].filter { !present.contains($0) }
        if !missing.isEmpty {
            throw QuantaError.unsupported("general.name '\(name)'", "llama.cpp looks up \(missing.joined(separator: ", ")) in the vocabulary of a model whose name contains \"phi3\" or \"phi-3\", and this vocabulary lacks them: the file would not load there; rename the model folder")
        }
    }

    /// `tokenizer.ggml.*` keys from a byte-level BPE `tokenizer.json`.
    static func tokenizerMetadata(tokenizer: JSONValue, path: String, tokenizerConfig: JSONValue?, config: ModelConfig,
                                  generationConfig: JSONValue?) throws -> [(key: String, value: GGUFValue)] {
        guard let model = tokenizer["model"], model["type"]?.stringValue == "BPE", model["vocab"]?.objectValue != nil else {
            throw QuantaError.unsupported(path, "only byte-level BPE tokenizers (model.type \"BPE\") can be converted; this one is \(tokenizer["model"]?["type"]?.serialized() ?? "untyped")")
        }
        let vocabulary = try TokenizerJSONVocabulary(tokenizer, path: path)
        var special: [Int: Bool] = [:]
        for added in vocabulary.added { special[Int(added.id)] = added.special }
        let texts = try vocabulary.paddedTokens(minimumCount: config.vocabSize, path: path)
        let size = texts.count
        var tokens: [GGUFValue] = []
        var types: [GGUFValue] = []
        tokens.reserveCapacity(texts.count)
        types.reserveCapacity(texts.count)
        for (id, text) in texts.enumerated() {
            tokens.append(.string(text))
            let type: TokenType = vocabulary.byID[id] == nil ? .unused : special[id].map { $0 ? .control : .userDefined } ?? .normal
            types.append(.int32(type.rawValue))
        }
        let merges = try TokenizerJSONVocabulary.merges(tokenizer, path: path).map { GGUFValue.string($0) }
        func tokenID(_ key: String) -> Int? {
            if let id = generationConfig?[key + "_id"]?.intValue { return id }
            if let name = tokenizerConfig?[key]?.stringValue ?? tokenizerConfig?[key]?["content"]?.stringValue,
               let id = vocabulary.id(of: name) { return id }
            return nil
        }
        var kv: [(key: String, value: GGUFValue)] = [
            ("tokenizer.ggml.model", .string("gpt2")),
            ("tokenizer.ggml.pre", .string(try preTokenizerName(tokenizer["pre_tokenizer"], path: path))),
            ("tokenizer.ggml.tokens", .array(.string, tokens)),
            ("tokenizer.ggml.token_type", .array(.int32, types)),
            ("tokenizer.ggml.merges", .array(.string, merges)),
        ]
        func idValue(_ key: String, _ id: Int) throws -> GGUFValue {
            guard id >= 0, id < size else { throw QuantaError.malformed(path, "\(key) \(id) is outside the vocabulary of \(size)") }
            return .uint32(UInt32(id))
        }
        if let bos = config.bosTokenIds.first ?? tokenID("bos_token") { kv.append(("tokenizer.ggml.bos_token_id", try idValue("bos_token_id", bos))) }
        if let eos = config.eosTokenIds.first ?? tokenID("eos_token") { kv.append(("tokenizer.ggml.eos_token_id", try idValue("eos_token_id", eos))) }
        if let pad = tokenID("pad_token") { kv.append(("tokenizer.ggml.padding_token_id", try idValue("pad_token_id", pad))) }
        if let addBOS = tokenizerConfig?["add_bos_token"]?.boolValue { kv.append(("tokenizer.ggml.add_bos_token", .bool(addBOS))) }
        if let addEOS = tokenizerConfig?["add_eos_token"]?.boolValue { kv.append(("tokenizer.ggml.add_eos_token", .bool(addEOS))) }
        if let template = tokenizerConfig?["chat_template"]?.stringValue { kv.append(("tokenizer.chat_template", .string(template))) }
        return kv
    }

    /// llama.cpp's name for a tokenizer.json pre-tokenizer ("gpt-2", "smollm", "llama-bpe").
    public static func preTokenizerName(_ pre: JSONValue?, path: String) throws -> String {
        guard let pre else { return "default" }
        if pre["type"]?.stringValue == "ByteLevel" && pre["use_regex"]?.boolValue != false { return "gpt-2" }
        if pre["type"]?.stringValue == "Sequence", let parts = pre["pretokenizers"]?.arrayValue {
            let kinds = parts.compactMap { $0["type"]?.stringValue }
            if kinds == ["Digits", "ByteLevel"], parts[0]["individual_digits"]?.boolValue == true { return "smollm" }
            if kinds == ["Split", "ByteLevel"], parts[0]["pattern"]?["Regex"]?.stringValue == llama3Regex { return "llama-bpe" }
        }
        throw QuantaError.unsupported("\(path): pre_tokenizer", "\(pre.serialized()) matches none of the pre-tokenizers Quanta knows (gpt-2, smollm, llama-bpe)")
    }

    static let llama3Regex = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

    /// The tokenizer.json `pre_tokenizer` for a llama.cpp pre-tokenizer name.
    public static func preTokenizerJSON(_ name: String) throws -> JSONValue {
        let byteLevel = JSONValue.object([("type", .string("ByteLevel")), ("add_prefix_space", .bool(false)),
                                          ("trim_offsets", .bool(true)), ("use_regex", .bool(true))])
        switch name {
        case "gpt-2", "default": return byteLevel
        case "smollm":
            return .object([("type", .string("Sequence")), ("pretokenizers", .array([
                .object([("type", .string("Digits")), ("individual_digits", .bool(true))]), byteLevel]))])
        case "llama-bpe":
            return .object([("type", .string("Sequence")), ("pretokenizers", .array([
                .object([("type", .string("Split")), ("pattern", .object([("Regex", .string(llama3Regex))])),
                         ("behavior", .string("Isolated")), ("invert", .bool(false))]),
                .object([("type", .string("ByteLevel")), ("add_prefix_space", .bool(false)), ("trim_offsets", .bool(true)),
                         ("use_regex", .bool(false))])]))])
        default:
            throw QuantaError.unsupported("tokenizer.ggml.pre", "'\(name)' has no known tokenizer.json form (gpt-2, smollm, llama-bpe)")
        }
    }

    /// Hugging Face files describing a llama GGUF: config.json, tokenizer.json,
    /// tokenizer_config.json and generation_config.json.
    public static func huggingFaceFiles(from file: GGUFFile) throws -> [(name: String, json: JSONValue)] {
        let c = try ArchitectureRegistry.config(gguf: file)
        guard file["tokenizer.ggml.model"]?.stringValue == "gpt2", let tokens = file["tokenizer.ggml.tokens"]?.arrayValue?.compactMap(\.stringValue) else {
            throw QuantaError.unsupported(file.path, "tokenizer.ggml.model is \(file["tokenizer.ggml.model"]?.summary() ?? "absent"); Quanta converts byte-level BPE (gpt2) vocabularies")
        }
        let types = file["tokenizer.ggml.token_type"]?.arrayValue?.compactMap(\.intValue) ?? []
        let merges = file["tokenizer.ggml.merges"]?.arrayValue?.compactMap(\.stringValue) ?? []
        let bos = c.bosTokenIds.first, eos = c.eosTokenIds.first
        func id(_ v: Int?) -> JSONValue { v.map { .integer(Int64($0)) } ?? .null }
        let config = JSONValue.object(c.architecture.hfConfig(c))
        var vocab: [(String, JSONValue)] = []
        var added: [JSONValue] = []
        for (i, token) in tokens.enumerated() {
            vocab.append((token, .integer(Int64(i))))
            let type = i < types.count ? types[i] : 1
            if type == Int(TokenType.control.rawValue) || type == Int(TokenType.userDefined.rawValue) {
                let isSpecial = type == Int(TokenType.control.rawValue)
                added.append(.object([("id", .integer(Int64(i))), ("content", .string(token)), ("single_word", .bool(false)),
                                      ("lstrip", .bool(false)), ("rstrip", .bool(false)), ("normalized", .bool(!isSpecial)),
                                      ("special", .bool(isSpecial))]))
            }
        }
        let byteLevel = JSONValue.object([("type", .string("ByteLevel")), ("add_prefix_space", .bool(true)),
                                          ("trim_offsets", .bool(false)), ("use_regex", .bool(true))])
        let tokenizer = JSONValue.object([
            ("version", .string("1.0")), ("truncation", .null), ("padding", .null),
            ("added_tokens", .array(added)), ("normalizer", .null),
            ("pre_tokenizer", try preTokenizerJSON(file["tokenizer.ggml.pre"]?.stringValue ?? "default")),
            ("post_processor", byteLevel), ("decoder", byteLevel),
            ("model", .object([
                ("type", .string("BPE")), ("dropout", .null), ("unk_token", .null), ("continuing_subword_prefix", .null),
                ("end_of_word_suffix", .null), ("fuse_unk", .bool(false)), ("byte_fallback", .bool(false)),
                ("ignore_merges", .bool(false)), ("vocab", .object(vocab)),
                ("merges", .array(try merges.map { merge in
                    let parts = merge.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
                    guard parts.count == 2 else { throw QuantaError.malformed(file.path, "merge '\(merge)' is not two tokens") }
                    return .array([.string(parts[0]), .string(parts[1])])
                })),
            ])),
        ])
        func tokenText(_ v: Int?) -> JSONValue { v.flatMap { $0 >= 0 && $0 < tokens.count ? JSONValue.string(tokens[$0]) : nil } ?? .null }
        var tokenizerConfig: [(String, JSONValue)] = [
            ("add_bos_token", .bool(file["tokenizer.ggml.add_bos_token"]?.boolValue ?? false)),
            ("add_eos_token", .bool(file["tokenizer.ggml.add_eos_token"]?.boolValue ?? false)),
            ("bos_token", tokenText(bos)), ("eos_token", tokenText(eos)),
            ("clean_up_tokenization_spaces", .bool(false)),
            ("model_max_length", .integer(Int64(c.maxPositionEmbeddings))),
            ("tokenizer_class", .string("PreTrainedTokenizerFast")),
        ]
        if let pad = file["tokenizer.ggml.padding_token_id"]?.intValue { tokenizerConfig.append(("pad_token", tokenText(pad))) }
        if let template = file["tokenizer.chat_template"]?.stringValue { tokenizerConfig.append(("chat_template", .string(template))) }
        return [
            ("config.json", config),
            ("tokenizer.json", tokenizer),
            ("tokenizer_config.json", .object(tokenizerConfig)),
            ("generation_config.json", .object([("bos_token_id", id(bos)), ("eos_token_id", id(eos))])),
        ]
    }
}
