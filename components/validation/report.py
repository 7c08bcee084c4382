"""Reports: ``report.html`` (self-contained: inline CSS, no scripts, renders offline),
``report.md``, ``summary.json`` (everything) and ``metrics.json`` (failures and warnings, the
columns ``dvc metrics show`` prints).

GX's own Data Docs pull CSS/JS from CDNs and render unstyled offline, so this is the report
people read; Data Docs stay optional.
"""
from __future__ import annotations

import html
from pathlib import Path

from components.common.atomic import write_json_atomic, write_text_atomic
from components.common.dvc_metrics import row
from components.validation.result import Failure, ValidationResult

MAX_LISTED = 1000          # failures listed in the HTML/MD reports (all are counted)

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;
max-width:72em;color:#1d232a;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em}
.badge{display:inline-block;padding:.15em .6em;border-radius:.3em;color:#fff;font-weight:600}
.ok{background:#1e7b34}.bad{background:#b3261e}
table{border-collapse:collapse;width:100%;margin:.5em 0}
th,td{border:1px solid #d0d7de;padding:.3em .5em;text-align:left;vertical-align:top}
th{background:#f3f5f7}tr.fail td{background:#fdecea}
code{font:12px ui-monospace,Menlo,Consolas,monospace;word-break:break-all}
.muted{color:#57606a}
"""


def write_all(result: ValidationResult, out: Path) -> None:
    out = Path(out)
    write_json_atomic(out / "summary.json", result.summary)
    write_json_atomic(out / "metrics.json", row(failures=len(result.failures),
                                                warnings=len(result.warnings)))
    write_text_atomic(out / "report.md", markdown(result))
    write_text_atomic(out / "report.html", to_html(result))


def _badge(ok: bool) -> str:
    return f'<span class="badge {"ok" if ok else "bad"}">{"PASS" if ok else "FAIL"}</span>'


def to_html(result: ValidationResult) -> str:
    e = html.escape
    s = result.summary
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>Dataset validation: {'PASS' if result.success else 'FAIL'}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>Dataset validation {_badge(result.success)}</h1>",
        f"<p>Dataset <code>{e(result.dataset)}</code> &middot; {len(result.failures)} failure(s)"
        f" &middot; {s.get('images_checked', 0)} image file(s) checked &middot; "
        f"{s['seconds'].get('total', 0):.2f} s</p>",
        "<p class='muted'>Settings: " + ", ".join(
            f"{e(k)}={e(str(v))}" for k, v in s.get("config", {}).items()) + "</p>",
        "<h2>Suites</h2><table><tr><th>suite</th><th>result</th><th>files</th><th>rows</th>"
        "<th>expectations evaluated</th><th>failed</th><th>file-level problems</th>"
        "<th>seconds</th></tr>",
    ]
    for r in result.suites:
        parts.append(
            f"<tr class='{'' if r.success else 'fail'}'><td>{e(r.name)}</td>"
            f"<td>{_badge(r.success)}</td><td>{'<br>'.join(e(f) for f in r.files)}</td>"
            f"<td>{r.rows}</td><td>{r.evaluated}</td><td>{r.failed}</td>"
            f"<td>{r.structural_failures}</td><td>{r.seconds:.2f}</td></tr>")
    parts.append("</table>")
    parts.append(f"<h2>Failures ({len(result.failures)})</h2>")
    if result.failures:
        parts.append("<table><tr><th>file</th><th>record</th><th>rule broken</th></tr>")
        for f in result.failures[:MAX_LISTED]:
            parts.append(f"<tr class='fail'><td><code>{e(f.file)}</code></td>"
                         f"<td><code>{e(f.record)}</code></td><td>{e(f.rule)}</td></tr>")
        parts.append("</table>")
        if len(result.failures) > MAX_LISTED:
            parts.append(f"<p>... {len(result.failures) - MAX_LISTED} more (see summary.json "
                         "counts; fix the listed ones first).</p>")
    else:
        parts.append("<p>None.</p>")
    warnings = result.warnings
    parts.append(f"<h2>Warnings ({len(warnings)})</h2><p class='muted'>Accepted records the "
                 "stages treat specially (see components/validation/suites/coco_contract.md)."
                 "</p>")
    if warnings:
        parts.append("<table><tr><th>file</th><th>record</th><th>note</th></tr>")
        for w in warnings[:MAX_LISTED]:
            parts.append(f"<tr><td><code>{e(w.file)}</code></td><td><code>{e(w.record)}</code>"
                         f"</td><td>{e(w.rule)}</td></tr>")
        parts.append("</table>")
        if len(warnings) > MAX_LISTED:
            parts.append(f"<p>... {len(warnings) - MAX_LISTED} more.</p>")
    else:
        parts.append("<p>None.</p>")
    for r in result.suites:
        parts.append(f"<h2>Expectations: {e(r.name)}</h2><table><tr><th>table</th><th>rule</th>"
                     "<th>GX expectation</th><th>column(s)</th><th>result</th>"
                     "<th>unexpected rows</th></tr>")
        for o in r.expectations:
            err = f"<br><span class='muted'>{e(o.error)}</span>" if o.error else ""
            parts.append(
                f"<tr class='{'' if o.success else 'fail'}'><td>{e(o.table)}</td>"
                f"<td>{e(o.rule)}{err}</td><td><code>{e(o.expectation)}</code></td>"
                f"<td><code>{e(o.column)}</code></td><td>{_badge(o.success)}</td>"
                f"<td>{o.unexpected}</td></tr>")
        parts.append("</table>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def markdown(result: ValidationResult) -> str:
    s = result.summary
    lines = [f"# Dataset validation: {'PASS' if result.success else 'FAIL'}", "",
             f"Dataset `{result.dataset}`: {len(result.failures)} failure(s), "
             f"{len(result.warnings)} warning(s), "
             f"{s.get('images_checked', 0)} image file(s) checked, "
             f"{s['seconds'].get('total', 0):.2f} s.", "",
             "| suite | result | rows | expectations | failed | file-level problems | seconds |",
             "|---|---|---|---|---|---|---|"]
    for r in result.suites:
        lines.append(f"| {r.name} | {'PASS' if r.success else 'FAIL'} | {r.rows} | "
                     f"{r.evaluated} | {r.failed} | {r.structural_failures} | {r.seconds:.2f} |")
    lines += ["", f"## Failures ({len(result.failures)})", ""]
    lines += [f"- `{_md(f)}`" for f in result.failures[:MAX_LISTED]] or ["None."]
    if len(result.failures) > MAX_LISTED:
        lines.append(f"- ... {len(result.failures) - MAX_LISTED} more")
    warnings = result.warnings
    lines += ["", f"## Warnings ({len(warnings)})", "",
              "Accepted records the stages treat specially "
              "(components/validation/suites/coco_contract.md).", ""]
    lines += [f"- `{_md(w)}`" for w in warnings[:MAX_LISTED]] or ["None."]
    if len(warnings) > MAX_LISTED:
        lines.append(f"- ... {len(warnings) - MAX_LISTED} more")
    return "\n".join(lines) + "\n"


def _md(f: Failure) -> str:
    return str(f).replace("`", "'")


def console_lines(failures: list[Failure], limit: int = 20) -> list[str]:
    """The first ``limit`` failures, one per line, then a pointer to the full report."""
    lines = [str(f) for f in failures[:limit]]
    if len(failures) > limit:
        lines.append(f"... {len(failures) - limit} more, see report.html")
    return lines
