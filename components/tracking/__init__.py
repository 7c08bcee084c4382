"""MLflow tracking: per-stage runs under one pipeline run, lineage, the detector pyfunc model
and the registry's promotion gate.

Modules (import them directly; this package imports nothing heavy):
  * :mod:`.runs`: ``stage_run(stage, params)``, ``current_pipeline_id()``, ``parent_run_id()``,
    ``find_failed_run(stage)``;
  * :mod:`.lineage`: ``git_info()``, ``package_versions()``, ``dataset_hash(dir)`` (DVC's hash);
  * :mod:`.pyfunc_model`: ``DetectorPyFunc``, ``log_detector_model(config, weights)``;
  * :mod:`.promotion`: the promotion gate: ``decide(...)`` (pure rule), ``promote(...)``,
    ``rollback(name)``;
  * :mod:`.publish`: what a pipeline run shows when it ends (Markdown, tables, MLflow links);
  * :mod:`.cli`: ``python -m components.tracking {register,rollback,show}``.
"""
