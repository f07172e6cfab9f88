/* simd.h: the only place in i2v with SIMD intrinsics.
 *
 * One vector type `vreal` of VLEN lanes and a handful of inline operations on it, chosen at compile time:
 *   AVX-512F (16 floats), AVX2 + FMA (8 floats), NEON on AArch64 (4 floats), or scalar (1 lane of `real`).
 * The scalar path is always built and is what -DI2V_PORTABLE selects (no intrinsics, no builtins), and
 * what the double build (-DI2V_DOUBLE) uses: the vector paths are float-only.
 * What it is not: a general SIMD library. Kernels (gemm.c, conv.c) are written once against these
 * operations; only block sizes differ per instruction set.
 */
#ifndef I2V_SIMD_H
#define I2V_SIMD_H

#include "tensor.h"

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
#endif

/* A hint to the cache, and a polite spin-wait; both no-ops in the portable build. */
#if !defined(I2V_PORTABLE) && defined(__GNUC__)
static inline void simd_prefetch(const void *p) { __builtin_prefetch(p, 0, 3); }
static inline void simd_prefetch_w(const void *p) { __builtin_prefetch(p, 1, 3); }
#else
static inline void simd_prefetch(const void *p) { (void)p; }
static inline void simd_prefetch_w(const void *p) { (void)p; }
#endif
#if !defined(I2V_PORTABLE) && defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
static inline void simd_pause(void) { __builtin_ia32_pause(); }
#elif !defined(I2V_PORTABLE) && defined(__GNUC__) && defined(__aarch64__)
static inline void simd_pause(void) { __asm__ __volatile__("yield"); }
#else
static inline void simd_pause(void) {}
#endif

#endif
