/// Working memory for one thread's block quantizers, allocated once per row batch so the
/// per-block code allocates nothing.
public final class QuantScratch {
    /// Quant levels of one superblock (256; `L` holds two), in the signed and unsigned flavours ggml uses.
    let L: UnsafeMutablePointer<UInt8>
    let Li: UnsafeMutablePointer<Int8>
    let Laux: UnsafeMutablePointer<UInt8>
    /// Per-value weights of one superblock.
    let weights: UnsafeMutablePointer<Float>
    /// Per-sub-block scales, mins, weight sums and their quantized levels (16 each).
    let scales: UnsafeMutablePointer<Float>
    let mins: UnsafeMutablePointer<Float>
    let sw: UnsafeMutablePointer<Float>
    let Ls: UnsafeMutablePointer<UInt8>
    let Lm: UnsafeMutablePointer<UInt8>
    let Lsi: UnsafeMutablePointer<Int8>
    /// IQ4_NL's 16 levels as Float.
    let iq4: UnsafeMutablePointer<Float>
    /// Sixteen groups' searches side by side.
    let lanes = GroupLanes()

    public init() {
        L = .allocate(capacity: 512)
        Li = .allocate(capacity: 256)
        Laux = .allocate(capacity: 256)
        weights = .allocate(capacity: 256)
        scales = .allocate(capacity: 16)
        mins = .allocate(capacity: 16)
        sw = .allocate(capacity: 16)
        Ls = .allocate(capacity: 16)
        Lm = .allocate(capacity: 16)
        Lsi = .allocate(capacity: 16)
        iq4 = .allocate(capacity: 16)
        L.initialize(repeating: 0, count: 512)
        Li.initialize(repeating: 0, count: 256)
        Laux.initialize(repeating: 0, count: 256)
        weights.initialize(repeating: 0, count: 256)
        for p in [scales, mins, sw, iq4] { p.initialize(repeating: 0, count: 16) }
        for p in [Ls, Lm] { p.initialize(repeating: 0, count: 16) }
        Lsi.initialize(repeating: 0, count: 16)
        for (i, v) in IQ4Quants.values.enumerated() { iq4[i] = Float(v) }
    }

    deinit {
        for p in [L, Laux, Ls, Lm] { p.deallocate() }
        for p in [Li, Lsi] { p.deallocate() }
        for p in [weights, scales, mins, sw, iq4] { p.deallocate() }
    }
}
