/* Shared by advisor's C parts: where a type's fields are, as plain object slots.
 *
 * The switch hook (UnitRecord) and the route fold (RouteAggregate, LogHistogram) read and
 * write Python objects' __slots__ in place. A field can be used so only when its descriptor
 * is a member of type object, writable, inside the instance, on a type whose attribute
 * access is the generic one (no __getattr__ or __setattr__ of its own).
 */
#ifndef ADVISOR_SLOTS_H
#define ADVISOR_SLOTS_H

#include <Python.h>

#ifndef Py_T_OBJECT_EX /* before 3.12 */
#include <structmember.h>
#define Py_T_OBJECT_EX T_OBJECT_EX
#define Py_READONLY READONLY
#endif

/* each named field's offset: 1 when all are plain object slots, 0 when one is not (the
 * caller's Python does the work then), -1 with an exception set on error */
static inline int
find_slot_offsets(PyTypeObject *type, const char *const *names, int count, Py_ssize_t *offsets)
{
    if (type->tp_getattro != PyObject_GenericGetAttr || type->tp_setattro != PyObject_GenericSetAttr) {
        return 0;
    }
    for (int field = 0; field < count; field++) {
        PyObject *descr = PyObject_GetAttrString((PyObject *)type, names[field]);
        if (descr == NULL) {
            if (!PyErr_ExceptionMatches(PyExc_AttributeError)) {
                return -1;
            }
            PyErr_Clear();
            return 0;
        }
        int plain = Py_IS_TYPE(descr, &PyMemberDescr_Type);
        if (plain) {
            PyMemberDef *member = ((PyMemberDescrObject *)descr)->d_member;
            plain = member->type == Py_T_OBJECT_EX && !(member->flags & Py_READONLY) &&
                    member->offset >= (Py_ssize_t)sizeof(PyObject) &&
                    member->offset + (Py_ssize_t)sizeof(PyObject *) <= type->tp_basicsize;
            offsets[field] = member->offset;
        }
        Py_DECREF(descr);
        if (!plain) {
            return 0;
        }
    }
    return 1;
}

#endif
