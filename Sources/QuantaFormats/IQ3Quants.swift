import QuantaCore

// The quantizers of IQ3_XXS and IQ3_S (not written yet: read-only).

extension GGMLFormat {
    public static let iq3_XXS = GGMLFormat(.iq3_XXS, activation: .q8_K, quantize: nil, dequantize: IQDequant.iq3xxs)
    public static let iq3_S = GGMLFormat(.iq3_S, activation: .q8_K, quantize: nil, dequantize: IQDequant.iq3s)
}
