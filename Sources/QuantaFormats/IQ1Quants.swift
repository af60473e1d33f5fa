import QuantaCore

// The quantizers of IQ1_S and IQ1_M (not written yet: read-only).

extension GGMLFormat {
    public static let iq1_S = GGMLFormat(.iq1_S, activation: .q8_K, requiresImportance: true, quantize: nil, dequantize: IQDequant.iq1s)
    public static let iq1_M = GGMLFormat(.iq1_M, activation: .q8_K, quantize: nil, dequantize: IQDequant.iq1m)
}
