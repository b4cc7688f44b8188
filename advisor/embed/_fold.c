/* The route table's fold in C: RouteTable.fold's loop, routes._count for each request that
 * a loop's request meter left in `unfolded`, done on RouteAggregate's and LogHistogram's
 * slots in place.
 *
 * Optional: advisor.embed.routes uses it when it was built, and its Python loop otherwise.
 * A server's every request is folded: in Python, _count's twenty attribute reads and writes
 * cost more than the rest of the middleware's own work. The arithmetic is Python's, in the
 * same order (float additions, math.log2 for the histogram's bucket), so both give the same
 * numbers to the bit; an entry or aggregate that is not plain (a subclass, a slot unset, an
 * int too large for a C long) is counted by the `count` function given (routes._count_entry).
 * The caller holds the table's lock, as for _count.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>

#include "_slots.h" /* probes/_slots.h */

enum { A_COUNT, A_ERRORS, A_HISTOGRAM, A_MEASURED, A_LOOP_REQUESTS, A_WALL_S, A_RUNNING_S, A_IO_S, A_WAITING_S,
       A_SCHEDULING_S, A_FIELDS };
static const char *const aggregate_fields[A_FIELDS] = {"count", "errors", "histogram", "measured", "loop_requests",
                                                 "wall_s", "running_s", "io_s", "waiting_s", "scheduling_s"};
enum { H_COUNT, H_COUNTS, H_LARGEST, H_SMALLEST, H_FIELDS };
static const char *const histogram_fields[H_FIELDS] = {"count", "counts", "largest", "smallest"};

#define SLOT(object, offset) (*(PyObject **)((char *)(object) + (offset)))

typedef struct {
    Py_ssize_t aggregate[A_FIELDS], histogram[H_FIELDS];
    PyTypeObject *aggregate_type, *histogram_type;
    double smallest_s, per_doubling;
    Py_ssize_t buckets;
} Layout;

/* an exact int that fits a long with room for one more: 1 with its value, else 0 */
static int
small_int(PyObject *value, long *out)
{
    if (!PyLong_CheckExact(value)) {
        return 0;
    }
    int overflow;
    *out = PyLong_AsLongAndOverflow(value, &overflow);
    return !overflow && *out != -1 && *out < LONG_MAX;
}

/* slot = value (a new reference, stolen); -1 when value is NULL */
static int
put(PyObject **slot, PyObject *value)
{
    if (value == NULL) {
        return -1;
    }
    Py_SETREF(*slot, value);
    return 0;
}

/* one (aggregate, wall, running, io, waiting, scheduling, error) entry: 1 counted, 0 not
 * plain (the caller's Python counts it), -1 on error. Everything is checked before
 * anything is written. */
/* a request counted only, while tracing was paused (the aggregate itself, or the tuple of a
 * server error with None for its times): count, and errors */
static int
count_only(const Layout *layout, PyObject *aggregate, int error)
{
    const Py_ssize_t *a = layout->aggregate;
    long count, errors;
    if (Py_TYPE(aggregate) != layout->aggregate_type || SLOT(aggregate, a[A_COUNT]) == NULL ||
        SLOT(aggregate, a[A_ERRORS]) == NULL || !small_int(SLOT(aggregate, a[A_COUNT]), &count) ||
        !small_int(SLOT(aggregate, a[A_ERRORS]), &errors)) {
        return 0;
    }
    if (put(&SLOT(aggregate, a[A_COUNT]), PyLong_FromLong(count + 1)) < 0 ||
        (error && put(&SLOT(aggregate, a[A_ERRORS]), PyLong_FromLong(errors + 1)) < 0)) {
        return -1;
    }
    return 1;
}

static int
fold_one(const Layout *layout, PyObject *entry, double parts[4], PyObject **aggregate_out, double *wall_out,
         int *error_out)
{
    if (!PyTuple_CheckExact(entry)) {
        return count_only(layout, entry, 0);
    }
    if (PyTuple_GET_SIZE(entry) != 7) {
        return 0;
    }
    PyObject *aggregate = PyTuple_GET_ITEM(entry, 0), *error_obj = PyTuple_GET_ITEM(entry, 6);
    double wall_s;
    *aggregate_out = aggregate;
    if (PyTuple_GET_ITEM(entry, 1) == Py_None && (error_obj == Py_True || error_obj == Py_False)) {
        return count_only(layout, aggregate, error_obj == Py_True);
    }
    if (!PyFloat_CheckExact(PyTuple_GET_ITEM(entry, 1)) || (error_obj != Py_True && error_obj != Py_False)) {
        return 0;
    }
    wall_s = PyFloat_AS_DOUBLE(PyTuple_GET_ITEM(entry, 1));
    *wall_out = wall_s;
    *error_out = error_obj == Py_True;
    /* a request timed only (tracing was paused: see _switch_hook.c's request_end) has no parts */
    int measured_here = PyTuple_GET_ITEM(entry, 2) != Py_None;
    for (int index = 0; index < 4; index++) {
        PyObject *part = PyTuple_GET_ITEM(entry, 2 + index);
        if (!measured_here) {
            if (part != Py_None) {
                return 0;
            }
            parts[index] = 0.0;
            continue;
        }
        if (!PyFloat_CheckExact(part)) {
            return 0;
        }
        double value = PyFloat_AS_DOUBLE(part);
        parts[index] = value > 0.0 ? value : 0.0; /* what fold passes: x if x > 0.0 else 0.0 */
    }
    if (Py_TYPE(aggregate) != layout->aggregate_type) {
        return 0;
    }
    const Py_ssize_t *a = layout->aggregate, *h = layout->histogram;
    for (int field = 0; field < A_FIELDS; field++) {
        if (SLOT(aggregate, a[field]) == NULL) {
            return 0;
        }
    }
    PyObject *histogram = SLOT(aggregate, a[A_HISTOGRAM]);
    if (Py_TYPE(histogram) != layout->histogram_type) {
        return 0;
    }
    for (int field = 0; field < H_FIELDS; field++) {
        if (SLOT(histogram, h[field]) == NULL) {
            return 0;
        }
    }
    /* LogHistogram.bucket */
    Py_ssize_t index = 0;
    if (!(wall_s <= layout->smallest_s)) {
        double scaled = log2(wall_s / layout->smallest_s) * layout->per_doubling;
        if (!isfinite(scaled)) {
            return 0;
        }
        index = layout->buckets - 1;
        if (scaled + 1.0 < (double)index) {
            index = (Py_ssize_t)scaled + 1; /* int() truncates */
        }
    }
    PyObject *counts = SLOT(histogram, h[H_COUNTS]);
    long count, errors, hcount, bucket, measured, loop_requests;
    if (!PyList_CheckExact(counts) || PyList_GET_SIZE(counts) != layout->buckets ||
        !small_int(PyList_GET_ITEM(counts, index), &bucket) || !small_int(SLOT(aggregate, a[A_COUNT]), &count) ||
        !small_int(SLOT(aggregate, a[A_ERRORS]), &errors) || !small_int(SLOT(histogram, h[H_COUNT]), &hcount) ||
        !small_int(SLOT(aggregate, a[A_MEASURED]), &measured) ||
        !small_int(SLOT(aggregate, a[A_LOOP_REQUESTS]), &loop_requests) ||
        !PyFloat_CheckExact(SLOT(histogram, h[H_LARGEST])) || !PyFloat_CheckExact(SLOT(histogram, h[H_SMALLEST]))) {
        return 0;
    }
    static const int sums[5] = {A_WALL_S, A_RUNNING_S, A_IO_S, A_WAITING_S, A_SCHEDULING_S};
    for (int index = 0; index < 5; index++) {
        if (!PyFloat_CheckExact(SLOT(aggregate, a[sums[index]]))) {
            return 0;
        }
    }
    /* _count, in its order */
    if (put(&SLOT(aggregate, a[A_COUNT]), PyLong_FromLong(count + 1)) < 0 ||
        (*error_out && put(&SLOT(aggregate, a[A_ERRORS]), PyLong_FromLong(errors + 1)) < 0)) {
        return -1;
    }
    PyObject *bumped = PyLong_FromLong(bucket + 1);
    if (bumped == NULL) {
        return -1;
    }
    Py_SETREF(PyList_GET_ITEM(counts, index), bumped);
    if (put(&SLOT(histogram, h[H_COUNT]), PyLong_FromLong(hcount + 1)) < 0) {
        return -1;
    }
    if (wall_s > PyFloat_AS_DOUBLE(SLOT(histogram, h[H_LARGEST])) &&
        put(&SLOT(histogram, h[H_LARGEST]), PyFloat_FromDouble(wall_s)) < 0) {
        return -1;
    }
    if (wall_s < PyFloat_AS_DOUBLE(SLOT(histogram, h[H_SMALLEST])) &&
        put(&SLOT(histogram, h[H_SMALLEST]), PyFloat_FromDouble(wall_s)) < 0) {
        return -1;
    }
    if (!measured_here) {
        return 1;
    }
    if (put(&SLOT(aggregate, a[A_MEASURED]), PyLong_FromLong(measured + 1)) < 0 ||
        put(&SLOT(aggregate, a[A_LOOP_REQUESTS]), PyLong_FromLong(loop_requests + 1)) < 0) {
        return -1;
    }
    double total = parts[0] + parts[1] + parts[2] + parts[3];
    double adds[5] = {total, parts[0], parts[1], parts[2], parts[3]};
    for (int index = 0; index < 5; index++) {
        PyObject **slot = &SLOT(aggregate, a[sums[index]]);
        if (put(slot, PyFloat_FromDouble(PyFloat_AS_DOUBLE(*slot) + adds[index])) < 0) {
            return -1;
        }
    }
    return 1;
}

/* fold(batch, aggregate_type, histogram_type, smallest_s, buckets, per_doubling, count):
 * `count(entry)` counts an entry that is not plain, in Python */
static PyObject *
fold(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 7) {
        PyErr_Format(PyExc_TypeError, "fold takes 7 arguments (%zd given)", nargs);
        return NULL;
    }
    PyObject *batch = args[0], *count = args[6];
    if (!PyList_CheckExact(batch) || !PyType_Check(args[1]) || !PyType_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "fold(batch: list, aggregate type, histogram type, ...)");
        return NULL;
    }
    Layout layout;
    layout.aggregate_type = (PyTypeObject *)args[1];
    layout.histogram_type = (PyTypeObject *)args[2];
    layout.smallest_s = PyFloat_AsDouble(args[3]);
    layout.buckets = PyLong_AsSsize_t(args[4]);
    layout.per_doubling = PyFloat_AsDouble(args[5]);
    if (PyErr_Occurred()) {
        return NULL;
    }
    if (layout.buckets < 1) {
        PyErr_SetString(PyExc_ValueError, "fold: no buckets");
        return NULL;
    }
    int plain = find_slot_offsets(layout.aggregate_type, aggregate_fields, A_FIELDS, layout.aggregate);
    if (plain > 0) {
        plain = find_slot_offsets(layout.histogram_type, histogram_fields, H_FIELDS, layout.histogram);
    }
    if (plain < 0) {
        return NULL;
    }
    /* the batch is the caller's own list (taken out of `unfolded` under the lock) */
    for (Py_ssize_t item = 0; item < PyList_GET_SIZE(batch); item++) {
        PyObject *entry = Py_NewRef(PyList_GET_ITEM(batch, item));
        double parts[4], wall_s;
        PyObject *aggregate = NULL;
        int error = 0;
        int done = plain ? fold_one(&layout, entry, parts, &aggregate, &wall_s, &error) : 0;
        if (done == 0) { /* the Python way */
            PyObject *result = PyObject_CallOneArg(count, entry);
            done = result == NULL ? -1 : 1;
            Py_XDECREF(result);
        }
        Py_DECREF(entry);
        if (done < 0) {
            return NULL;
        }
    }
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"fold", (PyCFunction)(void (*)(void))fold, METH_FASTCALL,
     "RouteTable.fold's loop: routes._count for each (aggregate, wall, running, io, waiting, scheduling, error)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_fold", "The route table's fold in C.", -1, methods};

PyMODINIT_FUNC
PyInit__fold(void)
{
    return PyModule_Create(&module);
}
