"""Pin a library's thread pool for a test: tiny models and 128 px images run faster on one
thread than with thread start-up on the shared 2-core machine (torch, OpenCV)."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

__all__ = ["pinned_threads"]


@contextmanager
def pinned_threads(get: Callable[[], int], set_: Callable[[int], None], n: int = 1) -> Iterator[None]:
    """``set_(n)`` for the block, then the previous ``get()`` value back."""
    before = get()
    set_(n)
    try:
        yield
    finally:
        set_(before)
