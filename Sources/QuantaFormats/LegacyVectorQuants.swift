import QuantaCore

// Vector forms of the legacy types' quantizers without importance (ggml's `quantize_row_*_ref`):
// a block of 32 values as two 16-lane vectors, each lane doing the scalar code's float
// operations, so the bytes are the same. Float-to-integer conversions use the float rounding
// trick (`GroupLanes.round`) and bit masks, because Swift's vector conversions are not compiled
// to vector instructions. Where that trick is not exact (a value at or beyond 2²², or NaN after a
// subnormal scale overflowed its inverse), the block takes the scalar code (`LegacyQuants`).
// The reductions (largest magnitude, min, max) are order-free except for the sign of a zero
// result, which is taken from the first zero in block order, as the sequential loops do.

enum LegacyVectorQuants {
    typealias Bits = SIMD16<UInt32>

    @inline(__always) static func load(_ p: UnsafePointer<Float>) -> Lane16 { UnsafeRawPointer(p).loadUnaligned(as: Lane16.self) }
    @inline(__always) static func bits(_ v: Lane16) -> Bits { unsafeBitCast(v, to: Bits.self) }
    @inline(__always) static func mask(_ m: GroupLanes.Mask) -> Bits { unsafeBitCast(m, to: Bits.self) }

    /// The largest lane (for values without NaN; equal values are interchangeable here).
    @inline(__always)
    static func largest(_ v: Lane16) -> Float {
        let a = v.lowHalf, b = v.highHalf
        let m8 = a.replacing(with: b, where: b .> a)
        let c = m8.lowHalf, d = m8.highHalf
        let m4 = c.replacing(with: d, where: d .> c)
        return Swift.max(Swift.max(m4[0], m4[1]), Swift.max(m4[2], m4[3]))
    }

    /// The smallest lane (for values without NaN).
    @inline(__always)
    static func smallest(_ v: Lane16) -> Float {
        let a = v.lowHalf, b = v.highHalf
        let m8 = a.replacing(with: b, where: b .< a)
        let c = m8.lowHalf, d = m8.highHalf
        let m4 = c.replacing(with: d, where: d .< c)
        return Swift.min(Swift.min(m4[0], m4[1]), Swift.min(m4[2], m4[3]))
    }

    /// `maxByMagnitude(xb, 32).value`: the first value of largest magnitude, 0 when all are zero.
    @inline(__always)
    static func signedMax(_ xb: UnsafePointer<Float>, _ a: Lane16, _ b: Lane16) -> Float {
        let ma = GroupLanes.magnitude(a), mb = GroupLanes.magnitude(b)
        let amax = largest(GroupLanes.select(ma, mb, mb .> ma))
        if amax == 0 { return 0 }
        let top = Lane16(repeating: amax), zero = Lane16.zero
        let negative = ((ma .== top) .& (a .< zero)) .| ((mb .== top) .& (b .< zero))
        let positive = ((ma .== top) .& (a .> zero)) .| ((mb .== top) .& (b .> zero))
        if !GroupLanes.anySet(negative) { return amax }
        if !GroupLanes.anySet(positive) { return -amax }
        var j = 0
        while abs(xb[j]) != amax { j += 1 }
        return xb[j]
    }

    /// Block min and max as `if x < min` / `if x > max` loops find them (zero signs included).
    @inline(__always)
    static func minMax(_ xb: UnsafePointer<Float>, _ a: Lane16, _ b: Lane16) -> (min: Float, max: Float) {
        var min = smallest(GroupLanes.select(a, b, b .< a))
        var max = largest(GroupLanes.select(a, b, b .> a))
        if min == 0 || max == 0 {
            var j = 0
            while xb[j] != 0 { j += 1 }
            if min == 0 { min = xb[j] }
            if max == 0 { max = xb[j] }
        }
        return (min, max)
    }

    /// True when every lane of `a` and `b` lies in [0, limit) (false for NaN). A limit of 128
    /// keeps C's `(int8_t)` conversion the identity; 2²² keeps the rounding trick exact.
    @inline(__always)
    static func inRange(_ a: Lane16, _ b: Lane16, below limit: Float) -> Bool {
        let top = Lane16(repeating: limit)
        let good = (a .>= 0) .& (a .< top) .& (b .>= 0) .& (b .< top)
        return !GroupLanes.anySet(.!good)
    }

    /// C's `(int)v` for v in [0, 2²²), as a float.
    @inline(__always)
    static func truncate(_ v: Lane16) -> Lane16 {
        let r = GroupLanes.round(v)
        return GroupLanes.select(r, r - 1, r .> v)
    }

    /// A float holding an integer in [0, 2²²), as that integer.
    @inline(__always)
    static func integer(_ v: Lane16) -> Bits { bits(v + 12582912) & 0x003F_FFFF }

    @inline(__always)
    static func storeNibbles(_ low: Bits, _ high: Bits, _ out: UnsafeMutablePointer<UInt8>) {
        UnsafeMutableRawPointer(out).storeBytes(of: SIMD16<UInt8>(truncatingIfNeeded: low | (high &<< 4)), as: SIMD16<UInt8>.self)
    }

    /// Q5 layout: qh (bit j = bit 4 of quant j, little-endian u32) then the low nibbles.
    @inline(__always)
    static func storeQ5(_ qa: Bits, _ qb: Bits, _ out: UnsafeMutablePointer<UInt8>) {
        let shifts = Bits(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
        let ha: Bits = ((qa &>> 4) & 1) &<< shifts
        let hb: Bits = ((qb &>> 4) & 1) &<< (shifts &+ 16)
        let h = ha | hb
        let h8 = h.lowHalf | h.highHalf
        let h4 = h8.lowHalf | h8.highHalf
        let qh = h4[0] | h4[1] | h4[2] | h4[3]
        for b in 0..<4 { out[b] = UInt8(truncatingIfNeeded: qh >> (8 * b)) }
        storeNibbles(qa & 0xF, qb & 0xF, out + 4)
    }

    /// A symmetric block (Q4_0, Q5_0): d = max / -half, levels MIN(top, (int8_t)(x / d + half + ½)).
    /// nil when the vector form is not exact for it.
    @inline(__always)
    static func symmetric(_ xb: UnsafePointer<Float>, half: Float, top: Float) -> (d: Float, qa: Bits, qb: Bits)? {
        let a = load(xb), b = load(xb + 16)
        let d = signedMax(xb, a, b) / -half
        let id: Float = d != 0 ? 1 / d : 0
        let va = a * id + (half + 0.5), vb = b * id + (half + 0.5)
        guard inRange(va, vb, below: 128) else { return nil }
        let ta = truncate(va), tb = truncate(vb), limit = Lane16(repeating: top)
        return (d, integer(GroupLanes.select(ta, limit, ta .> limit)), integer(GroupLanes.select(tb, limit, tb .> limit)))
    }

    /// An affine block (Q4_1, Q5_1): d = (max - min) / levels, quants (x - min) / d + ½ truncated,
    /// then MIN(levels, ·) through `(int8_t)` when `clamped` (Q4_1) or the low byte (Q5_1).
    @inline(__always)
    static func affine(_ xb: UnsafePointer<Float>, levels: Float, clamped: Bool) -> (d: Float, min: Float, qa: Bits, qb: Bits)? {
        let a = load(xb), b = load(xb + 16)
        let (min, max) = minMax(xb, a, b)
        let d = (max - min) / levels
        let id: Float = d != 0 ? 1 / d : 0
        let va = (a - min) * id + 0.5, vb = (b - min) * id + 0.5
        guard inRange(va, vb, below: clamped ? 128 : 4194304) else { return nil }
        let ta = truncate(va), tb = truncate(vb)
        guard clamped else { return (d, min, integer(ta) & 0xFF, integer(tb) & 0xFF) }
        let limit = Lane16(repeating: levels)
        return (d, min, integer(GroupLanes.select(ta, limit, ta .> limit)), integer(GroupLanes.select(tb, limit, tb .> limit)))
    }

    static func quantizeQ4_0(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<UInt8>, blocks: Int) {
        for i in 0..<blocks {
            let xb = x + 32 * i, yb = y + 18 * i
            guard let (d, qa, qb) = symmetric(xb, half: 8, top: 15) else {
                LegacyQuants.quantizeQ4_0(xb, yb, blocks: 1)
                continue
            }
            yb.storeHalf(fp16(d), at: 0)
            storeNibbles(qa, qb, yb + 2)
        }
    }

    static func quantizeQ5_0(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<UInt8>, blocks: Int, _ s: QuantScratch) {
        for i in 0..<blocks {
            let xb = x + 32 * i, yb = y + 22 * i
            guard let (d, qa, qb) = symmetric(xb, half: 16, top: 31) else {
                LegacyQuants.quantizeQ5_0(xb, yb, blocks: 1, s)
                continue
            }
            yb.storeHalf(fp16(d), at: 0)
            storeQ5(qa, qb, yb + 2)
        }
    }

    static func quantizeQ4_1(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<UInt8>, blocks: Int) {
        for i in 0..<blocks {
            let xb = x + 32 * i, yb = y + 20 * i
            guard let (d, min, qa, qb) = affine(xb, levels: 15, clamped: true) else {
                LegacyQuants.quantizeQ4_1(xb, yb, blocks: 1)
                continue
            }
            yb.storeHalf(fp16(d), at: 0)
            yb.storeHalf(fp16(min), at: 2)
            storeNibbles(qa, qb, yb + 4)
        }
    }

    static func quantizeQ5_1(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<UInt8>, blocks: Int, _ s: QuantScratch) {
        for i in 0..<blocks {
            let xb = x + 32 * i, yb = y + 24 * i
            guard let (d, min, qa, qb) = affine(xb, levels: 31, clamped: false) else {
                LegacyQuants.quantizeQ5_1(xb, yb, blocks: 1, s)
                continue
            }
            yb.storeHalf(fp16(d), at: 0)
            yb.storeHalf(fp16(min), at: 2)
            storeQ5(qa, qb, yb + 4)
        }
    }

    /// `roundf(v)` (halves away from zero) of |v| < 127.5 as a two's complement byte.
    @inline(__always)
    static func roundedByte(_ v: Lane16) -> Bits {
        let a = GroupLanes.magnitude(v)
        let t = truncate(a)
        let r = GroupLanes.select(t, t + 1, a - t .>= 0.5)
        let magnitude = integer(r)
        return GroupLanes.anySet(v .< 0) ? magnitude ^ ((magnitude ^ (0 &- magnitude)) & mask(v .< 0)) : magnitude
    }

    static func quantizeQ8_0(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<UInt8>, blocks: Int) {
        for i in 0..<blocks {
            let xb = x + 32 * i, yb = y + 34 * i
            let a = load(xb), b = load(xb + 16)
            let ma = GroupLanes.magnitude(a), mb = GroupLanes.magnitude(b)
            let d = largest(GroupLanes.select(ma, mb, mb .> ma)) / 127
            let id: Float = d != 0 ? 1 / d : 0
            let va = a * id, vb = b * id
            let good = (GroupLanes.magnitude(va) .< 127.5) .& (GroupLanes.magnitude(vb) .< 127.5)
            guard !GroupLanes.anySet(.!good) else {
                LegacyQuants.quantizeQ8_0(xb, yb, blocks: 1)
                continue
            }
            yb.storeHalf(fp16(d), at: 0)
            let out = UnsafeMutableRawPointer(yb + 2)
            out.storeBytes(of: SIMD16<UInt8>(truncatingIfNeeded: roundedByte(va)), as: SIMD16<UInt8>.self)
            out.storeBytes(of: SIMD16<UInt8>(truncatingIfNeeded: roundedByte(vb)), toByteOffset: 16, as: SIMD16<UInt8>.self)
        }
    }
}
