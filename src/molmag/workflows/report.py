"""Campaign reports: one list of blocks (headings, paragraphs, tables, figures) written as
Markdown (figures linked as files next to it) and as one self-contained HTML page (figures
embedded as base64 PNG), so the HTML can be mailed or archived on its own."""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence


@dataclass
class Report:
    title: str
    blocks: list[tuple[str, Any]] = field(default_factory=list)

    def heading(self, text: str, level: int = 2) -> None:
        self.blocks.append(("heading", (level, text)))

    def text(self, text: str) -> None:
        """A paragraph; ``**bold**`` and ``code`` spans are kept in both formats."""
        self.blocks.append(("text", text))

    def bullets(self, items: Sequence[str]) -> None:
        self.blocks.append(("bullets", list(items)))

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[Any]],
              caption: str | None = None) -> None:
        self.blocks.append(("table", (list(headers), [list(r) for r in rows], caption)))

    def figure(self, path: str | Path, caption: str) -> None:
        """A PNG (skipped with a note if the file is missing)."""
        self.blocks.append(("figure", (Path(path), caption)))

    # -- Markdown ---------------------------------------------------------------------------
    def markdown(self, base: Path) -> str:
        out = [f"# {self.title}", ""]
        for kind, val in self.blocks:
            if kind == "heading":
                out += ["#" * val[0] + " " + val[1], ""]
            elif kind == "text":
                out += [val, ""]
            elif kind == "bullets":
                out += [f"- {b}" for b in val] + [""]
            elif kind == "table":
                headers, rows, caption = val
                if caption:
                    out += [f"*{caption}*", ""]
                out.append("| " + " | ".join(headers) + " |")
                out.append("|" + "|".join("---" for _ in headers) + "|")
                for r in rows:
                    out.append("| " + " | ".join(_cell(c) for c in r) + " |")
                out.append("")
            elif kind == "figure":
                path, caption = val
                if path.exists():
                    rel = _relative(path, base)
                    out += [f"![{caption}]({rel})", "", f"*{caption}*", ""]
                else:
                    out += [f"*(figure missing: {path.name})*", ""]
        return "\n".join(out).rstrip() + "\n"

    # -- HTML -------------------------------------------------------------------------------
    def html(self) -> str:
        body = [f"<h1>{html.escape(self.title)}</h1>"]
        for kind, val in self.blocks:
            if kind == "heading":
                body.append(f"<h{val[0]}>{_inline(val[1])}</h{val[0]}>")
            elif kind == "text":
                body.append(f"<p>{_inline(val)}</p>")
            elif kind == "bullets":
                body.append("<ul>" + "".join(f"<li>{_inline(b)}</li>" for b in val) + "</ul>")
            elif kind == "table":
                headers, rows, caption = val
                cap = f"<caption>{_inline(caption)}</caption>" if caption else ""
                head = "".join(f"<th>{_inline(h)}</th>" for h in headers)
                trs = "".join("<tr>" + "".join(
                    f"<td>{_inline(_cell(c))}</td>" for c in r) + "</tr>" for r in rows)
                body.append(f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{trs}</tbody>"
                            "</table>")
            elif kind == "figure":
                path, caption = val
                if path.exists():
                    data = base64.b64encode(path.read_bytes()).decode("ascii")
                    body.append(f'<figure><img alt="{html.escape(caption)}" '
                                f'src="data:image/png;base64,{data}"/>'
                                f"<figcaption>{_inline(caption)}</figcaption></figure>")
                else:
                    body.append(f"<p><em>(figure missing: {html.escape(path.name)})</em></p>")
        return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                f"<title>{html.escape(self.title)}</title><style>{_CSS}</style></head>"
                "<body>\n" + "\n".join(body) + "\n</body></html>\n")

    def write(self, directory: str | Path, stem: str = "report") -> tuple[Path, Path]:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        md, ht = directory / f"{stem}.md", directory / f"{stem}.html"
        md.write_text(self.markdown(directory))
        ht.write_text(self.html())
        return md, ht


_CSS = ("body{font-family:system-ui,sans-serif;max-width:60em;margin:2em auto;padding:0 1em;"
        "line-height:1.45;color:#222}table{border-collapse:collapse;margin:1em 0;"
        "font-size:0.92em}th,td{border:1px solid #bbb;padding:0.25em 0.6em;text-align:right}"
        "th{background:#eee}td:first-child,th:first-child{text-align:left}caption{"
        "caption-side:top;text-align:left;font-style:italic;padding:0.3em 0}"
        "figure{margin:1em 0}img{max-width:100%}figcaption{font-style:italic;font-size:0.9em}"
        "code{background:#f3f3f3;padding:0 0.2em}")


def _cell(c: Any) -> str:
    if c is None:
        return "—"
    if isinstance(c, float):
        return f"{c:.4g}"
    return str(c)


def _inline(text: str) -> str:
    t = html.escape(str(text))
    t = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", t)
    t = re.sub(r"`(.+?)`", r"<code>\1</code>", t)
    return t


def _relative(path: Path, base: Path) -> str:
    try:
        return str(path.resolve().relative_to(base.resolve()))
    except ValueError:
        return str(path)


__all__ = ["Report"]


def plot_chi_t_and_mh(ax_chi, ax_mh, temps, chi, fields, mh: dict) -> None:
    """The campaigns' magnetism panels: powder chi*T (cm3 K mol-1) against T (K) on
    ``ax_chi``; M (mu_B) against H (T) at each temperature of ``mh`` ({T: M}) on ``ax_mh``."""
    ax_chi.plot(temps, chi, "o-", ms=2)
    ax_chi.set_xlabel("T (K)")
    ax_chi.set_ylabel("χT (cm³ K mol⁻¹)")
    for t, v in mh.items():
        ax_mh.plot(fields, v, "o-", ms=2, label=f"{t:g} K")
    ax_mh.set_xlabel("H (T)")
    ax_mh.set_ylabel("M (μB)")
    ax_mh.legend()
