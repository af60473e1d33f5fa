import QuantaCore

/// How q and k rows pair their rotary dimensions: Hugging Face stores the two halves of each
/// head apart (`rotate_half`), llama.cpp's llama GGUFs interleave them.
public enum RopeLayout: Sendable {
    case halves
    case interleaved

    /// llama.cpp's q/k row permutation from the HF rotate-half layout to interleaved pairs:
    /// `w.reshape(heads, 2, rows/heads/2, cols).swapaxes(1, 2).reshape(rows, cols)`.
    /// `inverse` undoes it. `values` holds `rows * columns` values (columns 1 for biases).
    public static func interleave(_ values: [Float], rows: Int, columns: Int, heads: Int, inverse: Bool = false) throws -> [Float] {
        guard heads > 0, rows % (2 * heads) == 0, values.count == rows * columns else {
            throw QuantaError(.invalidArgument, "q/k permutation", "\(rows) rows cannot be split into \(heads) heads of rotary pairs")
        }
        let half = rows / heads / 2
        var out = [Float](repeating: 0, count: values.count)
        values.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for h in 0..<heads {
                    for i in 0..<half {
                        for j in 0..<2 {
                            let hfRow = h * 2 * half + j * half + i
                            let ggufRow = h * 2 * half + i * 2 + j
                            let (from, to) = inverse ? (ggufRow, hfRow) : (hfRow, ggufRow)
                            (dst.baseAddress! + to * columns).update(from: src.baseAddress! + from * columns, count: columns)
                        }
                    }
                }
            }
        }
        return out
    }
}
