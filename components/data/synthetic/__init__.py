"""The built-in synthetic multi-object dataset (shapes told apart by geometry only).

Public helpers::

    from components.data.synthetic import generate, tiny_config
    manifest = generate(tmp_path / "ds", tiny_config(), seed=0)   # ~0.3 s, 96 px, 14 images

``generate(out, cfg, seed)`` takes the ``data.synthetic`` params dict (partial dicts are
completed from :data:`DEFAULTS`) and returns the manifest of the folder it wrote.
"""
from components.data.synthetic.generator import (DEFAULTS, categories, generate, oi_label, resolve_config,
                                                 tiny_config)
from components.data.synthetic.scene import PALETTE, Scene, SceneObject, render_scene
from components.data.synthetic.shapes import SHAPES

__all__ = ["DEFAULTS", "PALETTE", "SHAPES", "Scene", "SceneObject", "categories", "generate", "oi_label",
           "render_scene", "resolve_config", "tiny_config"]
