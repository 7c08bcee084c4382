"""Zero-shot classification with the text tower: class names -> prompt-ensembled classifiers.

CLIP's recipe (Radford et al. 2021, Sec. 3.1.4), used by Florence: each class name is put
into every prompt template, the unit text embeddings are averaged over the templates and
re-normalised, and an image is assigned the class of highest cosine similarity.

The default templates are the five ways the synthetic captions open a one-object scene ("A
picture of a red star.", "There is one shape: a red star.", ...): the templates are the
analogue of CLIP's "a photo of a {}." for alt-text, chosen from the caption grammar before
any result was seen; ``imagetext.templates`` replaces them. ``{}`` receives the class phrase
with its article ("an orange star").

Shapes: ``classes (K,) -> (K, D)``; ``images (N, D), classifier (K, D) -> scores (N, K)``.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

__all__ = ["DEFAULT_TEMPLATES", "with_article", "prompts", "class_embeddings", "zero_shot_scores"]

DEFAULT_TEMPLATES = (
    "a picture of {}.",
    "an image showing {}.",
    "there is one shape: {}.",
    "{} on a plain background.",
    "a plain scene with {}.",
)


def with_article(phrase: str) -> str:
    """``"orange star"`` -> ``"an orange star"``, ``"red star"`` -> ``"a red star"``."""
    return f"{'an' if phrase[:1].lower() in 'aeiou' else 'a'} {phrase}"


def prompts(classname: str, templates: Sequence[str]) -> list[str]:
    return [t.format(with_article(classname)) for t in templates]


@torch.no_grad()
def class_embeddings(towers, tokenizer, classnames: Sequence[str],
                     templates: Sequence[str] = DEFAULT_TEMPLATES) -> torch.Tensor:
    """``(K, D)`` unit classifier rows: the template-averaged text embedding of each class."""
    from components.imagetext.tokenizer import encode

    if not templates or any("{}" not in t for t in templates):
        raise ValueError(f"imagetext.templates must be non-empty and each contain '{{}}', "
                         f"got {list(templates)}")
    device = next(towers.parameters()).device
    rows = []
    for name in classnames:
        ids, mask = encode(tokenizer, prompts(name, templates), towers.text_cfg.max_len)
        emb = towers.encode_text(ids.to(device), mask.to(device)).float().mean(dim=0)
        rows.append(F.normalize(emb, dim=0))
    return torch.stack(rows).cpu()


def zero_shot_scores(images: torch.Tensor, classifier: torch.Tensor) -> torch.Tensor:
    """Cosine similarities ``(N, K)`` of unit image embeddings to the classifier rows."""
    return F.normalize(images.float(), dim=-1) @ classifier.float().t()
