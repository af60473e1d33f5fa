import XCTest
@testable import QuantaIO

/// `decodeUTF8` and `firstInvalidUTF8` (Quanta's own validator, used on every GGUF string)
/// against the standard library's strict `String(validating:as:)`.
final class UTF8ValidationTests: XCTestCase {
    private func ours(_ bytes: [UInt8]) -> (String?, Int?) {
        bytes.withUnsafeBytes { (decodeUTF8($0), firstInvalidUTF8($0)) }
    }

    private func reference(_ bytes: [UInt8]) -> String? { String(validating: bytes, as: UTF8.self) }

    func testBoundariesOfTable3_7() {
        let valid: [[UInt8]] = [
            [0x00], [0x7F], [0xC2, 0x80], [0xDF, 0xBF], [0xE0, 0xA0, 0x80], [0xE0, 0xBF, 0xBF],
            [0xE1, 0x80, 0x80], [0xEC, 0xBF, 0xBF], [0xED, 0x80, 0x80], [0xED, 0x9F, 0xBF],
            [0xEE, 0x80, 0x80], [0xEF, 0xBF, 0xBF], [0xF0, 0x90, 0x80, 0x80], [0xF0, 0xBF, 0xBF, 0xBF],
            [0xF1, 0x80, 0x80, 0x80], [0xF3, 0xBF, 0xBF, 0xBF], [0xF4, 0x80, 0x80, 0x80], [0xF4, 0x8F, 0xBF, 0xBF],
            Array("Ġthe ĊĊ 日本語 🙂".utf8),
        ]
        for bytes in valid {
            let (text, bad) = ours(bytes)
            XCTAssertEqual(text, reference(bytes), "\(bytes)")
            XCTAssertNotNil(text, "\(bytes)")
            XCTAssertNil(bad, "\(bytes)")
        }
        // Each with the offset of the first invalid sequence.
        let invalid: [([UInt8], Int)] = [
            ([0x80], 0), ([0xBF], 0), ([0xC0, 0x80], 0), ([0xC1, 0xBF], 0), ([0x41, 0xC2], 1), ([0xC2, 0x41], 0),
            ([0xE0, 0x9F, 0xBF], 0), ([0xED, 0xA0, 0x80], 0), ([0xED, 0xBF, 0xBF], 0), ([0xE1, 0x80], 0),
            ([0xE1, 0x80, 0xC0], 0), ([0xF0, 0x8F, 0xBF, 0xBF], 0), ([0xF4, 0x90, 0x80, 0x80], 0),
            ([0xF5, 0x80, 0x80, 0x80], 0), ([0xFF], 0), ([0xF1, 0x80, 0x80, 0x7F], 0), ([0x61, 0x62, 0xF1, 0x80, 0x80], 2),
        ]
        for (bytes, offset) in invalid {
            let (text, bad) = ours(bytes)
            XCTAssertNil(reference(bytes), "\(bytes)")
            XCTAssertNil(text, "\(bytes)")
            XCTAssertEqual(bad, offset, "\(bytes)")
        }
    }

    func testAgreesWithTheStandardLibraryOnRandomBytes() {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next() -> UInt64 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return state >> 33
        }
        // Bytes drawn mostly from lead and continuation ranges, so that many strings are valid.
        let alphabet: [UInt8] = [0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC2, 0xDF, 0xE0, 0xE1,
                                 0xED, 0xEF, 0xF0, 0xF1, 0xF4, 0xF5, 0xFF]
        var validSeen = 0
        for _ in 0..<20000 {
            let count = Int(next() % 7)
            let bytes = (0..<count).map { _ in alphabet[Int(next() % UInt64(alphabet.count))] }
            let (text, _) = ours(bytes)
            XCTAssertEqual(text, reference(bytes), "\(bytes)")
            if text != nil { validSeen += 1 }
        }
        XCTAssertGreaterThan(validSeen, 1000)
    }
}
