# Fused, one-pass update kernels shared by every compiled module of fastgd.
#
# Each kernel reads the parameter, its gradient and its state once and writes
# the parameter and the state once, on contiguous memory, without the GIL.
# The order of floating-point operations is torch.optim's single-tensor code
# path, so that results agree with torch to rounding.  Derived scalars
# (1 - beta, -lr / bias_correction, ...) are computed in double and rounded to
# the array's dtype, as torch rounds Python scalars to the tensor's dtype.
#
# Options that only select a value (maximize, nesterov, weight decay, the first
# momentum step) are written as selects between values computed either way,
# which the compiler turns into vector blends (given -fno-trapping-math).  Options
# that decide which arrays are read and written (momentum, amsgrad, centered)
# are passed as literal constants by run_task, so each inlined copy of a loop
# has no branch in it.
from cython cimport floating
from libc.math cimport pow, sqrt, sqrtf
from libc.string cimport memset

cdef enum Algorithm:
    SGD
    ADAM
    RMSPROP
    ADAGRAD


cdef struct Hyper:
    # one param group's options, as torch.optim names them
    double lr
    double momentum
    double dampening
    double weight_decay
    double beta1
    double beta2
    double eps
    double alpha
    double lr_decay
    bint nesterov
    bint maximize
    bint amsgrad
    bint decoupled
    bint centered


cdef struct Task:
    # one parameter's update: its arrays, and the scalars that depend on its step count
    void* param
    const void* grad
    void* state0
    void* state1
    void* state2
    Py_ssize_t size
    bint is_float32
    double scalar0
    double scalar1


cdef inline floating root(floating x) noexcept nogil:
    if floating is float:
        return sqrtf(x)
    else:
        return sqrt(x)


cdef inline floating lerp(floating start, floating end, floating weight, bint low_weight) noexcept nogil:
    # ATen's lerp: two formulas, chosen by the weight, for accuracy near 1.
    return start + weight * (end - start) if low_weight else end - (end - start) * (1 - weight)


cdef inline floating nan_max(floating a, floating b) noexcept nogil:
    # torch.maximum propagates NaN from either side.
    return b if (b > a or b != b) else a


cdef inline void sgd_kernel(
    floating* param, const floating* grad, floating* momentum_buffer, Py_ssize_t n,
    const Hyper* h, bint first_step, bint has_momentum,
) noexcept nogil:
    cdef floating neg_lr = -h.lr, weight_decay = h.weight_decay, momentum = h.momentum
    cdef floating one_minus_dampening = 1 - h.dampening
    cdef bint maximize = h.maximize, nesterov = h.nesterov, decay = h.weight_decay != 0
    cdef Py_ssize_t i
    cdef floating g, p, buf, decayed, look_ahead
    for i in range(n):
        p = param[i]
        g = grad[i]
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


cdef inline void adam_kernel(
    floating* param, const floating* grad, floating* exp_avg, floating* exp_avg_sq,
    floating* max_exp_avg_sq, Py_ssize_t n,
    const Hyper* h, double neg_step_size, double bias_correction2_sqrt, bint amsgrad,
) noexcept nogil:
    cdef floating weight_decay = h.weight_decay, decay_factor = 1 - h.lr * h.weight_decay
    cdef floating one_minus_beta1 = 1 - h.beta1, beta2 = h.beta2, one_minus_beta2 = 1 - h.beta2
    cdef floating eps = h.eps, step = neg_step_size, inverse_correction = 1 / bias_correction2_sqrt
    cdef bint low_weight = 1 - h.beta1 < 0.5, maximize = h.maximize
    cdef bint coupled_decay = h.weight_decay != 0 and not h.decoupled
    cdef bint decoupled_decay = h.weight_decay != 0 and h.decoupled
    cdef Py_ssize_t i
    cdef floating g, p, m, v, decayed, shrunk
    for i in range(n):
        p = param[i]
        g = grad[i]
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
        param[i] = p + step * (m / (root(v) * inverse_correction + eps))


cdef inline void rmsprop_kernel(
    floating* param, const floating* grad, floating* square_avg, floating* grad_avg,
    floating* momentum_buffer, Py_ssize_t n,
    const Hyper* h, bint centered, bint has_momentum,
) noexcept nogil:
    cdef floating neg_lr = -h.lr, weight_decay = h.weight_decay, alpha = h.alpha
    cdef floating one_minus_alpha = 1 - h.alpha, eps = h.eps, momentum = h.momentum
    cdef bint low_weight = 1 - h.alpha < 0.5, maximize = h.maximize, decay = h.weight_decay != 0
    cdef Py_ssize_t i
    cdef floating g, p, s, a, avg, buf, decayed
    for i in range(n):
        p = param[i]
        g = grad[i]
        g = -g if maximize else g
        decayed = g + weight_decay * p
        g = decayed if decay else g
        s = square_avg[i] * alpha + one_minus_alpha * g * g
        square_avg[i] = s
        if centered:
            a = lerp(grad_avg[i], g, one_minus_alpha, low_weight)
            grad_avg[i] = a
            s = s + (-a) * a
        avg = root(s) + eps
        if has_momentum:
            buf = momentum_buffer[i] * momentum + g / avg
            momentum_buffer[i] = buf
            param[i] = p + neg_lr * buf
        else:
            param[i] = p + neg_lr * (g / avg)


cdef inline void adagrad_kernel(
    floating* param, const floating* grad, floating* state_sum, Py_ssize_t n,
    const Hyper* h, double neg_clr,
) noexcept nogil:
    cdef floating weight_decay = h.weight_decay, eps = h.eps, step = neg_clr
    cdef bint maximize = h.maximize, decay = h.weight_decay != 0
    cdef Py_ssize_t i
    cdef floating g, p, s, decayed
    for i in range(n):
        p = param[i]
        g = grad[i]
        g = -g if maximize else g
        decayed = g + weight_decay * p
        g = decayed if decay else g
        s = state_sum[i] + g * g
        state_sum[i] = s
        param[i] = p + step * (g / (root(s) + eps))


cdef inline void run_typed(floating* param, const Task* t, Algorithm algorithm, const Hyper* h) noexcept nogil:
    cdef const floating* grad = <const floating*>t.grad
    cdef floating* s0 = <floating*>t.state0
    cdef floating* s1 = <floating*>t.state1
    cdef floating* s2 = <floating*>t.state2
    if algorithm == SGD:
        if h.momentum != 0:
            sgd_kernel(param, grad, s0, t.size, h, t.scalar0 != 0, True)
        else:
            sgd_kernel(param, grad, s0, t.size, h, False, False)
    elif algorithm == ADAM:
        if h.amsgrad:
            adam_kernel(param, grad, s0, s1, s2, t.size, h, t.scalar0, t.scalar1, True)
        else:
            adam_kernel(param, grad, s0, s1, s2, t.size, h, t.scalar0, t.scalar1, False)
    elif algorithm == RMSPROP:
        if h.centered and h.momentum > 0:
            rmsprop_kernel(param, grad, s0, s1, s2, t.size, h, True, True)
        elif h.centered:
            rmsprop_kernel(param, grad, s0, s1, s2, t.size, h, True, False)
        elif h.momentum > 0:
            rmsprop_kernel(param, grad, s0, s1, s2, t.size, h, False, True)
        else:
            rmsprop_kernel(param, grad, s0, s1, s2, t.size, h, False, False)
    else:
        adagrad_kernel(param, grad, s0, t.size, h, t.scalar0)


cdef inline void run_task(const Task* t, Algorithm algorithm, const Hyper* h) noexcept nogil:
    """Update one parameter in place, in its own dtype."""
    if t.is_float32:
        run_typed(<float*>t.param, t, algorithm, h)
    else:
        run_typed(<double*>t.param, t, algorithm, h)


cdef inline void set_step_scalars(Task* t, Algorithm algorithm, const Hyper* h, long long step) noexcept nogil:
    """The scalars of Adam's and Adagrad's update at a step (counted from 1), as torch derives them."""
    if algorithm == ADAM:
        t.scalar0 = -(h.lr / (1 - pow(h.beta1, <double>step)))
        t.scalar1 = pow(1 - pow(h.beta2, <double>step), 0.5)
    elif algorithm == ADAGRAD:
        t.scalar0 = -(h.lr / (1 + (step - 1) * h.lr_decay))


cdef inline Algorithm algorithm_named(str name) except *:
    """The kernel an optimizer class names by its _algorithm ("sgd", "adam", "rmsprop", "adagrad")."""
    if name == "sgd":
        return SGD
    if name == "adam":
        return ADAM
    if name == "rmsprop":
        return RMSPROP
    if name == "adagrad":
        return ADAGRAD
    raise ValueError(f"no kernel is named {name!r}; expected 'sgd', 'adam', 'rmsprop' or 'adagrad'")


cdef inline Hyper hyper_from(dict options, Algorithm algorithm, bint decoupled) except *:
    """A param group's options (torch.optim's names) as a Hyper: those the algorithm reads; the rest are 0."""
    cdef Hyper h
    memset(&h, 0, sizeof(Hyper))
    h.lr = options["lr"]
    h.weight_decay = options["weight_decay"]
    h.maximize = options["maximize"]
    h.decoupled = decoupled
    if algorithm == SGD:
        h.momentum = options["momentum"]
        h.dampening = options["dampening"]
        h.nesterov = options["nesterov"]
        return h
    h.eps = options["eps"]
    if algorithm == ADAM:
        h.beta1, h.beta2 = options["betas"]
        h.amsgrad = options["amsgrad"]
    elif algorithm == RMSPROP:
        h.alpha = options["alpha"]
        h.momentum = options["momentum"]
        h.centered = options["centered"]
    else:
        h.lr_decay = options["lr_decay"]
    return h
