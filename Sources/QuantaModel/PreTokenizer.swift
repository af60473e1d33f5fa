/// The regex pre-tokenizers of byte-level BPE tokenizers, written as scanners over Unicode
/// scalars (same matches as the regexes, in one pass):
/// - `gpt2`: `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
/// - `llama3`: `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
///   ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
/// - `smollm`: every digit split off on its own (tokenizers' `Digits(individual_digits)`), then `gpt2`.
public enum PreTokenizer: String, Sendable {
    case gpt2 = "gpt-2"
    case llama3 = "llama-bpe"
    case smollm

    /// Ranges of `text` (as Unicode scalar offsets) in order, covering it.
    public func split(_ scalars: [Unicode.Scalar]) -> [Range<Int>] {
        switch self {
        case .gpt2: return PreTokenizer.gpt2Split(scalars, 0..<scalars.count)
        case .llama3: return PreTokenizer.llama3Split(scalars)
        case .smollm:
            var pieces: [Range<Int>] = []
            var start = 0
            for (i, c) in scalars.enumerated() where isNumber(c) {
                if start < i { pieces += PreTokenizer.gpt2Split(scalars, start..<i) }
                pieces.append(i..<(i + 1))
                start = i + 1
            }
            if start < scalars.count { pieces += PreTokenizer.gpt2Split(scalars, start..<scalars.count) }
            return pieces
        }
    }

    static func contraction(_ s: [Unicode.Scalar], _ p: Int, _ end: Int, caseInsensitive: Bool) -> Int? {
        guard s[p] == "'", p + 1 < end else { return nil }
        func lower(_ c: Unicode.Scalar) -> Unicode.Scalar {
            caseInsensitive && ("A"..."Z").contains(c) ? Unicode.Scalar(c.value + 32)! : c
        }
        let a = lower(s[p + 1])
        if a == "s" || a == "t" || a == "m" || a == "d" { return p + 2 }
        if p + 2 < end {
            let b = lower(s[p + 2])
            if (a == "r" && b == "e") || (a == "v" && b == "e") || (a == "l" && b == "l") { return p + 3 }
        }
        return nil
    }

    /// `\s+(?!\S)|\s+` from `p` (a whitespace scalar): the run, less its last scalar when a
    /// non-space follows and the run is longer than one.
    static func whitespace(_ s: [Unicode.Scalar], _ p: Int, _ end: Int) -> Int {
        var q = p
        while q < end && isSpace(s[q]) { q += 1 }
        if q < end && q - p > 1 { return q - 1 }
        return q
    }

    static func run(_ s: [Unicode.Scalar], from p: Int, _ end: Int, while predicate: (Unicode.Scalar) -> Bool) -> Int {
        var q = p
        while q < end && predicate(s[q]) { q += 1 }
        return q
    }

    static func gpt2Split(_ s: [Unicode.Scalar], _ range: Range<Int>) -> [Range<Int>] {
        var out: [Range<Int>] = []
        var p = range.lowerBound
        let end = range.upperBound
        while p < end {
            let c = s[p]
            var q: Int
            if let e = contraction(s, p, end, caseInsensitive: false) {
                q = e
            } else {
                let start = c == " " && p + 1 < end && !isSpace(s[p + 1]) ? p + 1 : p
                let d = s[start]
                if isLetter(d) {
                    q = run(s, from: start, end, while: isLetter)
                } else if isNumber(d) {
                    q = run(s, from: start, end, while: isNumber)
                } else if !isSpace(d) {
                    q = run(s, from: start, end, while: isOther)
                } else {
                    q = whitespace(s, p, end)
                }
            }
            out.append(p..<q)
            p = q
        }
        return out
    }

    static func llama3Split(_ s: [Unicode.Scalar]) -> [Range<Int>] {
        var out: [Range<Int>] = []
        var p = 0
        let end = s.count
        while p < end {
            let c = s[p]
            var q: Int
            if let e = contraction(s, p, end, caseInsensitive: true) {
                q = e
            } else if isLetter(c) || (c != "\r" && c != "\n" && !isLetter(c) && !isNumber(c) && p + 1 < end && isLetter(s[p + 1])) {
                q = run(s, from: isLetter(c) ? p : p + 1, end, while: isLetter)
            } else if isNumber(c) {
                q = p
                while q < end && q - p < 3 && isNumber(s[q]) { q += 1 }
            } else if let e = llama3Punctuation(s, p, end) {
                q = e
            } else {
                // Whitespace: `\s*[\r\n]+` (through the last newline of the run), else `\s+(?!\S)|\s+`.
                let runEnd = run(s, from: p, end, while: isSpace)
                if let lastNewline = (p..<runEnd).last(where: { s[$0] == "\r" || s[$0] == "\n" }) {
                    q = lastNewline + 1
                } else {
                    q = whitespace(s, p, end)
                }
            }
            out.append(p..<q)
            p = q
        }
        return out
    }

    /// ` ?[^\s\p{L}\p{N}]+[\r\n]*` at `p`, or nil.
    static func llama3Punctuation(_ s: [Unicode.Scalar], _ p: Int, _ end: Int) -> Int? {
        let start = s[p] == " " && p + 1 < end && isOther(s[p + 1]) ? p + 1 : p
        guard isOther(s[start]) else { return nil }
        let q = run(s, from: start, end, while: isOther)
        return run(s, from: q, end) { $0 == "\r" || $0 == "\n" }
    }
}

@inline(__always) func isLetter(_ c: Unicode.Scalar) -> Bool {
    if c.isASCII { return (c.value | 0x20) >= 0x61 && (c.value | 0x20) <= 0x7A }
    switch c.properties.generalCategory {
    case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return true
    default: return false
    }
}

@inline(__always) func isNumber(_ c: Unicode.Scalar) -> Bool {
    if c.isASCII { return c.value >= 0x30 && c.value <= 0x39 }
    switch c.properties.generalCategory {
    case .decimalNumber, .letterNumber, .otherNumber: return true
    default: return false
    }
}

@inline(__always) func isSpace(_ c: Unicode.Scalar) -> Bool {
    if c.isASCII { return c == " " || (c.value >= 0x09 && c.value <= 0x0D) }
    return c.properties.isWhitespace
}

@inline(__always) func isOther(_ c: Unicode.Scalar) -> Bool { !isSpace(c) && !isLetter(c) && !isNumber(c) }
