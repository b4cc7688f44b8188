/* The WSGI middleware's common request in C: AdvisorWSGIMiddleware's call for a request the
 * agent's gate lets through.
 *
 * Optional: advisor.embed.wsgi uses it as the middleware's base class when it was built,
 * and its Python call otherwise. The common request of a gevent.pywsgi server is: not for
 * the control endpoint, a route seen before, the agent's gate open (see meter.Gate), no
 * span listener, gevent.pywsgi's handler as start_response's owner (it keeps the status
 * code), and a list or tuple for a body. That request is measured here with the gate's
 * functions (the C switch hook's request_begin / request_end), exactly as
 * AdvisorWSGIMiddleware._serve would; any other one is handed to _serve, before anything
 * was measured. The route function is called once either way, or, where the route is named by
 * path templates (templates.PathTemplates, the default's too), the templates are matched here
 * without a call. While tracing is paused the hook's answer is asked through its capsule
 * (_switch_hook.c's _GATE_API), without calling its request_begin. What _serve does is the
 * reference: a change there is a change here.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

typedef struct {
    PyObject_HEAD
    PyObject *agent;         /* the Agent (its `fast` gate and its meter) */
    PyObject *app;           /* the WSGI app */
    PyObject *route_of;      /* the route function, and the one used where it fails */
    PyObject *default_route;
    PyObject *prefix;        /* the control endpoint's path prefix, NULL when it is off */
    PyObject *listeners;     /* span_stats.LISTENERS (a list) */
    PyObject *keeper_type;   /* gevent.pywsgi's WSGIHandler, NULL until _serve found it */
    Py_ssize_t fold_every;   /* routes.FOLD_EVERY */
    PyObject *patterns;      /* PathTemplates.patterns and .names where route_of is one, else NULL */
    PyObject *names;
    /* the C switch hook's answer for a request while tracing is paused, without calling its
     * request_begin (its capsule, _GATE_API), NULL where the hook was not built */
    int (*paused_request)(PyObject *hook);
} GatedCall;

/* the switch hook's capsule (probes/_switch_hook.c: the same layout, version 1) */
typedef struct {
    int version;
    int (*paused_request)(PyObject *hook);
} GateApi;
#define GATE_API_NAME "advisor.probes._switch_hook._GATE_API"

static PyObject *s_fast, *s_samples, *s_meter, *s_disable, *s_end, *s_fold, *s_status, *s_code, *s_serve,
    *s_streamed, *s_path_info, *s_request_method, *s_slash, *s_patterns, *s_names, *five_hundred;

/* the longest template matched here (a longer one is matched by PathTemplates' call) */
#define MAX_SEGMENTS 64

static int
GatedCall_traverse(GatedCall *self, visitproc visit, void *arg)
{
    Py_VISIT(self->agent);
    Py_VISIT(self->app);
    Py_VISIT(self->route_of);
    Py_VISIT(self->default_route);
    Py_VISIT(self->prefix);
    Py_VISIT(self->listeners);
    Py_VISIT(self->keeper_type);
    Py_VISIT(self->patterns);
    Py_VISIT(self->names);
    return 0;
}

static int
GatedCall_clear(GatedCall *self)
{
    Py_CLEAR(self->agent);
    Py_CLEAR(self->app);
    Py_CLEAR(self->route_of);
    Py_CLEAR(self->default_route);
    Py_CLEAR(self->prefix);
    Py_CLEAR(self->listeners);
    Py_CLEAR(self->keeper_type);
    Py_CLEAR(self->patterns);
    Py_CLEAR(self->names);
    return 0;
}

static void
GatedCall_dealloc(GatedCall *self)
{
    PyObject_GC_UnTrack(self);
    GatedCall_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* route_of's patterns (a tuple of tuples of str or None, none longer than MAX_SEGMENTS) and
 * names (a dict), where it is a PathTemplates (templates given): 1 with both set (new
 * references), 0 where they are not what this file matches (PathTemplates' call names the
 * routes), -1 on error */
static int
template_tables(PyObject *templates, PyObject **patterns, PyObject **names)
{
    *patterns = *names = NULL;
    if (templates == Py_None) {
        return 0;
    }
    *patterns = PyObject_GetAttr(templates, s_patterns);
    *names = *patterns != NULL ? PyObject_GetAttr(templates, s_names) : NULL;
    if (*names == NULL) {
        Py_CLEAR(*patterns);
        return -1;
    }
    int usable = PyTuple_CheckExact(*patterns) && PyDict_CheckExact(*names);
    for (Py_ssize_t i = 0; usable && i < PyTuple_GET_SIZE(*patterns); i++) {
        PyObject *pattern = PyTuple_GET_ITEM(*patterns, i);
        usable = PyTuple_CheckExact(pattern) && PyTuple_GET_SIZE(pattern) >= 1 &&
                 PyTuple_GET_SIZE(pattern) <= MAX_SEGMENTS;
        for (Py_ssize_t j = 0; usable && j < PyTuple_GET_SIZE(pattern); j++) {
            PyObject *part = PyTuple_GET_ITEM(pattern, j);
            usable = part == Py_None || PyUnicode_CheckExact(part);
        }
    }
    if (!usable) {
        Py_CLEAR(*patterns);
        Py_CLEAR(*names);
    }
    return usable;
}

/* _bind_gate(agent, app, route_of, default_route, prefix or None, listeners, fold_every,
 *            templates or None[, the switch hook's _GATE_API or None]) */
static PyObject *
GatedCall_bind(GatedCall *self, PyObject *args)
{
    PyObject *agent, *app, *route_of, *default_route, *prefix, *listeners, *templates, *patterns, *names;
    PyObject *gate_api = Py_None;
    Py_ssize_t fold_every;
    if (!PyArg_ParseTuple(args, "OOOOOO!nO|O", &agent, &app, &route_of, &default_route, &prefix, &PyList_Type,
                          &listeners, &fold_every, &templates, &gate_api)) {
        return NULL;
    }
    int (*paused_request)(PyObject *) = NULL;
    if (gate_api != Py_None) {
        GateApi *api = PyCapsule_GetPointer(gate_api, GATE_API_NAME);
        if (api == NULL) {
            return NULL;
        }
        paused_request = api->version == 1 ? api->paused_request : NULL; /* another layout: the call */
    }
    if (prefix != Py_None && !PyUnicode_Check(prefix)) {
        PyErr_SetString(PyExc_TypeError, "the control prefix is a str or None");
        return NULL;
    }
    if (template_tables(templates, &patterns, &names) < 0) {
        return NULL;
    }
    Py_XSETREF(self->patterns, patterns);
    Py_XSETREF(self->names, names);
    Py_XSETREF(self->agent, Py_NewRef(agent));
    Py_XSETREF(self->app, Py_NewRef(app));
    Py_XSETREF(self->route_of, Py_NewRef(route_of));
    Py_XSETREF(self->default_route, Py_NewRef(default_route));
    Py_XSETREF(self->prefix, prefix != Py_None ? Py_NewRef(prefix) : NULL);
    Py_XSETREF(self->listeners, Py_NewRef(listeners));
    self->fold_every = fold_every;
    self->paused_request = paused_request;
    Py_RETURN_NONE;
}

/* _set_keeper(handler type or None) */
static PyObject *
GatedCall_set_keeper(GatedCall *self, PyObject *keeper)
{
    if (keeper != Py_None && !PyType_Check(keeper)) {
        PyErr_SetString(PyExc_TypeError, "a keeper is a type or None");
        return NULL;
    }
    Py_XSETREF(self->keeper_type, keeper != Py_None ? Py_NewRef(keeper) : NULL);
    Py_RETURN_NONE;
}

/* path[start:end] == text */
static int
segment_equals(PyObject *text, int kind, const void *data, Py_ssize_t start, Py_ssize_t end)
{
    Py_ssize_t length = PyUnicode_GET_LENGTH(text);
    if (length != end - start) {
        return 0;
    }
    int text_kind = PyUnicode_KIND(text);
    const void *text_data = PyUnicode_DATA(text);
    if (text_kind == kind) {
        return memcmp((const char *)data + start * kind, text_data, (size_t)(length * kind)) == 0;
    }
    for (Py_ssize_t i = 0; i < length; i++) { /* one of them holds wider characters elsewhere */
        if (PyUnicode_READ(kind, data, start + i) != PyUnicode_READ(text_kind, text_data, i)) {
            return 0;
        }
    }
    return 1;
}

/* PathTemplates.match(path): the index of the first pattern whose segments the path's are
 * (a literal the same text, a placeholder, None, any but the empty one), or -1 */
static Py_ssize_t
match_patterns(PyObject *patterns, PyObject *path)
{
    /* where each of the path's segments begins, and one past the end of the last (as
     * path.split("/") cuts it: one more segment than slashes) */
    Py_ssize_t begins[MAX_SEGMENTS + 1], length = PyUnicode_GET_LENGTH(path), segments = 1;
    int kind = PyUnicode_KIND(path);
    const void *data = PyUnicode_DATA(path);
    begins[0] = 0;
    for (Py_ssize_t i = 0; i < length; i++) {
        if (PyUnicode_READ(kind, data, i) == '/') {
            if (segments == MAX_SEGMENTS) {
                return -1; /* longer than any pattern here */
            }
            begins[segments++] = i + 1;
        }
    }
    begins[segments] = length + 1;
    for (Py_ssize_t index = 0; index < PyTuple_GET_SIZE(patterns); index++) {
        PyObject *pattern = PyTuple_GET_ITEM(patterns, index);
        if (PyTuple_GET_SIZE(pattern) != segments) {
            continue;
        }
        Py_ssize_t part = 0;
        for (; part < segments; part++) {
            PyObject *expected = PyTuple_GET_ITEM(pattern, part);
            Py_ssize_t start = begins[part], end = begins[part + 1] - 1;
            if (expected == Py_None ? end == start : !segment_equals(expected, kind, data, start, end)) {
                break;
            }
        }
        if (part == segments) {
            return index;
        }
    }
    return -1;
}

/* f"{method} {path}" of two exact str */
static PyObject *
join_route(PyObject *method, PyObject *path)
{
    Py_ssize_t left = PyUnicode_GET_LENGTH(method), right = PyUnicode_GET_LENGTH(path);
    Py_UCS4 widest = PyUnicode_MAX_CHAR_VALUE(method) > PyUnicode_MAX_CHAR_VALUE(path) ? PyUnicode_MAX_CHAR_VALUE(method)
                                                                                       : PyUnicode_MAX_CHAR_VALUE(path);
    PyObject *route = PyUnicode_New(left + 1 + right, widest);
    if (route == NULL) {
        return NULL;
    }
    if (PyUnicode_CopyCharacters(route, 0, method, 0, left) < 0 || PyUnicode_WriteChar(route, left, ' ') < 0 ||
        PyUnicode_CopyCharacters(route, left + 1, path, 0, right) < 0) {
        Py_DECREF(route);
        return NULL;
    }
    return route;
}

/* the route PathTemplates' call would name (a new reference), without the call: NULL with no
 * exception set where the call must name it (a method or path that is not a str, a method
 * whose routes are not made yet), NULL with one on error */
static PyObject *
templated_route(GatedCall *self, PyObject *environ)
{
    PyObject *method = PyDict_GetItemWithError(environ, s_request_method);
    if (method == NULL || !PyUnicode_CheckExact(method)) {
        return NULL;
    }
    PyObject *path = PyDict_GetItemWithError(environ, s_path_info);
    if (path == NULL) {
        if (PyErr_Occurred()) {
            return NULL;
        }
        path = s_slash;
    }
    else if (!PyUnicode_CheckExact(path)) {
        return NULL;
    }
    else if (PyUnicode_GET_LENGTH(path) == 0) {
        path = s_slash;
    }
    Py_ssize_t index = match_patterns(self->patterns, path);
    if (index < 0) {
        return join_route(method, path);
    }
    PyObject *names = PyDict_GetItemWithError(self->names, method);
    if (names == NULL || !PyList_CheckExact(names) || PyList_GET_SIZE(names) <= index) {
        return NULL;
    }
    return Py_NewRef(PyList_GET_ITEM(names, index));
}

/* self._serve(environ, start_response, route): the Python way */
static PyObject *
serve(GatedCall *self, PyObject *environ, PyObject *start_response, PyObject *route)
{
    return PyObject_CallMethodObjArgs((PyObject *)self, s_serve, environ, start_response,
                                      route != NULL ? route : Py_None, NULL);
}

/* agent.meter.<name>(first, second), or (first) where second is NULL, its result dropped:
 * 0, or -1 with an exception set */
static int
meter_call(GatedCall *self, PyObject *name, PyObject *first, PyObject *second)
{
    PyObject *meter = PyObject_GetAttr(self->agent, s_meter);
    if (meter == NULL) {
        return -1;
    }
    PyObject *result = PyObject_CallMethodObjArgs(meter, name, first, second, NULL);
    Py_DECREF(meter);
    if (result == NULL) {
        return -1;
    }
    Py_DECREF(result);
    return 0;
}

/* the exception set, an Exception, handed to agent.meter.disable (what `except Exception as
 * failure: meter.disable(failure)` does): 0, or -1 with an exception set (not an
 * Exception, or disable's own) */
static int
disable_meter(GatedCall *self)
{
    if (!PyErr_ExceptionMatches(PyExc_Exception)) {
        return -1;
    }
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback);
    PyErr_NormalizeException(&type, &value, &traceback);
    if (traceback != NULL && value != NULL) {
        PyException_SetTraceback(value, traceback);
    }
    int status = meter_call(self, s_disable, value != NULL ? value : Py_None, NULL);
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(traceback);
    return status;
}

/* keeper.status is not None and keeper.code >= 500: 1, 0, or -1 with an exception set */
static int
server_error(PyObject *keeper)
{
    PyObject *status = PyObject_GetAttr(keeper, s_status);
    if (status == NULL) {
        return -1;
    }
    int none = status == Py_None;
    Py_DECREF(status);
    if (none) {
        return 0;
    }
    PyObject *code = PyObject_GetAttr(keeper, s_code);
    if (code == NULL) {
        return -1;
    }
    int failed = PyObject_RichCompareBool(code, five_hundred, Py_GE);
    Py_DECREF(code);
    return failed;
}

/* A request while tracing is paused (advisor.embed.windows): the app's body; the route's
 * aggregate appended to the table's unfolded list (routes.fold counts it, or, for a server
 * error, (aggregate, None, None, None, None, None, True)): no clock read, no object made */
static PyObject *
counted(GatedCall *self, PyObject *environ, PyObject *start_response, PyObject *handler, PyObject *aggregate,
        PyObject *fast)
{
    PyObject *keeper = Py_NewRef(handler);
    Py_INCREF(aggregate);
    PyObject *call[2] = {environ, start_response};
    PyObject *body = PyObject_Vectorcall(self->app, call, 2, NULL);
    int errored = body == NULL;
    if (body != NULL) { /* (a streamed body's status may be set later, at its first item: not an error then) */
        errored = server_error(keeper);
        if (errored < 0) {
            Py_DECREF(keeper);
            Py_DECREF(aggregate);
            Py_DECREF(body);
            return NULL;
        }
    }
    Py_DECREF(keeper);
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback); /* the app's exception, if any, goes on after */
    PyObject *unfolded = PyTuple_GET_ITEM(fast, 3);
    PyObject *entry = errored ? PyTuple_Pack(7, aggregate, Py_None, Py_None, Py_None, Py_None, Py_None, Py_True)
                              : Py_NewRef(aggregate);
    int failed = entry == NULL || PyList_Append(unfolded, entry) < 0;
    Py_XDECREF(entry);
    Py_DECREF(aggregate);
    if (!failed && PyList_GET_SIZE(unfolded) >= self->fold_every) {
        PyObject *folded = PyObject_CallMethodNoArgs(PyTuple_GET_ITEM(fast, 4), s_fold);
        failed = folded == NULL;
        Py_XDECREF(folded);
    }
    if (failed && disable_meter(self) < 0) {
        PyErr_Clear(); /* the request goes on either way */
    }
    PyErr_Restore(type, value, traceback);
    return body;
}

/* the request, measured through the gate or handed to _serve: the body (a new reference),
 * or NULL with an exception set */
static PyObject *
gated(GatedCall *self, PyObject *environ, PyObject *start_response)
{
    PyObject *route = NULL, *fast = NULL, *pending = NULL, *body = NULL, *result = NULL;
    if (!PyDict_CheckExact(environ)) {
        return serve(self, environ, start_response, NULL);
    }
    if (self->prefix != NULL) {
        PyObject *path = PyDict_GetItemWithError(environ, s_path_info);
        if (path == NULL && PyErr_Occurred()) {
            return NULL;
        }
        if (path == NULL || !PyUnicode_Check(path) || PyUnicode_GET_LENGTH(path) == 0) {
            path = s_slash;
        }
        Py_ssize_t starts = PyUnicode_Tailmatch(path, self->prefix, 0, PY_SSIZE_T_MAX, -1);
        if (starts != 0) {
            return starts < 0 ? NULL : serve(self, environ, start_response, NULL); /* maybe the endpoint's */
        }
    }
    /* route = route_of(environ), or default_route(environ) where it fails */
    route = self->patterns != NULL ? templated_route(self, environ) : NULL;
    if (route == NULL) {
        if (PyErr_Occurred()) {
            return NULL;
        }
        route = PyObject_CallOneArg(self->route_of, environ);
    }
    if (route == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_Exception)) {
            return NULL;
        }
        PyErr_Clear();
        route = PyObject_CallOneArg(self->default_route, environ);
        if (route == NULL) {
            return NULL;
        }
    }
    fast = PyObject_GetAttr(self->agent, s_fast);
    if (fast == NULL) {
        goto done;
    }
    PyObject *handler = PyMethod_Check(start_response) ? PyMethod_GET_SELF(start_response) : NULL;
    if (fast == Py_None || !PyTuple_CheckExact(fast) || PyTuple_GET_SIZE(fast) != 5 ||
        PyList_GET_SIZE(self->listeners) != 0 || self->keeper_type == NULL || handler == NULL ||
        !PyObject_TypeCheck(handler, (PyTypeObject *)self->keeper_type) ||
        !PyDict_CheckExact(PyTuple_GET_ITEM(fast, 2)) || !PyList_CheckExact(PyTuple_GET_ITEM(fast, 3))) {
        result = serve(self, environ, start_response, route);
        goto done;
    }
    PyObject *aggregate = PyDict_GetItemWithError(PyTuple_GET_ITEM(fast, 2), route);
    if (aggregate == NULL) {
        if (!PyErr_Occurred()) {
            result = serve(self, environ, start_response, route); /* a route not seen before */
        }
        goto done;
    }
    PyObject *begin = PyTuple_GET_ITEM(fast, 0);
    if (self->paused_request != NULL && PyCFunction_Check(begin) && PyCFunction_GET_SELF(begin) != NULL) {
        /* the hook's own answer while tracing is paused, without the call of request_begin */
        int paused = self->paused_request(PyCFunction_GET_SELF(begin));
        if (paused == 1) { /* the request counts in its route, no more */
            result = counted(self, environ, start_response, handler, aggregate, fast);
            goto done;
        }
        if (paused != 0) { /* the agent's way, or (-2) the meter disabled first, as for pending == NULL */
            if (paused == -1 || disable_meter(self) == 0) {
                result = serve(self, environ, start_response, route);
            }
            goto done;
        }
    }
    Py_INCREF(aggregate);
    PyObject *samples = PyObject_GetAttr(aggregate, s_samples);
    if (samples != NULL) {
        PyObject *call[2] = {aggregate, samples};
        pending = PyObject_Vectorcall(PyTuple_GET_ITEM(fast, 0), call, 2, NULL);
        Py_DECREF(samples);
    }
    Py_DECREF(aggregate);
    if (pending == NULL) {
        if (disable_meter(self) == 0) {
            result = serve(self, environ, start_response, route);
        }
        goto done;
    }
    if (pending == Py_None) {
        result = serve(self, environ, start_response, route);
        goto done;
    }
    if (pending == Py_False) { /* tracing is paused: the request counts in its route, no more */
        result = counted(self, environ, start_response, handler, aggregate, fast);
        goto done;
    }
    PyObject *keeper = Py_NewRef(handler);
    PyObject *call[2] = {environ, start_response};
    body = PyObject_Vectorcall(self->app, call, 2, NULL);
    if (body == NULL) { /* meter.end(pending, True), then the app's exception goes on */
        PyObject *type, *value, *traceback;
        PyErr_Fetch(&type, &value, &traceback);
        if (meter_call(self, s_end, pending, Py_True) < 0) {
            Py_XDECREF(type);
            Py_XDECREF(value);
            Py_XDECREF(traceback);
        }
        else {
            PyErr_Restore(type, value, traceback);
        }
        Py_DECREF(keeper);
        goto done;
    }
    if (!PyList_Check(body) && !PyTuple_Check(body)) { /* a streamed body: its close ends the request */
        result = PyObject_CallMethodObjArgs((PyObject *)self, s_streamed, body, pending, keeper, NULL);
        Py_DECREF(keeper);
        goto done;
    }
    int errored = server_error(keeper);
    Py_DECREF(keeper);
    if (errored < 0) {
        goto done;
    }
    PyObject *flag = errored ? Py_True : Py_False;
    PyObject *ending[3] = {pending, flag, PyTuple_GET_ITEM(fast, 3)};
    PyObject *waiting = PyObject_Vectorcall(PyTuple_GET_ITEM(fast, 1), ending, 3, NULL);
    int failed = waiting == NULL;
    if (!failed && waiting == Py_None) { /* the request did not end where it began: the meter's way */
        failed = meter_call(self, s_end, pending, flag) < 0;
    }
    else if (!failed) {
        Py_ssize_t count = PyLong_Check(waiting) ? PyLong_AsSsize_t(waiting) : 0;
        failed = count == -1 && PyErr_Occurred();
        if (!failed && count >= self->fold_every) {
            PyObject *folded = PyObject_CallMethodNoArgs(PyTuple_GET_ITEM(fast, 4), s_fold);
            failed = folded == NULL;
            Py_XDECREF(folded);
        }
    }
    Py_XDECREF(waiting);
    if (failed && disable_meter(self) < 0) {
        goto done;
    }
    result = Py_NewRef(body);
done:
    Py_XDECREF(route);
    Py_XDECREF(fast);
    Py_XDECREF(pending);
    Py_XDECREF(body);
    return result;
}

static PyObject *
GatedCall_call(GatedCall *self, PyObject *args, PyObject *kwds)
{
    if (self->agent == NULL || (kwds != NULL && PyDict_GET_SIZE(kwds) != 0) || PyTuple_GET_SIZE(args) != 2) {
        /* not bound yet, or not called as a WSGI server calls: the Python way, as it is */
        PyObject *method = PyObject_GetAttr((PyObject *)self, s_serve);
        if (method == NULL) {
            return NULL;
        }
        PyObject *result = PyObject_Call(method, args, kwds);
        Py_DECREF(method);
        return result;
    }
    return gated(self, PyTuple_GET_ITEM(args, 0), PyTuple_GET_ITEM(args, 1));
}

static PyMethodDef GatedCall_methods[] = {
    {"_bind_gate", (PyCFunction)GatedCall_bind, METH_VARARGS,
     "(agent, app, route_of, default_route, control prefix or None, listeners, fold_every, templates or None"
     "[, the switch hook's _GATE_API or None])"},
    {"_set_keeper", (PyCFunction)GatedCall_set_keeper, METH_O, "the handler type that keeps the status code"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject GatedCallType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "advisor.embed._gate.GatedCall",
    .tp_basicsize = sizeof(GatedCall),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The WSGI middleware's call for a request the agent's gate lets through (else its _serve).",
    .tp_new = PyType_GenericNew,
    .tp_dealloc = (destructor)GatedCall_dealloc,
    .tp_traverse = (traverseproc)GatedCall_traverse,
    .tp_clear = (inquiry)GatedCall_clear,
    .tp_call = (ternaryfunc)GatedCall_call,
    .tp_methods = GatedCall_methods,
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_gate", "The WSGI middleware's common request in C.",
                                    -1, NULL};

PyMODINIT_FUNC
PyInit__gate(void)
{
#define INTERN(var, text)                                                                                           \
    if ((var = PyUnicode_InternFromString(text)) == NULL) {                                                         \
        return NULL;                                                                                                \
    }
    INTERN(s_fast, "fast");
    INTERN(s_samples, "samples");
    INTERN(s_meter, "meter");
    INTERN(s_disable, "disable");
    INTERN(s_end, "end");
    INTERN(s_fold, "fold");
    INTERN(s_status, "status");
    INTERN(s_code, "code");
    INTERN(s_serve, "_serve");
    INTERN(s_streamed, "_streamed");
    INTERN(s_path_info, "PATH_INFO");
    INTERN(s_request_method, "REQUEST_METHOD");
    INTERN(s_patterns, "patterns");
    INTERN(s_names, "names");
    INTERN(s_slash, "/");
#undef INTERN
    if ((five_hundred = PyLong_FromLong(500)) == NULL || PyType_Ready(&GatedCallType) < 0) {
        return NULL;
    }
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) {
        return NULL;
    }
    if (PyModule_AddObjectRef(m, "GatedCall", (PyObject *)&GatedCallType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
