# Multi-tensor optimizer steps: one call (Plan.step) updates every param group in place.
#
# Included by one module per SIMD level (_optim_<level>.pyx), so the same
# source is compiled once per instruction set.  The arrays and options are
# checked here by fast tests that send anything unusual (an array to convert,
# an option that is not a plain number) back to the full checks in Python,
# having changed nothing.  A Plan keeps, from construction, the lists a step
# reads.  State that only some options need (AMSGrad's maximum, momentum
# buffers, RMSprop's grad_avg) is created here, as zeros, the first time a step
# needs it, before the step updates anything.  Each step gathers pointers while
# it holds the GIL, then releases the GIL once per param group and runs the
# kernels over its parameters.
# Parameters whose gradient is None are skipped, as torch skips parameters
# without a grad.
cimport cython
cimport numpy as cnp
import numpy as np
from libc.math cimport INFINITY
from libc.stdlib cimport free, malloc

from _kernels cimport ADAM, RMSPROP, SGD, Algorithm, Hyper, Task, algorithm_named, hyper_from, run_task, set_step_scalars

cnp.import_array()


cdef void* allocate(Py_ssize_t count, size_t size) except NULL:
    cdef void* block = malloc(max(count, 1) * size)
    if block == NULL:
        raise MemoryError()
    return block


cdef inline Py_ssize_t size_of(cnp.ndarray array) noexcept:
    """The number of elements (PyArray_SIZE without its function call: this runs per parameter per step)."""
    cdef const cnp.npy_intp* dims = cnp.PyArray_DIMS(array)
    cdef Py_ssize_t size = 1
    cdef int axis
    for axis in range(cnp.PyArray_NDIM(array)):
        size *= dims[axis]
    return size


cdef inline void* state_for(list states, Py_ssize_t i, object param, list created) except? NULL:
    """The data of the state array at states[i]; created as zeros the first time, and then
    (states, i) is appended to `created`."""
    cdef object state = states[i]
    if state is None:
        created.append((states, i))  # first: dropping an entry that is still None is harmless
        state = states[i] = np.zeros_like(param)
    return cnp.PyArray_DATA(<cnp.ndarray>state)


cdef inline void slots_needed(Algorithm code, const Hyper* h, bint* needs) noexcept:
    """Which of the kernels' three state slots (in the order of the optimizer's state_names)
    a param group's options need."""
    needs[0] = code != SGD or h.momentum != 0
    needs[1] = code == ADAM or (code == RMSPROP and h.centered)
    needs[2] = (code == ADAM and h.amsgrad) or (code == RMSPROP and h.momentum > 0)


cdef void drop(list created) except *:
    """Put back None where state_for created an array: (states, i) pairs."""
    for states, i in created:
        states[i] = None


cdef inline bint kernel_ready(object grad, object param):
    """True when grad can be read as it is: an ndarray of param's dtype and shape, aligned,
    C-contiguous, in native byte order."""
    if type(grad) is not cnp.ndarray:
        return False
    cdef cnp.ndarray g = <cnp.ndarray>grad
    cdef cnp.ndarray p = <cnp.ndarray>param
    cdef int axis, ndim = cnp.PyArray_NDIM(p)
    if not (cnp.PyArray_TYPE(g) == cnp.PyArray_TYPE(p) and cnp.PyArray_ISCARRAY_RO(g)
            and cnp.PyArray_ISNOTSWAPPED(g) and cnp.PyArray_NDIM(g) == ndim):
        return False
    for axis in range(ndim):  # a loop, not memcmp: a call per parameter per step costs more than it compares
        if cnp.PyArray_DIMS(g)[axis] != cnp.PyArray_DIMS(p)[axis]:
            return False
    return True


# What Plan.step returns: the step is done, or it changed nothing because an array or an
# option needs the Python layer's full check first.
cdef enum Outcome:
    DONE
    ARRAYS_UNREADY
    OPTIONS_UNCHECKED

STEP_DONE, STEP_ARRAYS_UNREADY, STEP_OPTIONS_UNCHECKED = DONE, ARRAYS_UNREADY, OPTIONS_UNCHECKED


cdef inline void step_scalars(Task* tasks, Algorithm algorithm, const Hyper* h,
                              const cnp.int64_t* step, Py_ssize_t i, Py_ssize_t previous) noexcept nogil:
    """Set parameter i's step scalars; parameters of a group usually share a step count, so
    those of the group's previous parameter with a gradient (-1: none) are reused when they can be."""
    if previous >= 0 and step[i] == step[previous]:
        tasks[i].scalar0 = tasks[previous].scalar0
        tasks[i].scalar1 = tasks[previous].scalar1
    else:
        set_step_scalars(&tasks[i], algorithm, h, step[i])


cdef extern from "_parallel.h":
    ctypedef void (*fastgd_work)(void* context, Py_ssize_t part, Py_ssize_t parts) noexcept nogil
    void run_parallel "fastgd_run_parallel"(fastgd_work work, void* context, Py_ssize_t parts) noexcept nogil


cdef struct Batch:
    const Task* tasks
    Py_ssize_t count
    Algorithm algorithm
    const Hyper* h


cdef void run_part(void* context, Py_ssize_t part, Py_ssize_t parts) noexcept nogil:
    """Run this thread's share of every task: the part-th of `parts` slices of each array
    (tasks of size -1, parameters without a gradient, are skipped)."""
    cdef Batch* batch = <Batch*>context
    cdef Task piece
    cdef Py_ssize_t k, start, stop, itemsize
    cdef Py_ssize_t align = 16  # elements: keep slices on cache-line boundaries
    for k in range(batch.count):
        piece = batch.tasks[k]
        if piece.size < 0:
            continue
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
            if tasks[k].size >= 0:
                run_task(&tasks[k], algorithm, h)


cdef extern from "Python.h":
    double PyFloat_AS_DOUBLE(object value)
    long long PyLong_AsLongLongAndOverflow(object value, int* overflow) except? -1


cdef inline bint plain_number_in(object value, double low, double high) except -1:
    """value is a float, or an int of at most 53 bits, with low <= value < high
    (False for NaN, bools, NumPy scalars and everything else)."""
    cdef double x
    cdef long long whole
    cdef int overflow = 0
    if type(value) is float:
        x = PyFloat_AS_DOUBLE(value)
    elif type(value) is int:
        whole = PyLong_AsLongLongAndOverflow(value, &overflow)
        if overflow or not -(1LL << 53) <= whole <= (1LL << 53):
            return False
        x = <double>whole
    else:
        return False
    return low <= x < high


cdef inline bint group_valid(dict options, tuple nonnegative, tuple unit_interval, tuple unit_pairs, tuple flags,
                             bint nesterov_rule) except -1:
    cdef object value
    for name in nonnegative:
        if not plain_number_in(options.get(name), 0, INFINITY):
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
    # SGD: Nesterov momentum needs a momentum > 0 and no dampening
    return not (nesterov_rule and options["nesterov"] is True
                and not (<double>options["momentum"] > 0 and <double>options["dampening"] == 0))


@cython.final
@cython.auto_pickle(False)
cdef class Plan:
    """What every step of one optimizer reads, gathered once: its parameters, state
    lists, step counts, the slices of its param groups, and how to check options.

    The optimizer builds a new plan whenever it replaces one of these (a new
    param group, load_state_dict) and retires the old one; the lists are shared,
    so a state array the kernels create is the optimizer's too."""
    cdef Algorithm code
    cdef bint decoupled, nesterov_rule, retired
    cdef list params, slices, auto_threads, states0, states1, states2
    cdef cnp.ndarray steps
    cdef tuple nonnegative, unit_interval, unit_pairs, flags

    def __init__(self, str algorithm, list params, dict state, tuple state_names, cnp.ndarray steps not None,
                 list slices, list auto_threads, bint decoupled, tuple checks):
        """state maps each of state_names (one to three, in the order of the kernels'
        state slots) to its list of arrays, one per parameter (None until needed).
        checks: the option names (nonnegative, unit_interval, unit_pairs, flags)
        and whether SGD's Nesterov rule applies, for the fast check of options."""
        self.code = algorithm_named(algorithm)
        self.decoupled = decoupled
        self.params, self.slices, self.auto_threads = params, slices, auto_threads
        self.states0 = state[state_names[0]]
        self.states1 = state[state_names[1]] if len(state_names) > 1 else None
        self.states2 = state[state_names[2]] if len(state_names) > 2 else None
        self.steps = steps
        self.nonnegative, self.unit_interval, self.unit_pairs, self.flags, self.nesterov_rule = checks

    def step(self, list groups, list grads, int n_threads, bint checked=False):
        """Update every group's parameters (group g: params[start:stop] with the options
        groups[g], for (start, stop) = slices[g]) on n_threads threads (0: auto_threads[g]);
        parameters whose gradient is None are skipped.  Returns STEP_DONE, or, having
        changed nothing: STEP_ARRAYS_UNREADY when a parameter or gradient is not an array
        the kernels can read as it is (the caller checks and converts them, then calls
        again); unless `checked`, STEP_OPTIONS_UNCHECKED when an option is not a plain
        number in range or a plain bool (the caller checks them in full, then calls again
        with checked=True)."""
        cdef Py_ssize_t g, start, stop, n_groups = len(groups)
        cdef int threads
        if self.retired:
            raise ValueError("this plan is out of date: the optimizer has built a new one")
        if len(grads) != len(self.params) or cnp.PyArray_SIZE(self.steps) != len(self.params):
            raise ValueError(
                f"step() got {len(grads)} gradients for {len(self.params)} parameters (or the optimizer "
                "was changed without a new plan)")
        grads = list(grads)  # ours: another thread cannot free a gradient while the kernels read it
        if n_groups != len(self.slices):
            raise ValueError(
                f"param_groups holds {n_groups} groups, but the optimizer has parameters for "
                f"{len(self.slices)}; add a group with add_param_group()")
        cdef Task* tasks = <Task*>allocate(len(self.params), sizeof(Task))
        cdef Hyper few[4]
        cdef Hyper* hypers = NULL
        try:
            if not self.arrays_ready(tasks, grads):
                return ARRAYS_UNREADY
            if not checked:
                for g in range(n_groups):
                    if not group_valid(<dict?>groups[g], self.nonnegative, self.unit_interval,
                                       self.unit_pairs, self.flags, self.nesterov_rule):
                        return OPTIONS_UNCHECKED
            hypers = &few[0] if n_groups <= 4 else <Hyper*>allocate(n_groups, sizeof(Hyper))
            self.prepare(tasks, groups, n_groups, hypers)
            for g in range(n_groups):  # nothing from here on can fail
                start, stop = self.slices[g]
                threads = n_threads or self.auto_threads[g]
                with nogil:
                    run_all(tasks + start, stop - start, self.code, &hypers[g], threads)
        finally:
            free(tasks)
            if hypers != &few[0]:
                free(hypers)
        return DONE

    cdef bint arrays_ready(self, Task* tasks, list grads) except -1:
        """Whether every parameter is a writable, aligned C-contiguous array and every gradient
        None or an ndarray of its parameter's dtype and shape, aligned, C-contiguous and in
        native byte order (kernel_ready); meanwhile tasks[i] gets
        parameter i's pointers, size and dtype (size -1 for a None gradient).  One pass over
        the arrays: with many small parameters, reaching each array object is what costs."""
        cdef Py_ssize_t i
        cdef object param, grad
        cdef Task* t
        for i in range(len(self.params)):
            param = self.params[i]
            grad = grads[i]
            if not cnp.PyArray_ISCARRAY(<cnp.ndarray>param) or not (grad is None or kernel_ready(grad, param)):
                return False
            t = &tasks[i]
            if grad is None:
                t.size = -1  # skipped
                continue
            t.param = cnp.PyArray_DATA(<cnp.ndarray>param)
            t.grad = cnp.PyArray_DATA(<cnp.ndarray>grad)
            t.size = size_of(<cnp.ndarray>param)
            t.is_float32 = cnp.PyArray_TYPE(<cnp.ndarray>param) == cnp.NPY_FLOAT
        return True

    def retire(self):
        """Mark this plan out of date (the optimizer has built a new one): a step running on it
        fails, changing nothing, and no step can start on it."""
        self.retired = True

    cdef int prepare(self, Task* tasks, list groups, Py_ssize_t n_groups, Hyper* hypers) except -1:
        """Read the options of groups[:n_groups] into hypers, and finish every task (filled by
        arrays_ready): its state pointers, and its step count (counted here) and scalars.  The
        state arrays the options need and the optimizer lacks are created here, as zeros.  All
        or nothing: if one cannot be created, or creating it ran code that made the optimizer
        build a new plan, the counts are put back and those arrays dropped again."""
        cdef cnp.int64_t* counts = <cnp.int64_t*>cnp.PyArray_DATA(self.steps)
        cdef Py_ssize_t g, i, start, stop, previous, done = 0  # parameters 0 .. done-1 are prepared
        cdef bint needs[3]
        cdef list created = []
        cdef Hyper* h
        cdef Task* t
        try:
            for g in range(n_groups):
                hypers[g] = hyper_from(<dict>groups[g], self.code, self.decoupled)
                h = &hypers[g]
                slots_needed(self.code, h, needs)
                start, stop = self.slices[g]
                previous = -1
                for i in range(start, stop):
                    t = &tasks[i]
                    if t.size >= 0:
                        self.fill_states(t, i, needs, created)
                        if self.code != SGD:
                            counts[i] += 1
                            if self.code != RMSPROP:
                                step_scalars(tasks, self.code, h, counts, i, previous)
                            previous = i
                    done = i + 1
            if self.retired:  # np.zeros_like can run Python code: a hook, another thread
                raise RuntimeError("the optimizer changed (add_param_group, load_state_dict) while "
                                   "a step was creating its state; the step changed nothing")
        except BaseException:
            for i in range(done):
                if tasks[i].size >= 0 and self.code != SGD:
                    counts[i] -= 1
            drop(created)
            raise
        return 0

    cdef int fill_states(self, Task* t, Py_ssize_t i, const bint* needs, list created) except -1:
        """Task t's state pointers for parameter i: the arrays of the slots the options need
        (created as zeros where missing, and recorded in `created`), NULL for the others; and,
        for SGD, whether this is its first momentum step (scalar0: the buffer starts as the gradient)."""
        cdef object param = self.params[i]
        t.scalar0 = self.code == SGD and needs[0] and self.states0[i] is None
        t.state0 = state_for(self.states0, i, param, created) if needs[0] else NULL
        t.state1 = state_for(self.states1, i, param, created) if needs[1] else NULL
        t.state2 = state_for(self.states2, i, param, created) if needs[2] else NULL
        return 0

    def kernel_states(self, Py_ssize_t i, dict group):
        """Parameter i's arrays for the kernels' three state slots under `group`'s options (None
        where not needed; created as a step creates them), and whether its next update is
        SGD's first momentum step: for the regression epoch, which runs the kernels itself."""
        cdef Hyper h = hyper_from(group, self.code, self.decoupled)
        cdef bint needs[3]
        cdef Task t
        cdef list created = []
        slots_needed(self.code, &h, needs)
        try:
            self.fill_states(&t, i, needs, created)
        except BaseException:
            drop(created)
            raise
        slots = (self.states0, self.states1, self.states2)
        return [slots[k][i] if needs[k] else None for k in range(3)], bool(t.scalar0)
