# Multi-tensor optimizer steps: one call updates params[start:stop] in place.
#
# Included by one module per SIMD level (_optim_<level>.pyx), so the same
# source is compiled once per instruction set.  The Python layer has checked
# every array and hyperparameter before it calls in here.  State that only
# some options need (AMSGrad's maximum, momentum buffers, RMSprop's grad_avg)
# is created here, as zeros, the first time a step needs it.  Each step gathers
# pointers while it holds the GIL, then releases the GIL once and runs the
# kernels over every parameter.  Parameters whose gradient is None are skipped,
# as torch skips parameters without a grad.
cimport numpy as cnp
import numpy as np
from libc.stdlib cimport free, malloc
from libc.string cimport memcmp

from _kernels cimport ADAGRAD, ADAM, RMSPROP, SGD, Algorithm, Hyper, Task, hyper_from, run_task, set_step_scalars

cnp.import_array()


cdef inline void* data(object array):
    return NULL if array is None else cnp.PyArray_DATA(<cnp.ndarray>array)


cdef Task* new_tasks(Py_ssize_t count) except NULL:
    cdef Task* tasks = <Task*>malloc(max(count, 1) * sizeof(Task))
    if tasks == NULL:
        raise MemoryError()
    return tasks


cdef inline void fill(Task* task, object param, object grad, object state0, object state1, object state2):
    task.param = data(param)
    task.grad = data(grad)
    task.state0 = data(state0)
    task.state1 = data(state1)
    task.state2 = data(state2)
    task.size = cnp.PyArray_SIZE(<cnp.ndarray>param)
    task.is_float32 = cnp.PyArray_TYPE(<cnp.ndarray>param) == cnp.NPY_FLOAT


cdef inline object state_for(list states, Py_ssize_t i, object param, bint needed):
    """The state array at states[i] if the options need it (created as zeros the first time), else None."""
    if not needed:
        return None
    if states[i] is None:
        states[i] = np.zeros_like(param)
    return states[i]


cdef inline bint kernel_ready(object grad, object param):
    """True when grad can be read as it is: an ndarray of param's dtype and shape, C-contiguous."""
    if type(grad) is not cnp.ndarray:
        return False
    cdef cnp.ndarray g = <cnp.ndarray>grad
    cdef cnp.ndarray p = <cnp.ndarray>param
    cdef int ndim = cnp.PyArray_NDIM(p)
    return (
        cnp.PyArray_TYPE(g) == cnp.PyArray_TYPE(p)
        and cnp.PyArray_ISCARRAY_RO(g)
        and cnp.PyArray_ISNOTSWAPPED(g)
        and cnp.PyArray_NDIM(g) == ndim
        and memcmp(cnp.PyArray_DIMS(g), cnp.PyArray_DIMS(p), ndim * sizeof(cnp.npy_intp)) == 0
    )


def first_unready(list params, list grads):
    """Index of the first parameter that is not writable and C-contiguous, or whose
    gradient is neither None nor ready for the kernels; -1 when all are ready."""
    cdef Py_ssize_t i
    for i in range(len(params)):
        if not cnp.PyArray_ISCARRAY(<cnp.ndarray>params[i]):
            return i
        grad = grads[i]
        if grad is not None and not kernel_ready(grad, params[i]):
            return i
    return -1


cdef inline void step_scalars(Task* tasks, Py_ssize_t k, Algorithm algorithm, const Hyper* h,
                              const cnp.int64_t* step, Py_ssize_t i, Py_ssize_t previous) noexcept nogil:
    """Set task k's step scalars for parameter i; parameters of a group usually share a step
    count, so those of the previous task (parameter `previous`) are reused when they can be."""
    if k > 0 and step[i] == step[previous]:
        tasks[k].scalar0 = tasks[k - 1].scalar0
        tasks[k].scalar1 = tasks[k - 1].scalar1
    else:
        set_step_scalars(&tasks[k], algorithm, h, step[i])


cdef extern from "_parallel.h":
    ctypedef void (*fastgd_work)(void* context, Py_ssize_t part, Py_ssize_t parts) noexcept nogil
    void run_parallel "fastgd_run_parallel"(fastgd_work work, void* context, Py_ssize_t parts) noexcept nogil


cdef struct Batch:
    const Task* tasks
    Py_ssize_t count
    Algorithm algorithm
    const Hyper* h


cdef void run_part(void* context, Py_ssize_t part, Py_ssize_t parts) noexcept nogil:
    """Run this thread's share of every task: the part-th of `parts` slices of each array."""
    cdef Batch* batch = <Batch*>context
    cdef Task piece
    cdef Py_ssize_t k, start, stop, itemsize
    cdef Py_ssize_t align = 16  # elements: keep slices on cache-line boundaries
    for k in range(batch.count):
        piece = batch.tasks[k]
        start = (piece.size * part // parts) // align * align
        stop = piece.size if part == parts - 1 else (piece.size * (part + 1) // parts) // align * align
        if stop <= start:
            continue
        itemsize = 4 if piece.is_float32 else 8
        piece.param = <char*>piece.param + start * itemsize
        piece.grad = <const char*>piece.grad + start * itemsize
        piece.state0 = NULL if piece.state0 == NULL else <char*>piece.state0 + start * itemsize
        piece.state1 = NULL if piece.state1 == NULL else <char*>piece.state1 + start * itemsize
        piece.state2 = NULL if piece.state2 == NULL else <char*>piece.state2 + start * itemsize
        piece.size = stop - start
        run_task(&piece, batch.algorithm, batch.h)


cdef void run_all(const Task* tasks, Py_ssize_t count, Algorithm algorithm, const Hyper* h,
                  int n_threads) noexcept nogil:
    cdef Batch batch = Batch(tasks=tasks, count=count, algorithm=algorithm, h=h)
    cdef Py_ssize_t k
    if n_threads > 1:
        run_parallel(run_part, &batch, n_threads)
    else:
        for k in range(count):
            run_task(&tasks[k], algorithm, h)


def sgd(list params, list grads, list momentum_buffers, Py_ssize_t start, Py_ssize_t stop, dict group,
        int n_threads=1):
    cdef Hyper h = hyper_from(group, False)
    cdef Task* tasks = new_tasks(stop - start)
    cdef Task* t
    cdef Py_ssize_t i, count = 0
    try:
        for i in range(start, stop):
            if grads[i] is None:
                continue
            t = &tasks[count]
            count += 1
            # scalar0 is 1 on the first momentum step: the buffer starts as the gradient
            t.scalar0 = h.momentum != 0 and momentum_buffers[i] is None
            fill(t, params[i], grads[i], state_for(momentum_buffers, i, params[i], h.momentum != 0), None, None)
        with nogil:
            run_all(tasks, count, SGD, &h, n_threads)
    finally:
        free(tasks)


def adam(list params, list grads, list exp_avgs, list exp_avg_sqs, list max_exp_avg_sqs,
         cnp.ndarray steps not None, Py_ssize_t start, Py_ssize_t stop, dict group, bint decoupled,
         int n_threads=1):
    cdef Hyper h = hyper_from(group, decoupled)
    cdef cnp.int64_t* step = <cnp.int64_t*>cnp.PyArray_DATA(steps)
    cdef Task* tasks = new_tasks(stop - start)
    cdef Task* t
    cdef Py_ssize_t i, count = 0, previous = 0
    try:
        for i in range(start, stop):
            if grads[i] is None:
                continue
            t = &tasks[count]
            count += 1
            fill(t, params[i], grads[i], state_for(exp_avgs, i, params[i], True),
                 state_for(exp_avg_sqs, i, params[i], True), state_for(max_exp_avg_sqs, i, params[i], h.amsgrad))
            step[i] += 1
            step_scalars(tasks, count - 1, ADAM, &h, step, i, previous)
            previous = i
        with nogil:
            run_all(tasks, count, ADAM, &h, n_threads)
    finally:
        free(tasks)


def rmsprop(list params, list grads, list square_avgs, list grad_avgs, list momentum_buffers,
            cnp.ndarray steps not None, Py_ssize_t start, Py_ssize_t stop, dict group,
        int n_threads=1):
    cdef Hyper h = hyper_from(group, False)
    cdef cnp.int64_t* step = <cnp.int64_t*>cnp.PyArray_DATA(steps)
    cdef Task* tasks = new_tasks(stop - start)
    cdef Task* t
    cdef Py_ssize_t i, count = 0
    try:
        for i in range(start, stop):
            if grads[i] is None:
                continue
            t = &tasks[count]
            count += 1
            fill(t, params[i], grads[i], state_for(square_avgs, i, params[i], True),
                 state_for(grad_avgs, i, params[i], h.centered),
                 state_for(momentum_buffers, i, params[i], h.momentum > 0))
            step[i] += 1
        with nogil:
            run_all(tasks, count, RMSPROP, &h, n_threads)
    finally:
        free(tasks)


def adagrad(list params, list grads, list state_sums, cnp.ndarray steps not None, Py_ssize_t start, Py_ssize_t stop,
            dict group, int n_threads=1):
    cdef Hyper h = hyper_from(group, False)
    cdef cnp.int64_t* step = <cnp.int64_t*>cnp.PyArray_DATA(steps)
    cdef Task* tasks = new_tasks(stop - start)
    cdef Task* t
    cdef Py_ssize_t i, count = 0, previous = 0
    try:
        for i in range(start, stop):
            if grads[i] is None:
                continue
            t = &tasks[count]
            count += 1
            fill(t, params[i], grads[i], state_sums[i], None, None)
            step[i] += 1
            step_scalars(tasks, count - 1, ADAGRAD, &h, step, i, previous)
            previous = i
        with nogil:
            run_all(tasks, count, ADAGRAD, &h, n_threads)
    finally:
        free(tasks)


cdef inline bint plain_number_in(object value, double low, double high):
    """value is a float or int with low <= value < high (False for NaN and everything else)."""
    cdef double x
    if type(value) is float:
        x = value
    elif type(value) is int and -2**53 <= value <= 2**53:
        x = value
    else:
        return False
    return low <= x < high


def options_valid(dict options, tuple nonnegative, tuple unit_interval, tuple unit_pairs, tuple flags):
    """True when the named options are plain numbers in range and plain bools.

    The fast check of a step; False sends the caller to the full check in
    Python, which accepts every valid value and explains every invalid one."""
    cdef double inf = float("inf")
    for name in nonnegative:
        if not plain_number_in(options.get(name), 0, inf):
            return False
    for name in unit_interval:
        if not plain_number_in(options.get(name), 0, 1):
            return False
    for name in unit_pairs:
        value = options.get(name)
        if type(value) is not tuple or len(<tuple>value) != 2 or not (
                plain_number_in((<tuple>value)[0], 0, 1) and plain_number_in((<tuple>value)[1], 0, 1)):
            return False
    for name in flags:
        value = options.get(name)
        if value is not True and value is not False:
            return False
    return True
