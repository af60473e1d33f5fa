/// IEEE-754 binary16 (f16) and bfloat16 (bf16) conversion to and from Float.
///
/// Float -> half rounds to nearest, ties to even; values too large become infinity;
/// results below the smallest normal become correctly rounded subnormals (or signed zero);
/// NaN stays NaN with its sign and the top bits of its payload, forced quiet.
/// Half -> Float is exact for every bit pattern.
#if _endian(big)
#error("Quanta reads and writes little-endian files through native memory; big-endian hosts are not supported")
#endif

public enum HalfConversion {
    /// Exact conversion of an f16 bit pattern to Float.
    @inlinable
    public static func f16ToFloat(_ h: UInt16) -> Float {
        let sign = UInt32(h & 0x8000) << 16
        let exponent = UInt32(h >> 10) & 0x1F
        let mantissa = UInt32(h & 0x3FF)
        if exponent == 0x1F {
            return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13))
        }
        if exponent != 0 {
            return Float(bitPattern: sign | ((exponent + 112) << 23) | (mantissa << 13))
        }
        // Zero or subnormal: mantissa * 2^-24 is exact in Float.
        let magnitude = Float(mantissa) * 0x1p-24
        return Float(bitPattern: sign | magnitude.bitPattern)
    }

    /// Float to the nearest f16 bit pattern (ties to even).
    @inlinable
    public static func floatToF16(_ f: Float) -> UInt16 {
        let bits = f.bitPattern
        let sign = UInt16((bits >> 16) & 0x8000)
        let abs = bits & 0x7FFF_FFFF
        if abs >= 0x7F80_0000 {
            if abs == 0x7F80_0000 { return sign | 0x7C00 }
            return sign | 0x7E00 | UInt16((abs >> 13) & 0x3FF)  // quiet NaN, payload kept
        }
        if abs >= 0x4780_0000 { return sign | 0x7C00 }  // >= 65536: overflows even after rounding
        if abs >= 0x3880_0000 {
            // Normal range: rebias the exponent, round the 13 dropped bits to nearest even.
            let rebased = abs - 0x3800_0000
            let roundBit = (rebased >> 13) & 1
            let rounded = (rebased + 0xFFF + roundBit) >> 13
            return sign | UInt16(rounded)  // a carry into exponent 31 is infinity, as it should be
        }
        if abs < 0x3300_0000 { return sign }  // below half the smallest subnormal: zero
        // Subnormal result: shift the full significand right, round to nearest even.
        let exponent = abs >> 23
        let significand = (abs & 0x7F_FFFF) | 0x80_0000
        let shift = 126 - exponent  // 14 ... 24
        let halfway: UInt32 = 1 << (shift - 1)
        let remainder = significand & ((1 << shift) - 1)
        var result = significand >> shift
        if remainder > halfway || (remainder == halfway && (result & 1) == 1) { result += 1 }
        return sign | UInt16(result)
    }

    /// Exact conversion of a bf16 bit pattern to Float.
    @inlinable
    /// `v` stored as f16 and read back (round to nearest even).
    @inline(__always) public static func roundedToF16(_ v: Float) -> Float { f16ToFloat(floatToF16(v)) }

    /// `v` stored as bf16 and read back.
    @inline(__always) public static func roundedToBF16(_ v: Float) -> Float { bf16ToFloat(floatToBF16(v)) }

    public static func bf16ToFloat(_ b: UInt16) -> Float {
        Float(bitPattern: UInt32(b) << 16)
    }

    /// Float to the nearest bf16 bit pattern (ties to even); NaN stays a quiet NaN.
    @inlinable
    public static func floatToBF16(_ f: Float) -> UInt16 {
        let bits = f.bitPattern
        if (bits & 0x7FFF_FFFF) > 0x7F80_0000 {
            return UInt16(bits >> 16) | 0x0040
        }
        let roundBit = (bits >> 16) & 1
        return UInt16(truncatingIfNeeded: (bits &+ 0x7FFF &+ roundBit) >> 16)
    }

    /// Converts `count` f16 values at `source` to Float at `destination`.
    public static func f16ToFloat(_ source: UnsafePointer<UInt16>, _ destination: UnsafeMutablePointer<Float>,
                                  count: Int) {
        for i in 0..<count { destination[i] = f16ToFloat(source[i]) }
    }

    /// Converts `count` bf16 values at `source` to Float at `destination`.
    public static func bf16ToFloat(_ source: UnsafePointer<UInt16>, _ destination: UnsafeMutablePointer<Float>,
                                   count: Int) {
        for i in 0..<count { destination[i] = bf16ToFloat(source[i]) }
    }

    /// Converts `count` Float values to f16 bit patterns.
    public static func floatToF16(_ source: UnsafePointer<Float>, _ destination: UnsafeMutablePointer<UInt16>,
                                  count: Int) {
        for i in 0..<count { destination[i] = floatToF16(source[i]) }
    }

    /// Converts `count` Float values to bf16 bit patterns.
    public static func floatToBF16(_ source: UnsafePointer<Float>, _ destination: UnsafeMutablePointer<UInt16>,
                                   count: Int) {
        for i in 0..<count { destination[i] = floatToBF16(source[i]) }
    }
}
