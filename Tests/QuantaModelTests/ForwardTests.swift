import QuantaCore
import QuantaModel
import TestSupport
import XCTest

final class ForwardTests: XCTestCase {
    /// Records what the forward pass shows an observer.
    final class Recorder: ForwardObserver {
        var linear: [(Int, LinearRole, Int, Int, Float)] = []
        var blocks: [(Int, Int, Int)] = []
        func linearInput(layer: Int, role: LinearRole, _ x: UnsafeBufferPointer<Float>, rows: Int, columns: Int) {
            XCTAssertEqual(x.count, rows * columns)
            linear.append((layer, role, rows, columns, x.reduce(0) { $0 + $1 * $1 }))
        }
        func blockOutput(layer: Int, _ x: UnsafeBufferPointer<Float>, rows: Int, columns: Int) {
            blocks.append((layer, rows, columns))
        }
    }

    func testObserverSeesEveryLinearInputAndChangesNothing() throws {
        let model = try DecoderModel(path: TestSupport.austenModel)
        let tokens: [[Int32]] = [model.tokenizer.encode("It was a truth universally acknowledged, that a single man"), ]
        let sequences = [Array(tokens[0].prefix(8)), Array(tokens[0].suffix(8))]
        let plain = try model.logits(sequences)
        let recorder = Recorder()
        let observed = try model.logits(sequences, observer: recorder)
        XCTAssertEqual(plain, observed)
        XCTAssertEqual(recorder.linear.count, 6 * 7 + 1)
        XCTAssertEqual(recorder.blocks.map(\.0), Array(0..<6))
        let downs = recorder.linear.filter { $0.1 == .down }
        XCTAssertEqual(downs.count, 6)
        XCTAssertTrue(downs.allSatisfy { $0.2 == 16 && $0.3 == 768 })
        let q = recorder.linear.filter { $0.1 == .q }, k = recorder.linear.filter { $0.1 == .k }
        XCTAssertEqual(q.map(\.4), k.map(\.4), "q and k read the same normalized input")
        XCTAssertEqual(recorder.linear.last?.0, -1)
        XCTAssertEqual(recorder.linear.last?.1, .output)
        XCTAssertEqual(plain.count, 2 * 8 * 4096)
    }

    func testSequencesAreIndependentAndCausal() throws {
        let model = try DecoderModel(path: TestSupport.austenModel)
        let a = model.tokenizer.encode("Anne Elliot walked slowly up the hill"), b = model.tokenizer.encode("Captain Wentworth said nothing at all")
        let n = min(a.count, b.count)
        let together = try model.logits([Array(a.prefix(n)), Array(b.prefix(n))])
        let alone = try model.logits([Array(b.prefix(n))])
        let vocab = 4096
        for i in 0..<(n * vocab) { XCTAssertEqual(together[n * vocab + i], alone[i], accuracy: 1e-4) }
        // Changing the last token leaves the earlier positions' logits unchanged.
        var changed = Array(a.prefix(n))
        changed[n - 1] = 7
        let edited = try model.logits([changed])
        for i in 0..<((n - 1) * vocab) { XCTAssertEqual(edited[i], together[i], accuracy: 1e-5) }
    }

    func testRejectsTokensOutsideTheVocabulary() throws {
        let model = try DecoderModel(path: TestSupport.austenModel)
        XCTAssertThrowsError(try model.logits([[1, 5000]])) { error in
            XCTAssertEqual("\(error)", "sequence 0: token 5000 at 1 is outside the vocabulary of 4096")
        }
    }
}
