# One epoch of mini-batch gradient descent for linear and logistic regression.
#
# Included, after _engine.pxi, by one module per SIMD level (_engine_<level>.pyx).
# The whole epoch runs without the GIL: batch assembly in the given (shuffled)
# order, forward pass and gradient through BLAS, loss, and the optimizer's
# update: the optimizer's plan checks and gathers its step once for the epoch
# (prepare), and takes it once per batch (advance), as Optimizer.step would.
# The parameters are one flat vector: the (n_outputs, n_features) weights row
# by row, then the intercepts.
from cython cimport floating
from libc.math cimport NAN, exp, isfinite, log
from cpython.pycapsule cimport PyCapsule_GetPointer
from libc.stdint cimport UINT32_MAX, uint32_t, uint64_t
from libc.string cimport memcpy, memset
from numpy.random cimport bitgen_t
from scipy.linalg.cython_blas cimport dgemm, dgemv, sgemm, sgemv

cdef extern from "_prefetch.h":
    void prefetch "fastgd_prefetch"(const void* start, size_t bytes) noexcept nogil

cdef extern from "_logloss.h":
    void exp_log1p_double "fastgd_exp_log1p_double"(
        const double* z, double* e, double* softplus, Py_ssize_t n) noexcept nogil
    void exp_log1p_float "fastgd_exp_log1p_float"(
        const float* z, float* e, float* softplus, Py_ssize_t n) noexcept nogil

# How many rows ahead of the one being copied a shuffled batch asks for its rows:
# a shuffled row is a DRAM access the hardware prefetcher cannot foresee.  On a
# Zen 3 core, A/B runs of a 100,000 x 100 epoch gave 5-15% for 4 to 8 rows ahead
# (noisy; one run showed no gain), less for 16 or more.
cdef enum:
    ROWS_AHEAD = 8
    # and for the targets (and sample weights) of shuffled rows: one line each, read only
    # after the batch's forward pass, so further ahead (a whole batch at the default size)
    TARGETS_AHEAD = 32

cdef enum Loss:
    SQUARED       # (score - y)^2 / 2
    LOG           # binary log loss, y in {0, 1}
    MULTINOMIAL   # softmax cross-entropy, y the class index

LOSSES = {"squared": SQUARED, "log": LOG, "multinomial": MULTINOMIAL}
cdef inline void gemv(char* trans, int m, int n, floating alpha, floating* a, int lda,
                      floating* x, floating beta, floating* y) noexcept nogil:
    cdef int one = 1
    if floating is float:
        sgemv(trans, &m, &n, &alpha, a, &lda, x, &one, &beta, y, &one)
    else:
        dgemv(trans, &m, &n, &alpha, a, &lda, x, &one, &beta, y, &one)


cdef inline void gemm(char* transa, char* transb, int m, int n, int k, floating alpha,
                      floating* a, int lda, floating* b, int ldb, floating beta, floating* c, int ldc) noexcept nogil:
    if floating is float:
        sgemm(transa, transb, &m, &n, &k, &alpha, a, &lda, b, &ldb, &beta, c, &ldc)
    else:
        dgemm(transa, transb, &m, &n, &k, &alpha, a, &lda, b, &ldb, &beta, c, &ldc)


cdef inline floating dot(const floating* a, const floating* b, Py_ssize_t n) noexcept nogil:
    """a . b in eight running sums, added in a fixed order: the compiler vectorizes the eight
    (no reassociation), so every SIMD level gives the same bits."""
    cdef floating part[8]
    cdef Py_ssize_t i, q, whole = n - n % 8
    for q in range(8):
        part[q] = 0
    for i in range(0, whole, 8):
        for q in range(8):
            part[q] = part[q] + a[i + q] * b[i + q]
    for i in range(whole, n):
        part[0] = part[0] + a[i] * b[i]
    return ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]))


cdef inline void exp_log1p(const floating* z, floating* e, floating* softplus, Py_ssize_t n) noexcept nogil:
    """exp(-|z|) and log1p of it for each score of a batch, in vectorized loops (_logloss.h)."""
    if floating is float:
        exp_log1p_float(z, e, softplus, n)
    else:
        exp_log1p_double(z, e, softplus, n)


cdef inline floating log_loss_and_sigmoid(floating z, floating e, floating softplus, floating target,
                                          floating* probability) noexcept nogil:
    """log(1 + exp(z)) - target * z, and sigmoid(z) into *probability, given e = exp(-|z|) and
    softplus = log1p(e): without overflow, in the data's precision."""
    probability[0] = 1 / (1 + e) if z >= 0 else e / (1 + e)
    return max(z, <floating>0) + softplus - target * z


cdef double batch_residuals(floating* scores, const floating* y, const floating* sample_weight,
                            const cnp.npy_intp* rows, Py_ssize_t m, Py_ssize_t k, Loss loss,
                            floating* scratch) noexcept nogil:
    """Turn the batch's scores into weighted d(loss)/d(score), in place; return the weighted loss sum.
    scratch holds 2 * m values."""
    cdef Py_ssize_t r, c, row
    cdef double total = 0, z, w, top, norm
    cdef floating* s
    cdef floating probability
    if loss == SQUARED and k == 1:  # a loop of its own keeps the running total in a register
        for r in range(m):
            row = rows[r]
            w = 1 if sample_weight == NULL else sample_weight[row]
            z = scores[r] - y[row]
            total += w * 0.5 * z * z
            scores[r] = w * z
        return total
    if loss == SQUARED:  # k targets a row: y is (n, k), row by row
        for r in range(m):
            row = rows[r]
            w = 1 if sample_weight == NULL else sample_weight[row]
            for c in range(k):
                z = scores[r * k + c] - y[row * k + c]
                total += w * 0.5 * z * z
                scores[r * k + c] = w * z
        return total
    if loss == LOG:
        exp_log1p(scores, scratch, scratch + m, m)
    for r in range(m):
        row = rows[r]
        w = 1 if sample_weight == NULL else sample_weight[row]
        s = scores + r * k
        if loss == LOG:
            total += w * log_loss_and_sigmoid(s[0], scratch[r], scratch[m + r], y[row], &probability)
            s[0] = w * (probability - y[row])
        else:
            top = s[0]
            for c in range(1, k):
                top = max(top, <double>s[c])
            norm = 0
            for c in range(k):
                norm += exp(s[c] - top)
            norm = top + log(norm)
            total += w * (norm - s[<Py_ssize_t>y[row]])
            for c in range(k):
                s[c] = w * (exp(s[c] - norm) - (1 if c == <Py_ssize_t>y[row] else 0))
    return total


cdef double run_epoch(
    const floating* X, const floating* y, const floating* sample_weight, const cnp.npy_intp* order,
    bint in_order, Py_ssize_t n, Py_ssize_t d, Py_ssize_t k, Py_ssize_t batch_size, Loss loss, double alpha,
    bint fit_intercept, floating* theta, floating* grad, floating* batch_x, floating* scores,
    floating* scratch, Engine* optimizer, const double* rates, Py_ssize_t* batches_done,
) noexcept nogil:
    """Returns the epoch's weighted loss sum, or NaN at the first non-finite batch loss
    (the parameters are then as they were before that batch); counts the batches whose
    step was taken in *batches_done.  rates: each batch's learning rate, or NULL."""
    cdef Py_ssize_t start, m, r, j, c, ahead
    cdef floating* coef = theta
    cdef floating* intercept = theta + k * d
    cdef floating* coef_grad = grad
    cdef floating* intercept_grad = grad + k * d
    cdef double total = 0, batch_loss, batch_weight
    cdef floating scale, residual_sum
    cdef Py_ssize_t batch, n_batches = (n + batch_size - 1) // batch_size
    cdef Py_ssize_t y_per_row = k if loss == SQUARED else 1  # targets of a row
    for batch in range(n_batches):
        start = batch * batch_size
        m = min(batch_size, n - start)
        if in_order:  # the batch is a block of X already
            batch_x = <floating*>X + start * d
        else:
            for r in range(m):
                if start + r + ROWS_AHEAD < n:
                    prefetch(X + order[start + r + ROWS_AHEAD] * d, d * sizeof(floating))
                if start + r + TARGETS_AHEAD < n:
                    ahead = order[start + r + TARGETS_AHEAD]
                    prefetch(y + ahead * y_per_row, y_per_row * sizeof(floating))
                    if sample_weight != NULL:
                        prefetch(sample_weight + ahead, sizeof(floating))
                if m > 1:
                    memcpy(batch_x + r * d, X + order[start + r] * d, d * sizeof(floating))
            if m == 1:  # one row (stochastic gradient descent) is read where it is
                batch_x = <floating*>X + order[start] * d
        # scores = batch_x @ coef.T + intercept  (BLAS sees the row-major arrays transposed); for
        # one row, loops of their own: a BLAS call costs more than the arithmetic then
        if m == 1:
            for c in range(k):
                scores[c] = dot(coef + c * d, batch_x, d)
        elif k == 1:
            gemv("T", <int>d, <int>m, 1, batch_x, <int>d, coef, 0, scores)
        else:
            gemm("T", "N", <int>k, <int>m, <int>d, 1, coef, <int>d, batch_x, <int>d, 0, scores, <int>k)
        for r in range(m):
            for c in range(k):
                scores[r * k + c] += intercept[c]
        batch_loss = batch_residuals(scores, y, sample_weight, order + start, m, k, loss, scratch)
        if not isfinite(<floating>batch_loss):  # non-finite, or beyond the data's dtype (float32)
            return NAN
        total += batch_loss
        # gradient of the weighted mean loss + alpha/2 ||coef||^2 over the batch (a batch of
        # weights summing to 0 contributes the penalty's alone)
        batch_weight = m
        if sample_weight != NULL:
            batch_weight = 0
            for r in range(m):
                batch_weight += sample_weight[order[start + r]]
        scale = 1.0 / batch_weight if batch_weight != 0 else 0.0
        if m == 1:
            for c in range(k):
                residual_sum = scale * scores[c]
                for j in range(d):
                    coef_grad[c * d + j] = residual_sum * batch_x[j]
        elif k == 1:
            gemv("N", <int>d, <int>m, scale, batch_x, <int>d, scores, 0, coef_grad)
        else:
            gemm("N", "T", <int>d, <int>k, <int>m, scale, batch_x, <int>d, scores, <int>k, 0, coef_grad, <int>d)
        if alpha != 0:
            for j in range(k * d):
                coef_grad[j] += <floating>alpha * coef[j]
        if fit_intercept:
            for c in range(k):  # a running sum per class, in a register rather than through memory
                residual_sum = 0
                for r in range(m):
                    residual_sum += scores[r * k + c]
                intercept_grad[c] = residual_sum * scale
        else:
            memset(intercept_grad, 0, k * sizeof(floating))
        if rates != NULL:
            set_lr(optimizer, 0, rates[batch])
        advance(optimizer)
        batches_done[0] = batch + 1
    return total


def epoch(Plan optimizer, list groups, list grads, int n_threads, bint checked, cnp.ndarray X, cnp.ndarray y,
          object sample_weight, cnp.ndarray order, Py_ssize_t batch_size, str loss, double alpha,
          bint fit_intercept, object rates, bint in_order, cnp.ndarray result):
    """One epoch over X[order] in batches, each batch's gradient written into grads[0] and
    stepped by the optimizer's plan, whose one parameter is the flat vector theta; returns
    the plan's Outcome (having changed nothing unless DONE, as Plan.step).  When DONE,
    result (float64) holds the epoch's weighted loss sum (NaN if it diverged) and the number
    of batches stepped.  rates: None, or each batch's learning rate (float64).
    in_order says that order is 0..n-1, so that batches are read from X without a copy.

    X is C-contiguous (n, d); y, sample_weight and theta/grad share its dtype; theta holds
    k * d weights then k intercepts."""
    cdef int outcome
    cdef Py_ssize_t n_rows = cnp.PyArray_DIM(X, 0), d = cnp.PyArray_DIM(X, 1), done = 0
    cdef Py_ssize_t n = cnp.PyArray_SIZE(order), i  # the rows of this epoch
    cdef Py_ssize_t n_batches = (n + batch_size - 1) // batch_size
    if optimizer.n_params != 1 or grads[0] is None:
        raise ValueError("the regression epoch steps an optimizer of one parameter, the flat vector theta")
    if rates is not None and (cnp.PyArray_TYPE(<cnp.ndarray?>rates) != cnp.NPY_DOUBLE
                              or cnp.PyArray_SIZE(<cnp.ndarray>rates) < n_batches):
        raise ValueError("rates must hold a float64 learning rate for each batch")
    cdef int dtype = cnp.PyArray_TYPE(X)
    cdef Py_ssize_t k = cnp.PyArray_SIZE(<cnp.ndarray>optimizer.params[0]) // (d + 1)
    cdef Loss loss_code = LOSSES[loss]
    if not (cnp.PyArray_SIZE(y) == n_rows * (k if loss_code == SQUARED else 1) and cnp.PyArray_TYPE(y) == dtype
            and cnp.PyArray_ISCARRAY_RO(y)
            and cnp.PyArray_TYPE(order) == cnp.NPY_INTP and n > 0
            and cnp.PyArray_ISCARRAY_RO(order) and cnp.PyArray_ISCARRAY_RO(X) and (not in_order or n == n_rows)
            and (sample_weight is None or (cnp.PyArray_SIZE(<cnp.ndarray?>sample_weight) == n_rows
                                           and cnp.PyArray_TYPE(<cnp.ndarray>sample_weight) == dtype
                                           and cnp.PyArray_ISCARRAY_RO(<cnp.ndarray>sample_weight)))
            and cnp.PyArray_TYPE(result) == cnp.NPY_DOUBLE and cnp.PyArray_SIZE(result) >= 2):
        raise ValueError("X (C-contiguous), y (a row per row of X) and sample_weight must have one entry a row, in X's dtype, "
                         "order (intp) some rows (all of them in order if in_order); result two float64 values")
    cdef const cnp.npy_intp* listed = <const cnp.npy_intp*>cnp.PyArray_DATA(order)
    for i in range(n):
        if not 0 <= listed[i] < n_rows:
            raise ValueError(f"order lists row {listed[i]}; X has {n_rows} rows")
    if cnp.PyArray_TYPE(<cnp.ndarray>optimizer.params[0]) != dtype \
            or cnp.PyArray_SIZE(<cnp.ndarray>optimizer.params[0]) % (d + 1) != 0:
        raise ValueError("theta must hold k * (n_features + 1) values in X's dtype")
    grads = list(grads)
    outcome = optimizer.prepare(groups, grads, n_threads, checked)
    if outcome != DONE:
        return outcome
    cdef cnp.ndarray theta = <cnp.ndarray>optimizer.params[0], grad = <cnp.ndarray>grads[0]
    cdef bint is_float32 = cnp.PyArray_TYPE(X) == cnp.NPY_FLOAT
    cdef Py_ssize_t rows = 0 if in_order else min(batch_size, n)
    cdef cnp.ndarray batch_x = np.empty((rows, d), dtype=X.dtype)
    cdef cnp.ndarray scores = np.empty((min(batch_size, n), k), dtype=X.dtype)
    cdef cnp.ndarray scratch = np.empty(2 * min(batch_size, n) if loss_code == LOG else 0, dtype=X.dtype)
    cdef void* batch_x_data = cnp.PyArray_DATA(batch_x)
    cdef void* scores_data = cnp.PyArray_DATA(scores)
    cdef void* scratch_data = cnp.PyArray_DATA(scratch)
    cdef const void* x_data = cnp.PyArray_DATA(X)
    cdef const void* y_data = cnp.PyArray_DATA(y)
    cdef void* theta_data = cnp.PyArray_DATA(theta)
    cdef void* grad_data = cnp.PyArray_DATA(grad)
    cdef const cnp.npy_intp* rows_order = <const cnp.npy_intp*>cnp.PyArray_DATA(order)
    cdef void* weights = NULL if sample_weight is None else cnp.PyArray_DATA(<cnp.ndarray>sample_weight)
    cdef const double* batch_rates = NULL
    if rates is not None:
        batch_rates = <double*>cnp.PyArray_DATA(<cnp.ndarray>rates)
    cdef Engine* engine = &optimizer.engine
    cdef double total
    with nogil:
        if is_float32:
            total = run_epoch(<const float*>x_data, <const float*>y_data,
                              <const float*>weights, rows_order, in_order, n, d, k, batch_size, loss_code, alpha,
                              fit_intercept, <float*>theta_data, <float*>grad_data,
                              <float*>batch_x_data, <float*>scores_data, <float*>scratch_data,
                              engine, batch_rates, &done)
        else:
            total = run_epoch(<const double*>x_data, <const double*>y_data,
                              <const double*>weights, rows_order, in_order, n, d, k, batch_size, loss_code, alpha,
                              fit_intercept, <double*>theta_data, <double*>grad_data,
                              <double*>batch_x_data, <double*>scores_data, <double*>scratch_data,
                              engine, batch_rates, &done)
    if rates is not None:
        optimizer.forget_lr(0)
    result[0], result[1] = total, done
    return outcome


def log_loss_terms(z):
    """exp(-|z|) and log1p(exp(-|z|)) for each score in z (float32 stays float32, anything
    else becomes float64), as an epoch of the log loss computes them (exposed for tests)."""
    z = np.ascontiguousarray(z, dtype=np.float32 if np.asarray(z).dtype == np.float32 else np.float64)
    cdef cnp.ndarray e = np.empty_like(z), softplus = np.empty_like(z)
    if cnp.PyArray_TYPE(z) == cnp.NPY_FLOAT:
        exp_log1p(<float*>cnp.PyArray_DATA(z), <float*>cnp.PyArray_DATA(e),
                  <float*>cnp.PyArray_DATA(softplus), cnp.PyArray_SIZE(z))
    else:
        exp_log1p(<double*>cnp.PyArray_DATA(z), <double*>cnp.PyArray_DATA(e),
                  <double*>cnp.PyArray_DATA(softplus), cnp.PyArray_SIZE(z))
    return e, softplus


cdef inline uint64_t uniform_up_to(bitgen_t* bits, uint64_t high) noexcept nogil:
    """A uniform integer in [0, high].  Below 2^32, Lemire's multiply-and-shift of one 32-bit
    draw (redrawn only in the rare biased zone); above, 64-bit draws under the smallest
    all-ones mask >= high, redrawn while above high."""
    cdef uint32_t span, threshold
    cdef uint64_t product, mask = high, value
    if high < UINT32_MAX:
        span = <uint32_t>high + 1
        product = <uint64_t>bits.next_uint32(bits.state) * span
        if <uint32_t>product < span:
            threshold = (0 - span) % span  # 2^32 mod span: the draws that would bias the result
            while <uint32_t>product < threshold:
                product = <uint64_t>bits.next_uint32(bits.state) * span
        return product >> 32
    mask |= mask >> 1
    mask |= mask >> 2
    mask |= mask >> 4
    mask |= mask >> 8
    mask |= mask >> 16
    mask |= mask >> 32
    value = bits.next_uint64(bits.state) & mask
    while value > high:
        value = bits.next_uint64(bits.state) & mask
    return value


def shuffle(cnp.ndarray order, object bit_generator):
    """Fill order (a C-contiguous intp array) with a random permutation of 0..len(order)-1,
    drawn from a NumPy bit generator (Fisher-Yates), without the GIL: the same generator
    state gives the same permutation, for the compiled loop and the NumPy reference alike."""
    cdef bitgen_t* bits = <bitgen_t*>PyCapsule_GetPointer(bit_generator.capsule, "BitGenerator")
    cdef cnp.npy_intp* out = <cnp.npy_intp*>cnp.PyArray_DATA(order)
    cdef Py_ssize_t n = cnp.PyArray_SIZE(order), i, j
    cdef cnp.npy_intp swap
    with bit_generator.lock, nogil:
        for i in range(n):
            out[i] = i
        for i in range(n - 1, 0, -1):
            j = <Py_ssize_t>uniform_up_to(bits, <uint64_t>i)
            swap = out[i]
            out[i] = out[j]
            out[j] = swap


def draws_up_to(object bit_generator, uint64_t high, Py_ssize_t count):
    """count uniform integers in [0, high] (uint64), drawn from a NumPy bit generator as
    shuffle draws them (exposed for tests: the branch for high >= 2^32 needs 2^32 rows)."""
    cdef bitgen_t* bits = <bitgen_t*>PyCapsule_GetPointer(bit_generator.capsule, "BitGenerator")
    cdef cnp.ndarray draws = np.empty(count, dtype=np.uint64)
    cdef uint64_t* out = <uint64_t*>cnp.PyArray_DATA(draws)
    cdef Py_ssize_t i
    with bit_generator.lock, nogil:
        for i in range(count):
            out[i] = uniform_up_to(bits, high)
    return draws
