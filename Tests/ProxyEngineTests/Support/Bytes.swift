@testable import HTTP1Codec
@testable import IOCore
@testable import ProxyEngine

/// The UTF-8 bytes of a literal. Test inputs are ASCII; bytes a literal cannot say (obs-text,
/// lone 0x80..0xFF) are spliced in with `+ [0x80] +`.
func b(_ s: String) -> [UInt8] { Array(s.utf8) }

/// Text of a byte range, for readable expectations (lossy for obs-text, which is fine for equality).
func text(_ bytes: some Collection<UInt8>) -> String { String(decoding: bytes, as: UTF8.self) }

/// Calls `body` with the bytes copied into a fresh allocation of exactly their size.
///
/// Every feed gets its own copy, so the code under test sees its input move between calls (as after
/// a buffer compaction) and nothing it reads past `count` is a byte it was given.
func withExactBuffer<R>(_ bytes: ArraySlice<UInt8>, _ body: (UnsafePointer<UInt8>, Int) -> R) -> R {
    let n = bytes.count
    let p = UnsafeMutablePointer<UInt8>.allocate(capacity: max(n, 1))
    defer { p.deallocate() }
    bytes.withUnsafeBufferPointer { src in
        if n > 0 { p.initialize(from: src.baseAddress!, count: n) }
    }
    return body(UnsafePointer(p), n)
}

/// Limits used by every scanner in these tests: small enough that the limit tests stay cheap.
enum Limits {
    static let firstLine = 1024
    static let headerBytes = 4096
    static let headers = 32
    static let tableCapacity = 64
}

func makeRequestScanner() -> HeadScanner {
    HeadScanner(maxFirstLine: Limits.firstLine, maxHeaderBytes: Limits.headerBytes,
                maxHeaders: Limits.headers, leadingEmptyLines: 1)
}

func makeResponseScanner() -> HeadScanner {
    HeadScanner(maxFirstLine: Limits.firstLine, maxHeaderBytes: Limits.headerBytes,
                maxHeaders: Limits.headers, leadingEmptyLines: 0)
}

/// Cut points for "every way of splitting into two reads": the first read ends at each k.
func everySplit(_ count: Int) -> [[Int]] { (0...count).map { [$0] } }

/// Cut points for one byte per read (after an empty first read).
func byteByByte(_ count: Int) -> [Int] { Array(0..<count) }
