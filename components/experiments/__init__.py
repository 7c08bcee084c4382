"""Paper experiments (arXiv 2111.11429) as one command each: variants x seeds -> MLflow + report.

``python -m components.experiments run fpn`` fine-tunes and evaluates every variant of the
``fpn`` experiment at every seed (each in its own process, all under one MLflow parent run),
then writes ``reports/fpn/`` (report.md, results.csv, results.json, PNGs).

Built-in experiments (importing this package registers them): ``fpn`` (Table 2),
``attention`` (Table 3), ``heads`` (Sec. 4 upgraded modules), ``transfer`` (Table 1 +
Figure 2); from the other papers ``mobilevit`` (SSDLite backbones) and ``objectaware``
(SSL crop policies, probe + detection transfer). Adding one is one module with a
:func:`register_experiment` call (see :mod:`components.experiments.registry`) imported below.

Public API: :func:`components.experiments.runner.run_experiment`,
:func:`components.experiments.report.write_report`, the registry names below.
"""
from components.experiments.registry import (EXPERIMENTS, BarChart, Column, ExperimentSpec,
                                             Variant, VariantError, get_experiment,
                                             register_experiment)
from components.experiments import (attention, fpn, heads, mobilevit,  # noqa: F401,E402
                                    objectaware, transfer)

__all__ = ["EXPERIMENTS", "BarChart", "Column", "ExperimentSpec", "Variant", "VariantError",
           "get_experiment", "register_experiment"]
