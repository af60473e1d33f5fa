import QuantaCore
import QuantaFormats
import QuantaModel

/// What the user asked of `quanta quantize`, beyond the preset.
public struct QuantizationOptions: Sendable {
    /// `--tensor-type REGEX=TYPE` rules; the first whose pattern matches a tensor name wins.
    public var tensorTypes: [(pattern: String, type: GGMLType)] = []
    public var outputTensorType: GGMLType?
    public var tokenEmbeddingType: GGMLType?
    /// Keep output.weight in its source type.
    public var leaveOutputTensor = false
    /// Every quantized tensor gets the preset's default type (no per-tensor rules).
    public var pure = false
    /// Types chosen per tensor name (a recipe or an allocation); they override every rule. A
    /// tensor assigned its source type is kept as it is.
    public var assigned: [String: GGMLType] = [:]
    /// An importance matrix is used (changes the Q4_0/Q5_0 and IQ4 rules, as in llama.cpp).
    public var hasImportance = false

    public init() {}
}

/// One tensor of the plan: what it is now and what it becomes.
public struct PlannedTensor: Sendable, Equatable {
    public let name: String
    /// ggml order, row length first.
    public let dimensions: [Int]
    public let sourceType: GGMLType
    public let type: GGMLType
    /// The type the rules asked for when a row-length fallback replaced it.
    public let fallbackFrom: GGMLType?

    public init(name: String, dimensions: [Int], sourceType: GGMLType, type: GGMLType, fallbackFrom: GGMLType? = nil) {
        self.name = name
        self.dimensions = dimensions
        self.sourceType = sourceType
        self.type = type
        self.fallbackFrom = fallbackFrom
    }

    public var quantized: Bool { type != sourceType }
    public var byteCount: Int { type.byteCount(dimensions: dimensions) }
    public var sourceByteCount: Int { sourceType.byteCount(dimensions: dimensions) }
}

/// llama-quantize's choice of type for every tensor (`llama_tensor_get_type` and the loop of
/// `llama_model_quantize_impl` in llama.cpp's src/llama-quant.cpp), for the presets Quanta writes.
public struct QuantizationPlanner {
    public let preset: GGUFPreset
    public let options: QuantizationOptions
    /// Attention heads over KV heads (n_gqa).
    public let gqa: Int
    public let layerCount: Int
    private let rules: [(Regex<AnyRegexOutput>, GGMLType)]

    /// Throws when a `--tensor-type` pattern is not a valid regular expression.
    public init(preset: GGUFPreset, options: QuantizationOptions, headCount: Int, kvHeadCount: Int, layerCount: Int) throws {
        self.preset = preset
        self.options = options
        self.rules = try options.tensorTypes.map { rule in
            do {
                return (try Regex(rule.pattern), rule.type)
            } catch {
                throw QuantaError(.invalidArgument, "--tensor-type \(rule.pattern)", "not a valid regular expression: \(error)")
            }
        }
        self.gqa = kvHeadCount > 0 ? headCount / kvHeadCount : 1
        self.layerCount = layerCount
    }

    /// llama.cpp's tensor order: tensors outside blocks first, then by block number, then by name.
    public static func llamaOrder(_ a: String, _ b: String) -> Bool {
        func layer(_ name: String) -> Int {
            guard name.hasPrefix("blk.") else { return -1 }
            return Int(name.dropFirst(4).prefix { $0.isNumber }) ?? -1
        }
        let (la, lb) = (layer(a), layer(b))
        return la != lb ? la < lb : a < b
    }

    /// The plan for a model source's tensors, in llama.cpp's order.
    public func plan(_ tensors: [SourceTensor]) throws -> [PlannedTensor] {
        try plan(tensors.map { (name: $0.name, dimensions: $0.dimensions, type: $0.type) })
    }

    /// The plan for `tensors` (name, ggml dimensions, source type), in llama.cpp's order.
    public func plan(_ tensors: [(name: String, dimensions: [Int], type: GGMLType)]) throws -> [PlannedTensor] {
        let ordered = tensors.sorted { QuantizationPlanner.llamaOrder($0.name, $1.name) }
        var state = State(attentionV: ordered.filter { QuantizationPlanner.isAttentionV($0.name) }.count,
                          hasOutput: ordered.contains { $0.name == "output.weight" }, layers: layerCount)
        return try ordered.map { try planOne($0.name, $0.dimensions, $0.type, &state) }
    }

    struct State {
        var attentionV: Int
        var hasOutput: Bool
        var layers: Int
        var iAttentionV = 0, iFFNDown = 0, iFFNGate = 0, iFFNUp = 0
    }

    static let neverQuantized: [StaticString] = ["_norm.weight", "ffn_gate_inp.weight", "altup", "laurel", "per_layer_model_proj",
                                                 "ssm_conv1d.weight", "shortconv.conv.weight", "conv1d", "attn_rel_b.weight", ".position_embd."]

    func planOne(_ name: String, _ dimensions: [Int], _ sourceType: GGMLType, _ state: inout State) throws -> PlannedTensor {
        var quantize = name.hasSuffix("weight") && dimensions.count >= 2
        quantize = quantize && !QuantizationPlanner.neverQuantized.contains { name.has($0) }
        quantize = quantize && !(options.leaveOutputTensor && name == "output.weight")
        quantize = quantize && name != "position_embd.weight" && name != "token_types.weight"
        guard quantize else {
            return PlannedTensor(name: name, dimensions: dimensions, sourceType: sourceType, type: sourceType, fallbackFrom: nil)
        }
        var type = preset.defaultType
        var fallbackFrom: GGMLType?
        if !options.pure && preset.hasRules {
            (type, fallbackFrom) = ruleType(name, dimensions, &state)
            if fallbackFrom == nil, let rule = rules.first(where: { name.contains($0.0) }) {
                type = rule.1
            }
        }
        if let t = options.tokenEmbeddingType, name == "token_embd.weight" { type = t }
        if let t = options.outputTensorType, name == "output.weight" { type = t }
        if let t = options.assigned[name] {
            (type, fallbackFrom) = (t, nil)
            if t == sourceType { return PlannedTensor(name: name, dimensions: dimensions, sourceType: sourceType, type: sourceType) }
        }
        guard dimensions[0] % type.blockSize == 0 else {
            throw QuantaError(.invalidArgument, "tensor '\(name)'",
                              "rows of \(dimensions[0]) values cannot be stored as \(type.name) (blocks of \(type.blockSize))")
        }
        return PlannedTensor(name: name, dimensions: dimensions, sourceType: sourceType, type: type, fallbackFrom: fallbackFrom)
    }

    /// llama.cpp's `category_is_attn_v`: attn_v and the tensors that hold it (fused attn_qkv,
    /// attn_kv_b) get attn_v's rules and share its counter (its own attn_qkv branch is never reached).
    static func isAttentionV(_ name: String) -> Bool {
        name.has("attn_v.weight") || name.has("attn_qkv.weight") || name.has("attn_kv_b.weight")
    }

    static func useMoreBits(_ i: Int, _ n: Int) -> Bool {
        i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2
    }

    /// `llama_tensor_get_type` restricted to the presets above (no experts, not Falcon, not 70B).
    func ruleType(_ name: String, _ dimensions: [Int], _ state: inout State) -> (GGMLType, GGMLType?) {
        var type = preset.defaultType
        let ftype = preset
        let lowBit = ftype.isLowBit, raised: GGMLType = [.iq2_S, .iq2_M].contains(ftype) ? .iq3_S : .q2_K
        if name == "output.weight" || (!state.hasOutput && name == "token_embd.weight") {
            if let t = options.outputTensorType {
                type = t
            } else if dimensions[0] % type.blockSize != 0 {
                type = .q8_0
            } else if lowBit || ftype == .iq3_XXS {
                type = .q5_K
            } else if type != .q8_0 {
                type = .q6_K
            }
        } else if name == "token_embd.weight" {
            if let t = options.tokenEmbeddingType {
                type = t
            } else if lowBit {
                type = raised
            } else if ftype == .iq3_XXS {
                type = .iq3_S
            } else if ftype == .tq1_0 || ftype == .tq2_0 {
                type = .q4_K
            }
        } else if lowBit {
            if QuantizationPlanner.isAttentionV(name) {
                type = gqa >= 4 ? .q4_K : raised
                state.iAttentionV += 1
            } else if name.has("ffn_down") {
                if state.iFFNDown < state.layers / 8 { type = raised }
                state.iFFNDown += 1
            } else if name.has("attn_output.weight") {
                if ftype == .iq1_S || ftype == .iq1_M { type = .iq2_XXS } else if raised == .iq3_S { type = .iq3_S }
            }
        } else if QuantizationPlanner.isAttentionV(name) {
            switch ftype {
            case .q2_K: type = gqa >= 4 ? .q4_K : .q3_K
            case .q2_K_S where gqa >= 4: type = .q4_K
            case .iq3_XXS: type = gqa >= 4 ? .q4_K : options.hasImportance ? .iq3_XXS : .iq3_S
            case .iq3_XS where gqa >= 4, .iq3_S where gqa >= 4, .iq3_M: type = .q4_K
            case .iq4_NL where gqa >= 4, .iq4_XS where gqa >= 4: type = .q5_K
            case .q3_K_M: type = state.iAttentionV < 2 ? .q5_K : .q4_K
            case .q3_K_L: type = .q5_K
            case .q4_K_M where QuantizationPlanner.useMoreBits(state.iAttentionV, state.attentionV),
                 .q5_K_M where QuantizationPlanner.useMoreBits(state.iAttentionV, state.attentionV): type = .q6_K
            case .q4_K_S where state.iAttentionV < 4: type = .q5_K
            default: break
            }
            state.iAttentionV += 1
        } else if name.has("attn_k.weight") || name.has("attn_q.weight") {
            if ftype == .iq3_XS { type = .iq3_XXS } else if ftype == .iq3_XXS { type = .iq2_S }
        } else if name.has("ffn_down") {
            let (i, n) = (state.iFFNDown, state.layers)
            switch ftype {
            case .q2_K: type = .q3_K
            case .q2_K_S where i < n / 8: type = .q4_K
            case .iq3_XXS where !options.hasImportance: type = i < n / 8 ? .q4_K : .q3_K
            case .q3_K_M: type = i < n / 16 ? .q5_K : .q4_K
            case .iq3_M where i < n / 8: type = .q4_K
            case .q3_K_L: type = .q5_K
            case .q4_K_M where QuantizationPlanner.useMoreBits(i, n): type = .q6_K
            case .iq4_NL where i < n / 8 && !options.hasImportance, .iq4_XS where i < n / 8 && !options.hasImportance: type = .q5_K
            case .q5_K_M where QuantizationPlanner.useMoreBits(i, n): type = .q6_K
            case .q4_K_S where i < n / 8: type = .q5_K
            case .q4_0 where options.hasImportance && i < n / 8: type = .q4_1
            case .q5_0 where options.hasImportance && i < n / 8: type = .q5_1
            default: break
            }
            state.iFFNDown += 1
        } else if name.has("attn_output.weight") {
            switch ftype {
            case .q2_K: type = .q3_K
            case .iq3_XXS: type = .iq3_S
            case .q3_K_M, .iq3_M: type = .q4_K
            case .q3_K_L: type = .q5_K
            default: break
            }
        } else if name.has("ffn_gate") || name.has("ffn_up") {
            let i = name.has("ffn_gate") ? state.iFFNGate : state.iFFNUp
            if ftype == .iq3_XS && i >= state.layers / 8 && i < 7 * state.layers / 8 { type = .iq3_XXS }
            if name.has("ffn_gate") { state.iFFNGate += 1 } else { state.iFFNUp += 1 }
        }
        guard dimensions[0] % type.blockSize != 0 else { return (type, nil) }
        let requested = type
        switch type {
        case .tq1_0, .tq2_0: type = .q4_0
        case .iq2_XXS, .iq2_XS, .iq2_S, .iq3_XXS, .iq3_S, .iq1_S, .iq1_M, .iq4_XS: type = .iq4_NL
        case .q2_K, .q3_K: type = .q4_0  // llama.cpp d32676d (the golden files' version)
        case .q4_K: type = .q5_0
        case .q5_K: type = .q5_1
        case .q6_K: type = .q8_0
        default: break
        }
        if dimensions[0] % type.blockSize != 0 { type = .f16 }
        return (type, requested)
    }
}

private extension String {
    /// Whether `part` occurs in this tensor name, compared as UTF-8 bytes. Foundation's
    /// `contains`, which Yams makes visible in this module, goes through NSString on each call.
    func has(_ part: StaticString) -> Bool {
        var name = self
        return name.withUTF8 { bytes in
            let needle = UnsafeBufferPointer(start: part.utf8Start, count: part.utf8CodeUnitCount)
            guard !needle.isEmpty else { return true }
            guard needle.count <= bytes.count else { return false }
            for start in 0...(bytes.count - needle.count) where bytes[start] == needle[0] {
                if (1..<needle.count).allSatisfy({ bytes[start + $0] == needle[$0] }) { return true }
            }
            return false
        }
    }
}
