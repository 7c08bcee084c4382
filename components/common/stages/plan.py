"""Which dvc.yaml stages a run executes, in which order: the plan, read from DVC's own graph.

dvc.yaml stays the one definition of each stage: a driver (the Prefect flow, a script, a
test) names the steps it expects, in order, and :class:`StageDrift` is raised when the two
disagree. Optional steps (pretraining, the paper experiments) run only the stages the params
ask for (:class:`OptionalStep`); the planner itself knows no stage by name.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

__all__ = ["StageDrift", "DvcGraph", "OptionalStep", "dvc_graph", "stage_plan"]


class StageDrift(RuntimeError):
    """dvc.yaml and a driver's stage list disagree (a stage was added, removed or reordered)."""


@dataclass
class DvcGraph:
    """The stages of one dvc.yaml: ``names`` in dependency order (foreach items expanded as
    ``name@item``), each stage's upstream stages and its declared outputs (paths as written)."""

    names: list[str]
    upstream: dict[str, set[str]]
    outs: dict[str, list[str]] = field(default_factory=dict)


def dvc_graph(root: str | Path) -> DvcGraph:
    """Read ``root/dvc.yaml`` through DVC (so foreach/matrix and params interpolation apply)."""
    import networkx as nx
    from dvc.repo import Repo

    root = Path(root).resolve()
    with Repo(str(root)) as repo:
        graph = repo.index.graph
        ours = {s for s in graph.nodes if Path(s.path) == root / "dvc.yaml"}
        order = [s for s in reversed(list(nx.topological_sort(graph))) if s in ours]
        # ``name`` (not ``addressing``, which is relative to the current directory)
        upstream = {s.name: {d.name for d in graph.successors(s) if d in ours} for s in ours}
        outs = {s.name: [str(o.def_path) for o in s.outs] for s in ours}
    return DvcGraph([s.name for s in order], upstream, outs)


def _group(name: str, order: Sequence[str]) -> str | None:
    """The flow step a stage belongs to: ``pretrain``, ``pretrain@mae`` and ``pretrain_mae``
    all belong to ``pretrain``."""
    for group in sorted(order, key=len, reverse=True):
        if name == group or name.startswith((group + "@", group + "_")):
            return group
    return None


def _method(name: str, group: str) -> str:
    return name[len(group) + 1:] if name != group else group


def _value(params: Mapping[str, Any], dotted: str) -> Any:
    node: Any = params
    for key in dotted.split("."):
        node = node.get(key) if isinstance(node, Mapping) else None
    return node


def _listed(params: Mapping[str, Any], dotted: str) -> set[str]:
    return {str(m) for m in (_value(params, dotted) or [])}


@dataclass(frozen=True)
class OptionalStep:
    """A driver step whose stages run only when the params ask for them.

    Args:
        members: dotted params key listing the members to run (``experiments.run``); None:
            the step's stages run only when a planned stage depends on them (``curate`` before
            image-text pretraining, ``proposals`` before object-aware crops).
        needed_for: dotted params keys holding a path; the member stage whose dvc.yaml outputs
            contain that path runs too (``model.checkpoint`` -> the stage that writes it).
        without_stage: members that may be listed but need no stage (``random`` init).
    """

    members: str | None
    needed_for: tuple[str, ...] = ()
    without_stage: tuple[str, ...] = ()


def stage_plan(graph: DvcGraph, order: Sequence[str],
               optional: Mapping[str, OptionalStep | str] | Iterable[str] = (),
               params: Mapping[str, Any] | None = None) -> list[str]:
    """The dvc.yaml stages a run executes, in the driver's ``order`` of steps.

    Every stage of a required step runs. An optional step's stages are named ``<step>``,
    ``<step>@<member>`` or ``<step>_<member>``; ``optional`` maps each optional step to its
    :class:`OptionalStep` (a string is its ``members`` key; a plain list of steps means
    ``<step>.methods``). Whatever a planned stage depends on in dvc.yaml runs too, so params
    that list nothing and name no path run no optional stage.

    Raises :class:`StageDrift` when dvc.yaml has a stage no step claims, lacks a required
    step, a listed member has no stage, or ``order`` puts a stage before one it depends on.
    """
    order, params = list(order), params or {}
    optional = ({g: s if isinstance(s, OptionalStep) else OptionalStep(s)
                 for g, s in optional.items()} if isinstance(optional, Mapping)
                else {g: OptionalStep(f"{g}.methods") for g in optional})
    groups = {n: _group(n, order) for n in graph.names}
    unknown = sorted(n for n, g in groups.items() if g is None)
    missing = [g for g in order if g not in optional and g not in groups.values()]
    if unknown or missing:
        raise StageDrift(
            "dvc.yaml and the flow's stage list disagree: "
            + (f"dvc.yaml stages unknown to the flow: {unknown}. " if unknown else "")
            + (f"flow stages missing from dvc.yaml: {missing}. " if missing else "")
            + "Add the stage to both (dvc.yaml and the flow's STAGES in flows/pipeline.py).")

    picked = {n: _method(n, g) for n, g in groups.items() if g in optional}
    selected = {n for n, g in groups.items() if g not in optional}
    for group, step in optional.items():
        listed = _listed(params, step.members) if step.members else set()
        have = {m for n, m in picked.items() if groups[n] == group}
        unlisted = listed - have - set(step.without_stage)
        if unlisted:
            raise StageDrift(f"params {step.members} lists {sorted(unlisted)} but dvc.yaml has "
                             f"no stage for them (has: {sorted(have)})")
        paths = [p for p in (_value(params, k) for k in step.needed_for) if p]
        selected |= {n for n, m in picked.items() if groups[n] == group and (
            m in listed or any(_same_path(p, graph.outs.get(n, [])) for p in paths))}
    todo = list(selected)
    while todo:  # everything a selected stage depends on runs too (DVC's own rule)
        for dep in graph.upstream.get(todo.pop(), ()):
            if dep not in selected:
                selected.add(dep)
                todo.append(dep)
    plan = [n for g in order for n in graph.names if groups[n] == g and n in selected]
    for i, name in enumerate(plan):
        for dep in graph.upstream.get(name, ()):
            if plan.index(dep) > i:
                raise StageDrift(f"the flow runs {name!r} before {dep!r}, but dvc.yaml makes "
                                 f"{name!r} depend on it: fix the order in flows/pipeline.py")
    return plan


def _same_path(path: str, outs: Iterable[str]) -> bool:
    target = Path(path)
    return any(target == Path(o) or Path(o) in target.parents for o in outs)
