"""What the gate returns: failures named by file, record and rule, plus a per-suite summary."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Failure:
    """One broken rule. ``file`` is relative to the dataset root; ``record`` is an id
    (``annotation id=7``), a line (``line 12``) or ``-`` for the whole file."""
    file: str
    record: str
    rule: str

    def __str__(self) -> str:
        return f"{self.file}:{self.record}: {self.rule}"


@dataclass
class ExpectationOutcome:
    """One GX expectation's verdict, for the report."""
    table: str
    expectation: str
    column: str
    rule: str
    success: bool
    unexpected: int
    error: str | None = None


@dataclass
class SuiteReport:
    name: str
    files: list[str]
    success: bool = True
    rows: int = 0
    evaluated: int = 0                 # GX expectations evaluated
    failed: int = 0                    # GX expectations failed
    structural_failures: int = 0       # file-level problems found before GX (bad JSON, columns)
    seconds: float = 0.0
    expectations: list[ExpectationOutcome] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    warnings: list[Failure] = field(default_factory=list)  # rows the gate accepts, noted

    def summary(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items()
               if k not in ("expectations", "failures", "warnings")}
        by_rule: dict[str, int] = {}
        for w in self.warnings:
            by_rule[w.rule.split(": ", 1)[0]] = by_rule.get(w.rule.split(": ", 1)[0], 0) + 1
        out["warnings"] = len(self.warnings)
        out["warnings_by_rule"] = by_rule
        return out


@dataclass
class ValidationResult:
    """``success`` is True only if every applicable suite passed and something was validated."""
    dataset: str
    success: bool
    failures: list[Failure]
    suites: list[SuiteReport]
    summary: dict[str, Any]

    @property
    def warnings(self) -> list[Failure]:
        return [w for s in self.suites for w in s.warnings]
