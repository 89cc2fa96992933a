# The compiled step of the optimizers: a Plan updates every param group in place in one call.
#
# Included by one module per SIMD level (_engine_<level>.pyx), so the same
# source is compiled once per instruction set.  An optimizer's description
# (fastgd/optim.py) says what its algorithm's options are, their ranges, which
# state arrays it keeps and when each is needed, and whether it counts steps;
# a Plan is built from it and from the optimizer's arrays, and a step:
#
#   1. checks, changing nothing, that everything is as the plan knows it and
#      ready for the kernels: the groups' parameters, the gradients, the
#      options, the next step's scalars (finite, and within float32's range for
#      float32 parameters), the state arrays.  Anything else is handed back to the Python
#      layer as an Outcome (it checks in full and raises, converts, creates the
#      missing state that Plan.missing lists, or builds a new plan) before it
#      calls again.  Which state the options need is decided here alone;
#   2. counts the steps, sets the step scalars and runs the kernels without the
#      GIL: nothing in this part can fail, and nothing is allocated.
#
# The regression epoch (_regression.pxi) does 1 once and 2 once per batch, but for plain SGD
# (Objective.plain_sgd), whose steps it takes itself.
# Parameters whose gradient is None are skipped, as torch skips parameters
# without a grad.  The Python layer lets one step of an optimizer run at a time.
cimport cython
cimport numpy as cnp
from cython cimport floating
import numpy as np
from libc.float cimport FLT_MAX
from libc.math cimport fabs, isfinite
from libc.stdlib cimport calloc, free, qsort
from libc.string cimport memcmp, memcpy, memset

from cpython.dict cimport PyDict_GetItem
from cpython.list cimport PyList_GET_ITEM
from cpython.ref cimport PyObject

from _kernels cimport (
    MAX_OPTION_FIELDS, MAX_STATES, MAX_STEP_SCALARS, Kernel, Task, update_fn,
    adagrad_interface, adagrad_step_scalars, adagrad_update, adam_interface, adam_step_scalars, adam_update,
    adamax_interface, adamax_step_scalars, adamax_update, adadelta_interface, adadelta_update,
    lion_interface, lion_step_scalars, lion_update, radam_interface, radam_step_scalars, radam_update,
    nadam_interface, nadam_step_scalars, nadam_update,
    rmsprop_interface, rmsprop_update, sgd_interface, sgd_update,
)

cnp.import_array()


cdef tuple kernel_named(str name, Kernel* kernel):
    """The engine's list of algorithms: set *kernel to the named one's update and step
    scalars, and return its interface (the option fields it reads, its state names and its
    scalar state's names in order, the size of its step scalars: see _kernels.pxd).
    A name not listed here is refused."""
    if name == "sgd":
        kernel[0] = Kernel(update=sgd_update, step_scalars=NULL)
        return sgd_interface()
    if name == "adam":
        kernel[0] = Kernel(update=adam_update, step_scalars=adam_step_scalars)
        return adam_interface()
    if name == "rmsprop":
        kernel[0] = Kernel(update=rmsprop_update, step_scalars=NULL)
        return rmsprop_interface()
    if name == "adagrad":
        kernel[0] = Kernel(update=adagrad_update, step_scalars=adagrad_step_scalars)
        return adagrad_interface()
    if name == "adamax":
        kernel[0] = Kernel(update=adamax_update, step_scalars=adamax_step_scalars)
        return adamax_interface()
    if name == "adadelta":
        kernel[0] = Kernel(update=adadelta_update, step_scalars=NULL)
        return adadelta_interface()
    if name == "lion":
        kernel[0] = Kernel(update=lion_update, step_scalars=lion_step_scalars)
        return lion_interface()
    if name == "radam":
        kernel[0] = Kernel(update=radam_update, step_scalars=radam_step_scalars)
        return radam_interface()
    if name == "nadam":
        kernel[0] = Kernel(update=nadam_update, step_scalars=nadam_step_scalars)
        return nadam_interface()
    raise ValueError(f"the compiled engine has no kernel named {name!r}")


def kernel_interface(str name):
    """(option fields, state names, scalar state names, bytes of step scalars) of the named
    kernel, the names in the order it reads them."""
    cdef Kernel kernel
    return kernel_named(name, &kernel)


cdef extern from "_parallel.h":
    ctypedef void (*fastgd_work)(void* context, Py_ssize_t part, Py_ssize_t parts) noexcept nogil
    void run_parallel "fastgd_run_parallel"(fastgd_work work, void* context, Py_ssize_t parts) noexcept nogil
    int FASTGD_MAX_THREADS

#: the most threads a step runs on
MAX_THREADS = FASTGD_MAX_THREADS


# What a step returns: it is done, or it changed nothing because the Python layer has to act first.
cpdef enum Outcome:
    DONE
    PARAMS_CHANGED      # a group's "params" differ from the plan's: build a new plan
    ARRAYS_UNREADY      # a parameter or gradient needs the full check (and maybe a conversion)
    OPTIONS_UNCHECKED   # an option needs the full check
    STATE_MISMATCH      # a state array no longer matches its parameter (resized or retyped in place)
    STATE_MISSING       # the options need state that a parameter lacks: create it
    STEP_OVERFLOWS      # a parameter's step scalars overflow (Plan.overflow): refuse


# Kinds of option, as the description names them: one number, a pair of numbers, a flag.
cdef enum OptionKind:
    NUMBER
    PAIR
    FLAG

KINDS = {"number": NUMBER, "pair": PAIR, "flag": FLAG}


cdef extern from "Python.h":
    double PyFloat_AS_DOUBLE(object value)
    long long PyLong_AsLongLongAndOverflow(object value, int* overflow) except? -1


cdef inline bint plain_number_in(object value, double low, double high, double* out) except -1:
    """value is a float, or an int of at most 53 bits, with low <= value < high; stored in *out
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
    out[0] = x
    return low <= x < high


cdef object NOT_READ = object()  # what remembers no option value (None is a value a user can set)


cdef inline bint immutable(object value):
    """Whether a checked option value can be remembered by identity (it cannot change in place)."""
    return type(value) in (float, int, bool, tuple) or isinstance(value, np.generic)


cdef inline Py_ssize_t size_of(cnp.ndarray array) noexcept:
    """The number of elements (PyArray_SIZE without its function call: this runs per parameter per step)."""
    cdef const cnp.npy_intp* dims = cnp.PyArray_DIMS(array)
    cdef Py_ssize_t size = 1
    cdef int axis
    for axis in range(cnp.PyArray_NDIM(array)):
        size *= dims[axis]
    return size


cdef inline bint kernel_ready(object grad, cnp.ndarray param, int dtype):
    """True when grad can be read as it is: an ndarray (not a subclass) of param's dtype and
    shape, aligned, C-contiguous, in native byte order."""
    if type(grad) is not cnp.ndarray:
        return False
    cdef cnp.ndarray g = <cnp.ndarray>grad
    cdef int axis, ndim = cnp.PyArray_NDIM(param)
    if not (cnp.PyArray_TYPE(g) == dtype and cnp.PyArray_ISCARRAY_RO(g)
            and cnp.PyArray_ISNOTSWAPPED(g) and cnp.PyArray_NDIM(g) == ndim):
        return False
    for axis in range(ndim):  # a loop, not memcmp: a call per parameter per step costs more than it compares
        if cnp.PyArray_DIMS(g)[axis] != cnp.PyArray_DIMS(param)[axis]:
            return False
    return True


cdef struct Block:
    const char* start
    const char* end


cdef int by_start(const void* a, const void* b) noexcept nogil:
    cdef const char* x = (<const Block*>a).start
    cdef const char* y = (<const Block*>b).start
    return -1 if x < y else (1 if x > y else 0)


cdef bint any_block_meets(const Block* blocks, Py_ssize_t n, const char* start, const char* end) noexcept nogil:
    """Whether [start, end) shares memory with one of n blocks sorted by start and apart from one
    another (so sorted by end too): the first that ends after start begins before end."""
    cdef Py_ssize_t low = 0, high = n, middle
    while low < high:
        middle = (low + high) // 2
        if blocks[middle].end <= start:
            low = middle + 1
        else:
            high = middle
    return low < n and blocks[low].start < end


cdef inline Task task_slice(const Task* t, Py_ssize_t start, Py_ssize_t stop) noexcept nogil:
    """Elements [start, stop) of a task: its arrays offset, the rest (step scalars, flags) as they are."""
    cdef Task piece = t[0]
    cdef Py_ssize_t s, offset = bytes_of(start, t.is_float32)
    piece.param = <char*>piece.param + offset
    piece.grad = <const char*>piece.grad + offset
    for s in range(MAX_STATES):
        if piece.state[s] != NULL:
            piece.state[s] = <char*>piece.state[s] + offset
    piece.size = stop - start
    return piece


cdef struct Work:
    const Task* tasks
    Py_ssize_t count
    update_fn update
    const double* options


cdef void run_part(void* context, Py_ssize_t part, Py_ssize_t parts) noexcept nogil:
    """Run this thread's share of every task: the part-th of `parts` slices of each array
    (tasks of size -1, parameters without a gradient, are skipped)."""
    cdef Work* work = <Work*>context
    cdef Task piece
    cdef Py_ssize_t k, size, start, stop
    cdef Py_ssize_t align = 16  # elements: keep slices on cache-line boundaries
    for k in range(work.count):
        size = work.tasks[k].size
        if size < 0:
            continue
        start = (size * part // parts) // align * align
        stop = size if part == parts - 1 else (size * (part + 1) // parts) // align * align
        if stop <= start:
            continue
        piece = task_slice(&work.tasks[k], start, stop)
        work.update(&piece, work.options)


cdef void run_tasks(const Task* tasks, Py_ssize_t count, update_fn update, const double* options,
                    int n_threads) noexcept nogil:
    cdef Work work = Work(tasks=tasks, count=count, update=update, options=options)
    cdef Py_ssize_t k
    if n_threads > 1:
        run_parallel(run_part, &work, n_threads)
    else:
        for k in range(count):
            if tasks[k].size >= 0:
                update(&tasks[k], options)


cdef struct Engine:
    # what step 2 reads: the prepared tasks, and per group its options and threads
    Kernel kernel
    bint counts_steps
    Py_ssize_t n_groups, n_fields
    Py_ssize_t lr_value                           # where a group's values hold "lr"
    Py_ssize_t field_value[MAX_OPTION_FIELDS]     # the value that fills each of the kernel's option fields
    Py_ssize_t* bounds    # n_groups x 2: each group's (start, stop) among the parameters
    Task* tasks           # one a parameter
    double* values        # n_groups x VALUES: each group's option values, as the description orders them
    double* options       # n_groups x MAX_OPTION_FIELDS: each group's options, as the kernel reads them
    int* threads          # one a group
    cnp.int64_t* counts   # one a parameter: its step count
    cnp.uint8_t* fresh    # one a parameter: whether its from-gradient state is new
    double* scalars       # n_params x n_scalars: each parameter's scalar state
    Py_ssize_t n_scalars
    double grad_scale     # this step's kernels read every gradient times it (Plan.step; else 1)


cdef enum:
    VALUES = 2 * MAX_OPTION_FIELDS  # doubles of a group's option values (a pair takes two)

#: the largest step count: every count up to it is exact in a double, far from overflowing (torch's
#: step, a float32 tensor by default, stops growing far sooner, at 2**24); a step there keeps it
cdef cnp.int64_t LARGEST_STEP = 9007199254740992
MAX_STEP = LARGEST_STEP


cdef inline double* group_options(Engine* e, Py_ssize_t g) noexcept nogil:
    """Group g's options as the kernel reads them, filled from its option values."""
    cdef double* options = e.options + g * MAX_OPTION_FIELDS
    cdef const double* values = e.values + g * VALUES
    cdef Py_ssize_t f
    for f in range(e.n_fields):
        options[f] = values[e.field_value[f]]
    return options


cdef inline cnp.int64_t next_count(cnp.int64_t count) noexcept nogil:
    """A step count after one more step: counted up to LARGEST_STEP, which it keeps."""
    return count + 1 if count < LARGEST_STEP else count


cdef inline void count_step(Engine* e, Task* t, Py_ssize_t i) noexcept nogil:
    """Parameter i's step: counted (if the algorithm counts steps), its from-gradient state's
    freshness read (and cleared: nothing from here on fails), the step's gradient scale set."""
    if e.counts_steps:
        e.counts[i] = next_count(e.counts[i])
        t.step = e.counts[i]
    t.fresh = e.fresh[i]
    e.fresh[i] = 0
    t.grad_scale = e.grad_scale


cdef void advance(Engine* e) noexcept nogil:
    """Step 2, for prepared tasks: count the steps, set the step scalars, run the kernels."""
    cdef Py_ssize_t g, i, start, stop, previous
    cdef double* options
    cdef Task* t
    for g in range(e.n_groups):
        options = group_options(e, g)
        start, stop = e.bounds[2 * g], e.bounds[2 * g + 1]
        previous = -1  # the group's last parameter with a gradient: its scalars are reused when they can be
        for i in range(start, stop):
            t = &e.tasks[i]
            if t.size < 0:
                continue
            count_step(e, t, i)
            if e.kernel.step_scalars != NULL:
                if previous >= 0 and e.tasks[previous].step == t.step and e.n_scalars == 0:
                    t.step_scalars = e.tasks[previous].step_scalars
                else:
                    e.kernel.step_scalars(options, t.step, e.scalars + i * e.n_scalars, t.step_scalars)
            previous = i
        run_tasks(e.tasks + start, stop - start, e.kernel.update, options, e.threads[g])


cdef inline void gather(floating* into, const floating* source, const Py_ssize_t* entries,
                        Py_ssize_t count) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(count):
        into[i] = source[entries[i]]


cdef inline void scatter(floating* into, const floating* source, const Py_ssize_t* entries,
                         Py_ssize_t count) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(count):
        into[entries[i]] = source[i]


cdef void advance_entries(Engine* e, const Py_ssize_t* entries, Py_ssize_t count, char* buffer,
                          Py_ssize_t room) noexcept nogil:
    """advance() for an engine of one parameter, on the listed entries only (lazy updates, as
    torch's SparseAdam): the step is counted and its scalars set as advance() does, then the
    kernel runs on the entries gathered into buffer as on a parameter of their own (a kernel is
    element-wise), and the parameter's and the states' entries are scattered back.  The other
    entries, and their state, are left as they are.  buffer holds 2 + MAX_STATES sections of
    room values of the parameter's dtype: the parameter's entries, then their gradient, which
    the caller has put there (it sums a sparse gradient there, entry by entry), then each
    state's entries."""
    cdef Task* t = &e.tasks[0]
    cdef Task gathered
    cdef double* options = group_options(e, 0)
    cdef Py_ssize_t s, width = bytes_of(1, t.is_float32)
    if t.size < 0:
        return
    count_step(e, t, 0)
    if e.kernel.step_scalars != NULL:
        e.kernel.step_scalars(options, t.step, e.scalars, t.step_scalars)
    gathered = t[0]
    gathered.size = count
    gathered.param = buffer
    gathered.grad = buffer + room * width
    for s in range(MAX_STATES):
        gathered.state[s] = NULL if t.state[s] == NULL else buffer + (2 + s) * room * width
    if t.is_float32:
        gather(<float*>gathered.param, <const float*>t.param, entries, count)
        for s in range(MAX_STATES):
            if t.state[s] != NULL:
                gather(<float*>gathered.state[s], <const float*>t.state[s], entries, count)
    else:
        gather(<double*>gathered.param, <const double*>t.param, entries, count)
        for s in range(MAX_STATES):
            if t.state[s] != NULL:
                gather(<double*>gathered.state[s], <const double*>t.state[s], entries, count)
    e.kernel.update(&gathered, options)
    if t.is_float32:
        scatter(<float*>t.param, <const float*>gathered.param, entries, count)
        for s in range(MAX_STATES):
            if t.state[s] != NULL:
                scatter(<float*>t.state[s], <const float*>gathered.state[s], entries, count)
    else:
        scatter(<double*>t.param, <const double*>gathered.param, entries, count)
        for s in range(MAX_STATES):
            if t.state[s] != NULL:
                scatter(<double*>t.state[s], <const double*>gathered.state[s], entries, count)


cdef inline void set_lr(Engine* e, Py_ssize_t g, double lr) noexcept nogil:
    """Group g's learning rate for the next advance (the regression epoch's schedule)."""
    e.values[g * VALUES + e.lr_value] = lr


cdef inline double lr_of(const Engine* e, Py_ssize_t g) noexcept nogil:
    """Group g's learning rate."""
    return e.values[g * VALUES + e.lr_value]


@cython.final
@cython.auto_pickle(False)
cdef class Plan:
    """How one optimizer's step runs: its algorithm's kernel and description, and the arrays it
    updates, gathered once.  The optimizer builds a new plan whenever it replaces any of them
    (a new param group, load_state_dict, a group's "params" changed); the state lists are
    shared, so a state array the optimizer creates is the plan's too."""
    cdef Engine engine
    cdef Py_ssize_t n_params, n_options, n_states
    # the description's options: names, kinds, ranges, whether a rule between options reads
    # one (then any change of it is checked in Python), where its values start
    cdef tuple option_names
    cdef int option_kind[MAX_OPTION_FIELDS]
    cdef double option_low[MAX_OPTION_FIELDS]
    cdef double option_high[MAX_OPTION_FIELDS]
    cdef bint option_ruled[MAX_OPTION_FIELDS]
    cdef Py_ssize_t option_start[MAX_OPTION_FIELDS]
    # per state slot of the kernel: the value whose being nonzero makes it needed (-1: always)
    cdef Py_ssize_t state_needs[MAX_STATES]
    cdef list params, entries, auto_threads, states, remembered
    cdef tuple state_names  # the kernel's, in slot order
    cdef cnp.ndarray steps, fresh, scalars
    cdef bint* holders     # one a parameter: whether its entry is a fastgd.Parameter
    # the blocks a step writes (parameters and states of the tasks with a gradient), as last
    # gathered in task order, and sorted by address (see grads_cross)
    cdef Block* written
    cdef Block* written_sorted
    cdef Py_ssize_t n_written
    cdef const void** read_last   # per parameter: the gradient read at the last check (NULL: none)
    cdef bint crossed_last        # that check's answer
    cdef Py_ssize_t overflowing   # the parameter the last check found its step scalars overflowing (-1: none)
    cdef bint initialized         # __init__ has run: a plan is made once (__cinit__ sized its arrays)
    cdef Py_ssize_t room_params, room_groups  # what __cinit__ sized the C arrays for

    def __cinit__(self, str kernel, tuple options, tuple state, bint counts_steps, list params,
                  list entries, dict state_lists, cnp.ndarray steps not None, cnp.ndarray fresh not None,
                  cnp.ndarray scalars not None, list slices, list auto_threads):
        cdef Py_ssize_t n_params = max(len(params), 1), n_groups = max(len(slices), 1)
        self.room_params, self.room_groups = n_params, n_groups
        self.engine.tasks = <Task*>calloc(n_params, sizeof(Task))
        self.engine.grad_scale = 1.0
        self.holders = <bint*>calloc(n_params, sizeof(bint))
        self.engine.bounds = <Py_ssize_t*>calloc(n_groups * 2, sizeof(Py_ssize_t))
        self.engine.threads = <int*>calloc(n_groups, sizeof(int))
        self.engine.options = <double*>calloc(n_groups * MAX_OPTION_FIELDS, sizeof(double))
        self.engine.values = <double*>calloc(n_groups * VALUES, sizeof(double))
        self.written = <Block*>calloc(n_params * (1 + MAX_STATES), sizeof(Block))
        self.written_sorted = <Block*>calloc(n_params * (1 + MAX_STATES), sizeof(Block))
        self.n_written = -1  # none gathered yet
        self.read_last = <const void**>calloc(n_params, sizeof(void*))
        if not (self.engine.tasks and self.holders and self.engine.bounds and self.engine.threads
                and self.engine.options and self.engine.values and self.written and self.written_sorted
                and self.read_last):
            raise MemoryError()

    def __init__(self, str kernel, tuple options, tuple state, bint counts_steps, list params,
                 list entries, dict state_lists, cnp.ndarray steps not None, cnp.ndarray fresh not None,
                 cnp.ndarray scalars not None, list slices, list auto_threads):
        """kernel: the algorithm's name in kernel_named; options: (name, kind, low, high, fields,
        ruled) per option of the description (kind one of KINDS; fields: the names of its values
        in the kernel's options, None for a value the kernel does not read); state: ((name, needed
        when this option is nonzero, or None: always) per state array, (name per number kept per
        parameter, the columns of scalars)); params: every parameter
        array, group after group (slices[g] = (start, stop) of group g), and entries: what each
        group's "params" list holds for it (the array, or a fastgd.Parameter holding it);
        state_lists: per state name, one array or None per parameter; steps (int64) and fresh
        (uint8): per parameter, its step count and whether its from-gradient state is new;
        scalars (float64, one row a parameter): the numbers each keeps across steps."""
        cdef Py_ssize_t k, c, f, v = 0
        # __cinit__ sized the C arrays for its own arguments (Plan.__new__'s): once, and of those sizes
        if self.initialized or len(params) > self.room_params or len(slices) > self.room_groups:
            raise TypeError("a Plan is initialized once, with the lists it was made with: make a new Plan")
        self.initialized = True
        fields, state_order, scalar_order, step_bytes = kernel_named(kernel, &self.engine.kernel)
        if len(options) > MAX_OPTION_FIELDS or len(fields) > MAX_OPTION_FIELDS or len(state_order) > MAX_STATES:
            raise ValueError(f"kernel {kernel!r}: more options or state arrays than the engine holds")
        if step_bytes > MAX_STEP_SCALARS * sizeof(double) or len(scalar_order) > MAX_STEP_SCALARS:
            raise ValueError(f"kernel {kernel!r}: its step scalars take {step_bytes} bytes, and it keeps "
                             f"{len(scalar_order)} numbers a parameter; the engine holds {MAX_STEP_SCALARS} "
                             "doubles of each (MAX_STEP_SCALARS)")
        state, scalar_state = state
        if tuple(scalar_state) != scalar_order or cnp.PyArray_NDIM(scalars) != 2 \
                or cnp.PyArray_DIM(scalars, 1) != len(scalar_order):
            raise ValueError(f"kernel {kernel!r} keeps the numbers {scalar_order} a parameter, in this order; the "
                             f"optimizer describes {tuple(scalar_state)}")
        self.n_params, self.engine.n_groups = len(params), len(slices)
        self.engine.counts_steps = counts_steps
        self.n_options, self.engine.n_fields, self.n_states = len(options), len(fields), len(state_order)
        self.option_names = tuple(option[0] for option in options)
        value_of = {}
        for k, (name, kind, low, high, value_fields, ruled) in enumerate(options):
            self.option_kind[k] = KINDS[kind]
            self.option_low[k], self.option_high[k] = low, high
            self.option_ruled[k] = ruled
            self.option_start[k] = v
            for c, field in enumerate(value_fields):
                if field is not None:
                    value_of[field] = v + c
            v += len(value_fields)
        if v > VALUES:
            raise ValueError(f"kernel {kernel!r}: more option values than the engine holds")
        self.engine.lr_value = self.option_start[self.option_names.index("lr")]
        for f, field in enumerate(fields):
            if field not in value_of:
                raise ValueError(f"kernel {kernel!r} reads option {field!r}, which the optimizer does not describe")
            self.engine.field_value[f] = value_of.pop(field)
        if value_of:
            raise ValueError(f"kernel {kernel!r} does not read the described {', '.join(map(repr, value_of))}")
        described = {name: needed_when for name, needed_when in state}
        if set(described) != set(state_order):
            raise ValueError(f"kernel {kernel!r} keeps the state {state_order}; the optimizer describes "
                             f"{tuple(described)}")
        for k, name in enumerate(state_order):
            needed_when = described[name]
            self.state_needs[k] = (-1 if needed_when is None
                                   else self.option_start[self.option_names.index(needed_when)])
        if len(entries) != self.n_params or cnp.PyArray_TYPE(steps) != cnp.NPY_INT64 \
                or cnp.PyArray_TYPE(fresh) != cnp.NPY_UINT8 \
                or not (cnp.PyArray_ISCARRAY(steps) and cnp.PyArray_ISCARRAY(fresh)) \
                or cnp.PyArray_SIZE(steps) != self.n_params or cnp.PyArray_SIZE(fresh) != self.n_params:
            raise ValueError("entries, steps (int64) and fresh (uint8) must have one entry a parameter")
        if cnp.PyArray_TYPE(scalars) != cnp.NPY_DOUBLE or cnp.PyArray_NDIM(scalars) != 2 \
                or cnp.PyArray_DIM(scalars, 0) != self.n_params or not cnp.PyArray_ISCARRAY(scalars):
            raise ValueError("scalars must be a writable contiguous float64 array with one row a parameter")
        self.states = [state_lists[name] for name in state_order]
        self.state_names = tuple(state_order)
        self.params, self.entries, self.auto_threads = params, entries, auto_threads
        for k in range(self.n_params):
            self.holders[k] = entries[k] is not params[k]
        for k in range(self.engine.n_groups):
            self.engine.bounds[2 * k], self.engine.bounds[2 * k + 1] = slices[k]
        self.steps, self.fresh = steps, fresh
        self.engine.counts = <cnp.int64_t*>cnp.PyArray_DATA(steps)
        self.engine.fresh = <cnp.uint8_t*>cnp.PyArray_DATA(fresh)
        self.scalars = scalars
        self.engine.scalars = <double*>cnp.PyArray_DATA(scalars)
        self.engine.n_scalars = cnp.PyArray_DIM(scalars, 1)
        self.remembered = [[NOT_READ] * self.n_options for _ in range(self.engine.n_groups)]

    def __dealloc__(self):
        free(self.engine.tasks)
        free(self.holders)
        free(self.engine.bounds)
        free(self.engine.threads)
        free(self.engine.options)
        free(self.engine.values)
        free(self.written)
        free(self.written_sorted)
        free(self.read_last)

    def step(self, list groups, list grads, int n_threads, bint checked=False, double grad_scale=1.0):
        """Update every group's parameters (group g: params[start:stop] with the options
        groups[g], for (start, stop) = slices[g]) on n_threads threads (0: auto_threads[g]);
        parameters whose gradient is None are skipped.  Returns DONE, or an Outcome saying what
        the caller must do before calling again, having changed nothing.  `checked`: groups are
        copies whose options the caller has checked in full, values that read the same each time
        (Optimizer._check_all_groups).  grad_scale: the kernels read every gradient times it
        (rounded to the gradient's dtype), the gradients unchanged."""
        # ours: the caller's lists may change while the kernels run, or while user code runs
        # in the gathering (a Parameter subclass's .data property, a float subclass's __float__)
        groups, grads = list(groups), list(grads)
        cdef int outcome = self.prepare(groups, grads, n_threads, checked)
        if outcome == DONE:
            self.engine.grad_scale = grad_scale
            with nogil:
                advance(&self.engine)
            self.engine.grad_scale = 1.0  # the regression epoch advances unscaled
        return outcome

    def grads_of(self, list groups):
        """The .grad of each parameter's entry (a list of its own, which holds them), if groups
        list the plan's entries, each a fastgd.Parameter; else None (the caller reads them)."""
        cdef list grads = []
        cdef Py_ssize_t g, i, start, stop
        cdef object group, listed
        if len(groups) != self.engine.n_groups:
            return None
        for g in range(self.engine.n_groups):
            group = groups[g]
            listed = (<dict>group).get("params") if isinstance(group, dict) else None
            start, stop = self.engine.bounds[2 * g], self.engine.bounds[2 * g + 1]
            if type(listed) is not list or len(<list>listed) != stop - start:
                return None
            for i in range(start, stop):
                if (<list>listed)[i - start] is not self.entries[i] or not self.holders[i]:
                    return None
        for i in range(self.n_params):
            grads.append(getattr(self.entries[i], "grad"))
        return grads

    def check(self, list groups, list grads, int n_threads, bint checked=False):
        """What step would return, without stepping (DONE or STATE_MISSING: it would step)."""
        return self.prepare(list(groups), list(grads), n_threads, checked)

    def missing(self):
        """After a step or check that returned STATE_MISSING: (state name, parameter, group) for
        each state array a parameter with a gradient lacks and its group's options, as that call
        read them, need.  The one place that decides which state the options need: the caller
        creates these, and the step uses what they need and leaves the rest."""
        cdef Py_ssize_t g, i, k
        cdef list lacking = []
        for g in range(self.engine.n_groups):
            for i in range(self.engine.bounds[2 * g], self.engine.bounds[2 * g + 1]):
                if self.engine.tasks[i].size >= 0:
                    for k in range(self.n_states):
                        if self.state_needed(g, k) and (<list>self.states[k])[i] is None:
                            lacking.append((self.state_names[k], i, g))
        return lacking

    cdef Py_ssize_t step_overflows(self) noexcept:
        """The first parameter with a gradient whose next step's scalars (the kernel's step size,
        lr / (1 - beta1^t) for Adam; decoupled decay's 1 - lr * weight_decay) are not finite, or
        for a float32 parameter finite in float64 but beyond float32's range, as its kernel reads
        them, or -1.  Its kernel would multiply by inf, and inf times a zero moment (or parameter)
        is NaN where the exact step leaves the parameter as it is (torch's Adam refuses such a
        step size in float32: a Python float that does not convert to float32; its NAdam raises
        ZeroDivisionError where its float32 mu_product rounds to 1, which made the step's every
        element inf here).  Computed as the next step computes them (from a copy of the scalar
        state, which they may update), once a group, dtype, step count and scalar state."""
        cdef Py_ssize_t g, i, j, last = 0
        cdef cnp.int64_t step, previous
        cdef bint is_float32, previous_float32 = False
        cdef double updated[MAX_STEP_SCALARS]  # a copy for the step scalars to update
        cdef double scalars[MAX_STEP_SCALARS]
        cdef const double* options
        cdef const double* state
        cdef size_t state_bytes = self.engine.n_scalars * sizeof(double)
        cdef Engine* e = &self.engine
        if e.kernel.step_scalars == NULL:
            return -1
        for g in range(e.n_groups):
            options = group_options(e, g)
            previous = -1  # the step count (and parameter: last) whose scalars were last found finite
            for i in range(e.bounds[2 * g], e.bounds[2 * g + 1]):
                if e.tasks[i].size < 0:
                    continue
                is_float32 = e.tasks[i].is_float32
                step = next_count(e.counts[i]) if e.counts_steps else e.tasks[i].step
                state = e.scalars + i * e.n_scalars
                if step == previous and is_float32 == previous_float32 and (
                        state_bytes == 0 or memcmp(e.scalars + last * e.n_scalars, state, state_bytes) == 0):
                    continue
                if state_bytes:  # (none: the state pointer may be NULL, which memcpy must not get)
                    memcpy(updated, state, state_bytes)
                memset(scalars, 0, sizeof(scalars))
                e.kernel.step_scalars(options, step, updated, scalars)
                for j in range(MAX_STEP_SCALARS):  # (torch refuses a Python float beyond FLT_MAX as a float32)
                    if not isfinite(scalars[j]) or (is_float32 and fabs(scalars[j]) > FLT_MAX):
                        return i
                previous, previous_float32, last = step, is_float32, i
        return -1

    def overflow(self):
        """After a step or check that returned STEP_OVERFLOWS: (parameter, group, step count or
        None if the algorithm counts no steps, whether the parameter is float32, as the step read
        it) of the parameter whose step scalars are not finite, or overflow float32 in a float32
        parameter (step_overflows)."""
        cdef Py_ssize_t g, i = self.overflowing
        for g in range(self.engine.n_groups):
            if self.engine.bounds[2 * g] <= i < self.engine.bounds[2 * g + 1]:
                return (i, g, int(next_count(self.engine.counts[i])) if self.engine.counts_steps else None,
                        bool(self.engine.tasks[i].is_float32))
        return None

    cdef inline bint state_needed(self, Py_ssize_t g, Py_ssize_t k) noexcept:
        """Whether group g's options, as last read, need state slot k."""
        return self.state_needs[k] < 0 or (self.engine.values + g * VALUES)[self.state_needs[k]] != 0

    cdef void forget_lr(self, Py_ssize_t g):
        """Read group g's lr again at the next step (set_lr has changed the value read)."""
        (<list>self.remembered[g])[self.option_names.index("lr")] = NOT_READ

    cdef int prepare(self, list groups, list grads, int n_threads, bint checked) except -1:
        """Step 1: check everything and gather the tasks, changing nothing the optimizer sees."""
        cdef Py_ssize_t g, i
        cdef int outcome
        cdef bint missing = False
        if len(groups) != self.engine.n_groups or len(grads) != self.n_params:
            return PARAMS_CHANGED
        for g in range(self.engine.n_groups):
            if not isinstance(groups[g], dict):  # an OrderedDict too, as torch takes
                return PARAMS_CHANGED
            outcome = self.gather_arrays(g, <dict>groups[g], grads)
            if outcome != DONE:
                return outcome
        for g in range(self.engine.n_groups):
            if not self.read_options(g, <dict>groups[g], checked):
                return OPTIONS_UNCHECKED
            self.engine.threads[g] = n_threads or self.auto_threads[g]
        self.overflowing = self.step_overflows()
        if self.overflowing >= 0:
            return STEP_OVERFLOWS
        for g in range(self.engine.n_groups):
            for i in range(self.engine.bounds[2 * g], self.engine.bounds[2 * g + 1]):
                if self.engine.tasks[i].size >= 0:
                    outcome = self.gather_states(g, i)
                    if outcome == STATE_MISSING:
                        missing = True
                    elif outcome != DONE:
                        return outcome
        if missing:
            return STATE_MISSING
        if not self.tasks_unmoved(grads):
            return ARRAYS_UNREADY
        for g in range(self.engine.n_groups):
            if self.engine.threads[g] > 1 and self.grads_cross():
                for g in range(self.engine.n_groups):
                    self.engine.threads[g] = 1
                break
        return DONE

    cdef bint tasks_unmoved(self, list grads) except -1:
        """Whether each task's parameter, gradient and state arrays are still where the gathering
        found them, of its size and dtype: code the gathering ran since (a Parameter subclass's
        .data, an option's __float__) may have resized or retyped one in place, freeing what the
        task points to."""
        cdef Py_ssize_t i, k
        cdef const Task* t
        cdef int dtype
        cdef cnp.ndarray param, grad
        cdef object state
        for i in range(self.n_params):
            t = &self.engine.tasks[i]
            if t.size < 0:
                continue
            if not isinstance(grads[i], cnp.ndarray):  # (the caller's list, which that code may edit)
                return False
            param, grad = <cnp.ndarray>self.params[i], <cnp.ndarray>grads[i]
            dtype = cnp.NPY_FLOAT if t.is_float32 else cnp.NPY_DOUBLE
            if not (cnp.PyArray_DATA(param) == t.param and size_of(param) == t.size and cnp.PyArray_TYPE(param) == dtype
                    and cnp.PyArray_DATA(grad) == t.grad and size_of(grad) == t.size and cnp.PyArray_TYPE(grad) == dtype):
                return False
            for k in range(self.n_states):
                if t.state[k] != NULL:
                    state = self.states[k][i]
                    if not (type(state) is cnp.ndarray and cnp.PyArray_DATA(<cnp.ndarray>state) == t.state[k]
                            and cnp.PyArray_ISCARRAY(<cnp.ndarray>state) and size_of(<cnp.ndarray>state) == t.size
                            and cnp.PyArray_TYPE(<cnp.ndarray>state) == dtype):
                        return False
        return True

    cdef bint grads_cross(self) noexcept:
        """Whether a gradient shares memory with another parameter or its state (one of its own is
        refused), in any group: run on several threads, each taking a slice of every task, it
        would be read half updated; one after another, as torch steps its parameters, each task
        reads it whole, before or after the other's update.  The blocks written (apart from one
        another: the parameters are checked apart, the states are the optimizer's own) are sorted
        again only when they changed since the last step (a state made, a gradient None)."""
        cdef Py_ssize_t k, j, n = 0, width = 1 + self.n_states
        cdef bint same = True
        cdef const Task* t
        cdef const char* start
        cdef Py_ssize_t nbytes
        for k in range(self.n_params):
            t = &self.engine.tasks[k]
            if t.size <= 0:
                continue
            nbytes = bytes_of(t.size, t.is_float32)
            for j in range(width):
                start = <const char*>(t.param if j == 0 else t.state[j - 1])
                if start == NULL:
                    continue
                if self.written[n].start != start or self.written[n].end != start + nbytes:
                    same = False
                    self.written[n].start, self.written[n].end = start, start + nbytes
                n += 1
        if not same or n != self.n_written:
            self.n_written = n
            memcpy(self.written_sorted, self.written, n * sizeof(Block))
            qsort(self.written_sorted, n, sizeof(Block), by_start)
        for k in range(self.n_params):  # the same gradients as last time (buffers reused): the same answer
            t = &self.engine.tasks[k]
            if self.read_last[k] != (t.grad if t.size > 0 else NULL):
                same = False
                self.read_last[k] = t.grad if t.size > 0 else NULL
        if same:
            return self.crossed_last
        self.crossed_last = False
        for k in range(self.n_params):
            t = &self.engine.tasks[k]
            if t.size > 0 and any_block_meets(self.written_sorted, n, <const char*>t.grad,
                                              <const char*>t.grad + bytes_of(t.size, t.is_float32)):
                self.crossed_last = True
                break
        return self.crossed_last

    cdef int gather_arrays(self, Py_ssize_t g, dict group, list grads) except -1:
        """Group g's parameters as the plan knows them and ready, and their gradients ready for
        the kernels (size -1 for a None gradient) and apart from them."""
        cdef Py_ssize_t i, start = self.engine.bounds[2 * g], stop = self.engine.bounds[2 * g + 1]
        cdef PyObject* found = PyDict_GetItem(group, "params")
        cdef object listed, grad
        cdef PyObject* entry
        cdef cnp.ndarray param
        cdef int dtype
        cdef Task* t
        if found == NULL:
            return PARAMS_CHANGED
        listed = <object>found
        if type(listed) is not list or len(<list>listed) != stop - start:
            return PARAMS_CHANGED
        for i in range(start, stop):
            entry = PyList_GET_ITEM(listed, i - start)
            param = <cnp.ndarray>self.params[i]
            if entry != <PyObject*>self.entries[i]:
                return PARAMS_CHANGED
            if self.holders[i]:  # the entry lives on in self.entries; a subclass's .data may change the list
                if getattr(<object>entry, "data") is not param or len(<list>listed) != stop - start:
                    return PARAMS_CHANGED
            dtype = cnp.PyArray_TYPE(param)
            if not (cnp.PyArray_ISCARRAY(param) and (dtype == cnp.NPY_FLOAT or dtype == cnp.NPY_DOUBLE)):
                return ARRAYS_UNREADY
            grad = grads[i]
            t = &self.engine.tasks[i]
            if grad is None:
                t.size = -1  # skipped
                continue
            if not kernel_ready(grad, param, dtype):
                return ARRAYS_UNREADY
            t.param = cnp.PyArray_DATA(param)
            t.grad = cnp.PyArray_DATA(<cnp.ndarray>grad)
            t.size = size_of(param)
            t.is_float32 = dtype == cnp.NPY_FLOAT
            if overlap(t.param, t.grad, bytes_of(t.size, t.is_float32)):
                return ARRAYS_UNREADY
        return DONE

    cdef bint read_options(self, Py_ssize_t g, dict group, bint checked) except -1:
        """Read group g's option values; False if one needs the full check first.  A value that
        passed a check is remembered (by identity, when it cannot change in place) and not read again."""
        cdef list remembered = <list>self.remembered[g]
        cdef double* out
        cdef Py_ssize_t k
        cdef PyObject* found
        cdef object value
        for k in range(self.n_options):
            found = PyDict_GetItem(group, self.option_names[k])
            if found == NULL:
                if checked:
                    raise ValueError(f"option {self.option_names[k]!r} is missing")
                return False
            value = <object>found
            if value is remembered[k]:
                continue
            remembered[k] = NOT_READ  # until its values are read again
            out = self.engine.values + g * VALUES + self.option_start[k]
            if checked:  # group: a copy the Python layer checked in full, its values read the same each time
                if self.option_kind[k] == PAIR:
                    out[0], out[1] = value[0], value[1]
                else:
                    out[0] = float(value)
            elif self.option_ruled[k] or not self.plain_option(k, value, out):
                return False
            if immutable(value) and fabs(out[0]) <= FLT_MAX:  # (one beyond: checked anew, as the parameters'
                remembered[k] = value                         # dtype may change in place to float32)
        return True

    cdef bint plain_option(self, Py_ssize_t k, object value, double* out) except -1:
        """Whether value is a plain Python value of option k's kind, in its range; stored in out."""
        if self.option_kind[k] == FLAG:
            out[0] = value is True
            return value is True or value is False
        if self.option_kind[k] == NUMBER:  # beyond float32's range: the full check (see Optimizer._check_in_dtype)
            return plain_number_in(value, self.option_low[k], self.option_high[k], out) and fabs(out[0]) <= FLT_MAX
        return (type(value) is tuple and len(<tuple>value) == 2
                and plain_number_in((<tuple>value)[0], self.option_low[k], self.option_high[k], out)
                and plain_number_in((<tuple>value)[1], self.option_low[k], self.option_high[k], out + 1))

    cdef int gather_states(self, Py_ssize_t g, Py_ssize_t i) except -1:
        """Task i's state pointers: the arrays its group's options need, each matching its
        parameter and apart from its gradient; NULL for the others."""
        cdef Task* t = &self.engine.tasks[i]
        cdef int dtype = cnp.PyArray_TYPE(<cnp.ndarray>self.params[i])
        cdef Py_ssize_t k
        cdef PyObject* state  # borrowed from the state list, which the plan holds
        cdef bint missing = False
        for k in range(self.n_states):
            t.state[k] = NULL
            if not self.state_needed(g, k):
                continue
            state = PyList_GET_ITEM(self.states[k], i)
            if <object>state is None:
                missing = True
                continue
            # read each step: a resize, a retype, a reshape or a flag set in place changes them
            if type(<object>state) is not cnp.ndarray or not cnp.PyArray_ISCARRAY(<cnp.ndarray>state) \
                    or cnp.PyArray_TYPE(<cnp.ndarray>state) != dtype or size_of(<cnp.ndarray>state) != t.size:
                return STATE_MISMATCH
            t.state[k] = cnp.PyArray_DATA(<cnp.ndarray>state)
            if overlap(t.state[k], t.grad, bytes_of(t.size, t.is_float32)):
                return ARRAYS_UNREADY
        return STATE_MISSING if missing else DONE
