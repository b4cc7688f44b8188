/* yappi's context callbacks in C: deep mode's id and name of the running greenlet, and the
 * name of the running thread.
 *
 * Optional: advisor.probes.deep installs them where this was built, and leaves yappi's own
 * (Python) callbacks otherwise. yappi calls a context's id callback, and its name callback
 * until it has a name, from inside its profile callback, before it reads its own tables.
 * Python code there can hand the GIL to another thread at any instruction; when that thread
 * stops yappi and clears its stats (a deep capture's calibration in a server's control
 * thread does, dozens of times), the profiled thread resumes into freed tables: a segfault
 * in yappi's hfind. These do what yappi's Python callbacks do, without running bytecode,
 * and with collections held off (a collection's finalizers would be Python code too).
 *
 * Also here, for deep mode's in-run speed samples: call_on_main, which has the main thread
 * call a function between two of its instructions (an interpreter's pending call), as the
 * program runs, without a signal handler in the program.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#if PY_VERSION_HEX < 0x030D0000 /* getattr(obj, name, <missing>): 1 found, 0 missing, -1 error */
#define PyObject_GetOptionalAttr _PyObject_LookupAttr
#endif

static PyObject *getcurrent;   /* greenlet.getcurrent */
static PyObject *next_id;      /* yappi.GREENLET_COUNTER: the ids yappi's own callback hands out */
static PyObject *threading;    /* the threading module: its _active table, read at each call */
static PyObject *get_ident;    /* the get_ident yappi's thread-name callback uses */
static PyObject *s_yappi_tid, *s_name, *s_active;

/* configure(getcurrent, next_id, threading, get_ident) */
static PyObject *
configure(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4 || !PyCallable_Check(args[0]) || !PyCallable_Check(args[1]) || !PyModule_Check(args[2]) ||
        !PyCallable_Check(args[3])) {
        PyErr_SetString(PyExc_TypeError, "configure(getcurrent, next_id, threading module, get_ident)");
        return NULL;
    }
    Py_XSETREF(getcurrent, Py_NewRef(args[0]));
    Py_XSETREF(next_id, Py_NewRef(args[1]));
    Py_XSETREF(threading, Py_NewRef(args[2]));
    Py_XSETREF(get_ident, Py_NewRef(args[3]));
    Py_RETURN_NONE;
}

/* the running greenlet's _yappi_tid, given it from next_id the first time (yappi's
 * _get_greenlet_id): a new reference, or NULL with an exception set */
static PyObject *
greenlet_id_held(void)
{
    PyObject *current = PyObject_CallNoArgs(getcurrent);
    if (current == NULL) {
        return NULL;
    }
    PyObject *id = NULL;
    if (PyObject_GetOptionalAttr(current, s_yappi_tid, &id) < 0) {
        Py_DECREF(current);
        return NULL;
    }
    if (id == Py_None) {
        Py_CLEAR(id);
    }
    if (id == NULL) {
        id = PyObject_CallNoArgs(next_id);
        if (id != NULL && PyObject_SetAttr(current, s_yappi_tid, id) < 0) {
            Py_CLEAR(id);
        }
    }
    Py_DECREF(current);
    return id;
}

/* type(obj).__name__: a new reference, or NULL with an exception set */
static PyObject *
type_name(PyObject *obj)
{
    return PyObject_GetAttr((PyObject *)Py_TYPE(obj), s_name);
}

/* the running greenlet's class name (yappi's _get_greenlet_name) */
static PyObject *
greenlet_name_held(void)
{
    PyObject *current = PyObject_CallNoArgs(getcurrent);
    PyObject *name = current != NULL ? type_name(current) : NULL;
    Py_XDECREF(current);
    return name;
}

/* threading._active[get_ident()].__class__.__name__, or None for a thread not there yet
 * (yappi's _ctx_name_callback): a new reference, or NULL with an exception set */
static PyObject *
thread_name_held(void)
{
    PyObject *active = PyObject_GetAttr(threading, s_active);
    if (active == NULL) {
        return NULL;
    }
    PyObject *ident = PyObject_CallNoArgs(get_ident);
    PyObject *thread = NULL;
    if (ident != NULL) {
        thread = PyObject_GetItem(active, ident);
        if (thread == NULL && PyErr_ExceptionMatches(PyExc_KeyError)) {
            PyErr_Clear();
            thread = Py_NewRef(Py_None);
        }
    }
    Py_XDECREF(ident);
    Py_DECREF(active);
    if (thread == NULL || thread == Py_None) {
        return thread;
    }
    PyObject *name = type_name(thread);
    Py_DECREF(thread);
    return name;
}

/* one of the above, configured, with collections held off */
static PyObject *
held(PyObject *(*work)(void))
{
    if (getcurrent == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "advisor's yappi context callbacks are not configured");
        return NULL;
    }
    int collecting = PyGC_Disable();
    PyObject *result = work();
    if (collecting) {
        PyGC_Enable();
    }
    return result;
}

static PyObject *
greenlet_id(PyObject *module, PyObject *Py_UNUSED(unused))
{
    return held(greenlet_id_held);
}

static PyObject *
greenlet_name(PyObject *module, PyObject *Py_UNUSED(unused))
{
    return held(greenlet_name_held);
}

static PyObject *
thread_name(PyObject *module, PyObject *Py_UNUSED(unused))
{
    return held(thread_name_held);
}

/* a pending call: the main thread, between two instructions, with the GIL */
static int
run_on_main(void *callable)
{
    PyObject *result = PyObject_CallNoArgs((PyObject *)callable);
    Py_DECREF((PyObject *)callable);
    if (result == NULL) {
        /* never into the program: the caller's function keeps its own failures */
        PyErr_Clear();
    }
    Py_XDECREF(result);
    return 0;
}

static PyObject *
call_on_main(PyObject *module, PyObject *callable)
{
    if (!PyCallable_Check(callable)) {
        PyErr_SetString(PyExc_TypeError, "call_on_main needs a callable");
        return NULL;
    }
    Py_INCREF(callable);
    if (Py_AddPendingCall(run_on_main, callable) < 0) { /* the queue is full */
        Py_DECREF(callable);
        Py_RETURN_FALSE;
    }
    Py_RETURN_TRUE;
}

static PyMethodDef methods[] = {
    {"configure", (PyCFunction)(void (*)(void))configure, METH_FASTCALL,
     "configure(greenlet.getcurrent, yappi.GREENLET_COUNTER, threading, yappi's get_ident)"},
    {"greenlet_id", greenlet_id, METH_NOARGS, "the running greenlet's yappi context id (_yappi_tid)"},
    {"greenlet_name", greenlet_name, METH_NOARGS, "the running greenlet's class name"},
    {"thread_name", thread_name, METH_NOARGS, "the running thread's class name, or None before threading has it"},
    {"call_on_main", call_on_main, METH_O,
     "call_on_main(function) -> whether the main thread will call function() between two of its instructions "
     "(False: the interpreter's queue of pending calls is full); what it raises is dropped"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_yappi_context",
                                    "yappi's context callbacks in C (no bytecode inside yappi's profile callback).",
                                    -1, methods};

PyMODINIT_FUNC
PyInit__yappi_context(void)
{
    if ((s_yappi_tid = PyUnicode_InternFromString("_yappi_tid")) == NULL ||
        (s_name = PyUnicode_InternFromString("__name__")) == NULL ||
        (s_active = PyUnicode_InternFromString("_active")) == NULL) {
        return NULL;
    }
    return PyModule_Create(&module);
}
