/* Bare C floors for `python -m fastgd bench --sparse`: how fast the loops it times can run on this
 * machine with nothing around them (no Python, no checks, no objective, no options).  The README's
 * "Sparse data" section quotes these figures; they bound what fastgd's compiled epochs can reach.
 *
 *     cc -O3 -march=native -fno-math-errno -fno-trapping-math -ffp-contract=off \
 *         -o /tmp/floors benchmarks/floors.c -lm && /tmp/floors
 *
 * (fastgd's own flags, fastgd/_simd.py, with the machine's instructions.)
 *
 * Rows like bench --sparse's: ROWS CSR rows of NONZEROS float64 values at sorted random features
 * (int32 indices) of a weight vector of FEATURES doubles.  Every loop is timed over one epoch of all
 * the rows, in order and in a shuffled order; each figure is the fastest of REPEATS epochs.  The
 * shuffled epochs ask for the rows ahead as fastgd's epochs do (far ahead into L2, near into L1).
 *
 *   sum           add up the rows' values: reading them (their indices only asked for), nothing else
 *   dot           each row's dot product with the weights
 *   sgd           per-sample SGD (squared loss, so that every row steps; L2 by a scale factor): a
 *                 row's dot product, then its step
 *   lazy adam     Adam at batch 32 on the entries a batch touches (torch's SparseAdam): the batch's
 *                 dot products, its gradient summed per entry, then Adam's step at those entries,
 *                 with the weights, gradient and two moments in four arrays (fastgd's layout) or
 *                 side by side, one entry's four in 32 bytes (the fastest layout tried)
 *
 * Then a dense floor: Adam's arithmetic over DENSE float64 elements that stay in cache (1e4, where
 * `python -m fastgd bench` shows fastgd's Adam step 7x faster than torch's fused one, not more), in
 * nanoseconds an element, the fastest of 15 batches of 1,000 passes: Adam's whole update as fastgd's
 * kernel computes it (one square root, one division), the root and the division alone, the root
 * alone.
 *
 * Optional arguments: ROWS FEATURES NONZEROS REPEATS DENSE (200000 262144 100 3 10000).  The program checks that
 * the two lazy layouts give the same weights, bit for bit, and that every loop's result is finite,
 * and exits 1 if not. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef __linux__
#include <sys/mman.h>
#endif

typedef struct { double w, g, m, v; } Entry;  /* the side-by-side layout: 32 bytes, two a cache line */

static long rows = 200000, features = 262144, nonzeros = 100, repeats = 3, dense = 10000;
static int32_t *indices, *order_in, *order_shuffled;
static double *values, *labels;
static long near_rows, far_rows;
static double sink;  /* results go here, so that no loop is optimized away */

static uint64_t state = 0x9E3779B97F4A7C15u;
static uint64_t next(void) {  /* xorshift64* */
    state ^= state >> 12; state ^= state << 25; state ^= state >> 27;
    return state * 0x2545F4914F6CDD1Du;
}
static double uniform(void) { return (next() >> 11) * 0x1.0p-53; }
static int by_value(const void *a, const void *b) { return *(const int32_t *)a - *(const int32_t *)b; }

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

/* fastgd's two requests (src/_prefetch.h, src/_regression.pxi): the row far_rows ahead into L2, the
 * row near_rows ahead from there into L1.  Macros, not functions: GCC takes a function of prefetches
 * alone for one without effects, and drops its calls (fastgd's epoch writes them out in its loop) */
#define PREFETCH_LINES(start, bytes, locality)                                                       \
    for (const char *line = (const char *)((uintptr_t)(start) & ~(uintptr_t)63);                      \
         line < (const char *)(start) + (bytes); line += 64)                                            \
        __builtin_prefetch(line, 0, locality)
#define PREFETCH_ROW(order, i)                                                                         \
    do {                                                                                               \
        if ((i) + far_rows < rows) {                                                                   \
            long ahead = (order)[(i) + far_rows];                                                      \
            PREFETCH_LINES(indices + ahead * nonzeros, nonzeros * sizeof *indices, 2);                 \
            PREFETCH_LINES(values + ahead * nonzeros, nonzeros * sizeof *values, 2);                   \
        }                                                                                              \
        if ((i) + near_rows < rows) {                                                                  \
            long ahead = (order)[(i) + near_rows];                                                     \
            PREFETCH_LINES(indices + ahead * nonzeros, nonzeros * sizeof *indices, 3);                 \
            PREFETCH_LINES(values + ahead * nonzeros, nonzeros * sizeof *values, 3);                   \
        }                                                                                              \
    } while (0)

/* row r's dot product with the weights w[0], w[stride], ... in four running sums, as fastgd's */
static inline double dot_strided(long r, const double *w, long stride) {
    const int32_t *idx = indices + r * nonzeros;
    const double *x = values + r * nonzeros;
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    long p = 0;
    for (; p + 4 <= nonzeros; p += 4) {
        s0 += x[p] * w[idx[p] * stride]; s1 += x[p + 1] * w[idx[p + 1] * stride];
        s2 += x[p + 2] * w[idx[p + 2] * stride]; s3 += x[p + 3] * w[idx[p + 3] * stride];
    }
    for (; p < nonzeros; p++) s0 += x[p] * w[idx[p] * stride];
    return (s0 + s1) + (s2 + s3);
}
static inline double dot(long r, const double *w) { return dot_strided(r, w, 1); }

static double epoch_sum(const int32_t *order, double *w) {
    (void)w;
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;  /* four sums: one would wait on its additions */
    for (long i = 0; i < rows; i++) {
        PREFETCH_ROW(order, i);
        const double *x = values + (long)order[i] * nonzeros;
        long p = 0;
        for (; p + 4 <= nonzeros; p += 4) { s0 += x[p]; s1 += x[p + 1]; s2 += x[p + 2]; s3 += x[p + 3]; }
        for (; p < nonzeros; p++) s0 += x[p];
    }
    return (s0 + s1) + (s2 + s3);
}

static double epoch_dot(const int32_t *order, double *w) {
    double total = 0;
    for (long i = 0; i < rows; i++) {
        PREFETCH_ROW(order, i);
        total += dot(order[i], w);
    }
    return total;
}

/* per-sample SGD with the squared loss, so that every row takes a step, and L2 by a scale factor (as
 * scikit-learn's weight vector): the least a per-sample epoch does, a row's dot product and its step */
static double epoch_sgd(const int32_t *order, double *w) {
    const double eta = 1e-3, alpha = 1e-5;
    double scale = 1, loss = 0;
    for (long i = 0; i < rows; i++) {
        PREFETCH_ROW(order, i);
        long r = order[i];
        double residual = dot(r, w) * scale - labels[r];
        loss += residual * residual;
        scale *= 1 - eta * alpha;
        double step = -eta * residual / scale;
        const int32_t *idx = indices + r * nonzeros;
        const double *x = values + r * nonzeros;
        for (long p = 0; p < nonzeros; p++) w[idx[p]] += step * x[p];
    }
    for (long j = 0; j < features; j++) w[j] *= scale;
    return loss;
}

enum { BATCH = 32 };
static const double lr = 3e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
static int32_t *touched, *slot;  /* the batch's entries; an entry's place in them, -1 if none */
static uint8_t *seen;

static inline double adam(double *w, double *m, double *v, double g, double step_size) {
    *m += (1 - beta1) * (g - *m);
    *v += (1 - beta2) * (g * g - *v);
    return *w -= step_size * *m / (sqrt(*v) + eps);
}

/* one lazy Adam epoch; entries == NULL: four arrays (w[], then g, m, v after it), else side by side */
static double epoch_lazy(const int32_t *order, double *w, Entry *entries) {
    double *g = w + features, *m = w + 2 * features, *v = w + 3 * features, total = 0;
    static double residual[BATCH];
    long step = 0;
    for (long start = 0; start < rows; start += BATCH) {
        long size = rows - start < BATCH ? rows - start : BATCH, count = 0;
        for (long b = 0; b < size; b++) {
            PREFETCH_ROW(order, start + b);
            long r = order[start + b];
            double z = entries ? dot_strided(r, &entries->w, sizeof(Entry) / sizeof(double)) : dot(r, w);
            residual[b] = (1 / (1 + exp(-z)) - (labels[r] > 0)) / size;
        }
        for (long b = 0; b < size; b++) {
            long r = order[start + b];
            for (long p = 0; p < nonzeros; p++) {
                int32_t j = indices[r * nonzeros + p];
                double part = residual[b] * values[r * nonzeros + p];
                if (entries) {
                    if (!seen[j]) { seen[j] = 1; touched[count++] = j; entries[j].g = 0; }
                    entries[j].g += part;
                } else {  /* fastgd's: the gradient in the batch's slots */
                    if (slot[j] < 0) { slot[j] = (int32_t)count; touched[count] = j; g[count++] = 0; }
                    g[slot[j]] += part;
                }
            }
        }
        step++;
        double c1 = 1 - pow(beta1, step), c2 = sqrt(1 - pow(beta2, step)), step_size = lr * c2 / c1;
        for (long s = 0; s < count; s++) {
            int32_t j = touched[s];
            if (entries) {
                Entry *e = entries + j;
                total += adam(&e->w, &e->m, &e->v, e->g, step_size);
                seen[j] = 0;
            } else {
                total += adam(w + j, m + j, v + j, g[s], step_size);
                slot[j] = -1;
            }
        }
    }
    return total;
}

/* memory as NumPy allocates an array's: from 4 MB on, on Linux, asking for huge pages (without them, a
 * shuffled row costs a TLB miss or two more, and the shuffled epochs here took 2x as long) */
static void *allocate(size_t bytes) {
    const size_t huge = (size_t)2 << 20;
    if (bytes < 2 * huge) return malloc(bytes);
    void *memory = aligned_alloc(huge, (bytes + huge - 1) / huge * huge);
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (memory) madvise(memory, (bytes + huge - 1) / huge * huge, MADV_HUGEPAGE);
#endif
    return memory;
}

typedef double (*Epoch)(const int32_t *, double *);
static double *weights;  /* four arrays of `features` doubles */
static Entry *entries;
static double run_entries(const int32_t *order, double *w) { (void)w; return epoch_lazy(order, NULL, entries); }
static double run_arrays(const int32_t *order, double *w) { return epoch_lazy(order, w, NULL); }

/* the fastest of `repeats` epochs, in ms, each from zero weights and state */
static double best(Epoch epoch, const int32_t *order) {
    double fastest = INFINITY;
    for (long t = 0; t < repeats; t++) {
        memset(weights, 0, 4 * features * sizeof(double));
        memset(entries, 0, features * sizeof(Entry));
        double start = now(), result = epoch(order, weights), took = 1e3 * (now() - start);
        if (!isfinite(result)) { fprintf(stderr, "floors: a result is not finite\n"); exit(1); }
        sink += result;
        if (took < fastest) fastest = took;
    }
    return fastest;
}

/* Adam's arithmetic over the dense arrays p, g, m, v: kind 0 the whole update (fastgd's
 * adam_kernel without its options), 1 the root and the division, 2 the root */
static void dense_pass(int kind, double *restrict p, const double *restrict g, double *restrict m,
                       double *restrict v) {
    const double step_size = -1e-3 / (1 - beta1), inverse_correction = 1 / sqrt(1 - beta2);
    for (long i = 0; i < dense; i++) {
        if (kind == 0) {
            double mi = m[i] + (1 - beta1) * (g[i] - m[i]), vi = v[i] * beta2 + (1 - beta2) * g[i] * g[i];
            m[i] = mi;
            v[i] = vi;
            p[i] = p[i] + step_size * (mi / (sqrt(vi) * inverse_correction + eps));
        } else if (kind == 1) {
            p[i] = m[i] / (sqrt(v[i]) * inverse_correction + eps);
        } else {
            p[i] = sqrt(v[i]);
        }
    }
}

static double dense_best(int kind) {
    double *arrays = malloc(4 * dense * sizeof *arrays), fastest = INFINITY;
    if (!arrays) { fprintf(stderr, "floors: out of memory\n"); exit(1); }
    for (long i = 0; i < 4 * dense; i++) arrays[i] = 1e-3 * (1 + uniform());  /* positive, as v is */
    for (int batch = 0; batch < 15; batch++) {
        double start = now();
        for (int pass = 0; pass < 1000; pass++) dense_pass(kind, arrays, arrays + dense, arrays + 2 * dense, arrays + 3 * dense);
        double took = 1e9 * (now() - start) / (1000.0 * dense);
        if (took < fastest) fastest = took;
    }
    for (long i = 0; i < dense; i++) sink += arrays[i];
    free(arrays);
    return fastest;
}

int main(int argc, char **argv) {
    long *settings[] = {&rows, &features, &nonzeros, &repeats, &dense};
    for (int a = 1; a < argc && a <= 5; a++) *settings[a - 1] = atol(argv[a]);
    if (rows < 1 || features < nonzeros || nonzeros < 1 || repeats < 1 || features > INT32_MAX || dense < 1) {
        fprintf(stderr, "usage: floors [ROWS [FEATURES [NONZEROS [REPEATS [DENSE]]]]], FEATURES >= NONZEROS >= 1\n");
        return 2;
    }
    indices = allocate(rows * nonzeros * sizeof *indices);
    values = allocate(rows * nonzeros * sizeof *values);
    labels = malloc(rows * sizeof *labels);
    order_in = malloc(rows * sizeof *order_in);
    order_shuffled = malloc(rows * sizeof *order_shuffled);
    weights = allocate(4 * features * sizeof *weights);
    entries = aligned_alloc(64, ((features * sizeof(Entry) + 63) / 64) * 64);
    touched = malloc(BATCH * nonzeros * sizeof *touched);
    slot = malloc(features * sizeof *slot);
    seen = calloc(features, 1);
    if (!indices || !values || !labels || !order_in || !order_shuffled || !weights || !entries || !touched ||
        !slot || !seen) {
        fprintf(stderr, "floors: out of memory\n");
        return 1;
    }
    for (long j = 0; j < features; j++) slot[j] = -1;
    for (long r = 0; r < rows; r++) {
        for (long p = 0; p < nonzeros; p++) {
            indices[r * nonzeros + p] = (int32_t)(next() % (uint64_t)features);
            values[r * nonzeros + p] = -log(1 - uniform()) / sqrt((double)nonzeros);
        }
        qsort(indices + r * nonzeros, nonzeros, sizeof *indices, by_value);
        labels[r] = next() & 1 ? 1 : -1;
        order_in[r] = order_shuffled[r] = (int32_t)r;
    }
    for (long r = rows - 1; r > 0; r--) {
        long s = (long)(next() % (uint64_t)(r + 1));
        int32_t t = order_shuffled[r]; order_shuffled[r] = order_shuffled[s]; order_shuffled[s] = t;
    }
    long row_bytes = nonzeros * (sizeof(double) + sizeof(int32_t));
    near_rows = 12 * 1024 / row_bytes > 1 ? 12 * 1024 / row_bytes : 1;
    far_rows = near_rows + (96 * 1024 / row_bytes > 1 ? 96 * 1024 / row_bytes : 1);

    printf("%ld rows x %ld features, %ld nonzeros a row; ms an epoch, fastest of %ld\n\n", rows, features,
           nonzeros, repeats);
    printf("| loop | in order | shuffled |\n| --- | --- | --- |\n");
    struct { const char *name; Epoch epoch; } loops[] = {
        {"sum of the rows' values", epoch_sum},
        {"dot products", epoch_dot},
        {"per-sample SGD, a step every row", epoch_sgd},
        {"lazy Adam, batch 32, four arrays", run_arrays},
        {"lazy Adam, batch 32, side by side", run_entries},
    };
    for (size_t l = 0; l < sizeof loops / sizeof *loops; l++) {
        double in_order = best(loops[l].epoch, order_in), shuffled = best(loops[l].epoch, order_shuffled);
        printf("| %s | %.1f | %.1f |\n", loops[l].name, in_order, shuffled);
    }
    /* the two lazy layouts do the same arithmetic in the same order */
    memset(weights, 0, 4 * features * sizeof(double));
    memset(entries, 0, features * sizeof(Entry));
    epoch_lazy(order_shuffled, weights, NULL);
    epoch_lazy(order_shuffled, NULL, entries);
    for (long j = 0; j < features; j++) {
        if (weights[j] != entries[j].w) {
            fprintf(stderr, "floors: the lazy layouts differ at weight %ld: %.17g and %.17g\n", j, weights[j],
                    entries[j].w);
            return 1;
        }
    }
    printf("\nthe two lazy Adam layouts gave the same weights\n\n");
    printf("Adam's arithmetic over %ld float64 elements in cache, ns an element, fastest of 15 batches of 1000\n\n", dense);
    printf("| loop | ns an element |\n| --- | --- |\n");
    const char *kinds[] = {"Adam's update (one root, one division)", "the root and the division", "the root"};
    for (int kind = 0; kind < 3; kind++) printf("| %s | %.3f |\n", kinds[kind], dense_best(kind));
    printf("\n(checksum %.6g)\n", sink);
    return 0;
}
