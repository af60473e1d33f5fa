@testable import QuantaModel
import XCTest

/// The vector exponential (ggml's algorithm) against the C library's expf.
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
}
