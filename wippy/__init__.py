"""wippy: a Python runtime for Wippy-style Lua functions, actors and durable workflows."""

from wippy.errors import LoadError, Problem, WippyError
from wippy.host.runtime import Runtime
from wippy.registry import Registry, load_project

__all__ = ["LoadError", "Problem", "Registry", "Runtime", "WippyError", "load_project"]
__version__ = "0.1.0"
