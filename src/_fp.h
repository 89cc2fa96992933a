/* Every multiply and add rounded apart, as -ffp-contract=off asks of GCC and Clang (fastgd/_simd.py),
 * so that every SIMD level gives the same bits.  MSVC takes no such flag: before Visual Studio 2022
 * 17.0 it contracts a * b + c into a fused multiply-add by default where /arch:AVX2 or /arch:AVX512
 * allows one; its pragma, ahead of fastgd's other headers and kernels in the module's C file, turns
 * that off (17.0 and later leave it off already).  clang-cl, given MSVC's flags, takes C99's pragma. */
#ifndef FASTGD_FP_H
#define FASTGD_FP_H

#if defined(_MSC_VER) && defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(_MSC_VER)
#pragma fp_contract(off)
#endif

#endif
