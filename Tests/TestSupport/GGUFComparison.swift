import QuantaIO
import XCTest

extension TestSupport {
    /// Asserts that `ours` holds the tensors of `theirs` (the same names; for each, the same
    /// dimensions, type and bytes) and the same metadata under `keyPrefixes` (the same keys in
    /// the same order, the same values). Failures name the tensor or key.
    public static func assertSameGGUF(_ ours: GGUFFile, _ theirs: GGUFFile, keyPrefixes: [String],
                                      file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(Set(ours.tensors.map(\.name)), Set(theirs.tensors.map(\.name)), "tensor names", file: file, line: line)
        for info in theirs.tensors {
            guard let mine = ours.tensor(info.name) else { continue }
            XCTAssertEqual(mine.dimensions, info.dimensions, info.name, file: file, line: line)
            XCTAssertEqual(mine.type, info.type, info.name, file: file, line: line)
            XCTAssertTrue(ours.rawBytes(mine).elementsEqual(theirs.rawBytes(info)), "\(info.name): bytes differ", file: file, line: line)
        }
        func keys(_ f: GGUFFile) -> [(key: String, value: GGUFValue)] {
            f.metadata.filter { entry in keyPrefixes.contains { entry.key.hasPrefix($0) } }
        }
        XCTAssertEqual(keys(ours).map(\.key), keys(theirs).map(\.key), "metadata keys", file: file, line: line)
        for (key, value) in keys(theirs) { XCTAssertEqual(ours[key], value, key, file: file, line: line) }
    }
}
