import QuantaCore
import QuantaIO
import TestSupport
import XCTest

/// Reading both importance-matrix formats: counts and names checked before use, and a GGUF
/// round trip that changes nothing. The refusals were found by Fuzz/Sources/fuzz-imatrix.
final class ImportanceMatrixTests: XCTestCase {
    func legacy(_ entries: [(String, Int32, [Float])], lastChunk: Int32? = nil) throws -> String {
        var w = ByteWriter()
        w.integer(Int32(entries.count))
        for (name, ncall, values) in entries {
            w.integer(Int32(name.utf8.count))
            w.raw(name.utf8)
            w.integer(ncall)
            w.integer(Int32(values.count))
            for v in values { w.float(v) }
        }
        if let lastChunk {
            w.integer(lastChunk)
            w.integer(Int32(1))
            w.raw("d".utf8)
        }
        let path = try TestSupport.temporaryFolder() + "/imatrix.dat"
        try TestSupport.write(w.bytes, to: path)
        return path
    }

    func testLegacyRefusals() throws {
        let twice = try legacy([("blk.0.ffn_down.weight", 4, [1, 2]), ("blk.0.ffn_down.weight", 4, [1, 2, 3])])
        XCTAssertThrowsError(try ImportanceMatrix.read(twice)) { error in
            XCTAssertEqual("\(error)", "\(twice): entry 'blk.0.ffn_down.weight' appears twice")
        }
        let negative = try legacy([("w", 4, [1, 2])], lastChunk: -3)
        XCTAssertThrowsError(try ImportanceMatrix.read(negative)) { error in
            XCTAssertEqual("\(error)", "\(negative): last chunk -3 is negative")
        }
        let fine = try ImportanceMatrix.read(try legacy([("w", 4, [4, 8])], lastChunk: 4))
        XCTAssertEqual(fine.importance(for: "w"), [1, 2])
        XCTAssertEqual(fine.chunkCount, 4)
        XCTAssertEqual(fine.datasets, ["d"])
    }

    func testGGUFRefusals() throws {
        let folder = try TestSupport.temporaryFolder()
        // Zero experts: no importance values for 4 columns.
        let zero = folder + "/zero.gguf"
        try GGUFWriter.write(to: zero, metadata: [("general.type", .string("imatrix"))], tensors: [
            .init(name: "w.in_sum2", dimensions: [4, 0], type: .f32, bytes: []), .init(name: "w.counts", dimensions: [0], type: .f32, bytes: []),
        ])
        XCTAssertThrowsError(try ImportanceMatrix.read(zero)) { error in
            XCTAssertEqual("\(error)", "\(zero): tensor 'w.in_sum2': in_sum2/counts must be F32 [columns, experts] and [experts]")
        }
        let chunks = folder + "/chunks.gguf"
        try GGUFWriter.write(to: chunks, metadata: [("general.type", .string("imatrix")), ("imatrix.chunk_count", .int32(-1))], tensors: [])
        XCTAssertThrowsError(try ImportanceMatrix.read(chunks)) { error in
            XCTAssertEqual("\(error)", "\(chunks): imatrix.chunk_count: must be an integer in 0...4294967295, got -1")
        }
        let long = ImportanceMatrix(entries: [.init(name: String(repeating: "n", count: 60), columns: 2, sums: [1, 2], counts: [1])],
                                    datasets: [], chunkCount: 1, chunkSize: 8)
        XCTAssertThrowsError(try long.writeGGUF(to: folder + "/long.gguf")) { error in
            XCTAssertEqual("\(error)", "tensor '\(String(repeating: "n", count: 60)).in_sum2': name is 68 bytes; ggml allows at most 63")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/long.gguf"))
    }

    /// llama-imatrix's own file (the golden austen matrix), written back as GGUF by Quanta and read again: every bit equal.
    func testGGUFRoundTripOfLlamaImatrix() throws {
        let original = try ImportanceMatrix.read(TestSupport.path("Tests/Fixtures/golden/austen-llama/austen-imatrix.gguf"))
        XCTAssertEqual(original.entries.count, 42)
        let copy = try TestSupport.temporaryFolder() + "/copy.gguf"
        try original.writeGGUF(to: copy)
        let again = try ImportanceMatrix.read(copy)
        XCTAssertEqual(again.entries, original.entries)
        XCTAssertEqual(again.chunkCount, original.chunkCount)
        XCTAssertEqual(again.chunkSize, original.chunkSize)
        XCTAssertEqual(again.datasets, original.datasets)
    }
}
