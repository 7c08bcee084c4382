"""mmengine hooks of the fine-tuning stage (registered in mmengine's ``HOOKS``).

- :class:`MLflowMetricsHook`: per-iteration losses + lr and per-epoch val metrics into the
  *active* MLflow run (the stage's nested run), batched every ``interval`` iterations and sent
  with MLflow's asynchronous logging, so the training thread only appends to a list. Names are
  stable across runs: ``train/loss``, ``train/loss_rpn_cls``, ..., ``train/lr``,
  ``train/iter_time``; ``val/bbox_mAP``, ``val/segm_mAP_50``, ... (mmdet's ``coco/`` prefix
  replaced by ``val/``). Train metrics use ``step = iteration``, val metrics ``step = epoch``.
  (mmengine's ``MLflowVisBackend`` is not used: it opens its own run.)
- :class:`ValBeforeTrainHook`: scores the initialised detector on the val split before the first
  iteration (epoch 0 of the val curve): the "AP before fine-tuning" every run reports.
- :class:`NonFiniteLossGuardHook`: fails the run after ``patience`` consecutive NaN/inf losses.
- :class:`RunStateHook`: after each checkpoint, records its SHA-256 in the work dir's
  ``run_state.json`` (the marker :mod:`components.train.resume` checks before trusting a file).
"""
from __future__ import annotations

import math
import time
from typing import Any

from mmengine.hooks import Hook
from mmengine.registry import HOOKS

__all__ = ["MLflowMetricsHook", "ValBeforeTrainHook", "NonFiniteLossGuardHook", "RunStateHook",
           "NonFiniteLossError"]


class NonFiniteLossError(FloatingPointError):
    """Raised by :class:`NonFiniteLossGuardHook`; the stage exits non-zero."""


def _val_name(key: str) -> str:
    return "val/" + key.split("/", 1)[1] if "/" in key else f"val/{key}"


@HOOKS.register_module()
class MLflowMetricsHook(Hook):
    """Log training scalars to the active MLflow run.

    Args:
        interval: flush the buffered metrics every this many iterations (and at epoch ends,
            after validation and at the end of the run).
    """

    priority = "BELOW_NORMAL"  # after IterTimerHook (NORMAL) has recorded the iteration time

    def __init__(self, interval: int = 10) -> None:
        self.interval = max(1, int(interval))
        self._buffer: list = []
        self._pending: list = []
        self._client = None
        self._run_id: str | None = None
        self.seconds_in_hook = 0.0  # time the training thread spent here (benchmark)

    # -- lifecycle
    def before_run(self, runner) -> None:
        import mlflow

        run = mlflow.active_run()
        if run is None:
            runner.logger.warning("MLflowMetricsHook: no active MLflow run; metrics not logged")
            return
        self._client = mlflow.MlflowClient()
        self._run_id = run.info.run_id

    def after_train_iter(self, runner, batch_idx: int, data_batch: Any = None,
                         outputs: dict | None = None) -> None:
        if self._run_id is None:
            return
        t0 = time.perf_counter()
        from mlflow.entities import Metric

        step = runner.iter + 1
        now = int(time.time() * 1000)
        values: dict[str, float] = {}
        for key, value in (outputs or {}).items():
            values[f"train/{key}"] = float(value.detach() if hasattr(value, "detach") else value)
        lrs = runner.optim_wrapper.get_lr()
        first = next(iter(lrs.values()))
        values["train/lr"] = float(max(first))  # base lr (layer decay only scales down)
        hub = runner.message_hub
        if "train/time" in hub.log_scalars:
            values["train/iter_time"] = float(hub.get_scalar("train/time").current())
        self._buffer.extend(Metric(k, v if math.isfinite(v) else float("nan"), now, step)
                            for k, v in values.items())
        if step % self.interval == 0:
            self._flush()
        self.seconds_in_hook += time.perf_counter() - t0

    def after_train_epoch(self, runner) -> None:
        self._flush()

    def after_val_epoch(self, runner, metrics: dict | None = None) -> None:
        self.log_val(metrics, runner.epoch)

    def log_val(self, metrics: dict | None, epoch: int) -> None:
        """``val/*`` metrics at ``step = epoch`` (0 = before fine-tuning), sent at once."""
        if self._run_id is None or not metrics:
            return
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self._buffer.extend(Metric(_val_name(k), float(v), now, epoch)
                            for k, v in metrics.items() if isinstance(v, (int, float)))
        self._flush()

    def after_run(self, runner) -> None:
        self.close()

    def close(self) -> None:
        """Send what is buffered and wait for the asynchronous writes (idempotent)."""
        self._flush()
        for op in self._pending:
            op.wait()
        self._pending.clear()

    def _flush(self) -> None:
        if not self._buffer or self._run_id is None:
            return
        batch, self._buffer = self._buffer, []
        for i in range(0, len(batch), 1000):  # MLflow's per-request metric limit
            op = self._client.log_batch(self._run_id, metrics=batch[i:i + 1000],
                                        synchronous=False)
            if op is not None:
                self._pending.append(op)
        # keep the list short: completed operations need no waiting
        if len(self._pending) > 64:
            for op in self._pending[:-8]:
                op.wait()
            self._pending = self._pending[-8:]


@HOOKS.register_module()
class ValBeforeTrainHook(Hook):
    """Evaluate the detector as initialised (random init, or a pretrained backbone with fresh
    heads) on the val split once, before the first iteration; skipped on resume.

    Why: "did fine-tuning help?" needs the AP of the starting point. The metrics go where the
    per-epoch ones go, as epoch 0: mmengine's json log (so ``train_log.jsonl`` and the
    AP-per-epoch plot start at the initialisation) and MLflow ``val/*`` at step 0. It drives the
    val loop's dataloader and evaluator itself instead of ``val_loop.run()``, so no checkpoint
    hook ever saves the untrained model as the "best" one.
    """

    priority = "LOW"  # after weights are initialised / loaded (Runner.train does that first)

    def before_train(self, runner) -> None:
        import torch

        loop = getattr(runner, "_val_loop", None)
        if runner.iter > 0 or loop is None or isinstance(loop, dict):
            return
        model = runner.model
        model.eval()
        with torch.no_grad():
            for batch in loop.dataloader:
                loop.evaluator.process(data_samples=model.val_step(batch), data_batch=batch)
        metrics = loop.evaluator.evaluate(len(loop.dataloader.dataset))
        model.train()
        shown = ", ".join(f"{k.split('/')[-1]} {v:.4f}" for k, v in metrics.items()
                          if k.endswith(("bbox_mAP", "bbox_mAP_50", "segm_mAP")))
        runner.logger.info(f"before fine-tuning (epoch 0 on val): {shown}")
        runner.visualizer.add_scalars(metrics, step=0, file_path=f"{runner.timestamp}.json")
        for hook in runner.hooks:
            if isinstance(hook, MLflowMetricsHook):
                hook.log_val(metrics, 0)


@HOOKS.register_module()
class NonFiniteLossGuardHook(Hook):
    """Raise :class:`NonFiniteLossError` after ``patience`` consecutive non-finite losses.

    The optimizer wrapper (:class:`components.train.optim.FiniteLossOptimWrapper`) has already
    skipped those updates, so a transient bad batch is survivable when ``patience > 1``.
    """

    priority = "HIGH"

    def __init__(self, patience: int = 3) -> None:
        if patience < 1:
            raise ValueError(f"finetune.nan_patience must be >= 1, got {patience}")
        self.patience = int(patience)
        self.consecutive = 0

    def after_train_iter(self, runner, batch_idx: int, data_batch: Any = None,
                         outputs: dict | None = None) -> None:
        loss = (outputs or {}).get("loss")
        if loss is None:
            return
        value = float(loss.detach()) if hasattr(loss, "detach") else float(loss)
        if math.isfinite(value):
            self.consecutive = 0
            return
        self.consecutive += 1
        runner.logger.warning(f"non-finite loss ({value}) at iter {runner.iter + 1} "
                              f"({self.consecutive}/{self.patience}); update skipped")
        if self.consecutive >= self.patience:
            kind = "NaN" if math.isnan(value) else "inf"
            raise NonFiniteLossError(
                f"loss became {kind} at iter {runner.iter + 1}; lower finetune.lr or check data "
                f"({self.consecutive} consecutive non-finite losses, "
                f"finetune.nan_patience={self.patience})")


@HOOKS.register_module()
class RunStateHook(Hook):
    """Record each new checkpoint (name + SHA-256) in ``<work_dir>/run_state.json``.

    Runs after mmengine's ``CheckpointHook`` (priority VERY_LOW) in ``after_train_epoch``, and
    stamps ``meta['vitdet_run']`` (config hash) into every checkpoint it is about to save.
    """

    priority = "LOWEST"

    def __init__(self, config_hash: str) -> None:
        self.config_hash = config_hash

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint.setdefault("meta", {})["vitdet_run"] = dict(config_hash=self.config_hash)

    def after_train_epoch(self, runner) -> None:
        from components.train.resume import record_checkpoint

        record_checkpoint(runner.work_dir)
