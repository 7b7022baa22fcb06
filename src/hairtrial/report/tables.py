"""Writing tables: CSV for machines, Markdown and HTML for reading.

Rounding rules, stated once:

* CSV keeps full precision (12 significant digits, enough to compare with R
  to 1e-10 relative), so downstream code never re-reads rounded numbers.
* Markdown and HTML round for reading: p-values to 2 significant digits
  (``< 0.0001`` below that), percentages (``I2``, ``weight_pct``) to 1
  decimal, counts as integers, every other number to 4 significant digits.

All writers are atomic (temporary file in the same directory, then rename),
so an interrupted run never leaves a half-written table, and deterministic
(same frame, same bytes).
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from hairtrial.core.io import atomic_write, write_csv

ROUNDING_NOTE = (
    "Rounded for reading: p-values to 2 significant digits, percentages to 1 decimal, "
    "other numbers to 4 significant digits; the CSV file has full precision."
)
PVALUE_COLUMNS = frozenset({"pvalue", "Q_pvalue", "p_value", "QM_pvalue", "QE_pvalue"})
PERCENT_COLUMNS = frozenset({"I2", "weight_pct", "R2"})
COUNT_COLUMNS = frozenset({"k", "n", "n_control", "n_experimental", "Q_df", "week"})


def format_value(column: str, value: object) -> str:
    """Format one cell for reading, by the rounding rules of this module.

    Examples
    --------
    >>> format_value("pvalue", 0.0000123)
    '< 0.0001'
    >>> format_value("pvalue", 0.03912)
    '0.039'
    >>> format_value("estimate", 43.21987)
    '43.22'
    >>> format_value("I2", 88.04)
    '88.0'
    >>> format_value("k", 3.0)
    '3'
    >>> format_value("tau2", float("nan"))
    ''
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float) and not isinstance(value, bool):
        x = float(value)
        if math.isnan(x):
            return ""
        if math.isinf(x):
            return "∞" if x > 0 else "-∞"
        if column in PVALUE_COLUMNS:
            return "< 0.0001" if x < 1e-4 else f"{x:.2g}"
        if column in PERCENT_COLUMNS:
            return f"{x:.1f}"
        if column in COUNT_COLUMNS and x == int(x):
            return str(int(x))
        return f"{x:.4g}"
    text = str(value)
    return "" if text == "nan" else text


def _formatted(df: pd.DataFrame) -> list[list[str]]:
    return [
        [format_value(c, v) for c, v in zip(df.columns, row, strict=True)]
        for row in df.itertuples(index=False, name=None)
    ]


def to_markdown(df: pd.DataFrame, title: str | None = None) -> str:
    """Render ``df`` as a GitHub-flavoured Markdown table (rounded for reading)."""
    cells = _formatted(df)
    header = [str(c) for c in df.columns]

    def esc(s: str) -> str:
        return s.replace("|", "\\|").replace("\n", " ")

    lines = []
    if title:
        lines += [f"# {title}", ""]
    lines.append("| " + " | ".join(esc(h) for h in header) + " |")
    lines.append("|" + "|".join("---" for _ in header) + "|")
    lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in cells]
    if not cells:
        lines.append("| " + " | ".join("" for _ in header) + " |")
    return "\n".join(lines) + "\n"


def to_html(df: pd.DataFrame, title: str) -> str:
    """Render ``df`` as a small standalone HTML page (rounded for reading)."""
    cells = _formatted(df)
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    body = "\n".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in cells
    )
    style = (
        "body{font-family:system-ui,sans-serif;margin:2em;color:#222}"
        "table{border-collapse:collapse;font-size:13px}"
        "th,td{border-bottom:1px solid #ddd;padding:3px 8px;text-align:left}"
        "th{background:#f4f4f4;position:sticky;top:0}"
        "caption{caption-side:bottom;text-align:left;color:#555;padding-top:8px}"
    )
    note = ROUNDING_NOTE
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{style}</style>\n</head>\n<body>\n"
        f"<h1>{html.escape(title)}</h1>\n<table>\n<caption>{note}</caption>\n"
        f"<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>\n"
        "</body>\n</html>\n"
    )


LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
}


def latex_escape(text: str) -> str:
    """Escape LaTeX special characters.

    Examples
    --------
    >>> print(latex_escape("I2 < 50% & p_value"))
    I2 \\textless{} 50\\% \\& p\\_value
    """
    return "".join(LATEX_SPECIAL.get(ch, ch) for ch in text)


def to_latex(df: pd.DataFrame, caption: str, label: str) -> str:
    """Render ``df`` as a booktabs ``longtable`` (rounded for reading).

    Needs ``\\usepackage{booktabs,longtable}`` in the document preamble.
    """
    cells = _formatted(df)
    numeric = [pd.api.types.is_numeric_dtype(df[c]) for c in df.columns]
    spec = "".join("r" if n else "l" for n in numeric)
    head = " & ".join(latex_escape(str(c)) for c in df.columns) + r" \\"
    body = "\n".join(" & ".join(latex_escape(c) for c in row) + r" \\" for row in cells)
    return (
        f"\\begin{{longtable}}{{{spec}}}\n"
        f"\\caption{{{latex_escape(caption)}}}\\label{{{label}}}\\\\\n"
        f"\\toprule\n{head}\n\\midrule\n\\endhead\n{body}\n\\bottomrule\n"
        "\\end{longtable}\n"
    )


def write_renderings(
    csv_path: str | Path, md_path: str | Path, html_path: str | Path, tex_path: str | Path
) -> None:
    """Write the Markdown, HTML and LaTeX renderings of a CSV table."""
    df = pd.read_csv(csv_path, keep_default_na=True)
    stem = Path(csv_path).stem
    title = stem.replace("_", " ").capitalize()
    atomic_write(md_path, lambda p: p.write_text(to_markdown(df, title), encoding="utf-8"))
    atomic_write(html_path, lambda p: p.write_text(to_html(df, title), encoding="utf-8"))
    caption = f"{title}. {ROUNDING_NOTE}"
    atomic_write(
        tex_path,
        lambda p: p.write_text(to_latex(df, caption, f"tab:{stem}"), encoding="utf-8"),
    )


def write_tables(
    tables: Mapping[str, pd.DataFrame], tables_dir: str | Path, *, renderings: bool = True
) -> list[Path]:
    """Write each table as ``{name}.csv`` (full precision) and its renderings.

    Returns
    -------
    list of pathlib.Path
        The files written: per table the CSV, then ``.md``, ``.html`` and ``.tex``.
    """

    tables_dir = Path(tables_dir)
    written: list[Path] = []
    for name, df in tables.items():
        csv = tables_dir / f"{name}.csv"
        write_csv(df, csv)
        written.append(csv)
        if renderings:
            md, html, tex = (csv.with_suffix(s) for s in (".md", ".html", ".tex"))
            write_renderings(csv, md, html, tex)
            written += [md, html, tex]
    return written
