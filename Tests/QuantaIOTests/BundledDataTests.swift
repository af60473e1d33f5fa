import Foundation
import TestSupport
import XCTest

/// The bundled model and texts are the files their provenance notes describe.
final class BundledDataTests: XCTestCase {
    private func sha256(_ path: String) throws -> String {
        let run = try TestSupport.run("/usr/bin/sha256sum", [path])
        XCTAssertEqual(run.status, 0, run.stderr)
        return String(run.stdout.prefix(64))
    }

    func testCalibrationManifestMatchesTheFiles() throws {
        let manifest = try String(contentsOfFile: TestSupport.path("Calibration/manifest.tsv"), encoding: .utf8)
        let rows = manifest.split(separator: "\n").dropFirst().map { $0.split(separator: "\t").map(String.init) }
        XCTAssertEqual(rows.count, 4)
        for row in rows {
            XCTAssertEqual(row.count, 6, row.joined(separator: " | "))
            let path = TestSupport.path("Calibration/" + row[0])
            let size = try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int
            XCTAssertEqual(size, Int(row[4]), row[0])
            XCTAssertEqual(try sha256(path), row[5], row[0])
        }
    }

    func testBundledModelMatchesItsReadme() throws {
        XCTAssertEqual(try sha256(TestSupport.austenModel + "/model.safetensors"),
                       "ab9d99867e156723a67cc5a456c51288057841593288e2ef2b3847625ea68eb0")
        XCTAssertEqual(try sha256(TestSupport.austenModel + "/tokenizer.json"),
                       "d3dfd18c7ac96351bc703a55f93205b7c28ec88bd1bd7c4447844e726f5e5dca")
    }
}
