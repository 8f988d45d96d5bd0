"""The route table of one server: patterns as Go's ``ServeMux`` reads them.

A pattern is a path with ``{name}`` segments (one segment each; ``:name`` is read as
``{name}``), an optional ``{name...}`` last segment (the rest of the path, not exposed as
a parameter), and a trailing ``/`` for a subtree (it matches everything below). When
several patterns match a path, the most specific wins: compared segment by segment, a
literal beats ``{name}``, which beats a tail or subtree. A route whose method does not
match still counts for the ``405`` answer and its ``Allow`` header; every route also
answers ``OPTIONS`` (``204``, through its router's middleware), and a ``GET`` route
answers ``HEAD``.

Literal paths (most endpoints) are a dictionary lookup; only patterns with parameters
are tried one by one.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from wippy.errors import INVALID, WippyError

LITERAL, ONE, REST = 3, 2, 1
ANY_METHOD = "*"


@dataclass(frozen=True)
class Pattern:
    text: str
    segments: tuple[tuple[int, str], ...]  # (kind, literal text or parameter name)
    subtree: bool

    @classmethod
    def parse(cls, path: str) -> Pattern:
        if not path.startswith("/"):
            raise WippyError(INVALID, f"path must start with '/', got {path!r}", retryable=False)
        subtree = path.endswith("/")
        parts = [p for p in path.strip("/").split("/")] if path.strip("/") else []
        segments: list[tuple[int, str]] = []
        for i, part in enumerate(parts):
            if part.startswith(":") and len(part) > 1:
                part = "{" + part[1:] + "}"
            if part.startswith("{") and part.endswith("}"):
                name = part[1:-1]
                if name.endswith("..."):
                    if i != len(parts) - 1:
                        raise WippyError(INVALID, f"{path}: a {{name...}} segment must be the last one",
                                         retryable=False)
                    segments.append((REST, name[:-3]))
                else:
                    segments.append((ONE, name))
            elif "{" in part or "}" in part:
                raise WippyError(INVALID, f"{path}: a parameter must be a whole segment ({part!r})",
                                 retryable=False)
            else:
                segments.append((LITERAL, part))
        return cls(path, tuple(segments), subtree and not (segments and segments[-1][0] == REST))

    @property
    def literal(self) -> bool:
        return not self.subtree and all(kind == LITERAL for kind, _ in self.segments)

    @property
    def rank(self) -> tuple[int, ...]:
        return tuple(kind for kind, _ in self.segments) + ((0,) if self.subtree else ())

    @property
    def shape(self) -> tuple[Any, ...]:
        """Two patterns of one shape match the same paths (a conflict on one method)."""
        return tuple(text if kind == LITERAL else kind for kind, text in self.segments), self.subtree

    def match(self, parts: list[str]) -> dict[str, str] | None:
        segments = self.segments
        n = len(segments)
        if self.subtree:
            if len(parts) <= n:
                return None
        elif not (segments and segments[-1][0] == REST):
            if len(parts) != n:
                return None
        elif len(parts) < n:
            return None
        params: dict[str, str] = {}
        for i, (kind, text) in enumerate(segments):
            if kind == REST:
                break
            part = parts[i]
            if kind == LITERAL:
                if part != text:
                    return None
            elif not part:
                return None
            else:
                params[text] = part
        return params


@dataclass
class Route:
    """What answers a pattern for one method (``*``: any method, a static mount)."""

    pattern: Pattern
    method: str
    target: Any  # the server's handler object (an endpoint or a static mount)
    pre: tuple[Any, ...] = ()  # router middleware (also wraps the automatic OPTIONS answer)
    post: tuple[Any, ...] = ()
    middleware: tuple[Any, ...] = field(init=False, repr=False, compare=False)  # pre, then post
    found: Match = field(init=False, repr=False, compare=False)  # the answer to a request naming it literally

    def __post_init__(self) -> None:
        self.middleware = self.pre + self.post
        self.found = Match(self)


@dataclass
class Match:
    """Where a request goes. (Shared by every request of a literal route: read only.)"""

    route: Route | None = None
    params: dict[str, str] = field(default_factory=dict)
    status: int = 200  # 404, 405, 301 when route is None
    allow: str = ""
    location: str = ""
    auto_options: bool = False  # route is the one whose middleware answers OPTIONS


class RouteTable:
    def __init__(self) -> None:
        self.literal: dict[str, dict[str, Route]] = {}
        self.patterns: list[tuple[Pattern, dict[str, Route]]] = []
        self._shapes: dict[tuple[Any, ...], dict[str, Route]] = {}

    def add(self, route: Route, owner: str) -> None:
        """Add ``route``; raises INVALID when a route of the same method and shape exists."""
        pattern = route.pattern
        methods = self._shapes.get(pattern.shape)
        if methods is None:
            methods = self._shapes[pattern.shape] = {}
            if pattern.literal:
                self.literal[pattern.text] = methods
            else:
                self.patterns.append((pattern, methods))
                self.patterns.sort(key=lambda item: item[0].rank, reverse=True)
        other = methods.get(route.method)
        if other is not None:
            raise WippyError(INVALID, f"route conflicts: {owner} ({route.method} {pattern.text}) and "
                                      f"{other.target} ({other.method} {other.pattern.text}) match the same requests",
                             retryable=False)
        methods[route.method] = route

    def match(self, method: str, raw_path: str) -> Match:
        methods = self.literal.get(raw_path)
        if methods is not None:
            route = _pick(methods, method)
            if route is not None:
                return route.found
        clean = clean_path(raw_path)
        if clean != raw_path:
            return Match(status=301, location=clean)
        parts = [unquote(p) for p in raw_path[1:].split("/")]
        found: list[tuple[dict[str, Route], dict[str, str]]] = [(methods, {})] if methods is not None else []
        for pattern, by_method in self.patterns:  # most specific first
            params = pattern.match(parts)
            if params is not None:
                found.append((by_method, params))
        for by_method, params in found:
            route = _pick(by_method, method)
            if route is not None:
                return Match(route, params)
        if not found:
            return self._not_found(raw_path)
        if method == "OPTIONS":
            return Match(next(iter(found[0][0].values())), found[0][1], auto_options=True)
        allowed: set[str] = {"OPTIONS"}
        for by_method, _ in found:
            allowed.update(by_method)
        if "GET" in allowed:
            allowed.add("HEAD")
        return Match(status=405, allow=", ".join(sorted(allowed)))

    def _not_found(self, raw_path: str) -> Match:
        if not raw_path.endswith("/"):  # "/static" when only the subtree "/static/" exists
            parts = [unquote(p) for p in (raw_path + "/")[1:].split("/")]
            for pattern, _ in self.patterns:
                if pattern.subtree and len(parts) == len(pattern.segments) + 1 and pattern.match(parts) is not None:
                    return Match(status=301, location=raw_path + "/")
        return Match(status=404)


def _pick(methods: dict[str, Route], method: str) -> Route | None:
    route = methods.get(method)
    if route is None and method == "HEAD":
        route = methods.get("GET")
    if route is None:
        route = methods.get(ANY_METHOD)
    return route


def clean_path(path: str) -> str:
    """``//a/./b/../c/`` -> ``/a/c/`` (keeps a trailing slash), as Go's mux cleans paths."""
    if "//" not in path and "/." not in path:
        return path
    clean = posixpath.normpath(path)
    if clean.startswith("//"):
        clean = "/" + clean.lstrip("/")
    if path.endswith("/") and clean != "/":
        clean += "/"
    return clean


def join(prefix: str, path: str) -> str:
    """A router prefix and an endpoint path: ``"/api" + "/users"``; ``"" + "/x"``."""
    return (prefix.rstrip("/") + path) if prefix else path
