"""Rendering a finished walk: a numbered table for people, or JSON for tools."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from kdns.cluster.advice import Advice
from kdns.cluster.search import Walk
from kdns.dns import records as rr

MAX_ANSWER = 48


def _types(walk: Walk) -> str:
    return "+".join(rr.type_name(t) for t in walk.qtypes)


def _answer_text(records: Sequence[tuple[int, str]], note: str) -> str:
    parts = [text if t in (rr.A, rr.AAAA) else f"{rr.type_name(t)} {text}" for t, text in records]
    text = ", ".join(parts)
    if len(text) > MAX_ANSWER:
        text = f"{text[: MAX_ANSWER - 12].rstrip(', ')}... ({len(parts)} records)"
    if note:
        text = f"{text}; {note}" if text else note
    return text or "-"


def summary(walk: Walk) -> str:
    result = walk.result
    sent = walk.queries_sent
    plural = "y" if sent == 1 else "ies"
    wasted = f"{walk.wasted} wasted"
    if result is None:
        return f"{sent} quer{plural}"
    if result.status == "found":
        return f"found after {sent} quer{plural}, {wasted}"
    if result.status == "unknown":
        return f"{sent} quer{plural} up to the step kdns cannot answer offline, at least {wasted}"
    return f"no address after {sent} quer{plural}, {wasted}"


def text(walk: Walk, advice: Sequence[Advice], header: Sequence[str], live: bool) -> str:
    lines = [*header, ""]
    cols = ["#", "step", "name", "type", "rcode", "answer"] + (["time"] if live else [])
    rows: list[list[str]] = []
    for i, q in enumerate(walk.queries, 1):
        row = [
            str(i),
            str(q.step),
            q.qname,
            rr.type_name(q.qtype),
            q.answer.rcode_text + (" TC" if q.answer.tc else ""),
            _answer_text(q.answer.records, q.answer.note),
        ]
        if live:
            row.append("-" if q.seconds is None else f"{q.seconds * 1000:.1f} ms")
        rows.append(row)
    widths = [
        max(len(c), *(len(r[i]) for r in rows)) if rows else len(c) for i, c in enumerate(cols)
    ]
    fmt = "  ".join(f"{{:{'>' if i < 2 else '<'}{w}}}" for i, w in enumerate(widths))
    lines.append(fmt.format(*cols).rstrip())
    lines.extend(fmt.format(*r).rstrip() for r in rows)
    lines.append("")
    result = walk.result
    if result is not None:
        if result.status == "found":
            lines.append(f"Result: {', '.join(result.answer or ())}  (from {result.name})")
        elif result.status == "unknown":
            lines.append(f"Result: unknown: {result.name} {result.message}")
        else:
            lines.append(f"Result: no address: {result.message}")
    if walk.remaining and result is not None and result.status == "unknown":
        lines.append(
            "  If that name does not exist either, the resolver goes on with: "
            + ", ".join(c.name for c in walk.remaining)
        )
    lines.append(f"Summary: {summary(walk)} ({_types(walk)} per step).")
    if advice:
        lines.append("")
        lines.append("Advice:")
        for i, a in enumerate(advice, 1):
            lines.append(f"  {i}. {a.text}")
            for snippet_line in a.snippet.splitlines():
                lines.append(f"       {snippet_line}")
    return "\n".join(lines) + "\n"


def as_json(walk: Walk, advice: Sequence[Advice], extra: dict[str, Any]) -> str:
    result = walk.result
    doc: dict[str, Any] = {
        **extra,
        "name": walk.name,
        "resolver": walk.resolver,
        "qtypes": [rr.type_name(t) for t in walk.qtypes],
        "queries": [
            {
                "step": q.step,
                "qname": q.qname,
                "qtype": rr.type_name(q.qtype),
                "rcode": q.answer.rcode_text,
                "answers": [text for _, text in q.answer.records],
                "tc": q.answer.tc,
                "note": q.answer.note or None,
                # live mode, no reply: TIMEOUT or what the socket said (REFUSED, RESET, ...)
                "error": None
                if q.answer.rcode is not None or q.answer.unknown
                else q.answer.rcode_text,
                "time_ms": None if q.seconds is None else round(q.seconds * 1000, 3),
            }
            for q in walk.queries
        ],
        "queries_sent": walk.queries_sent,
        "answer": list(result.answer) if result and result.answer is not None else None,
        "status": result.status if result else None,
        "message": result.message if result else None,
        "answered_by": result.name if result else None,
        "not_tried": [c.name for c in walk.remaining],
        "wasted": walk.wasted,
        "advice": [{"kind": a.kind, "text": a.text, "snippet": a.snippet or None} for a in advice],
    }
    return json.dumps(doc, indent=2) + "\n"
