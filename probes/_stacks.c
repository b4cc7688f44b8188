/* The sampler's stack capture in C: every thread's stack read while the GIL stays held.
 *
 * Optional: advisor.probes.sampler uses it when it was built, and its own Python loop
 * otherwise. Why it exists: the frames sys._current_frames() returns keep moving once the
 * sampling thread gives up the GIL, and a Python loop gives it up every switch interval
 * (10 us while sampling a single thread) or at any call that blocks. A generator's or a
 * coroutine's frame that has yielded meanwhile has no f_back any more, so its stack came
 * out as that one frame: a generator expression under sum() lost all its callers in about
 * half of its samples. C code that calls no Python code is never asked to drop the GIL,
 * so here every stack is read as it was at the moment the frames were taken, and so are
 * the threads' CPU clocks and run-queue times: read from Python, each /proc read let the
 * GIL go, and with busy threads each took up to a switch interval to get it back.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <errno.h>
#include <frameobject.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "_code_extra.h"
#include "_hold_clock.h"

static PyObject *s_clock, *s_schedstat, *s_co_lines;

/* Each code object's line per instruction, made once from its co_lines() and kept in its
 * co_extra slot (freed with it). PyFrame_GetLineNumber decodes the code's location table
 * from its start at every call: ~5 µs a frame for a function of 300 lines (a stack of 26
 * such frames took 135-175 µs a capture that way, 5 µs with the arrays). */
typedef struct {
    Py_ssize_t count; /* code units */
    int lines[];      /* the line of each, or of the nearest one before it that has one */
} LineArray;

static Py_ssize_t line_extra = -1; /* the co_extra index, -1 when none could be had */

static void
free_lines(void *lines)
{
    PyMem_RawFree(lines);
}

/* The frame's line, or for an instruction without one (a loop's backward jump in 3.11),
 * the line of the nearest instruction before it that has one: as sampler.line_at does. */
static int
frame_line(PyFrameObject *frame, PyCodeObject *code)
{
    int line = PyFrame_GetLineNumber(frame);
    if (line >= 0) {
        return line;
    }
    /* 3.11's code units are 2 bytes, and offsets are in bytes */
    for (int offset = PyFrame_GetLasti(frame) - 2; offset >= 0; offset -= 2) {
        line = PyCode_Addr2Line(code, offset);
        if (line >= 0) {
            return line;
        }
    }
    return code->co_firstlineno;
}

/* The code's lines as co_lines() gives them, by code unit (NULL with no exception set
 * where they could not be had: the caller decodes the line itself) */
static LineArray *
make_lines(PyCodeObject *code)
{
    PyObject *ranges = PyObject_CallMethodNoArgs((PyObject *)code, s_co_lines);
    PyObject *list = ranges != NULL ? PySequence_List(ranges) : NULL;
    Py_XDECREF(ranges);
    if (list == NULL) {
        PyErr_Clear();
        return NULL;
    }
    Py_ssize_t count = 0, size = PyList_GET_SIZE(list);
    long bounds[3];
    for (Py_ssize_t index = 0; index < size; index++) { /* the last range's end: the code's size */
        PyObject *range = PyList_GET_ITEM(list, index);
        if (!PyTuple_CheckExact(range) || PyTuple_GET_SIZE(range) != 3) {
            Py_DECREF(list);
            return NULL;
        }
        long end = PyLong_AsLong(PyTuple_GET_ITEM(range, 1));
        if (end == -1 && PyErr_Occurred()) {
            PyErr_Clear();
            Py_DECREF(list);
            return NULL;
        }
        count = end / 2 > count ? end / 2 : count;
    }
    LineArray *lines = PyMem_RawMalloc(sizeof(LineArray) + sizeof(int) * (size_t)(count > 0 ? count : 1));
    if (lines == NULL) {
        Py_DECREF(list);
        return NULL;
    }
    lines->count = count;
    for (Py_ssize_t unit = 0; unit < count; unit++) {
        lines->lines[unit] = -1;
    }
    for (Py_ssize_t index = 0; index < size; index++) {
        PyObject *range = PyList_GET_ITEM(list, index);
        for (int field = 0; field < 3; field++) {
            PyObject *value = PyTuple_GET_ITEM(range, field);
            bounds[field] = value == Py_None ? -1 : PyLong_AsLong(value);
        }
        if (PyErr_Occurred()) {
            PyErr_Clear();
            PyMem_RawFree(lines);
            Py_DECREF(list);
            return NULL;
        }
        for (long unit = bounds[0] / 2; unit < bounds[1] / 2 && unit < count; unit++) {
            if (unit >= 0) {
                lines->lines[unit] = (int)bounds[2];
            }
        }
    }
    Py_DECREF(list);
    int line = code->co_firstlineno; /* an instruction without a line: the nearest one's before it */
    for (Py_ssize_t unit = 0; unit < count; unit++) {
        if (lines->lines[unit] >= 0) {
            line = lines->lines[unit];
        }
        else {
            lines->lines[unit] = line;
        }
    }
    return lines;
}

/* The line of the instruction at `offset` (bytes) from the code's line array, made on first
 * use: 1 with *line set, 0 where there is none (no co_extra slot, co_lines() failed, an
 * offset outside the code) */
static int
array_line(PyCodeObject *code, int offset, int *line)
{
    void *extra = NULL;
    if (line_extra < 0) {
        return 0;
    }
    if (GET_CODE_EXTRA((PyObject *)code, line_extra, &extra) < 0) {
        PyErr_Clear();
        return 0;
    }
    if (extra == NULL) {
        extra = make_lines(code);
        if (extra != NULL && SET_CODE_EXTRA((PyObject *)code, line_extra, extra) < 0) {
            PyErr_Clear();
            free_lines(extra);
            extra = NULL;
        }
    }
    LineArray *lines = extra;
    if (lines == NULL || offset / 2 >= lines->count) {
        return 0;
    }
    *line = offset < 0 ? code->co_firstlineno : lines->lines[offset / 2];
    return 1;
}

static int
cached_line(PyFrameObject *frame, PyCodeObject *code)
{
    int line;
    return array_line(code, PyFrame_GetLasti(frame), &line) ? line : frame_line(frame, code);
}

/* line_of(code, offset): what a capture gives as the line of a frame of `code` at `offset` */
static PyObject *
line_of(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyCode_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "line_of(code, offset)");
        return NULL;
    }
    long offset = PyLong_AsLong(args[1]);
    if (offset == -1 && PyErr_Occurred()) {
        return NULL;
    }
    PyCodeObject *code = (PyCodeObject *)args[0];
    int line;
    if (offset < INT_MIN || offset > INT_MAX || !array_line(code, (int)offset, &line)) {
        PyErr_SetString(PyExc_ValueError, "no line array for this offset");
        return NULL;
    }
    return PyLong_FromLong(line);
}

static Py_hash_t code_hash(PyObject *code);

/* `code in hooks`, for a set or frozenset by the code's remembered hash (as the set itself
 * would look, but for hashing the code: a module's code object hashes all the code nested in
 * it, and a stack's frames were each looked for at every tick); else Python's `in` */
static int
hooks_contain(PyObject *hooks, PyObject *code)
{
    if (!PyAnySet_CheckExact(hooks)) {
        return PySequence_Contains(hooks, code);
    }
    Py_hash_t hash = code_hash(code);
    if (hash == -1) {
        return -1;
    }
    Py_ssize_t position = 0;
    PyObject *key;
    Py_hash_t key_hash;
    while (_PySet_NextEntry(hooks, &position, &key, &key_hash) > 0) {
        if (key == code) {
            return 1;
        }
        if (key_hash == hash) {
            Py_INCREF(key);
            int equal = PyObject_RichCompareBool(key, code, Py_EQ);
            Py_DECREF(key);
            if (equal != 0) {
                return equal;
            }
        }
    }
    return 0;
}

/* One thread's stack, leaf first, as a tuple of (code, line); *hook gets the first frame
 * (a new reference) whose code is in `hooks`, or stays NULL. */
static PyObject *
capture_one(PyFrameObject *leaf, PyObject *hooks, Py_ssize_t max_depth, PyObject **hook)
{
    PyObject *pairs = PyList_New(0);
    if (pairs == NULL) {
        return NULL;
    }
    PyFrameObject *frame = (PyFrameObject *)Py_NewRef(leaf);
    while (frame != NULL && PyList_GET_SIZE(pairs) < max_depth) {
        PyCodeObject *code = PyFrame_GetCode(frame);
        int found = *hook == NULL && hooks != Py_None ? hooks_contain(hooks, (PyObject *)code) : 0;
        if (found > 0) {
            *hook = Py_NewRef(frame);
        }
        PyObject *pair = found < 0 ? NULL : Py_BuildValue("(Oi)", code, cached_line(frame, code));
        Py_DECREF(code);
        if (pair == NULL || PyList_Append(pairs, pair) < 0) {
            Py_XDECREF(pair);
            Py_DECREF(frame);
            Py_DECREF(pairs);
            Py_CLEAR(*hook);
            return NULL;
        }
        Py_DECREF(pair);
        PyFrameObject *back = PyFrame_GetBack(frame);
        Py_DECREF(frame);
        frame = back;
    }
    Py_XDECREF(frame);
    PyObject *stack = PyList_AsTuple(pairs);
    Py_DECREF(pairs);
    if (stack == NULL) {
        Py_CLEAR(*hook);
    }
    return stack;
}

/* the CPU seconds of a thread's clock (an id from threads.thread_cpu_clock), -1.0 where
 * there is none or the thread is gone; callable without the GIL (wait_tick's looks) */
static double
cpu_seconds(int has_clock, long clock)
{
    struct timespec now;
    if (!has_clock || clock_gettime((clockid_t)clock, &now) != 0) {
        return -1.0;
    }
    return (double)now.tv_sec + (double)now.tv_nsec * 1e-9;
}

/* The thread's CPU seconds by its clock id (the `clock` of a ThreadInfo), or None: no
 * clock, or the thread is gone. What threads.read_clock does, without a Python call. */
static PyObject *
read_cpu(PyObject *clock)
{
    if (clock == Py_None || !PyLong_Check(clock)) {
        Py_RETURN_NONE;
    }
    long id = PyLong_AsLong(clock);
    if (id == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    double seconds = cpu_seconds(1, id);
    if (seconds < 0.0) {
        Py_RETURN_NONE;
    }
    return PyFloat_FromDouble(seconds);
}

/* Seconds the thread waited in the run queue, from its open schedstat descriptor (the
 * second field, in ns), or None: threads.read_run_delay, without letting the GIL go (a
 * pread of a /proc file takes microseconds; re-taking a contended GIL up to a switch
 * interval, once per thread and tick). */
static PyObject *
read_delay(PyObject *fd_obj)
{
    if (fd_obj == Py_None || !PyLong_Check(fd_obj)) {
        Py_RETURN_NONE;
    }
    long fd = PyLong_AsLong(fd_obj);
    if ((fd == -1 && PyErr_Occurred()) || fd < 0 || fd > INT_MAX) {
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    char text[97];
    ssize_t got = pread((int)fd, text, sizeof(text) - 1, 0);
    if (got <= 0) {
        Py_RETURN_NONE;
    }
    text[got] = '\0';
    char *end;
    strtoull(text, &end, 10); /* time on the CPU */
    if (end == text) {
        Py_RETURN_NONE;
    }
    char *second = end;
    unsigned long long waited = strtoull(second, &end, 10);
    if (end == second) {
        Py_RETURN_NONE;
    }
    return PyFloat_FromDouble((double)waited / 1e9);
}

/* (cpu, delay) of a known thread (a ThreadInfo in `known`), or (None, None) */
static int
read_counters(PyObject *known, PyObject *ident, PyObject **cpu, PyObject **delay)
{
    *cpu = *delay = NULL;
    PyObject *info = known != Py_None ? PyDict_GetItemWithError(known, ident) : NULL;
    if (info == NULL) {
        if (PyErr_Occurred()) {
            return -1;
        }
        *cpu = Py_NewRef(Py_None);
        *delay = Py_NewRef(Py_None);
        return 0;
    }
    PyObject *clock = PyObject_GetAttr(info, s_clock);
    *cpu = clock != NULL ? read_cpu(clock) : NULL;
    Py_XDECREF(clock);
    PyObject *fd = *cpu != NULL ? PyObject_GetAttr(info, s_schedstat) : NULL;
    *delay = fd != NULL ? read_delay(fd) : NULL;
    Py_XDECREF(fd);
    if (*delay == NULL) {
        Py_CLEAR(*cpu);
        return -1;
    }
    return 0;
}

/* every thread's stack but the skipped ones, with its hook frame and counters: ident ->
 * (stack, hook frame or None, cpu, delay). Called with collections held off (see below). */
static PyObject *
capture_all(PyObject *skip, PyObject *hooks, Py_ssize_t max_depth, PyObject *known)
{
    PyObject *frames = _PyThread_CurrentFrames();
    if (frames == NULL) {
        return NULL;
    }
    PyObject *out = PyDict_New();
    if (out == NULL) {
        Py_DECREF(frames);
        return NULL;
    }
    PyObject *ident, *leaf;
    Py_ssize_t position = 0;
    while (PyDict_Next(frames, &position, &ident, &leaf)) {
        int skipped = PySequence_Contains(skip, ident);
        if (skipped < 0) {
            goto error;
        }
        if (skipped || !PyFrame_Check(leaf)) {
            continue;
        }
        PyObject *hook = NULL;
        PyObject *stack = capture_one((PyFrameObject *)leaf, hooks, max_depth, &hook);
        if (stack == NULL) {
            goto error;
        }
        PyObject *cpu, *delay;
        if (read_counters(known, ident, &cpu, &delay) < 0) {
            Py_DECREF(stack);
            Py_XDECREF(hook);
            goto error;
        }
        PyObject *entry = PyTuple_Pack(4, stack, hook != NULL ? hook : Py_None, cpu, delay);
        Py_DECREF(stack);
        Py_XDECREF(hook);
        Py_DECREF(cpu);
        Py_DECREF(delay);
        if (entry == NULL) {
            goto error;
        }
        int stored = PyDict_SetItem(out, ident, entry);
        Py_DECREF(entry);
        if (stored < 0) {
            goto error;
        }
    }
    Py_DECREF(frames);
    return out;

error:
    Py_DECREF(frames);
    Py_DECREF(out);
    return NULL;
}

static PyObject *
capture_stacks(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3 && nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "capture_stacks(skip, hooks, max_depth, known=None)");
        return NULL;
    }
    PyObject *skip = args[0], *hooks = args[1], *known = nargs == 4 ? args[3] : Py_None;
    Py_ssize_t max_depth = PyLong_AsSsize_t(args[2]);
    if (max_depth == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (known != Py_None && !PyDict_Check(known)) {
        PyErr_SetString(PyExc_TypeError, "known must be a dict of ThreadInfo by ident, or None");
        return NULL;
    }
    /* No collection while other threads' frames are read. Wrapping a frame of another thread
     * in a frame object (here, in _PyThread_CurrentFrames and in PyFrame_GetBack) allocates;
     * an allocation can start a collection, whose finalizers run Python code in this thread,
     * and Python code hands the GIL over when asked (the sampler asks for a 10 µs switch
     * interval). The frame's thread then runs on, pops the frame being wrapped and frees its
     * memory (a greenlet that ends frees its frames' chunk), and the new frame object points
     * into it: the crash of a gevent server sampled while its collector ran finalizers
     * (tests/probes/test_capture_under_collections.py). The collection waits for the capture. */
    int collecting = PyGC_Disable();
    PyObject *out = capture_all(skip, hooks, max_depth, known);
    if (collecting) {
        PyGC_Enable();
    }
    return out;
}

/* hash(code), remembered in the code object's co_extra slot: a code object hashes its
 * constants, and so every function nested in it, at every call (14 µs for gevent.pywsgi's
 * module code), and a stack table is looked up by its stacks several times a tick. Kept as
 * hash ^ HASH_SALT: 0 in the slot means none yet (a hash equal to the salt is made again at
 * each use, no harm). */
#define HASH_SALT ((Py_uhash_t)0x5bd1e9955bd1e995ULL)
static Py_ssize_t hash_extra = -1;

static Py_hash_t
code_hash(PyObject *code)
{
    void *extra = NULL;
    if (hash_extra >= 0 && GET_CODE_EXTRA(code, hash_extra, &extra) == 0 && extra != NULL) {
        return (Py_hash_t)((Py_uhash_t)(uintptr_t)extra ^ HASH_SALT);
    }
    PyErr_Clear();
    Py_hash_t hash = PyObject_Hash(code);
    if (hash != -1 && hash_extra >= 0 &&
        SET_CODE_EXTRA(code, hash_extra, (void *)(uintptr_t)((Py_uhash_t)hash ^ HASH_SALT)) < 0) {
        PyErr_Clear();
    }
    return hash;
}

/* CPython's tuple hash (xxHash's mixing, Objects/tupleobject.c since 3.8), on lanes already
 * hashed: the value hash() gives the tuple, so a key hashed here and one hashed by Python
 * find each other in a dict */
#if SIZEOF_PY_UHASH_T > 4
#define XXPRIME_1 ((Py_uhash_t)11400714785074694791ULL)
#define XXPRIME_2 ((Py_uhash_t)14029467366897019727ULL)
#define XXPRIME_5 ((Py_uhash_t)2870177450012600261ULL)
#define XXROTATE(x) ((x << 31) | (x >> 33))
#else
#define XXPRIME_1 ((Py_uhash_t)2654435761UL)
#define XXPRIME_2 ((Py_uhash_t)2246822519UL)
#define XXPRIME_5 ((Py_uhash_t)374761393UL)
#define XXROTATE(x) ((x << 13) | (x >> 19))
#endif

typedef struct {
    Py_uhash_t acc;
    Py_ssize_t length;
} TupleHash;

static void
lane_in(TupleHash *state, Py_uhash_t lane)
{
    state->acc += lane * XXPRIME_2;
    state->acc = XXROTATE(state->acc);
    state->acc *= XXPRIME_1;
    state->length++;
}

static Py_hash_t
tuple_hash_end(TupleHash *state)
{
    Py_uhash_t acc = state->acc + ((Py_uhash_t)state->length ^ (XXPRIME_5 ^ 3527539UL));
    return acc == (Py_uhash_t)-1 ? 1546275796 : (Py_hash_t)acc;
}

/* hash(stack) for a stack of (code, line) pairs, each code's own hash taken from its slot;
 * any other shape is hashed by Python. -1 with an exception set on error. */
static Py_hash_t
stack_hash(PyObject *stack)
{
    if (!PyTuple_CheckExact(stack)) {
        return PyObject_Hash(stack);
    }
    TupleHash outer = {XXPRIME_5, 0};
    for (Py_ssize_t index = 0; index < PyTuple_GET_SIZE(stack); index++) {
        PyObject *pair = PyTuple_GET_ITEM(stack, index);
        Py_hash_t lane;
        if (PyTuple_CheckExact(pair) && PyTuple_GET_SIZE(pair) == 2 && PyCode_Check(PyTuple_GET_ITEM(pair, 0))) {
            Py_hash_t code = code_hash(PyTuple_GET_ITEM(pair, 0));
            Py_hash_t line = code == -1 ? -1 : PyObject_Hash(PyTuple_GET_ITEM(pair, 1));
            if (line == -1) {
                return -1;
            }
            TupleHash inner = {XXPRIME_5, 0};
            lane_in(&inner, (Py_uhash_t)code);
            lane_in(&inner, (Py_uhash_t)line);
            lane = tuple_hash_end(&inner);
        }
        else if ((lane = PyObject_Hash(pair)) == -1) {
            return -1;
        }
        lane_in(&outer, (Py_uhash_t)lane);
    }
    return tuple_hash_end(&outer);
}

/* a float in a weights list plus `add`, written over where the list holds it alone */
static int
add_to(PyObject *weights, Py_ssize_t index, double add)
{
    PyObject **place = &((PyListObject *)weights)->ob_item[index];
    PyObject *old = *place;
    if (add == 0.0 && PyFloat_CheckExact(old) && !signbit(PyFloat_AS_DOUBLE(old))) {
        return 0; /* x + 0.0 is x, but for -0.0 */
    }
    if (PyFloat_CheckExact(old) && Py_REFCNT(old) == 1) {
        ((PyFloatObject *)old)->ob_fval += add;
        return 0;
    }
    PyObject *addend = PyFloat_FromDouble(add);
    PyObject *sum = addend != NULL ? PyNumber_Add(old, addend) : NULL;
    Py_XDECREF(addend);
    if (sum == NULL) {
        return -1;
    }
    *place = sum;
    Py_DECREF(old);
    return 0;
}

/* add_weights(samples, stack, on, off, contended, held=0.0): records.add_weights, with the
 * stack hashed once from its codes' remembered hashes */
static PyObject *
add_weights(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if ((nargs != 5 && nargs != 6) || !PyDict_CheckExact(args[0])) {
        PyErr_SetString(PyExc_TypeError, "add_weights(samples: dict, stack, on, off, contended, held=0.0)");
        return NULL;
    }
    PyObject *samples = args[0], *stack = args[1];
    double values[4] = {0.0, 0.0, 0.0, 0.0};
    for (Py_ssize_t index = 2; index < nargs; index++) {
        values[index - 2] = PyFloat_AsDouble(args[index]);
        if (values[index - 2] == -1.0 && PyErr_Occurred()) {
            return NULL;
        }
    }
    Py_hash_t hash = stack_hash(stack);
    if (hash == -1) {
        return NULL;
    }
    PyObject *weights = _PyDict_GetItem_KnownHash(samples, stack, hash);
    if (weights == NULL) {
        if (PyErr_Occurred()) {
            return NULL;
        }
        weights = PyList_New(4);
        if (weights == NULL) {
            return NULL;
        }
        for (Py_ssize_t index = 0; index < 4; index++) {
            PyObject *value = index + 2 < nargs ? Py_NewRef(args[index + 2]) : PyFloat_FromDouble(0.0);
            if (value == NULL) {
                Py_DECREF(weights);
                return NULL;
            }
            PyList_SET_ITEM(weights, index, value);
        }
        int set = _PyDict_SetItem_KnownHash(samples, stack, weights, hash);
        Py_DECREF(weights);
        if (set < 0) {
            return NULL;
        }
        Py_RETURN_NONE;
    }
    if (!PyList_CheckExact(weights) || PyList_GET_SIZE(weights) < 4) {
        PyErr_SetString(PyExc_TypeError, "a stack's weights are not a list of 4");
        return NULL;
    }
    Py_INCREF(weights);
    int failed = 0;
    for (Py_ssize_t index = 0; index < 4 && !failed; index++) {
        failed = add_to(weights, index, values[index]) < 0;
    }
    Py_DECREF(weights);
    if (failed) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* add_hot(hot, stack, seconds): hot[code] += seconds for each code object in the stack,
 * once each (a recursive function's frames count once), hashed from the remembered hashes */
static PyObject *
add_hot(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3 || !PyDict_CheckExact(args[0]) || !PyTuple_CheckExact(args[1])) {
        PyErr_SetString(PyExc_TypeError, "add_hot(hot: dict, stack: tuple, seconds)");
        return NULL;
    }
    PyObject *hot = args[0], *stack = args[1];
    double seconds = PyFloat_AsDouble(args[2]);
    if (seconds == -1.0 && PyErr_Occurred()) {
        return NULL;
    }
    Py_ssize_t size = PyTuple_GET_SIZE(stack);
    for (Py_ssize_t index = 0; index < size; index++) {
        PyObject *pair = PyTuple_GET_ITEM(stack, index);
        if (!PyTuple_CheckExact(pair) || PyTuple_GET_SIZE(pair) < 1) {
            PyErr_SetString(PyExc_TypeError, "a stack's frames are (code, line) pairs");
            return NULL;
        }
        PyObject *code = PyTuple_GET_ITEM(pair, 0);
        int seen = 0; /* stacks are short (MAX_DEPTH): a look back is cheaper than a set */
        for (Py_ssize_t before = 0; before < index && !seen; before++) {
            PyObject *earlier = PyTuple_GET_ITEM(stack, before);
            seen = PyTuple_GET_SIZE(earlier) >= 1 && PyTuple_GET_ITEM(earlier, 0) == code;
        }
        if (seen) {
            continue;
        }
        Py_hash_t hash = PyCode_Check(code) ? code_hash(code) : PyObject_Hash(code);
        if (hash == -1) {
            return NULL;
        }
        PyObject *total = _PyDict_GetItem_KnownHash(hot, code, hash);
        if (total == NULL && PyErr_Occurred()) {
            return NULL;
        }
        PyObject *sum;
        if (total == NULL) {
            sum = PyFloat_FromDouble(0.0 + seconds);
        }
        else {
            PyObject *addend = PyFloat_FromDouble(seconds);
            sum = addend != NULL ? PyNumber_Add(total, addend) : NULL;
            Py_XDECREF(addend);
        }
        int set = sum != NULL ? _PyDict_SetItem_KnownHash(hot, code, sum, hash) : -1;
        Py_XDECREF(sum);
        if (set < 0) {
            return NULL;
        }
    }
    Py_RETURN_NONE;
}

/* stack_hash(stack) -> hash(stack), from the codes' remembered hashes */
static PyObject *
stack_hash_py(PyObject *module, PyObject *stack)
{
    Py_hash_t hash = stack_hash(stack);
    return hash == -1 ? NULL : PyLong_FromSsize_t(hash);
}

/* -- the sampler's watch: sleep until a tick is due, without the GIL ------------------------ */

static double
monotonic_s(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + (double)now.tv_nsec * 1e-9;
}

static void
sleep_s(double seconds)
{
    struct timespec span = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
    while (nanosleep(&span, &span) != 0 && errno == EINTR) {
    }
}

/* wait_tick(interval, watch, hold, clock, not_before=0.0, seen=0.0, cpu_clock=None) -> False
 * (the interval passed), or (start, looked, cpu) once the greenlet holding the hub has held it
 * `hold` seconds: `start` is when its step started, `looked` the time of the look before the
 * one that found the hold and `cpu` the hub thread's CPU clock then (read from `cpu_clock`,
 * the hub thread's clock id; -1.0 without one).
 * Sleeps `interval` seconds in steps of `watch`, and after each step reads the switch hook's
 * hold clock (the capsule `clock`). The hold that started at `seen` (the one the last early look
 * found) is looked at again only from the monotonic time `not_before`, once an interval; any
 * other hold at once: a 10 ms hold that came right after a long one was otherwise never seen.
 * The CPU clock read at each look lets the sampler split the part of the step before its first
 * look into on- and off-CPU time from what the thread did since the look before, a few
 * milliseconds, not since the last steady tick, up to 50 ms before, with other steps in it.
 * All of it without the GIL: a sampler thread that woke at every step only to look would take
 * the GIL from a busy server each time. */
static PyObject *
wait_tick(PyObject *Py_UNUSED(module), PyObject *args)
{
    double interval, watch, hold, not_before = 0.0, seen = 0.0;
    PyObject *clock, *cpu_clock = Py_None;
    if (!PyArg_ParseTuple(args, "dddO|ddO:wait_tick", &interval, &watch, &hold, &clock, &not_before, &seen,
                          &cpu_clock)) {
        return NULL;
    }
    double *held_since = PyCapsule_GetPointer(clock, HOLD_CLOCK_CAPSULE);
    if (held_since == NULL) {
        return NULL;
    }
    if (!(watch > 0.0) || !(interval >= 0.0) || !(hold >= 0.0)) {
        PyErr_SetString(PyExc_ValueError, "wait_tick: watch must be positive, interval and hold not negative");
        return NULL;
    }
    int has_clock = cpu_clock != Py_None;
    long clock_id = 0;
    if (has_clock) {
        clock_id = PyLong_AsLong(cpu_clock);
        if (clock_id == -1 && PyErr_Occurred()) {
            return NULL;
        }
    }
    double early = 0.0, looked, looked_cpu;
    Py_BEGIN_ALLOW_THREADS
    looked = monotonic_s();
    looked_cpu = cpu_seconds(has_clock, clock_id);
    double end = looked + interval;
    for (;;) {
        double left = end - monotonic_s();
        if (left <= 0.0) {
            break;
        }
        sleep_s(left < watch ? left : watch);
        double now = monotonic_s(), since;
        if (now >= end) {
            break;
        }
        __atomic_load(held_since, &since, __ATOMIC_RELAXED);
        if (since > 0.0 && now - since >= hold && (since != seen || now >= not_before)) {
            early = since;
            break;
        }
        looked = now;
        looked_cpu = cpu_seconds(has_clock, clock_id);
    }
    Py_END_ALLOW_THREADS
    if (early > 0.0) {
        return Py_BuildValue("(ddd)", early, looked, looked_cpu);
    }
    Py_RETURN_FALSE;
}

static PyMethodDef methods[] = {
    {"wait_tick", (PyCFunction)wait_tick, METH_VARARGS,
     "wait_tick(interval, watch, hold, clock, not_before=0.0, seen=0.0, cpu_clock=None) -> (start of the hold, "
     "time of the look before, the hub thread's CPU then or -1.0) when a greenlet has held its hub for `hold` "
     "seconds (read every `watch` seconds from the switch hook's hold_clock capsule; the hold that started at "
     "`seen` not before the monotonic time `not_before`), False once `interval` seconds passed; without the GIL"},
    {"add_weights", (PyCFunction)(void (*)(void))add_weights, METH_FASTCALL,
     "add_weights(samples, stack, on, off, contended, held=0.0): records.add_weights, the stack hashed from "
     "its code objects' remembered hashes"},
    {"add_hot", (PyCFunction)(void (*)(void))add_hot, METH_FASTCALL,
     "add_hot(hot, stack, seconds): hot[code] = hot.get(code, 0.0) + seconds for each code object in the stack, "
     "once each, hashed from the code objects' remembered hashes"},
    {"stack_hash", (PyCFunction)stack_hash_py, METH_O,
     "stack_hash(stack) -> hash(stack), each code object's hash taken once and remembered in the code object"},
    {"line_of", (PyCFunction)(void (*)(void))line_of, METH_FASTCALL,
     "line_of(code, offset) -> the line a capture gives a frame of `code` whose last instruction is at "
     "`offset` (bytes): from the code's line array, which is made on first use"},
    {"capture_stacks", (PyCFunction)(void (*)(void))capture_stacks, METH_FASTCALL,
     "capture_stacks(skip, hooks, max_depth, known=None) -> {ident: (stack, hook frame or None, cpu, delay)}: "
     "each thread's current stack (as sys._current_frames() finds them), leaf first, as (code, line) pairs, "
     "but for the idents in `skip`; the hook frame is the first frame whose code is in `hooks` (None: no "
     "search); cpu and delay are read_clock and read_run_delay of the thread's ThreadInfo in `known` "
     "(None when it has none)"},
    {NULL},
};

static struct PyModuleDef module = {
    .m_base = PyModuleDef_HEAD_INIT,
    .m_name = "_stacks",
    .m_doc = "The sampler's stack capture in C (optional).",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC
PyInit__stacks(void)
{
    if ((s_clock = PyUnicode_InternFromString("clock")) == NULL ||
        (s_schedstat = PyUnicode_InternFromString("schedstat")) == NULL ||
        (s_co_lines = PyUnicode_InternFromString("co_lines")) == NULL) {
        return NULL;
    }
    if (line_extra < 0) { /* none left (an interpreter has 255): lines are decoded each time */
        line_extra = REQUEST_CODE_EXTRA(free_lines);
    }
    if (hash_extra < 0) { /* likewise: codes are hashed each time */
        hash_extra = REQUEST_CODE_EXTRA(NULL);
    }
    return PyModule_Create(&module);
}
