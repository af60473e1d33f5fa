@testable import QuantaModel
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
}
