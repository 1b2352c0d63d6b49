// nghttp2 for Swift: the library's header plus plain accessors for the frame union and the data
// source union, which Swift reads awkwardly. Everything here is `static inline`: a system-library
// target has no .c file of its own.
#ifndef CNGHTTP2_SHIM_H
#define CNGHTTP2_SHIM_H

#include <nghttp2/nghttp2.h>
#include <stdint.h>

static inline uint8_t csh2_frame_type(const nghttp2_frame *f) { return f->hd.type; }
static inline uint8_t csh2_frame_flags(const nghttp2_frame *f) { return f->hd.flags; }
static inline int32_t csh2_frame_stream(const nghttp2_frame *f) { return f->hd.stream_id; }
static inline int csh2_headers_category(const nghttp2_frame *f) { return (int)f->headers.cat; }
static inline uint32_t csh2_rst_error(const nghttp2_frame *f) { return f->rst_stream.error_code; }

/// Submits a response whose body (if `has_body`) is read from `source` by `read_cb`.
static inline int csh2_submit_response(nghttp2_session *s, int32_t stream_id, const nghttp2_nv *nva,
                                       size_t nvlen, void *source, nghttp2_data_source_read_callback read_cb) {
    if (read_cb == NULL) return nghttp2_submit_response(s, stream_id, nva, nvlen, NULL);
    nghttp2_data_provider dp;
    dp.source.ptr = source;
    dp.read_callback = read_cb;
    return nghttp2_submit_response(s, stream_id, nva, nvlen, &dp);
}

/// Submits a request (a tunnel's extended CONNECT) whose body is read from `source` by `read_cb`;
/// returns the stream id or a negative error.
static inline int32_t csh2_submit_request(nghttp2_session *s, const nghttp2_nv *nva, size_t nvlen, void *source,
                                          nghttp2_data_source_read_callback read_cb, void *stream_user_data) {
    nghttp2_data_provider dp;
    dp.source.ptr = source;
    dp.read_callback = read_cb;
    return nghttp2_submit_request(s, NULL, nva, nvlen, &dp, stream_user_data);
}

static inline uint8_t csh2_settings_ack(const nghttp2_frame *f) { return f->hd.flags & NGHTTP2_FLAG_ACK; }

static inline void *csh2_source_ptr(nghttp2_data_source *source) { return source->ptr; }

#endif
