/* Shared by advisor's C parts: a code object's co_extra slots (PEP 523), where a probe keeps
 * what it learned about a code object for as long as the code object lives. The functions
 * were made unstable API in 3.12; before that they carry an underscore.
 */
#ifndef ADVISOR_CODE_EXTRA_H
#define ADVISOR_CODE_EXTRA_H

#include <Python.h>

#if PY_VERSION_HEX >= 0x030C0000
#define GET_CODE_EXTRA PyUnstable_Code_GetExtra
#define SET_CODE_EXTRA PyUnstable_Code_SetExtra
#define REQUEST_CODE_EXTRA PyUnstable_Eval_RequestCodeExtraIndex
#else
#define GET_CODE_EXTRA _PyCode_GetExtra
#define SET_CODE_EXTRA _PyCode_SetExtra
#define REQUEST_CODE_EXTRA _PyEval_RequestCodeExtraIndex
#endif

#endif
