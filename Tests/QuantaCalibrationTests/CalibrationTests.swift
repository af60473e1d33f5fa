import QuantaCalibration
import QuantaCore
import QuantaIO
import QuantaModel
import TestSupport
import XCTest

final class CalibrationTests: XCTestCase {
    func sequences(_ sampler: CalibrationSampler, _ path: String = "Calibration/calib-c4.txt") throws -> [[Int32]] {
        let tokenizer = try HuggingFaceSource(path: TestSupport.austenModel).tokenizer()
        return try sampler.sequences(CalibrationData(path: path.hasPrefix("/") ? path : TestSupport.path(path)), tokenizer: tokenizer, bos: 0)
    }

    func testSamplersAreSeededAndShaped() throws {
        let a = try sequences(.randomWindows(samples: 8, length: 64, seed: 7))
        XCTAssertEqual(a.count, 8)
        XCTAssertTrue(a.allSatisfy { $0.count == 64 && $0[0] == 0 })
        XCTAssertEqual(try sequences(.randomWindows(samples: 8, length: 64, seed: 7)), a)
        XCTAssertNotEqual(try sequences(.randomWindows(samples: 8, length: 64, seed: 8)), a)
        // Packed: the C4 lines as JSON-lines documents.
        let lines = try String(contentsOfFile: TestSupport.path("Calibration/calib-c4.txt"), encoding: .utf8).split(separator: "\n").prefix(200)
        let jsonl = try TestSupport.temporaryFolder() + "/c4.jsonl"
        try TestSupport.write(Array(lines.map { JSONValue.object([("text", .string(String($0)))]).serialized() }.joined(separator: "\n").utf8), to: jsonl)
        let packed = try sequences(.packed(samples: 4, length: 128, seed: 1), jsonl)
        XCTAssertEqual(packed.map(\.count), [128, 128, 128, 128])
        XCTAssertEqual(packed[0][0], 0, "packed documents start with BOS")
        XCTAssertEqual(try sequences(.packed(samples: 4, length: 128, seed: 1), jsonl), packed)
        XCTAssertNotEqual(try sequences(.packed(samples: 4, length: 128, seed: 2), jsonl), packed)
        let chunks = try sequences(.sequential(context: 100, chunks: 3))
        XCTAssertEqual(chunks.count, 3)
        XCTAssertTrue(chunks.allSatisfy { $0.count == 100 && $0[0] == 0 })
        // Sequential chunks are the token stream cut in order (BOS first, then each chunk's first token replaced).
        let tokenizer = try HuggingFaceSource(path: TestSupport.austenModel).tokenizer()
        let stream = [Int32(0)] + tokenizer.encode(try CalibrationData(path: TestSupport.path("Calibration/calib-c4.txt")).documents[0])
        XCTAssertEqual(Array(chunks[1].dropFirst()), Array(stream[101..<200]))
    }

    func testGeneratorIsTheSameEverywhere() {
        var g = SeededGenerator(seed: 42)
        XCTAssertEqual([g.next(), g.next()], [13679457532755275413, 2949826092126892291])
        var h = SeededGenerator(seed: 42)
        XCTAssertEqual((0..<5).map { _ in h.below(10) }, [3, 1, 8, 4, 0])
    }

    func testJSONLinesAndErrors() throws {
        let folder = try TestSupport.temporaryFolder()
        try TestSupport.write(Array("{\"text\": \"one\"}\n\n{\"text\": \"two\", \"id\": 2}\n".utf8), to: folder + "/a.jsonl")
        let data = try CalibrationData(path: folder + "/a.jsonl")
        XCTAssertEqual(data.documents, ["one", "two"])
        try TestSupport.write(Array("{\"text\": \"one\"}\n{\"body\": 1}\n".utf8), to: folder + "/b.jsonl")
        XCTAssertThrowsError(try CalibrationData(path: folder + "/b.jsonl")) {
            XCTAssertEqual("\($0)", "\(folder)/b.jsonl: line 2: has no string \"text\" member")
        }
        try TestSupport.write([0xFF, 0xFE], to: folder + "/c.txt")
        XCTAssertThrowsError(try CalibrationData(path: folder + "/c.txt")) { XCTAssertEqual("\($0)", "\(folder)/c.txt: is not valid UTF-8") }
        try TestSupport.write(Array("short text".utf8), to: folder + "/d.txt")
        let tokenizer = try HuggingFaceSource(path: TestSupport.austenModel).tokenizer()
        XCTAssertThrowsError(try CalibrationSampler.randomWindows(samples: 1, length: 64, seed: 0)
            .sequences(CalibrationData(path: folder + "/d.txt"), tokenizer: tokenizer, bos: nil)) {
            XCTAssertEqual("\($0)", "\(folder)/d.txt: no document has more than 64 tokens")
        }
    }

    /// Statistics do not depend on the thread count, and the Gram matrix's diagonal is the sum of x^2.
    func testStatisticsAreDeterministic() throws {
        let source = try HuggingFaceSource(path: TestSupport.austenModel)
        let input = try sequences(.randomWindows(samples: 6, length: 48, seed: 3))
        func run(threads: Int) throws -> [InputStatistics] {
            let runner = try BlockRunner(source: source, sequences: input)
            runner.threads = threads
            runner.batchRows = 100
            var all: [InputStatistics] = []
            try runner.run(onBlock: { all += $0.statistics; return nil }, onHead: { all.append($0) })
            return all
        }
        let one = try run(threads: 1), two = try run(threads: 2)
        XCTAssertEqual(one.count, 6 * 4 + 1)
        for (a, b) in zip(one, two) {
            XCTAssertEqual(a.name, b.name)
            XCTAssertEqual(a.tokens, 6 * 48)
            XCTAssertEqual(a.sumSquares, b.sumSquares, a.name)
            XCTAssertEqual(a.sumAbs, b.sumAbs, a.name)
            XCTAssertEqual(a.maxAbs, b.maxAbs, a.name)
            XCTAssertEqual(a.gram, b.gram, a.name)
            let gram = try XCTUnwrap(a.gram)
            for j in 0..<a.columns {
                XCTAssertEqual(gram[j * a.columns + j], a.sumSquares[j], accuracy: a.sumSquares[j] * 1e-5 + 1e-12, "\(a.name) \(j)")
            }
        }
    }

    /// True-sequential: new weights for block 0 change what block 1 sees, exactly as a forward
    /// pass with those weights; the block's cached inputs are the embeddings.
    /// The staged passes of a true-sequential run compute the same statistics as a plain run
    /// when nothing is replaced, bit for bit; a weight replaced at o changes the statistics
    /// of that very block's gate/up input (sub-layer order), not those of its q/k/v or o.
    func testSequentialStagesMatchThePlainRun() throws {
        let source = try HuggingFaceSource(path: TestSupport.austenModel)
        let input = try sequences(.randomWindows(samples: 4, length: 40, seed: 2))
        let plain = try BlockRunner(source: source, sequences: input)
        plain.batchRows = 80
        var expected: [InputStatistics] = []
        try plain.run(onBlock: { expected += $0.statistics; return nil }, onHead: { expected.append($0) })
        func staged(_ change: Bool) throws -> [InputStatistics] {
            let runner = try BlockRunner(source: source, sequences: input)
            runner.batchRows = 80
            var seen: [InputStatistics] = []
            try runner.runSequential(onInput: { layer, statistics, weights in
                seen.append(statistics)
                var weights = weights
                if change && layer == 1 && statistics.input == .attentionOutput { weights.o = weights.o.map { $0 * 0.5 } }
                return weights
            }, onHead: { seen.append($0) })
            return seen
        }
        let same = try staged(false)
        XCTAssertEqual(same.map(\.name), expected.map(\.name))
        for (a, b) in zip(same, expected) {
            XCTAssertEqual(a.sumSquares, b.sumSquares, a.name)
            XCTAssertEqual(a.gram, b.gram, a.name)
        }
        let changed = try staged(true)
        XCTAssertEqual(changed[4].name, "blk.1.attn_qkv")
        XCTAssertEqual(changed[4].sumSquares, expected[4].sumSquares)
        XCTAssertEqual(changed[5].sumSquares, expected[5].sumSquares, "blk.1.attn_output is observed before o is replaced")
        XCTAssertEqual(changed[6].name, "blk.1.ffn_gate_up")
        XCTAssertNotEqual(changed[6].sumSquares, expected[6].sumSquares)
    }

    func testReplacedBlockFeedsTheNextOne() throws {
        let source = try HuggingFaceSource(path: TestSupport.austenModel)
        let input = try sequences(.randomWindows(samples: 3, length: 40, seed: 9))
        let runner = try BlockRunner(source: source, sequences: input)
        runner.keepInputs = true
        runner.hessian = .diag
        var seen: [String: [Double]] = [:]
        var embeddings: [Float] = []
        try runner.run(onBlock: { block in
            for s in block.statistics { seen[s.name] = s.sumSquares }
            guard block.layer == 0 else { return nil }
            embeddings = Array(block.inputs!)
            var weights = block.weights
            weights.down = weights.down.map { $0 * 0.5 }
            return weights
        }, onHead: { _ in })
        let model = try DecoderModel(path: TestSupport.austenModel)
        XCTAssertEqual(embeddings.count, 120 * 256)
        XCTAssertEqual(Array(embeddings[256..<512]), Array(model.weights.embedding[(Int(input[0][1]) * 256)..<(Int(input[0][1]) * 256 + 256)]))
        model.weights.layers[0].down = model.weights.layers[0].down.map { $0 * 0.5 }
        final class QKV: ForwardObserver {
            var sums = [Double](repeating: 0, count: 256)
            func linearInput(layer: Int, role: LinearRole, _ x: UnsafeBufferPointer<Float>, rows: Int, columns: Int) {
                guard layer == 1, role == .q else { return }
                for r in 0..<rows { for j in 0..<columns { sums[j] += Double(x[r * columns + j]) * Double(x[r * columns + j]) } }
            }
            func blockOutput(layer: Int, _ x: UnsafeBufferPointer<Float>, rows: Int, columns: Int) {}
        }
        let observer = QKV()
        _ = try model.logits(input, observer: observer)
        let ours = try XCTUnwrap(seen["blk.1.attn_qkv"])
        for j in 0..<256 { XCTAssertEqual(ours[j], observer.sums[j], accuracy: observer.sums[j] * 1e-4, "channel \(j)") }
        // Without the replacement the sums differ.
        let plain = try BlockRunner(source: source, sequences: input)
        var unchanged: [Double] = []
        try plain.run(onBlock: { block in
            if block.layer == 1 { unchanged = block.statistics[0].sumSquares }
            return nil
        }, onHead: { _ in })
        XCTAssertGreaterThan(zip(unchanged, ours).map { abs($0 - $1) / $1 }.max()!, 1e-3)
    }
}
