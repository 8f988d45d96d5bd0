"""Load-time checks of ``lifecycle`` blocks: field types, durations, restart policy,
dependencies that exist, and no dependency cycles.

Any kind may carry a lifecycle (services, hosts, plugin kinds), and the supervisor reads
them all the same way, so these checks apply to every entry rather than one kind.
"""

from __future__ import annotations

from collections.abc import Callable

from wippy.durations import DurationError, parse_duration
from wippy.registry.entry import Entry, Registry
from wippy.registry.graph import describe, find_cycles
from wippy.registry.kinds import lookup_kind
from wippy.registry.schema import suggest

Report = Callable[[str | None, str], None]

# field -> (smallest allowed seconds, whether that bound is exclusive)
_DURATIONS: dict[str, tuple[float, bool]] = {
    "start_timeout": (0.0, True),
    "stop_timeout": (0.0, True),
    "stable_threshold": (0.0, False),
}
_RESTART_DURATIONS = ("initial_delay", "max_delay")
DEPENDENCY_FIELDS = ("requires", "depends_on")


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _duration(value: object, path: str, report: Report, low: float, exclusive: bool) -> float | None:
    try:
        seconds = parse_duration(value)
    except DurationError as exc:
        report(path, str(exc))
        return None
    if seconds < low or (exclusive and seconds == low):
        report(path, f"must be {'greater than' if exclusive else 'at least'} {low:g}s, got {value!r}")
        return None
    return seconds


LIFECYCLE_FIELDS = ("auto_start", "start_timeout", "stop_timeout", "stable_threshold", "requires", "depends_on",
                    "startup", "security", "restart")
RESTART_FIELDS = ("initial_delay", "max_delay", "backoff_factor", "jitter", "max_attempts")


def check_lifecycle(entry: Entry, registry: Registry, report: Report) -> None:
    """Report every wrong field of ``entry.lifecycle`` (the block itself being a mapping
    is checked by the loader)."""
    lc = entry.lifecycle
    for key in lc:
        if key not in LIFECYCLE_FIELDS:
            report(f"lifecycle.{key}", "is not a lifecycle field" + suggest(str(key), LIFECYCLE_FIELDS))
    if "auto_start" in lc and not isinstance(lc["auto_start"], bool):
        report("lifecycle.auto_start", f"must be true or false, got {lc['auto_start']!r}")
    for key, (low, exclusive) in _DURATIONS.items():
        if key in lc:
            _duration(lc[key], f"lifecycle.{key}", report, low, exclusive)
    for key in DEPENDENCY_FIELDS:
        _check_dependencies(entry, registry, key, report)
    if "restart" in lc:
        _check_restart(lc["restart"], report)


def _check_dependencies(entry: Entry, registry: Registry, key: str, report: Report) -> None:
    deps = entry.lifecycle.get(key)
    if deps is None:
        return
    path = f"lifecycle.{key}"
    if not isinstance(deps, list) or not all(isinstance(d, str) and d for d in deps):
        report(path, "must be a list of entry IDs")
        return
    for dep in deps:
        target = entry.resolve(dep)
        if registry.get(target) is None and target not in registry.broken:
            report(path, f"refers to {target}, which does not exist")


def _check_restart(restart: object, report: Report) -> None:
    if not isinstance(restart, dict):
        report("lifecycle.restart", "must be a mapping (initial_delay, max_delay, backoff_factor, jitter, max_attempts)")
        return
    for key in restart:
        if key not in RESTART_FIELDS:
            report(f"lifecycle.restart.{key}", "is not a restart field" + suggest(str(key), RESTART_FIELDS))
    delays: dict[str, float] = {}
    for key in _RESTART_DURATIONS:
        if key in restart:
            seconds = _duration(restart[key], f"lifecycle.restart.{key}", report, 0.0, False)
            if seconds is not None:
                delays[key] = seconds
    if len(delays) == 2 and delays["max_delay"] < delays["initial_delay"]:
        report("lifecycle.restart.max_delay",
               f"({restart['max_delay']}) must not be shorter than initial_delay ({restart['initial_delay']})")
    if "backoff_factor" in restart:
        factor = restart["backoff_factor"]
        if not _is_number(factor) or factor < 1:
            report("lifecycle.restart.backoff_factor", f"must be a number of at least 1 (e.g. 2.0), got {factor!r}")
    if "jitter" in restart:
        jitter = restart["jitter"]
        if not _is_number(jitter) or not 0 <= jitter <= 1:
            report("lifecycle.restart.jitter", f"must be a fraction between 0 and 1 (0.1 = ±10%), got {jitter!r}")
    if "max_attempts" in restart:
        attempts = restart["max_attempts"]
        if not isinstance(attempts, int) or isinstance(attempts, bool) or attempts < 0:
            report("lifecycle.restart.max_attempts",
                   f"must be a whole number, 0 or more (0 = retry forever), got {attempts!r}")


def _implied(entry: Entry) -> dict[str, str]:
    """``field -> entry ID`` for the kind's ``starts_after`` fields that hold a reference."""
    spec = lookup_kind(entry.kind)
    fields = spec.starts_after if spec is not None else ()
    return {f: entry.resolve(ref) for f in fields if isinstance(ref := entry.data.get(f), str) and ref}


def dependencies(entry: Entry, registry: Registry) -> list[str]:
    """Existing entries that must be running before ``entry`` starts: ``lifecycle.requires``
    / ``depends_on`` plus the kind's implied ones (a ``process.service`` needs its host)."""
    deps = [*entry.dependencies, *_implied(entry).values()]
    return [d for d in dict.fromkeys(deps) if d in registry.entries]


def dependency_graph(registry: Registry) -> dict[str, list[str]]:
    """``entry ID -> IDs it must start after`` over existing entries."""
    return {e.id: dependencies(e, registry) for e in registry}


def _resolved(entry: Entry, key: str) -> list[str]:
    deps = entry.lifecycle.get(key)
    return [entry.resolve(d) for d in deps if isinstance(d, str) and d] if isinstance(deps, list) else []


def check_dependency_cycles(registry: Registry, report: Callable[[Entry, str | None, str], None]) -> None:
    """Report each lifecycle dependency cycle once, on its first entry (by ID)."""
    for cycle in find_cycles(dependency_graph(registry)):
        first = registry.entries[cycle[0]]
        nxt = cycle[1] if len(cycle) > 1 else cycle[0]
        fields = [f"lifecycle.{k}" for k in DEPENDENCY_FIELDS if nxt in _resolved(first, k)]
        fields += [f for f, target in _implied(first).items() if target == nxt]
        report(first, fields[0] if fields else None, f"lifecycle dependency cycle: {describe(cycle)} (no order can start these)")


__all__ = ["DEPENDENCY_FIELDS", "check_dependency_cycles", "check_lifecycle", "dependencies", "dependency_graph"]
