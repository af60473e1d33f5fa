import QuantaCore

/// What llama.cpp's CPU backend does to activations before a matrix product with quantized
/// weights: it quantizes them to the weight type's `vec_dot_type` (Q8_0, Q8_1 or Q8_K blocks,
/// or f16/bf16 for half-precision weights). `roundTrip` applies that quantization and its
/// dequantization in place, so an fp32 product afterwards sees the values ggml's integer dot
/// products see.
public enum ActivationQuantization {
    /// The activation format ggml pairs with weights of `type` (nil: activations stay fp32).
    public static func vecDotType(for type: GGMLType) -> GGMLType? { BlockFormats.format(type)?.activationType }

    /// Quantizes `count` values (rows of `rowLength`) to `type` and back, in place.
    public static func roundTrip(_ type: GGMLType, _ x: UnsafeMutablePointer<Float>, count: Int, rowLength: Int) {
        switch type {
        case .f16:
            for i in 0..<count { x[i] = HalfConversion.roundedToF16(x[i]) }
        case .bf16:
            for i in 0..<count { x[i] = HalfConversion.bf16ToFloat(HalfConversion.floatToBF16(x[i])) }
        case .q8_0, .q8_1:
            let size = type.bytesPerBlock
            let block = UnsafeMutablePointer<UInt8>.allocate(capacity: size)
            defer { block.deallocate() }
            for b in stride(from: 0, to: count, by: 32) {
                if type == .q8_0 {
                    LegacyVectorQuants.quantizeQ8_0(x + b, block, blocks: 1)
                    LegacyQuants.dequantizeQ8_0(block, x + b, blocks: 1)
                } else {
                    LegacyQuants.quantizeQ8_1(x + b, block, blocks: 1)
                    LegacyQuants.dequantizeQ8_1(block, x + b, blocks: 1)
                }
            }
        case .q8_K:
            // ggml quantize_row_q8_K_ref: d = max / -127 (as 1/iscale), q = min(127, nearest(x * iscale)).
            for b in stride(from: 0, to: count, by: QK_K) {
                let xb = x + b
                let (max, amax) = maxByMagnitude(xb, QK_K)
                if amax == 0 {
                    for j in 0..<QK_K { xb[j] = 0 }
                    continue
                }
                let iscale = -127 / max
                let d = 1 / iscale
                for j in 0..<QK_K { xb[j] = d * Float(Swift.min(127, nearestInt(iscale * xb[j]))) }
            }
        default:
            break
        }
    }
}
