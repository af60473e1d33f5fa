@testable import QuantaModel
import QuantaCore
import XCTest

/// The vector exponential (ggml's algorithm) against the C library's expf; the tiled product against
/// the one-element-at-a-time reference.
final class KernelsTests: XCTestCase {
    func testExponentialWithinTwoUlp() {
        var worst: Float = 0
        var x: Float = -103
        while x < 88.7 {
            let lanes = SIMD8<Float>((0..<8).map { x + Float($0) * 0.0013 })
            let ours = Kernels.exp(lanes)
            for t in 0..<8 {
                let reference = expf(lanes[t])
                guard reference.isNormal else { continue }
                worst = max(worst, abs(ours[t] - reference) / reference.ulp)
            }
            x += 0.0117
        }
        XCTAssertLessThanOrEqual(worst, 2, "largest error in ulp")
        XCTAssertGreaterThan(worst, 0, "an exact match everywhere would mean the C library was called")
        let edges = Kernels.exp(SIMD8<Float>(-Float.infinity, 0, 1, -1, 100, -200, 88.7, -88))
        XCTAssertEqual(edges[0], 0)
        XCTAssertEqual(edges[1], 1)
        XCTAssertEqual(edges[2], expf(1), accuracy: expf(1).ulp * 2)
        XCTAssertEqual(edges[4], .infinity)
        XCTAssertEqual(edges[5], 0)
        XCTAssertEqual(edges[6], expf(88.7), accuracy: expf(88.7).ulp * 2)
    }

    /// Every element of the tiled ggml-order product is the reference's to the bit: shapes with
    /// and without remainders of the 6 × 4 tile and of a job, one and three workers, and the
    /// accumulating form (C + the same sum).
    func testTiledProductEqualsReferenceBitForBit() {
        var generator = SystemRandomNumberGenerator()
        for (m, n, k) in [(1, 1, 16), (6, 4, 32), (7, 5, 48), (50, 131, 64), (97, 9, 576), (13, 260, 1536)] {
            let a = (0..<(m * k)).map { _ in Float.random(in: -2...2, using: &generator) }
            let b = (0..<(n * k)).map { _ in Float.random(in: -1...1, using: &generator) * 0x1p-3 }
            var reference = [Float](repeating: 0, count: m * n)
            Kernels.gemmNTggmlReference(m, n, k, a, b, &reference)
            XCTAssertTrue(reference.contains { $0 != 0 })
            for threads in [1, 3] {
                var tiled = [Float](repeating: .nan, count: m * n)
                TiledProduct.product(m, n, k, a, b, &tiled, ldc: n, accumulate: false, threads: threads)
                let first = tiled.indices.first { tiled[$0].bitPattern != reference[$0].bitPattern }
                XCTAssertNil(first, "\(m)×\(n)×\(k), \(threads) threads: element \(first ?? -1)")
                let base = (0..<(m * n)).map { Float($0 % 7) - 3.25 }
                var sum = base
                TiledProduct.product(m, n, k, a, b, &sum, ldc: n, accumulate: true, threads: threads)
                XCTAssertEqual(sum.map(\.bitPattern), zip(base, reference).map { ($0 + $1).bitPattern }, "\(m)×\(n)×\(k) accumulated")
            }
        }
    }

    /// Small integers sum exactly in Float, so the packed product must equal the integer
    /// product exactly, with and without accumulation, over shapes with partial row tiles,
    /// partial column panels and one to three k blocks.
    func testPackedProductIsExactOnIntegers() {
        var generator = SeededGenerator(seed: 15)
        for (m, n, k) in [(1, 1, 1), (12, 32, 5), (13, 33, 7), (50, 131, 600), (25, 70, 1100)] {
            // Non-zero values, so no product is zero by accident.
            let a = (0..<(m * k)).map { _ in Float(Int.random(in: 1...3, using: &generator) * (Bool.random(using: &generator) ? 1 : -1)) }
            let b = (0..<(n * k)).map { _ in Float(Int.random(in: -3...3, using: &generator)) }
            var exact = [Float](repeating: 0, count: m * n)
            for i in 0..<m { for j in 0..<n { exact[i * n + j] = Float((0..<k).reduce(0) { $0 + Int(a[i * k + $1]) * Int(b[j * k + $1]) }) } }
            for threads in [1, 2, 3] {
                var c = [Float](repeating: .nan, count: m * n)
                PackedProduct.product(m, n, k, a, b, &c, ldc: n, accumulate: false, threads: threads)
                XCTAssertEqual(c, exact, "\(m)×\(n)×\(k), \(threads) threads")
                let base = (0..<(m * n)).map { Float($0 % 7) - 3 }
                var sum = base
                PackedProduct.product(m, n, k, a, b, &sum, ldc: n, accumulate: true, threads: threads)
                XCTAssertEqual(sum, zip(base, exact).map { $0 + $1 }, "\(m)×\(n)×\(k) accumulated, \(threads) threads")
            }
        }
    }

    /// Random values: within the sum's rounding bound of the Double product, the same bits at
    /// every thread count, and C's row stride honoured (the columns past n untouched).
    func testPackedProductRoundingAndThreads() {
        var generator = SeededGenerator(seed: 15)
        let (m, n, k, ldc) = (37, 100, 1030, 103)
        let a = (0..<(m * k)).map { _ in Float.random(in: -2...2, using: &generator) }
        let b = (0..<(n * k)).map { _ in Float.random(in: -1...1, using: &generator) }
        var first = [Float](repeating: -7, count: m * ldc)
        PackedProduct.product(m, n, k, a, b, &first, ldc: ldc, accumulate: false, threads: 1)
        for i in 0..<m {
            for j in 0..<ldc {
                guard j < n else { XCTAssertEqual(first[i * ldc + j], -7); continue }
                var sum = 0.0, magnitude = 0.0
                for l in 0..<k { sum += Double(a[i * k + l]) * Double(b[j * k + l]); magnitude += abs(Double(a[i * k + l]) * Double(b[j * k + l])) }
                XCTAssertLessThanOrEqual(abs(Double(first[i * ldc + j]) - sum), Double(k) * 0x1p-24 * magnitude, "element \(i), \(j)")
            }
        }
        for threads in [2, 3, 4] {
            var c = [Float](repeating: -7, count: m * ldc)
            PackedProduct.product(m, n, k, a, b, &c, ldc: ldc, accumulate: false, threads: threads)
            XCTAssertEqual(c.map(\.bitPattern), first.map(\.bitPattern), "\(threads) threads")
        }
    }

    /// log Σ exp against Double's, over rows shorter and longer than a vector, with -inf entries.
    func testLogSumExp() {
        var generator = SeededGenerator(seed: 15)
        for n in [1, 7, 8, 9, 49155] {
            var row = (0..<n).map { _ in Float.random(in: -30...20, using: &generator) }
            if n > 2 { row[1] = -.infinity }
            let top = Double(row.max()!)
            let expected = top + log(row.reduce(0.0) { $0 + exp(Double($1) - top) })
            XCTAssertEqual(Kernels.logSumExp(row, n), expected, accuracy: 2e-7 * max(1, abs(expected)), "n \(n)")
        }
        XCTAssertEqual(Kernels.logSumExp([-Float.infinity, 0, -Float.infinity], 3), 0)
    }
}
