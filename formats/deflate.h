/* deflate.h: zlib streams (RFC 1950) of deflate data (RFC 1951), and the CRC-32 and Adler-32 checksums. */
#ifndef I2V_DEFLATE_H
#define I2V_DEFLATE_H

#include <stddef.h>
#include <stdint.h>
#include "base/base.h"

uint32_t crc32_update(uint32_t crc, const uint8_t *p, size_t n);     /* PNG/zip CRC-32; start from 0 */
uint32_t adler32_update(uint32_t adler, const uint8_t *p, size_t n); /* start from 1 */
/* Inflates one zlib stream into dst[0..cap). Errors: a bad header, a preset dictionary, a bad block type,
 * bad Huffman tables, a code or distance out of range, output past cap, a truncated stream, a wrong
 * Adler-32. *out_n receives the number of bytes written. `name` names the stream in messages. */
int zlib_decompress(const uint8_t *src, size_t n, uint8_t *dst, size_t cap, size_t *out_n, const char *name,
                    I2vError *err);
/* A zlib stream of src; level 1..9 trades speed for size like zlib's levels (6 is zlib's default). */
uint8_t *zlib_compress(const uint8_t *src, size_t n, int level, size_t *out_n);

#endif
