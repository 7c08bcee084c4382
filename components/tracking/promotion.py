"""The promotion gate: every evaluated model is registered; only a clear winner becomes champion.

Why: serving reads ``models:/<name>@champion``. A retrained model must beat the champion by a
margin *on the same data* (equal DVC hash) before that alias moves, and a broken evaluation
(NaN metric, unfinished run) must never move it.

Two layers:
  * :func:`decide` is the pure rule (property-tested with many examples);
  * :func:`promote` / :func:`rollback` apply it to the MLflow registry through the thin
    :class:`MlflowRegistry` adapter. All alias changes come LAST, as one commit step that
    restores the previous aliases if any of its calls fails, so a failed or interrupted
    promotion leaves every alias where it was. Single writer assumed (one register stage at
    a time per model name).

What is recorded on each new version (tags): ``run_id`` (evaluation run), ``data_hash``,
``metric.<key>`` for every numeric metric, ``metric_key``, ``candidate_metric``,
``champion_metric``, ``previous_champion`` (champion version at decision time, "" if none),
``decided_at`` (UTC ISO), ``decision`` (promoted | rejected | error) and ``reason``.
The registered model carries ``champion_history``: a JSON list of
``{"version", "event": "promote"|"rollback", "from", "at"}`` (newest last, capped).
:func:`rollback` follows the current champion's ``previous_champion`` tag, so repeated
rollbacks walk back through the champions in the order they were replaced.
"""
from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any, Mapping

__all__ = [
    "CHAMPION",
    "CHALLENGER",
    "HISTORY_TAG",
    "Champion",
    "Decision",
    "decide",
    "promote",
    "rollback",
    "describe",
    "MlflowRegistry",
]

log = logging.getLogger(__name__)

CHAMPION = "champion"
CHALLENGER = "challenger"
HISTORY_TAG = "champion_history"
HISTORY_MAX = 200  # entries kept in the registered-model tag


# --------------------------------------------------------------------------- pure rule
@dataclass(frozen=True)
class Champion:
    """What the gate knows about the current champion."""
    version: str
    metric: float | None
    data_hash: str | None


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def decide(candidate: float, data_hash: str, champion: Champion | None, *, min_ap: float,
           margin: float, run_status: str = "FINISHED",
           bad_metrics: tuple[str, ...] = ()) -> tuple[bool, str]:
    """Should the candidate become champion? Returns (promote, reason).

    Rules, in order: the evaluation run must be FINISHED; no metric may be NaN/inf
    (``bad_metrics`` names them); with no champion, promote iff ``candidate >= min_ap``;
    otherwise only a champion evaluated on the same data (equal ``data_hash``) is comparable,
    and the candidate must reach ``min_ap`` and ``champion.metric + margin``.
    Since ``margin >= 0``, a promoted candidate is never worse than the champion it replaces.
    """
    if not (_finite(min_ap) and _finite(margin) and margin >= 0):
        raise ValueError(f"gate settings: need finite min_ap and margin >= 0, got {min_ap}, {margin}")
    if run_status != "FINISHED":
        return False, f"evaluation run status is {run_status}, not FINISHED: metrics not trusted"
    if bad_metrics or not _finite(candidate):
        names = ", ".join(bad_metrics) or "candidate metric"
        return False, f"metrics are NaN/inf ({names}): evaluation is broken, nothing promoted"
    if champion is None:
        if candidate >= min_ap:
            return True, f"first champion: {candidate:.4f} >= min_ap {min_ap:.4f}"
        return False, f"no champion yet and {candidate:.4f} < min_ap {min_ap:.4f}"
    if not data_hash or champion.data_hash != data_hash:
        return False, (f"not comparable: champion v{champion.version} was evaluated on data "
                       f"{champion.data_hash or '<unknown>'}, candidate on {data_hash or '<unknown>'}; "
                       "champion kept (re-evaluate the champion on the new data to compare)")
    if not _finite(champion.metric):
        return False, (f"champion v{champion.version} has no finite metric recorded; not comparable, "
                       "champion kept")
    if candidate < min_ap:
        return False, f"{candidate:.4f} < min_ap {min_ap:.4f}"
    needed = champion.metric + margin
    if candidate >= needed:
        return True, (f"beats champion v{champion.version}: {candidate:.4f} >= "
                      f"{champion.metric:.4f} + margin {margin:.4f}")
    return False, (f"does not beat champion v{champion.version} by the margin: {candidate:.4f} < "
                   f"{champion.metric:.4f} + {margin:.4f}")


# --------------------------------------------------------------------------- result
@dataclass
class Decision:
    """Outcome of :func:`promote` or :func:`rollback` (``to_dict`` is JSON-safe)."""
    action: str                      # "promote" | "rollback"
    promoted: bool                   # did the champion alias move to ``version``?
    model_name: str
    version: str | None              # the new version (promote) or the restored one (rollback)
    champion: str | None             # champion version after the decision
    previous_champion: str | None    # champion version before the decision
    reason: str
    metric_key: str | None = None
    candidate_metric: float | None = None
    champion_metric: float | None = None
    data_hash: str | None = None
    champion_data_hash: str | None = None
    run_id: str | None = None
    model_uri: str | None = None
    decided_at: str = field(default_factory=lambda: _now())

    def to_dict(self) -> dict[str, Any]:
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                for k, v in asdict(self).items()}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# --------------------------------------------------------------------------- registry adapter
class MlflowRegistry:
    """The registry calls the gate needs, nothing more (tests subclass it to inject faults)."""

    def __init__(self, client=None):
        from mlflow.tracking import MlflowClient

        self.client = client or MlflowClient()

    def run_status(self, run_id: str) -> str:
        return self.client.get_run(run_id).info.status

    def create_version(self, name: str, model_uri: str, tags: Mapping[str, str]) -> str:
        import mlflow

        return str(mlflow.register_model(model_uri, name, tags=dict(tags)).version)

    def aliases(self, name: str) -> dict[str, str]:
        return {k: str(v) for k, v in self.client.get_registered_model(name).aliases.items()}

    def model_tags(self, name: str) -> dict[str, str]:
        return dict(self.client.get_registered_model(name).tags)

    def version_tags(self, name: str, version: str) -> dict[str, str]:
        return dict(self.client.get_model_version(name, version).tags)

    def version_exists(self, name: str, version: str) -> bool:
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_model_version(name, version)
        except MlflowException:
            return False
        return True

    def version_run_metric(self, name: str, version: str, key: str) -> float | None:
        run_id = self.client.get_model_version(name, version).run_id
        return self.client.get_run(run_id).data.metrics.get(key) if run_id else None

    def set_version_tag(self, name: str, version: str, key: str, value: str) -> None:
        self.client.set_model_version_tag(name, version, key, value)

    def set_model_tag(self, name: str, key: str, value: str) -> None:
        self.client.set_registered_model_tag(name, key, value)

    def set_alias(self, name: str, alias: str, version: str) -> None:
        self.client.set_registered_model_alias(name, alias, version)

    def delete_alias(self, name: str, alias: str) -> None:
        self.client.delete_registered_model_alias(name, alias)


def _commit(reg: MlflowRegistry, name: str, aliases: Mapping[str, str],
            history_event: dict | None) -> None:
    """Set ``aliases`` (+ append to history) as one step: on any failure, restore what was."""
    before = reg.aliases(name)
    old_history = reg.model_tags(name).get(HISTORY_TAG)
    try:
        for alias, version in aliases.items():
            reg.set_alias(name, alias, version)
        if history_event is not None:
            history = _load_history(old_history)
            history.append(history_event)
            reg.set_model_tag(name, HISTORY_TAG, json.dumps(history[-HISTORY_MAX:]))
    except BaseException:
        for alias in aliases:
            try:
                if alias in before:
                    reg.set_alias(name, alias, before[alias])
                else:
                    reg.delete_alias(name, alias)
            except Exception as exc:  # report, keep restoring the rest
                log.error("could not restore alias %s@%s: %s", name, alias, exc)
        if history_event is not None and old_history is not None:
            try:
                reg.set_model_tag(name, HISTORY_TAG, old_history)
            except Exception as exc:
                log.error("could not restore %s tag: %s", HISTORY_TAG, exc)
        raise


def _load_history(text: str | None) -> list[dict]:
    try:
        value = json.loads(text) if text else []
    except ValueError:
        return []
    return value if isinstance(value, list) else []


def _champion_state(reg: MlflowRegistry, name: str, version: str | None,
                    metric_key: str) -> Champion | None:
    if version is None:
        return None
    tags = reg.version_tags(name, version)
    metric: float | None = None
    try:
        metric = float(tags[f"metric.{metric_key}"])
    except (KeyError, ValueError):
        try:
            metric = reg.version_run_metric(name, version, metric_key)
        except Exception:
            metric = None
    return Champion(version=version, metric=metric, data_hash=tags.get("data_hash"))


# --------------------------------------------------------------------------- gate
def promote(model_name: str, run_id: str, model_uri: str, metrics: Mapping[str, Any],
            data_hash: str, *, min_ap: float, margin: float, metric_key: str = "bbox_mAP",
            registry: MlflowRegistry | None = None) -> Decision:
    """Register ``model_uri`` as a new version of ``model_name`` and apply the gate.

    Args:
        run_id: the EVALUATION run whose metrics these are; it must be FINISHED.
        model_uri: the logged model (``ModelInfo.model_uri``, ``runs:/...`` or ``models:/m-...``).
        metrics: evaluation metrics; every numeric value must be finite; non-numeric values
            (paths...) are ignored.
        data_hash: DVC hash of the evaluation data (``lineage.dataset_hash``).

    The new version always gets the ``challenger`` alias; it also gets ``champion`` when
    :func:`decide` says so. Raises (leaving aliases untouched) on registry errors.
    """
    if metric_key not in metrics:
        raise KeyError(f"metric {metric_key!r} not in the evaluation metrics "
                       f"(have: {sorted(metrics)}); set register.metric_key or fix the evaluate stage")
    if not data_hash:
        raise ValueError("data_hash is empty: the evaluate stage must record the DVC hash of its data")
    reg = registry or MlflowRegistry()
    try:
        candidate = float(metrics[metric_key])
    except (TypeError, ValueError):
        candidate = math.nan
    numeric = {k: v for k, v in metrics.items()
               if isinstance(v, (int, float)) and not isinstance(v, bool)}
    bad = tuple(sorted(k for k, v in numeric.items() if not math.isfinite(v)))
    if not math.isfinite(candidate) and metric_key not in bad:
        bad = (metric_key, *bad)

    run_status = reg.run_status(run_id)
    version = reg.create_version(model_name, model_uri, {
        "run_id": run_id, "data_hash": data_hash, "metric_key": metric_key,
        **{f"metric.{k}": repr(float(v)) for k, v in numeric.items()},
    })
    try:
        previous = reg.aliases(model_name).get(CHAMPION)
        champion = _champion_state(reg, model_name, previous, metric_key)
        ok, reason = decide(candidate, data_hash, champion, min_ap=min_ap, margin=margin,
                            run_status=run_status, bad_metrics=bad)
        decision = Decision(
            action="promote", promoted=ok, model_name=model_name, version=version,
            champion=version if ok else previous, previous_champion=previous, reason=reason,
            metric_key=metric_key, candidate_metric=candidate,
            champion_metric=champion.metric if champion else None, data_hash=data_hash,
            champion_data_hash=champion.data_hash if champion else None, run_id=run_id,
            model_uri=model_uri,
        )
        for key, value in {
            "previous_champion": previous or "", "candidate_metric": repr(candidate),
            "champion_metric": "" if champion is None else repr(champion.metric),
            "decided_at": decision.decided_at, "decision": "promoted" if ok else "rejected",
            "reason": reason,
        }.items():
            reg.set_version_tag(model_name, version, key, value)
        aliases = {CHALLENGER: version, **({CHAMPION: version} if ok else {})}
        event = {"version": version, "event": "promote", "from": previous,
                 "at": decision.decided_at} if ok else None
        _commit(reg, model_name, aliases, event)  # LAST: nothing after this can fail the gate
    except BaseException as exc:
        try:
            reg.set_version_tag(model_name, version, "decision", "error")
            reg.set_version_tag(model_name, version, "reason", f"{type(exc).__name__}: {exc}"[:5000])
        except Exception:
            pass
        raise
    log.info("%s v%s: %s", model_name, version, reason)
    return decision


def rollback(model_name: str, *, registry: MlflowRegistry | None = None) -> Decision:
    """Move ``champion`` back to the version it replaced (the current champion's
    ``previous_champion`` tag). ``promoted`` is False, with the reason, when there is none."""
    reg = registry or MlflowRegistry()
    current = reg.aliases(model_name).get(CHAMPION)

    def refuse(reason: str) -> Decision:
        return Decision(action="rollback", promoted=False, model_name=model_name, version=None,
                        champion=current, previous_champion=current, reason=reason)

    if current is None:
        return refuse(f"{model_name} has no champion: nothing to roll back")
    target = reg.version_tags(model_name, current).get("previous_champion")
    if not target:
        return refuse(f"champion v{current} has no previous champion recorded")
    if not reg.version_exists(model_name, target):
        return refuse(f"previous champion v{target} no longer exists")
    now = _now()
    _commit(reg, model_name, {CHAMPION: target},
            {"version": target, "event": "rollback", "from": current, "at": now})
    try:
        reg.set_version_tag(model_name, current, "rolled_back_at", now)
    except Exception as exc:  # informational only; the alias already moved
        log.warning("could not tag v%s rolled_back_at: %s", current, exc)
    return Decision(action="rollback", promoted=True, model_name=model_name, version=target,
                    champion=target, previous_champion=current,
                    reason=f"rolled back from v{current} to v{target}", decided_at=now)


def describe(model_name: str, *, registry: MlflowRegistry | None = None) -> dict[str, Any]:
    """Aliases, champion history and each aliased version's decision tags (for ``show``)."""
    reg = registry or MlflowRegistry()
    aliases = reg.aliases(model_name)
    versions = {v: reg.version_tags(model_name, v) for v in sorted(set(aliases.values()), key=int)}
    return {"model_name": model_name, "aliases": aliases,
            "history": _load_history(reg.model_tags(model_name).get(HISTORY_TAG)),
            "versions": versions}
