"""The optional C part of advisor: the greenlet probe's switch hook (everything else is
configured in pyproject.toml). ``optional=True``: where it cannot be compiled (no
compiler, no Python headers), the install goes on and the probe runs its Python hook."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("advisor.probes._switch_hook", ["probes/_switch_hook.c"], optional=True)])
