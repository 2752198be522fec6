#ifndef FIELDSYNC_CZLIB_SHIM_H
#define FIELDSYNC_CZLIB_SHIM_H
#include <zlib.h>

// deflateInit2/inflateInit2 are macros; Swift cannot call them directly.
static inline int fs_deflate_init_gzip(z_stream *s, int level) {
    return deflateInit2(s, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
}
static inline int fs_inflate_init_gzip(z_stream *s) {
    return inflateInit2(s, 15 + 32); // gzip or zlib, auto-detected
}
#endif
