"""Helpers shared by the tests and the benchmarks; not part of the product (``components/``).

* :mod:`testkit.finetune`: tiny fine-tuning setups (a validated synthetic dataset, params for
  a model that trains an iteration in well under a second, one shared run per session);
* :mod:`testkit.flows`: isolated project copies, a toy pipeline with the real stage names,
  background servers stopped by PID, Prefect queries (flow tests and the Prefect benchmark).

Importable from the project root (pytest's ``pythonpath = ["."]``; benchmarks put the root
on ``sys.path``).
"""
