/* simd.h: the only place in i2v with SIMD intrinsics.
 *
 * One vector type `vreal` of VLEN lanes and a handful of inline operations on it, chosen at compile time:
 *   AVX-512F (16 floats), AVX2 + FMA (8 floats), NEON on AArch64 (4 floats), or scalar (1 lane of `real`).
 * The scalar path is always built and is what -DI2V_PORTABLE selects (no intrinsics, no builtins), and
 * what the double build (-DI2V_DOUBLE) uses: the vector paths are float-only.
 * What it is not: a general SIMD library. Kernels (kernels/gemm.c) are written once against these
 * operations; only block sizes differ per instruction set.
 */
#ifndef I2V_SIMD_H
#define I2V_SIMD_H

#include "base/base.h"

#if defined(I2V_PORTABLE) || defined(I2V_DOUBLE)
#define SIMD_SCALAR 1
#elif defined(__AVX512F__)
#define SIMD_AVX512 1
#elif defined(__AVX2__) && defined(__FMA__)
#define SIMD_AVX2 1
#elif defined(__ARM_NEON) && defined(__aarch64__)
#define SIMD_NEON 1
#else
#define SIMD_SCALAR 1
#endif

#if defined(SIMD_AVX512)
#include <immintrin.h>
#define SIMD_NAME "avx512"
#define VLEN 16
typedef __m512 vreal;
static inline vreal vzero(void) { return _mm512_setzero_ps(); }
static inline vreal vset1(real x) { return _mm512_set1_ps(x); }
static inline vreal vload(const real *p) { return _mm512_loadu_ps(p); }
static inline void vstore(real *p, vreal v) { _mm512_storeu_ps(p, v); }
static inline vreal vadd(vreal a, vreal b) { return _mm512_add_ps(a, b); }
static inline vreal vmul(vreal a, vreal b) { return _mm512_mul_ps(a, b); }
static inline vreal vfma(vreal a, vreal b, vreal c) { return _mm512_fmadd_ps(a, b, c); } /* a*b + c */
/* r[i][j] <- r[j][i] for a VLEN x VLEN block (used by packing). 16x16: pairs of rows interleave
 * (unpack), then 4x4 blocks form within each 128-bit lane (shuffle_ps), then the lanes of four
 * registers transpose as a 4x4 matrix of lanes (two rounds of shuffle_f32x4). */
static inline void vtranspose(vreal r[VLEN]) {
    __m512 t[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {  /* r[4b + c], lane l: column 4l + c of rows 4b..4b+3 */
        r[i] = _mm512_shuffle_ps(t[i], t[i + 2], 0x44);
        r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], 0xEE);
        r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
    }
    for (int c = 0; c < 4; c++) {
        __m512 p0 = _mm512_shuffle_f32x4(r[c], r[4 + c], 0x44), p1 = _mm512_shuffle_f32x4(r[c], r[4 + c], 0xEE);
        __m512 p2 = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0x44);
        __m512 p3 = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0xEE);
        t[c] = _mm512_shuffle_f32x4(p0, p2, 0x88);
        t[4 + c] = _mm512_shuffle_f32x4(p0, p2, 0xDD);
        t[8 + c] = _mm512_shuffle_f32x4(p1, p3, 0x88);
        t[12 + c] = _mm512_shuffle_f32x4(p1, p3, 0xDD);
    }
    for (int i = 0; i < 16; i++) r[i] = t[i];
}

#elif defined(SIMD_AVX2)
#include <immintrin.h>
#define SIMD_NAME "avx2"
#define VLEN 8
typedef __m256 vreal;
static inline vreal vzero(void) { return _mm256_setzero_ps(); }
static inline vreal vset1(real x) { return _mm256_set1_ps(x); }
static inline vreal vload(const real *p) { return _mm256_loadu_ps(p); }
static inline void vstore(real *p, vreal v) { _mm256_storeu_ps(p, v); }
static inline vreal vadd(vreal a, vreal b) { return _mm256_add_ps(a, b); }
static inline vreal vmul(vreal a, vreal b) { return _mm256_mul_ps(a, b); }
static inline vreal vfma(vreal a, vreal b, vreal c) { return _mm256_fmadd_ps(a, b, c); }
/* 8x8: unpack, 4x4 blocks within each 128-bit lane, then swap lanes (permute2f128). */
static inline void vtranspose(vreal r[VLEN]) {
    __m256 t[8];
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 8; i += 4) {
        r[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
        r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
        r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
    }
    for (int c = 0; c < 4; c++) {
        t[c] = _mm256_permute2f128_ps(r[c], r[4 + c], 0x20);
        t[4 + c] = _mm256_permute2f128_ps(r[c], r[4 + c], 0x31);
    }
    for (int i = 0; i < 8; i++) r[i] = t[i];
}

#elif defined(SIMD_NEON)
#include <arm_neon.h>
#define SIMD_NAME "neon"
#define VLEN 4
typedef float32x4_t vreal;
static inline vreal vzero(void) { return vdupq_n_f32(0.0f); }
static inline vreal vset1(real x) { return vdupq_n_f32(x); }
static inline vreal vload(const real *p) { return vld1q_f32(p); }
static inline void vstore(real *p, vreal v) { vst1q_f32(p, v); }
static inline vreal vadd(vreal a, vreal b) { return vaddq_f32(a, b); }
static inline vreal vmul(vreal a, vreal b) { return vmulq_f32(a, b); }
static inline vreal vfma(vreal a, vreal b, vreal c) { return vfmaq_f32(c, a, b); }
/* 4x4: trn pairs rows 0/1 and 2/3, then the 64-bit halves recombine. */
static inline void vtranspose(vreal r[VLEN]) {
    float32x4x2_t t01 = vtrnq_f32(r[0], r[1]), t23 = vtrnq_f32(r[2], r[3]);
    r[0] = vcombine_f32(vget_low_f32(t01.val[0]), vget_low_f32(t23.val[0]));
    r[1] = vcombine_f32(vget_low_f32(t01.val[1]), vget_low_f32(t23.val[1]));
    r[2] = vcombine_f32(vget_high_f32(t01.val[0]), vget_high_f32(t23.val[0]));
    r[3] = vcombine_f32(vget_high_f32(t01.val[1]), vget_high_f32(t23.val[1]));
}

#else
/* Scalar: plain C that the compiler may still auto-vectorise. vfma is a*b + c, not fma(): without a
 * hardware FMA, libm's fma() is a slow exact emulation. */
#define SIMD_NAME "scalar"
#define VLEN 1
typedef real vreal;
static inline vreal vzero(void) { return 0; }
static inline vreal vset1(real x) { return x; }
static inline vreal vload(const real *p) { return *p; }
static inline void vstore(real *p, vreal v) { *p = v; }
static inline vreal vadd(vreal a, vreal b) { return a + b; }
static inline vreal vmul(vreal a, vreal b) { return a * b; }
static inline vreal vfma(vreal a, vreal b, vreal c) { return a * b + c; }
static inline void vtranspose(vreal r[VLEN]) { (void)r; }  /* a 1x1 block is its own transpose */
#endif

/* GCC turns a copy loop into a memcpy call, and with -march=native on recent Intel cores expands memcpy
 * of a size it cannot see into `rep movsq`, whose start-up costs tens of cycles: too much for the rows
 * of a few hundred bytes the GEMM packs. Functions marked with this keep their loops. */
#if defined(__GNUC__) && !defined(__clang__)
#define SIMD_KEEP_LOOPS __attribute__((optimize("no-tree-loop-distribute-patterns")))
#else
#define SIMD_KEEP_LOOPS
#endif

/* A hint to the cache, and a polite spin-wait; both no-ops in the portable build. */
#if !defined(I2V_PORTABLE) && defined(__GNUC__)
static inline void simd_prefetch(const void *p) { __builtin_prefetch(p, 0, 3); }
static inline void simd_prefetch_write(void *p) { __builtin_prefetch(p, 1, 3); }
#else
static inline void simd_prefetch(const void *p) { (void)p; }
static inline void simd_prefetch_write(void *p) { (void)p; }
#endif
#if !defined(I2V_PORTABLE) && defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
static inline void simd_pause(void) { __builtin_ia32_pause(); }
#elif !defined(I2V_PORTABLE) && defined(__GNUC__) && defined(__aarch64__)
static inline void simd_pause(void) { __asm__ __volatile__("yield"); }
#else
static inline void simd_pause(void) {}
#endif

#endif
