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
    static func compress(_ state: inout State, _ p: UnsafeRawPointer, blocks: Int) {
        withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 16) { w in
            compress(&state, p, blocks: blocks, schedule: w.baseAddress!)
        }
    }

    /// The block loop proper. The state lives in locals (no closure captures, so no boxes
    /// or dynamic exclusivity checks); `w` is the 16-word message-schedule ring.
    @inline(never)
    static func compress(_ state: inout State, _ p: UnsafeRawPointer, blocks: Int,
                         schedule w: UnsafeMutablePointer<UInt32>) {
        var (h0, h1, h2, h3, h4, h5, h6, h7) = state
        var block = p
        do {
            for _ in 0 ..< blocks {
                var a = h0, b = h1, c = h2, d = h3, e = h4, f = h5, g = h6, h = h7

                // Rounds 0...15 read the message words; 16...63 extend the schedule in a
                // 16-word ring (w[i & 15] holds W[i]).
                @inline(__always)
                func load(_ i: Int) -> UInt32 {
                    let x = block.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self).bigEndian
                    w[i] = x
                    return x
                }
                @inline(__always)
                func extend(_ i: Int) -> UInt32 {
                    let w15 = w[(i - 15) & 15], w2 = w[(i - 2) & 15]
                    let s0 = rotr(w15, 7) ^ rotr(w15, 18) ^ (w15 >> 3)
                    let s1 = rotr(w2, 17) ^ rotr(w2, 19) ^ (w2 >> 10)
                    let x = w[i & 15] &+ s0 &+ w[(i - 7) & 15] &+ s1
                    w[i & 15] = x
                    return x
                }

                sha256Round(a, b, c, &d, e, f, g, &h, 0x428a_2f98 &+ load(0))
                sha256Round(h, a, b, &c, d, e, f, &g, 0x7137_4491 &+ load(1))
                sha256Round(g, h, a, &b, c, d, e, &f, 0xb5c0_fbcf &+ load(2))
                sha256Round(f, g, h, &a, b, c, d, &e, 0xe9b5_dba5 &+ load(3))
                sha256Round(e, f, g, &h, a, b, c, &d, 0x3956_c25b &+ load(4))
                sha256Round(d, e, f, &g, h, a, b, &c, 0x59f1_11f1 &+ load(5))
                sha256Round(c, d, e, &f, g, h, a, &b, 0x923f_82a4 &+ load(6))
                sha256Round(b, c, d, &e, f, g, h, &a, 0xab1c_5ed5 &+ load(7))
                sha256Round(a, b, c, &d, e, f, g, &h, 0xd807_aa98 &+ load(8))
                sha256Round(h, a, b, &c, d, e, f, &g, 0x1283_5b01 &+ load(9))
                sha256Round(g, h, a, &b, c, d, e, &f, 0x2431_85be &+ load(10))
                sha256Round(f, g, h, &a, b, c, d, &e, 0x550c_7dc3 &+ load(11))
                sha256Round(e, f, g, &h, a, b, c, &d, 0x72be_5d74 &+ load(12))
                sha256Round(d, e, f, &g, h, a, b, &c, 0x80de_b1fe &+ load(13))
                sha256Round(c, d, e, &f, g, h, a, &b, 0x9bdc_06a7 &+ load(14))
                sha256Round(b, c, d, &e, f, g, h, &a, 0xc19b_f174 &+ load(15))

                sha256Round(a, b, c, &d, e, f, g, &h, 0xe49b_69c1 &+ extend(16))
                sha256Round(h, a, b, &c, d, e, f, &g, 0xefbe_4786 &+ extend(17))
                sha256Round(g, h, a, &b, c, d, e, &f, 0x0fc1_9dc6 &+ extend(18))
                sha256Round(f, g, h, &a, b, c, d, &e, 0x240c_a1cc &+ extend(19))
                sha256Round(e, f, g, &h, a, b, c, &d, 0x2de9_2c6f &+ extend(20))
                sha256Round(d, e, f, &g, h, a, b, &c, 0x4a74_84aa &+ extend(21))
                sha256Round(c, d, e, &f, g, h, a, &b, 0x5cb0_a9dc &+ extend(22))
                sha256Round(b, c, d, &e, f, g, h, &a, 0x76f9_88da &+ extend(23))
                sha256Round(a, b, c, &d, e, f, g, &h, 0x983e_5152 &+ extend(24))
                sha256Round(h, a, b, &c, d, e, f, &g, 0xa831_c66d &+ extend(25))
                sha256Round(g, h, a, &b, c, d, e, &f, 0xb003_27c8 &+ extend(26))
                sha256Round(f, g, h, &a, b, c, d, &e, 0xbf59_7fc7 &+ extend(27))
                sha256Round(e, f, g, &h, a, b, c, &d, 0xc6e0_0bf3 &+ extend(28))
                sha256Round(d, e, f, &g, h, a, b, &c, 0xd5a7_9147 &+ extend(29))
                sha256Round(c, d, e, &f, g, h, a, &b, 0x06ca_6351 &+ extend(30))
                sha256Round(b, c, d, &e, f, g, h, &a, 0x1429_2967 &+ extend(31))
                sha256Round(a, b, c, &d, e, f, g, &h, 0x27b7_0a85 &+ extend(32))
                sha256Round(h, a, b, &c, d, e, f, &g, 0x2e1b_2138 &+ extend(33))
                sha256Round(g, h, a, &b, c, d, e, &f, 0x4d2c_6dfc &+ extend(34))
                sha256Round(f, g, h, &a, b, c, d, &e, 0x5338_0d13 &+ extend(35))
                sha256Round(e, f, g, &h, a, b, c, &d, 0x650a_7354 &+ extend(36))
                sha256Round(d, e, f, &g, h, a, b, &c, 0x766a_0abb &+ extend(37))
                sha256Round(c, d, e, &f, g, h, a, &b, 0x81c2_c92e &+ extend(38))
                sha256Round(b, c, d, &e, f, g, h, &a, 0x9272_2c85 &+ extend(39))
                sha256Round(a, b, c, &d, e, f, g, &h, 0xa2bf_e8a1 &+ extend(40))
                sha256Round(h, a, b, &c, d, e, f, &g, 0xa81a_664b &+ extend(41))
                sha256Round(g, h, a, &b, c, d, e, &f, 0xc24b_8b70 &+ extend(42))
                sha256Round(f, g, h, &a, b, c, d, &e, 0xc76c_51a3 &+ extend(43))
                sha256Round(e, f, g, &h, a, b, c, &d, 0xd192_e819 &+ extend(44))
                sha256Round(d, e, f, &g, h, a, b, &c, 0xd699_0624 &+ extend(45))
                sha256Round(c, d, e, &f, g, h, a, &b, 0xf40e_3585 &+ extend(46))
                sha256Round(b, c, d, &e, f, g, h, &a, 0x106a_a070 &+ extend(47))
                sha256Round(a, b, c, &d, e, f, g, &h, 0x19a4_c116 &+ extend(48))
                sha256Round(h, a, b, &c, d, e, f, &g, 0x1e37_6c08 &+ extend(49))
                sha256Round(g, h, a, &b, c, d, e, &f, 0x2748_774c &+ extend(50))
                sha256Round(f, g, h, &a, b, c, d, &e, 0x34b0_bcb5 &+ extend(51))
                sha256Round(e, f, g, &h, a, b, c, &d, 0x391c_0cb3 &+ extend(52))
                sha256Round(d, e, f, &g, h, a, b, &c, 0x4ed8_aa4a &+ extend(53))
                sha256Round(c, d, e, &f, g, h, a, &b, 0x5b9c_ca4f &+ extend(54))
                sha256Round(b, c, d, &e, f, g, h, &a, 0x682e_6ff3 &+ extend(55))
                sha256Round(a, b, c, &d, e, f, g, &h, 0x748f_82ee &+ extend(56))
                sha256Round(h, a, b, &c, d, e, f, &g, 0x78a5_636f &+ extend(57))
                sha256Round(g, h, a, &b, c, d, e, &f, 0x84c8_7814 &+ extend(58))
                sha256Round(f, g, h, &a, b, c, d, &e, 0x8cc7_0208 &+ extend(59))
                sha256Round(e, f, g, &h, a, b, c, &d, 0x90be_fffa &+ extend(60))
                sha256Round(d, e, f, &g, h, a, b, &c, 0xa450_6ceb &+ extend(61))
                sha256Round(c, d, e, &f, g, h, a, &b, 0xbef9_a3f7 &+ extend(62))
                sha256Round(b, c, d, &e, f, g, h, &a, 0xc671_78f2 &+ extend(63))

                h0 &+= a; h1 &+= b; h2 &+= c; h3 &+= d
                h4 &+= e; h5 &+= f; h6 &+= g; h7 &+= h
                block += 64
            }
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
    let ch = (e & f) ^ (~e & g)
    let t1 = h &+ s1 &+ ch &+ kw
    let s0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)
    let maj = (a & b) ^ (a & c) ^ (b & c)
    d &+= t1
    h = t1 &+ s0 &+ maj
}
