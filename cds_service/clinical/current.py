"""A with-block during which a context variable holds a value, as a plain class.

Why: ``@contextmanager`` wraps a generator in ``contextlib``'s interpreted helper, about four Python calls a use;
the fact rules make their extraction current a dozen times a typical call (``facts/demand.py``), and the class
below, compiled, costs a fraction of that. Entered once per instance: ``active()`` builds a new one each time.
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from typing import Any


class Current:
    """``var`` holds ``value`` inside the block (and ``inner``, when given, is entered inside it too)."""

    def __init__(self, var: ContextVar[Any], value: Any, inner: Current | None = None) -> None:
        self.var = var
        self.value = value
        self.inner = inner
        self.token: Token[Any] | None = None

    def __enter__(self) -> None:
        self.token = self.var.set(self.value)
        if self.inner is not None:
            self.inner.__enter__()

    def __exit__(self, *exc: object) -> None:
        try:
            if self.inner is not None:
                self.inner.__exit__(*exc)
        finally:
            if self.token is not None:
                self.var.reset(self.token)
