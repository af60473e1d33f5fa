import QuantaCore

// The quantizers of IQ2_XXS, IQ2_XS and IQ2_S (not written yet: read-only).

extension GGMLFormat {
    public static let iq2_XXS = GGMLFormat(.iq2_XXS, activation: .q8_K, requiresImportance: true, quantize: nil, dequantize: IQDequant.iq2xxs)
    public static let iq2_XS = GGMLFormat(.iq2_XS, activation: .q8_K, requiresImportance: true, quantize: nil, dequantize: IQDequant.iq2xs)
    public static let iq2_S = GGMLFormat(.iq2_S, activation: .q8_K, quantize: nil, dequantize: IQDequant.iq2s)
}
