@testable import quanta
import TestSupport
import XCTest

/// OpenBLAS's kernel for the CPU, and the shared libraries a run opens: OpenBLAS and HDF5 only
/// when the command needs them.
final class BLASKernelTests: XCTestCase {
    func testCoreTypeFollowsTheVectorFlags() {
        XCTAssertEqual(BLASKernel.coreType(flags: ["fpu", "avx2", "fma", "avx512f", "avx512bw", "avx512vl"]), "SkylakeX")
        XCTAssertEqual(BLASKernel.coreType(flags: ["avx2", "fma", "avx512f"]), "Haswell", "AVX-512 without BW and VL")
        XCTAssertEqual(BLASKernel.coreType(flags: ["avx2", "fma"]), "Haswell")
        XCTAssertNil(BLASKernel.coreType(flags: ["avx", "avx2"]))
        XCTAssertNil(BLASKernel.coreType(flags: []))
    }

    /// The libraries the dynamic loader opened in a run (LD_DEBUG=libs reports each as "calling init: PATH").
    private func openedLibraries(_ arguments: [String]) throws -> String {
        let run = try TestSupport.run(try TestSupport.quantaExecutable(), arguments, environment: ["LD_DEBUG": "libs"])
        XCTAssertEqual(run.status, 0, run.stderr)
        return run.stderr.split(separator: "\n").filter { $0.contains("calling init:") }.joined(separator: "\n")
    }

    func testRoundingOpensNeitherOpenBLASNorHDF5AndEvalOpensOpenBLAS() throws {
        #if os(Linux)
        let folder = try TestSupport.temporaryFolder()
        let model = TestSupport.path("Models/austen-llama")
        let rounding = try openedLibraries(["quantize", model, folder + "/q.gguf", "Q4_0"])
        XCTAssertFalse(rounding.contains("libopenblas"), rounding)
        XCTAssertFalse(rounding.contains("hdf5"), rounding)
        XCTAssertTrue(rounding.contains("libswiftCore"), "LD_DEBUG reports the libraries: \(rounding)")
        let text = TestSupport.path("Calibration/austen-persuasion-eval.txt")
        let eval = try openedLibraries(["eval", folder + "/q.gguf", "--text", text, "--ctx", "64", "--chunks", "1"])
        XCTAssertTrue(eval.contains("libopenblas"), eval)
        XCTAssertFalse(eval.contains("hdf5"), eval)
        #endif
    }
}
