import CBLAS
import QuantaCore

/// Best sgemm rate (GFLOP/s) over square products of size n, with OpenBLAS's current thread count.
public func sgemmPeak(_ n: Int, _ repeats: Int) -> Double {
    let a = [Float](repeating: 0.5, count: n * n), b = [Float](repeating: 0.25, count: n * n)
    var c = [Float](repeating: 0, count: n * n)
    var best = 0.0
    for _ in 0..<repeats {
        let start = monotonicSeconds()
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(n), Int32(n), Int32(n), 1, a, Int32(n), b, Int32(n), 0, &c, Int32(n))
        best = max(best, 2 * Double(n * n * n) / (monotonicSeconds() - start) / 1e9)
    }
    return best
}

/// The fastest of `repeats` runs of `body`, in seconds.
public func fastest(_ repeats: Int, _ body: () throws -> Void) rethrows -> Double {
    var best = Double.infinity
    for _ in 0..<repeats {
        let start = monotonicSeconds()
        try body()
        best = min(best, monotonicSeconds() - start)
    }
    return best
}
