/* A hint to start loading memory that is about to be read (no effect where unsupported). */
#ifndef FASTGD_PREFETCH_H
#define FASTGD_PREFETCH_H
#if defined(__GNUC__) || defined(__clang__)
#define fastgd_prefetch(address) __builtin_prefetch((address), 0, 1)
#elif defined(_MSC_VER) && (defined(_M_X64) || defined(_M_IX86))
#include <xmmintrin.h>
#define fastgd_prefetch(address) _mm_prefetch((const char *)(address), _MM_HINT_T1)
#else
#define fastgd_prefetch(address) ((void)(address))
#endif
#endif
