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
from libc.math cimport INFINITY, NAN, exp, fabs, fma, isfinite, isnan, log, log1p
from cpython.pycapsule cimport PyCapsule_GetPointer
from libc.stdint cimport UINT32_MAX, uint32_t, uint64_t
from libc.string cimport memcpy, memset
from numpy.random cimport bitgen_t
from scipy.linalg.cython_blas cimport dgemm, dgemv, sgemm, sgemv

cdef extern from "_prefetch.h":
    void prefetch "fastgd_prefetch"(const void* start, size_t bytes) noexcept nogil
    void prefetch_far "fastgd_prefetch_far"(const void* start, size_t bytes) noexcept nogil

cdef extern from "_logloss.h":
    void exp_log1p_double "fastgd_exp_log1p_double"(
        const double* z, double* e, double* softplus, Py_ssize_t n) noexcept nogil
    void exp_log1p_float "fastgd_exp_log1p_float"(
        const float* z, float* e, float* softplus, Py_ssize_t n) noexcept nogil

# How far ahead of the row in use a shuffled epoch asks for rows: a shuffled row is a
# DRAM access the hardware prefetcher cannot foresee.  Two requests, their distances in
# bytes of rows: NEAR_BYTES + FAR_BYTES ahead into L2 (many misses in flight), and
# NEAR_BYTES ahead from there into L1.  On this project's Zen 4 machine, a C loop of a
# shuffled 1e7-value epoch (dot product and update per row) took 10-11 ms with the near
# request alone (8 rows of 100 doubles), 5.6-6.2 ms with both, from rows of 30 to 1,000
# doubles; the far request into L1 (prefetcht0) gave no gain.
cdef enum:
    FAR_BYTES = 96 * 1024
    NEAR_BYTES = 12 * 1024
    # and for the targets (and sample weights) of shuffled rows: one line each, read only
    # after the batch's forward pass, so further ahead (a whole batch at the default size)
    TARGETS_AHEAD = 32


cdef inline void prefetch_rows(Py_ssize_t row_bytes, Py_ssize_t* near, Py_ssize_t* far) noexcept nogil:
    """The two prefetch distances in rows of row_bytes (at least 1 and 2)."""
    near[0] = max(1, NEAR_BYTES // max(1, row_bytes))
    far[0] = near[0] + max(1, FAR_BYTES // max(1, row_bytes))


cdef enum Loss:
    SQUARED       # (score - y)^2 / 2
    LOG           # binary log loss, y in {0, 1}
    MULTINOMIAL   # softmax cross-entropy, y the class index
    # scikit-learn's SGD losses, as its _sgd_fast defines them (y = +-1 for the margin losses;
    # epsilon: Objective.epsilon)
    HINGE         # max(0, epsilon - y z), epsilon 1 (0: the perceptron's)
    SQUARED_HINGE # max(0, epsilon - y z)^2
    MODIFIED_HUBER
    MARGIN_LOG    # log(1 + exp(-y z)), as scikit-learn evaluates it
    SQUARED_ERROR # (z - y)^2 / 2, its slope clipped as scikit-learn clips it
    HUBER         # (z - y)^2 / 2 within epsilon of y, linear beyond
    EPSILON_INSENSITIVE          # max(0, |z - y| - epsilon)
    SQUARED_EPSILON_INSENSITIVE  # max(0, |z - y| - epsilon)^2

LOSSES = {"squared": SQUARED, "log": LOG, "multinomial": MULTINOMIAL, "hinge": HINGE,
          "squared_hinge": SQUARED_HINGE, "modified_huber": MODIFIED_HUBER, "margin_log": MARGIN_LOG,
          "squared_error": SQUARED_ERROR, "huber": HUBER, "epsilon_insensitive": EPSILON_INSENSITIVE,
          "squared_epsilon_insensitive": SQUARED_EPSILON_INSENSITIVE}

#: scikit-learn clips each row's d(loss)/d(score) of its SGD losses to +-this
cdef double MAX_DLOSS = 1e12


@cython.final
@cython.auto_pickle(False)
cdef class Objective:
    """What an epoch minimizes, and how it weighs rows: the loss (and its epsilon), the L2
    (alpha) and L1 (l1) penalties, the factor of the intercept's step, and whether sample weights scale each
    row's step (scikit-learn's SGD) or give the weighted mean loss (the batch's gradient
    divided by its size times row_weight, the mean weight of the rows trained on since the fit
    began: see row_weight_of).  weight_pos, weight_neg: for scikit-learn's losses, each output's
    class weights of its +1 (> 0) and other targets (float64), or None.  l1_state: the cumulative L1
    penalty of the truncated gradient (Tsuruoka et al. 2009, as scikit-learn applies it):
    float64, each weight's applied penalty then the total; kept across the epochs of one
    call.  average: the averaged parameters (ASGD), updated after each step from step
    average_start on (the fit's steps as the caller numbers them: this epoch's first is first_step),
    or None.  plain_sgd: the optimizer steps by plain SGD, p -= lr g (one group, no momentum,
    weight decay or maximize: the caller's decision, not checked here); the epoch then takes
    the steps itself, a row's as its gradient is computed, and on sparse rows keeps the weights
    scaled and updates only the batch's nonzeros (scikit-learn's weight vector).
    lazy: on sparse rows, an optimizer other than plain SGD steps only the weights
    the batch's nonzeros touch (and the intercepts), their state alone updated (torch's
    SparseAdam); by default it takes the exact dense step on the whole gradient.
    passive_aggressive: 1 or 2 for scikit-learn's PA-I and PA-II steps with a margin loss
    (hinge, epsilon-insensitive): a row's step is min(aggressiveness, loss / ||x||^2), or
    loss / (||x||^2 + 1 / (2 aggressiveness)), in place of the learning rate times its
    gradient; 0 (the default) for gradient steps.  It applies to plain SGD's step, whose
    learning rate must then be the aggressiveness (the L1 and L2 penalties step with it).
    sgd_objective: keep scikit-learn's (>= 1.8) convergence objective, summed over the epoch's
    rows into epoch()'s result[2]: each row's loss, unweighted, plus the penalty 0.5 alpha
    ||coef||^2 + l1 ||coef||_1 (with passive-aggressive steps the loss alone) of the norms as
    scikit-learn's weight vector keeps them (see fill_norms), in sgd_norms: float64, each
    output's squares then each one's magnitudes, NaN at the start of a call (the epoch then
    computes them), kept across its epochs; with it, sgd_intercepts: float64, the intercepts
    then their averages as scikit-learn keeps them, in double through a call (the estimator
    may carry them into its next call; see kept_intercepts), where plain SGD steps rows one at
    a time (or sparse rows in batches).  lazy_average: with an average and an L1 penalty
    under plain SGD, the average as scikit-learn's weight vector keeps it, lazily: a float64
    array [S, ratio] kept across the epochs of one call, starting [1, 0] (see
    lazy_average_advance), in which a weight's later L1 truncation also enters the average (by
    the ratio), and each step's average takes the weights before their truncation; None (the
    default): the mean of the iterates, each after its truncation.  clamp_decay: plain SGD's L2
    decay 1 - lr alpha stops at 0 (scikit-learn's SGD sets the weights to zero rather than flip
    their sign), dense and sparse; by default the gradient step's, negative past lr alpha = 1."""
    cdef Loss loss
    cdef double epsilon, alpha, l1, intercept_decay, aggressiveness, row_weight
    cdef bint fit_intercept, weights_scale_steps, clamp_decay, plain_sgd
    cdef object weight_pos, weight_neg, l1_state, average, lazy_average, sgd_norms, sgd_intercepts
    cdef long long average_start, first_step
    cdef bint lazy, sgd_objective
    cdef int passive_aggressive

    def __init__(self, str loss, *, double epsilon=0, double alpha=0, double l1=0, bint fit_intercept=True,
                 double intercept_decay=1, bint weights_scale_steps=False, weight_pos=None, weight_neg=None,
                 l1_state=None, average=None, long long average_start=1, long long first_step=1, bint lazy=False,
                 int passive_aggressive=0, double aggressiveness=1, lazy_average=None, bint sgd_objective=False,
                 sgd_norms=None, sgd_intercepts=None, double row_weight=1, bint clamp_decay=False,
                 bint plain_sgd=False):
        if passive_aggressive not in (0, 1, 2):
            raise ValueError(f"passive_aggressive must be 0, 1 or 2; got {passive_aggressive}")
        if loss not in LOSSES:
            raise ValueError(f"unknown loss {loss!r}; expected one of {sorted(LOSSES)}")
        self.loss = LOSSES[loss]
        self.epsilon, self.alpha, self.l1, self.intercept_decay = epsilon, alpha, l1, intercept_decay
        self.fit_intercept, self.weights_scale_steps, self.row_weight = fit_intercept, weights_scale_steps, row_weight
        self.clamp_decay, self.plain_sgd = clamp_decay, plain_sgd
        self.weight_pos, self.weight_neg, self.l1_state, self.average = weight_pos, weight_neg, l1_state, average
        self.average_start, self.first_step = average_start, first_step
        self.lazy = lazy
        self.passive_aggressive, self.aggressiveness = passive_aggressive, aggressiveness
        self.lazy_average = lazy_average
        if sgd_objective and (sgd_norms is None or sgd_intercepts is None or LOSSES[loss] < HINGE):
            raise ValueError("sgd_objective needs one of scikit-learn's SGD losses, sgd_norms and sgd_intercepts")
        self.sgd_objective, self.sgd_norms, self.sgd_intercepts = sgd_objective, sgd_norms, sgd_intercepts
        if lazy_average is not None and (l1_state is None or average is None):
            raise ValueError("lazy_average needs l1_state and average (the caller decides when the average is lazy)")

    cdef Settings settings(self, Py_ssize_t k, Py_ssize_t d, int dtype) except *:
        """The settings for parameters of k outputs of d features in `dtype`, its arrays checked."""
        cdef Settings s
        s.loss, s.epsilon, s.alpha, s.l1 = self.loss, self.epsilon, self.alpha, self.l1
        s.intercept_decay, s.fit_intercept = self.intercept_decay, self.fit_intercept
        s.weights_scale_steps, s.row_weight, s.clamp_decay = self.weights_scale_steps, self.row_weight, self.clamp_decay
        s.plain_sgd = self.plain_sgd
        s.passive_aggressive, s.aggressiveness = self.passive_aggressive, self.aggressiveness
        s.average_start, s.first_step = self.average_start, self.first_step
        s.weight_pos = s.weight_neg = s.l1_penalty = NULL
        s.average = NULL
        s.touched, s.slots, s.gathered, s.touched_room, s.held_intercepts = NULL, NULL, NULL, 0, NULL
        s.row_norms = NULL  # the epoch's (passive-aggressive steps)
        s.sgd_objective = s.sgd_norms = s.sgd_intercepts = s.residuals = NULL  # the objective's sum: epoch()'s result[2]
        if self.sgd_objective:
            s.sgd_norms = <double*>float64_data(self.sgd_norms, 2 * k, "sgd_norms")
            s.sgd_intercepts = <double*>float64_data(self.sgd_intercepts, 2 * k, "sgd_intercepts")
        if self.weight_pos is not None:
            s.weight_pos = <const double*>float64_data(self.weight_pos, k, "weight_pos")
            s.weight_neg = <const double*>float64_data(self.weight_neg, k, "weight_neg")
        if self.l1_state is not None:
            s.l1_penalty = <double*>float64_data(self.l1_state, k * d + 1, "l1_state")
        s.lazy_average = NULL
        if self.lazy_average is not None:
            s.lazy_average = <double*>float64_data(self.lazy_average, 2, "lazy_average")
        if self.average is not None:
            if not (isinstance(self.average, cnp.ndarray) and cnp.PyArray_TYPE(self.average) == dtype
                    and cnp.PyArray_ISCARRAY(self.average) and cnp.PyArray_SIZE(self.average) == k * (d + 1)):
                raise ValueError("average must be a writable C-contiguous array of theta's size and dtype")
            s.average = cnp.PyArray_DATA(self.average)
        return s


cdef void* float64_data(object array, Py_ssize_t size, str name) except NULL:
    if not (isinstance(array, cnp.ndarray) and cnp.PyArray_TYPE(array) == cnp.NPY_DOUBLE
            and cnp.PyArray_ISCARRAY(array) and cnp.PyArray_SIZE(array) == size):
        raise ValueError(f"{name} must be a writable C-contiguous float64 array of {size} values")
    return cnp.PyArray_DATA(array)
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


cdef inline double sum_of_squares(const floating* x, Py_ssize_t n) noexcept nogil:
    """x . x summed in double as dot sums (for float64 the same bits): float32 rows whose squares
    overflow float32 keep a finite sum."""
    cdef double part[8]
    cdef Py_ssize_t i, q, whole = n - n % 8
    for q in range(8):
        part[q] = 0
    for i in range(0, whole, 8):
        for q in range(8):
            part[q] = part[q] + <double>x[i + q] * <double>x[i + q]
    for i in range(whole, n):
        part[0] = part[0] + <double>x[i] * <double>x[i]
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


cdef inline double log1p_exp(double x) noexcept nogil:
    """log(1 + exp(x)), in the ranges scikit-learn's log loss takes."""
    if x <= -37:
        return exp(x)
    if x <= -2:
        return log1p(exp(x))
    if x <= 18:
        return log(1. + exp(x))
    if x <= 33.3:
        return x + exp(-x)
    return x


cdef inline double sgd_loss(Loss loss, double y, double p, double epsilon, double* dloss) noexcept nogil:
    """scikit-learn's SGD losses at score p: the loss, and d(loss)/d(p) into *dloss."""
    cdef double z, r
    if loss == HINGE:
        z = p * y
        dloss[0] = -y if z <= epsilon else 0.0
        return epsilon - z if z <= epsilon else 0.0
    if loss == SQUARED_HINGE:
        z = epsilon - p * y
        dloss[0] = -2 * y * z if z > 0 else 0.0
        return z * z if z > 0 else 0.0
    if loss == MODIFIED_HUBER:
        z = p * y
        if z >= 1.0:
            dloss[0] = 0.0
            return 0.0
        if z >= -1.0:
            dloss[0] = 2.0 * (1.0 - z) * -y
            return (1.0 - z) * (1.0 - z)
        dloss[0] = -4.0 * y
        return -4.0 * z
    if loss == MARGIN_LOG:  # in scikit-learn's terms: y in {0, 1}, sigmoid(p) - y as it evaluates it
        y = 1.0 if y > 0 else 0.0
        if p > -37:
            z = exp(-p)
            dloss[0] = ((1 - y) - y * z) / (1 + z)
        else:
            dloss[0] = exp(p) - y
        return log1p_exp(p) - y * p
    if loss == SQUARED_ERROR:
        dloss[0] = p - y
        return 0.5 * (p - y) * (p - y)
    if loss == HUBER:
        r = p - y
        if fabs(r) <= epsilon:
            dloss[0] = r
            return 0.5 * fabs(r) ** 2
        dloss[0] = epsilon if r >= 0 else -epsilon
        return epsilon * (fabs(r) - 0.5 * epsilon)
    if loss == EPSILON_INSENSITIVE:
        dloss[0] = -1.0 if y - p > epsilon else (1.0 if p - y > epsilon else 0.0)
        r = fabs(y - p) - epsilon
        return r if r > 0 else 0.0
    # SQUARED_EPSILON_INSENSITIVE
    z = y - p
    dloss[0] = -2 * (z - epsilon) if z > epsilon else (2 * (-z - epsilon) if z < -epsilon else 0.0)
    r = fabs(y - p) - epsilon
    return r * r if r > 0 else 0.0


cdef struct Settings:  # an Objective's, for the loop without the GIL
    Loss loss
    double epsilon, alpha, l1, intercept_decay, aggressiveness
    double row_weight           # Objective.row_weight (see row_weight_of)
    int passive_aggressive
    bint fit_intercept, weights_scale_steps, clamp_decay, plain_sgd  # (see Objective)
    const double* weight_pos    # class weights per output of its +1 and -1 targets, or NULL
    const double* weight_neg
    double* l1_penalty          # k * d applied penalties, then their total; NULL without L1
    double* lazy_average        # [S, ratio] of Objective.lazy_average, or NULL (also without L1 or average)
    double* row_norms           # with passive-aggressive steps, the batch's rows' squared norms (in double)
    void* average               # the averaged parameters (X's dtype), or NULL
    double* sgd_objective       # Objective.sgd_objective's sum, or NULL when not kept
    double* sgd_norms           # Objective.sgd_norms (2 k), or NULL
    double* sgd_intercepts      # Objective.sgd_intercepts (2 k), or NULL
    double* residuals           # with it, the batch's weighted d(loss)/d(score) in double (step_residual)
    long long average_start, first_step
    # lazy updates on sparse rows (Objective.lazy): the entries a batch touches, each entry of
    # theta's place in that list (-1 when not in it), and room for the gathered arrays (see
    # advance_entries); NULL otherwise
    Py_ssize_t* touched
    Py_ssize_t touched_room     # the entries touched may list (then the k intercepts)
    cnp.int32_t* slots
    char* gathered
    # without fit_intercept, the k intercepts as the epoch began (theta's dtype), put back after
    # each optimizer step (see hold_intercepts); NULL otherwise
    void* held_intercepts


cdef inline Py_ssize_t targets_per_row(Loss loss, Py_ssize_t k) noexcept nogil:
    """The squared loss and scikit-learn's have a target per output (+-1 for the margin losses:
    one vs all); the log losses one class index a row."""
    return k if loss == SQUARED or loss >= HINGE else 1


cdef inline double squared_norm(const floating* x, Py_ssize_t n) noexcept nogil:
    """The sum of x's squares in double, one by one, as scikit-learn sums them."""
    cdef double total = 0
    cdef Py_ssize_t i
    for i in range(n):
        total += <double>x[i] * <double>x[i]
    return total


cdef inline bint passes_over(const Settings* settings, Py_ssize_t m) noexcept nogil:
    """Whether the epoch passes over this batch altogether (no step, not counted): PA-I's lone
    row of zeros, as scikit-learn's."""
    return m == 1 and settings.passive_aggressive == 1 and settings.row_norms[0] == 0


cdef inline double passive_aggressive(const Settings* settings, double loss, double squared_norm) noexcept nogil:
    """The factor of a margin loss's slope (+-1 where the loss is not 0) that makes the
    learning rate's step (the aggressiveness C) the passive-aggressive one: min(C, loss / ||x||^2)
    (PA-I; none for a zero row) or loss / (||x||^2 + 1 / (2 C)) (PA-II), as scikit-learn's."""
    cdef double c = settings.aggressiveness
    if settings.passive_aggressive == 1:
        return min(c, loss / squared_norm) / c if squared_norm != 0 else 0.0
    return loss / (squared_norm + 0.5 / c) / c


# sgd_objective's norms, kept as scikit-learn's weight vector keeps them (its add, scale and
# reset): after a row's step moves an output's weights, the squares and magnitudes of the
# weights the row lists (all of them for a dense row; on sparse rows those of its nonzeros
# alone), each L2 decay multiplying them; an L1 truncation leaves them as they are.  Steps
# other than plain SGD's take the same rule: after a step, the weights it moved (all, or a
# lazy step's touched ones).  sgd_norms holds each output's squares, then its magnitudes.

cdef inline void set_norms(const Settings* settings, Py_ssize_t k, Py_ssize_t c, double squares,
                           double magnitudes) noexcept nogil:
    settings.sgd_norms[c] = squares
    settings.sgd_norms[k + c] = magnitudes


cdef inline void output_norms(const Settings* settings, const floating* coef, Py_ssize_t k, Py_ssize_t d,
                              Py_ssize_t c) noexcept nogil:
    """Output c's norms of all its weights (coef: all outputs' weights)."""
    set_norms(settings, k, c, block_squares(coef + c * d, d), block_abs(coef + c * d, d))  # _multi_tensor.pxi's


cdef inline void fill_norms(const Settings* settings, const floating* coef, Py_ssize_t k, Py_ssize_t d) noexcept nogil:
    """Each output's norms of all its weights (at a call's start, and after a step that moved them all)."""
    cdef Py_ssize_t c
    for c in range(k):
        output_norms(settings, coef, k, d, c)


cdef inline void decay_norms(const Settings* settings, Py_ssize_t k, double decay, double squared) noexcept nogil:
    """The kept norms after an L2 decay; squared: decay^2, rounded as the caller's weights take it."""
    cdef Py_ssize_t c
    for c in range(k):
        settings.sgd_norms[c] *= squared
        settings.sgd_norms[k + c] *= fabs(decay)


cdef inline void add_penalty(const Settings* settings, Py_ssize_t k, Py_ssize_t m) noexcept nogil:
    """sgd_objective's penalty of the kept norms, once for each of the batch's m rows; none with
    passive-aggressive steps."""
    cdef Py_ssize_t c
    cdef double penalty = 0
    if settings.passive_aggressive:
        return
    for c in range(k):
        penalty += 0.5 * settings.alpha * max(0.0, settings.sgd_norms[c]) + settings.l1 * settings.sgd_norms[k + c]
    settings.sgd_objective[0] += m * penalty


cdef double batch_residuals(floating* scores, const double* intercepts, const floating* y,
                            const floating* sample_weight, const cnp.npy_intp* rows, Py_ssize_t m, Py_ssize_t k,
                            const Settings* settings, floating* scratch) noexcept nogil:
    """Turn the batch's scores into weighted d(loss)/d(score), in place; return the weighted loss
    sum, non-finite if a score is (a NaN or inf in X's rows, which X is not checked for up front,
    or weights that overflowed): the squared and log losses carry it into the sum, scikit-learn's
    (some of which would take it for a zero loss, and step on nothing) are checked for it.
    intercepts: NULL, or k intercepts the scores lack, added in double (scikit-learn's score: the
    weights' product rounded to the data's dtype, its intercept added in double).
    scratch holds 2 * m values (with passive-aggressive steps, settings' row_norms the rows'
    squared norms)."""
    cdef Loss loss = settings.loss
    cdef Py_ssize_t r, c, row
    cdef double total = 0, plain = 0, z, w, top, norm, target, dloss, class_weight, value, score
    cdef floating* s
    cdef floating probability
    cdef bint finite = True
    if intercepts != NULL and loss < HINGE:
        for r in range(m):
            for c in range(k):
                scores[r * k + c] = <floating>(scores[r * k + c] + intercepts[c])
    if loss >= HINGE:
        for r in range(m):
            row = rows[r]
            w = 1 if sample_weight == NULL else sample_weight[row]
            for c in range(k):
                target = y[row * k + c]
                class_weight = 1
                if settings.weight_pos != NULL:  # as scikit-learn: by the target's sign
                    class_weight = settings.weight_pos[c] if target > 0 else settings.weight_neg[c]
                score = scores[r * k + c] + (intercepts[c] if intercepts != NULL else 0)
                finite &= isfinite(score)
                value = sgd_loss(loss, target, score, settings.epsilon, &dloss)
                total += w * class_weight * value
                plain += value
                dloss = min(max(dloss, -MAX_DLOSS), MAX_DLOSS)
                if settings.passive_aggressive:
                    dloss *= passive_aggressive(settings, value, settings.row_norms[r])
                # the weights multiplied in the data's dtype, then by d(loss) in double: scikit-learn's
                value = dloss * <floating>(<floating>class_weight * <floating>w)
                scores[r * k + c] = value
                if settings.residuals != NULL:
                    settings.residuals[r * k + c] = value
        if settings.sgd_objective != NULL:
            settings.sgd_objective[0] += plain
        return total if finite else NAN
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


cdef inline bint keeps_norms(const Settings* settings) noexcept nogil:
    """Whether an epoch keeps sgd_objective's norms of the weights (see fill_norms): its
    objective's penalty reads them."""
    return settings.sgd_objective != NULL and (settings.alpha != 0 or settings.l1 != 0)


cdef inline long long average_count(const Settings* settings, long long step) noexcept nogil:
    """The number of steps the average holds once step `step` (step_number's) is taken: 0
    before average_start, or without an average."""
    return step - settings.average_start + 1 if settings.average != NULL and step >= settings.average_start else 0


cdef inline long long step_number(const Settings* settings, Py_ssize_t stepped) noexcept nogil:
    """The number of the step taken after `stepped` steps of this epoch (batches passed over,
    PA-I's rows of zeros, are no steps), the epoch's first being first_step (the caller numbers
    the fit's steps: its rates are rates[stepped]); it numbers the average's steps."""
    return settings.first_step + stepped


cdef double run_epoch(
    const floating* X, const floating* y, const floating* sample_weight, const cnp.npy_intp* order,
    bint in_order, Py_ssize_t n, Py_ssize_t d, Py_ssize_t k, Py_ssize_t batch_size, const Settings* settings,
    floating* theta, floating* grad, floating* batch_x, floating* scores,
    floating* scratch, Engine* optimizer, const double* rates, double* intercepts, Py_ssize_t* batches_done,
) noexcept nogil:
    """Returns the epoch's weighted loss sum, or NaN at the first non-finite batch loss
    (the parameters are then as they were before that batch); counts the batches whose
    step was taken in *batches_done (all but PA-I's rows of zeros, passed over).  rates: each
    step's learning rate, in order (see step_number), or NULL.  intercepts: 2 k, see
    kept_intercepts (plain SGD a row at a time keeps the intercepts there)."""
    cdef Loss loss = settings.loss
    cdef double alpha = settings.alpha
    cdef bint fit_intercept = settings.fit_intercept
    cdef floating* average = <floating*>settings.average
    cdef long long step, count
    cdef double eta, ratio, lr
    cdef Py_ssize_t skipped = 0  # batches passed over (PA-I's rows of zeros)
    cdef Py_ssize_t start, m, r, j, c, ahead
    cdef floating* coef = theta
    cdef floating* intercept = theta + k * d
    cdef floating* coef_grad = grad
    cdef floating* intercept_grad = grad + k * d
    cdef double total = 0, batch_loss, batch_weight
    cdef double row_weight = row_weight_of(sample_weight, settings)
    cdef floating scale, residual_sum
    cdef Py_ssize_t batch, n_batches = (n + batch_size - 1) // batch_size
    cdef Py_ssize_t y_per_row = targets_per_row(loss, k)
    cdef bint one_pass = settings.plain_sgd
    cdef bint kept = one_pass and batch_size == 1  # the intercepts in double (see kept_intercepts)
    cdef floating neg_lr, g
    cdef Py_ssize_t near, far
    cdef bint penalized = keeps_norms(settings)
    # sgd_objective's norms (see fill_norms): without L1, per-sample plain SGD's step a coef + b x
    # makes an output's squares a^2 squares + b (2 a coef . x + b x . x), from the forward pass's
    # dot products (coef . x stashed in intercept_grad, which that step does not use): a pass
    # over the weights a row would cost more than the step
    cdef bint by_dots = penalized and batch_size == 1 and one_pass and settings.l1 == 0
    cdef double row_squares = 0, decay = 1, b
    cdef bint past_zero
    cdef double least_decay = least_l2_decay(settings)
    prefetch_rows(d * sizeof(floating), &near, &far)
    if kept:
        kept_intercepts(intercepts, intercept, average + k * d if average != NULL else NULL, k)
    if penalized and isnan(settings.sgd_norms[0]):
        fill_norms(settings, coef, k, d)
    for batch in range(n_batches):
        start = batch * batch_size
        m = min(batch_size, n - start)
        if in_order:  # the batch is a block of X already
            batch_x = <floating*>X + start * d
        else:
            for r in range(m):
                if start + r + far < n:
                    prefetch_far(X + order[start + r + far] * d, d * sizeof(floating))
                if start + r + near < n:
                    prefetch(X + order[start + r + near] * d, d * sizeof(floating))
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
                if by_dots:
                    intercept_grad[c] = scores[c]
            row_squares = -1  # x . x, once a step needs it
        elif k == 1:
            gemv("T", <int>d, <int>m, 1, batch_x, <int>d, coef, 0, scores)
        else:
            gemm("T", "N", <int>k, <int>m, <int>d, 1, coef, <int>d, batch_x, <int>d, 0, scores, <int>k)
        for r in range(m):
            for c in range(k):
                scores[r * k + c] += intercept[c]  # (kept intercepts: their rounding, written at each step)
        if settings.passive_aggressive:
            for r in range(m):
                settings.row_norms[r] = squared_norm(batch_x + r * d, d)
        batch_loss = batch_residuals(scores, NULL, y, sample_weight, order + start, m, k, settings, scratch)
        if not isfinite(<floating>batch_loss):  # non-finite, or beyond the data's dtype (float32)
            return NAN
        total += batch_loss
        if penalized:
            add_penalty(settings, k, m)
        if passes_over(settings, m):
            skipped += 1
            batches_done[0] = batch + 1 - skipped
            continue
        # gradient of the weighted mean loss + alpha/2 ||coef||^2, estimated from the batch (see
        # row_weight; a batch of weights summing to 0 contributes the penalty's alone)
        batch_weight = m * row_weight
        scale = 1.0 / batch_weight if batch_weight != 0 else 0.0
        lr = rates[batch - skipped] if rates != NULL else lr_of(optimizer, 0)
        if m == 1 and one_pass:  # plain SGD's step as the gradient is computed (Objective.plain_sgd)
            neg_lr = -lr
            past_zero = alpha != 0 and past_least_decay(1.0 + neg_lr * alpha, least_decay)
            if penalized:
                decay = 0.0 if past_zero else 1.0 + neg_lr * <floating>alpha
                decay_norms(settings, k, decay, decay * decay)
            for c in range(k):
                residual_sum = scale * scores[c]
                if by_dots and residual_sum != 0:
                    if row_squares < 0:
                        row_squares = sum_of_squares(batch_x, d)
                    b = neg_lr * residual_sum
                    settings.sgd_norms[c] += b * (2 * decay * intercept_grad[c] + b * row_squares)
                if past_zero:  # as the sparse epoch
                    for j in range(d):
                        coef[c * d + j] = neg_lr * (residual_sum * batch_x[j])
                else:
                    for j in range(d):  # the same numbers, in the same order, as coef_grad then sgd_update
                        g = residual_sum * batch_x[j]
                        if alpha != 0:
                            g = g + <floating>alpha * coef[c * d + j]
                        coef[c * d + j] = coef[c * d + j] + neg_lr * g
                if penalized and not by_dots and neg_lr * (scale * step_residual(settings, scores, c)) != 0:
                    # L1: summed anew, before the truncation, where scikit-learn steps (its update in
                    # double not 0, also where d(loss) underflows float32; see the sparse epoch)
                    output_norms(settings, coef, k, d, c)
                if fit_intercept and kept:
                    intercepts[c] += -lr * (
                        step_residual(settings, scores, c) * scale * settings.intercept_decay)
                    intercept[c] = <floating>intercepts[c]
                elif fit_intercept:
                    intercept[c] = intercept[c] + neg_lr * (scores[c] * scale * <floating>settings.intercept_decay)
        elif m == 1:
            for c in range(k):
                residual_sum = scale * scores[c]
                for j in range(d):
                    coef_grad[c * d + j] = residual_sum * batch_x[j]
        elif k == 1:
            gemv("N", <int>d, <int>m, scale, batch_x, <int>d, scores, 0, coef_grad)
        else:
            gemm("N", "T", <int>d, <int>k, <int>m, scale, batch_x, <int>d, scores, <int>k, 0, coef_grad, <int>d)
        if not (m == 1 and one_pass):
            if alpha != 0 and one_pass \
                    and past_least_decay(1.0 - lr * alpha, least_decay):
                memset(coef, 0, k * d * sizeof(floating))  # past zero (see least_l2_decay), as the one-row step
            elif alpha != 0:
                for j in range(k * d):
                    coef_grad[j] += <floating>alpha * coef[j]
            if fit_intercept:
                for c in range(k):  # a running sum per class, in a register rather than through memory
                    residual_sum = 0
                    for r in range(m):
                        residual_sum += scores[r * k + c]
                    intercept_grad[c] = residual_sum * scale * <floating>settings.intercept_decay
            else:
                memset(intercept_grad, 0, k * sizeof(floating))
            if rates != NULL:
                set_lr(optimizer, 0, lr)
            advance(optimizer)
            hold_intercepts(settings, intercept, k)
            if penalized:  # the step moved every weight
                fill_norms(settings, coef, k, d)
        step = step_number(settings, batch - skipped)
        count = average_count(settings, step)
        eta = lr if settings.l1_penalty != NULL else 0.0
        if settings.lazy_average != NULL:  # scikit-learn's: the average, then a truncation that enters it
            ratio = lazy_average_advance(settings.lazy_average, max(0.0, 1.0 - eta * alpha) if alpha != 0 else 1.0,
                                         scale_floor(coef),
                                         count)
            if count:
                average_step(average, theta, k * (d + 1), count)
                if kept:
                    average_intercepts(intercepts, average + k * d, k, count)
            truncate(coef, settings.l1_penalty, k * d, settings.l1 * eta, average, ratio)
        else:  # the mean of the iterates, each after its truncation
            if settings.l1_penalty != NULL:
                truncate(coef, settings.l1_penalty, k * d, settings.l1 * eta, <floating*>NULL, 0.0)
            if count:
                average_step(average, theta, k * (d + 1), count)
                if kept:
                    average_intercepts(intercepts, average + k * d, k, count)
        batches_done[0] = batch + 1 - skipped
    return total


ctypedef fused sparse_index:
    cnp.int32_t
    cnp.int64_t


cdef struct Scaled:
    # sparse rows stepped by plain SGD, as scikit-learn's weight vector keeps its weights: the
    # weights are scale * coef, so that the L2 penalty's shrinking of every weight is one
    # product; the average (when kept) is (average + a * coef) / b over the weights, so that a
    # step only touches the rows' nonzeros.  Folded back into coef and average (fold) when the
    # scale gets small and at the end of the epoch.
    double scale, a, b
    # the intercepts and their averages, in double (see kept_intercepts): on sparse data the
    # intercept's steps are a hundredth of the gradient's
    double* intercept
    Py_ssize_t k


cdef inline double step_residual(const Settings* settings, const floating* scores, Py_ssize_t i) noexcept nogil:
    """A row's weighted d(loss)/d(score) for the step of a kept intercept: in double where the
    batch's residuals keep it (scikit-learn's update: the sample and class weights multiplied in
    the data's dtype, then by d(loss) in double), else as scores holds it, in the data's dtype."""
    return settings.residuals[i] if settings.residuals != NULL else scores[i]


cdef inline void kept_intercepts(double* kept, const floating* intercept, const floating* intercept_average,
                                 Py_ssize_t k) noexcept nogil:
    """Take up the k intercepts (and their averages, or NULL) into kept (2 k), in double, as
    scikit-learn keeps them through a call: kept's values where the parameters are their
    rounding (an epoch of the same call left them so), else the parameters' own."""
    cdef Py_ssize_t c
    for c in range(k):
        if not <floating>kept[c] == intercept[c]:
            kept[c] = intercept[c]
        if intercept_average != NULL and not <floating>kept[k + c] == intercept_average[c]:
            kept[k + c] = intercept_average[c]


cdef inline void average_intercepts(double* kept, floating* intercept_average, Py_ssize_t k,
                                    long long count) noexcept nogil:
    """The running mean of the kept intercepts after `count` steps, in double (scikit-learn's
    average_intercept), written into intercept_average too."""
    cdef Py_ssize_t c
    for c in range(k):
        kept[k + c] += (kept[c] - kept[k + c]) / count
        intercept_average[c] = <floating>kept[k + c]


cdef inline void average_scaled(Scaled* w, floating* intercept_average, long long count) noexcept nogil:
    """The running mean of the weights after `count` steps, in Scaled's terms (as scikit-learn's
    weight vector's add_average ends), and of the intercepts."""
    cdef double mu = 1.0 / count
    if count > 1:
        w.b /= 1.0 - mu
    w.a += mu * w.b * w.scale
    average_intercepts(w.intercept, intercept_average, w.k, count)


cdef bint fold(floating* coef, floating* average, Py_ssize_t n, Scaled* w) noexcept nogil:
    """Write the scaled weights (and intercepts) back into coef (and average).  Returns whether
    it found the weights and intercepts it wrote all finite, when it wrote every weight (a scale
    other than 1), else False: the check then costs nothing but the comparisons."""
    cdef Py_ssize_t j
    cdef bint finite = True
    for j in range(w.k):
        coef[n + j] = <floating>w.intercept[j]  # the intercepts follow the k * d weights
        finite &= isfinite(coef[n + j])
    if average != NULL:
        for j in range(n):  # as scikit-learn's: axpy and scal, their factors in the data's dtype
            average[j] = <floating>fma(<floating>w.a, coef[j], average[j]) * <floating>(1.0 / w.b)
        w.a, w.b = 0.0, 1.0
    if w.scale == 1.0:
        return False
    for j in range(n):
        coef[j] = coef[j] * <floating>w.scale  # in the data's dtype, as scikit-learn's (BLAS's scal)
        finite &= isfinite(coef[j])
    w.scale = 1.0
    return finite


# A sparse epoch asks for a shuffled row's nonzeros (indices and values) as a dense one asks
# for its rows (far into L2, then near into L1); for its place in indptr, which the far
# request reads, INDPTR_LEAD rows before that; for its target and weight with the near
# request.  (Asking for the weights the nonzeros index, a prefetch each, cost more than it
# saved: 84-90 ms an epoch without against 105-113 with, on bench --sparse's rows.)
cdef enum:
    INDPTR_LEAD = 16


cdef inline double out_of_range(floating* coef, floating* average, Py_ssize_t n, Scaled* w, Py_ssize_t batch,
                                Py_ssize_t* batches_done) noexcept nogil:
    """End a sparse epoch at batch `batch`, whose rows reach out of range: the weights folded
    (see Scaled), *batches_done = -1 - batch; returns NaN."""
    fold(coef, average, n, w)
    batches_done[0] = -1 - batch
    return NAN


cdef inline Py_ssize_t feature(const sparse_index* indices, Py_ssize_t p, Py_ssize_t d, bint* raced) noexcept nogil:
    """indices[p], read once and checked where it is used: X's indices are checked before a row
    is used, but another thread may write them while the epoch runs without the GIL.  An index
    out of [0, d) then reads and writes entry 0 rather than memory out of bounds, and sets
    *raced, which fails the epoch."""
    cdef size_t j = <size_t>indices[p]
    if j < <size_t>d:
        return <Py_ssize_t>j
    raced[0] = True
    return 0


cdef inline double sparse_dot(const floating* values, const sparse_index* indices, Py_ssize_t n,
                              const floating* dense, Py_ssize_t d, bint* raced) noexcept nogil:
    """A sparse row's dot product with a dense vector of d entries, in four running sums: the
    additions of one sum wait on each other, four sums keep four in flight."""
    cdef double part0 = 0, part1 = 0, part2 = 0, part3 = 0
    cdef Py_ssize_t p, whole = n - n % 4
    for p in range(0, whole, 4):
        part0 += values[p] * dense[feature(indices, p, d, raced)]
        part1 += values[p + 1] * dense[feature(indices, p + 1, d, raced)]
        part2 += values[p + 2] * dense[feature(indices, p + 2, d, raced)]
        part3 += values[p + 3] * dense[feature(indices, p + 3, d, raced)]
    for p in range(whole, n):
        part0 += values[p] * dense[feature(indices, p, d, raced)]
    return (part0 + part1) + (part2 + part3)


cdef double run_sparse_epoch(
    const floating* data, const sparse_index* indices, const sparse_index* indptr, Py_ssize_t nnz,
    const floating* y, const floating* sample_weight, const cnp.npy_intp* order,
    Py_ssize_t n, Py_ssize_t d, Py_ssize_t k, Py_ssize_t batch_size, const Settings* settings,
    floating* theta, floating* grad, floating* scores, floating* scratch,
    Engine* optimizer, const double* rates, double* intercepts, Py_ssize_t* spans, Py_ssize_t* batches_done,
    bint* weights_finite,
) noexcept nogil:
    """run_epoch on CSR rows (data, indices, indptr): a batch's scores and gradient cost its
    nonzeros.  Plain SGD updates only the batch's nonzeros (the weights scaled, see Scaled);
    another optimizer takes its step on the whole gradient, dense (zero off the nonzeros).
    The L1 penalty is applied to the nonzeros' weights only, each catching up with the
    total penalty when its feature is met (scikit-learn's lazy truncated gradient).  A row
    whose indptr or indices are out of range ends the epoch before its batch is stepped:
    *batches_done is then -1 - the batch's index.  Each row's nonzeros are read where its indptr
    said when it was checked (spans: room for 2 * min(batch_size, n)), and each index is
    checked again where it is used (feature): indices that another thread writes meanwhile end
    the epoch as out-of-range ones do (*batches_done as above), before the batch's step if the
    batch's scores met them, else after it (the step then used entry 0 for them), never
    reaching outside the arrays; the caller restores what the failed epoch changed.
    *weights_finite: whether the epoch's end found theta all finite (see fold), else False."""
    cdef Loss loss = settings.loss
    cdef double alpha = settings.alpha
    cdef bint scaled = settings.plain_sgd
    cdef floating* coef = theta
    cdef floating* intercept = theta + k * d
    cdef floating* coef_grad = grad
    cdef floating* intercept_grad = grad + k * d
    cdef floating* average = <floating*>settings.average
    cdef double* penalty = settings.l1_penalty
    cdef Scaled w = Scaled(scale=1.0, a=0.0, b=1.0, intercept=intercepts, k=0)
    cdef double total = 0, batch_loss, batch_weight, scale, eta, update, total_penalty, score, before
    cdef double row_weight = row_weight_of(sample_weight, settings)
    cdef double residual_sum, step_size
    cdef bint outside, raced = False
    cdef Py_ssize_t* span
    cdef Py_ssize_t begin, end, y_per_row = targets_per_row(loss, k)
    cdef Py_ssize_t batch, start, m, r, c, p, j, row, ahead, touched, slot, room, n_batches = (n + batch_size - 1) // batch_size
    cdef floating* lazy_grad
    cdef long long step, count
    cdef Py_ssize_t near, far, skipped = 0  # batches passed over (PA-I's rows of zeros)
    cdef double* lazy = settings.lazy_average
    cdef double carried = 1.0  # scikit-learn's S before the epoch (with lazy; see lazy_average_advance)
    cdef bint penalized = keeps_norms(settings)
    cdef double squares, magnitudes, decay
    cdef double least_decay = least_l2_decay(settings)
    weights_finite[0] = False
    prefetch_rows(nnz * (sizeof(floating) + sizeof(sparse_index)) // max(1, n), &near, &far)  # the mean row's
    if scaled and lazy != NULL:  # the average in Scaled's terms (u + a w) / b, a the ratio kept
        carried, w.a = lazy[0], lazy[1]
        if w.a != 0:
            for j in range(k * d):
                average[j] = <floating>(average[j] - w.a * coef[j])
    if scaled:
        w.k = k
        kept_intercepts(intercepts, intercept, average + k * d if average != NULL else NULL, k)
    if penalized and isnan(settings.sgd_norms[0]):
        fill_norms(settings, coef, k, d)
    for batch in range(n_batches):
        start = batch * batch_size
        m = min(batch_size, n - start)
        for r in range(m):
            # written here, not in a function of its own: GCC takes a function of prefetches alone
            # for one without effects, and drops its calls.  indptr is read once into locals, as
            # another thread may write it (see below)
            if start + r + far + INDPTR_LEAD < n:
                prefetch_far(indptr + order[start + r + far + INDPTR_LEAD], 2 * sizeof(sparse_index))
            if start + r + far < n:
                ahead = order[start + r + far]
                begin, end = indptr[ahead], indptr[ahead + 1]
                if 0 <= begin <= end <= nnz:
                    prefetch_far(indices + begin, (end - begin) * sizeof(sparse_index))
                    prefetch_far(data + begin, (end - begin) * sizeof(floating))
            if start + r + near < n:
                ahead = order[start + r + near]
                begin, end = indptr[ahead], indptr[ahead + 1]
                if 0 <= begin <= end <= nnz:
                    prefetch(indices + begin, (end - begin) * sizeof(sparse_index))
                    prefetch(data + begin, (end - begin) * sizeof(floating))
                prefetch(y + ahead * y_per_row, y_per_row * sizeof(floating))
                if sample_weight != NULL:
                    prefetch(sample_weight + ahead, sizeof(floating))
            row = order[start + r]
            span = spans + 2 * r  # the row's nonzeros, indptr read once
            span[0] = indptr[row]
            span[1] = indptr[row + 1]
            outside = not (0 <= span[0] <= span[1] <= nnz)
            if not outside:
                for p in range(span[0], span[1]):  # no early exit: the loop vectorizes
                    outside |= <size_t>indices[p] >= <size_t>d
            if outside:
                return out_of_range(coef, average, k * d, &w, batch, batches_done)
            for c in range(k):
                score = sparse_dot(data + span[0], indices + span[0], span[1] - span[0], coef + c * d, d, &raced)
                scores[r * k + c] = <floating>(score * w.scale if scaled else score + intercept[c])
            if settings.passive_aggressive:
                settings.row_norms[r] = squared_norm(data + span[0], span[1] - span[0])
        if raced:  # an index changed since its row was checked: fail before the step
            return out_of_range(coef, average, k * d, &w, batch, batches_done)
        batch_loss = batch_residuals(scores, intercepts if scaled else NULL, y, sample_weight, order + start, m, k,
                                     settings, scratch)
        if not isfinite(<floating>batch_loss):
            fold(coef, average, k * d, &w)
            return NAN
        total += batch_loss
        if penalized:
            add_penalty(settings, k, m)
        if passes_over(settings, m):
            skipped += 1
            batches_done[0] = batch + 1 - skipped
            continue
        batch_weight = m * row_weight
        scale = 1.0 / batch_weight if batch_weight != 0 else 0.0
        eta = rates[batch - skipped] if rates != NULL else lr_of(optimizer, 0)
        step = step_number(settings, batch - skipped)
        count = average_count(settings, step)
        if scaled:
            if alpha != 0:  # (a negative scale is folded at once; see least_l2_decay)
                decay = <floating>max(least_decay, 1.0 - eta * alpha)  # in the data's dtype, as scikit-learn's
                w.scale *= decay
                if penalized:
                    decay_norms(settings, k, decay, <floating>(decay * decay))
                if carried * w.scale < scale_floor(coef):
                    fold(coef, average, k * d, &w)
                    carried = 1.0
            for c in range(k):
                residual_sum = 0
                for r in range(m):
                    # from d(loss) in double where the batch keeps it (the drop-ins): scikit-learn's update,
                    # -eta d(loss), rounds to the data's dtype once (from its float32 rounding, log loss's
                    # float32 weights drifted an ulp a row apart); it steps where that double is not 0,
                    # also where it underflows the data's dtype: its weight vector takes up the row's norms
                    update = -eta * (scale * step_residual(settings, scores, r * k + c))
                    residual_sum += step_residual(settings, scores, r * k + c)
                    if update == 0:
                        continue
                    span = spans + 2 * r
                    # rounded where scikit-learn's weight vector rounds them: the update and the scale
                    # in the data's dtype, each weight's sum in double
                    step_size = <floating>update / <floating>w.scale
                    if penalized:  # the row's weights after its step (see fill_norms)
                        squares = magnitudes = 0
                        for p in range(span[0], span[1]):
                            j = c * d + feature(indices, p, d, &raced)
                            coef[j] = <floating>(coef[j] + data[p] * step_size)
                            squares += coef[j] * coef[j]
                            magnitudes += fabs(<double>coef[j])
                        set_norms(settings, k, c, squares * (<floating>w.scale * <floating>w.scale),
                                  magnitudes * <floating>w.scale)
                    else:
                        for p in range(span[0], span[1]):
                            j = c * d + feature(indices, p, d, &raced)
                            coef[j] = <floating>(coef[j] + data[p] * step_size)
                    if average != NULL:  # the average is not moved by the step itself
                        step_size = -<floating>update / w.scale
                        for p in range(span[0], span[1]):
                            j = c * d + feature(indices, p, d, &raced)
                            average[j] = <floating>(average[j] + w.a * data[p] * step_size)
                if settings.fit_intercept:
                    intercepts[c] += -eta * (residual_sum * scale) * settings.intercept_decay
        elif settings.touched != NULL:  # lazy: the touched entries' gradient, step and state only
            touched = 0
            room = settings.touched_room + k
            lazy_grad = <floating*>settings.gathered + room  # summed in place (see advance_entries)
            for c in range(k):
                residual_sum = 0
                for r in range(m):
                    residual_sum += scores[r * k + c]
                    span = spans + 2 * r
                    for p in range(span[0], span[1]):
                        if data[p] == 0:  # a stored zero touches nothing: the fit is the matrix's, not its storage's
                            continue
                        j = c * d + feature(indices, p, d, &raced)
                        slot = settings.slots[j]
                        if slot < 0:
                            if touched == settings.touched_room:  # rows longer than when counted
                                raced = True
                                continue
                            slot = settings.slots[j] = touched
                            settings.touched[touched] = j
                            lazy_grad[touched] = 0
                            touched += 1
                        lazy_grad[slot] += <floating>(scale * scores[r * k + c]) * data[p]
                lazy_grad[settings.touched_room + c] = <floating>(residual_sum * scale * settings.intercept_decay) \
                    if settings.fit_intercept else 0
            for p in range(touched):  # one pass over the touched entries: their penalty, their slots
                j = settings.touched[p]
                if alpha != 0:
                    lazy_grad[p] += <floating>alpha * coef[j]
                settings.slots[j] = -1
            for c in range(k):
                settings.touched[touched + c] = k * d + c
                lazy_grad[touched + c] = lazy_grad[settings.touched_room + c]
            if rates != NULL:
                set_lr(optimizer, 0, eta)
            advance_entries(optimizer, settings.touched, touched + k, settings.gathered, room)
            hold_intercepts(settings, intercept, k)
            if penalized:  # the weights the step moved (still gathered), output by output (see fill_norms)
                p = 0
                for c in range(k):  # output c's entries are c * d to (c + 1) * d - 1
                    if p == touched or settings.touched[p] >= (c + 1) * d:
                        continue
                    squares = magnitudes = 0
                    while p < touched and settings.touched[p] < (c + 1) * d:
                        before = (<floating*>settings.gathered)[p]
                        squares += before * before
                        magnitudes += fabs(before)
                        p += 1
                    set_norms(settings, k, c, squares, magnitudes)
        else:
            memset(coef_grad, 0, k * d * sizeof(floating))
            for c in range(k):
                residual_sum = 0
                for r in range(m):
                    residual_sum += scores[r * k + c]
                    span = spans + 2 * r
                    for p in range(span[0], span[1]):
                        coef_grad[c * d + feature(indices, p, d, &raced)] += <floating>(scale * scores[r * k + c]) * data[p]
                intercept_grad[c] = <floating>(residual_sum * scale * settings.intercept_decay) \
                    if settings.fit_intercept else 0
            if alpha != 0:
                for j in range(k * d):
                    coef_grad[j] += <floating>alpha * coef[j]
            if rates != NULL:
                set_lr(optimizer, 0, eta)
            advance(optimizer)
            hold_intercepts(settings, intercept, k)
            if penalized:  # the step moved every weight
                fill_norms(settings, coef, k, d)
        if count > 0 and scaled and lazy != NULL:  # scikit-learn's order: the average, then the truncation
            average_scaled(&w, average + k * d, count)
        if penalty != NULL:  # lazily, on the batch's nonzeros
            penalty[k * d] += settings.l1 * eta
            total_penalty = penalty[k * d]
            for c in range(k):
                for r in range(m):
                    span = spans + 2 * r
                    for p in range(span[0], span[1]):
                        if data[p] == 0 and not scaled:  # a stored zero touches nothing (as in a lazy
                            continue                      # batch); scikit-learn's scaled step truncates it
                        j = c * d + feature(indices, p, d, &raced)
                        before = coef[j]
                        if w.scale * before > 0:
                            coef[j] = <floating>max(0.0, before - (total_penalty + penalty[j]) / w.scale)
                        elif w.scale * before < 0:
                            coef[j] = <floating>min(0.0, before + (total_penalty - penalty[j]) / w.scale)
                        penalty[j] += w.scale * (coef[j] - before)
                        if average != NULL and scaled and lazy == NULL:  # the mean of truncated iterates
                            average[j] -= <floating>(w.a * (coef[j] - before))
        if count > 0 and not scaled:
            average_step(average, theta, k * (d + 1), count)
        elif count > 0 and lazy == NULL:  # the mean of the iterates, each after its truncation
            average_scaled(&w, average + k * d, count)
        if raced:
            return out_of_range(coef, average, k * d, &w, batch, batches_done)
        batches_done[0] = batch + 1 - skipped
    if scaled and lazy != NULL:
        lazy[0], lazy[1] = carried * w.scale, w.a / (w.b * w.scale)
    weights_finite[0] = fold(coef, average, k * d, &w)
    return total


cdef void average_step(floating* average, const floating* theta, Py_ssize_t n, long long count) noexcept nogil:
    """The running mean of the parameters after `count` steps (averaged SGD)."""
    cdef Py_ssize_t j
    cdef double mu = 1.0 / count
    for j in range(n):
        average[j] = average[j] + <floating>((theta[j] - average[j]) * mu)


cdef void truncate(floating* coef, double* penalty, Py_ssize_t n, double increment, floating* average,
                   double ratio) noexcept nogil:
    """The L1 penalty by the cumulative truncated gradient (Tsuruoka, Tsujii and Ananiadou 2009,
    as scikit-learn's SGD applies it): the total penalty grows by increment (l1 * lr) a step;
    each weight is moved towards zero, without crossing it, by what it has not yet received.
    penalty: each weight's received penalty (signed), then the total.  average (or NULL): gets
    ratio times each weight's change (scikit-learn's lazy average, see lazy_average_advance)."""
    cdef Py_ssize_t j
    cdef double before, total = penalty[n] + increment
    penalty[n] = total
    for j in range(n):
        before = coef[j]
        if before > 0:
            coef[j] = <floating>max(0.0, before - (total + penalty[j]))
        elif before < 0:
            coef[j] = <floating>min(0.0, before + (total - penalty[j]))
        penalty[j] += coef[j] - before
        if average != NULL:
            average[j] = average[j] + <floating>(ratio * (coef[j] - before))


cdef inline double row_weight_of(const floating* sample_weight, const Settings* settings) noexcept nogil:
    """What a row weighs in a batch's gradient: where the objective is the weighted mean loss,
    the mean weight of the rows trained on since the fit began (Objective's row_weight), rows
    given no weights counting 1 there and in the batch; else 1 (weights that scale each row's
    step, scikit-learn's SGD).  A batch's gradient is its rows' weighted sum over the batch's
    size times this, whose mean over the batches is the weighted mean loss's gradient (divided
    by the batch's own weight sum, or a partial_fit call's, a lone row's weight cancelled out)."""
    return 1.0 if settings.weights_scale_steps else settings.row_weight


cdef inline double least_l2_decay(const Settings* settings) noexcept nogil:
    """The least plain SGD's L2 decay 1 - lr alpha may be: 0 where scikit-learn's rule stops it
    there, the weights set to zero rather than flipped (Objective.clamp_decay), else no bound
    (the gradient step's).  A step is past zero when 1 - lr alpha falls to it (past_least_decay)."""
    return 0.0 if settings.clamp_decay else -INFINITY


cdef inline bint past_least_decay(double decay, double least) noexcept nogil:
    """Whether a step's L2 decay 1 - lr alpha has fallen to the least it may be (least_l2_decay): at
    0 exactly too, where the gradient step's rounding would leave residues of the weights and
    scikit-learn's scale makes them zeros; never without a bound (-inf), not even when lr alpha
    overflows (the gradient step then fails the fit as diverged)."""
    return decay <= least and least > -INFINITY


cdef inline void hold_intercepts(const Settings* settings, floating* intercept, Py_ssize_t k) noexcept nogil:
    """Without fit_intercept, the intercepts back as the epoch began after an optimizer step: their
    gradient is zero, but a decay of the optimizer's own (AdamW's) would still move them."""
    if settings.held_intercepts != NULL:
        memcpy(intercept, settings.held_intercepts, k * sizeof(floating))


cdef inline double scale_floor(const floating* weights) noexcept nogil:
    """The L2 scale below which scaled weights are folded (Scaled, lazy_average_advance), for
    weights of this dtype: scikit-learn's weight vector resets its scale below 1e-9 in float64 and
    1e-6 in float32, whose 7 digits the average's terms, growing as 1 / scale, would use up."""
    if floating is float:
        return 1e-6
    else:
        return 1e-9


cdef inline double lazy_average_advance(double* state, double decay, double floor, long long count) noexcept nogil:
    """A step of scikit-learn's lazy average (Objective.lazy_average), in explicit terms.  Its
    weight vector keeps the weights as S * w and the average as (u + a w) / b, so that a change
    of w that it does not account in u, as the L1 truncation's, enters the average multiplied
    by ratio = a / (b S).  The step decays S (the L2 penalty's factor) and, once S is below
    floor (scale_floor), resets it with the average's bookkeeping (ratio 0); from the average's
    start (count: the step's number in it) it then grows a and b, as its weight vector does.
    state: [S, ratio]; returns the new ratio."""
    cdef double mu
    state[0] *= decay
    if state[0] < floor:
        state[0], state[1] = 1.0, 0.0
    elif decay != 1.0:
        state[1] /= decay
    if count == 1:
        state[1] += 1.0
    elif count > 1:
        mu = 1.0 / count
        state[1] = state[1] * (1.0 - mu) + mu
    return state[1]


def epoch(Plan optimizer, list groups, list grads, int n_threads, bint checked, object X, cnp.ndarray y,
          object sample_weight, cnp.ndarray order, Py_ssize_t batch_size, Objective objective, object rates,
          bint in_order, cnp.ndarray result, Py_ssize_t k):
    """One epoch over X[order] in batches, each batch's gradient (of the objective's loss and
    L2 penalty) written into grads[0] and stepped by the optimizer's plan, whose one
    parameter is the flat vector theta, then the objective's L1 penalty applied and its
    average updated; returns the plan's Outcome (having changed nothing unless DONE, as
    Plan.step).  When DONE, result (four float64) holds the epoch's weighted loss sum (NaN if it
    diverged), the number of batches stepped, with the objective's sgd_objective its sum, and 1
    if the epoch found theta all finite at its end (a sparse epoch of plain SGD with a scale to
    fold, see fold), else 0: theta is then unchecked.
    rates: None, or the learning rate of each step the epoch may take, in order (float64, one
    a batch).  in_order says that order is 0..n-1, so that batches are read from X without a
    copy.  A CSR X whose indptr or indices are out of range (or are written out of range by
    another thread meanwhile) raises ValueError, after the batches before it were stepped: the
    caller restores what they changed.

    X is C-contiguous (n, d), or a CSR matrix (its data, indices and indptr C-contiguous,
    indices and indptr both int32 or both int64: checked as they are read); y, sample_weight
    and theta/grad share its dtype; theta holds k * d weights then k intercepts; y a class
    index a row for the log losses, else k targets a row.  k: the model's outputs, as the caller
    validated them (not read off theta's size over X's columns: another thread may resize X
    meanwhile, and a k so read would index the scores past their end)."""
    cdef int outcome
    cdef bint dense = isinstance(X, cnp.ndarray)
    cdef cnp.ndarray values = X if dense else X.data  # the entries: all of X, or its nonzeros
    cdef cnp.ndarray indices = None, indptr = None
    cdef Py_ssize_t n_rows, d, done = 0
    if dense:
        if cnp.PyArray_NDIM(values) != 2:
            raise ValueError("X must be 2-D")
        n_rows, d = cnp.PyArray_DIM(values, 0), cnp.PyArray_DIM(values, 1)
    else:
        n_rows, d = X.shape
        indices, indptr = X.indices, X.indptr
        if not (cnp.PyArray_TYPE(indices) == cnp.PyArray_TYPE(indptr)
                and cnp.PyArray_TYPE(indices) in (cnp.NPY_INT32, cnp.NPY_INT64)
                and cnp.PyArray_ISCARRAY_RO(indices) and cnp.PyArray_ISCARRAY_RO(indptr)
                and cnp.PyArray_SIZE(indptr) == n_rows + 1 and cnp.PyArray_SIZE(indices) == cnp.PyArray_SIZE(values)):
            raise ValueError("a sparse X must be CSR with C-contiguous indices and indptr, both int32 or both int64, "
                             "indptr of n_rows + 1 entries and an index per entry")
    cdef Py_ssize_t n = cnp.PyArray_SIZE(order), i  # the rows of this epoch
    if batch_size < 1:  # (cdivision: a batch size of 0 would divide by zero)
        raise ValueError(f"batch_size must be at least 1; got {batch_size}")
    batch_size = min(batch_size, max(n, 1))  # the same batches; n + batch_size - 1 cannot overflow
    cdef Py_ssize_t n_batches = (n + batch_size - 1) // batch_size
    if optimizer.n_params != 1 or grads[0] is None:
        raise ValueError("the regression epoch steps an optimizer of one parameter, the flat vector theta")
    if rates is not None and (cnp.PyArray_TYPE(<cnp.ndarray?>rates) != cnp.NPY_DOUBLE
                              or cnp.PyArray_SIZE(<cnp.ndarray>rates) < n_batches):
        raise ValueError("rates must hold a float64 learning rate for each batch")
    cdef int dtype = cnp.PyArray_TYPE(values)
    cdef Loss loss_code = objective.loss
    if not (cnp.PyArray_SIZE(y) == n_rows * targets_per_row(loss_code, k) and cnp.PyArray_TYPE(y) == dtype
            and cnp.PyArray_ISCARRAY_RO(y)
            and cnp.PyArray_TYPE(order) == cnp.NPY_INTP and n > 0
            and cnp.PyArray_ISCARRAY_RO(order) and cnp.PyArray_ISCARRAY_RO(values) and (not in_order or n == n_rows)
            and (sample_weight is None or (cnp.PyArray_SIZE(<cnp.ndarray?>sample_weight) == n_rows
                                           and cnp.PyArray_TYPE(<cnp.ndarray>sample_weight) == dtype
                                           and cnp.PyArray_ISCARRAY_RO(<cnp.ndarray>sample_weight)))
            and cnp.PyArray_TYPE(result) == cnp.NPY_DOUBLE and cnp.PyArray_ISCARRAY(result)
            and cnp.PyArray_SIZE(result) == 4):
        raise ValueError("X (C-contiguous), y (a row per row of X) and sample_weight must have one entry a row, in X's dtype, "
                         "order (intp) some rows (all of them in order if in_order); result four float64 values")
    cdef const cnp.npy_intp* listed = <const cnp.npy_intp*>cnp.PyArray_DATA(order)
    for i in range(n):
        if not 0 <= listed[i] < n_rows:
            raise ValueError(f"order lists row {listed[i]}; X has {n_rows} rows")
    if cnp.PyArray_TYPE(<cnp.ndarray>optimizer.params[0]) != dtype \
            or k < 1 or cnp.PyArray_SIZE(<cnp.ndarray>optimizer.params[0]) != k * (d + 1):
        raise ValueError(f"theta must hold k * (n_features + 1) values in X's dtype: {k} * ({d} + 1), X's {d} "
                         "columns as the epoch began (X resized since it was checked?)")
    cdef Settings settings = objective.settings(k, d, dtype)
    grads = list(grads)
    outcome = optimizer.prepare(groups, grads, n_threads, checked)
    if outcome != DONE:
        return outcome
    if objective.sgd_objective:
        result[2] = 0
        settings.sgd_objective = <double*>cnp.PyArray_DATA(result) + 2
    cdef cnp.ndarray theta = <cnp.ndarray>optimizer.params[0], grad = <cnp.ndarray>grads[0]
    cdef bint is_float32 = dtype == cnp.NPY_FLOAT
    cdef Py_ssize_t rows = 0 if in_order or not dense else min(batch_size, n)
    cdef cnp.ndarray batch_x = np.empty((rows, d), dtype=values.dtype)
    cdef cnp.ndarray scores = np.empty((min(batch_size, n), k), dtype=values.dtype)
    cdef cnp.ndarray scratch = np.empty(2 * min(batch_size, n) if loss_code == LOG else 0, dtype=values.dtype)
    cdef cnp.ndarray row_norms = np.empty(min(batch_size, n) if objective.passive_aggressive else 0)
    settings.row_norms = <double*>cnp.PyArray_DATA(row_norms)
    cdef cnp.ndarray residuals = np.empty(min(batch_size, n) * k if settings.sgd_intercepts != NULL else 0)
    if settings.sgd_intercepts != NULL:
        settings.residuals = <double*>cnp.PyArray_DATA(residuals)
    cdef void* batch_x_data = cnp.PyArray_DATA(batch_x)
    cdef void* scores_data = cnp.PyArray_DATA(scores)
    cdef void* scratch_data = cnp.PyArray_DATA(scratch)
    cdef const void* x_data = cnp.PyArray_DATA(values)
    cdef const void* index_data = NULL if dense else cnp.PyArray_DATA(indices)
    cdef const void* indptr_data = NULL if dense else cnp.PyArray_DATA(indptr)
    cdef bint int32_index = not dense and cnp.PyArray_TYPE(indices) == cnp.NPY_INT32
    cdef Py_ssize_t nnz = cnp.PyArray_SIZE(values)
    cdef cnp.ndarray intercepts = np.full(2 * k, np.nan)  # the epoch's, unless a call keeps them
    cdef double* intercepts_data = <double*>cnp.PyArray_DATA(intercepts)
    if settings.sgd_intercepts != NULL:
        intercepts_data = settings.sgd_intercepts
    cdef cnp.ndarray spans = np.empty(0 if dense else 2 * min(batch_size, n), dtype=np.intp)  # see run_sparse_epoch
    cdef Py_ssize_t* spans_data = <Py_ssize_t*>cnp.PyArray_DATA(spans)
    cdef cnp.ndarray held = None
    if not settings.fit_intercept:
        held = theta[theta.size - k:].copy()
        settings.held_intercepts = cnp.PyArray_DATA(held)
    # lazy updates: room for the entries a batch can touch, its nonzeros (at most d) for each output
    cdef Py_ssize_t most = 0
    cdef cnp.ndarray touched_entries, slots, gathered
    if objective.lazy and not dense:
        row_sizes = np.diff(indptr)
        most = k * min(d, int(row_sizes.max(initial=0)) * min(batch_size, n)) + k
        if most - k > np.iinfo(np.int32).max:  # a slot is an int32 (the gathered arrays alone would not fit)
            raise MemoryError(f"lazy updates of batches touching {most - k:,} entries: at most 2**31 - 1 fit")
        touched_entries = np.empty(most, dtype=np.intp)
        slots = np.full(k * d, -1, dtype=np.int32)
        gathered = np.empty((2 + MAX_STATES) * most, dtype=values.dtype)
        settings.touched = <Py_ssize_t*>cnp.PyArray_DATA(touched_entries)
        settings.touched_room = most - k
        settings.slots = <cnp.int32_t*>cnp.PyArray_DATA(slots)
        settings.gathered = <char*>cnp.PyArray_DATA(gathered)
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
    cdef bint finite = False
    with nogil:
        if not dense:
            total = sparse_epoch(x_data, index_data, indptr_data, nnz, is_float32, int32_index, y_data, weights,
                                 rows_order, n, d, k, batch_size, &settings, theta_data, grad_data, scores_data,
                                 scratch_data, engine, batch_rates, intercepts_data, spans_data, &done, &finite)
        elif is_float32:
            total = run_epoch(<const float*>x_data, <const float*>y_data,
                              <const float*>weights, rows_order, in_order, n, d, k, batch_size, &settings,
                              <float*>theta_data, <float*>grad_data,
                              <float*>batch_x_data, <float*>scores_data, <float*>scratch_data,
                              engine, batch_rates, intercepts_data, &done)
        else:
            total = run_epoch(<const double*>x_data, <const double*>y_data,
                              <const double*>weights, rows_order, in_order, n, d, k, batch_size, &settings,
                              <double*>theta_data, <double*>grad_data,
                              <double*>batch_x_data, <double*>scores_data, <double*>scratch_data,
                              engine, batch_rates, intercepts_data, &done)
    if rates is not None:
        optimizer.forget_lr(0)
    if done < 0:
        raise ValueError(f"X's indptr or indices are out of range in batch {-done}: a CSR matrix's indptr must "
                         f"rise from 0 to at most its {nnz} entries, and its indices lie in [0, {d})")
    result[0], result[1], result[3] = total, done, finite
    return outcome


cdef double sparse_epoch(const void* data, const void* indices, const void* indptr, Py_ssize_t nnz, bint is_float32,
                         bint int32_index, const void* y, const void* weights, const cnp.npy_intp* order, Py_ssize_t n,
                         Py_ssize_t d, Py_ssize_t k, Py_ssize_t batch_size, const Settings* settings, void* theta,
                         void* grad, void* scores, void* scratch, Engine* engine, const double* rates,
                         double* intercepts, Py_ssize_t* spans, Py_ssize_t* done, bint* finite) noexcept nogil:
    """run_sparse_epoch for the dtype and index type at hand."""
    if is_float32 and int32_index:
        return run_sparse_epoch(<const float*>data, <const cnp.int32_t*>indices, <const cnp.int32_t*>indptr, nnz,
                                <const float*>y, <const float*>weights, order, n, d, k, batch_size, settings,
                                <float*>theta, <float*>grad, <float*>scores, <float*>scratch, engine, rates, intercepts, spans, done, finite)
    if is_float32:
        return run_sparse_epoch(<const float*>data, <const cnp.int64_t*>indices, <const cnp.int64_t*>indptr, nnz,
                                <const float*>y, <const float*>weights, order, n, d, k, batch_size, settings,
                                <float*>theta, <float*>grad, <float*>scores, <float*>scratch, engine, rates, intercepts, spans, done, finite)
    if int32_index:
        return run_sparse_epoch(<const double*>data, <const cnp.int32_t*>indices, <const cnp.int32_t*>indptr, nnz,
                                <const double*>y, <const double*>weights, order, n, d, k, batch_size, settings,
                                <double*>theta, <double*>grad, <double*>scores, <double*>scratch, engine, rates, intercepts, spans, done, finite)
    return run_sparse_epoch(<const double*>data, <const cnp.int64_t*>indices, <const cnp.int64_t*>indptr, nnz,
                            <const double*>y, <const double*>weights, order, n, d, k, batch_size, settings,
                            <double*>theta, <double*>grad, <double*>scores, <double*>scratch, engine, rates, intercepts, spans, done, finite)


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
    if not (cnp.PyArray_TYPE(order) == cnp.NPY_INTP and cnp.PyArray_ISCARRAY(order)):
        raise ValueError("order must be a writable C-contiguous intp array")
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


def shuffle_again(cnp.ndarray order, uint32_t seed):
    """Permute order (a C-contiguous intp array) in place as scikit-learn's SGD permutes its rows
    before each epoch (SequentialDataset.shuffle): Fisher-Yates from the front, each swap's place
    drawn from Marsaglia's 32-bit xorshift (shifts 13, 17, 5; a seed of 0 taken as 1) reduced to
    31 bits, modulo the rows left.  The same seed gives the same steps: called again, it permutes
    the last order by them again, as scikit-learn's epochs do."""
    if not (cnp.PyArray_TYPE(order) == cnp.NPY_INTP and cnp.PyArray_ISCARRAY(order)):
        raise ValueError("order must be a writable C-contiguous intp array")
    cdef cnp.npy_intp* out = <cnp.npy_intp*>cnp.PyArray_DATA(order)
    cdef Py_ssize_t n = cnp.PyArray_SIZE(order), i, j
    cdef cnp.npy_intp swap
    cdef uint32_t state = seed if seed != 0 else 1
    with nogil:
        for i in range(n - 1):
            state ^= <uint32_t>(state << 13)
            state ^= state >> 17
            state ^= <uint32_t>(state << 5)
            j = i + <Py_ssize_t>(<uint64_t>(state & 0x7FFFFFFF) % <uint64_t>(n - i))
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
