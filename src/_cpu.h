/* Which SIMD level this CPU and OS support: 0 baseline, 1 AVX2+FMA, 2 AVX-512 (F, BW, DQ, VL). */
#ifndef FASTGD_CPU_H
#define FASTGD_CPU_H

#if defined(_MSC_VER) && (defined(_M_X64) || defined(_M_AMD64))
#include <intrin.h>
#include <immintrin.h>
static int fastgd_simd_level(void) {
    int info[4];
    unsigned long long xcr0;
    __cpuid(info, 1);
    if (!(info[2] & (1 << 27)) || !(info[2] & (1 << 12))) return 0;  /* OSXSAVE, FMA */
    xcr0 = _xgetbv(0);
    if ((xcr0 & 0x6) != 0x6) return 0;                               /* XMM and YMM state */
    __cpuidex(info, 7, 0);
    if (!(info[1] & (1 << 5))) return 0;                             /* AVX2 */
    if ((xcr0 & 0xe0) == 0xe0 && (info[1] & (1 << 16)) && (info[1] & (1 << 17))
        && (info[1] & (1 << 30)) && (info[1] & (1u << 31)))          /* ZMM state, F, DQ, BW, VL */
        return 2;
    return 1;
}
#elif (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
static int fastgd_simd_level(void) {
    __builtin_cpu_init();
    if (!(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))) return 0;
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
        && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
        return 2;
    return 1;
}
#else
static int fastgd_simd_level(void) { return 0; }
#endif

#endif
