/* The greenlet probe's switch hook in C: the common path of GreenletProbe._switch.
 *
 * Optional: advisor.probes.greenlet_probe uses it when it was built, and its own Python
 * hook otherwise. It does what GreenletProbe._switch does, in the same order, for the
 * switches a server makes all the time (a known greenlet parks, a known one or the hub
 * resumes) and calls back into the probe's Python methods for everything else: a greenlet
 * seen for the first time, one that ended, its first step, a step the sampler saw, a code
 * object not classified yet, a gevent.sleep's due time, a new await site. The ledger's
 * bookkeeping (TaskLedger.step_started / step_ended, with split_gap and note_wait) is done
 * here too, on the UnitRecord's slots directly, so a common switch calls no Python code at
 * all (deep mode's yappi would profile every such call): task_ledger.py stays the reference,
 * and a record that is not a plain UnitRecord with plain values (a subclass, a field unset,
 * an int where a float is kept) goes to TaskLedger's functions themselves. A change to those
 * is a change here. An exception (an Exception) in here disables the probe, as the Python
 * hook does. Two caches keep a switch's stack walk cheap: each code object's role, kept in
 * the code object, and the await site of each (code, instruction) stack, kept by a hash of
 * it (the probe's own cache of sites needs an int object per frame to be looked up).
 * The request meter of advisor.embed reads the same books at a request's start and end:
 * its common case, a request in a traced greenlet, is here too (request_begin / request_end).
 * A greenlet's parent and state come from greenlet's C API (its capsule) where it loads, and
 * the probe's on/off flag is a member here that the probe sets: a switch looks up no attribute
 * but a parked greenlet's frame.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <frameobject.h>
#include <pythread.h>
#include <math.h>
#include <time.h>

#include "_slots.h"
#include "_code_extra.h"
#include "_hold_clock.h"

/* On 3.11, a parked greenlet's stack is walked on the interpreter's own frames: the public
 * way (PyFrame_GetBack) makes a frame object for each frame that has none, and reading a
 * local (gevent.sleep's seconds) builds the frame's whole locals dict. Where the struct is
 * another (3.12 on), the public functions. */
#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030C0000 && !defined(PYPY_VERSION)
#define INTERPRETER_FRAMES 1
#ifndef Py_BUILD_CORE
#define Py_BUILD_CORE 1
#define UNDEFINE_BUILD_CORE 1
#endif
#include <internal/pycore_frame.h>
#include <internal/pycore_code.h>
#ifdef UNDEFINE_BUILD_CORE
#undef Py_BUILD_CORE
#undef UNDEFINE_BUILD_CORE
#endif
#endif

#ifndef Py_T_DOUBLE /* before 3.12 (Py_T_OBJECT_EX and Py_READONLY: _slots.h) */
#include <structmember.h>
#define Py_T_DOUBLE T_DOUBLE
#define Py_T_BOOL T_BOOL
#define Py_T_ULONGLONG T_ULONGLONG
#endif

#define MAX_DEPTH 64

/* the UnitRecord slots the common path reads and writes, by their offsets */
enum {
    F_CREATED,
    F_DUE,
    F_FIRST_RUN,
    F_IO_S,
    F_KEY,
    F_KIND,
    F_LOCK_S,
    F_LONGEST_STEP_S,
    F_RUNNING_S,
    F_SCHEDULING_S,
    F_STEPS,
    F_SUSP_AT,
    F_TAG_SAMPLES,
    F_WAIT_KIND,
    F_WAIT_SITE,
    F_WAITING_S,
    F_WAITS,
    N_FIELDS
};
static const char *const field_names[N_FIELDS] = {
    "created",   "due",     "first_run", "io_s",        "key",       "kind",      "lock_s",    "longest_step_s",
    "running_s", "scheduling_s", "steps", "susp_at", "tag_samples", "wait_kind", "wait_site", "waiting_s",
    "waits",
};
/* one await site's numbers (task_ledger.note_wait): [suspensions, io_s, waiting_s, episodes,
 * longest episode, current episode, last callee token, lock_s] */
#define WAIT_NUMBERS 8
#define W_CALLEE 6
/* await sites' hashes, by the site's object (the probe's cache of sites hands out the same
 * tuple each time): hashing a site hashes its code objects, and so their constants */
#define SITE_HASHES 256

typedef struct {
    PyObject_HEAD
    PyObject *probe;        /* the GreenletProbe: flags and the rare paths */
    PyObject *hubs;         /* id(hub) -> (record, [segment start]) */
    PyObject *roles;        /* id(code) -> (role, code) */
    PyObject *sites;        /* (id(code), instruction, ...) -> frames */
    PyObject *clock;        /* the probe's clock */
    PyObject *thread_time;  /* time.thread_time */
    PyObject *step_started; /* TaskLedger.step_started */
    PyObject *step_ended;   /* TaskLedger.step_ended */
    long role_other, role_program, role_sleep, role_io;
    PyObject *timer, *io, *waiting; /* the ledger's wait kinds */
    long k_ready, k_timer, k_io, k_waiting, k_lock;
    PyTypeObject *unit_type; /* UnitRecord, whose slots are read and written in place */
    int fast;                /* its slots were all found (else: TaskLedger's functions) */
    Py_ssize_t offsets[N_FIELDS];
    PyObject *site_keys[SITE_HASHES]; /* held, so that no other object takes their address */
    Py_hash_t site_hashes[SITE_HASHES];
    PyObject *running;    /* the sampler's running table, NULL when there is no sampler */
    PyObject *live;       /* the ledger's live records: both tables are the probe's for its life */
    PyObject *site_index; /* hash of the program frames' (code, instruction) -> (sites' key, frames) */
    uintptr_t epoch;      /* this hook's mark on the roles it caches in code objects */
    double suspect_step_s; /* task_ledger.SUSPECT_STEP_S: a unit whose longest step is longer
                              has the CPU clock read at its steps' start */
    char active;           /* the probe's _active, set by the probe with it (a getattr a switch less) */
    unsigned long long switches;
    unsigned long long requests; /* request_begin's calls */
    PyObject *ident;             /* the thread ident last seen, as an int, and its value: */
    unsigned long ident_value;   /* `running` is keyed by this very object (see thread_ident) */
    PyObject *hub;               /* the hub last seen (held: its address stays its own) */
    PyObject *hub_entry;         /* and its entry in hubs */
    char perf_counter;           /* the clock is time.perf_counter: read here (clock_now) */
    PyObject *plain_seen;        /* the record plain_record last found plain, in this call of
                                    the hook (not held; see plain_record) */
    double held_since;           /* when the greenlet running now started its step, 0.0 while a
                                    hub or a thread's main greenlet runs: the sampler's watch
                                    reads it without the GIL (see hold_clock) */
    /* trace windows (advisor.embed.windows): while paused the hook is out of the thread's
     * greenlet trace, and a request is counted, not broken down; a suspension that began
     * before tracing resumed is not charged (what it waited for then was not seen) */
    char paused;
    double resumed_at; /* when tracing last resumed (-inf: never paused) */
    double change_at;  /* when request_begin hands a request to the agent, to pause or resume */
} Hook;

/* held_since, written for the sampler's thread, which reads it without the GIL */
static inline void
set_held_since(Hook *self, double value)
{
    __atomic_store(&self->held_since, &value, __ATOMIC_RELAXED);
}

/* greenlet's C API (its capsule): a greenlet's parent, and whether it started or is active,
 * without an attribute lookup each (gevent's Greenlet.dead is a property in Cython code) */
typedef PyObject *(*get_parent_f)(PyObject *);
typedef int (*flag_f)(PyObject *);
static PyTypeObject *greenlet_type = NULL;
static get_parent_f greenlet_parent = NULL;
static flag_f greenlet_started = NULL, greenlet_active = NULL;
#define GREENLET_TYPE_NUM 0
#define GREENLET_STARTED_NUM 9
#define GREENLET_ACTIVE_NUM 10
#define GREENLET_GET_PARENT_NUM 11

#define SLOT(record, field) (*(PyObject **)((char *)(record) + self->offsets[field]))

static int attr_true(PyObject *obj, PyObject *name);

static PyObject *s_active, *s_sampler, *s_running, *s_kind, *s_greenlet, *s_parent, *s_ledger, *s_live, *s_dead,
    *s_gr_frame, *s_steps, *s_running_s, *s_longest_step_s, *s_switch, *s_throw, *s_f_lasti, *s_close_slot,
    *s_finished, *s_first_step_ended, *s_classify_switch, *s_sleep_due, *s_site_frames, *s_start_new,
    *s_disable, *s_switch_py, *s_seconds;
static PyObject *one; /* the int 1 */

/* Each code object's role, once classified, is kept in the code object itself (its co_extra
 * slot, PEP 523): a frame's role is then one read, where a dict lookup needs an int made of
 * the code's address first. The value marks the hook that stored it, (epoch << 8) | (role + 1),
 * as two probes may classify the same code differently; 0 is "not cached". */
static Py_ssize_t code_extra = -1; /* the slot's index, -1 when none could be had */
static uintptr_t next_epoch = 1;
/* the site index is emptied when it holds this many sites (the probe's own cache has a cap too) */
#define SITE_INDEX_MAX 4096
/* one request_begin in this many answers None: the middleware's short way past the agent
 * (its gate) then takes the agent's way once, which checks the process id (a fork that ran
 * no at-fork handler) */
#define REQUEST_FALL_THROUGH 256

static int
Hook_traverse(Hook *self, visitproc visit, void *arg)
{
    Py_VISIT(self->probe);
    Py_VISIT(self->hubs);
    Py_VISIT(self->roles);
    Py_VISIT(self->sites);
    Py_VISIT(self->clock);
    Py_VISIT(self->thread_time);
    Py_VISIT(self->step_started);
    Py_VISIT(self->step_ended);
    Py_VISIT(self->timer);
    Py_VISIT(self->io);
    Py_VISIT(self->waiting);
    Py_VISIT(self->unit_type);
    Py_VISIT(self->site_index);
    Py_VISIT(self->running);
    Py_VISIT(self->live);
    Py_VISIT(self->ident);
    Py_VISIT(self->hub);
    Py_VISIT(self->hub_entry);
    for (int index = 0; index < SITE_HASHES; index++) {
        Py_VISIT(self->site_keys[index]);
    }
    return 0;
}

static int
Hook_clear(Hook *self)
{
    Py_CLEAR(self->probe);
    Py_CLEAR(self->hubs);
    Py_CLEAR(self->roles);
    Py_CLEAR(self->sites);
    Py_CLEAR(self->clock);
    Py_CLEAR(self->thread_time);
    Py_CLEAR(self->step_started);
    Py_CLEAR(self->step_ended);
    Py_CLEAR(self->timer);
    Py_CLEAR(self->io);
    Py_CLEAR(self->waiting);
    Py_CLEAR(self->unit_type);
    Py_CLEAR(self->site_index);
    Py_CLEAR(self->running);
    Py_CLEAR(self->live);
    Py_CLEAR(self->ident);
    Py_CLEAR(self->hub);
    Py_CLEAR(self->hub_entry);
    for (int index = 0; index < SITE_HASHES; index++) {
        Py_CLEAR(self->site_keys[index]);
    }
    self->fast = 0;
    return 0;
}

static void
Hook_dealloc(Hook *self)
{
    PyObject_GC_UnTrack(self);
    Hook_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* the wait kind's int value: 0, or -1 with an exception set */
static int
kind_value(PyObject *kind, long *out)
{
    *out = PyLong_AsLong(kind);
    return (*out == -1 && PyErr_Occurred()) ? -1 : 0;
}

static int
Hook_init(Hook *self, PyObject *args, PyObject *kwds)
{
    PyObject *probe, *hubs, *roles, *sites, *clock, *thread_time, *step_started, *step_ended, *timer, *io, *waiting,
        *ready, *lock;
    PyTypeObject *unit_type;
    long other, program, sleep, io_role;
    static char *names[] = {"probe",     "hubs",  "roles", "sites",   "clock", "thread_time", "step_started",
                            "step_ended", "role_other", "role_program", "role_sleep", "role_io", "timer", "io",
                            "waiting",   "ready", "lock",  "unit_type", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO!O!O!OOOOllllOOOOOO!", names, &probe, &PyDict_Type, &hubs,
                                     &PyDict_Type, &roles, &PyDict_Type, &sites, &clock, &thread_time,
                                     &step_started, &step_ended, &other, &program, &sleep, &io_role, &timer, &io,
                                     &waiting, &ready, &lock, &PyType_Type, &unit_type)) {
        return -1;
    }
    Hook_clear(self);
    if (kind_value(ready, &self->k_ready) < 0 || kind_value(timer, &self->k_timer) < 0 ||
        kind_value(io, &self->k_io) < 0 || kind_value(waiting, &self->k_waiting) < 0 ||
        kind_value(lock, &self->k_lock) < 0) {
        return -1;
    }
    self->probe = Py_NewRef(probe);
    self->hubs = Py_NewRef(hubs);
    self->roles = Py_NewRef(roles);
    self->sites = Py_NewRef(sites);
    self->clock = Py_NewRef(clock);
    self->perf_counter = 0;
#if defined(CLOCK_MONOTONIC) && defined(__linux__)
    PyObject *time_module = PyImport_ImportModule("time");
    if (time_module == NULL) {
        return -1;
    }
    PyObject *perf_counter = PyObject_GetAttrString(time_module, "perf_counter");
    Py_DECREF(time_module);
    if (perf_counter == NULL) {
        return -1;
    }
    self->perf_counter = perf_counter == clock;
    Py_DECREF(perf_counter);
#endif
    self->thread_time = Py_NewRef(thread_time);
    self->step_started = Py_NewRef(step_started);
    self->step_ended = Py_NewRef(step_ended);
    self->role_other = other;
    self->role_program = program;
    self->role_sleep = sleep;
    self->role_io = io_role;
    self->timer = Py_NewRef(timer);
    self->io = Py_NewRef(io);
    self->waiting = Py_NewRef(waiting);
    self->unit_type = (PyTypeObject *)Py_NewRef(unit_type);
    self->site_index = PyDict_New();
    if (self->site_index == NULL) {
        return -1;
    }
    /* read once: a switch then looks nothing up on the probe but its _active flag */
    PyObject *sampler = PyObject_GetAttr(probe, s_sampler);
    if (sampler == NULL) {
        return -1;
    }
    if (sampler != Py_None) {
        self->running = PyObject_GetAttr(sampler, s_running);
    }
    Py_DECREF(sampler);
    PyObject *ledger = PyObject_GetAttr(probe, s_ledger);
    if (ledger == NULL) {
        return -1;
    }
    self->live = PyObject_GetAttr(ledger, s_live);
    Py_DECREF(ledger);
    if (self->live == NULL || (self->running == NULL && PyErr_Occurred())) {
        return -1;
    }
    if (!PyDict_CheckExact(self->live) || (self->running != NULL && !PyDict_CheckExact(self->running))) {
        PyErr_SetString(PyExc_TypeError, "the sampler's running table and the ledger's live records must be dicts");
        return -1;
    }
    int active = attr_true(probe, s_active);
    if (active < 0) {
        return -1;
    }
    self->active = (char)active;
    self->epoch = next_epoch++;
    self->suspect_step_s = 0.002;
    self->switches = 0;
    self->paused = 0;
    self->resumed_at = -Py_HUGE_VAL;
    self->change_at = Py_HUGE_VAL;
    self->requests = 0;
    /* where each slot of the record type is (else TaskLedger's functions do the work) */
    int found = find_slot_offsets(self->unit_type, field_names, N_FIELDS, self->offsets);
    if (found < 0) {
        return -1;
    }
    self->fast = found;
    return 0;
}

/* getattr(obj, name) is true: 1, false: 0, error: -1 */
static int
attr_true(PyObject *obj, PyObject *name)
{
    PyObject *value = PyObject_GetAttr(obj, name);
    if (value == NULL) {
        return -1;
    }
    int truth = PyObject_IsTrue(value);
    Py_DECREF(value);
    return truth;
}

/* getattr(obj, name) is None: 1, not None: 0, error: -1 */
static int
attr_none(PyObject *obj, PyObject *name)
{
    PyObject *value = PyObject_GetAttr(obj, name);
    if (value == NULL) {
        return -1;
    }
    int none = value == Py_None;
    Py_DECREF(value);
    return none;
}

static int
is_greenlet(PyObject *obj)
{
    return greenlet_type != NULL && PyObject_TypeCheck(obj, greenlet_type);
}

/* glet.parent is None (a thread's main greenlet): 1, not None: 0, error: -1 */
static int
no_parent_of(PyObject *glet)
{
    if (!is_greenlet(glet)) {
        return attr_none(glet, s_parent);
    }
    PyObject *parent = greenlet_parent(glet);
    if (parent == NULL) {
        return PyErr_Occurred() ? -1 : 1;
    }
    Py_DECREF(parent);
    return 0;
}

/* glet.dead, for a greenlet that was running: it started, and is no longer active (what
 * greenlet's own `dead` says; gevent's adds cases of a greenlet killed before it ran) */
static int
dead_after_running(PyObject *glet)
{
    if (!is_greenlet(glet)) {
        return attr_true(glet, s_dead);
    }
    return greenlet_started(glet) && !greenlet_active(glet);
}

static int
attr_double(PyObject *obj, PyObject *name, double *out)
{
    PyObject *value = PyObject_GetAttr(obj, name);
    if (value == NULL) {
        return -1;
    }
    *out = PyFloat_AsDouble(value);
    Py_DECREF(value);
    return (*out == -1.0 && PyErr_Occurred()) ? -1 : 0;
}

/* a call whose result is dropped: 0, or -1 on error */
static int
call_drop(PyObject *result)
{
    if (result == NULL) {
        return -1;
    }
    Py_DECREF(result);
    return 0;
}

/* -- the ledger's bookkeeping: TaskLedger.step_started / step_ended, split_gap, note_wait -- */

/* a plain UnitRecord, every slot the ledger touches set: its slots can be used in place.
 * A switch asks this of the same two or three records ~5 times, and each answer read 17
 * slots (~1k instructions a request of the example server): the last record found plain is
 * remembered until the hook's next call (plain_seen is cleared as each begins). Within one
 * call, a slot is never deleted (the probe's code only assigns them), and should the record
 * be freed and a new one take its address, that one is a UnitRecord (the type is checked
 * each time) whose __init__ set every slot: plain too. */
static int
plain_record(Hook *self, PyObject *record)
{
    if (!self->fast || Py_TYPE(record) != self->unit_type) {
        return 0;
    }
    if (record == self->plain_seen) {
        return 1;
    }
    for (int field = 0; field < N_FIELDS; field++) {
        if (SLOT(record, field) == NULL) {
            return 0;
        }
    }
    self->plain_seen = record;
    return 1;
}

/* a float the ledger keeps (an exact float): 1 with its value, else 0 */
static int
plain_double(PyObject *value, double *out)
{
    if (!PyFloat_CheckExact(value)) {
        return 0;
    }
    *out = PyFloat_AS_DOUBLE(value);
    return 1;
}

/* record.<field> = value (a new reference, stolen) */
static void
set_slot(Hook *self, PyObject *record, int field, PyObject *value)
{
    Py_XSETREF(SLOT(record, field), value);
}

/* *place = value as a float: the float there is written over when `place` holds the only
 * reference to it (no one else can see it change, as a new float would not have been seen
 * either), else a new float takes its place. A switch made and freed ~8 floats this way
 * for the books of its two steps. 0, or -1 with an exception set. */
static int
store_double(PyObject **place, double value)
{
    PyObject *old = *place;
    if (old != NULL && PyFloat_CheckExact(old) && Py_REFCNT(old) == 1) {
        ((PyFloatObject *)old)->ob_fval = value;
        return 0;
    }
    PyObject *number = PyFloat_FromDouble(value);
    if (number == NULL) {
        return -1;
    }
    *place = number;
    Py_XDECREF(old);
    return 0;
}

/* record.<field> = old + add (Python's float addition: the same double); 0, or -1 */
static int
add_slot(Hook *self, PyObject *record, int field, double old, double add)
{
    if (add == 0.0 && !signbit(old)) {
        return 0; /* x + 0.0 is x, but for -0.0 */
    }
    return store_double(&SLOT(record, field), old + add);
}

/* numbers[index] = value (a float); 0, or -1 */
static int
set_number(PyObject *numbers, Py_ssize_t index, double value)
{
    return store_double(&((PyListObject *)numbers)->ob_item[index], value);
}

/* an await site's numbers as note_wait keeps them: a list of 8, floats but the callee */
static int
plain_numbers(PyObject *numbers)
{
    if (!PyList_CheckExact(numbers) || PyList_GET_SIZE(numbers) != WAIT_NUMBERS) {
        return 0;
    }
    for (Py_ssize_t index = 0; index < WAIT_NUMBERS; index++) {
        if (index != W_CALLEE && !PyFloat_CheckExact(PyList_GET_ITEM(numbers, index))) {
            return 0;
        }
    }
    return 1;
}

/* hash(site), remembered for the last sites seen: -1 with an exception set on error */
static Py_hash_t
site_hash(Hook *self, PyObject *site)
{
    size_t slot = ((size_t)site >> 4) % SITE_HASHES;
    if (self->site_keys[slot] == site) {
        return self->site_hashes[slot];
    }
    Py_hash_t hash = PyObject_Hash(site);
    if (hash == -1) {
        return -1;
    }
    if (PyTuple_CheckExact(site)) { /* immutable: its hash never changes */
        Py_XSETREF(self->site_keys[slot], Py_NewRef(site));
        self->site_hashes[slot] = hash;
    }
    return hash;
}

/* waits.get(site) (borrowed, NULL if absent), with the site's known hash */
static PyObject *
get_site(PyObject *waits, PyObject *site, Py_hash_t hash)
{
#if PY_VERSION_HEX < 0x030D0000
    return _PyDict_GetItem_KnownHash(waits, site, hash);
#else
    (void)hash;
    return PyDict_GetItemWithError(waits, site);
#endif
}

/* task_ledger.note_wait on checked numbers (a list of 8, or NULL for a new site): 0, or -1 */
static int
note_wait(Hook *self, PyObject *record, PyObject *waits, PyObject *numbers, PyObject *site, Py_hash_t hash,
          PyObject *callee, double io, double waiting, int lock)
{
    if (waits == Py_None) {
        waits = PyDict_New();
        if (waits == NULL) {
            return -1;
        }
        set_slot(self, record, F_WAITS, waits);
    }
    if (numbers == NULL) {
        numbers = PyList_New(WAIT_NUMBERS);
        if (numbers == NULL) {
            return -1;
        }
        for (Py_ssize_t index = 0; index < WAIT_NUMBERS; index++) {
            if (index == W_CALLEE) {
                PyList_SET_ITEM(numbers, index, Py_NewRef(Py_None));
            }
            else if (set_number(numbers, index, 0.0) < 0) {
                Py_DECREF(numbers);
                return -1;
            }
        }
#if PY_VERSION_HEX < 0x030D0000
        int set = _PyDict_SetItem_KnownHash(waits, site, numbers, hash);
#else
        int set = PyDict_SetItem(waits, site, numbers);
#endif
        Py_DECREF(numbers);
        if (set < 0) {
            return -1;
        }
        numbers = get_site(waits, site, hash);
        if (numbers == NULL || !plain_numbers(numbers)) {
            if (!PyErr_Occurred()) {
                PyErr_SetString(PyExc_RuntimeError, "an await site's numbers went missing");
            }
            return -1;
        }
    }
    Py_INCREF(numbers);
    int status = -1;
    double spent = io + waiting;
#define NUMBER(index) PyFloat_AS_DOUBLE(PyList_GET_ITEM(numbers, index))
    if (set_number(numbers, 0, NUMBER(0) + 1.0) < 0 || set_number(numbers, 1, NUMBER(1) + io) < 0 ||
        set_number(numbers, 2, NUMBER(2) + waiting) < 0 || (lock && set_number(numbers, 7, NUMBER(7) + waiting) < 0)) {
        goto done;
    }
    int new_episode = callee == Py_None;
    if (!new_episode) {
        PyObject *last = Py_NewRef(PyList_GET_ITEM(numbers, W_CALLEE));
        PyObject *differs = PyObject_RichCompare(callee, last, Py_NE);
        Py_DECREF(last);
        if (differs == NULL) {
            goto done;
        }
        new_episode = PyObject_IsTrue(differs);
        Py_DECREF(differs);
        if (new_episode < 0) {
            goto done;
        }
        if (!plain_numbers(numbers)) { /* what a comparison's Python code could do */
            PyErr_SetString(PyExc_RuntimeError, "an await site's numbers changed under the hook");
            goto done;
        }
    }
    if (new_episode) {
        if (set_number(numbers, 3, NUMBER(3) + 1.0) < 0 || set_number(numbers, 5, 0.0) < 0) {
            goto done;
        }
        PyObject *old = PyList_GET_ITEM(numbers, W_CALLEE);
        PyList_SET_ITEM(numbers, W_CALLEE, Py_NewRef(callee));
        Py_DECREF(old);
    }
    if (set_number(numbers, 5, NUMBER(5) + spent) < 0) {
        goto done;
    }
    if (NUMBER(5) > NUMBER(4)) {
        PyObject *old = PyList_GET_ITEM(numbers, 4);
        PyList_SET_ITEM(numbers, 4, Py_NewRef(PyList_GET_ITEM(numbers, 5)));
        Py_DECREF(old);
    }
#undef NUMBER
    status = 0;
done:
    Py_DECREF(numbers);
    return status;
}

/* TaskLedger.step_started(record, t0) on a plain record: 1 done, 0 not a plain record (the
 * caller calls TaskLedger's), -1 on error. Everything is checked before anything is written. */
static int
ledger_step_started(Hook *self, PyObject *record, PyObject *t0_obj)
{
    double t0;
    if (!plain_record(self, record) || !plain_double(t0_obj, &t0)) {
        return 0;
    }
    if (SLOT(record, F_FIRST_RUN) == Py_None) {
        /* from creation to the first step the unit was ready but not running */
        double created, scheduling_s;
        if (!plain_double(SLOT(record, F_CREATED), &created) ||
            !plain_double(SLOT(record, F_SCHEDULING_S), &scheduling_s)) {
            return 0;
        }
        /* (a unit created while tracing was paused: ready since tracing resumed, as far as seen) */
        double ready = t0 - (created > self->resumed_at ? created : self->resumed_at);
        set_slot(self, record, F_FIRST_RUN, Py_NewRef(t0_obj));
        return add_slot(self, record, F_SCHEDULING_S, scheduling_s, ready > 0.0 ? ready : 0.0) < 0 ? -1 : 1;
    }
    PyObject *susp_at_obj = SLOT(record, F_SUSP_AT);
    if (susp_at_obj == Py_None) {
        return 1;
    }
    double suspended_at, due, io_s, waiting_s, scheduling_s, lock_s;
    if (plain_double(susp_at_obj, &suspended_at) && suspended_at < self->resumed_at) {
        /* suspended before tracing resumed: it may have run and waited for anything since */
        set_slot(self, record, F_SUSP_AT, Py_NewRef(Py_None));
        set_slot(self, record, F_WAIT_SITE, Py_NewRef(Py_None));
        return 1;
    }
    if (!plain_double(susp_at_obj, &suspended_at) || !plain_double(SLOT(record, F_DUE), &due) ||
        !plain_double(SLOT(record, F_IO_S), &io_s) || !plain_double(SLOT(record, F_WAITING_S), &waiting_s) ||
        !plain_double(SLOT(record, F_SCHEDULING_S), &scheduling_s) ||
        !plain_double(SLOT(record, F_LOCK_S), &lock_s) || !PyLong_CheckExact(SLOT(record, F_WAIT_KIND))) {
        return 0;
    }
    int overflow;
    long kind = PyLong_AsLongAndOverflow(SLOT(record, F_WAIT_KIND), &overflow);
    if (overflow) {
        return 0;
    }
    /* the await site, checked and looked up before anything is written */
    PyObject *where = SLOT(record, F_WAIT_SITE), *waits = SLOT(record, F_WAITS), *numbers = NULL;
    Py_hash_t hash = -1;
    if (where != Py_None) {
        if (!PyTuple_CheckExact(where) || PyTuple_GET_SIZE(where) != 2 || (waits != Py_None && !PyDict_CheckExact(waits))) {
            return 0;
        }
        hash = site_hash(self, PyTuple_GET_ITEM(where, 0));
        if (hash == -1) {
            return -1;
        }
        if (waits != Py_None) {
            numbers = get_site(waits, PyTuple_GET_ITEM(where, 0), hash);
            if (numbers == NULL && PyErr_Occurred()) {
                return -1;
            }
            if (numbers != NULL && !plain_numbers(numbers)) {
                return 0;
            }
        }
    }
    /* split_gap: (io, waiting, scheduling) seconds of the suspension, by what it waited for */
    double gap = t0 - suspended_at, io = 0.0, waiting = 0.0, scheduling = 0.0;
    if (!(gap <= 0.0)) {
        if (kind == self->k_io) {
            io = gap;
        }
        else if (kind == self->k_waiting || kind == self->k_lock) {
            waiting = gap;
        }
        else if (kind == self->k_ready) {
            scheduling = gap;
        }
        else { /* a timer: waiting until the due time, then ready but not yet running */
            double until_due = due - suspended_at;
            until_due = until_due > 0.0 ? until_due : 0.0; /* max(0.0, ...) */
            waiting = until_due < gap ? until_due : gap;   /* min(gap, ...) */
            scheduling = gap - waiting;
        }
    }
    int lock = kind == self->k_lock;
    if (add_slot(self, record, F_IO_S, io_s, io) < 0 || add_slot(self, record, F_WAITING_S, waiting_s, waiting) < 0 ||
        add_slot(self, record, F_SCHEDULING_S, scheduling_s, scheduling) < 0 ||
        (lock && add_slot(self, record, F_LOCK_S, lock_s, waiting) < 0)) {
        return -1;
    }
    set_slot(self, record, F_SUSP_AT, Py_NewRef(Py_None));
    if (where != Py_None) {
        Py_INCREF(where);
        Py_XINCREF(numbers);
        int noted = note_wait(self, record, waits, numbers, PyTuple_GET_ITEM(where, 0), hash,
                              PyTuple_GET_ITEM(where, 1), io, waiting, lock);
        Py_XDECREF(numbers);
        Py_DECREF(where);
        if (noted < 0) {
            return -1;
        }
        set_slot(self, record, F_WAIT_SITE, Py_NewRef(Py_None));
    }
    return 1;
}

/* record.<field> (a new reference): from its slot when plain, else getattr */
static PyObject *
get_field(Hook *self, PyObject *record, int field, PyObject *name)
{
    if (plain_record(self, record)) {
        return Py_NewRef(SLOT(record, field));
    }
    return PyObject_GetAttr(record, name);
}

/* TaskLedger.step_started, here or (for a record that is not plain) in Python: 0, or -1 */
static int
step_started(Hook *self, PyObject *record, PyObject *t0_obj)
{
    int done = ledger_step_started(self, record, t0_obj);
    if (done != 0) {
        return done < 0 ? -1 : 0;
    }
    PyObject *call[2] = {record, t0_obj};
    return call_drop(PyObject_Vectorcall(self->step_started, call, 2, NULL));
}

/* TaskLedger.step_ended(record, t0, t1, kind, due, site), here or in Python: 0, or -1 */
static int
step_ended(Hook *self, PyObject *record, PyObject *t0_obj, PyObject *t1_obj, PyObject *kind, PyObject *due,
           PyObject *site)
{
    double t0, t1, running_s, longest;
    if (plain_record(self, record) && plain_double(t0_obj, &t0) && plain_double(t1_obj, &t1) &&
        plain_double(SLOT(record, F_RUNNING_S), &running_s) &&
        plain_double(SLOT(record, F_LONGEST_STEP_S), &longest) && PyLong_CheckExact(SLOT(record, F_STEPS))) {
        double took = t1 - t0;
        PyObject *steps = PyNumber_Add(SLOT(record, F_STEPS), one);
        if (steps == NULL) {
            return -1;
        }
        set_slot(self, record, F_STEPS, steps);
        if ((took != 0.0 || signbit(running_s)) && store_double(&SLOT(record, F_RUNNING_S), running_s + took) < 0) {
            return -1;
        }
        if (took > longest && store_double(&SLOT(record, F_LONGEST_STEP_S), took) < 0) {
            return -1;
        }
        set_slot(self, record, F_SUSP_AT, Py_NewRef(t1_obj));
        set_slot(self, record, F_WAIT_KIND, Py_NewRef(kind));
        set_slot(self, record, F_DUE, Py_NewRef(due));
        set_slot(self, record, F_WAIT_SITE, Py_NewRef(site));
        return 0;
    }
    PyObject *call[6] = {record, t0_obj, t1_obj, kind, due, site};
    return call_drop(PyObject_Vectorcall(self->step_ended, call, 6, NULL));
}

/* seconds (truthy) as a float: 1 with *out set, 0 when falsy, -1 on error */
static int
sleep_seconds(PyObject *value, double *out)
{
    Py_INCREF(value);
    int truth = PyObject_IsTrue(value);
    if (truth > 0) {
        PyObject *number = PyNumber_Float(value);
        if (number != NULL) {
            *out = PyFloat_AS_DOUBLE(number);
            Py_DECREF(number);
        }
        else {
            truth = -1;
        }
    }
    Py_DECREF(value);
    return truth;
}

#ifdef INTERPRETER_FRAMES
/* sleep_due on an interpreter frame: its `seconds` read where the frame keeps it (a cell's
 * content for a cell); a new reference, or NULL with an exception set */
static PyObject *
frame_sleep_due(_PyInterpreterFrame *frame, double now)
{
    PyCodeObject *code = frame->f_code;
    PyObject *names = code->co_localsplusnames;
    double seconds = 0.0;
    for (Py_ssize_t index = 0; index < PyTuple_GET_SIZE(names); index++) {
        PyObject *name = PyTuple_GET_ITEM(names, index);
        if (name != s_seconds && !(PyUnicode_Check(name) && PyUnicode_Compare(name, s_seconds) == 0)) {
            continue;
        }
        PyObject *value = frame->localsplus[index];
        if (value != NULL && (_PyLocals_GetKind(code->co_localspluskinds, index) & (CO_FAST_CELL | CO_FAST_FREE))) {
            value = PyCell_Check(value) ? PyCell_GET(value) : value;
        }
        if (value != NULL && sleep_seconds(value, &seconds) < 0) {
            return NULL;
        }
        break;
    }
    return PyFloat_FromDouble(now + (seconds > 0.0 ? seconds : 0.0));
}

/* the frame a walk goes to after `frame`, as PyFrame_GetBack would (no frame object made) */
static _PyInterpreterFrame *
frame_back(_PyInterpreterFrame *frame)
{
    PyFrameObject *object = frame->frame_obj;
    if (object != NULL && object->f_back != NULL) {
        return object->f_back->f_frame;
    }
    _PyInterpreterFrame *previous = frame->previous;
    while (previous != NULL && _PyFrame_IsIncomplete(previous)) {
        previous = previous->previous;
    }
    return previous;
}

/* the address of `target`'s frame object, made (as PyFrame_GetBack makes them) for it and
 * the frames between it and the nearest frame inside it that has one: an episode's token is
 * the callee's frame object's address, as the probe's Python has it. NULL with an exception
 * set on error, or with none when `target` is not below `top`. */
static void *
frame_object_address(PyFrameObject *top, _PyInterpreterFrame *target)
{
    if (target->frame_obj != NULL) {
        return target->frame_obj;
    }
    PyFrameObject *nearest = top;
    _PyInterpreterFrame *walked = top->f_frame;
    while (walked != NULL && walked != target) {
        if (walked->frame_obj != NULL) {
            nearest = walked->frame_obj;
        }
        walked = frame_back(walked);
    }
    if (walked == NULL) {
        return NULL;
    }
    PyFrameObject *current = (PyFrameObject *)Py_NewRef(nearest);
    while (current != NULL && current->f_frame != target) {
        PyFrameObject *back = PyFrame_GetBack(current);
        Py_DECREF(current);
        current = back;
    }
    if (current == NULL) {
        return NULL;
    }
    Py_DECREF(current); /* the interpreter's frame keeps it while the call lasts */
    return current;
}
#endif

#ifndef INTERPRETER_FRAMES
/* GreenletProbe._sleep_due(frame, now): now + max(0.0, float(seconds or 0)), seconds
 * the frame's local (0 when it has none); the Python method where the locals are no dict */
static PyObject *
sleep_due(Hook *self, PyObject *frame, PyObject *now_obj, double now)
{
#if PY_VERSION_HEX >= 0x030B0000
    PyObject *locals = PyFrame_GetLocals((PyFrameObject *)frame);
    if (locals == NULL) {
        return NULL;
    }
    if (!PyDict_Check(locals)) {
        Py_DECREF(locals);
        return PyObject_CallMethodObjArgs(self->probe, s_sleep_due, frame, now_obj, NULL);
    }
    double seconds = 0.0;
    PyObject *value = PyDict_GetItemWithError(locals, s_seconds);
    if (value == NULL && PyErr_Occurred()) {
        Py_DECREF(locals);
        return NULL;
    }
    if (value != NULL && sleep_seconds(value, &seconds) < 0) {
        Py_DECREF(locals);
        return NULL;
    }
    Py_DECREF(locals);
    return PyFloat_FromDouble(now + (seconds > 0.0 ? seconds : 0.0));
#else
    return PyObject_CallMethodObjArgs(self->probe, s_sleep_due, frame, now_obj, NULL);
#endif
}
#endif

/* the role this hook cached in `code`: 1 with *role set, 0 when none is cached */
static int
cached_role(Hook *self, PyCodeObject *code, long *role)
{
    void *extra = NULL;
    if (code_extra < 0 || GET_CODE_EXTRA((PyObject *)code, code_extra, &extra) < 0) {
        PyErr_Clear();
        return 0;
    }
    uintptr_t value = (uintptr_t)extra;
    if (value == 0 || (value >> 8) != self->epoch) {
        return 0;
    }
    *role = (long)(value & 0xFF) - 1;
    return 1;
}

static void
cache_role(Hook *self, PyCodeObject *code, long role)
{
    if (code_extra < 0 || role < 0 || role > 254) {
        return;
    }
    if (SET_CODE_EXTRA((PyObject *)code, code_extra, (void *)((self->epoch << 8) | (uintptr_t)(role + 1))) < 0) {
        PyErr_Clear();
    }
}

/* a hash of the program frames' (code, instruction) pairs, for the site index */
static unsigned long long
positions_hash(void *const *codes, const int *instructions, Py_ssize_t count)
{
    unsigned long long hash = 0xcbf29ce484222325ULL ^ (unsigned long long)count;
    for (Py_ssize_t i = 0; i < count; i++) {
        hash = (hash ^ (unsigned long long)(uintptr_t)codes[i]) * 0x100000001b3ULL;
        hash = (hash ^ (unsigned long long)(unsigned int)instructions[i]) * 0x100000001b3ULL;
        hash ^= hash >> 29;
    }
    return hash;
}

/* whether a sites' key, (id(code), instruction, ...) innermost first, is these positions */
static int
key_matches(PyObject *key, void *const *codes, const int *instructions, Py_ssize_t count)
{
    if (!PyTuple_CheckExact(key) || PyTuple_GET_SIZE(key) != 2 * count) {
        return 0;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *code_id = PyTuple_GET_ITEM(key, 2 * i), *instruction = PyTuple_GET_ITEM(key, 2 * i + 1);
        if (!PyLong_CheckExact(code_id) || !PyLong_CheckExact(instruction)) {
            return 0;
        }
        void *address = PyLong_AsVoidPtr(code_id);
        long at = PyLong_AsLong(instruction);
        if (PyErr_Occurred()) {
            PyErr_Clear();
            return 0;
        }
        if (address != codes[i] || at != instructions[i]) {
            return 0;
        }
    }
    return 1;
}

#ifndef INTERPRETER_FRAMES
/* the instruction a frame is at (what frame.f_lasti says): 0, or -1 with an exception set */
static int
frame_instruction(PyFrameObject *frame, int *out)
{
#if PY_VERSION_HEX >= 0x030B0000
    *out = PyFrame_GetLasti(frame);
    return 0;
#else
    PyObject *lasti = PyObject_GetAttr((PyObject *)frame, s_f_lasti);
    if (lasti == NULL) {
        return -1;
    }
    long value = PyLong_AsLong(lasti);
    Py_DECREF(lasti);
    if (value == -1 && PyErr_Occurred()) {
        return -1;
    }
    *out = (int)value;
    return 0;
#endif
}
#endif

/* the frames of an await site, from the site index, the probe's cache of sites, or (new)
 * its _site_frames: a new reference, or NULL with an exception set */
static PyObject *
site_frames(Hook *self, void *const *codes, const int *instructions, PyObject *const *code_objects, Py_ssize_t count)
{
    PyObject *hash = PyLong_FromUnsignedLongLong(positions_hash(codes, instructions, count));
    if (hash == NULL) {
        return NULL;
    }
    PyObject *entry = PyDict_GetItemWithError(self->site_index, hash);
    if (entry != NULL && PyTuple_CheckExact(entry) && PyTuple_GET_SIZE(entry) == 2 &&
        key_matches(PyTuple_GET_ITEM(entry, 0), codes, instructions, count)) {
        Py_DECREF(hash);
        return Py_NewRef(PyTuple_GET_ITEM(entry, 1));
    }
    if (PyErr_Occurred()) {
        Py_DECREF(hash);
        return NULL;
    }
    /* the probe's key, (id(code), instruction, ...), as GreenletProbe.classify_switch makes it */
    PyObject *key = PyTuple_New(2 * count);
    if (key == NULL) {
        Py_DECREF(hash);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *code_id = PyLong_FromVoidPtr(codes[i]), *instruction = PyLong_FromLong(instructions[i]);
        if (code_id == NULL || instruction == NULL) {
            Py_XDECREF(code_id);
            Py_XDECREF(instruction);
            Py_DECREF(key);
            Py_DECREF(hash);
            return NULL;
        }
        PyTuple_SET_ITEM(key, 2 * i, code_id);
        PyTuple_SET_ITEM(key, 2 * i + 1, instruction);
    }
    PyObject *frames = PyDict_GetItemWithError(self->sites, key);
    if (frames != NULL) {
        Py_INCREF(frames);
    }
    else if (!PyErr_Occurred()) {
        PyObject *code_list = PyList_New(count);
        if (code_list != NULL) {
            for (Py_ssize_t i = 0; i < count; i++) {
                PyList_SET_ITEM(code_list, i, Py_NewRef(code_objects[i]));
            }
            frames = PyObject_CallMethodObjArgs(self->probe, s_site_frames, key, code_list, NULL);
            Py_DECREF(code_list);
        }
    }
    if (frames != NULL) {
        /* the entry holds the frames, and so their code objects: the ids in its key stay theirs */
        PyObject *value = PyTuple_Pack(2, key, frames);
        int stored = value == NULL ? -1 : 0;
        if (stored == 0 && PyDict_GET_SIZE(self->site_index) >= SITE_INDEX_MAX) {
            PyDict_Clear(self->site_index);
        }
        if (stored == 0) {
            stored = PyDict_SetItem(self->site_index, hash, value);
        }
        Py_XDECREF(value);
        if (stored < 0) {
            Py_CLEAR(frames);
        }
    }
    Py_DECREF(key);
    Py_DECREF(hash);
    return frames;
}

/* the role of `code` (cached in it, else from the probe's table): 1 with *role set, 0 for a
 * code object not classified yet (the probe's Python does it), -1 on error */
static int
code_role(Hook *self, PyCodeObject *code, long *role)
{
    if (cached_role(self, code, role)) {
        return 1;
    }
    PyObject *code_id = PyLong_FromVoidPtr(code);
    if (code_id == NULL) {
        return -1;
    }
    PyObject *entry = PyDict_GetItemWithError(self->roles, code_id);
    Py_DECREF(code_id);
    if (entry == NULL || !PyTuple_CheckExact(entry) || PyTuple_GET_SIZE(entry) != 2 ||
        PyTuple_GET_ITEM(entry, 1) != (PyObject *)code) {
        return PyErr_Occurred() ? -1 : 0;
    }
    *role = PyLong_AsLong(PyTuple_GET_ITEM(entry, 0));
    if (*role == -1 && PyErr_Occurred()) {
        return -1;
    }
    cache_role(self, code, *role);
    return 1;
}

/* GreenletProbe.classify_switch(frame, now) for a stack whose code objects are all
 * classified already: 1 with (kind, due, site) set, 0 when Python must do it, -1 on error. */
static int
classify(Hook *self, PyObject *frame, PyObject *now_obj, double now, PyObject **kind_out, PyObject **due_out,
         PyObject **site_out)
{
    void *addresses[MAX_DEPTH]; /* the program frames' code objects' addresses, innermost first */
    int instructions[MAX_DEPTH];
    PyObject *codes[MAX_DEPTH]; /* and the code objects themselves (held) */
    Py_ssize_t programs = 0;
    PyObject *kind = NULL, *due = NULL;
    /* the program frames (PyFrameObject or, on 3.11, the interpreter's frame): the
     * callee's frame object's address is the token of an episode of waits */
    void *first_program = NULL, *outer_program = NULL, *second_program = NULL;
    int result = -1;
    long role;
    if (frame != Py_None && !PyFrame_Check(frame)) {
        return 0;
    }
#ifdef INTERPRETER_FRAMES
    _PyInterpreterFrame *current = frame != Py_None ? ((PyFrameObject *)frame)->f_frame : NULL, *sleep_frame = NULL;
    for (int depth = 0; current != NULL && depth < MAX_DEPTH; depth++, current = frame_back(current)) {
        PyCodeObject *code = current->f_code;
        int known = code_role(self, code, &role);
        if (known <= 0) {
            result = known;
            goto done;
        }
        if (role == self->role_program) {
            int lasti = _PyInterpreterFrame_LASTI(current); /* what PyFrame_GetLasti says */
            instructions[programs] = lasti < 0 ? -1 : lasti * (int)sizeof(_Py_CODEUNIT);
            addresses[programs] = code;
            codes[programs++] = Py_NewRef(code);
            if (first_program == NULL) {
                first_program = current;
            }
            second_program = outer_program;
            outer_program = current;
        }
        else if (kind == NULL && role != self->role_other) {
            if (role == self->role_sleep) {
                kind = self->timer;
                sleep_frame = current;
            }
            else {
                kind = self->io;
            }
        }
    }
    due = sleep_frame != NULL ? frame_sleep_due(sleep_frame, now) : PyFloat_FromDouble(0.0);
#else
    PyObject *sleep_frame = NULL;
    PyFrameObject *current = frame != Py_None ? (PyFrameObject *)Py_NewRef(frame) : NULL;
    for (int depth = 0; current != NULL && depth < MAX_DEPTH; depth++) {
        PyCodeObject *code = PyFrame_GetCode(current);
        int known = code_role(self, code, &role);
        if (known <= 0) {
            Py_DECREF(code);
            result = known;
            goto done;
        }
        if (role == self->role_program) {
            if (frame_instruction(current, &instructions[programs]) < 0) {
                Py_DECREF(code);
                goto done;
            }
            addresses[programs] = code;
            codes[programs++] = (PyObject *)code; /* the reference moves to the array */
            if (first_program == NULL) {
                first_program = current;
            }
            second_program = outer_program;
            outer_program = current;
        }
        else {
            Py_DECREF(code);
            if (kind == NULL && role != self->role_other) {
                if (role == self->role_sleep) {
                    kind = self->timer;
                    sleep_frame = Py_NewRef(current);
                }
                else {
                    kind = self->io;
                }
            }
        }
        PyFrameObject *back = PyFrame_GetBack(current);
        Py_DECREF(current);
        current = back;
    }
    due = sleep_frame != NULL ? sleep_due(self, sleep_frame, now_obj, now) : PyFloat_FromDouble(0.0);
#endif
    if (due == NULL) {
        goto done;
    }
    PyObject *site = Py_None;
    Py_INCREF(site);
    if (programs > 0) {
        PyObject *frames = site_frames(self, addresses, instructions, codes, programs);
        if (frames == NULL) {
            Py_DECREF(due);
            Py_DECREF(site);
            goto done;
        }
        /* the callee: the frame the outermost program frame called (itself when alone) */
        void *callee_frame = second_program != NULL ? second_program : first_program;
#ifdef INTERPRETER_FRAMES
        callee_frame = frame_object_address((PyFrameObject *)frame, callee_frame);
        if (callee_frame == NULL && !PyErr_Occurred()) {
            PyErr_SetString(PyExc_RuntimeError, "a walked frame went missing");
        }
#endif
        PyObject *callee = callee_frame != NULL ? PyLong_FromVoidPtr(callee_frame) : NULL;
        if (callee == NULL) {
            Py_DECREF(frames);
            Py_DECREF(due);
            Py_DECREF(site);
            goto done;
        }
        Py_DECREF(site);
        site = PyTuple_Pack(2, frames, callee);
        Py_DECREF(frames);
        Py_DECREF(callee);
        if (site == NULL) {
            Py_DECREF(due);
            goto done;
        }
    }
    *kind_out = Py_NewRef(kind != NULL ? kind : self->waiting);
    *due_out = due;
    *site_out = site;
    result = 1;
done:
    for (Py_ssize_t i = 0; i < programs; i++) {
        Py_DECREF(codes[i]);
    }
#ifndef INTERPRETER_FRAMES
    Py_XDECREF(current);
    Py_XDECREF(sleep_frame);
#endif
    return result;
}

/* a hub's entry is (record, [segment start]): 1, else 0 with an exception set */
static int
valid_hub(PyObject *hub)
{
    if (PyTuple_CheckExact(hub) && PyTuple_GET_SIZE(hub) == 2 && PyList_CheckExact(PyTuple_GET_ITEM(hub, 1)) &&
        PyList_GET_SIZE(PyTuple_GET_ITEM(hub, 1)) >= 1) {
        return 1;
    }
    PyErr_SetString(PyExc_TypeError, "a hub's entry is not (record, [start])");
    return 0;
}

/* slot[:] = [record, now, None, cpu0] on a slot list no one else holds (`holders` counts
 * the references the caller knows of): 1 done, 0 not a slot to reuse, -1 on error. The
 * sampler keeps a step's slot while it looks at it, and from then on the slot is left to it. */
static int
reuse_slot(PyObject *slot, Py_ssize_t holders, PyObject *record, PyObject *now_obj, double cpu0)
{
    if (slot == NULL || !PyList_CheckExact(slot) || PyList_GET_SIZE(slot) != 4 || Py_REFCNT(slot) != holders) {
        return 0;
    }
    PyObject **items = ((PyListObject *)slot)->ob_item;
    if (store_double(&items[3], cpu0) < 0) {
        return -1;
    }
    PyObject *old[3] = {items[0], items[1], items[2]};
    items[0] = Py_NewRef(record);
    items[1] = Py_NewRef(now_obj);
    items[2] = Py_NewRef(Py_None);
    for (int index = 0; index < 3; index++) { /* once the slot is whole again */
        Py_XDECREF(old[index]);
    }
    return 1;
}

/* running[ident] = [record, now, None, cpu0]: in `spare` (the step's slot that ended at this
 * switch, held by the caller alone) or in the slot the table holds, where no one else holds
 * them, else in a new list */
static int
publish(PyObject *running, PyObject *ident, PyObject *record, PyObject *now_obj, double cpu0, PyObject *spare)
{
    int reused = reuse_slot(spare, 1, record, now_obj, cpu0);
    if (reused != 0) {
        return reused < 0 ? -1 : PyDict_SetItem(running, ident, spare);
    }
    PyObject *current = PyDict_GetItemWithError(running, ident);
    if (current == NULL && PyErr_Occurred()) {
        return -1;
    }
    reused = reuse_slot(current, 1, record, now_obj, cpu0);
    if (reused != 0) {
        return reused < 0 ? -1 : 0;
    }
    PyObject *cpu = PyFloat_FromDouble(cpu0);
    if (cpu == NULL) {
        return -1;
    }
    PyObject *slot = PyList_New(4);
    if (slot == NULL) {
        Py_DECREF(cpu);
        return -1;
    }
    PyList_SET_ITEM(slot, 0, Py_NewRef(record));
    PyList_SET_ITEM(slot, 1, Py_NewRef(now_obj));
    PyList_SET_ITEM(slot, 2, Py_NewRef(Py_None));
    PyList_SET_ITEM(slot, 3, cpu);
    int status = PyDict_SetItem(running, ident, slot);
    Py_DECREF(slot);
    return status;
}

/* self->clock() (a new reference). time.perf_counter is read here the way it reads itself on
 * Linux (CLOCK_MONOTONIC, as nanoseconds, then seconds as _PyTime_AsSecondsDouble makes
 * them): the same float, without a call through Python's machinery at every switch. */
static PyObject *
clock_now(Hook *self)
{
#if defined(CLOCK_MONOTONIC) && defined(__linux__)
    struct timespec now;
    if (self->perf_counter && clock_gettime(CLOCK_MONOTONIC, &now) == 0) {
        long long ns = (long long)now.tv_sec * 1000000000LL + now.tv_nsec;
        volatile double seconds; /* as CPython's: no rounding but the division's */
        if (ns % 1000000000LL == 0) {
            seconds = (double)(ns / 1000000000LL);
        }
        else {
            seconds = (double)ns;
            seconds /= 1e9;
        }
        return PyFloat_FromDouble(seconds);
    }
#endif
    return PyObject_CallNoArgs(self->clock);
}

/* The running thread's ident (a new reference): the int made for it last time while the
 * thread is the same. A fresh int each switch would cost its making, and each lookup in
 * `running` a comparison with the key there, a different object; so when one is made, the
 * thread's entry in `running` is keyed again by it, and lookups find their key by identity
 * (Python only ever sets entries there, which keeps the key object). */
static PyObject *
thread_ident(Hook *self)
{
    unsigned long value = PyThread_get_thread_ident();
    if (self->ident != NULL && self->ident_value == value) {
        return Py_NewRef(self->ident);
    }
    PyObject *ident = PyLong_FromUnsignedLong(value);
    if (ident == NULL) {
        return NULL;
    }
    if (self->running != NULL) {
        PyObject *slot = PyDict_GetItemWithError(self->running, ident);
        if (slot == NULL && PyErr_Occurred()) {
            Py_DECREF(ident);
            return NULL;
        }
        if (slot != NULL) {
            Py_INCREF(slot);
            int rekeyed = PyDict_DelItem(self->running, ident) == 0 && PyDict_SetItem(self->running, ident, slot) == 0;
            Py_DECREF(slot);
            if (!rekeyed) {
                Py_DECREF(ident);
                return NULL;
            }
        }
    }
    Py_XSETREF(self->ident, Py_NewRef(ident));
    self->ident_value = value;
    return ident;
}

/* hubs.get(id(glet)): borrowed, NULL when glet is no hub (an exception set on error, with
 * key set to NULL). The hub last found is remembered (and held, so that no other object
 * gets its address): a switch is to or from a hub nearly every time, and with one hub in
 * the table, any other greenlet is known to be none without a lookup. `*key` is id(glet)
 * as an int where it had to be made (a new reference), else left NULL. */
static PyObject *
find_hub(Hook *self, PyObject *glet, PyObject **key)
{
    *key = NULL;
    if (glet == self->hub) {
        return self->hub_entry;
    }
    Py_ssize_t hubs = PyDict_GET_SIZE(self->hubs);
    if (hubs == 0 || (hubs == 1 && self->hub != NULL)) {
        return NULL;
    }
    *key = PyLong_FromVoidPtr(glet);
    if (*key == NULL) {
        return NULL;
    }
    PyObject *entry = PyDict_GetItemWithError(self->hubs, *key);
    if (entry == NULL) {
        if (PyErr_Occurred()) {
            Py_CLEAR(*key);
        }
        return NULL;
    }
    Py_XSETREF(self->hub, Py_NewRef(glet));
    Py_XSETREF(self->hub_entry, Py_NewRef(entry));
    return entry;
}

/* GreenletProbe._switch: 0, or -1 with an exception set */
static int
do_switch(Hook *self, PyObject *origin, PyObject *target, PyObject *now_obj, double now)
{
    int status = -1;
    PyObject *running = NULL, *ident = NULL, *key = NULL, *live = NULL, *step_start = NULL, *spare = NULL;

    if (self->running == NULL) { /* no sampler to publish steps in: the Python hook */
        return call_drop(PyObject_CallMethodObjArgs(self->probe, s_switch_py, origin, target, now_obj, NULL));
    }
    self->switches++;
    running = Py_NewRef(self->running);
    live = Py_NewRef(self->live);
    ident = thread_ident(self);
    if (ident == NULL) {
        goto done;
    }
    /* the origin's step (or hub segment) ends */
    step_start = Py_NewRef(now_obj);
    PyObject *slot = PyDict_GetItemWithError(running, ident);
    if (slot == NULL && PyErr_Occurred()) {
        goto done;
    }
    if (slot != NULL && slot != Py_None) {
        if (!PyList_CheckExact(slot) || PyList_GET_SIZE(slot) < 4) {
            PyErr_SetString(PyExc_TypeError, "a running slot is not a list of 4");
            goto done;
        }
        PyObject *kind = get_field(self, PyList_GET_ITEM(slot, 0), F_KIND, s_kind);
        if (kind == NULL) {
            goto done;
        }
        int is_greenlet = PyObject_RichCompareBool(kind, s_greenlet, Py_EQ);
        Py_DECREF(kind);
        if (is_greenlet < 0) {
            goto done;
        }
        if (is_greenlet) {
            Py_INCREF(slot); /* the table lets go of it next */
            if (PyDict_SetItem(running, ident, Py_None) < 0) {
                Py_DECREF(slot);
                goto done;
            }
            Py_SETREF(step_start, Py_NewRef(PyList_GET_ITEM(slot, 1)));
            double cpu0 = PyFloat_AsDouble(PyList_GET_ITEM(slot, 3));
            if (cpu0 == -1.0 && PyErr_Occurred()) {
                Py_DECREF(slot);
                goto done;
            }
            if (PyList_GET_ITEM(slot, 2) != Py_None || cpu0 >= 0.0) {
                if (call_drop(PyObject_CallMethodObjArgs(self->probe, s_close_slot, slot, now_obj, ident, NULL)) < 0) {
                    Py_DECREF(slot);
                    goto done;
                }
            }
            spare = slot; /* the next step's, where no one else keeps it */
        }
    }
    PyObject *hub = find_hub(self, origin, &key);
    if (hub == NULL && PyErr_Occurred()) {
        goto done;
    }
    if (hub != NULL) {
        if (!valid_hub(hub)) {
            goto done;
        }
        PyObject *segment = PyTuple_GET_ITEM(hub, 1);
        PyObject *start = PyList_GET_ITEM(segment, 0);
        if (start != Py_None) {
            PyObject *record = PyTuple_GET_ITEM(hub, 0);
            double running_s, began = PyFloat_AsDouble(start);
            if (began == -1.0 && PyErr_Occurred()) {
                goto done;
            }
            if (plain_record(self, record) && plain_double(SLOT(record, F_RUNNING_S), &running_s)) {
                if (add_slot(self, record, F_RUNNING_S, running_s, now - began) < 0) {
                    goto done;
                }
            }
            else {
                if (attr_double(record, s_running_s, &running_s) < 0) {
                    goto done;
                }
                PyObject *sum = PyFloat_FromDouble(running_s + (now - began));
                if (sum == NULL) {
                    goto done;
                }
                int set = PyObject_SetAttr(record, s_running_s, sum);
                Py_DECREF(sum);
                if (set < 0) {
                    goto done;
                }
            }
            if (PyList_SetItem(segment, 0, Py_NewRef(Py_None)) < 0) {
                goto done;
            }
        }
    }
    else {
        /* the Python hook asks `origin.parent is not None` first: a thread's main greenlet is
         * never in `live` (only targets with a parent are tracked), so the lookup says it */
        if (key == NULL) {
            key = PyLong_FromVoidPtr(origin);
            if (key == NULL) {
                goto done;
            }
        }
        PyObject *record = PyDict_GetItemWithError(live, key);
        if (record == NULL && PyErr_Occurred()) {
            goto done;
        }
        if (record != NULL) {
            Py_INCREF(record);
            int dead = dead_after_running(origin);
            int failed = dead < 0;
            if (dead > 0) {
                failed = call_drop(PyObject_CallMethodObjArgs(self->probe, s_finished, origin, record, step_start,
                                                              now_obj, NULL)) < 0;
            }
            else if (dead == 0) {
                PyObject *frame = PyObject_GetAttr(origin, s_gr_frame);
                PyObject *steps = frame != NULL ? get_field(self, record, F_STEPS, s_steps) : NULL;
                failed = steps == NULL;
                if (!failed && frame != Py_None) {
                    int none_yet = PyLong_CheckExact(steps) && PyLong_AsLong(steps) == 0;
                    if (none_yet) {
                        failed = call_drop(PyObject_CallMethodObjArgs(self->probe, s_first_step_ended, record,
                                                                      frame, NULL)) < 0;
                    }
                }
                PyObject *kind = NULL, *due = NULL, *site = NULL;
                if (!failed) {
                    int classified = classify(self, frame, now_obj, now, &kind, &due, &site);
                    if (classified == 0) {
                        PyObject *found = PyObject_CallMethodObjArgs(self->probe, s_classify_switch, frame,
                                                                     now_obj, NULL);
                        if (found != NULL && PyTuple_CheckExact(found) && PyTuple_GET_SIZE(found) == 3) {
                            kind = Py_NewRef(PyTuple_GET_ITEM(found, 0));
                            due = Py_NewRef(PyTuple_GET_ITEM(found, 1));
                            site = Py_NewRef(PyTuple_GET_ITEM(found, 2));
                        }
                        else if (found != NULL) {
                            PyErr_SetString(PyExc_TypeError, "classify_switch returned no (kind, due, site)");
                        }
                        Py_XDECREF(found);
                        failed = kind == NULL;
                    }
                    else {
                        failed = classified < 0;
                    }
                }
                if (!failed) {
                    failed = step_ended(self, record, step_start, now_obj, kind, due, site) < 0;
                }
                Py_XDECREF(kind);
                Py_XDECREF(due);
                Py_XDECREF(site);
                Py_XDECREF(steps);
                Py_XDECREF(frame);
            }
            Py_DECREF(record);
            if (failed) {
                goto done;
            }
        }
    }
    /* the target's starts (known hubs and greenlets first, as the Python hook does after
     * asking `target.parent is None`: neither is ever a thread's main greenlet) */
    Py_CLEAR(key);
    set_held_since(self, 0.0);
    hub = find_hub(self, target, &key);
    if (hub == NULL && PyErr_Occurred()) {
        goto done;
    }
    if (hub != NULL) {
        if (!valid_hub(hub) || PyList_SetItem(PyTuple_GET_ITEM(hub, 1), 0, Py_NewRef(now_obj)) < 0) {
            goto done;
        }
        status = publish(running, ident, PyTuple_GET_ITEM(hub, 0), now_obj, -1.0, spare);
        goto done;
    }
    if (key == NULL) {
        key = PyLong_FromVoidPtr(target);
        if (key == NULL) {
            goto done;
        }
    }
    PyObject *unit = PyDict_GetItemWithError(live, key);
    if (unit == NULL) {
        if (PyErr_Occurred()) {
            goto done;
        }
        int no_parent = no_parent_of(target);
        if (no_parent != 0) { /* a thread's main greenlet is the thread itself (or an error) */
            status = no_parent < 0 ? -1 : 0;
            goto done;
        }
        /* seen for the first time: a hub, or a greenlet to track */
        set_held_since(self, now);
        status = call_drop(PyObject_CallMethodObjArgs(self->probe, s_start_new, target, now_obj, running, ident, NULL));
        goto done;
    }
    Py_INCREF(unit);
    double longest, cpu0 = -1.0;
    int failed = 0;
    if (!(plain_record(self, unit) && plain_double(SLOT(unit, F_LONGEST_STEP_S), &longest))) {
        failed = attr_double(unit, s_longest_step_s, &longest) < 0;
    }
    if (!failed && longest > self->suspect_step_s) {
        PyObject *cpu = PyObject_CallNoArgs(self->thread_time);
        failed = cpu == NULL;
        if (!failed) {
            cpu0 = PyFloat_AsDouble(cpu);
            Py_DECREF(cpu);
            failed = cpu0 == -1.0 && PyErr_Occurred();
        }
    }
    if (!failed) {
        failed = step_started(self, unit, now_obj) < 0;
    }
    if (!failed) {
        failed = publish(running, ident, unit, now_obj, cpu0, spare) < 0;
        set_held_since(self, now);
    }
    Py_DECREF(unit);
    status = failed ? -1 : 0;
done:
    Py_XDECREF(running);
    Py_XDECREF(ident);
    Py_XDECREF(key);
    Py_XDECREF(live);
    Py_XDECREF(step_start);
    Py_XDECREF(spare);
    return status;
}

static PyObject *
Hook_call(Hook *self, PyObject *args, PyObject *Py_UNUSED(kwds))
{
    PyObject *event, *pair;
    if (self->probe == NULL) {
        Py_RETURN_NONE;
    }
    if (PyTuple_CheckExact(args) && PyTuple_GET_SIZE(args) == 2) {
        event = PyTuple_GET_ITEM(args, 0);
        pair = PyTuple_GET_ITEM(args, 1);
    }
    else if (!PyArg_UnpackTuple(args, "hook", 2, 2, &event, &pair)) {
        return NULL;
    }
    if (!self->active) {
        set_held_since(self, 0.0); /* no step is timed: none is held */
        Py_RETURN_NONE;
    }
    int is_switch = PyObject_RichCompareBool(event, s_switch, Py_EQ);
    if (is_switch == 0) {
        is_switch = PyObject_RichCompareBool(event, s_throw, Py_EQ);
    }
    if (is_switch <= 0) {
        if (is_switch < 0) {
            return NULL;
        }
        Py_RETURN_NONE;
    }
    int status = -1;
    PyObject *origin, *target;
    if (PyTuple_CheckExact(pair) && PyTuple_GET_SIZE(pair) == 2) { /* what greenlet passes */
        origin = Py_NewRef(PyTuple_GET_ITEM(pair, 0));
        target = Py_NewRef(PyTuple_GET_ITEM(pair, 1));
    }
    else {
        origin = PySequence_GetItem(pair, 0);
        target = origin != NULL ? PySequence_GetItem(pair, 1) : NULL;
    }
    PyObject *now_obj = target != NULL ? clock_now(self) : NULL;
    if (now_obj != NULL) {
        double now = PyFloat_AsDouble(now_obj);
        if (!(now == -1.0 && PyErr_Occurred())) {
            self->plain_seen = NULL;
            status = do_switch(self, origin, target, now_obj, now);
        }
    }
    Py_XDECREF(origin);
    Py_XDECREF(target);
    Py_XDECREF(now_obj);
    if (status < 0) {
        if (!PyErr_ExceptionMatches(PyExc_Exception)) {
            return NULL; /* what the Python hook lets through too (KeyboardInterrupt...) */
        }
        /* never break the program: stop tracing (the probe says why) */
        PyObject *type, *value, *traceback;
        PyErr_Fetch(&type, &value, &traceback);
        PyErr_NormalizeException(&type, &value, &traceback);
        PyObject *done = PyObject_CallMethodObjArgs(self->probe, s_disable, value != NULL ? value : Py_None, NULL);
        Py_XDECREF(type);
        Py_XDECREF(value);
        Py_XDECREF(traceback);
        if (done == NULL) {
            PyErr_Clear();
        }
        Py_XDECREF(done);
    }
    Py_RETURN_NONE;
}

static PyObject *
Hook_get_switches(Hook *self, void *Py_UNUSED(closure))
{
    return PyLong_FromUnsignedLongLong(self->switches);
}

static PyObject *
Hook_release(Hook *self, PyObject *Py_UNUSED(unused))
{
    Hook_clear(self);
    Py_RETURN_NONE;
}

static PyObject *
Hook_get_fast(Hook *self, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(self->fast);
}

static PyMemberDef Hook_members[] = {
    {"suspect_step_s", Py_T_DOUBLE, offsetof(Hook, suspect_step_s), 0,
     "a unit whose longest step is longer has the CPU clock read at its steps' start (the probe sets it)"},
    {"active", Py_T_BOOL, offsetof(Hook, active), 0,
     "the probe's _active flag (the probe sets both): while false, switches are let through untouched"},
    {"paused", Py_T_BOOL, offsetof(Hook, paused), Py_READONLY, "whether tracing is paused (see pause)"},
    {"resumed_at", Py_T_DOUBLE, offsetof(Hook, resumed_at), Py_READONLY, "when tracing last resumed (-inf: never paused)"},
    {"change_at", Py_T_DOUBLE, offsetof(Hook, change_at), 0,
     "from then on request_begin answers None: the agent's Python path pauses or resumes the tracing"},
    {"requests", Py_T_ULONGLONG, offsetof(Hook, requests), Py_READONLY, "request_begin's calls"},
    {NULL},
};

/* pause(): tracing pauses (the probe takes the hook out of the thread's trace): no step is
 * timed, so none is held, and requests are counted only */
static PyObject *
Hook_pause(Hook *self, PyObject *Py_UNUSED(unused))
{
    self->paused = 1;
    set_held_since(self, 0.0);
    Py_RETURN_NONE;
}

/* resume(now, held): tracing resumes at `now` (a suspension older is not charged); `held`: the
 * greenlet running now is tracked, its step starting now */
static PyObject *
Hook_resume(Hook *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "resume takes 2 arguments (%zd given)", nargs);
        return NULL;
    }
    double now = PyFloat_AsDouble(args[0]);
    int held = PyObject_IsTrue(args[1]);
    if ((now == -1.0 && PyErr_Occurred()) || held < 0) {
        return NULL;
    }
    self->resumed_at = now;
    self->paused = 0;
    set_held_since(self, held ? now : 0.0);
    Py_RETURN_NONE;
}

static void
release_hold_clock(PyObject *capsule)
{
    Py_XDECREF(PyCapsule_GetContext(capsule));
}

/* A capsule of &held_since, holding the hook: None where the clock is not read here as
 * CLOCK_MONOTONIC (the watch compares it with that clock) */
static PyObject *
Hook_get_hold_clock(Hook *self, void *Py_UNUSED(closure))
{
    if (!self->perf_counter) {
        Py_RETURN_NONE;
    }
    PyObject *capsule = PyCapsule_New(&self->held_since, HOLD_CLOCK_CAPSULE, release_hold_clock);
    if (capsule == NULL) {
        return NULL;
    }
    if (PyCapsule_SetContext(capsule, Py_NewRef(self)) < 0) {
        Py_DECREF(self);
        Py_DECREF(capsule);
        return NULL;
    }
    return capsule;
}

static PyGetSetDef Hook_getset[] = {
    {"hold_clock", (getter)Hook_get_hold_clock, NULL,
     "a capsule of when the greenlet running now started its step (0.0: a hub runs), for the sampler's watch",
     NULL},
    {"switches", (getter)Hook_get_switches, NULL, "switches handled here", NULL},
    {"ledger_in_c", (getter)Hook_get_fast, NULL, "whether the ledger's bookkeeping of plain records is done here",
     NULL},
    {NULL},
};

/* the ledger's bookkeeping as the hook does it, for the tests to hold against TaskLedger's */
static PyObject *
Hook_step_started(Hook *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "step_started takes 2 arguments (%zd given)", nargs);
        return NULL;
    }
    if (self->probe == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "the hook was released");
        return NULL;
    }
    self->plain_seen = NULL;
    int done = ledger_step_started(self, args[0], args[1]);
    if (done < 0) {
        return NULL;
    }
    if (done == 0 && step_started(self, args[0], args[1]) < 0) {
        return NULL;
    }
    return PyBool_FromLong(done);
}

static PyObject *
Hook_step_ended(Hook *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 6) {
        PyErr_Format(PyExc_TypeError, "step_ended takes 6 arguments (%zd given)", nargs);
        return NULL;
    }
    if (self->probe == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "the hook was released");
        return NULL;
    }
    self->plain_seen = NULL;
    if (step_ended(self, args[0], args[1], args[2], args[3], args[4], args[5]) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}


/* -- the request meter's common case (advisor.embed.meter.RequestMeter.begin / end) ------------ */

/* what the meter reads of the running greenlet at a request's start and end */
typedef struct {
    PyObject *record;  /* borrowed */
    double t0;         /* its current step's start */
    double now;        /* the probe's clock now */
    double counters[4]; /* running (the current step counted up to now), io, waiting, scheduling */
} RequestUnit;

/* The running greenlet, when it is a traced greenlet (not a hub) with a plain record and plain
 * counters: 1 with `unit` filled, 0 otherwise (the meter's Python path), -1 on error. What
 * GreenletProbe.current_step and RequestMeter read, in one go. */
static int
request_unit(Hook *self, RequestUnit *unit)
{
    if (self->running == NULL) {
        return 0;
    }
    if (!self->active || self->paused) {
        return 0;
    }
    self->plain_seen = NULL;
    PyObject *ident = thread_ident(self);
    if (ident == NULL) {
        return -1;
    }
    PyObject *slot = PyDict_GetItemWithError(self->running, ident);
    Py_DECREF(ident);
    if (slot == NULL) {
        return PyErr_Occurred() ? -1 : 0;
    }
    if (!PyList_CheckExact(slot) || PyList_GET_SIZE(slot) < 3) {
        return 0;
    }
    if (PyList_GET_ITEM(slot, 2) != Py_None) {
        /* a step the sampler looked at (a hold of the hub): the meter's Python path charges it
         * up to now at the stack last seen (Sampler.flush_step) before the route's table is
         * swapped, or the rest of a 10 ms blocking sleep went to the next owner of the table */
        return 0;
    }
    PyObject *record = PyList_GET_ITEM(slot, 0);
    double running_s;
    if (!plain_record(self, record) || !plain_double(PyList_GET_ITEM(slot, 1), &unit->t0) ||
        !plain_double(SLOT(record, F_RUNNING_S), &running_s) ||
        !plain_double(SLOT(record, F_IO_S), &unit->counters[1]) ||
        !plain_double(SLOT(record, F_WAITING_S), &unit->counters[2]) ||
        !plain_double(SLOT(record, F_SCHEDULING_S), &unit->counters[3])) {
        return 0;
    }
    /* a greenlet's record, not a hub's (whose key is ("hub", id)) */
    PyObject *kind = SLOT(record, F_KIND), *key = SLOT(record, F_KEY);
    if (!PyUnicode_CheckExact(kind) || PyUnicode_Compare(kind, s_greenlet) != 0 || !PyTuple_CheckExact(key)) {
        return PyErr_Occurred() ? -1 : 0;
    }
    if (PyTuple_GET_SIZE(key) > 0 && PyUnicode_CheckExact(PyTuple_GET_ITEM(key, 0)) &&
        PyUnicode_CompareWithASCIIString(PyTuple_GET_ITEM(key, 0), "hub") == 0) {
        return 0;
    }
    PyObject *now_obj = clock_now(self);
    if (now_obj == NULL) {
        return -1;
    }
    unit->now = PyFloat_AsDouble(now_obj);
    Py_DECREF(now_obj);
    if (unit->now == -1.0 && PyErr_Occurred()) {
        return -1;
    }
    unit->record = record;
    unit->counters[0] = running_s + (unit->now - unit->t0);
    return 1;
}

/* the clock's seconds now: 0, or -1 with an exception set */
static int
clock_seconds(Hook *self, double *out)
{
    PyObject *now_obj = clock_now(self);
    if (now_obj == NULL) {
        return -1;
    }
    *out = PyFloat_AsDouble(now_obj);
    Py_DECREF(now_obj);
    return *out == -1.0 && PyErr_Occurred() ? -1 : 0;
}

/* request_begin's decision while tracing is paused, counting the request: 1 for False, a
 * request counted and nothing more (the middleware counts it in its route without reading a
 * clock or making an object: a paused request must cost next to nothing); -1 for None, once
 * the agent is due to resume the tracing or for one request in REQUEST_FALL_THROUGH; -2 with
 * an exception set. 0, counting nothing, where tracing is not paused. */
static int
paused_answer(Hook *self)
{
    if (!self->paused || self->probe == NULL) {
        return 0;
    }
    if (++self->requests % REQUEST_FALL_THROUGH == 0) {
        return -1;
    }
    struct timespec now;
    double seconds;
    if (self->perf_counter && clock_gettime(CLOCK_MONOTONIC, &now) == 0) {
        seconds = (double)now.tv_sec + now.tv_nsec * 1e-9;
    }
    else if (clock_seconds(self, &seconds) < 0) {
        return -2;
    }
    return seconds < self->change_at ? 1 : -1;
}

/* request_end's entry for a request timed only: (aggregate, wall, None, None, None, None,
 * error) appended to `unfolded` (routes.fold counts it, without a breakdown) */
static PyObject *
append_timed(Hook *self, PyObject *pending, PyObject *error_obj, PyObject *unfolded, double start)
{
    int error = PyObject_IsTrue(error_obj);
    if (error < 0) {
        return NULL;
    }
    double now;
    if (clock_seconds(self, &now) < 0) {
        return NULL;
    }
    PyObject *done = PyTuple_New(7);
    if (done == NULL) {
        return NULL;
    }
    PyObject *wall = PyFloat_FromDouble(now - start);
    if (wall == NULL) {
        Py_DECREF(done);
        return NULL;
    }
    PyTuple_SET_ITEM(done, 0, Py_NewRef(PyList_GET_ITEM(pending, 0)));
    PyTuple_SET_ITEM(done, 1, wall);
    for (int i = 2; i < 6; i++) {
        PyTuple_SET_ITEM(done, i, Py_NewRef(Py_None));
    }
    PyTuple_SET_ITEM(done, 6, Py_NewRef(error ? Py_True : Py_False));
    PyObject_GC_UnTrack(done); /* as request_end's: no cycle runs through it */
    int appended = PyList_Append(unfolded, done);
    Py_DECREF(done);
    if (appended < 0) {
        return NULL;
    }
    return PyLong_FromSsize_t(PyList_GET_SIZE(unfolded));
}

/* request_begin(aggregate, samples): what RequestMeter.begin builds for a request in a traced
 * greenlet, [aggregate, record, start, running, io, waiting, scheduling, the record's tag
 * table, True], the record's samples now going to `samples`; None where the meter's Python
 * path must do it (another kind of unit, a record that is not plain, one call in
 * REQUEST_FALL_THROUGH) */
static PyObject *
Hook_request_begin(Hook *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "request_begin takes 2 arguments (%zd given)", nargs);
        return NULL;
    }
    int paused = paused_answer(self);
    if (paused != 0) {
        if (paused == -2) {
            return NULL;
        }
        return Py_NewRef(paused == 1 ? Py_False : Py_None);
    }
    if (++self->requests % REQUEST_FALL_THROUGH == 0) {
        Py_RETURN_NONE;
    }
    RequestUnit unit;
    int found = self->probe != NULL ? request_unit(self, &unit) : 0;
    if (found <= 0) {
        if (found < 0) {
            return NULL;
        }
        Py_RETURN_NONE;
    }
    if (unit.now >= self->change_at) { /* the agent pauses the tracing (or measures again) first */
        Py_RETURN_NONE;
    }
    PyObject *pending = PyList_New(9);
    if (pending == NULL) {
        return NULL;
    }
    PyList_SET_ITEM(pending, 0, Py_NewRef(args[0]));
    PyList_SET_ITEM(pending, 1, Py_NewRef(unit.record));
    PyList_SET_ITEM(pending, 7, Py_NewRef(SLOT(unit.record, F_TAG_SAMPLES)));
    PyList_SET_ITEM(pending, 8, Py_NewRef(Py_True));
    if (set_number(pending, 2, unit.now) < 0) {
        Py_DECREF(pending);
        return NULL;
    }
    for (int i = 0; i < 4; i++) {
        if (set_number(pending, 3 + i, unit.counters[i]) < 0) {
            Py_DECREF(pending);
            return NULL;
        }
    }
    set_slot(self, unit.record, F_TAG_SAMPLES, Py_NewRef(args[1]));
    return pending;
}

/* request_end(pending, error, unfolded): RequestMeter.end's common case, the request still in
 * the greenlet it began in: its deltas appended to `unfolded` as (aggregate, wall, running,
 * io, waiting, scheduling, error); the number of requests waiting there then, or None where
 * the meter's Python path must do it */
static PyObject *
Hook_request_end(Hook *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_Format(PyExc_TypeError, "request_end takes 3 arguments (%zd given)", nargs);
        return NULL;
    }
    PyObject *pending = args[0], *unfolded = args[2];
    if (self->probe == NULL || !PyList_CheckExact(pending) || PyList_GET_SIZE(pending) < 9 ||
        !PyList_CheckExact(unfolded)) {
        Py_RETURN_NONE;
    }
    PyObject *traced = PyList_GET_ITEM(pending, 8), *begun_in = PyList_GET_ITEM(pending, 1);
    double start;
    if ((traced != Py_True && traced != Py_False) || !plain_double(PyList_GET_ITEM(pending, 2), &start)) {
        Py_RETURN_NONE;
    }
    if (traced == Py_False) { /* timed only (tracing was paused), else the meter's way */
        if (begun_in != Py_None) {
            Py_RETURN_NONE;
        }
        return append_timed(self, pending, args[1], unfolded, start);
    }
    if (self->paused || start < self->resumed_at) {
        /* begun in a window of tracing that closed since: timed only, and the unit's samples
         * go back where they went */
        self->plain_seen = NULL;
        if (!plain_record(self, begun_in)) {
            Py_RETURN_NONE;
        }
        set_slot(self, begun_in, F_TAG_SAMPLES, Py_NewRef(PyList_GET_ITEM(pending, 7)));
        return append_timed(self, pending, args[1], unfolded, start);
    }
    RequestUnit unit;
    int found = request_unit(self, &unit);
    if (found <= 0) {
        if (found < 0) {
            return NULL;
        }
        Py_RETURN_NONE;
    }
    double begun[5]; /* start, then the four counters */
    if (unit.record != PyList_GET_ITEM(pending, 1)) {
        Py_RETURN_NONE;
    }
    for (int i = 0; i < 5; i++) {
        if (!plain_double(PyList_GET_ITEM(pending, 2 + i), &begun[i])) {
            Py_RETURN_NONE;
        }
    }
    int error = PyObject_IsTrue(args[1]);
    if (error < 0) {
        return NULL;
    }
    PyObject *done = PyTuple_New(7);
    if (done == NULL) {
        return NULL;
    }
    PyTuple_SET_ITEM(done, 0, Py_NewRef(PyList_GET_ITEM(pending, 0)));
    for (int i = 0; i < 5; i++) {
        PyObject *number = PyFloat_FromDouble(i == 0 ? unit.now - begun[0] : unit.counters[i - 1] - begun[i]);
        if (number == NULL) {
            Py_DECREF(done);
            return NULL;
        }
        PyTuple_SET_ITEM(done, i + 1, number);
    }
    PyTuple_SET_ITEM(done, 6, Py_NewRef(error ? Py_True : Py_False));
    /* no cycle runs through it (only `unfolded` holds it, and it holds the route's aggregate,
     * floats and a bool): the collector need not look at the requests waiting to be folded */
    PyObject_GC_UnTrack(done);
    set_slot(self, unit.record, F_TAG_SAMPLES, Py_NewRef(PyList_GET_ITEM(pending, 7)));
    int appended = PyList_Append(unfolded, done);
    Py_DECREF(done);
    if (appended < 0) {
        return NULL;
    }
    return PyLong_FromSsize_t(PyList_GET_SIZE(unfolded));
}

static PyMethodDef Hook_methods[] = {
    {"release", (PyCFunction)Hook_release, METH_NOARGS, "drop every reference (the probe is done with it)"},
    {"step_started", (PyCFunction)(void (*)(void))Hook_step_started, METH_FASTCALL,
     "TaskLedger.step_started(record, t0) as the hook does it: True when done in C, False when by TaskLedger's"},
    {"step_ended", (PyCFunction)(void (*)(void))Hook_step_ended, METH_FASTCALL,
     "TaskLedger.step_ended(record, t0, t1, wait_kind, due, site) as the hook does it"},
    {"request_begin", (PyCFunction)(void (*)(void))Hook_request_begin, METH_FASTCALL,
     "RequestMeter.begin's common case: the pending list of a request in a traced greenlet, or None"},
    {"request_end", (PyCFunction)(void (*)(void))Hook_request_end, METH_FASTCALL,
     "RequestMeter.end's common case: append the request's deltas, return how many wait, or None"},
    {"pause", (PyCFunction)Hook_pause, METH_NOARGS, "tracing pauses: no step is held, requests are counted only"},
    {"resume", (PyCFunction)(void (*)(void))Hook_resume, METH_FASTCALL,
     "resume(now, held): tracing resumes; older suspensions are not charged"},
    {NULL},
};

static PyTypeObject HookType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "advisor.probes._switch_hook.SwitchHook",
    .tp_basicsize = sizeof(Hook),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The greenlet probe's switch hook: a greenlet.settrace function.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Hook_init,
    .tp_dealloc = (destructor)Hook_dealloc,
    .tp_traverse = (traverseproc)Hook_traverse,
    .tp_clear = (inquiry)Hook_clear,
    .tp_call = (ternaryfunc)Hook_call,
    .tp_getset = Hook_getset,
    .tp_members = Hook_members,
    .tp_methods = Hook_methods,
};

/* For the WSGI middleware's C call (advisor/embed/_gate.c, through the capsule _GATE_API):
 * request_begin's answer for a request while tracing is paused (paused_answer), without the
 * call (its arguments, the route's stack table looked up to pass them, and the answer made
 * into an object); 0 also where `hook` is no SwitchHook (request_begin is called then). */
static int
gate_paused_request(PyObject *hook)
{
    return Py_TYPE(hook) == &HookType ? paused_answer((Hook *)hook) : 0;
}

/* the capsule's contents: one function today; a struct, so that _gate.c checks what it got */
typedef struct {
    int version;
    int (*paused_request)(PyObject *hook);
} GateApi;

static GateApi gate_api = {1, gate_paused_request};

static struct PyModuleDef module = {
    .m_base = PyModuleDef_HEAD_INIT,
    .m_name = "_switch_hook",
    .m_doc = "The greenlet probe's switch hook in C (optional).",
    .m_size = -1,
};

#define INTERN(var, text)                                                                                            \
    if ((var = PyUnicode_InternFromString(text)) == NULL) {                                                          \
        return NULL;                                                                                                 \
    }

PyMODINIT_FUNC
PyInit__switch_hook(void)
{
    INTERN(s_active, "_active");
    INTERN(s_sampler, "sampler");
    INTERN(s_running, "running");
    INTERN(s_kind, "kind");
    INTERN(s_greenlet, "greenlet");
    INTERN(s_parent, "parent");
    INTERN(s_ledger, "ledger");
    INTERN(s_live, "live");
    INTERN(s_dead, "dead");
    INTERN(s_gr_frame, "gr_frame");
    INTERN(s_steps, "steps");
    INTERN(s_running_s, "running_s");
    INTERN(s_longest_step_s, "longest_step_s");
    INTERN(s_switch, "switch");
    INTERN(s_throw, "throw");
    INTERN(s_f_lasti, "f_lasti");
    INTERN(s_close_slot, "_close_slot");
    INTERN(s_finished, "_finished");
    INTERN(s_first_step_ended, "_first_step_ended");
    INTERN(s_classify_switch, "classify_switch");
    INTERN(s_sleep_due, "_sleep_due");
    INTERN(s_site_frames, "_site_frames");
    INTERN(s_start_new, "_start_new");
    INTERN(s_disable, "_disable");
    INTERN(s_switch_py, "_switch");
    INTERN(s_seconds, "seconds");
    if ((one = PyLong_FromLong(1)) == NULL) {
        return NULL;
    }
    code_extra = REQUEST_CODE_EXTRA(NULL); /* -1 (no slot left): roles are looked up by dict */
    if (code_extra < 0) {
        PyErr_Clear();
    }
    if (PyType_Ready(&HookType) < 0) {
        return NULL;
    }
    /* greenlet >= 3.0's C API; without it (or with fewer entries) every flag is an attribute */
    void **api = (void **)PyCapsule_Import("greenlet._C_API", 0);
    if (api == NULL) {
        PyErr_Clear();
    }
    else {
        greenlet_type = (PyTypeObject *)api[GREENLET_TYPE_NUM];
        greenlet_started = (flag_f)api[GREENLET_STARTED_NUM];
        greenlet_active = (flag_f)api[GREENLET_ACTIVE_NUM];
        greenlet_parent = (get_parent_f)api[GREENLET_GET_PARENT_NUM];
        if (greenlet_started == NULL || greenlet_active == NULL || greenlet_parent == NULL) {
            greenlet_type = NULL;
        }
    }
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) {
        return NULL;
    }
    PyObject *capsule = PyCapsule_New(&gate_api, "advisor.probes._switch_hook._GATE_API", NULL);
    if (capsule == NULL || PyModule_AddObject(m, "_GATE_API", capsule) < 0) {
        Py_XDECREF(capsule);
        Py_DECREF(m);
        return NULL;
    }
    Py_INCREF(&HookType);
    if (PyModule_AddObject(m, "SwitchHook", (PyObject *)&HookType) < 0) {
        Py_DECREF(&HookType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
