"""The paper's classify_face vote, and one label per person across the faces of a frame."""

from __future__ import annotations

from collections.abc import Sequence

from .types import UNKNOWN, Label, Match

Candidate = Match | tuple[Label, float]

__all__ = ["UNKNOWN", "assign_unique", "candidate_matches", "classify_face"]


def classify_face(
    neighbours: Sequence[tuple[Label, float]],
    *,
    k1: int,
    k2: int,
    threshold: float,
) -> Match:
    """The paper's decision for one probe, from its (label, L2 distance) neighbours.

    1. Take the ``k2`` nearest neighbours (sorted by distance here, ties keep their order).
    2. Among the first ``k1``, the neighbours within ``threshold`` (distance <= threshold) vote
       one each; a class with strictly the most votes is the answer.
    3. If that gives no decision (nobody within the threshold, or a tie for the most votes),
       the neighbours ``k1..k2`` within the threshold join the vote.
    4. Still tied: the tied class with the nearest neighbour wins (what Counter.most_common
       gives on a distance-ordered list, i.e. the paper's code). No votes at all: UNKNOWN.

    The Match carries the winner's nearest distance and its vote count.
    """
    if not 1 <= k1 <= k2:
        raise ValueError(f"need 1 <= k1 <= k2, got k1={k1}, k2={k2}")
    ranked = sorted(neighbours, key=lambda pair: pair[1])[:k2]
    passing = [(label, float(distance)) for label, distance in ranked if distance <= threshold]
    # ranked is ascending, so the passing neighbours are a prefix of it and those among the
    # first k1 are the first k1 of them.
    first = passing[:k1]
    decision = _vote(first, break_ties=False)
    if decision is None:
        decision = _vote(passing, break_ties=True)
    return decision or UNKNOWN


def _vote(voters: Sequence[tuple[Label, float]], *, break_ties: bool) -> Match | None:
    if not voters:
        return None
    votes: dict[Label, int] = {}
    nearest: dict[Label, float] = {}
    for label, distance in voters:  # nearest first, so the first distance seen is the least
        votes[label] = votes.get(label, 0) + 1
        nearest.setdefault(label, distance)
    most = max(votes.values())
    leaders = [label for label, count in votes.items() if count == most]
    if len(leaders) > 1 and not break_ties:
        return None
    winner = leaders[0]  # dicts keep insertion order: the leader with the nearest neighbour
    return Match(label=winner, distance=nearest[winner], votes=most)


def candidate_matches(
    neighbours: Sequence[tuple[Label, float]],
    *,
    k1: int,
    k2: int,
    threshold: float,
) -> list[Match]:
    """classify_face's answer first, then the other labels among the ``k2`` nearest that are
    within the threshold, nearest first: the choices assign_unique falls back on. Empty for an
    unknown face."""
    best = classify_face(neighbours, k1=k1, k2=k2, threshold=threshold)
    if best.is_unknown:
        return []
    ranked = sorted(neighbours, key=lambda pair: pair[1])[:k2]
    others: dict[Label, Match] = {}
    for label, distance in ranked:
        if distance > threshold or label == best.label:
            continue
        if label in others:
            previous = others[label]
            others[label] = Match(label, previous.distance, previous.votes + 1)
        else:
            others[label] = Match(label, float(distance), 1)
    return [best, *others.values()]


def assign_unique(candidates: Sequence[Sequence[Candidate]]) -> list[Match]:
    """One Match per face of a frame such that no two faces get the same person.

    ``candidates[i]`` is face i's choices, best first (Matches, or (label, distance) pairs; see
    candidate_matches). Faces are settled in order of their best choice's distance, the most
    certain first; each takes its best choice that nobody took before it. So a face whose
    first choice is taken gets its next choice (also within the threshold), and UNKNOWN when
    none is left: the same person cannot be in two places, which makes the next choice the
    likelier reading, and attendance still asks for agreement over several snapshots.
    """
    choices = [[_as_match(c) for c in face] for face in candidates]
    choices = [[m for m in face if not m.is_unknown] for face in choices]
    order = sorted(
        range(len(choices)),
        key=lambda i: (choices[i][0].distance if choices[i] else float("inf"), i),
    )
    taken: set[Label] = set()
    result: list[Match] = [UNKNOWN] * len(choices)
    for i in order:
        for match in choices[i]:
            if match.label not in taken:
                taken.add(match.label)  # type: ignore[arg-type]  # unknowns were dropped above
                result[i] = match
                break
    return result


def _as_match(candidate: Candidate) -> Match:
    if isinstance(candidate, Match):
        return candidate
    label, distance = candidate
    return Match(label=label, distance=float(distance), votes=1)
