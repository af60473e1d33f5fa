import QuantaCore

/// llama-quantize's output types ("ftypes"): a default tensor type plus, for the k-quant
/// mixtures, per-tensor rules. `fileType` is the value written to `general.file_type`.
public enum GGUFPreset: String, CaseIterable, Sendable {
    case f32 = "F32", f16 = "F16", bf16 = "BF16"
    case q4_0 = "Q4_0", q4_1 = "Q4_1", q5_0 = "Q5_0", q5_1 = "Q5_1", q8_0 = "Q8_0"
    case q2_K = "Q2_K", q3_K_S = "Q3_K_S", q3_K_M = "Q3_K_M", q3_K_L = "Q3_K_L"
    case q4_K_S = "Q4_K_S", q4_K_M = "Q4_K_M", q5_K_S = "Q5_K_S", q5_K_M = "Q5_K_M", q6_K = "Q6_K"
    case iq4_NL = "IQ4_NL", iq4_XS = "IQ4_XS"
    case tq1_0 = "TQ1_0", tq2_0 = "TQ2_0"

    /// A preset by name (case-insensitive); pure type names map to their preset
    /// ("Q4_K" is Q4_K_M, "Q3_K" Q3_K_M, "Q5_K" Q5_K_M, as llama-quantize accepts them).
    public init?(name: String) {
        let upper = name.uppercased()
        switch upper {
        case "Q4_K": self = .q4_K_M
        case "Q3_K": self = .q3_K_M
        case "Q5_K": self = .q5_K_M
        default:
            guard let preset = GGUFPreset(rawValue: upper) else { return nil }
            self = preset
        }
    }

    public var defaultType: GGMLType {
        switch self {
        case .f32: .f32
        case .f16: .f16
        case .bf16: .bf16
        case .q4_0: .q4_0
        case .q4_1: .q4_1
        case .q5_0: .q5_0
        case .q5_1: .q5_1
        case .q8_0: .q8_0
        case .q2_K: .q2_K
        case .q3_K_S, .q3_K_M, .q3_K_L: .q3_K
        case .q4_K_S, .q4_K_M: .q4_K
        case .q5_K_S, .q5_K_M: .q5_K
        case .q6_K: .q6_K
        case .iq4_NL: .iq4_NL
        case .iq4_XS: .iq4_XS
        case .tq1_0: .tq1_0
        case .tq2_0: .tq2_0
        }
    }

    /// llama.cpp's `llama_ftype` value.
    public var fileType: UInt32 {
        switch self {
        case .f32: 0
        case .f16: 1
        case .q4_0: 2
        case .q4_1: 3
        case .q8_0: 7
        case .q5_0: 8
        case .q5_1: 9
        case .q2_K: 10
        case .q3_K_S: 11
        case .q3_K_M: 12
        case .q3_K_L: 13
        case .q4_K_S: 14
        case .q4_K_M: 15
        case .q5_K_S: 16
        case .q5_K_M: 17
        case .q6_K: 18
        case .iq4_NL: 25
        case .iq4_XS: 30
        case .bf16: 32
        case .tq1_0: 36
        case .tq2_0: 37
        }
    }

    /// Whether llama-quantize applies its per-tensor rules (only for quantized defaults).
    var hasRules: Bool { ![.f32, .f16, .bf16].contains(defaultType) }
}
