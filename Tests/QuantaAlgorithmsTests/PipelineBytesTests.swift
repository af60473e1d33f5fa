import QuantaAlgorithms
import QuantaCore
import QuantaIO
import QuantaModel
import TestSupport
import XCTest

/// The quantize pipeline writes the same bytes as before the seams redesign, for every preset.
final class PipelineBytesTests: XCTestCase {
    func testEveryPresetIsByteIdenticalToBeforeTheRedesign() throws {
        let expected = try String(contentsOfFile: TestSupport.path("Tests/Fixtures/quantize-sha256.tsv"), encoding: .utf8)
            .split(separator: "\n").map { $0.split(separator: "\t").map(String.init) }
        XCTAssertEqual(expected.count, 22)
        let folder = try TestSupport.temporaryFolder()
        let importance = try ImportanceMatrix.read(TestSupport.golden("austen-imatrix.gguf"))
        var outputs: [String] = []
        for row in expected {
            let withImportance = row[0].hasPrefix("imatrix-")
            let preset = try XCTUnwrap(GGUFPreset(name: String(row[0].dropFirst(withImportance ? 8 : 0))), row[0])
            let output = "\(folder)/\(row[0]).gguf"
            _ = try GGUFExport(source: HuggingFaceSource(path: TestSupport.austenModel), preset: preset, options: QuantizationOptions(),
                               importance: withImportance ? importance : nil, threads: 2).run(output: output)
            outputs.append(output)
        }
        let sums = try TestSupport.run("/usr/bin/sha256sum", outputs)
        XCTAssertEqual(sums.status, 0, sums.stderr)
        let ours = sums.stdout.split(separator: "\n").map { String($0.prefix(64)) }
        XCTAssertEqual(ours.count, expected.count)
        for (row, sum) in zip(expected, ours) { XCTAssertEqual(sum, row[1], row[0]) }
    }
}
