import FuzzSupport
import QuantaIO

// An importance matrix, llama.cpp's GGUF form or the legacy .dat: entry names, column and
// expert counts, sums and counts; then the per-column importance every quantizer reads.
fuzzMain { bytes in
    let path = Scratch.write(bytes, to: "imatrix")
    guard let matrix = try? ImportanceMatrix.read(path) else { return }
    for entry in matrix.entries {
        if let importance = matrix.importance(for: entry.name) {
            let expected = entry.columns * max(entry.counts.count, 1)
            precondition(importance.count == expected, "\(entry.name): \(importance.count) values for \(entry.columns) columns x \(entry.counts.count) experts")
        }
    }
}
