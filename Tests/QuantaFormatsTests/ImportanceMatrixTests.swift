import QuantaCore
import QuantaIO
import TestSupport
import XCTest

final class ImportanceMatrixTests: XCTestCase {
    func testGGUFAndLegacyGiveTheSameStatistics() throws {
        let gguf = try ImportanceMatrix.read(TestSupport.golden("austen-imatrix.gguf"))
        let legacy = try ImportanceMatrix.read(TestSupport.golden("austen-imatrix.dat"))
        XCTAssertEqual(gguf.entries.count, 42)
        XCTAssertEqual(gguf.entries.map(\.name), legacy.entries.map(\.name))
        XCTAssertEqual(gguf.chunkCount, 64)
        XCTAssertEqual(gguf.chunkSize, 256)
        XCTAssertEqual(legacy.chunkCount, 64)
        XCTAssertEqual(gguf.datasets, legacy.datasets)
        XCTAssertEqual(gguf.entries[0].counts, [16384])
        for (a, b) in zip(gguf.entries, legacy.entries) {
            XCTAssertEqual(a.importance.map(\.bitPattern), b.importance.map(\.bitPattern), a.name)
        }
        XCTAssertEqual(gguf.importance(for: "blk.0.attn_k.weight")?.prefix(3).map { ($0 * 1e6).rounded() }, [749429, 651324, 628995])
    }

    func testWritersReproduceLlamaImatrixBytes() throws {
        let folder = try TestSupport.temporaryFolder()
        let matrix = try ImportanceMatrix.read(TestSupport.golden("austen-imatrix.gguf"))
        try matrix.writeGGUF(to: folder + "/m.gguf")
        try matrix.writeLegacy(to: folder + "/m.dat")
        XCTAssertEqual(try TestSupport.read(folder + "/m.gguf"), try TestSupport.read(TestSupport.golden("austen-imatrix.gguf")))
        XCTAssertEqual(try TestSupport.read(folder + "/m.dat"), try TestSupport.read(TestSupport.golden("austen-imatrix.dat")))
        XCTAssertEqual(try ImportanceMatrix.read(folder + "/m.dat").entries.map(\.importance), matrix.entries.map(\.importance))
    }
}
