# Fused, one-pass update kernels, one block per algorithm.
#
# Each kernel reads the parameter, its gradient and its state once and writes
# the parameter and the state once, on contiguous memory, without the GIL.
# It reads each gradient element times the task's grad_scale, rounded to the
# dtype (as torch's grad.mul_(scale) before a step): clipping's factor costs
# no pass of its own, and a scale of 1 changes no value (a signalling NaN
# comes out quiet, as from any arithmetic).
# The order of floating-point operations is torch.optim's single-tensor code
# path, so that results agree with torch to rounding.  Derived scalars
# (1 - beta, -lr / bias_correction, ...) are computed in double and rounded to
# the array's dtype, as torch rounds Python scalars to the tensor's dtype.
#
# Options that only select a value (maximize, nesterov, weight decay, the first
# momentum step) are written as selects between values computed either way,
# which the compiler turns into vector blends (given -fno-trapping-math).  Options
# that decide which arrays are read and written (momentum, amsgrad, centered)
# are the engine's: it passes their state arrays, or NULL (so amsgrad and centered
# are no fields of the options), and the algorithm's update function passes
# that as a literal constant, so each inlined copy of a loop has no branch in it.
#
# An algorithm's block holds:
#   <Name>Options  the options its kernel reads, as doubles (flags are 0 or 1), named as
#                  the optimizer's description names them (fastgd/optim.py); the engine
#                  fills it from a param group by these names
#   <name>_interface()  those names; the names of the state arrays in the order its update
#                  reads them from Task.state; the names of the numbers it keeps per parameter
#                  (its scalar state) in the order its step scalars read them; and the size
#                  of its <Name>Step (0 without): the engine refuses a description whose names
#                  differ, and a <Name>Step larger than Task.step_scalars
#   <name>_step_scalars  (if any) the scalars of a step that depend on the step count (and
#                  the parameter's scalar state, which it may update), into
#                  Task.step_scalars (a struct of its own, <Name>Step, of MAX_STEP_SCALARS
#                  doubles at most)
#   <name>_update  one parameter's update: dtype and option-selected copy of the kernel
# and src/_engine.pxi lists it in kernel_named.
from cython cimport floating
from libc.math cimport INFINITY, fabs, fabsf, pow, sqrt, sqrtf
from libc.string cimport memset

cdef enum:
    MAX_STATES = 4          # state arrays per parameter
    MAX_STEP_SCALARS = 4    # doubles of a step's scalars per parameter
    MAX_OPTION_FIELDS = 16  # doubles of an algorithm's options


cdef struct Task:
    # one parameter's update
    void* param
    const void* grad
    double grad_scale         # every gradient element is read times it, rounded to the dtype (1: the same values)
    void* state[MAX_STATES]   # in the order of the algorithm's interface; NULL when not needed
    Py_ssize_t size
    bint is_float32
    bint fresh                # its from-gradient state was created since its last update
    long long step            # its step count, this step included (algorithms that count steps)
    double step_scalars[MAX_STEP_SCALARS]


ctypedef void (*update_fn)(const Task* task, const double* options) noexcept nogil
# the scalars of a parameter's step (into scalars) from the options, its step count and its scalar
# state, which it may update
ctypedef void (*step_scalars_fn)(const double* options, long long step, double* scalar_state,
                                 double* scalars) noexcept nogil


cdef struct Kernel:
    update_fn update
    step_scalars_fn step_scalars  # NULL: the algorithm has none


cdef inline floating root(floating x) noexcept nogil:
    if floating is float:
        return sqrtf(x)
    else:
        return sqrt(x)


cdef inline floating magnitude(floating x) noexcept nogil:
    if floating is float:
        return fabsf(x)
    else:
        return fabs(x)


cdef inline floating lerp(floating start, floating end, floating weight, bint low_weight) noexcept nogil:
    # ATen's lerp: two formulas, chosen by the weight, for accuracy near 1.
    return start + weight * (end - start) if low_weight else end - (end - start) * (1 - weight)


cdef inline floating nan_max(floating a, floating b) noexcept nogil:
    # torch.maximum propagates NaN from either side.  Two selects, not `b > a or b != b`, whose
    # short-circuit `or` is control flow that keeps GCC from vectorizing the loop.
    cdef floating larger = b if b > a else a
    return b if b != b else larger


cdef inline double decay_factor_of(double lr, double weight_decay, bint decoupled) noexcept nogil:
    # what decoupled weight decay multiplies a parameter by, 1 - lr * weight_decay (1 without):
    # a step scalar, so that the engine refuses it where it is not finite, or beyond float32's range
    # for float32 parameters (it would turn a parameter of 0 into NaN, as torch's
    # p.mul_(1 - lr * weight_decay) does)
    return 1 - lr * weight_decay if decoupled and weight_decay != 0 else 1


# -- SGD ----------------------------------------------------------------------

cdef struct SgdOptions:
    double lr
    double momentum
    double dampening
    double weight_decay
    double nesterov
    double maximize


cdef inline tuple sgd_interface():
    cdef SgdOptions fields
    memset(&fields, 0, sizeof(fields))
    return tuple(<dict>fields), ("momentum_buffer",), (), 0


cdef inline void sgd_kernel(
    floating* param, const floating* grad, floating grad_scale, floating* momentum_buffer, Py_ssize_t n,
    const SgdOptions* o, bint first_step, bint has_momentum,
) noexcept nogil:
    cdef floating neg_lr = -o.lr, weight_decay = o.weight_decay, momentum = o.momentum
    cdef floating one_minus_dampening = 1 - o.dampening
    cdef bint maximize = o.maximize != 0, nesterov = o.nesterov != 0, decay = o.weight_decay != 0
    cdef Py_ssize_t i
    cdef floating g, p, buf, decayed, look_ahead
    for i in range(n):
        p = param[i]
        g = grad[i] * grad_scale
        g = -g if maximize else g
        decayed = g + weight_decay * p
        g = decayed if decay else g
        if has_momentum:
            # torch: the first momentum buffer is the gradient itself
            buf = momentum_buffer[i] * momentum + one_minus_dampening * g
            buf = g if first_step else buf
            momentum_buffer[i] = buf
            look_ahead = g + momentum * buf
            g = look_ahead if nesterov else buf
        param[i] = p + neg_lr * g


cdef inline void sgd_typed(floating* param, const Task* t, const SgdOptions* o) noexcept nogil:
    # (a state array is there, not NULL, when its option asks for it: the engine decides, see Plan)
    cdef floating* buffer = <floating*>t.state[0]
    if buffer != NULL:
        sgd_kernel(param, <const floating*>t.grad, t.grad_scale, buffer, t.size, o, t.fresh, True)
    else:
        sgd_kernel(param, <const floating*>t.grad, t.grad_scale, buffer, t.size, o, False, False)


cdef inline void sgd_update(const Task* t, const double* options) noexcept nogil:
    if t.is_float32:
        sgd_typed(<float*>t.param, t, <const SgdOptions*>options)
    else:
        sgd_typed(<double*>t.param, t, <const SgdOptions*>options)


# -- Adam and AdamW -------------------------------------------------------------

cdef struct AdamOptions:
    double lr
    double beta1
    double beta2
    double eps
    double weight_decay
    double maximize
    double decoupled_weight_decay


cdef struct AdamStep:
    double neg_step_size          # -lr / bias_correction1
    double bias_correction2_sqrt
    double decay_factor           # decay_factor_of(lr, weight_decay, decoupled_weight_decay)


cdef inline tuple adam_interface():
    cdef AdamOptions fields
    memset(&fields, 0, sizeof(fields))
    return tuple(<dict>fields), ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"), (), sizeof(AdamStep)


cdef inline void adam_step_scalars(const double* options, long long step, double* scalar_state,
                                   double* scalars) noexcept nogil:
    # as torch derives them from the step count (counted from 1)
    cdef const AdamOptions* o = <const AdamOptions*>options
    cdef AdamStep* s = <AdamStep*>scalars
    s.neg_step_size = -(o.lr / (1 - pow(o.beta1, <double>step)))
    s.bias_correction2_sqrt = pow(1 - pow(o.beta2, <double>step), 0.5)
    s.decay_factor = decay_factor_of(o.lr, o.weight_decay, o.decoupled_weight_decay != 0)


cdef inline void adam_kernel(
    floating* param, const floating* grad, floating grad_scale, floating* exp_avg, floating* exp_avg_sq,
    floating* max_exp_avg_sq, Py_ssize_t n, const AdamOptions* o, const AdamStep* s, bint amsgrad,
    bint multiply_first,
) noexcept nogil:
    cdef floating weight_decay = o.weight_decay, decay_factor = s.decay_factor
    cdef floating one_minus_beta1 = 1 - o.beta1, beta2 = o.beta2, one_minus_beta2 = 1 - o.beta2
    cdef floating eps = o.eps, neg_step_size = s.neg_step_size, inverse_correction = 1 / s.bias_correction2_sqrt
    cdef bint low_weight = 1 - o.beta1 < 0.5, maximize = o.maximize != 0
    cdef bint coupled_decay = o.weight_decay != 0 and o.decoupled_weight_decay == 0
    cdef bint decoupled_decay = o.weight_decay != 0 and o.decoupled_weight_decay != 0
    cdef Py_ssize_t i
    cdef floating g, p, m, v, decayed, shrunk, denom
    for i in range(n):
        p = param[i]
        g = grad[i] * grad_scale
        g = -g if maximize else g
        decayed = g + weight_decay * p
        g = decayed if coupled_decay else g
        shrunk = p * decay_factor
        p = shrunk if decoupled_decay else p
        m = lerp(exp_avg[i], g, one_minus_beta1, low_weight)
        v = exp_avg_sq[i] * beta2 + one_minus_beta2 * g * g
        exp_avg[i] = m
        exp_avg_sq[i] = v
        if amsgrad:
            v = nan_max(max_exp_avg_sq[i], v)
            max_exp_avg_sq[i] = v
        # torch's order: eps is added after the root is divided by sqrt(bias_correction2).
        # That division is a multiplication here (within an ulp): one division per element
        # fewer, in a loop whose speed is set by its divisions and square root.
        denom = root(v) * inverse_correction + eps
        if multiply_first:  # see step_order
            param[i] = p + (neg_step_size * m) / denom
        else:
            param[i] = p + neg_step_size * (m / denom)


cdef inline bint step_order(double neg_step_size) noexcept nogil:
    """Whether a step of size |neg_step_size| times m / denom multiplies first, as torch's addcdiv
    does: up to 1 (a learning rate below 1, as usual), m / denom alone can leave the dtype's range
    where the step does not (a float32 m of 1e28 over an eps of 1e-12); past 1, the product can
    (lr=1e30 over a float32 gradient at its largest), and the division goes first.  The update
    functions pass the answer to their kernels as a literal, so each copy of a loop has one order."""
    return fabs(neg_step_size) <= 1


cdef inline void adam_typed(floating* param, const Task* t, const AdamOptions* o) noexcept nogil:
    cdef const AdamStep* s = <const AdamStep*>t.step_scalars
    cdef const floating* grad = <const floating*>t.grad
    cdef floating* exp_avg = <floating*>t.state[0]
    cdef floating* exp_avg_sq = <floating*>t.state[1]
    cdef floating* max_exp_avg_sq = <floating*>t.state[2]  # amsgrad's, or NULL
    cdef bint multiply_first = step_order(s.neg_step_size)
    if max_exp_avg_sq != NULL and multiply_first:
        adam_kernel(param, grad, t.grad_scale, exp_avg, exp_avg_sq, max_exp_avg_sq, t.size, o, s, True, True)
    elif max_exp_avg_sq != NULL:
        adam_kernel(param, grad, t.grad_scale, exp_avg, exp_avg_sq, max_exp_avg_sq, t.size, o, s, True, False)
    elif multiply_first:
        adam_kernel(param, grad, t.grad_scale, exp_avg, exp_avg_sq, max_exp_avg_sq, t.size, o, s, False, True)
    else:
        adam_kernel(param, grad, t.grad_scale, exp_avg, exp_avg_sq, max_exp_avg_sq, t.size, o, s, False, False)


cdef inline void adam_update(const Task* t, const double* options) noexcept nogil:
    if t.is_float32:
        adam_typed(<float*>t.param, t, <const AdamOptions*>options)
    else:
        adam_typed(<double*>t.param, t, <const AdamOptions*>options)


# -- RMSprop --------------------------------------------------------------------

cdef struct RmspropOptions:
    double lr
    double alpha
    double eps
    double weight_decay
    double momentum
    double maximize


cdef inline tuple rmsprop_interface():
    cdef RmspropOptions fields
    memset(&fields, 0, sizeof(fields))
    return tuple(<dict>fields), ("square_avg", "grad_avg", "momentum_buffer"), (), 0


cdef inline void rmsprop_kernel(
    floating* param, const floating* grad, floating grad_scale, floating* square_avg, floating* grad_avg,
    floating* momentum_buffer, Py_ssize_t n, const RmspropOptions* o, bint centered, bint has_momentum,
    bint multiply_first,
) noexcept nogil:
    cdef floating neg_lr = -o.lr, weight_decay = o.weight_decay, alpha = o.alpha
    cdef floating one_minus_alpha = 1 - o.alpha, eps = o.eps, momentum = o.momentum
    cdef bint low_weight = 1 - o.alpha < 0.5, maximize = o.maximize != 0, decay = o.weight_decay != 0
    cdef Py_ssize_t i
    cdef floating g, p, s, a, avg, buf, decayed
    for i in range(n):
        p = param[i]
        g = grad[i] * grad_scale
        g = -g if maximize else g
        decayed = g + weight_decay * p
        g = decayed if decay else g
        s = square_avg[i] * alpha + one_minus_alpha * g * g
        square_avg[i] = s
        if centered:
            a = lerp(grad_avg[i], g, one_minus_alpha, low_weight)
            grad_avg[i] = a
            # a square_avg that overflowed stays inf, as torch's fused multiply-add keeps it (its
            # step then 0) where a * a overflows, not where a is inf or NaN (NaN there); no fused
            # multiply-add here (see the README)
            s = s + (-a) * a if s < INFINITY or not -INFINITY < a < INFINITY else s
        avg = root(s) + eps
        if has_momentum:
            buf = momentum_buffer[i] * momentum + g / avg
            momentum_buffer[i] = buf
            param[i] = p + neg_lr * buf
        elif multiply_first:  # see step_order
            param[i] = p + (neg_lr * g) / avg
        else:
            param[i] = p + neg_lr * (g / avg)


cdef inline void rmsprop_typed(floating* param, const Task* t, const RmspropOptions* o) noexcept nogil:
    cdef const floating* grad = <const floating*>t.grad
    cdef floating grad_scale = t.grad_scale
    cdef floating* square_avg = <floating*>t.state[0]
    cdef floating* grad_avg = <floating*>t.state[1]
    cdef floating* momentum_buffer = <floating*>t.state[2]
    # without momentum the step is torch's addcdiv, its order step_order's (with it, torch
    # divides first: the momentum buffer takes grad / avg)
    cdef bint multiply_first = step_order(-o.lr)
    # (centered and momentum: their state arrays there, not NULL, as the engine decides)
    cdef bint centered = grad_avg != NULL, momentum = momentum_buffer != NULL
    if centered and momentum:
        rmsprop_kernel(param, grad, grad_scale, square_avg, grad_avg, momentum_buffer, t.size, o, True, True, False)
    elif centered and multiply_first:
        rmsprop_kernel(param, grad, grad_scale, square_avg, grad_avg, momentum_buffer, t.size, o, True, False, True)
    elif centered:
        rmsprop_kernel(param, grad, grad_scale, square_avg, grad_avg, momentum_buffer, t.size, o, True, False, False)
    elif momentum:
        rmsprop_kernel(param, grad, grad_scale, square_avg, grad_avg, momentum_buffer, t.size, o, False, True, False)
    elif multiply_first:
        rmsprop_kernel(param, grad, grad_scale, square_avg, grad_avg, momentum_buffer, t.size, o, False, False, True)
    else:
        rmsprop_kernel(param, grad, grad_scale, square_avg, grad_avg, momentum_buffer, t.size, o, False, False, False)


cdef inline void rmsprop_update(const Task* t, const double* options) noexcept nogil:
    if t.is_float32:
        rmsprop_typed(<float*>t.param, t, <const RmspropOptions*>options)
    else:
        rmsprop_typed(<double*>t.param, t, <const RmspropOptions*>options)


# -- Adagrad --------------------------------------------------------------------

cdef struct AdagradOptions:
    double lr
    double lr_decay
    double weight_decay
    double eps
    double maximize


cdef struct AdagradStep:
    double neg_clr  # -lr / (1 + (step - 1) * lr_decay)


cdef inline tuple adagrad_interface():
    cdef AdagradOptions fields
    memset(&fields, 0, sizeof(fields))
    return tuple(<dict>fields), ("sum",), (), sizeof(AdagradStep)


cdef inline void adagrad_step_scalars(const double* options, long long step, double* scalar_state,
                                      double* scalars) noexcept nogil:
    cdef const AdagradOptions* o = <const AdagradOptions*>options
    (<AdagradStep*>scalars).neg_clr = -(o.lr / (1 + (step - 1) * o.lr_decay))


cdef inline void adagrad_kernel(
    floating* param, const floating* grad, floating grad_scale, floating* state_sum, Py_ssize_t n,
    const AdagradOptions* o, const AdagradStep* s, bint multiply_first,
) noexcept nogil:
    cdef floating weight_decay = o.weight_decay, eps = o.eps, neg_clr = s.neg_clr
    cdef bint maximize = o.maximize != 0, decay = o.weight_decay != 0
    cdef Py_ssize_t i
    cdef floating g, p, total, decayed
    for i in range(n):
        p = param[i]
        g = grad[i] * grad_scale
        g = -g if maximize else g
        decayed = g + weight_decay * p
        g = decayed if decay else g
        total = state_sum[i] + g * g
        state_sum[i] = total
        if multiply_first:  # torch's addcdiv (see step_order)
            param[i] = p + (neg_clr * g) / (root(total) + eps)
        else:
            param[i] = p + neg_clr * (g / (root(total) + eps))


cdef inline void adagrad_typed(floating* param, const Task* t, const AdagradOptions* o) noexcept nogil:
    cdef const AdagradStep* s = <const AdagradStep*>t.step_scalars
    cdef const floating* grad = <const floating*>t.grad
    if step_order(s.neg_clr):
        adagrad_kernel(param, grad, t.grad_scale, <floating*>t.state[0], t.size, o, s, True)
    else:
        adagrad_kernel(param, grad, t.grad_scale, <floating*>t.state[0], t.size, o, s, False)


cdef inline void adagrad_update(const Task* t, const double* options) noexcept nogil:
    if t.is_float32:
        adagrad_typed(<float*>t.param, t, <const AdagradOptions*>options)
    else:
        adagrad_typed(<double*>t.param, t, <const AdagradOptions*>options)


# -- Adamax ---------------------------------------------------------------------

cdef struct AdamaxOptions:
    double lr
    double beta1
    double beta2
    double eps
    double weight_decay
    double maximize


cdef struct AdamaxStep:
    double neg_clr  # -lr / bias_correction1


cdef inline tuple adamax_interface():
    cdef AdamaxOptions fields
    memset(&fields, 0, sizeof(fields))
    return tuple(<dict>fields), ("exp_avg", "exp_inf"), (), sizeof(AdamaxStep)


cdef inline void adamax_step_scalars(const double* options, long long step, double* scalar_state,
                                     double* scalars) noexcept nogil:
    cdef const AdamaxOptions* o = <const AdamaxOptions*>options
    (<AdamaxStep*>scalars).neg_clr = -(o.lr / (1 - pow(o.beta1, <double>step)))


cdef inline void adamax_kernel(
    floating* param, const floating* grad, floating grad_scale, floating* exp_avg, floating* exp_inf, Py_ssize_t n,
    const AdamaxOptions* o, const AdamaxStep* s, bint multiply_first,
) noexcept nogil:
    cdef floating weight_decay = o.weight_decay, one_minus_beta1 = 1 - o.beta1, beta2 = o.beta2
    cdef floating eps = o.eps, neg_clr = s.neg_clr
    cdef bint low_weight = 1 - o.beta1 < 0.5, maximize = o.maximize != 0, decay = o.weight_decay != 0
    cdef Py_ssize_t i
    cdef floating g, p, m, u, decayed
    for i in range(n):
        p = param[i]
        g = grad[i] * grad_scale
        g = -g if maximize else g
        decayed = g + weight_decay * p
        g = decayed if decay else g
        m = lerp(exp_avg[i], g, one_minus_beta1, low_weight)
        # torch: the infinity norm is the NaN-propagating maximum of the decayed norm and |g| + eps
        u = nan_max(exp_inf[i] * beta2, magnitude(g) + eps)
        exp_avg[i] = m
        exp_inf[i] = u
        if multiply_first:  # see step_order
            param[i] = p + (neg_clr * m) / u
        else:
            param[i] = p + neg_clr * (m / u)


cdef inline void adamax_typed(floating* param, const Task* t, const AdamaxOptions* o) noexcept nogil:
    cdef const AdamaxStep* s = <const AdamaxStep*>t.step_scalars
    cdef const floating* grad = <const floating*>t.grad
    if step_order(s.neg_clr):
        adamax_kernel(param, grad, t.grad_scale, <floating*>t.state[0], <floating*>t.state[1], t.size, o, s, True)
    else:
        adamax_kernel(param, grad, t.grad_scale, <floating*>t.state[0], <floating*>t.state[1], t.size, o, s, False)


cdef inline void adamax_update(const Task* t, const double* options) noexcept nogil:
    if t.is_float32:
        adamax_typed(<float*>t.param, t, <const AdamaxOptions*>options)
    else:
        adamax_typed(<double*>t.param, t, <const AdamaxOptions*>options)


# -- Adadelta -------------------------------------------------------------------

cdef struct AdadeltaOptions:
    double lr
    double rho
    double eps
    double weight_decay
    double maximize


cdef inline tuple adadelta_interface():
    cdef AdadeltaOptions fields
    memset(&fields, 0, sizeof(fields))
    return tuple(<dict>fields), ("square_avg", "acc_delta"), (), 0


cdef inline void adadelta_kernel(
    floating* param, const floating* grad, floating grad_scale, floating* square_avg, floating* acc_delta, Py_ssize_t n,
    const AdadeltaOptions* o,
) noexcept nogil:
    cdef floating neg_lr = -o.lr, weight_decay = o.weight_decay, rho = o.rho, one_minus_rho = 1 - o.rho
    cdef floating eps = o.eps
    cdef bint maximize = o.maximize != 0, decay = o.weight_decay != 0
    cdef Py_ssize_t i
    cdef floating g, p, s, a, delta, decayed
    for i in range(n):
        p = param[i]
        g = grad[i] * grad_scale
        g = -g if maximize else g
        decayed = g + weight_decay * p
        g = decayed if decay else g
        s = square_avg[i] * rho + one_minus_rho * g * g
        square_avg[i] = s
        # torch's quotient of roots, sqrt(acc_delta + eps) / sqrt(square_avg + eps) * g: the root of
        # the quotient saves a root, but the quotient leaves the dtype's range first (a subnormal
        # or zero step, or NaN, where torch's is right)
        a = acc_delta[i]
        delta = root(a + eps) / root(s + eps) * g
        acc_delta[i] = a * rho + one_minus_rho * delta * delta
        param[i] = p + neg_lr * delta


cdef inline void adadelta_update(const Task* t, const double* options) noexcept nogil:
    cdef const AdadeltaOptions* o = <const AdadeltaOptions*>options
    if t.is_float32:
        adadelta_kernel(<float*>t.param, <const float*>t.grad, <float>t.grad_scale,
                        <float*>t.state[0], <float*>t.state[1], t.size, o)
    else:
        adadelta_kernel(<double*>t.param, <const double*>t.grad, t.grad_scale, <double*>t.state[0], <double*>t.state[1],
                        t.size, o)


# -- Lion -----------------------------------------------------------------------

cdef struct LionOptions:
    double lr
    double beta1
    double beta2
    double weight_decay
    double maximize


cdef struct LionStep:
    double decay_factor  # decay_factor_of(lr, weight_decay, True)


cdef inline tuple lion_interface():
    cdef LionOptions fields
    memset(&fields, 0, sizeof(fields))
    return tuple(<dict>fields), ("exp_avg",), (), sizeof(LionStep)


cdef inline void lion_step_scalars(const double* options, long long step, double* scalar_state,
                                   double* scalars) noexcept nogil:
    cdef const LionOptions* o = <const LionOptions*>options
    (<LionStep*>scalars).decay_factor = decay_factor_of(o.lr, o.weight_decay, True)


cdef inline void lion_kernel(
    floating* param, const floating* grad, floating grad_scale, floating* exp_avg, Py_ssize_t n, const LionOptions* o,
    const LionStep* s,
) noexcept nogil:
    # Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms", Algorithm 2
    cdef floating neg_lr = -o.lr, decay_factor = s.decay_factor
    cdef floating beta1 = o.beta1, one_minus_beta1 = 1 - o.beta1, beta2 = o.beta2, one_minus_beta2 = 1 - o.beta2
    cdef bint maximize = o.maximize != 0, decay = o.weight_decay != 0
    cdef Py_ssize_t i
    cdef floating g, p, m, c, direction, shrunk
    for i in range(n):
        p = param[i]
        g = grad[i] * grad_scale
        g = -g if maximize else g
        m = exp_avg[i]
        c = m * beta1 + one_minus_beta1 * g
        # sign(c), with sign(0) = 0 and NaN kept, as numpy.sign (torch.sign gives 0 for NaN)
        direction = 1 if c > 0 else (-1 if c < 0 else c)
        # decoupled weight decay: p - lr * (sign(c) + weight_decay * p), the shrinking first
        shrunk = p * decay_factor
        p = shrunk if decay else p
        param[i] = p + neg_lr * direction
        exp_avg[i] = m * beta2 + one_minus_beta2 * g


cdef inline void lion_update(const Task* t, const double* options) noexcept nogil:
    cdef const LionOptions* o = <const LionOptions*>options
    cdef const LionStep* s = <const LionStep*>t.step_scalars
    if t.is_float32:
        lion_kernel(<float*>t.param, <const float*>t.grad, <float>t.grad_scale, <float*>t.state[0], t.size, o, s)
    else:
        lion_kernel(<double*>t.param, <const double*>t.grad, t.grad_scale, <double*>t.state[0], t.size, o, s)


# -- RAdam ----------------------------------------------------------------------

cdef struct RadamOptions:
    double lr
    double beta1
    double beta2
    double eps
    double weight_decay
    double maximize
    double decoupled_weight_decay


cdef struct RadamStep:
    double neg_step_size  # rectified: -lr * rect * sqrt(bias_correction2) / bias_correction1; else -lr / bias_correction1
    double rectified      # 1 when the variance is tractable (rho_t > 5), else 0
    double decay_factor   # decay_factor_of(lr, weight_decay, decoupled_weight_decay)


cdef inline tuple radam_interface():
    cdef RadamOptions fields
    memset(&fields, 0, sizeof(fields))
    return tuple(<dict>fields), ("exp_avg", "exp_avg_sq"), (), sizeof(RadamStep)


cdef inline void radam_step_scalars(const double* options, long long step, double* scalar_state,
                                    double* scalars) noexcept nogil:
    # torch's formulas, in its order, so that the choice rho_t > 5 is torch's
    cdef const RadamOptions* o = <const RadamOptions*>options
    cdef RadamStep* s = <RadamStep*>scalars
    cdef double t = <double>step
    cdef double bias_correction1 = 1 - pow(o.beta1, t), bias_correction2 = 1 - pow(o.beta2, t)
    cdef double rho_inf = 2 / (1 - o.beta2) - 1
    cdef double rho_t = rho_inf - 2 * t * pow(o.beta2, t) / bias_correction2
    cdef double rect
    if rho_t > 5.0:
        rect = pow((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t), 0.5)
        s.neg_step_size = -(o.lr * rect * pow(bias_correction2, 0.5) / bias_correction1)
        s.rectified = 1
    else:
        s.neg_step_size = -(o.lr / bias_correction1)
        s.rectified = 0
    s.decay_factor = decay_factor_of(o.lr, o.weight_decay, o.decoupled_weight_decay != 0)


cdef inline void radam_kernel(
    floating* param, const floating* grad, floating grad_scale, floating* exp_avg, floating* exp_avg_sq, Py_ssize_t n,
    const RadamOptions* o, const RadamStep* s, bint rectified,
) noexcept nogil:
    cdef floating weight_decay = o.weight_decay, decay_factor = s.decay_factor
    cdef floating one_minus_beta1 = 1 - o.beta1, beta2 = o.beta2, one_minus_beta2 = 1 - o.beta2
    cdef floating eps = o.eps, neg_step_size = s.neg_step_size
    cdef bint low_weight = 1 - o.beta1 < 0.5, maximize = o.maximize != 0
    cdef bint coupled_decay = o.weight_decay != 0 and o.decoupled_weight_decay == 0
    cdef bint decoupled_decay = o.weight_decay != 0 and o.decoupled_weight_decay != 0
    cdef Py_ssize_t i
    cdef floating g, p, m, v, decayed, shrunk
    for i in range(n):
        p = param[i]
        g = grad[i] * grad_scale
        g = -g if maximize else g
        decayed = g + weight_decay * p
        g = decayed if coupled_decay else g
        shrunk = p * decay_factor
        p = shrunk if decoupled_decay else p
        m = lerp(exp_avg[i], g, one_minus_beta1, low_weight)
        v = exp_avg_sq[i] * beta2 + one_minus_beta2 * g * g
        exp_avg[i] = m
        exp_avg_sq[i] = v
        # torch: m / bias_correction1 * lr * (sqrt(bias_correction2) / (sqrt(v) + eps)) * rect when
        # rectified, else m / bias_correction1 * lr; the scalar factors are folded into one
        if rectified:
            param[i] = p + neg_step_size * (m / (root(v) + eps))
        else:
            param[i] = p + neg_step_size * m


cdef inline void radam_typed(floating* param, const Task* t, const RadamOptions* o) noexcept nogil:
    cdef const RadamStep* s = <const RadamStep*>t.step_scalars
    cdef const floating* grad = <const floating*>t.grad
    if s.rectified != 0:
        radam_kernel(param, grad, t.grad_scale, <floating*>t.state[0], <floating*>t.state[1], t.size, o, s, True)
    else:
        radam_kernel(param, grad, t.grad_scale, <floating*>t.state[0], <floating*>t.state[1], t.size, o, s, False)


cdef inline void radam_update(const Task* t, const double* options) noexcept nogil:
    if t.is_float32:
        radam_typed(<float*>t.param, t, <const RadamOptions*>options)
    else:
        radam_typed(<double*>t.param, t, <const RadamOptions*>options)


# -- NAdam ----------------------------------------------------------------------

cdef struct NadamOptions:
    double lr
    double beta1
    double beta2
    double eps
    double weight_decay
    double momentum_decay
    double maximize
    double decoupled_weight_decay


cdef struct NadamStep:
    double grad_coefficient     # -lr * (1 - mu) / (1 - mu_product)
    double exp_avg_coefficient  # -lr * mu_next / (1 - mu_product * mu_next)
    double bias_correction2_sqrt
    double decay_factor         # decay_factor_of(lr, weight_decay, decoupled_weight_decay)


cdef inline tuple nadam_interface():
    cdef NadamOptions fields
    memset(&fields, 0, sizeof(fields))
    return tuple(<dict>fields), ("exp_avg", "exp_avg_sq"), ("mu_product",), sizeof(NadamStep)


cdef inline void nadam_step_scalars(const double* options, long long step, double* scalar_state,
                                    double* scalars) noexcept nogil:
    # scalar_state[0]: the parameter's mu_product, the product of the momentum coefficients so far
    cdef const NadamOptions* o = <const NadamOptions*>options
    cdef NadamStep* s = <NadamStep*>scalars
    cdef double t = <double>step
    cdef double mu = o.beta1 * (1.0 - 0.5 * pow(0.96, t * o.momentum_decay))
    cdef double mu_next = o.beta1 * (1.0 - 0.5 * pow(0.96, (t + 1) * o.momentum_decay))
    # torch keeps mu_product in its default scalar dtype, float32, and multiplies it there
    cdef double mu_product = <float>(<float>scalar_state[0] * <float>mu)
    scalar_state[0] = mu_product
    s.grad_coefficient = -o.lr * (1.0 - mu) / (1.0 - mu_product)
    s.exp_avg_coefficient = (-o.lr * mu_next) / (1.0 - mu_product * mu_next)
    s.bias_correction2_sqrt = pow(1 - pow(o.beta2, t), 0.5)
    s.decay_factor = decay_factor_of(o.lr, o.weight_decay, o.decoupled_weight_decay != 0)


cdef inline void nadam_kernel(
    floating* param, const floating* grad, floating grad_scale, floating* exp_avg, floating* exp_avg_sq, Py_ssize_t n,
    const NadamOptions* o, const NadamStep* s,
) noexcept nogil:
    cdef floating weight_decay = o.weight_decay, decay_factor = s.decay_factor
    cdef floating one_minus_beta1 = 1 - o.beta1, beta2 = o.beta2, one_minus_beta2 = 1 - o.beta2
    cdef floating eps = o.eps, inverse_correction = 1 / s.bias_correction2_sqrt
    cdef floating grad_coefficient = s.grad_coefficient, exp_avg_coefficient = s.exp_avg_coefficient
    cdef bint low_weight = 1 - o.beta1 < 0.5, maximize = o.maximize != 0
    cdef bint coupled_decay = o.weight_decay != 0 and o.decoupled_weight_decay == 0
    cdef bint decoupled_decay = o.weight_decay != 0 and o.decoupled_weight_decay != 0
    cdef Py_ssize_t i
    cdef floating g, p, m, v, denom, decayed, shrunk
    for i in range(n):
        p = param[i]
        g = grad[i] * grad_scale
        g = -g if maximize else g
        decayed = g + weight_decay * p
        g = decayed if coupled_decay else g
        shrunk = p * decay_factor
        p = shrunk if decoupled_decay else p
        m = lerp(exp_avg[i], g, one_minus_beta1, low_weight)
        v = exp_avg_sq[i] * beta2 + one_minus_beta2 * g * g
        exp_avg[i] = m
        exp_avg_sq[i] = v
        # torch: p + c1 * (g / denom) + c2 * (m / denom), denom = sqrt(v / bias_correction2) + eps;
        # here one division, and sqrt(v) times 1 / sqrt(bias_correction2), as Adam's: the loop is
        # set by its divisions and square root (two fewer: about 1.6x faster in cache), within ulps
        # where torch's v / bias_correction2 is within the dtype's range (past it torch's step is
        # 0 and this one the finite step: a difference the README states)
        denom = root(v) * inverse_correction + eps
        param[i] = p + (grad_coefficient * g + exp_avg_coefficient * m) / denom


cdef inline void nadam_update(const Task* t, const double* options) noexcept nogil:
    cdef const NadamOptions* o = <const NadamOptions*>options
    cdef const NadamStep* s = <const NadamStep*>t.step_scalars
    if t.is_float32:
        nadam_kernel(<float*>t.param, <const float*>t.grad, <float>t.grad_scale,
                     <float*>t.state[0], <float*>t.state[1], t.size, o, s)
    else:
        nadam_kernel(<double*>t.param, <const double*>t.grad, t.grad_scale,
                     <double*>t.state[0], <double*>t.state[1], t.size,
                     o, s)
