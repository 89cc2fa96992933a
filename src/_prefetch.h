/* Ask the CPU to start loading a range of memory that is about to be read.  Only a hint:
 * it never faults, and compiles to nothing where the compiler has no prefetch instruction. */
#ifndef FASTGD_PREFETCH_H
#define FASTGD_PREFETCH_H

#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__) || defined(__clang__)
#define FASTGD_PREFETCH_LINE(address) __builtin_prefetch((address), 0, 3)
#define FASTGD_PREFETCH_LINE_L2(address) __builtin_prefetch((address), 0, 2)
#elif defined(_MSC_VER) && (defined(_M_X64) || defined(_M_IX86))
#include <xmmintrin.h>
#define FASTGD_PREFETCH_LINE(address) _mm_prefetch((const char *)(address), _MM_HINT_T0)
#define FASTGD_PREFETCH_LINE_L2(address) _mm_prefetch((const char *)(address), _MM_HINT_T1)
#else
#define FASTGD_PREFETCH_LINE(address) ((void)(address))
#define FASTGD_PREFETCH_LINE_L2(address) ((void)(address))
#endif

/* every 64-byte cache line that holds a byte of [start, start + bytes): into L1, or with
 * outer set into the outer caches (L2) only, for memory wanted further ahead, which then does
 * not crowd out of L1 what is in use, nor hold up L1's few outstanding misses (outer is a
 * constant at every call: the test leaves the loop once the call is inlined) */
static inline void fastgd_prefetch_lines(const void *start, size_t bytes, int outer) {
    const char *line = (const char *)((uintptr_t)start & ~(uintptr_t)63);
    const char *end = (const char *)start + bytes;
    for (; line < end; line += 64) {
        if (outer) FASTGD_PREFETCH_LINE_L2(line);
        else FASTGD_PREFETCH_LINE(line);
    }
}

static inline void fastgd_prefetch(const void *start, size_t bytes) { fastgd_prefetch_lines(start, bytes, 0); }
static inline void fastgd_prefetch_far(const void *start, size_t bytes) { fastgd_prefetch_lines(start, bytes, 1); }

#endif
