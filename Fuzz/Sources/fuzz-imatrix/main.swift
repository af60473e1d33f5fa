import FuzzSupport
import QuantaIO

// An importance matrix, llama.cpp's GGUF form or the legacy .dat: entry names, column and
// expert counts, sums and counts; then the per-column importance every quantizer reads, and
// the matrix written as GGUF and read back unchanged (bit for bit).
fuzzMain { bytes in
    let path = Scratch.write(bytes, to: "imatrix")
    guard let matrix = try? ImportanceMatrix.read(path) else { return }
    for entry in matrix.entries {
        if let importance = matrix.importance(for: entry.name) {
            let expected = entry.columns * max(entry.counts.count, 1)
            precondition(importance.count == expected, "\(entry.name): \(importance.count) values for \(entry.columns) columns x \(entry.counts.count) experts")
        }
    }
    let copy = Scratch.path("copy.gguf")
    do {
        try matrix.writeGGUF(to: copy)
    } catch {
        // Only names too long for a GGUF tensor (".in_sum2" included) may stop the conversion.
        precondition(matrix.entries.contains { $0.name.utf8.count + ".in_sum2".utf8.count > GGUFFile.maximumNameLength },
                     "an imatrix that was read cannot be written: \(error)")
        return
    }
    guard let again = try? ImportanceMatrix.read(copy) else { fatalError("a written imatrix does not read back") }
    func bits(_ m: ImportanceMatrix) -> [[UInt32]] { m.entries.flatMap { [$0.sums.map(\.bitPattern), $0.counts.map(\.bitPattern)] } }
    precondition(again.entries.map(\.name) == matrix.entries.map(\.name) && again.entries.map(\.columns) == matrix.entries.map(\.columns)
                 && bits(again) == bits(matrix) && again.chunkCount == matrix.chunkCount, "imatrix changed through GGUF")
}
