/* The greenlet probe's switch hook in C: the common path of GreenletProbe._switch.
 *
 * Optional: advisor.probes.greenlet_probe uses it when it was built, and its own Python
 * hook otherwise. It does what GreenletProbe._switch does, in the same order, for the
 * switches a server makes all the time (a known greenlet parks, a known one or the hub
 * resumes) and calls back into the probe's Python methods for everything else: a greenlet
 * seen for the first time, one that ended, its first step, a step the sampler saw, a code
 * object not classified yet, a gevent.sleep's due time, a new await site. The ledger's
 * bookkeeping is TaskLedger.step_started / step_ended themselves, called from here: one
 * definition of what a step adds up to. An exception (an Exception) in here disables the
 * probe, as the Python hook does.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <frameobject.h>
#include <pythread.h>

#define MAX_DEPTH 64

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
    unsigned long long switches;
} Hook;

static PyObject *s_active, *s_sampler, *s_running, *s_kind, *s_greenlet, *s_parent, *s_ledger, *s_live, *s_dead,
    *s_gr_frame, *s_steps, *s_running_s, *s_longest_step_s, *s_switch, *s_throw, *s_f_lasti, *s_close_slot,
    *s_finished, *s_first_step_ended, *s_classify_switch, *s_sleep_due, *s_site_frames, *s_start_new,
    *s_disable, *s_switch_py, *s_seconds;

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
    return 0;
}

static void
Hook_dealloc(Hook *self)
{
    PyObject_GC_UnTrack(self);
    Hook_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int
Hook_init(Hook *self, PyObject *args, PyObject *kwds)
{
    PyObject *probe, *hubs, *roles, *sites, *clock, *thread_time, *step_started, *step_ended, *timer, *io, *waiting;
    long other, program, sleep, io_role;
    static char *names[] = {"probe", "hubs", "roles", "sites", "clock", "thread_time", "step_started", "step_ended",
                            "role_other", "role_program", "role_sleep", "role_io", "timer", "io", "waiting", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO!O!O!OOOOllllOOO", names, &probe, &PyDict_Type, &hubs,
                                     &PyDict_Type, &roles, &PyDict_Type, &sites, &clock, &thread_time,
                                     &step_started, &step_ended, &other, &program, &sleep, &io_role, &timer, &io,
                                     &waiting)) {
        return -1;
    }
    Hook_clear(self);
    self->probe = Py_NewRef(probe);
    self->hubs = Py_NewRef(hubs);
    self->roles = Py_NewRef(roles);
    self->sites = Py_NewRef(sites);
    self->clock = Py_NewRef(clock);
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
    self->switches = 0;
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

static int
frame_lasti(PyFrameObject *frame, PyObject **out)
{
#if PY_VERSION_HEX >= 0x030B0000
    *out = PyLong_FromLong(PyFrame_GetLasti(frame));
#else
    *out = PyObject_GetAttr((PyObject *)frame, s_f_lasti);
#endif
    return *out == NULL ? -1 : 0;
}

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
    if (value != NULL) {
        Py_INCREF(value);
        int truth = PyObject_IsTrue(value);
        if (truth > 0) {
            PyObject *number = PyNumber_Float(value);
            if (number != NULL) {
                seconds = PyFloat_AS_DOUBLE(number);
                Py_DECREF(number);
            }
            else {
                truth = -1;
            }
        }
        Py_DECREF(value);
        if (truth < 0) {
            Py_DECREF(locals);
            return NULL;
        }
    }
    Py_DECREF(locals);
    return PyFloat_FromDouble(now + (seconds > 0.0 ? seconds : 0.0));
#else
    return PyObject_CallMethodObjArgs(self->probe, s_sleep_due, frame, now_obj, NULL);
#endif
}

/* GreenletProbe.classify_switch(frame, now) for a stack whose code objects are all
 * classified already: 1 with (kind, due, site) set, 0 when Python must do it, -1 on error. */
static int
classify(Hook *self, PyObject *frame, PyObject *now_obj, double now, PyObject **kind_out, PyObject **due_out,
         PyObject **site_out)
{
    PyObject *positions[2 * MAX_DEPTH]; /* id(code), instruction, ... innermost first */
    PyObject *codes[MAX_DEPTH];         /* the program frames' code objects, innermost first */
    Py_ssize_t count = 0, programs = 0;
    PyObject *kind = NULL, *sleep_frame = NULL;
    void *first_program = NULL, *outer_program = NULL, *second_program = NULL;
    int result = -1;
    PyFrameObject *current = NULL;
    if (frame != Py_None) {
        if (!PyFrame_Check(frame)) {
            return 0;
        }
        current = (PyFrameObject *)Py_NewRef(frame);
    }
    for (int depth = 0; current != NULL && depth < MAX_DEPTH; depth++) {
        PyCodeObject *code = PyFrame_GetCode(current);
        PyObject *code_id = PyLong_FromVoidPtr(code);
        if (code_id == NULL) {
            Py_DECREF(code);
            goto done;
        }
        PyObject *entry = PyDict_GetItemWithError(self->roles, code_id);
        if (entry == NULL || !PyTuple_CheckExact(entry) || PyTuple_GET_SIZE(entry) != 2 ||
            PyTuple_GET_ITEM(entry, 1) != (PyObject *)code) {
            Py_DECREF(code_id);
            Py_DECREF(code);
            result = PyErr_Occurred() ? -1 : 0; /* a code object seen for the first time: Python */
            goto done;
        }
        long role = PyLong_AsLong(PyTuple_GET_ITEM(entry, 0));
        if (role == -1 && PyErr_Occurred()) {
            Py_DECREF(code_id);
            Py_DECREF(code);
            goto done;
        }
        if (role == self->role_program) {
            PyObject *lasti;
            if (frame_lasti(current, &lasti) < 0) {
                Py_DECREF(code_id);
                Py_DECREF(code);
                goto done;
            }
            positions[count++] = code_id; /* the references move to the arrays */
            positions[count++] = lasti;
            codes[programs++] = (PyObject *)code;
            if (first_program == NULL) {
                first_program = current;
            }
            second_program = outer_program;
            outer_program = current;
        }
        else {
            Py_DECREF(code_id);
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
    PyObject *due;
    if (sleep_frame != NULL) {
        due = sleep_due(self, sleep_frame, now_obj, now);
        if (due == NULL) {
            goto done;
        }
    }
    else {
        due = PyFloat_FromDouble(0.0);
        if (due == NULL) {
            goto done;
        }
    }
    PyObject *site = Py_None;
    Py_INCREF(site);
    if (count > 0) {
        PyObject *key = PyTuple_New(count);
        if (key == NULL) {
            Py_DECREF(due);
            Py_DECREF(site);
            goto done;
        }
        for (Py_ssize_t i = 0; i < count; i++) {
            PyTuple_SET_ITEM(key, i, positions[i]);
        }
        count = 0; /* the tuple holds them now */
        PyObject *frames = PyDict_GetItemWithError(self->sites, key);
        if (frames != NULL) {
            Py_INCREF(frames);
        }
        else if (!PyErr_Occurred()) {
            PyObject *code_list = PyList_New(programs);
            if (code_list != NULL) {
                for (Py_ssize_t i = 0; i < programs; i++) {
                    PyList_SET_ITEM(code_list, i, Py_NewRef(codes[i]));
                }
                frames = PyObject_CallMethodObjArgs(self->probe, s_site_frames, key, code_list, NULL);
                Py_DECREF(code_list);
            }
        }
        Py_DECREF(key);
        if (frames == NULL) {
            Py_DECREF(due);
            Py_DECREF(site);
            goto done;
        }
        /* the callee: the frame the outermost program frame called (itself when alone) */
        PyObject *callee = PyLong_FromVoidPtr(second_program != NULL ? second_program : first_program);
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
    for (Py_ssize_t i = 0; i < count; i++) {
        Py_DECREF(positions[i]);
    }
    for (Py_ssize_t i = 0; i < programs; i++) {
        Py_DECREF(codes[i]);
    }
    Py_XDECREF(current);
    Py_XDECREF(sleep_frame);
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

/* running[ident] = [record, now, None, cpu0] */
static int
publish(PyObject *running, PyObject *ident, PyObject *record, PyObject *now_obj, double cpu0)
{
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

/* GreenletProbe._switch: 0, or -1 with an exception set */
static int
do_switch(Hook *self, PyObject *origin, PyObject *target, PyObject *now_obj, double now)
{
    int status = -1;
    PyObject *sampler = NULL, *running = NULL, *ident = NULL, *key = NULL, *ledger = NULL, *live = NULL,
             *step_start = NULL;

    sampler = PyObject_GetAttr(self->probe, s_sampler);
    if (sampler == NULL) {
        return -1;
    }
    if (sampler == Py_None) { /* no sampler to publish steps in: the Python hook */
        Py_DECREF(sampler);
        return call_drop(PyObject_CallMethodObjArgs(self->probe, s_switch_py, origin, target, now_obj, NULL));
    }
    self->switches++;
    running = PyObject_GetAttr(sampler, s_running);
    if (running == NULL) {
        goto done;
    }
    if (!PyDict_CheckExact(running)) {
        PyErr_SetString(PyExc_TypeError, "the sampler's running table is not a dict");
        goto done;
    }
    ident = PyLong_FromUnsignedLong(PyThread_get_thread_ident());
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
        PyObject *kind = PyObject_GetAttr(PyList_GET_ITEM(slot, 0), s_kind);
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
            Py_DECREF(slot);
        }
    }
    ledger = PyObject_GetAttr(self->probe, s_ledger);
    if (ledger == NULL) {
        goto done;
    }
    live = PyObject_GetAttr(ledger, s_live);
    if (live == NULL) {
        goto done;
    }
    key = PyLong_FromVoidPtr(origin);
    if (key == NULL) {
        goto done;
    }
    PyObject *hub = PyDict_GetItemWithError(self->hubs, key);
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
            if ((began == -1.0 && PyErr_Occurred()) || attr_double(record, s_running_s, &running_s) < 0) {
                goto done;
            }
            PyObject *sum = PyFloat_FromDouble(running_s + (now - began));
            if (sum == NULL) {
                goto done;
            }
            int set = PyObject_SetAttr(record, s_running_s, sum);
            Py_DECREF(sum);
            if (set < 0 || PyList_SetItem(segment, 0, Py_NewRef(Py_None)) < 0) {
                goto done;
            }
        }
    }
    else {
        int no_parent = attr_none(origin, s_parent);
        if (no_parent < 0) {
            goto done;
        }
        if (!no_parent) {
            PyObject *record = PyDict_GetItemWithError(live, key);
            if (record == NULL && PyErr_Occurred()) {
                goto done;
            }
            if (record != NULL) {
                Py_INCREF(record);
                int dead = attr_true(origin, s_dead);
                int failed = dead < 0;
                if (dead > 0) {
                    failed = call_drop(PyObject_CallMethodObjArgs(self->probe, s_finished, origin, record, step_start,
                                                                  now_obj, NULL)) < 0;
                }
                else if (dead == 0) {
                    PyObject *frame = PyObject_GetAttr(origin, s_gr_frame);
                    PyObject *steps = frame != NULL ? PyObject_GetAttr(record, s_steps) : NULL;
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
                        PyObject *call[6] = {record, step_start, now_obj, kind, due, site};
                        failed = call_drop(PyObject_Vectorcall(self->step_ended, call, 6, NULL)) < 0;
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
    }
    /* the target's starts */
    int no_parent = attr_none(target, s_parent);
    if (no_parent < 0) {
        goto done;
    }
    if (no_parent) { /* a thread's main greenlet is the thread itself */
        status = 0;
        goto done;
    }
    Py_SETREF(key, PyLong_FromVoidPtr(target));
    if (key == NULL) {
        goto done;
    }
    hub = PyDict_GetItemWithError(self->hubs, key);
    if (hub == NULL && PyErr_Occurred()) {
        goto done;
    }
    if (hub != NULL) {
        if (!valid_hub(hub) || PyList_SetItem(PyTuple_GET_ITEM(hub, 1), 0, Py_NewRef(now_obj)) < 0) {
            goto done;
        }
        status = publish(running, ident, PyTuple_GET_ITEM(hub, 0), now_obj, -1.0);
        goto done;
    }
    PyObject *unit = PyDict_GetItemWithError(live, key);
    if (unit == NULL) {
        if (!PyErr_Occurred()) { /* seen for the first time: a hub, or a greenlet to track */
            status = call_drop(PyObject_CallMethodObjArgs(self->probe, s_start_new, target, now_obj, running, ident,
                                                          NULL));
        }
        goto done;
    }
    Py_INCREF(unit);
    double longest, cpu0 = -1.0;
    int failed = attr_double(unit, s_longest_step_s, &longest) < 0;
    if (!failed && longest > 0.002) {
        PyObject *cpu = PyObject_CallNoArgs(self->thread_time);
        failed = cpu == NULL;
        if (!failed) {
            cpu0 = PyFloat_AsDouble(cpu);
            Py_DECREF(cpu);
            failed = cpu0 == -1.0 && PyErr_Occurred();
        }
    }
    if (!failed) {
        PyObject *call[2] = {unit, now_obj};
        failed = call_drop(PyObject_Vectorcall(self->step_started, call, 2, NULL)) < 0;
    }
    if (!failed) {
        failed = publish(running, ident, unit, now_obj, cpu0) < 0;
    }
    Py_DECREF(unit);
    status = failed ? -1 : 0;
done:
    Py_XDECREF(sampler);
    Py_XDECREF(running);
    Py_XDECREF(ident);
    Py_XDECREF(key);
    Py_XDECREF(ledger);
    Py_XDECREF(live);
    Py_XDECREF(step_start);
    return status;
}

static PyObject *
Hook_call(Hook *self, PyObject *args, PyObject *kwds)
{
    PyObject *event, *pair;
    if (self->probe == NULL) {
        Py_RETURN_NONE;
    }
    if (!PyArg_UnpackTuple(args, "hook", 2, 2, &event, &pair)) {
        return NULL;
    }
    int active = attr_true(self->probe, s_active);
    if (active <= 0) {
        if (active < 0) {
            return NULL;
        }
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
    PyObject *origin = PySequence_GetItem(pair, 0);
    PyObject *target = origin != NULL ? PySequence_GetItem(pair, 1) : NULL;
    PyObject *now_obj = target != NULL ? PyObject_CallNoArgs(self->clock) : NULL;
    if (now_obj != NULL) {
        double now = PyFloat_AsDouble(now_obj);
        if (!(now == -1.0 && PyErr_Occurred())) {
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
Hook_get_switches(Hook *self, void *closure)
{
    return PyLong_FromUnsignedLongLong(self->switches);
}

static PyObject *
Hook_release(Hook *self, PyObject *unused)
{
    Hook_clear(self);
    Py_RETURN_NONE;
}

static PyGetSetDef Hook_getset[] = {
    {"switches", (getter)Hook_get_switches, NULL, "switches handled here", NULL},
    {NULL},
};

static PyMethodDef Hook_methods[] = {
    {"release", (PyCFunction)Hook_release, METH_NOARGS, "drop every reference (the probe is done with it)"},
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
    .tp_methods = Hook_methods,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_switch_hook", "The greenlet probe's switch hook in C (optional).", -1, NULL,
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
    if (PyType_Ready(&HookType) < 0) {
        return NULL;
    }
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) {
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
