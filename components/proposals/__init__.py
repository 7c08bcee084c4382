"""BING objectness proposals (Cheng et al., "BING: Binarized normed gradients for objectness
estimation at 300fps", CVPR 2014): the object-proposal stage of object-aware cropping.

Where things are::

    features.py   normed-gradient (NG) maps and 64-D window features
    linear.py     the L2-SVM / logistic Newton solver both stages use
    bing.py       BingModel (propose), train_bing (stages I and II), save/load (JSON + version)
    recall.py     DR@k, the random-box baseline, the recall plot
    data.py       a split's images and boxes (components/data/layout.py contract)
    cache.py      data/proposals/<split>.npz keyed on (image sha256, model version)
    config.py     PROPOSAL_DEFAULTS (params.yaml ``proposals:``)
    stage.py      the train / propose stages; __main__.py their CLI

No orchestration imports; numpy + OpenCV only (matplotlib for the plot, tqdm for progress).
"""
from components.proposals.bing import (DEFAULT_SIZES, BingModel, ModelFileError, load_model, save_model,
                                       train_bing)
from components.proposals.cache import (MissingProposalsError, ProposalCache, StaleProposalsError,
                                        load_proposals)
from components.proposals.config import PROPOSAL_DEFAULTS
from components.proposals.recall import DEFAULT_KS, detection_recall, first_hits, random_proposals

__all__ = ["BingModel", "DEFAULT_KS", "DEFAULT_SIZES", "MissingProposalsError", "ModelFileError",
           "PROPOSAL_DEFAULTS", "ProposalCache", "StaleProposalsError", "detection_recall",
           "first_hits", "load_model", "load_proposals", "random_proposals", "save_model",
           "train_bing"]
