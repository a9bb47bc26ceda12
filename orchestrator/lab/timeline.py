"""An HTML timeline of a history: one row per client, one bar per operation from call to
return; ops of unknown outcome fade out to the right; the op no order could include is red."""

from __future__ import annotations

import html
import math
from pathlib import Path

from orchestrator.lab import linearizability as lin


def write_timeline(path: Path, ops: list[lin.Operation], result: lin.Result) -> None:
    if not ops:
        path.write_text("<p>empty history</p>\n")
        return
    start = min(op.call for op in ops)
    end = max(op.ret if not math.isinf(op.ret) else op.call for op in ops) or 1
    span = max(end - start, 1e-9)
    culprit = _culprit(result)
    clients = sorted({op.client for op in ops}, key=str)
    row_of = {client: i for i, client in enumerate(clients)}
    bars = []
    for op in ops:
        left = 100 * (op.call - start) / span
        right = 100.0 if math.isinf(op.ret) else 100 * (op.ret - start) / span
        colour = "#d33" if culprit and culprit in op.describe() else ("#bbb" if op.unknown else "#48c")
        style = (f"left:{left:.3f}%;width:{max(right - left, 0.2):.3f}%;top:{row_of[op.client] * 22}px;"
                 f"background:{colour}")
        bars.append(f'<div class="op" style="{style}" title="{html.escape(op.describe())}"></div>')
    labels = "".join(f'<div class="label" style="top:{i * 22}px">{html.escape(str(c))}</div>'
                     for i, c in enumerate(clients))
    path.write_text(f"""<!doctype html><meta charset="utf-8"><title>history timeline</title>
<style>body{{font:13px sans-serif}} .lane{{position:relative;height:{len(clients) * 22}px;margin-left:80px}}
.op{{position:absolute;height:16px;border-radius:3px;opacity:.85}} .label{{position:absolute;left:-80px}}</style>
<h1>{html.escape(result.verdict.value)}</h1><pre>{html.escape(result.explanation)}</pre>
<div class="lane">{labels}{''.join(bars)}</div>
""")


def _culprit(result: lin.Result) -> str | None:
    lines = result.explanation.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("No order can include") and i + 1 < len(lines):
            return lines[i + 1].strip()
    return None
