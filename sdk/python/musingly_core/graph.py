"""Cycle search over a prerequisite graph: iterative, linear in nodes plus edges.

The guide's recursive DFS overflows Python's stack on a long chain; this one keeps its own stack,
so a 100,000-spark chain is fine, and a chain with one back edge is reported with that edge.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Cycle:
    """A cycle as node indices ``nodes[0] -> ... -> nodes[-1] -> nodes[0]``; ``back_edge`` closes it."""

    nodes: tuple[int, ...]
    back_edge: int


def find_cycles(node_count: int, edges: list[tuple[int, int]], limit: int = 10) -> list[Cycle]:
    """Return up to ``limit`` cycles of the directed graph ``edges`` (pairs of node indices).

    Each reported cycle is closed by a distinct back edge of a depth-first search, so removing the
    reported back edges of a graph with one cycle makes it acyclic. Self-loops are the caller's to
    report; they are skipped here.
    """
    adjacency: list[list[tuple[int, int]]] = [[] for _ in range(node_count)]
    for index, (source, target) in enumerate(edges):
        if source != target:
            adjacency[source].append((target, index))

    WHITE, GREY, BLACK = 0, 1, 2
    colour = bytearray(node_count)
    position = [-1] * node_count  # index of a grey node in `path`
    cycles: list[Cycle] = []

    for root in range(node_count):
        if colour[root] != WHITE or not adjacency[root]:
            continue
        path = [root]
        cursor = [0]  # next adjacency position to explore, per path entry
        colour[root] = GREY
        position[root] = 0
        while path:
            node = path[-1]
            neighbours = adjacency[node]
            i = cursor[-1]
            if i < len(neighbours):
                cursor[-1] = i + 1
                target, edge_index = neighbours[i]
                state = colour[target]
                if state == WHITE:
                    colour[target] = GREY
                    position[target] = len(path)
                    path.append(target)
                    cursor.append(0)
                elif state == GREY:
                    cycles.append(Cycle(tuple(path[position[target]:]), edge_index))
                    if len(cycles) >= limit:
                        return cycles
            else:
                colour[node] = BLACK
                position[node] = -1
                path.pop()
                cursor.pop()
    return cycles
