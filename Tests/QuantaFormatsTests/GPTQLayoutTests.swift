import QuantaCore
import QuantaFormats
import TestSupport
import XCTest

/// The gptq layout against a transcription of AutoGPTQ's own packing loop, and pack -> unpack.
final class GPTQLayoutTests: XCTestCase {
    /// AutoGPTQ's `pack`: intweight `[in][out]` into qweight `[in / 32 * bits][out]`.
    func autoGPTQ(_ intweight: [[UInt32]], bits: Int) -> [[UInt32]] {
        let rows = intweight.count / 32 * bits, out = intweight[0].count
        var q = [[UInt32]](repeating: [UInt32](repeating: 0, count: out), count: rows)
        func or(_ row: Int, _ f: (Int) -> UInt32) { for c in 0..<out { q[row][c] |= f(c) } }
        var i = 0, row = 0
        while row < rows {
            if bits != 3 {
                for j in i..<(i + 32 / bits) { let s = UInt32(bits * (j - i)); or(row) { intweight[j][$0] << s } }
                i += 32 / bits
                row += 1
            } else {
                for j in i..<(i + 10) { let s = UInt32(3 * (j - i)); or(row) { intweight[j][$0] << s } }
                i += 10
                let a = i
                or(row) { intweight[a][$0] << 30 }
                row += 1
                or(row) { (intweight[a][$0] >> 2) & 1 }
                i += 1
                for j in i..<(i + 10) { let s = UInt32(3 * (j - i) + 1); or(row) { intweight[j][$0] << s } }
                i += 10
                let b = i
                or(row) { intweight[b][$0] << 31 }
                row += 1
                or(row) { (intweight[b][$0] >> 1) & 3 }
                i += 1
                for j in i..<(i + 10) { let s = UInt32(3 * (j - i) + 2); or(row) { intweight[j][$0] << s } }
                i += 10
                row += 1
            }
        }
        return q
    }

    func testPackingMatchesAutoGPTQAndRoundTrips() throws {
        var generator = SeededGenerator(seed: 3)
        let (rows, columns, groupSize) = (64, 96, 32)
        for bits in [2, 3, 4, 8] {
            let levels = (0..<(rows * columns)).map { _ in Int32(generator.below(1 << bits)) }
            let packed = GPTQLayout.packLevels(levels, rows: rows, columns: columns, bits: bits)
            let intweight = (0..<columns).map { i in (0..<rows).map { j in UInt32(levels[j * columns + i]) } }
            XCTAssertEqual(packed, autoGPTQ(intweight, bits: bits).flatMap { $0 }, "\(bits) bits")
            let groups = columns / groupSize
            let zeros = (0..<(groups * rows)).map { _ in Float(generator.below(1 << bits) + 1) }
            let scales = (0..<(groups * rows)).map { _ in HalfConversion.f16ToFloat(HalfConversion.floatToF16(Float(generator.below(1000) + 1) / 4096)) }
            let gIndex = (0..<columns).map { Int32($0 / groupSize) }
            let weight = try GPTQLayout.dequantize(
                qweight: Tensor(shape: [columns * bits / 32, rows], storage: packed.map { Int32(bitPattern: $0) }),
                qzeros: Tensor(shape: [groups, rows * bits / 32], storage: GPTQLayout.packZeros(zeros, groups: groups, rows: rows, bits: bits).map { Int32(bitPattern: $0) }),
                scales: Tensor(shape: [groups, rows], storage: scales), gIndex: Tensor(shape: [columns], storage: gIndex), bits: bits, name: "test")
            for j in 0..<rows {
                for i in 0..<columns {
                    let g = i / groupSize
                    XCTAssertEqual(weight.storage[j * columns + i], scales[g * rows + j] * (Float(levels[j * columns + i]) - zeros[g * rows + j]))
                }
            }
        }
        XCTAssertThrowsError(try GPTQLayout.dequantize(qweight: Tensor(shape: [3, 64], storage: [Int32](repeating: 0, count: 192)),
                                                       qzeros: Tensor(shape: [1, 6], storage: [Int32](repeating: 0, count: 6)),
                                                       scales: Tensor(shape: [1, 64], storage: [Float](repeating: 1, count: 64)),
                                                       gIndex: Tensor(shape: [32], storage: [Int32](repeating: 1, count: 32)), bits: 3, name: "L")) {
            XCTAssertEqual("\($0)", "L: g_idx[0] = 1 is outside 1 groups")
        }
    }
}
