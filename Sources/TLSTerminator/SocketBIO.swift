import COpenSSL
import Glibc
import IOCore

/// The BIO every server-side TLS connection reads and writes through, instead of OpenSSL's own
/// socket BIO (`SSL_set_fd`): the connection's socket by way of `Sys`, the one door to the
/// kernel, after any bytes the connection was handed up front (a ClientHello the gateway read to
/// look at its SNI before deciding to terminate). So TLS bytes pass the same EINTR/EAGAIN/trap
/// rules as plain ones, and a ClientHello can be examined before OpenSSL sees it.
///
/// One method table for the process; each BIO's data is its `TLSConnection` (unretained: the
/// connection owns the SSL, which owns the BIO).
enum SocketBIO {
    /// Built once (the `let` initialiser runs under swift_once), then only read by OpenSSL.
    nonisolated(unsafe) static let method: OpaquePointer = makeMethod()

    private static func makeMethod() -> OpaquePointer {
        let index = BIO_get_new_index()
        guard index != -1, let m = BIO_meth_new(index | BIO_TYPE_SOURCE_SINK, "switchyard socket") else {
            fatalError("BIO_meth_new failed: out of memory at start-up")
        }
        BIO_meth_set_read_ex(m) { bio, buffer, length, done in
            guard let bio, let buffer, let done else { return 0 }
            cossl_bio_clear_retry(bio)
            return SocketBIO.owner(bio)._withUnsafeGuaranteedRef { $0.bioRead(bio, UnsafeMutableRawPointer(buffer), length, done) }
        }
        BIO_meth_set_write_ex(m) { bio, buffer, length, done in
            guard let bio, let buffer, let done else { return 0 }
            cossl_bio_clear_retry(bio)
            return SocketBIO.owner(bio)._withUnsafeGuaranteedRef { $0.bioWrite(bio, UnsafeRawPointer(buffer), length, done) }
        }
        BIO_meth_set_ctrl(m) { bio, command, _, _ in
            switch command {
            case BIO_CTRL_FLUSH: return 1  // nothing is buffered here
            case BIO_CTRL_EOF: return bio.map { cossl_bio_is_eof($0) } == 1 ? 1 : 0
            default: return 0              // no fd to hand out, no kTLS, no push/pop
            }
        }
        BIO_meth_set_create(m) { bio in
            BIO_set_init(bio, 1)
            return 1
        }
        BIO_meth_set_destroy(m) { _ in 1 }
        return m
    }

    /// The connection a BIO belongs to, borrowed (no retain/release per read or write).
    @inline(__always)
    static func owner(_ bio: OpaquePointer) -> Unmanaged<TLSConnection> {
        guard let p = BIO_get_data(bio) else { fatalError("socket BIO without a TLSConnection") }
        return Unmanaged<TLSConnection>.fromOpaque(p)
    }
}

extension TLSConnection {
    /// BIO read: the bytes handed up front first, then the socket. 1 with `done` set, or 0 with a
    /// retry flag (would block), the EOF flag (peer closed) or errno (a socket error).
    @inline(__always)
    func bioRead(_ bio: OpaquePointer, _ p: UnsafeMutableRawPointer, _ n: Int,
                 _ done: UnsafeMutablePointer<Int>) -> Int32 {
        if let prefix {
            let k = min(n, prefixCount - prefixOffset)
            p.copyMemory(from: prefix + prefixOffset, byteCount: k)
            prefixOffset += k
            if prefixOffset == prefixCount { dropPrefix() }
            done.pointee = k
            return 1
        }
        do {
            switch try Sys.read(fd, p, n) {
            case .bytes(let k):
                done.pointee = k
                return 1
            case .wouldBlock:
                cossl_bio_set_retry_read(bio)
            case .eof:
                cossl_bio_set_eof(bio)
            }
        } catch {
            errno = error.errno  // SSL_ERROR_SYSCALL reports it
        }
        return 0
    }

    @inline(__always)
    func bioWrite(_ bio: OpaquePointer, _ p: UnsafeRawPointer, _ n: Int, _ done: UnsafeMutablePointer<Int>) -> Int32 {
        do {
            switch try Sys.write(fd, p, n) {
            case .bytes(let k):
                done.pointee = k
                return 1
            case .wouldBlock:
                cossl_bio_set_retry_write(bio)
            case .eof:
                break
            }
        } catch {
            errno = error.errno
        }
        return 0
    }
}
