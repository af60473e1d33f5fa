import QuantaCore
import TestSupport
import XCTest

final class GGMLTypeTests: XCTestCase {
    /// Block sizes recomputed from ggml-common.h's struct fields (half = 2 bytes, QK_K = 256).
    func testBlockBytesMatchGGMLStructs() {
        let qk = 256
        let expected: [GGMLType: Int] = [
            .q4_0: 2 + 16, .q4_1: 2 * 2 + 16, .q5_0: 2 + 4 + 16, .q5_1: 2 * 2 + 4 + 16,
            .q8_0: 2 + 32, .q8_1: 2 * 2 + 32,
            .q2_K: 2 * 2 + qk / 16 + qk / 4, .q3_K: 2 + qk / 4 + qk / 8 + 12, .q4_K: 2 * 2 + 12 + qk / 2,
            .q5_K: 2 * 2 + 12 + qk / 8 + qk / 2, .q6_K: 2 + qk / 16 + 3 * qk / 4, .q8_K: 4 + qk + qk / 16 * 2,
            .iq2_XXS: 2 + qk / 8 * 2, .iq2_XS: 2 + qk / 8 * 2 + qk / 32, .iq3_XXS: 2 + 3 * qk / 8,
            .iq1_S: 2 + qk / 8 + qk / 16, .iq4_NL: 2 + 16, .iq3_S: 2 + qk / 4 + qk / 32 + qk / 8 + qk / 64,
            .iq2_S: 2 + qk / 4 + qk / 16, .iq4_XS: 2 + 2 + qk / 64 + qk / 2, .iq1_M: qk / 8 + qk / 16 + qk / 32,
            .tq1_0: (qk - 4 * qk / 64) / 5 + qk / 64 + 2, .tq2_0: qk / 4 + 2, .mxfp4: 1 + 16,
        ]
        for (type, bytes) in expected {
            XCTAssertEqual(type.bytesPerBlock, bytes, type.name)
        }
        XCTAssertEqual(GGMLType.q4_K.bitsPerWeight, 4.5)
        XCTAssertEqual(GGMLType.q6_K.bitsPerWeight, 6.5625)
        XCTAssertEqual(GGMLType(name: "q4_k"), .q4_K)
        XCTAssertNil(GGMLType(name: "Q4_2"))
        XCTAssertEqual(GGMLType.q4_K.rowBytes(576), nil)
        XCTAssertEqual(GGMLType.q4_0.rowBytes(576), 18 * 18)
    }

    /// The table against gguf-py's GGML_QUANT_SIZES (ids, names, block and byte sizes).
    func testTableMatchesGGUFPy() throws {
        let output = try TestSupport.oracle("""
            from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType as T
            for t in T: print(t.value, t.name, *GGML_QUANT_SIZES[t])
            """)
        var seen = 0
        for line in output.split(separator: "\n") {
            let fields = line.split(separator: " ").map(String.init)
            let id = UInt32(fields[0])!
            guard let type = GGMLType(rawValue: id) else {
                XCTFail("gguf-py knows type \(fields[1]) (id \(id)) that Quanta does not")
                continue
            }
            XCTAssertEqual(type.name, fields[1])
            XCTAssertEqual(type.blockSize, Int(fields[2]), type.name)
            // gguf-py lists Q8_1 as 40 bytes; ggml's block_q8_1 is two halves + 32 int8 = 36.
            if type != .q8_1 { XCTAssertEqual(type.bytesPerBlock, Int(fields[3]), type.name) }
            seen += 1
        }
        XCTAssertEqual(seen, GGMLType.allCases.count)
    }
}
