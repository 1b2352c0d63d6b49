/*
 * ws.h - what bench/wsecho.c (the upstream) and bench/wsload.c (the client)
 * share: SHA-1 and base64 for the RFC 6455 opening handshake, frame headers,
 * masking, a monotonic clock and socket helpers. Header-only: everything is
 * static, each program includes it once.
 *
 * SHA-1 is implemented here (RFC 3174) rather than taken from libcrypto so
 * that the helpers build with a plain `cc` and no link flags; it only ever
 * hashes a 60-byte string per handshake.
 */
#ifndef SWITCHYARD_BENCH_WS_H
#define SWITCHYARD_BENCH_WS_H

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

/* RFC 6455 section 1.3: appended to Sec-WebSocket-Key before hashing. */
#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define WS_OP_CONT 0x0
#define WS_OP_BINARY 0x2
#define WS_OP_CLOSE 0x8
#define WS_OP_PING 0x9
#define WS_OP_PONG 0xA
#define WS_FIN 0x80
#define WS_MAX_HEADER 14    /* 2 + 8 (64-bit length) + 4 (masking key) */

static inline uint32_t ws_rol(uint32_t x, int n) { return (x << n) | (x >> (32 - n)); }

static void ws_sha1_block(uint32_t h[5], const unsigned char *p) {
    uint32_t w[80];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 80; i++) w[i] = ws_rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (int i = 0; i < 80; i++) {
        uint32_t f, k;
        if (i < 20) { f = (b & c) | (~b & d); k = 0x5A827999; }
        else if (i < 40) { f = b ^ c ^ d; k = 0x6ED9EBA1; }
        else if (i < 60) { f = (b & c) | (b & d) | (c & d); k = 0x8F1BBCDC; }
        else { f = b ^ c ^ d; k = 0xCA62C1D6; }
        uint32_t t = ws_rol(a, 5) + f + e + k + w[i];
        e = d; d = c; c = ws_rol(b, 30); b = a; a = t;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e;
}

static void ws_sha1(const unsigned char *msg, size_t len, unsigned char out[20]) {
    uint32_t h[5] = { 0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0 };
    unsigned char block[64];
    size_t i = 0;
    for (; i + 64 <= len; i += 64) ws_sha1_block(h, msg + i);
    size_t rest = len - i;
    memset(block, 0, sizeof block);
    memcpy(block, msg + i, rest);
    block[rest] = 0x80;
    if (rest >= 56) {
        ws_sha1_block(h, block);
        memset(block, 0, sizeof block);
    }
    uint64_t bits = (uint64_t)len * 8;
    for (int k = 0; k < 8; k++) block[63 - k] = (unsigned char)(bits >> (8 * k));
    ws_sha1_block(h, block);
    for (int k = 0; k < 5; k++) {
        out[4 * k] = (unsigned char)(h[k] >> 24);
        out[4 * k + 1] = (unsigned char)(h[k] >> 16);
        out[4 * k + 2] = (unsigned char)(h[k] >> 8);
        out[4 * k + 3] = (unsigned char)h[k];
    }
}

/* Standard base64 with padding; out needs 4 * ceil(n / 3) + 1 bytes. */
static void ws_base64(const unsigned char *in, size_t n, char *out) {
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n) v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n) v |= in[i + 2];
        out[o++] = tab[(v >> 18) & 63];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = i + 1 < n ? tab[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? tab[v & 63] : '=';
    }
    out[o] = '\0';
}

/* Sec-WebSocket-Accept for a Sec-WebSocket-Key (RFC 6455 section 4.2.2):
 * base64(SHA-1(key + GUID)), always 28 characters. */
static void ws_accept(const char *key, size_t key_len, char out[29]) {
    unsigned char buf[128], digest[20];
    if (key_len > sizeof buf - sizeof WS_GUID) key_len = sizeof buf - sizeof WS_GUID;
    memcpy(buf, key, key_len);
    memcpy(buf + key_len, WS_GUID, sizeof WS_GUID - 1);
    ws_sha1(buf, key_len + sizeof WS_GUID - 1, digest);
    ws_base64(digest, sizeof digest, out);
}

/* Writes a frame header (RFC 6455 section 5.2) and returns its length.
 * b0 is the first byte as is (FIN, RSV bits, opcode); mask is NULL for a
 * server frame, the 4-byte masking key for a client frame. */
static size_t ws_frame_header(unsigned char *p, unsigned b0, uint64_t len, const unsigned char *mask) {
    size_t n = 0;
    unsigned m = mask ? 0x80 : 0;
    p[n++] = (unsigned char)b0;
    if (len < 126) {
        p[n++] = (unsigned char)(m | len);
    } else if (len <= 0xFFFF) {
        p[n++] = (unsigned char)(m | 126);
        p[n++] = (unsigned char)(len >> 8);
        p[n++] = (unsigned char)len;
    } else {
        p[n++] = (unsigned char)(m | 127);
        for (int k = 7; k >= 0; k--) p[n++] = (unsigned char)(len >> (8 * k));
    }
    if (mask) {
        memcpy(p + n, mask, 4);
        n += 4;
    }
    return n;
}

/* Bytes needed for the header that starts with b1 (the second byte), before
 * the masking key: 2, 4 or 10. */
static inline size_t ws_header_base(unsigned b1) {
    unsigned l = b1 & 0x7F;
    return l == 126 ? 4 : l == 127 ? 10 : 2;
}

/* The payload length of a header whose first ws_header_base() bytes are at p. */
static uint64_t ws_payload_len(const unsigned char *p) {
    unsigned l = p[1] & 0x7F;
    if (l < 126) return l;
    if (l == 126) return (uint64_t)p[2] << 8 | p[3];
    uint64_t v = 0;
    for (int k = 0; k < 8; k++) v = v << 8 | p[2 + k];
    return v;
}

/* dst[i] = src[i] ^ key[(pos + i) % 4] (RFC 6455 section 5.3), 8 bytes at a
 * time; dst may equal src. pos is the offset of src[0] in the payload. */
static void ws_mask(unsigned char *dst, const unsigned char *src, size_t n, const unsigned char key[4], uint64_t pos) {
    unsigned char k[8];
    for (int i = 0; i < 8; i++) k[i] = key[(pos + (uint64_t)i) & 3];
    uint64_t m;
    memcpy(&m, k, 8);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t v;
        memcpy(&v, src + i, 8);
        v ^= m;
        memcpy(dst + i, &v, 8);
    }
    for (; i < n; i++) dst[i] = src[i] ^ k[i & 7];
}

static inline uint64_t ws_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline void ws_nodelay(int fd) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* Case-insensitive search for a header field "name:" at the start of a line
 * of the head [p, p + n); returns its value (leading blanks skipped) and its
 * length without trailing blanks, or NULL. */
static const char *ws_header_value(const char *p, size_t n, const char *name, size_t *vlen) {
    size_t nl = strlen(name);
    const char *end = p + n;
    const char *line = memchr(p, '\n', n);      /* skip the start line */
    while (line != NULL && line + 1 < end) {
        line++;
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        if (eol == NULL) eol = end;
        if ((size_t)(eol - line) > nl && line[nl] == ':' && strncasecmp(line, name, nl) == 0) {
            const char *v = line + nl + 1, *e = eol;
            while (v < e && (*v == ' ' || *v == '\t')) v++;
            while (e > v && (e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t')) e--;
            *vlen = (size_t)(e - v);
            return v;
        }
        line = eol < end ? eol : NULL;
    }
    return NULL;
}

#endif
