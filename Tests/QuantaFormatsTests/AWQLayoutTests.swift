import QuantaCore
import QuantaFormats
import TestSupport
import XCTest

/// AutoAWQ's GEMM packing against a transcription of its own loop, and pack -> unpack.
final class AWQLayoutTests: XCTestCase {
    /// AutoAWQ's `WQLinear_GEMM.from_linear` packing: intweight `[in][out]` into `[in][out / 8]`.
    func autoAWQ(_ intweight: [[UInt32]]) -> [[UInt32]] {
        let orderMap = [0, 2, 4, 6, 1, 3, 5, 7]
        return intweight.map { row in
            (0..<(row.count / 8)).map { col in
                var word: UInt32 = 0
                for i in 0..<8 { word |= row[col * 8 + orderMap[i]] << UInt32(i * 4) }
                return word
            }
        }
    }

    func testPackingMatchesAutoAWQAndRoundTrips() throws {
        var generator = SeededGenerator(seed: 11)
        let (rows, columns) = (48, 64)   // [in, out] as stored
        let values = (0..<(rows * columns)).map { _ in Int32(generator.below(16)) }
        let packed = AWQLayout.pack(values, rows: rows, columns: columns)
        let reference = autoAWQ((0..<rows).map { r in (0..<columns).map { UInt32(values[r * columns + $0]) } })
        XCTAssertEqual(packed, reference.flatMap { $0 })
        XCTAssertEqual(AWQLayout.unpack(packed.map { Int32(bitPattern: $0) }, rows: rows, columns: columns), values)
        // Dequantized: scale * (q - z) per group of 16 input rows.
        let groups = 3
        let zeros = (0..<(groups * columns)).map { _ in Int32(generator.below(16)) }
        let scales = (0..<(groups * columns)).map { _ in Float(generator.below(100) + 1) / 128 }
        let weight = try AWQLayout.dequantize(
            qweight: Tensor(shape: [rows, columns / 8], storage: packed.map { Int32(bitPattern: $0) }),
            qzeros: Tensor(shape: [groups, columns / 8], storage: AWQLayout.pack(zeros, rows: groups, columns: columns).map { Int32(bitPattern: $0) }),
            scales: Tensor(shape: [groups, columns], storage: scales), groupSize: 16, name: "L")
        XCTAssertEqual(weight.shape, [columns, rows])
        for j in 0..<columns {
            for i in 0..<rows {
                let g = i / 16
                XCTAssertEqual(weight.storage[j * rows + i], scales[g * columns + j] * Float(values[i * columns + j] - zeros[g * columns + j]))
            }
        }
        XCTAssertThrowsError(try AWQLayout.dequantize(qweight: Tensor(shape: [48, 8], storage: [Int32](repeating: 0, count: 384)),
                                                      qzeros: Tensor(shape: [2, 8], storage: [Int32](repeating: 0, count: 16)),
                                                      scales: Tensor(shape: [3, 64], storage: [Float](repeating: 1, count: 192)), groupSize: 16, name: "L")) {
            XCTAssertEqual("\($0)", "L: shapes qweight [48, 8], qzeros [2, 8], scales [3, 64] do not fit groups of 16")
        }
    }
}
