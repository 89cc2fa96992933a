# Multi-tensor passes over lists of arrays: the total norm of gradients (clipping, the check for
# non-finite gradients), scaling and clamping in place, the running averages of parameters
# (EMA, SWA) and the accumulation of gradients.
#
# Included by the engine modules (_engine_<level>.pyx) before _engine.pxi.  Each def takes
# lists of arrays (or of fastgd.Parameters, whose .grad is read) and returns None (total_norm) or
# False (the others), changing nothing, when an
# array is not ready to be read as it is (an ndarray of float32/float64, aligned, C-contiguous,
# in native byte order; writable where it is written): the Python layer (fastgd/clip.py,
# fastgd/swa_utils.py, fastgd/accumulation.py) then checks in full, raises or converts.
cimport cython
cimport numpy as cnp
from cython cimport floating
from libc.math cimport INFINITY, NAN, fabs, frexp, isfinite, ldexp, pow, sqrt
from libc.stdlib cimport free, malloc
from libc.string cimport memmove

from _kernels cimport lerp, magnitude

cdef extern from "_fp.h":  # (MSVC's counterpart of -ffp-contract=off: ahead of fastgd's other headers and kernels)
    pass


cdef extern from "_norms.h":
    enum: STRETCHES "FASTGD_STRETCHES"
    double stretches_float "fastgd_stretches_float"(const float* x, Py_ssize_t stride, Py_ssize_t n,
                                                   int magnitudes) noexcept nogil
    double stretches_double "fastgd_stretches_double"(const double* x, Py_ssize_t stride, Py_ssize_t n,
                                                     int magnitudes) noexcept nogil


cdef inline Py_ssize_t bytes_of(Py_ssize_t size, bint is_float32) noexcept nogil:
    return size * (4 if is_float32 else 8)


cdef inline bint overlap(const void* a, const void* b, Py_ssize_t nbytes) noexcept nogil:
    """Whether two blocks of nbytes bytes share memory."""
    return nbytes > 0 and <const char*>a < <const char*>b + nbytes and <const char*>b < <const char*>a + nbytes


# -- gathering a list of arrays -----------------------------------------------------

cdef struct Piece:
    void* data
    Py_ssize_t size
    bint is_float32


cdef inline bint readable(object array, bint writable) noexcept:
    """An ndarray (not a subclass) of float32/float64, aligned, C-contiguous, native (and writable)."""
    if type(array) is not cnp.ndarray:
        return False
    cdef cnp.ndarray a = <cnp.ndarray>array
    cdef int dtype = cnp.PyArray_TYPE(a)
    return ((dtype == cnp.NPY_FLOAT or dtype == cnp.NPY_DOUBLE) and cnp.PyArray_ISCARRAY_RO(a)
            and cnp.PyArray_ISNOTSWAPPED(a) and (not writable or cnp.PyArray_ISWRITEABLE(a)))


@cython.final
@cython.auto_pickle(False)
cdef class _Pieces:
    """A list's arrays gathered, and held while their memory is read without the GIL."""
    cdef Piece* pieces
    cdef Py_ssize_t count
    cdef list held

    def __dealloc__(self):
        free(self.pieces)


cdef _Pieces gathered(list items, object holder, bint writable):
    """The arrays of items, each an array, None (skipped) or an instance of the class `holder`
    (fastgd.Parameter: its .grad is read, None skipped); None if one is not readable as it is."""
    cdef _Pieces result = _Pieces.__new__(_Pieces)
    cdef Py_ssize_t k, n
    cdef object array
    items = list(items)  # ours: the caller's list may change while a .grad is read
    n = len(items)
    result.held = []
    result.pieces = <Piece*>malloc((n + 1) * sizeof(Piece))
    if result.pieces == NULL:
        raise MemoryError()
    for k in range(n):
        array = items[k]
        if type(array) is holder:
            array = array.grad
        if array is None:
            continue
        if not readable(array, writable):
            return None
        result.held.append(array)
        result.pieces[result.count].data = cnp.PyArray_DATA(<cnp.ndarray>array)
        result.pieces[result.count].size = cnp.PyArray_SIZE(<cnp.ndarray>array)
        result.pieces[result.count].is_float32 = cnp.PyArray_TYPE(<cnp.ndarray>array) == cnp.NPY_FLOAT
        result.count += 1
    return result


cdef bint matching(_Pieces a, _Pieces b) noexcept:
    """Two gathered lists of arrays pair up: same count, shapes and dtypes (an array of another
    shape and the same size, a transposed one, say, would pair its elements with others)."""
    cdef Py_ssize_t k, axis
    cdef cnp.ndarray x, y
    if a.count != b.count:
        return False
    for k in range(a.count):
        x, y = <cnp.ndarray>a.held[k], <cnp.ndarray>b.held[k]
        if a.pieces[k].is_float32 != b.pieces[k].is_float32 or cnp.PyArray_NDIM(x) != cnp.PyArray_NDIM(y):
            return False
        for axis in range(cnp.PyArray_NDIM(x)):
            if cnp.PyArray_DIMS(x)[axis] != cnp.PyArray_DIMS(y)[axis]:
                return False
    return True


# -- norms --------------------------------------------------------------------------

cdef enum NormKind:
    NORM_TWO
    NORM_ONE
    NORM_MAX      # p = inf: the largest |x|
    NORM_MIN      # p = -inf: the smallest |x|
    NORM_NONZERO  # p = 0: the number of nonzero elements
    NORM_POWER    # any other p: (sum |x|^p)^(1/p)

cdef enum:
    LANES = 32    # partial sums kept side by side: they vectorize, in several registers (latency), each summing 1/32 of a block
    BLOCK = 1024  # elements summed per block before the block's sum joins the total


cdef inline double pick_max(double m, double a) noexcept nogil:
    return a if (a > m or a != a) else m  # NaN wins, as torch's max norm propagates it


cdef inline double pick_min(double m, double a) noexcept nogil:
    return a if (a < m or a != a) else m


cdef inline double block_squares(const floating* x, Py_ssize_t n) noexcept nogil:
    cdef double acc[LANES]
    cdef double a, total = 0.0
    cdef Py_ssize_t i = 0, j
    for j in range(LANES):
        acc[j] = 0.0
    while i + LANES <= n:
        for j in range(LANES):
            acc[j] += <double>x[i + j] * <double>x[i + j]
        i += LANES
    while i < n:
        a = <double>x[i]
        acc[0] += a * a
        i += 1
    for j in range(LANES):
        total += acc[j]
    return total


cdef inline double block_abs(const floating* x, Py_ssize_t n) noexcept nogil:
    cdef double acc[LANES]
    cdef double total = 0.0
    cdef Py_ssize_t i = 0, j
    for j in range(LANES):
        acc[j] = 0.0
    while i + LANES <= n:
        for j in range(LANES):
            acc[j] += fabs(<double>x[i + j])
        i += LANES
    while i < n:
        acc[0] += fabs(<double>x[i])
        i += 1
    for j in range(LANES):
        total += acc[j]
    return total


cdef inline double block_max_abs(const floating* x, Py_ssize_t n) noexcept nogil:
    # in the array's dtype (exact); a NaN counted apart, so that the selects vectorize
    cdef floating acc[LANES]
    cdef floating a, largest = 0
    cdef Py_ssize_t i = 0, j, nans = 0
    for j in range(LANES):
        acc[j] = 0
    while i + LANES <= n:
        for j in range(LANES):
            a = magnitude(x[i + j])
            acc[j] = a if a > acc[j] else acc[j]
            nans += a != a
        i += LANES
    while i < n:
        a = magnitude(x[i])
        acc[0] = a if a > acc[0] else acc[0]
        nans += a != a
        i += 1
    for j in range(LANES):
        largest = acc[j] if acc[j] > largest else largest
    return NAN if nans else <double>largest


cdef inline double add_block(double total, const floating* x, Py_ssize_t start, Py_ssize_t stop, NormKind kind,
                             double p, double scale) noexcept nogil:
    """total joined with the block x[start:stop] (see power_sum)."""
    cdef double a, part = 0.0
    cdef Py_ssize_t i
    if kind == NORM_TWO and scale == 1.0:
        return total + block_squares(x + start, stop - start)
    if kind == NORM_ONE and scale == 1.0:
        return total + block_abs(x + start, stop - start)
    if kind == NORM_MAX:
        return pick_max(total, block_max_abs(x + start, stop - start))
    for i in range(start, stop):  # the kinds that are rare enough to run unvectorized
        a = fabs(<double>x[i]) * scale
        if kind == NORM_TWO:
            part += a * a
        elif kind == NORM_ONE:
            part += a
        elif kind == NORM_MIN:
            total = pick_min(total, a)
        elif kind == NORM_NONZERO:
            part += a != 0
        else:
            part += pow(a, p)
    return total if kind == NORM_MIN else total + part  # (the block's sum first: see power_sum)


cdef double power_sum(const floating* x, Py_ssize_t n, NormKind kind, double p, double scale) noexcept nogil:
    """Sum over x of |x * scale|^p (the max/min |x| for NORM_MAX/NORM_MIN), in double, block by
    block, each block's sum joining the total in turn (rounding error grows with the elements a
    lane sums in a block plus n / BLOCK, not with n).  Squares and magnitudes (p = 2, 1,
    unscaled: clipping's norms) read x as four stretches side by side, a block of each at a time,
    8 lanes each (see _norms.h); what is left after them in LANES lanes a block; the rare kinds
    one element after another, a block at a time."""
    cdef double total = INFINITY if kind == NORM_MIN else 0.0
    cdef Py_ssize_t start = 0, stretch
    if (kind == NORM_TWO or kind == NORM_ONE) and scale == 1.0:
        stretch = n // (STRETCHES * BLOCK) * BLOCK  # four stretches of whole blocks
        while start < stretch:
            if floating is float:
                total += stretches_float(x + start, stretch, BLOCK, kind == NORM_ONE)
            else:
                total += stretches_double(x + start, stretch, BLOCK, kind == NORM_ONE)
            start += BLOCK
        start = STRETCHES * stretch
    while start < n:
        total = add_block(total, x, start, min(start + BLOCK, n), kind, p, scale)
        start += BLOCK
    return total


cdef double pieces_power_sum(const Piece* pieces, Py_ssize_t count, NormKind kind, double p,
                             double scale) noexcept nogil:
    cdef double total = INFINITY if kind == NORM_MIN else 0.0, part
    cdef Py_ssize_t k
    for k in range(count):
        if pieces[k].is_float32:
            part = power_sum(<const float*>pieces[k].data, pieces[k].size, kind, p, scale)
        else:
            part = power_sum(<const double*>pieces[k].data, pieces[k].size, kind, p, scale)
        if kind == NORM_MAX:
            total = pick_max(total, part)
        elif kind == NORM_MIN:
            total = pick_min(total, part)
        elif kind == NORM_NONZERO:
            total += part != 0  # torch: the 0-"norm" of the arrays' norms, the number of nonzero arrays
        else:
            total += part
    return total


cdef double divided_power_sum(const Piece* pieces, Py_ssize_t count, double p, double bound) noexcept nogil:
    """Sum over the elements of (|x| / bound)^p, one by one: pieces_norm's last resort (rare)."""
    cdef double total = 0
    cdef Py_ssize_t k, i
    for k in range(count):
        for i in range(pieces[k].size):
            if pieces[k].is_float32:
                total += pow(fabs((<const float*>pieces[k].data)[i]) / bound, p)
            else:
                total += pow(fabs((<const double*>pieces[k].data)[i]) / bound, p)
    return total


cdef double finish(double total, NormKind kind, double p) noexcept nogil:
    if kind == NORM_TWO:
        return sqrt(total)
    if kind == NORM_POWER:
        return pow(total, 1.0 / p)
    return total


cdef double pieces_norm(const Piece* pieces, Py_ssize_t count, double p) noexcept nogil:
    """The p-norm of all the arrays' elements as one vector."""
    cdef NormKind kind
    cdef double total, bound, scale
    cdef int exponent
    if p == 2:
        kind = NORM_TWO
    elif p == 1:
        kind = NORM_ONE
    elif p == INFINITY:
        kind = NORM_MAX
    elif p == -INFINITY:
        kind = NORM_MIN
    elif p == 0:
        kind = NORM_NONZERO
    else:
        kind = NORM_POWER
    total = pieces_power_sum(pieces, count, kind, p, 1.0)
    if (kind == NORM_TWO or kind == NORM_ONE or kind == NORM_POWER) and not 1e-280 < total < INFINITY:
        # the sum of powers overflowed or underflowed (float64 elements beyond about 1e154 or
        # below 1e-154, for p = 2), or an element is not finite (or, for p < 0, is 0): if every
        # element is finite (and, for p < 0, none is 0), sum again with the elements scaled by a
        # power of two (exact) that brings the largest into [0.5, 1) (for p < 0 the smallest,
        # whose power is the largest term)
        bound = pieces_power_sum(pieces, count, NORM_MIN if p < 0 else NORM_MAX, p, 1.0)
        if bound > 0 and isfinite(bound):
            frexp(bound, &exponent)
            # a subnormal bound (exponent below -1021) is brought to 2^-54 or above, not to 1:
            # 2^1074 would overflow the scale
            scale = ldexp(1.0, -max(exponent, -1020))
            total = pieces_power_sum(pieces, count, kind, p, scale)
            if not 1e-280 < total < INFINITY:  # |p| beyond about 1000 (0.5^p underflows), or a subnormal
                # bound (which no double scale brings to 1): each element divided by the bound, the
                # largest (or smallest) term exactly 1, the sum in [1, elements]
                return finish(divided_power_sum(pieces, count, p, bound), kind, p) * bound
            return finish(total, kind, p) / scale
    return finish(total, kind, p)


def total_norm(list items, object holder, double norm_type):
    """(norm, any_float64, any_empty): the norm_type-norm of the arrays of items (or of the .grad
    of each, None skipped) as one vector, in double; None if an array is not readable as it is."""
    cdef _Pieces pieces = gathered(items, holder, False)
    cdef double norm
    cdef bint any_float64 = False, any_empty = False
    cdef Py_ssize_t k
    if pieces is None:
        return None
    for k in range(pieces.count):
        any_float64 |= not pieces.pieces[k].is_float32
        any_empty |= pieces.pieces[k].size == 0
    with nogil:
        norm = pieces_norm(pieces.pieces, pieces.count, norm_type)
    return norm, any_float64, any_empty


# -- element-wise passes in place ---------------------------------------------------

cdef enum Pass:
    PASS_SCALE   # x = x * a
    PASS_CLAMP   # x = x clamped to [a, b]
    PASS_LERP    # x = lerp(x, y, a)
    PASS_MEAN    # x = x + (y - x) / a
    PASS_COPY    # x = y
    PASS_SWAP    # x, y = y, x
    PASS_ADD     # x = x + y


cdef enum:
    STRETCH_RUN = 64  # elements of a stretch passed over in a row (stretched_pass)


cdef inline void scale_in_place(floating* x, Py_ssize_t n, floating factor) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        x[i] = x[i] * factor


cdef inline void clamp_in_place(floating* x, Py_ssize_t n, floating low, floating high) noexcept nogil:
    # torch's clamp_min_ then clamp_max_: NaN stays NaN
    cdef Py_ssize_t i
    cdef floating v
    for i in range(n):
        v = x[i]
        v = low if v < low else v
        x[i] = high if v > high else v


def scale_all(list items, object holder, double factor):
    """Multiply every array of items (or .grad, None skipped) by factor rounded to its dtype, in
    place; False (changing nothing) if one is not ready."""
    cdef _Pieces pieces = gathered(items, holder, True)
    cdef Py_ssize_t k
    if pieces is None:
        return False
    with nogil:
        for k in range(pieces.count):
            if pieces.pieces[k].is_float32:
                stretched_pass(<float*>pieces.pieces[k].data, NULL, pieces.pieces[k].size, PASS_SCALE,
                               <float>factor, 0)
            else:
                stretched_pass(<double*>pieces.pieces[k].data, NULL, pieces.pieces[k].size, PASS_SCALE, factor, 0)
    return True


def clamp_all(list items, object holder, double low, double high):
    """Clamp every array of items (or .grad, None skipped) to [low, high] (rounded to its dtype)
    in place; False (changing nothing) if one is not ready."""
    cdef _Pieces pieces = gathered(items, holder, True)
    cdef Py_ssize_t k
    if pieces is None:
        return False
    with nogil:
        for k in range(pieces.count):
            if pieces.pieces[k].is_float32:
                stretched_pass(<float*>pieces.pieces[k].data, NULL, pieces.pieces[k].size, PASS_CLAMP, <float>low,
                               <float>high)
            else:
                stretched_pass(<double*>pieces.pieces[k].data, NULL, pieces.pieces[k].size, PASS_CLAMP, low, high)
    return True


# -- running averages and accumulation ----------------------------------------------

cdef inline void lerp_in_place(floating* average, const floating* current, Py_ssize_t n,
                               floating weight) noexcept nogil:
    # torch._foreach_lerp_(averages, currents, weight), ATen's two formulas
    cdef bint low_weight = weight < 0.5
    cdef Py_ssize_t i
    for i in range(n):
        average[i] = lerp(average[i], current[i], weight, low_weight)


cdef inline void mean_in_place(floating* average, const floating* current, Py_ssize_t n,
                               floating count) noexcept nogil:
    # torch's AveragedModel by default on a CPU (get_swa_avg_fn): each operation rounded
    cdef Py_ssize_t i
    for i in range(n):
        average[i] = average[i] + (current[i] - average[i]) / count


cdef inline void swap_in_place(floating* a, floating* b, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating t
    for i in range(n):
        t = a[i]
        a[i] = b[i]
        b[i] = t


cdef inline void add_in_place(floating* total, const floating* x, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        total[i] = total[i] + x[i]


cdef inline void run_pass(floating* x, floating* y, Py_ssize_t n, Pass what, floating a, floating b) noexcept nogil:
    if what == PASS_SCALE:
        scale_in_place(x, n, a)
    elif what == PASS_CLAMP:
        clamp_in_place(x, n, a, b)
    elif what == PASS_LERP:
        lerp_in_place(x, y, n, a)
    elif what == PASS_MEAN:
        mean_in_place(x, y, n, a)
    elif what == PASS_SWAP:
        swap_in_place(x, y, n)
    else:  # PASS_ADD (pair_pass copies PASS_COPY's pairs itself)
        add_in_place(x, y, n)


cdef inline void stretched_pass(floating* x, floating* y, Py_ssize_t n, Pass what, floating a,
                                floating b) noexcept nogil:
    """`what` over x (and y, NULL for the passes of one array) in place: as four stretches side
    by side, STRETCH_RUN elements of each in turn, then the rest (each element's result its own:
    the order changes no bit).  One stream of reads and writes leaves much of a core's bandwidth
    unused, as for the norms (see _norms.h): 40 MB of float32 scaled (or clamped) in about 1.1
    ms, against 1.8-2.1 ms element after element, at both x86 levels."""
    cdef Py_ssize_t stretch = n // (STRETCHES * STRETCH_RUN) * STRETCH_RUN, i, s, at = 0
    for i in range(stretch // STRETCH_RUN):
        for s in range(STRETCHES):
            at = s * stretch + i * STRETCH_RUN
            run_pass(x + at, NULL if y == NULL else y + at, STRETCH_RUN, what, a, b)
    at = STRETCHES * stretch
    run_pass(x + at, NULL if y == NULL else y + at, n - at, what, a, b)


cdef inline bint partly_shared(const Piece* x, const Piece* y) noexcept:
    """Whether two pieces of the same size share memory without being the same."""
    return x.data != y.data and overlap(x.data, y.data, bytes_of(x.size, x.is_float32))


cdef bint pair_pass(list targets, list sources, Pass what, double weight, list copied=None) except -1:
    """One pass of `what` over each pair (targets[k], sources[k]) (PASS_ADD: a copy for the pairs
    whose copied[k] is true); False, changing nothing, if an array is not ready, or a pair does
    not match (size, dtype) or shares memory in part."""
    cdef _Pieces a = gathered(targets, None, True)
    cdef _Pieces b = gathered(sources, None, what == PASS_SWAP)
    cdef Py_ssize_t k, n
    cdef Piece* x
    cdef Piece* y
    if a is None or b is None or not matching(a, b) or (copied is not None and len(copied) != a.count):
        return False
    for k in range(a.count):  # a pair sharing memory in part would read what it has written (torch refuses it)
        if partly_shared(&a.pieces[k], &b.pieces[k]):
            return False
    for k in range(a.count):  # a copy is marked by a negative size, read under the GIL
        if copied is not None and copied[k]:
            a.pieces[k].size = -1 - a.pieces[k].size
    with nogil:
        for k in range(a.count):
            x = &a.pieces[k]
            y = &b.pieces[k]
            n = y.size
            if x.size < 0 or what == PASS_COPY:  # memmove keeps its own streams (the pair may be one array)
                memmove(x.data, y.data, bytes_of(n, x.is_float32))
            elif x.is_float32:
                stretched_pass(<float*>x.data, <float*>y.data, n, what, <float>weight, 0)
            else:
                stretched_pass(<double*>x.data, <double*>y.data, n, what, weight, 0)
    return True


def lerp_all(list averages, list currents, double weight):
    """averages[k] += weight * (currents[k] - averages[k]) (torch's lerp, weight rounded to the
    dtype), in place; False if not ready."""
    return pair_pass(averages, currents, PASS_LERP, weight)


def mean_all(list averages, list currents, double count):
    """averages[k] += (currents[k] - averages[k]) / count (count rounded to the dtype), in
    place; False if not ready."""
    return pair_pass(averages, currents, PASS_MEAN, count)


def copy_all(list targets, list sources):
    """targets[k][...] = sources[k]; False if not ready."""
    return pair_pass(targets, sources, PASS_COPY, 0.0)


def swap_all(list a, list b):
    """Exchange the contents of a[k] and b[k]; False if not ready."""
    return pair_pass(a, b, PASS_SWAP, 0.0)


def add_all(list totals, list arrays, list copied):
    """totals[k] += arrays[k], or totals[k][...] = arrays[k] where copied[k] is true; False if not ready."""
    return pair_pass(totals, arrays, PASS_ADD, 0.0, copied)


def clip_coef(double max_norm, double total_norm, bint is_float32):
    """torch's clipping factor min(max_norm / (total_norm + 1e-6), 1), as torch computes it in the
    norm's dtype: (total_norm + 1e-6).reciprocal() * max_norm, clamped at 1 (NaN stays NaN)."""
    cdef float single
    cdef double double_
    if is_float32:
        single = (<float>1.0 / (<float>total_norm + <float>1e-6)) * <float>max_norm
        return 1.0 if single > 1 else <double>single
    double_ = (1.0 / (total_norm + 1e-6)) * max_norm
    return 1.0 if double_ > 1 else double_
