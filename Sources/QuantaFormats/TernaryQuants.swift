import QuantaCore

/// ggml's ternary types, for weights trained to {-1, 0, 1} (BitNet b1.58 and the like): per
/// block of 256 one f16 scale `d = max |x|` and one trit per weight, round(x / d) in {-1, 0, 1}
/// (half away from zero, as `lroundf`). TQ1_0 (54 bytes, 1.6875 bits per weight) packs five trits
/// per byte as a base-3 fraction of 256 (`qs`, 48 bytes) and four per byte in `qh` (4 bytes), then
/// `d`; TQ2_0 (66 bytes, 2.0625 bits per weight) stores 2-bit codes, four per byte, then `d`.
/// ggml ignores importance for both. `quantize_row_tq1_0_ref` and `quantize_row_tq2_0_ref`.
enum TernaryQuants {
    @inline(__always) static func trit(_ v: Float, _ id: Float) -> UInt8 {
        UInt8(truncatingIfNeeded: Int((v * id).rounded(.toNearestOrAwayFromZero)) + 1)
    }

    /// Five (or four, then shifted up one trit) base-3 digits as a byte: ceil(q * 256 / 243).
    @inline(__always) static func packed(_ q: UInt8) -> UInt8 { UInt8(truncatingIfNeeded: (UInt16(q) * 256 + 242) / 243) }

    /// The block's scale (max |x|), stored at `offset` as f16, and its inverse (0 for a zero block).
    @inline(__always) static func scale(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<UInt8>, at offset: Int) -> Float {
        var amax: Float = 0
        for j in 0..<256 { amax = max(amax, abs(x[j])) }
        let h = HalfConversion.floatToF16(amax)
        y[offset] = UInt8(truncatingIfNeeded: h)
        y[offset + 1] = UInt8(truncatingIfNeeded: h >> 8)
        return amax != 0 ? 1 / amax : 0
    }

    static func quantizeTQ1_0(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<UInt8>, blocks: Int) {
        for i in 0..<blocks {
            let xb = x + 256 * i, yb = y + 54 * i
            let id = scale(xb, yb, at: 52)
            for m in 0..<32 {  // 160 values, five per byte, 32 apart
                var q: UInt8 = 0
                for n in 0..<5 { q = q &* 3 &+ trit(xb[m + n * 32], id) }
                yb[m] = packed(q)
            }
            for m in 0..<16 {  // the next 80, 16 apart
                var q: UInt8 = 0
                for n in 0..<5 { q = q &* 3 &+ trit(xb[160 + m + n * 16], id) }
                yb[32 + m] = packed(q)
            }
            for j in 0..<4 {  // the last 16, four per byte
                var q: UInt8 = 0
                for m in 0..<4 { q = q &* 3 &+ trit(xb[240 + j + m * 4], id) }
                yb[48 + j] = packed(q &* 3)
            }
        }
    }

    static func quantizeTQ2_0(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<UInt8>, blocks: Int) {
        for i in 0..<blocks {
            let xb = x + 256 * i, yb = y + 66 * i
            let id = scale(xb, yb, at: 64)
            for j in stride(from: 0, to: 64, by: 32) {
                for m in 0..<32 {
                    var q: UInt8 = 0
                    for n in 0..<4 { q |= (trit(xb[4 * j + m + n * 32], id) & 3) << (2 * n) }
                    yb[j + m] = q
                }
            }
        }
    }
}

extension GGMLFormat {
    public static let tq1_0 = GGMLFormat(.tq1_0, activation: .q8_K, usesImportance: false, quantize: { x, y, n, _, _ in
        TernaryQuants.quantizeTQ1_0(x, y, blocks: n / 256)
    }, dequantize: IQDequant.tq1)
    public static let tq2_0 = GGMLFormat(.tq2_0, activation: .q8_K, usesImportance: false, quantize: { x, y, n, _, _ in
        TernaryQuants.quantizeTQ2_0(x, y, blocks: n / 256)
    }, dequantize: IQDequant.tq2)
}
