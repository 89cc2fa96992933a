/* The sum of squares (or of magnitudes) of four stretches of an array, read side by side.
 *
 * A norm pass reads one array from memory once; read as one stream, a core keeps too few of
 * memory's loads in flight to reach its bandwidth (40 MB of float32 took about 2.3 ms on a
 * Zen 3 core).  Reading four stretches far apart in the same loop, 32 bytes of each an
 * iteration, keeps four streams going and took about 1.2 ms.  Compilers do not write that loop
 * well from plain C (the float-to-double conversions go through the stack, a choice inside it
 * keeps it from vectorizing), hence the AVX and SSE2 paths; the three paths are exact
 * equivalents, so that every level gives the same bits: element i of stretch s joins lane
 * i % 8 of that stretch, a square is rounded before it is added (no fused multiply-add), and
 * the 32 lanes are added in one order (stretch by stretch, lane by lane).
 */
#ifndef FASTGD_NORMS_H
#define FASTGD_NORMS_H

#include <math.h>
#include <stddef.h>

#if defined(__AVX__)
#include <immintrin.h>
#define FASTGD_NORMS_AVX 1
#elif defined(__SSE2__) || defined(_M_X64) || (defined(_M_IX86_FP) && _M_IX86_FP >= 2)
#include <emmintrin.h>
#define FASTGD_NORMS_SSE2 1
#endif

#define FASTGD_STRETCHES 4
#define FASTGD_STRETCH_LANES 8

#if defined(FASTGD_NORMS_AVX)
/* the 8 elements at x as doubles, lanes 0-3 and 4-7 */
static inline void fastgd_lanes_float(const float *x, __m256d v[2]) {
    __m256 f = _mm256_loadu_ps(x);
    v[0] = _mm256_cvtps_pd(_mm256_castps256_ps128(f));
    v[1] = _mm256_cvtps_pd(_mm256_extractf128_ps(f, 1));
}
static inline void fastgd_lanes_double(const double *x, __m256d v[2]) {
    v[0] = _mm256_loadu_pd(x);
    v[1] = _mm256_loadu_pd(x + 4);
}
#define FASTGD_STRETCHES_SUM(LANES_OF)                                                        \
    const __m256d sign = _mm256_set1_pd(-0.0);                                                \
    __m256d acc[FASTGD_STRETCHES][2], v[2];                                                   \
    double lanes[4], total = 0.0;                                                             \
    ptrdiff_t i;                                                                              \
    int s, m, j;                                                                              \
    for (s = 0; s < FASTGD_STRETCHES; s++) acc[s][0] = acc[s][1] = _mm256_setzero_pd();       \
    for (i = 0; i < n; i += FASTGD_STRETCH_LANES)                                             \
        for (s = 0; s < FASTGD_STRETCHES; s++) {                                              \
            LANES_OF(x + s * stride + i, v);                                                  \
            for (m = 0; m < 2; m++)                                                           \
                acc[s][m] = _mm256_add_pd(acc[s][m], magnitudes ? _mm256_andnot_pd(sign, v[m]) \
                                                                : _mm256_mul_pd(v[m], v[m])); \
        }                                                                                     \
    for (s = 0; s < FASTGD_STRETCHES; s++)                                                    \
        for (m = 0; m < 2; m++) {                                                             \
            _mm256_storeu_pd(lanes, acc[s][m]);                                               \
            for (j = 0; j < 4; j++) total += lanes[j];                                        \
        }                                                                                     \
    return total;
#elif defined(FASTGD_NORMS_SSE2)
/* the 8 elements at x as doubles, lanes 0-1, 2-3, 4-5 and 6-7 */
static inline void fastgd_lanes_float(const float *x, __m128d v[4]) {
    __m128 low = _mm_loadu_ps(x), high = _mm_loadu_ps(x + 4);
    v[0] = _mm_cvtps_pd(low);
    v[1] = _mm_cvtps_pd(_mm_movehl_ps(low, low));
    v[2] = _mm_cvtps_pd(high);
    v[3] = _mm_cvtps_pd(_mm_movehl_ps(high, high));
}
static inline void fastgd_lanes_double(const double *x, __m128d v[4]) {
    v[0] = _mm_loadu_pd(x);
    v[1] = _mm_loadu_pd(x + 2);
    v[2] = _mm_loadu_pd(x + 4);
    v[3] = _mm_loadu_pd(x + 6);
}
#define FASTGD_STRETCHES_SUM(LANES_OF)                                                     \
    const __m128d sign = _mm_set1_pd(-0.0);                                                \
    __m128d acc[FASTGD_STRETCHES][4], v[4];                                                \
    double lanes[2], total = 0.0;                                                          \
    ptrdiff_t i;                                                                           \
    int s, m;                                                                              \
    for (s = 0; s < FASTGD_STRETCHES; s++)                                                 \
        for (m = 0; m < 4; m++) acc[s][m] = _mm_setzero_pd();                              \
    for (i = 0; i < n; i += FASTGD_STRETCH_LANES)                                          \
        for (s = 0; s < FASTGD_STRETCHES; s++) {                                           \
            LANES_OF(x + s * stride + i, v);                                               \
            for (m = 0; m < 4; m++)                                                        \
                acc[s][m] = _mm_add_pd(acc[s][m], magnitudes ? _mm_andnot_pd(sign, v[m])   \
                                                             : _mm_mul_pd(v[m], v[m]));    \
        }                                                                                  \
    for (s = 0; s < FASTGD_STRETCHES; s++)                                                 \
        for (m = 0; m < 4; m++) {                                                          \
            _mm_storeu_pd(lanes, acc[s][m]);                                               \
            total += lanes[0];                                                             \
            total += lanes[1];                                                             \
        }                                                                                  \
    return total;
#else
/* the 8 elements at x as doubles */
static inline void fastgd_lanes_float(const float *x, double v[FASTGD_STRETCH_LANES]) {
    int j;
    for (j = 0; j < FASTGD_STRETCH_LANES; j++) v[j] = (double)x[j];
}
static inline void fastgd_lanes_double(const double *x, double v[FASTGD_STRETCH_LANES]) {
    int j;
    for (j = 0; j < FASTGD_STRETCH_LANES; j++) v[j] = x[j];
}
#define FASTGD_STRETCHES_SUM(LANES_OF)                                          \
    double acc[FASTGD_STRETCHES][FASTGD_STRETCH_LANES] = {{0.0}};               \
    double v[FASTGD_STRETCH_LANES], total = 0.0;                                \
    ptrdiff_t i;                                                                \
    int s, j;                                                                   \
    for (i = 0; i < n; i += FASTGD_STRETCH_LANES)                               \
        for (s = 0; s < FASTGD_STRETCHES; s++) {                                \
            LANES_OF(x + s * stride + i, v);                                    \
            for (j = 0; j < FASTGD_STRETCH_LANES; j++)                          \
                acc[s][j] += magnitudes ? fabs(v[j]) : v[j] * v[j];             \
        }                                                                       \
    for (s = 0; s < FASTGD_STRETCHES; s++)                                      \
        for (j = 0; j < FASTGD_STRETCH_LANES; j++) total += acc[s][j];          \
    return total;
#endif

/* Sum over s < 4, i < n of f(x[s * stride + i]), f(v) = v * v, or |v| if magnitudes; n is a
 * multiple of 8.  In double for float32 elements too (a float32 square is exact there). */
static inline double fastgd_stretches_float(const float *x, ptrdiff_t stride, ptrdiff_t n, int magnitudes) {
    FASTGD_STRETCHES_SUM(fastgd_lanes_float)
}
static inline double fastgd_stretches_double(const double *x, ptrdiff_t stride, ptrdiff_t n, int magnitudes) {
    FASTGD_STRETCHES_SUM(fastgd_lanes_double)
}

#undef FASTGD_STRETCHES_SUM
#endif
