import QuantaCore

/// The second half of a block quantizer, for algorithms that choose levels themselves (GPTQ
/// quantizes one column at a time against block parameters fitted beforehand).
///
/// A format's row quantizer fits the block parameters (scales, mins) and writes them into each
/// block's header; the codec then encodes any values against the parameters a block already
/// holds: each value to its nearest level. For the k-quants this is exactly ggml's last step
/// (it re-derives every level from the stored scales), so fit then encode gives ggml's bytes.
/// The legacy types pick levels with the unrounded fp32 scale; encoding against the stored f16
/// scale is never worse for the stored block.
public struct BlockCodec: Sendable {
    /// The level position `j` of `block` takes for `x` (finite) under the block's stored parameters.
    public let level: @Sendable (_ x: Float, _ j: Int, _ block: UnsafePointer<UInt8>) -> Int32
    /// The value level `q` at position `j` decodes to, as the format's dequantizer computes it.
    public let value: @Sendable (_ q: Int32, _ j: Int, _ block: UnsafePointer<UInt8>) -> Float
    /// Writes `type.blockSize` levels into the block's level bytes; the parameters stay.
    public let pack: @Sendable (_ levels: UnsafePointer<Int32>, _ block: UnsafeMutablePointer<UInt8>) -> Void
}

extension BlockFormat {
    /// Encodes `type.blockSize` values into `block`, whose header already holds the parameters
    /// (from `quantizeRow` on these or other values). `levels` is scratch of `type.blockSize`.
    public func encode(_ x: UnsafePointer<Float>, into block: UnsafeMutablePointer<UInt8>, levels: UnsafeMutablePointer<Int32>) {
        guard let codec else { preconditionFailure("\(type.name) has no codec") }
        for j in 0..<type.blockSize { levels[j] = codec.level(x[j], j, block) }
        codec.pack(levels, block)
    }
}

/// `x / d` rounded to the nearest level in `lo...hi`; level `zero` when `d` is 0.
@inline(__always)
func nearestLevel(_ x: Float, _ d: Float, _ lo: Int, _ hi: Int, zero: Int) -> Int32 {
    guard d != 0 else { return Int32(zero) }
    let f = max(-4e6, min(4e6, x / d))
    return Int32(max(lo, min(hi, nearestInt(f))))
}

/// `(x - m) / d` as above, for the formats with a minimum.
@inline(__always)
func nearestAffineLevel(_ x: Float, _ d: Float, _ m: Float, _ hi: Int) -> Int32 {
    nearestLevel(x - m, d, 0, hi, zero: 0)
}

extension BlockCodec {
    /// Q8_0: d at byte 0, 32 signed levels.
    static let q8_0 = BlockCodec(level: { x, _, b in nearestLevel(x, b.halfFloat(at: 0), -128, 127, zero: 0) },
                                 value: { q, _, b in Float(Int8(q)) * b.halfFloat(at: 0) },
                                 pack: { l, b in for j in 0..<32 { b[2 + j] = UInt8(bitPattern: Int8(l[j])) } })

    /// Q4_0 / Q5_0: d at byte 0, levels offset by 8 / 16.
    static func symmetric(levels: Int, pack: @escaping @Sendable (UnsafePointer<Int32>, UnsafeMutablePointer<UInt8>) -> Void) -> BlockCodec {
        let half = levels / 2
        return BlockCodec(level: { x, _, b in nearestLevel(x, b.halfFloat(at: 0), -half, half - 1, zero: 0) + Int32(half) },
                          value: { q, _, b in Float(Int(q) - half) * b.halfFloat(at: 0) },
                          pack: pack)
    }

    /// Q4_1 / Q5_1: d at byte 0, m at byte 2, levels 0..<levels.
    static func affine(levels: Int, pack: @escaping @Sendable (UnsafePointer<Int32>, UnsafeMutablePointer<UInt8>) -> Void) -> BlockCodec {
        BlockCodec(level: { x, _, b in nearestAffineLevel(x, b.halfFloat(at: 0), b.halfFloat(at: 2), levels - 1) },
                   value: { q, _, b in Float(q) * b.halfFloat(at: 0) + b.halfFloat(at: 2) },
                   pack: pack)
    }

    /// Q4_K / Q5_K: d, dmin, then eight 6-bit scale/min pairs; value = d*sc*q - dmin*m.
    static func scaleMinK(levels: Int, pack: @escaping @Sendable (UnsafePointer<Int32>, UnsafeMutablePointer<UInt8>) -> Void) -> BlockCodec {
        @Sendable func parameters(_ j: Int, _ b: UnsafePointer<UInt8>) -> (d: Float, dm: Float) {
            let (sc, m) = KQuantsHigh.scaleMin(j / 32, b + 4)
            return (b.halfFloat(at: 0) * Float(sc), b.halfFloat(at: 2) * Float(m))
        }
        return BlockCodec(level: { x, j, b in let p = parameters(j, b); return nearestLevel(x + p.dm, p.d, 0, levels - 1, zero: 0) },
                          value: { q, j, b in let p = parameters(j, b); return p.d * Float(q) - p.dm },
                          pack: pack)
    }

    /// Q6_K: sixteen int8 scales at byte 192, d at byte 208; levels offset by 32.
    static let q6_K = BlockCodec(
        level: { x, j, b in nearestLevel(x, b.halfFloat(at: 208) * Float(Int8(bitPattern: b[192 + j / 16])), -32, 31, zero: 0) + 32 },
        value: { q, j, b in b.halfFloat(at: 208) * Float(Int8(bitPattern: b[192 + j / 16])) * Float(Int(q) - 32) },
        pack: { l, b in withByteLevels(l, QK_K) { KQuantsHigh.packQ6($0, b) } })
}

/// Narrows codec levels to the bytes the pack helpers take.
@inline(__always)
func withByteLevels(_ l: UnsafePointer<Int32>, _ count: Int, _ body: (UnsafePointer<UInt8>) -> Void) {
    withUnsafeTemporaryAllocation(of: UInt8.self, capacity: count) { bytes in
        for j in 0..<count { bytes[j] = UInt8(truncatingIfNeeded: l[j]) }
        body(UnsafePointer(bytes.baseAddress!))
    }
}
