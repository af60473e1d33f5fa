/// SHA-256 of byte streams (FIPS 180-4), incremental.
///
/// Pure Swift, no Foundation. Whole 64-byte blocks are compressed straight from the
/// caller's buffer; only a trailing partial block is copied into a 64-byte inline buffer.
///
///     var hasher = SHA256()
///     hasher.update(chunk1)
///     hasher.update(chunk2)
///     let digest = hasher.finalize()   // 32 bytes; `hasher` is spent from here on
///     print(SHA256.hex(digest))
public struct SHA256: Sendable {
    /// The eight working hash words H0...H7.
    typealias State = (UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32)

    private var state: State = (0x6a09_e667, 0xbb67_ae85, 0x3c6e_f372, 0xa54f_f53a,
                                0x510e_527f, 0x9b05_688c, 0x1f83_d9ab, 0x5be0_cd19)
    /// Pending bytes of a partial block (`buffered` of them are valid).
    private var buffer: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0)
    private var buffered = 0
    /// Total message length in bytes.
    private var length: UInt64 = 0
    private var finalized = false

    public init() {}

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        precondition(!finalized, "SHA256.update after finalize")
        guard var p = bytes.baseAddress, bytes.count > 0 else { return }
        var remaining = bytes.count
        length &+= UInt64(remaining)

        if buffered > 0 {
            let take = min(64 - buffered, remaining)
            let offset = buffered
            withUnsafeMutableBytes(of: &buffer) { buf in
                buf.baseAddress!.advanced(by: offset).copyMemory(from: p, byteCount: take)
            }
            buffered += take
            p += take
            remaining -= take
            guard buffered == 64 else { return }
            withUnsafeBytes(of: buffer) { buf in
                Self.compress(&state, buf.baseAddress!, blocks: 1)
            }
            buffered = 0
        }

        let blocks = remaining / 64
        if blocks > 0 {
            Self.compress(&state, p, blocks: blocks)
            p += blocks * 64
            remaining -= blocks * 64
        }

        if remaining > 0 {
            withUnsafeMutableBytes(of: &buffer) { buf in
                buf.baseAddress!.copyMemory(from: p, byteCount: remaining)
            }
            buffered = remaining
        }
    }

    public mutating func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update($0) }
    }

    /// The digest (32 bytes). This pads and closes the hasher: it must not be updated or
    /// finalized again afterwards (both trap). Finalize a copy to take an intermediate digest.
    public mutating func finalize() -> [UInt8] {
        precondition(!finalized, "SHA256.finalize called twice")
        let bitLength = length &<< 3
        // Padding: 0x80, zeros up to 56 mod 64, then the 64-bit big-endian bit length.
        var pad: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
                  UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) =
            (0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        let padCount = (buffered < 56 ? 56 : 120) - buffered
        withUnsafeMutableBytes(of: &pad) { buf in
            buf.storeBytes(of: bitLength.bigEndian, toByteOffset: padCount, as: UInt64.self)
            update(UnsafeRawBufferPointer(rebasing: buf[0 ..< padCount + 8]))
        }
        precondition(buffered == 0)
        finalized = true

        return [UInt8](unsafeUninitializedCapacity: 32) { out, count in
            let raw = UnsafeMutableRawPointer(out.baseAddress!)
            let s = state
            raw.storeBytes(of: s.0.bigEndian, toByteOffset: 0, as: UInt32.self)
            raw.storeBytes(of: s.1.bigEndian, toByteOffset: 4, as: UInt32.self)
            raw.storeBytes(of: s.2.bigEndian, toByteOffset: 8, as: UInt32.self)
            raw.storeBytes(of: s.3.bigEndian, toByteOffset: 12, as: UInt32.self)
            raw.storeBytes(of: s.4.bigEndian, toByteOffset: 16, as: UInt32.self)
            raw.storeBytes(of: s.5.bigEndian, toByteOffset: 20, as: UInt32.self)
            raw.storeBytes(of: s.6.bigEndian, toByteOffset: 24, as: UInt32.self)
            raw.storeBytes(of: s.7.bigEndian, toByteOffset: 28, as: UInt32.self)
            count = 32
        }
    }

    /// Lowercase hex of a digest.
    public static func hex(_ digest: [UInt8]) -> String {
        let digits: StaticString = "0123456789abcdef"
        return digits.withUTF8Buffer { table in
            String(unsafeUninitializedCapacity: digest.count * 2) { out in
                for (i, byte) in digest.enumerated() {
                    out[2 * i] = table[Int(byte >> 4)]
                    out[2 * i + 1] = table[Int(byte & 0x0F)]
                }
                return digest.count * 2
            }
        }
    }

    /// SHA-256 of `bytes` in one call.
    public static func hash(_ bytes: UnsafeRawBufferPointer) -> [UInt8] {
        var hasher = SHA256()
        hasher.update(bytes)
        return hasher.finalize()
    }

    /// SHA-256 of `bytes` in one call.
    public static func hash(_ bytes: [UInt8]) -> [UInt8] {
        bytes.withUnsafeBytes { hash($0) }
    }

    // MARK: - Compression

    /// Compresses `blocks` consecutive 64-byte blocks at `p` (any alignment) into `state`.
    ///
    /// The working variables and hash words live in locals for the whole call, and the
    /// message schedule is a 16-word ring in a fixed-size tuple (W[t] in `w.(t % 16)`),
    /// extended in place as the fully unrolled rounds go; the optimizer keeps it all in
    /// registers and stack slots, with no heap or closure captures.
    @inline(never)
    static func compress(_ state: inout State, _ p: UnsafeRawPointer, blocks: Int) {
        var (h0, h1, h2, h3, h4, h5, h6, h7) = state
        var block = p
        var w: (UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32,
                UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        for _ in 0 ..< blocks {
            var a = h0, b = h1, c = h2, d = h3, e = h4, f = h5, g = h6, h = h7
            // Rounds 0...15 take the big-endian message words; 16...63 first extend the
            // schedule: W[t] = σ1(W[t-2]) + W[t-7] + σ0(W[t-15]) + W[t-16].

            w.0 = block.loadUnaligned(fromByteOffset: 0, as: UInt32.self).bigEndian
            sha256Round(a, b, c, &d, e, f, g, &h, 0x428a_2f98 &+ w.0)
            w.1 = block.loadUnaligned(fromByteOffset: 4, as: UInt32.self).bigEndian
            sha256Round(h, a, b, &c, d, e, f, &g, 0x7137_4491 &+ w.1)
            w.2 = block.loadUnaligned(fromByteOffset: 8, as: UInt32.self).bigEndian
            sha256Round(g, h, a, &b, c, d, e, &f, 0xb5c0_fbcf &+ w.2)
            w.3 = block.loadUnaligned(fromByteOffset: 12, as: UInt32.self).bigEndian
            sha256Round(f, g, h, &a, b, c, d, &e, 0xe9b5_dba5 &+ w.3)
            w.4 = block.loadUnaligned(fromByteOffset: 16, as: UInt32.self).bigEndian
            sha256Round(e, f, g, &h, a, b, c, &d, 0x3956_c25b &+ w.4)
            w.5 = block.loadUnaligned(fromByteOffset: 20, as: UInt32.self).bigEndian
            sha256Round(d, e, f, &g, h, a, b, &c, 0x59f1_11f1 &+ w.5)
            w.6 = block.loadUnaligned(fromByteOffset: 24, as: UInt32.self).bigEndian
            sha256Round(c, d, e, &f, g, h, a, &b, 0x923f_82a4 &+ w.6)
            w.7 = block.loadUnaligned(fromByteOffset: 28, as: UInt32.self).bigEndian
            sha256Round(b, c, d, &e, f, g, h, &a, 0xab1c_5ed5 &+ w.7)
            w.8 = block.loadUnaligned(fromByteOffset: 32, as: UInt32.self).bigEndian
            sha256Round(a, b, c, &d, e, f, g, &h, 0xd807_aa98 &+ w.8)
            w.9 = block.loadUnaligned(fromByteOffset: 36, as: UInt32.self).bigEndian
            sha256Round(h, a, b, &c, d, e, f, &g, 0x1283_5b01 &+ w.9)
            w.10 = block.loadUnaligned(fromByteOffset: 40, as: UInt32.self).bigEndian
            sha256Round(g, h, a, &b, c, d, e, &f, 0x2431_85be &+ w.10)
            w.11 = block.loadUnaligned(fromByteOffset: 44, as: UInt32.self).bigEndian
            sha256Round(f, g, h, &a, b, c, d, &e, 0x550c_7dc3 &+ w.11)
            w.12 = block.loadUnaligned(fromByteOffset: 48, as: UInt32.self).bigEndian
            sha256Round(e, f, g, &h, a, b, c, &d, 0x72be_5d74 &+ w.12)
            w.13 = block.loadUnaligned(fromByteOffset: 52, as: UInt32.self).bigEndian
            sha256Round(d, e, f, &g, h, a, b, &c, 0x80de_b1fe &+ w.13)
            w.14 = block.loadUnaligned(fromByteOffset: 56, as: UInt32.self).bigEndian
            sha256Round(c, d, e, &f, g, h, a, &b, 0x9bdc_06a7 &+ w.14)
            w.15 = block.loadUnaligned(fromByteOffset: 60, as: UInt32.self).bigEndian
            sha256Round(b, c, d, &e, f, g, h, &a, 0xc19b_f174 &+ w.15)
            w.0 &+= sigma0(w.1) &+ w.9 &+ sigma1(w.14)
            sha256Round(a, b, c, &d, e, f, g, &h, 0xe49b_69c1 &+ w.0)
            w.1 &+= sigma0(w.2) &+ w.10 &+ sigma1(w.15)
            sha256Round(h, a, b, &c, d, e, f, &g, 0xefbe_4786 &+ w.1)
            w.2 &+= sigma0(w.3) &+ w.11 &+ sigma1(w.0)
            sha256Round(g, h, a, &b, c, d, e, &f, 0x0fc1_9dc6 &+ w.2)
            w.3 &+= sigma0(w.4) &+ w.12 &+ sigma1(w.1)
            sha256Round(f, g, h, &a, b, c, d, &e, 0x240c_a1cc &+ w.3)
            w.4 &+= sigma0(w.5) &+ w.13 &+ sigma1(w.2)
            sha256Round(e, f, g, &h, a, b, c, &d, 0x2de9_2c6f &+ w.4)
            w.5 &+= sigma0(w.6) &+ w.14 &+ sigma1(w.3)
            sha256Round(d, e, f, &g, h, a, b, &c, 0x4a74_84aa &+ w.5)
            w.6 &+= sigma0(w.7) &+ w.15 &+ sigma1(w.4)
            sha256Round(c, d, e, &f, g, h, a, &b, 0x5cb0_a9dc &+ w.6)
            w.7 &+= sigma0(w.8) &+ w.0 &+ sigma1(w.5)
            sha256Round(b, c, d, &e, f, g, h, &a, 0x76f9_88da &+ w.7)
            w.8 &+= sigma0(w.9) &+ w.1 &+ sigma1(w.6)
            sha256Round(a, b, c, &d, e, f, g, &h, 0x983e_5152 &+ w.8)
            w.9 &+= sigma0(w.10) &+ w.2 &+ sigma1(w.7)
            sha256Round(h, a, b, &c, d, e, f, &g, 0xa831_c66d &+ w.9)
            w.10 &+= sigma0(w.11) &+ w.3 &+ sigma1(w.8)
            sha256Round(g, h, a, &b, c, d, e, &f, 0xb003_27c8 &+ w.10)
            w.11 &+= sigma0(w.12) &+ w.4 &+ sigma1(w.9)
            sha256Round(f, g, h, &a, b, c, d, &e, 0xbf59_7fc7 &+ w.11)
            w.12 &+= sigma0(w.13) &+ w.5 &+ sigma1(w.10)
            sha256Round(e, f, g, &h, a, b, c, &d, 0xc6e0_0bf3 &+ w.12)
            w.13 &+= sigma0(w.14) &+ w.6 &+ sigma1(w.11)
            sha256Round(d, e, f, &g, h, a, b, &c, 0xd5a7_9147 &+ w.13)
            w.14 &+= sigma0(w.15) &+ w.7 &+ sigma1(w.12)
            sha256Round(c, d, e, &f, g, h, a, &b, 0x06ca_6351 &+ w.14)
            w.15 &+= sigma0(w.0) &+ w.8 &+ sigma1(w.13)
            sha256Round(b, c, d, &e, f, g, h, &a, 0x1429_2967 &+ w.15)
            w.0 &+= sigma0(w.1) &+ w.9 &+ sigma1(w.14)
            sha256Round(a, b, c, &d, e, f, g, &h, 0x27b7_0a85 &+ w.0)
            w.1 &+= sigma0(w.2) &+ w.10 &+ sigma1(w.15)
            sha256Round(h, a, b, &c, d, e, f, &g, 0x2e1b_2138 &+ w.1)
            w.2 &+= sigma0(w.3) &+ w.11 &+ sigma1(w.0)
            sha256Round(g, h, a, &b, c, d, e, &f, 0x4d2c_6dfc &+ w.2)
            w.3 &+= sigma0(w.4) &+ w.12 &+ sigma1(w.1)
            sha256Round(f, g, h, &a, b, c, d, &e, 0x5338_0d13 &+ w.3)
            w.4 &+= sigma0(w.5) &+ w.13 &+ sigma1(w.2)
            sha256Round(e, f, g, &h, a, b, c, &d, 0x650a_7354 &+ w.4)
            w.5 &+= sigma0(w.6) &+ w.14 &+ sigma1(w.3)
            sha256Round(d, e, f, &g, h, a, b, &c, 0x766a_0abb &+ w.5)
            w.6 &+= sigma0(w.7) &+ w.15 &+ sigma1(w.4)
            sha256Round(c, d, e, &f, g, h, a, &b, 0x81c2_c92e &+ w.6)
            w.7 &+= sigma0(w.8) &+ w.0 &+ sigma1(w.5)
            sha256Round(b, c, d, &e, f, g, h, &a, 0x9272_2c85 &+ w.7)
            w.8 &+= sigma0(w.9) &+ w.1 &+ sigma1(w.6)
            sha256Round(a, b, c, &d, e, f, g, &h, 0xa2bf_e8a1 &+ w.8)
            w.9 &+= sigma0(w.10) &+ w.2 &+ sigma1(w.7)
            sha256Round(h, a, b, &c, d, e, f, &g, 0xa81a_664b &+ w.9)
            w.10 &+= sigma0(w.11) &+ w.3 &+ sigma1(w.8)
            sha256Round(g, h, a, &b, c, d, e, &f, 0xc24b_8b70 &+ w.10)
            w.11 &+= sigma0(w.12) &+ w.4 &+ sigma1(w.9)
            sha256Round(f, g, h, &a, b, c, d, &e, 0xc76c_51a3 &+ w.11)
            w.12 &+= sigma0(w.13) &+ w.5 &+ sigma1(w.10)
            sha256Round(e, f, g, &h, a, b, c, &d, 0xd192_e819 &+ w.12)
            w.13 &+= sigma0(w.14) &+ w.6 &+ sigma1(w.11)
            sha256Round(d, e, f, &g, h, a, b, &c, 0xd699_0624 &+ w.13)
            w.14 &+= sigma0(w.15) &+ w.7 &+ sigma1(w.12)
            sha256Round(c, d, e, &f, g, h, a, &b, 0xf40e_3585 &+ w.14)
            w.15 &+= sigma0(w.0) &+ w.8 &+ sigma1(w.13)
            sha256Round(b, c, d, &e, f, g, h, &a, 0x106a_a070 &+ w.15)
            w.0 &+= sigma0(w.1) &+ w.9 &+ sigma1(w.14)
            sha256Round(a, b, c, &d, e, f, g, &h, 0x19a4_c116 &+ w.0)
            w.1 &+= sigma0(w.2) &+ w.10 &+ sigma1(w.15)
            sha256Round(h, a, b, &c, d, e, f, &g, 0x1e37_6c08 &+ w.1)
            w.2 &+= sigma0(w.3) &+ w.11 &+ sigma1(w.0)
            sha256Round(g, h, a, &b, c, d, e, &f, 0x2748_774c &+ w.2)
            w.3 &+= sigma0(w.4) &+ w.12 &+ sigma1(w.1)
            sha256Round(f, g, h, &a, b, c, d, &e, 0x34b0_bcb5 &+ w.3)
            w.4 &+= sigma0(w.5) &+ w.13 &+ sigma1(w.2)
            sha256Round(e, f, g, &h, a, b, c, &d, 0x391c_0cb3 &+ w.4)
            w.5 &+= sigma0(w.6) &+ w.14 &+ sigma1(w.3)
            sha256Round(d, e, f, &g, h, a, b, &c, 0x4ed8_aa4a &+ w.5)
            w.6 &+= sigma0(w.7) &+ w.15 &+ sigma1(w.4)
            sha256Round(c, d, e, &f, g, h, a, &b, 0x5b9c_ca4f &+ w.6)
            w.7 &+= sigma0(w.8) &+ w.0 &+ sigma1(w.5)
            sha256Round(b, c, d, &e, f, g, h, &a, 0x682e_6ff3 &+ w.7)
            w.8 &+= sigma0(w.9) &+ w.1 &+ sigma1(w.6)
            sha256Round(a, b, c, &d, e, f, g, &h, 0x748f_82ee &+ w.8)
            w.9 &+= sigma0(w.10) &+ w.2 &+ sigma1(w.7)
            sha256Round(h, a, b, &c, d, e, f, &g, 0x78a5_636f &+ w.9)
            w.10 &+= sigma0(w.11) &+ w.3 &+ sigma1(w.8)
            sha256Round(g, h, a, &b, c, d, e, &f, 0x84c8_7814 &+ w.10)
            w.11 &+= sigma0(w.12) &+ w.4 &+ sigma1(w.9)
            sha256Round(f, g, h, &a, b, c, d, &e, 0x8cc7_0208 &+ w.11)
            w.12 &+= sigma0(w.13) &+ w.5 &+ sigma1(w.10)
            sha256Round(e, f, g, &h, a, b, c, &d, 0x90be_fffa &+ w.12)
            w.13 &+= sigma0(w.14) &+ w.6 &+ sigma1(w.11)
            sha256Round(d, e, f, &g, h, a, b, &c, 0xa450_6ceb &+ w.13)
            w.14 &+= sigma0(w.15) &+ w.7 &+ sigma1(w.12)
            sha256Round(c, d, e, &f, g, h, a, &b, 0xbef9_a3f7 &+ w.14)
            w.15 &+= sigma0(w.0) &+ w.8 &+ sigma1(w.13)
            sha256Round(b, c, d, &e, f, g, h, &a, 0xc671_78f2 &+ w.15)

            h0 &+= a; h1 &+= b; h2 &+= c; h3 &+= d
            h4 &+= e; h5 &+= f; h6 &+= g; h7 &+= h
            block += 64
        }
        state = (h0, h1, h2, h3, h4, h5, h6, h7)
    }
}

@inline(__always)
private func rotr(_ x: UInt32, _ n: UInt32) -> UInt32 {
    (x >> n) | (x << (32 - n))
}

/// One SHA-256 round with the working variables renamed instead of shifted: the caller
/// rotates the argument order by one position per round. `kw` is K[t] + W[t].
@inline(__always)
private func sha256Round(_ a: UInt32, _ b: UInt32, _ c: UInt32, _ d: inout UInt32,
                         _ e: UInt32, _ f: UInt32, _ g: UInt32, _ h: inout UInt32, _ kw: UInt32) {
    let s1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)
    let ch = g ^ (e & (f ^ g))
    let t1 = (h &+ kw) &+ ch &+ s1
    let s0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)
    let maj = (a & b) ^ (a & c) ^ (b & c)
    d &+= t1
    h = t1 &+ s0 &+ maj
}

/// The message-schedule functions σ0 and σ1.
@inline(__always)
private func sigma0(_ x: UInt32) -> UInt32 { rotr(x, 7) ^ rotr(x, 18) ^ (x >> 3) }

@inline(__always)
private func sigma1(_ x: UInt32) -> UInt32 { rotr(x, 17) ^ rotr(x, 19) ^ (x >> 10) }
