"""Validation suites by name. Importing this package registers every suite in it."""
from components.validation.suites.base import REGISTRY, Config, Suite, Table, register
from components.validation.suites import coco, imagetext, openimages, unlabeled  # noqa: F401,E501

__all__ = ["REGISTRY", "Config", "Suite", "Table", "register"]
