"""Checking the names in an entry's ``modules:`` list.

Three kinds of name:

- a module this runtime provides (the caller passes the list: the registry does not know
  the Lua layer): fine;
- a module of upstream Wippy that this runtime does not provide (``sql``, ``http_client``
  ...): a **warning**. The project is valid Wippy and everything that does not
  ``require`` the module runs; the ``require`` itself fails at run time. Refusing to load
  would stop whole upstream projects over one entry;
- any other name: an **error** (a typo, or a module of no Wippy runtime), with the closest
  known name as a suggestion.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Collection

# Upstream's module names (the runtime's ModuleDef names, plus the newer docs' archive),
# the always-present core globals that are ModuleDefs too, and the standard libraries.
UPSTREAM_MODULES = frozenset({
    "archive", "base64", "cdc", "cloudstorage", "compress", "contract", "crypto", "ctx", "env",
    "eval_runner", "events", "excel", "exec", "expr", "fs", "funcs", "hash", "html", "http",
    "http_client", "hub", "io", "json", "loader", "logger", "metrics", "os", "payload", "pg",
    "process", "queue", "registry", "security", "sql", "store", "stream", "system", "templates",
    "text", "time", "treesitter", "tty", "uuid", "websocket", "workflow", "yaml",
    "channel", "print", "pubsub",
})
STANDARD_LIBRARIES = frozenset({"table", "math", "string", "coroutine", "errors", "utf8"})

Report = Callable[[str | None, str], None]


def check_modules(names: list[str], provided: Collection[str], report: Report, warn: Report) -> None:
    """Report each name of a ``modules:`` list (already checked to be strings)."""
    known = set(provided) | UPSTREAM_MODULES | STANDARD_LIBRARIES
    for name in names:
        if name in provided or name in STANDARD_LIBRARIES:
            continue
        if name in UPSTREAM_MODULES:
            warn("modules", f"module '{name}' is an upstream Wippy module that this runtime does not "
                            f"provide: the entry loads, but require(\"{name}\") fails when it runs")
            continue
        close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]}?)" if close else ""
        if ":" in name:
            hint = " (modules: names built-in modules; entries go in imports: {alias: ns:name})"
        report("modules", f"unknown module '{name}'{hint}")


__all__ = ["STANDARD_LIBRARIES", "UPSTREAM_MODULES", "check_modules"]
