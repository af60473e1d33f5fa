import QuantaAlgorithms
import QuantaCore
import QuantaIO
import QuantaModel
import TestSupport
import XCTest

/// The quantize pipeline writes the same bytes as before the seams redesign, for every preset,
/// whatever the thread count: the presets are written at 1, 2 and 3 threads in turn (3 splits
/// the rows unevenly) against checksums taken at 2.
final class PipelineBytesTests: XCTestCase {
    func testEveryPresetIsByteIdenticalToBeforeTheRedesign() throws {
        let expected = try String(contentsOfFile: TestSupport.path("Tests/Fixtures/quantize-sha256.tsv"), encoding: .utf8)
            .split(separator: "\n").map { $0.split(separator: "\t").map(String.init) }
        XCTAssertEqual(expected.count, 22)
        let folder = try TestSupport.temporaryFolder()
        let importance = try ImportanceMatrix.read(TestSupport.golden("austen-imatrix.gguf"))
        var outputs: [String] = []
        for (index, row) in expected.enumerated() {
            let withImportance = row[0].hasPrefix("imatrix-")
            let preset = try XCTUnwrap(GGUFPreset(name: String(row[0].dropFirst(withImportance ? 8 : 0))), row[0])
            let threads = 1 + index % 3
            let output = "\(folder)/\(row[0])-\(threads).gguf"
            _ = try GGUFExport(source: HuggingFaceSource(path: TestSupport.austenModel), preset: preset, options: QuantizationOptions(),
                               importance: withImportance ? importance : nil, threads: threads).run(output: output)
            outputs.append(output)
        }
        let sums = try TestSupport.run("/usr/bin/sha256sum", outputs)
        XCTAssertEqual(sums.status, 0, sums.stderr)
        let ours = sums.stdout.split(separator: "\n").map { String($0.prefix(64)) }
        XCTAssertEqual(ours.count, expected.count)
        for (row, (sum, output)) in zip(expected, zip(ours, outputs)) { XCTAssertEqual(sum, row[1], output) }
    }
}
