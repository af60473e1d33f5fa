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
            // Float16 rounds as HalfConversion.roundedToF16 does (HalfConversionTests), in hardware.
            for i in 0..<count { x[i] = Float(Float16(x[i])) }
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
            for b in stride(from: 0, to: count, by: QK_K) where !roundTripQ8_K(x + b) { roundTripQ8_KReference(x + b) }
        default:
            break
        }
    }

    /// ggml `quantize_row_q8_K_ref` and back on one block of 256 values: d = max / -127 (as
    /// 1/iscale), q = min(127, nearest(x * iscale)).
    static func roundTripQ8_KReference(_ xb: UnsafeMutablePointer<Float>) {
        let (max, amax) = maxByMagnitude(xb, QK_K)
        if amax == 0 {
            for j in 0..<QK_K { xb[j] = 0 }
            return
        }
        let iscale = -127 / max
        let d = 1 / iscale
        for j in 0..<QK_K { xb[j] = d * Float(Swift.min(127, nearestInt(iscale * xb[j]))) }
    }

    /// `roundTripQ8_KReference` with the rounding sixteen lanes at a time, each doing the
    /// scalar code's float operations. Returns false, leaving the block untouched, when the
    /// rounding trick would not be exact (a subnormal largest value makes the scale infinite).
    @inline(__always)
    static func roundTripQ8_K(_ xb: UnsafeMutablePointer<Float>) -> Bool {
        let (max, amax) = maxByMagnitude(xb, QK_K)
        if amax == 0 {
            for j in 0..<QK_K { xb[j] = 0 }
            return true
        }
        let raw = UnsafeMutableRawPointer(xb)
        let iscale = -127 / max
        let d = 1 / iscale
        let limit = Lane16(repeating: 4194303), top = Lane16(repeating: 127)
        var outside = GroupLanes.Mask(repeating: false)
        for v in 0..<16 {
            let t = Lane16(repeating: iscale) * raw.loadUnaligned(fromByteOffset: 64 * v, as: Lane16.self)
            outside = outside .| .!(GroupLanes.magnitude(t) .< limit)
        }
        if GroupLanes.anySet(outside) { return false }
        for v in 0..<16 {
            let r = GroupLanes.round(Lane16(repeating: iscale) * raw.loadUnaligned(fromByteOffset: 64 * v, as: Lane16.self))
            raw.storeBytes(of: Lane16(repeating: d) * GroupLanes.select(r, top, r .> top), toByteOffset: 64 * v, as: Lane16.self)
        }
        return true
    }
}
