@testable import quanta
import XCTest

/// Which command lines re-execute `quanta` to pick OpenBLAS's kernel: only plain GGUF rounding skips it.
final class BLASKernelTests: XCTestCase {
    func testOnlyRoundingToGGUFSkipsTheReexecution() {
        XCTAssertFalse(BLASKernel.needsBLAS(["quanta", "quantize", "in.gguf", "out.gguf", "Q4_K_M"]))
        XCTAssertFalse(BLASKernel.needsBLAS(["quanta", "quantize", "in", "out.gguf", "IQ2_XS", "--imatrix", "m.gguf", "--pure",
                                             "--threads=2", "--output-tensor-type", "q8_0", "--json"]))
        XCTAssertTrue(BLASKernel.needsBLAS(["quanta", "quantize", "in", "out", "--format", "gptq", "--method", "gptq"]))
        XCTAssertTrue(BLASKernel.needsBLAS(["quanta", "quantize", "in", "out.gguf", "Q4_K_M", "--target-size", "3000000"]))
        XCTAssertTrue(BLASKernel.needsBLAS(["quanta", "quantize", "in", "out.gguf", "--recipe", "r.yaml"]))
        XCTAssertTrue(BLASKernel.needsBLAS(["quanta", "quantize", "in", "out", "--group-size", "-1"]), "a negative value counts as an option")
        XCTAssertTrue(BLASKernel.needsBLAS(["quanta", "eval", "model", "--text", "t.txt"]))
        XCTAssertTrue(BLASKernel.needsBLAS(["quanta", "calibrate", "model"]))
        XCTAssertTrue(BLASKernel.needsBLAS(["quanta"]))
    }
}
