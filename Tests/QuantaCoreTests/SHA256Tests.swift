import Foundation
import QuantaCore
import TestSupport
import XCTest

/// SHA-256 against the FIPS 180-4 / NIST example vectors and against coreutils'
/// `sha256sum` on pseudo-random data, one-shot and split into random pieces.
final class SHA256Tests: XCTestCase {
    private static let sha256sum = "/usr/bin/sha256sum"

    private func digestHex(_ bytes: [UInt8]) -> String {
        SHA256.hex(bytes.withUnsafeBytes { SHA256.hash($0) })
    }

    /// Hashes `bytes` incrementally, cutting it at `cuts` (sorted offsets).
    private func splitHex(_ bytes: [UInt8], cuts: [Int]) -> String {
        var hasher = SHA256()
        var start = 0
        for cut in cuts + [bytes.count] {
            bytes[start ..< cut].withUnsafeBytes { hasher.update($0) }
            start = cut
        }
        return SHA256.hex(hasher.finalize())
    }

    /// sha256sum's hex digest of `bytes`, through a temporary file.
    private func referenceHex(_ bytes: [UInt8], in folder: String, name: String = "data.bin") throws -> String {
        let path = folder + "/" + name
        try TestSupport.write(bytes, to: path)
        let result = try TestSupport.run(Self.sha256sum, ["-b", path])
        XCTAssertEqual(result.status, 0, result.stderr)
        let hex = String(result.stdout.prefix(while: { $0 != " " }))
        XCTAssertEqual(hex.count, 64, "unexpected sha256sum output: \(result.stdout)")
        return hex
    }

    private func requireSha256sum() throws {
        guard FileManager.default.isExecutableFile(atPath: Self.sha256sum) else {
            throw XCTSkip("\(Self.sha256sum) not available")
        }
    }

    // MARK: - FIPS 180-4 / NIST vectors

    func testEmpty() {
        XCTAssertEqual(digestHex([]), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        var hasher = SHA256()
        hasher.update([UInt8]())
        XCTAssertEqual(SHA256.hex(hasher.finalize()), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    }

    func testABC() {
        XCTAssertEqual(digestHex(Array("abc".utf8)), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(SHA256.hash(Array("abc".utf8)).count, 32)
    }

    func testTwoBlockMessage() {
        let message = Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)
        XCTAssertEqual(message.count * 8, 448)
        XCTAssertEqual(digestHex(message), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        for cut in 0 ... message.count {
            XCTAssertEqual(splitHex(message, cuts: [cut]),
                           "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1", "cut at \(cut)")
        }
    }

    func testOneMillionA() {
        let expected = "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"
        let chunk = [UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000)
        XCTAssertEqual(digestHex(chunk), expected)

        // The same million bytes fed in chunks of varied sizes (1, 3, 63, 64, 65, ... bytes).
        for sizes in [[1], [3, 61, 64, 65, 127, 128, 129, 1000], [63], [64], [4096, 1, 7], [999_999]] {
            var hasher = SHA256()
            var fed = 0
            var index = 0
            while fed < chunk.count {
                let size = min(sizes[index % sizes.count], chunk.count - fed)
                chunk[fed ..< fed + size].withUnsafeBytes { hasher.update($0) }
                fed += size
                index += 1
            }
            XCTAssertEqual(SHA256.hex(hasher.finalize()), expected, "chunk sizes \(sizes)")
        }
    }

    func testHex() {
        XCTAssertEqual(SHA256.hex([]), "")
        XCTAssertEqual(SHA256.hex([0x00, 0x0f, 0xa5, 0xff]), "000fa5ff")
    }

    func testIntermediateDigestOfCopy() {
        var hasher = SHA256()
        hasher.update(Array("ab".utf8))
        var copy = hasher
        XCTAssertEqual(SHA256.hex(copy.finalize()), "fb8e20fc2e4c3f248c60c39bd652f3c1347298bb977b8b4d5903b85055620603")
        hasher.update(Array("c".utf8))
        XCTAssertEqual(SHA256.hex(hasher.finalize()), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    // MARK: - Against sha256sum

    func testLengths0To200AgainstSha256sum() throws {
        try requireSha256sum()
        let folder = try TestSupport.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        var rng = SplitMix64(seed: 0x5348_4132_3536)
        let messages = (0 ... 200).map { length in (0 ..< length).map { _ in UInt8.random(in: 0 ... 255, using: &rng) } }
        // One sha256sum run over all 201 files (a process per file costs ~50 ms each).
        var paths: [String] = []
        for (length, bytes) in messages.enumerated() {
            let path = folder + "/len\(length).bin"
            try TestSupport.write(bytes, to: path)
            paths.append(path)
        }
        let result = try TestSupport.run(Self.sha256sum, ["-b"] + paths)
        XCTAssertEqual(result.status, 0, result.stderr)
        let lines = result.stdout.split(separator: "\n")
        XCTAssertEqual(lines.count, messages.count)
        for (length, (bytes, line)) in zip(messages, lines).enumerated() {
            XCTAssertTrue(line.hasSuffix("*" + paths[length]), "sha256sum line order: \(line)")
            let expected = String(line.prefix(64))
            XCTAssertEqual(digestHex(bytes), expected, "one-shot, length \(length)")
            XCTAssertEqual(SHA256.hex(SHA256.hash(bytes)), expected, "[UInt8] one-shot, length \(length)")
            for trial in 0 ..< 8 {
                let pieces = Int.random(in: 1 ... 6, using: &rng)
                let cuts = (1 ..< pieces).map { _ in Int.random(in: 0 ... length, using: &rng) }.sorted()
                XCTAssertEqual(splitHex(bytes, cuts: cuts), expected, "length \(length), trial \(trial), cuts \(cuts)")
            }
        }
    }

    func testFiveMegabytesAgainstSha256sum() throws {
        try requireSha256sum()
        let folder = try TestSupport.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        var rng = SplitMix64(seed: 2024)
        let count = 5 * 1024 * 1024 + 37
        var bytes = [UInt8](repeating: 0, count: count)
        bytes.withUnsafeMutableBytes { raw in
            var i = 0
            while i + 8 <= raw.count {
                raw.storeBytes(of: rng.next(), toByteOffset: i, as: UInt64.self)
                i += 8
            }
            while i < raw.count { raw[i] = UInt8(truncatingIfNeeded: rng.next()); i += 1 }
        }
        let expected = try referenceHex(bytes, in: folder)
        XCTAssertEqual(digestHex(bytes), expected)

        var cuts: [Int] = []
        var position = 0
        while true {
            position += Int.random(in: 1 ... 300_000, using: &rng)
            if position >= count { break }
            cuts.append(position)
        }
        XCTAssertEqual(splitHex(bytes, cuts: cuts), expected, "\(cuts.count + 1) random pieces")
    }
}
