"""Evaluation stage: COCO bbox + segm AP of the fine-tuned model on a held-out split
(``python -m components.evaluate``), plots, and ``results/evaluate/metrics.json``.

API: :func:`components.evaluate.stage.evaluate`, :func:`components.evaluate.metrics.coco_evaluate`.
"""
