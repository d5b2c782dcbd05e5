"""Enumeration of the one-particle label tuples that make up the many-body basis."""

from __future__ import annotations

from collections.abc import Iterator

__all__ = ["one_particle_labels", "enumerate_groups"]

_EPS = 1e-9


def one_particle_labels(n_species: int, max_degree: float, w_L: float) -> list[tuple]:
    """All labels ``(z, n, l)`` with n ≥ 1, l ≥ 0 and ``n + w_L l ≤ max_degree``, sorted."""
    out = []
    for z in range(n_species):
        n = 1
        while n <= max_degree + _EPS:
            l = 0
            while n + w_L * l <= max_degree + _EPS:
                out.append((z, n, l))
                l += 1
            n += 1
    return sorted(out)


def enumerate_groups(n_species: int, order: int, total_degree: float,
                     w_L: float) -> Iterator[tuple[int, tuple]]:
    """Yield ``(centre, labels)`` for every label multiset of the many-body basis.

    ``labels`` is a sorted tuple of ``(z, n, l)`` of length ν = 1 … ``order`` with
    ``Σ (n + w_L l) ≤ total_degree`` and even ``Σ l``; order: centre, then ν, then labels.
    """
    labels = one_particle_labels(n_species, total_degree, w_L)
    degree = [n + w_L * l for _, n, l in labels]
    for center in range(n_species):
        for nu in range(1, order + 1):
            yield from ((center, t) for t in _multisets(labels, degree, nu, total_degree))


def _multisets(labels, degree, nu, budget):
    out = []

    def rec(start, chosen, left, lsum):
        if len(chosen) == nu:
            if lsum % 2 == 0:
                out.append(tuple(labels[i] for i in chosen))
            return
        remaining = nu - len(chosen) - 1
        for i in range(start, len(labels)):
            d = degree[i]
            # every further factor has degree ≥ 1 (n ≥ 1)
            if d + remaining > left + _EPS:
                continue
            chosen.append(i)
            rec(i, chosen, left - d, lsum + labels[i][2])
            chosen.pop()

    rec(0, [], budget, 0)
    return out
