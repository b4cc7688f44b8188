"""The optional C parts of advisor: the greenlet probe's switch hook, the sampler's stack
capture, deep mode's yappi context callbacks, the route table's fold and the WSGI
middleware's common call (everything else is configured in pyproject.toml). ``optional=True``:
where they cannot be compiled (no compiler, no Python headers), the install goes on and
the probes run their Python versions."""

from setuptools import Extension, setup

SHARED = {"include_dirs": ["probes"], "depends": ["probes/_slots.h", "probes/_code_extra.h", "probes/_hold_clock.h"]}  # shared headers
setup(ext_modules=[Extension("advisor.probes._switch_hook", ["probes/_switch_hook.c"], optional=True, **SHARED),
                   Extension("advisor.probes._stacks", ["probes/_stacks.c"], optional=True, **SHARED),
                   Extension("advisor.probes._yappi_context", ["probes/_yappi_context.c"], optional=True),
                   Extension("advisor.embed._fold", ["advisor/embed/_fold.c"], optional=True, **SHARED),
                   Extension("advisor.embed._gate", ["advisor/embed/_gate.c"], optional=True)])
