import QuantaCore
import TestSupport
import XCTest

/// f16/bf16 conversions against two independent references: Swift's own `Float16`
/// (compiler-rt / hardware conversion) and values computed exactly in Double arithmetic.
final class HalfConversionTests: XCTestCase {
    /// The exact value of an f16 bit pattern, from the IEEE formula in Double.
    private func f16Value(_ h: UInt16) -> Double {
        let sign: Double = h & 0x8000 != 0 ? -1 : 1
        let exponent = Int(h >> 10) & 0x1F
        let mantissa = Double(h & 0x3FF)
        if exponent == 0 { return sign * mantissa * 0x1p-24 }
        return sign * (1 + mantissa / 1024) * Double(sign: .plus, exponent: exponent - 15, significand: 1)
    }

    /// NaN equality that allows the quiet bit to be set (hardware converters quiet NaNs).
    private func assertSameNaN(_ got: UInt32, _ expected: UInt32, _ message: String) {
        XCTAssertTrue(Float(bitPattern: got).isNaN, message)
        XCTAssertEqual(got & ~0x0040_0000, expected & ~0x0040_0000, message)
    }

    func testF16ToFloatExhaustive() {
        var checked = 0
        for raw in 0...0xFFFF {
            let h = UInt16(raw)
            let ours = HalfConversion.f16ToFloat(h)
            let swift = Float(Float16(bitPattern: h))
            if swift.isNaN {
                assertSameNaN(ours.bitPattern, swift.bitPattern, "f16 0x\(String(raw, radix: 16))")
                continue
            }
            XCTAssertEqual(ours.bitPattern, swift.bitPattern, "f16 0x\(String(raw, radix: 16))")
            if (h & 0x7C00) != 0x7C00 {
                XCTAssertEqual(Double(ours), f16Value(h), "f16 0x\(String(raw, radix: 16))")
            }
            checked += 1
        }
        XCTAssertEqual(checked, 65536 - 2 * 1023)  // every pattern but the NaNs
    }

    func testFloatToF16ExhaustiveOverRepresentableValuesAndMidpoints() {
        for raw in 0...0xFFFF {
            let h = UInt16(raw)
            let value = HalfConversion.f16ToFloat(h)
            if value.isNaN {
                XCTAssertTrue(HalfConversion.f16ToFloat(HalfConversion.floatToF16(value)).isNaN)
                XCTAssertEqual(HalfConversion.floatToF16(value), h | 0x0200, "NaN payload and sign kept, quieted")
                continue
            }
            XCTAssertEqual(HalfConversion.floatToF16(value), h, "exact value 0x\(String(raw, radix: 16))")
            guard (h & 0x7FFF) < 0x7C00 else { continue }
            // The midpoint to the next larger magnitude, and the floats just around it.
            let next = (h & 0x7FFF) == 0x7BFF ? (h & 0x8000 != 0 ? -65536.0 : 65536.0) : f16Value(h + 1)
            let midpoint = Float((f16Value(h) + next) / 2)
            XCTAssertEqual(Double(midpoint), (f16Value(h) + next) / 2, "midpoint is exact in Float")
            for probe in [midpoint.nextDown, midpoint, midpoint.nextUp] {
                let expected = Float16(probe).bitPattern
                XCTAssertEqual(HalfConversion.floatToF16(probe), expected, "probe \(probe) near 0x\(String(raw, radix: 16))")
            }
            // Ties go to the even neighbour.
            let even = (h & 1) == 0 ? h : h + 1
            XCTAssertEqual(HalfConversion.floatToF16(midpoint), even, "tie above 0x\(String(raw, radix: 16))")
        }
    }

    func testFloatToF16EdgeCases() {
        XCTAssertEqual(HalfConversion.floatToF16(65504), 0x7BFF)
        XCTAssertEqual(HalfConversion.floatToF16(65519.996), 0x7BFF)
        XCTAssertEqual(HalfConversion.floatToF16(65520), 0x7C00, "ties to even overflows to infinity")
        XCTAssertEqual(HalfConversion.floatToF16(1e10), 0x7C00)
        XCTAssertEqual(HalfConversion.floatToF16(-.infinity), 0xFC00)
        XCTAssertEqual(HalfConversion.floatToF16(-0.0), 0x8000)
        XCTAssertEqual(HalfConversion.floatToF16(0x1p-24), 0x0001, "smallest subnormal")
        XCTAssertEqual(HalfConversion.floatToF16(0x1p-25), 0x0000, "half the smallest subnormal ties to zero")
        XCTAssertEqual(HalfConversion.floatToF16(Float(0x1p-25).nextUp), 0x0001)
        XCTAssertEqual(HalfConversion.floatToF16(Float(bitPattern: 0xFFC1_2345)), 0xFE09, "NaN sign and top payload bits")
        XCTAssertEqual(HalfConversion.floatToF16(Float(bitPattern: 0x7F80_0001)), 0x7E00, "signalling NaN is quieted, stays NaN")
    }

    func testFloatToF16RandomAgainstSwift() {
        var generator = SplitMix64(seed: 42)
        for _ in 0..<1_000_000 {
            let bits = UInt32(truncatingIfNeeded: generator.next())
            let f = Float(bitPattern: bits)
            let ours = HalfConversion.floatToF16(f)
            let swift = Float16(f).bitPattern
            if f.isNaN {
                XCTAssertTrue(Float16(bitPattern: ours).isNaN)
            } else if ours != swift {
                XCTFail("0x\(String(bits, radix: 16)): ours 0x\(String(ours, radix: 16)) swift 0x\(String(swift, radix: 16))")
                return
            }
        }
    }

    func testBF16ToFloatExhaustive() {
        for raw in 0...0xFFFF {
            let b = UInt16(raw)
            let value = HalfConversion.bf16ToFloat(b)
            XCTAssertEqual(value.bitPattern, UInt32(raw) << 16)
            let exponent = (raw >> 7) & 0xFF
            if exponent != 0xFF {
                let mantissa = Double(raw & 0x7F)
                let magnitude = exponent == 0 ? mantissa * 0x1p-133 : (1 + mantissa / 128) * Double(sign: .plus, exponent: exponent - 127, significand: 1)
                XCTAssertEqual(Double(value), raw & 0x8000 != 0 ? -magnitude : magnitude)
            }
        }
    }

    /// bf16 rounding against a reference that picks the nearer neighbour in Double.
    func testFloatToBF16AgainstNearestNeighbour() {
        var generator = SplitMix64(seed: 7)
        var probes: [Float] = []
        for raw in stride(from: 0, through: 0xFFFF, by: 1) {
            let low = Float(bitPattern: UInt32(raw) << 16)
            guard low.isFinite else { continue }
            probes.append(Float(bitPattern: (UInt32(raw) << 16) | 0x8000))  // exact tie
            probes.append(Float(bitPattern: (UInt32(raw) << 16) | 0x7FFF))
            probes.append(Float(bitPattern: (UInt32(raw) << 16) | 0x8001))
            probes.append(Float(bitPattern: (UInt32(raw) << 16) | UInt32(truncatingIfNeeded: generator.next() & 0xFFFF)))
        }
        for f in probes {
            let bits = f.bitPattern
            let down = bits & 0xFFFF_0000
            let up = down &+ 0x1_0000
            let dDown = abs(Double(f) - Double(Float(bitPattern: down)))
            let upValue = Float(bitPattern: up)
            let dUp = upValue.isInfinite ? abs(Double(f) - 0x1p128 * (f < 0 ? -1 : 1)) : abs(Double(f) - Double(upValue))
            let expected: UInt32 = dDown < dUp ? down : (dUp < dDown ? up : ((down >> 16) & 1 == 0 ? down : up))
            XCTAssertEqual(HalfConversion.floatToBF16(f), UInt16(expected >> 16), "0x\(String(bits, radix: 16))")
        }
        XCTAssertTrue(HalfConversion.bf16ToFloat(HalfConversion.floatToBF16(.nan)).isNaN)
        XCTAssertEqual(HalfConversion.floatToBF16(Float(bitPattern: 0x7F80_0001)), 0x7FC0, "signalling NaN stays NaN")
        XCTAssertEqual(HalfConversion.floatToBF16(.infinity), 0x7F80)
        XCTAssertEqual(HalfConversion.floatToBF16(-.greatestFiniteMagnitude), 0xFF80, "rounds to -infinity")
    }

    func testBulkConversionsMatchScalar() {
        let values: [Float] = [0, -0.0, 1, -2.5, 65504, 1e-6, 3.14159, .infinity, 1e30]
        var halves = [UInt16](repeating: 0, count: values.count)
        var back = [Float](repeating: 0, count: values.count)
        HalfConversion.floatToF16(values, &halves, count: values.count)
        HalfConversion.f16ToFloat(halves, &back, count: values.count)
        XCTAssertEqual(halves, values.map(HalfConversion.floatToF16))
        XCTAssertEqual(back, halves.map(HalfConversion.f16ToFloat))
        HalfConversion.floatToBF16(values, &halves, count: values.count)
        HalfConversion.bf16ToFloat(halves, &back, count: values.count)
        XCTAssertEqual(back, values.map { HalfConversion.bf16ToFloat(HalfConversion.floatToBF16($0)) })
    }
}

