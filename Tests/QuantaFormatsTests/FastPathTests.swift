@testable import QuantaFormats
import TestSupport
import XCTest

/// The faster paths produce the reference paths' bits.
final class FastPathTests: XCTestCase {
    func testMakeQKXQuantsMatchesReference() {
        var generator = SplitMix64(seed: 11)
        let cases: [(n: Int, nmax: Int, rmin: Float, rdelta: Float, nstep: Int, mad: Bool)] = [
            (32, 15, -1, 0.1, 20, false), (32, 31, -0.5, 0.1, 15, false), (16, 3, -0.5, 0.1, 15, true),
            (32, 15, -0.9, 0.05, 36, false), (32, 31, -0.9, 0.05, 36, false), (16, 3, -0.9, 0.05, 36, false), (32, 15, -1, 0.1, 0, false),
        ]
        var x = [Float](repeating: 0, count: 32), w = [Float](repeating: 0, count: 32)
        var checked = 0
        for trial in 0..<4000 {
            let c = cases[trial % cases.count]
            let shift = Float.random(in: -0.5...0.5, using: &generator)
            for i in 0..<c.n {
                x[i] = Float.random(in: -1...1, using: &generator) * (i % 7 == 0 ? 5 : 1) + shift
                if trial % 13 == 0 { x[i] = abs(x[i]) + 0.25 }  // all positive: min clamps to 0
                w[i] = trial % 3 == 0 ? x[i] * x[i] : Float.random(in: 0...2, using: &generator)
            }
            if trial % 101 == 0 { for i in 0..<c.n { x[i] = 0.5 } }  // flat block
            var L1 = [UInt8](repeating: 0, count: 32), L2 = [UInt8](repeating: 0, count: 32)
            var A1 = [UInt8](repeating: 0, count: 128), A2 = [UInt8](repeating: 0, count: 128)
            var m1: Float = 0, m2: Float = 0
            let s1 = makeQKXQuantsReference(c.n, c.nmax, x, w, &L1, &m1, &A1, c.rmin, c.rdelta, c.nstep, c.mad)
            let s2 = makeQKXQuants(c.n, c.nmax, x, w, &L2, &m2, &A2, c.rmin, c.rdelta, c.nstep, c.mad)
            XCTAssertEqual(s1.bitPattern, s2.bitPattern, "trial \(trial) scale")
            XCTAssertEqual(m1.bitPattern, m2.bitPattern, "trial \(trial) min")
            XCTAssertEqual(L1, L2, "trial \(trial) levels")
            checked += 1
        }
        XCTAssertEqual(checked, 4000)
    }
}

final class QuantizationInputTests: XCTestCase {
    func testNonFiniteInputIsAnErrorNotACrash() {
        var values = [Float](repeating: 0.5, count: 64)
        values[37] = .nan
        for type in Quantization.quantizableTypes where type.blockSize <= 32 {
            XCTAssertThrowsError(try Quantization.quantize(type, values, rowLength: 32), type.name) { error in
                XCTAssertEqual("\(error)", "row 1, column 5: holds nan, not a finite number", type.name)
            }
        }
        values[37] = -.infinity
        XCTAssertThrowsError(try Quantization.quantize(.q4_0, values, rowLength: 64)) { error in
            XCTAssertEqual("\(error)", "row 0, column 37: holds -inf, not a finite number")
        }
    }
}
