"""Finding cycles in entry graphs (imports, lifecycle dependencies) for load errors."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def find_cycles(graph: Mapping[str, Sequence[str]]) -> list[list[str]]:
    """One cycle per set of nodes that form a loop, each rotated to start at its
    smallest node so messages do not depend on file order. Iterative: deep import chains
    must not hit Python's recursion limit."""
    WHITE, GREY, BLACK = 0, 1, 2
    color = dict.fromkeys(graph, WHITE)
    found: dict[frozenset[str], list[str]] = {}
    for start in sorted(graph):
        if color[start] != WHITE:
            continue
        path: list[str] = [start]
        color[start] = GREY
        iters = [iter(sorted(graph.get(start, ())))]
        while iters:
            nxt = next(iters[-1], None)
            if nxt is None:
                color[path.pop()] = BLACK
                iters.pop()
                continue
            state = color.get(nxt)
            if state == GREY:
                cycle = path[path.index(nxt):]
                low = cycle.index(min(cycle))
                found.setdefault(frozenset(cycle), cycle[low:] + cycle[:low])
            elif state == WHITE:
                color[nxt] = GREY
                path.append(nxt)
                iters.append(iter(sorted(graph.get(nxt, ()))))
    return sorted(found.values())


def describe(cycle: Sequence[str]) -> str:
    """``a -> b -> a``: the cycle closed back on its first node."""
    return " -> ".join([*cycle, cycle[0]])


__all__ = ["describe", "find_cycles"]
