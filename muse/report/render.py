"""The report's tables as text: markdown and HTML for people, CSV for programs.

Markdown and HTML show the same grid: "mean ± sd" cells (sd "–" from one seed), the best mean
of a column in bold, and per metric a "paper (real MuSe-CaR)" column with the paper's
"devel / test" values. The CSV files are one per table, wide and plain: per metric and
partition `<partition>_<metric>_mean`, `_sd`, `_n` and `_best` (True/False), and
`paper_<partition>_<metric>` where the paper publishes the metric; empty fields are values
that do not exist (masked test labels, one seed, no published value).
"""

from __future__ import annotations

import html
from dataclasses import dataclass

import pandas as pd

from muse.report.tables import Column, Ranking, Row, Table
from muse.tasks import EVALUATED_PARTITIONS

PAPER_LABEL = "paper (real MuSe-CaR)"
NO_VALUE = "–"
CSV_DECIMALS = 6  # the logged scores are rounded already; this only drops float noise


@dataclass(frozen=True)
class Meta:
    """Where the report's numbers come from, for its heading."""

    created: str
    tracking_uri: str
    experiments: tuple[str, ...]
    runs: int


def _number(value: float | None, decimals: int) -> str:
    return NO_VALUE if value is None else f"{value:.{decimals}f}"


def cell_text(row: Row, partition: str, column: Column) -> str:
    cell = row.cell(partition, column.metric)
    if not cell.n:
        return ""
    return f"{_number(cell.mean, column.decimals)} ± {_number(cell.sd, column.decimals)}"


def paper_text(row: Row, column: Column) -> str:
    values = [row.paper_value(partition, column.metric) for partition in EVALUATED_PARTITIONS]
    if all(value is None for value in values):
        return ""
    return " / ".join(_number(value, column.decimals) for value in values)


def _headers(table: Table) -> list[str]:
    headers = ["System", "Features", "Seeds"]
    for column in table.spec.columns:
        headers += [f"{column.title} {partition}" for partition in EVALUATED_PARTITIONS]
        if table.spec.has_paper(column.metric):
            headers.append(f"{column.title} {PAPER_LABEL} devel / test")
    return headers


def grid(table: Table) -> tuple[list[str], list[list[tuple[str, bool]]]]:
    """Headers and rows of (text, bold) cells, shared by markdown and HTML."""
    rows = []
    for row in table.rows:
        cells = [(row.system, False), (row.features_label, False), (str(len(row.seeds)), False)]
        for column in table.spec.columns:
            cells += [(cell_text(row, partition, column),
                       table.is_best(row, partition, column.metric))
                      for partition in EVALUATED_PARTITIONS]
            if table.spec.has_paper(column.metric):
                cells.append((paper_text(row, column), False))
        rows.append(cells)
    return _headers(table), rows


RANKING_HEADERS = ["Place", "System", "Features", "Emotion score", "Topic score", "Emotion rank",
                   "Topic rank", "Mean rank"]


def ranking_grid(ranking: Ranking) -> list[list[tuple[str, bool]]]:
    return [[(str(ranked.place), ranked.place == 1), (row.system, False),
             (row.features_label, False), (f"{ranked.emotion_score:.2f}", False),
             (f"{ranked.topic_score:.2f}", False), (str(ranked.emotion_rank), False),
             (str(ranked.topic_rank), False), (f"{ranked.mean_rank:g}", False)]
            for ranked, row in ranking.places]


def _intro(meta: Meta) -> list[str]:
    return [
        f"Generated {meta.created} from {meta.runs} finished run(s) in "
        f"{', '.join(meta.experiments)} ({meta.tracking_uri}).",
        "Cells: mean ± sd over seeds (sample sd; – with one seed), Seeds: how many. "
        "Bold: the best mean of its column. "
        f"\"{PAPER_LABEL}\": the value the MuSe 2020 paper published for the same system "
        "(devel / test), measured on the real MuSe-CaR, not on the data of these runs. "
        "An empty test cell: the test labels were masked.",
    ]


def _table_notes(table: Table, notes: dict[str, str]) -> list[str]:
    lines = []
    if table.paper_sources:
        lines.append(f"Paper values: {', '.join(table.paper_sources)} of the MuSe 2020 paper.")
    if table.spec.name in notes:
        lines.append(notes[table.spec.name])
    return lines


def _unranked_text(ranking: Ranking) -> str | None:
    if not ranking.unranked:
        return None
    names = ", ".join(f"{row.system} on {row.features_label}" for row in ranking.unranked)
    return f"Not ranked (no topic or no emotion score on {ranking.partition}): {names}."


# --- markdown --------------------------------------------------------------------------------


_TEXT_HEADERS = ("System", "Features")


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def _md_table(headers: list[str], rows: list[list[tuple[str, bool]]]) -> list[str]:
    aligns = ["---" if header in _TEXT_HEADERS else "---:" for header in headers]
    lines = ["| " + " | ".join(map(_md_escape, headers)) + " |", "|" + "|".join(aligns) + "|"]
    for cells in rows:
        texts = [f"**{_md_escape(t)}**" if bold and t else _md_escape(t) for t, bold in cells]
        lines.append("| " + " | ".join(texts) + " |")
    return lines


def markdown(tables: list[Table], rankings: list[Ranking], meta: Meta, notes: dict[str, str],
             images: bool = True) -> str:
    """The whole report; `images=False` leaves out the figure links (the MLflow run note)."""
    lines = ["# muse report", "", *_intro(meta)]
    for table in tables:
        lines += ["", f"## {table.spec.title}", "", table.spec.caption, "",
                  *_md_table(*grid(table))]
        extra = _table_notes(table, notes)
        if extra:
            lines += ["", *extra]
        if images:
            lines += ["", f"![{table.spec.title}]({table.spec.name}.png)"]
    for ranking in rankings:
        lines += ["", f"## MuSe-Topic: final ranking ({ranking.partition})", "",
                  "Systems ordered by the mean of their emotion rank and topic rank "
                  "(rank 1: highest mean score); a tie goes to the better topic rank.", "",
                  *_md_table(RANKING_HEADERS, ranking_grid(ranking))]
        unranked = _unranked_text(ranking)
        if unranked:
            lines += ["", unranked]
    return "\n".join(lines) + "\n"


# --- HTML ------------------------------------------------------------------------------------

_STYLE = ("body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin:1em 0}"
          "th,td{border:1px solid #bbb;padding:.3em .6em}td{text-align:right}"
          "td:nth-child(-n+2){text-align:left}th{background:#eee}img{max-width:100%}")


def _html_table(headers: list[str], rows: list[list[tuple[str, bool]]]) -> list[str]:
    lines = ["<table>", "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in headers) + "</tr>"]
    for cells in rows:
        texts = [f"<strong>{html.escape(t)}</strong>" if bold and t else html.escape(t)
                 for t, bold in cells]
        lines.append("<tr>" + "".join(f"<td>{t}</td>" for t in texts) + "</tr>")
    return lines + ["</table>"]


def html_page(tables: list[Table], rankings: list[Ranking], meta: Meta,
              notes: dict[str, str]) -> str:
    lines = ["<!DOCTYPE html>", "<html><head><meta charset=\"utf-8\"><title>muse report</title>",
             f"<style>{_STYLE}</style></head><body>", "<h1>muse report</h1>"]
    lines += [f"<p>{html.escape(text)}</p>" for text in _intro(meta)]
    for table in tables:
        lines += [f"<h2>{html.escape(table.spec.title)}</h2>",
                  f"<p>{html.escape(table.spec.caption)}</p>", *_html_table(*grid(table))]
        lines += [f"<p>{html.escape(text)}</p>" for text in _table_notes(table, notes)]
        lines.append(f"<img src=\"{table.spec.name}.png\" alt=\"{html.escape(table.spec.title)}\">")
    for ranking in rankings:
        lines += [f"<h2>MuSe-Topic: final ranking ({ranking.partition})</h2>",
                  *_html_table(RANKING_HEADERS, ranking_grid(ranking))]
        unranked = _unranked_text(ranking)
        if unranked:
            lines.append(f"<p>{html.escape(unranked)}</p>")
    return "\n".join(lines + ["</body></html>"]) + "\n"


# --- CSV -------------------------------------------------------------------------------------


def _csv_number(value: float | None) -> float | None:
    return None if value is None else round(value, CSV_DECIMALS)


def table_frame(table: Table) -> pd.DataFrame:
    """One CSV row per table row; see the module docstring for the columns."""
    records = []
    for row in table.rows:
        record = {"system": row.system, "model": row.model, "targets": "+".join(row.targets),
                  "features": row.features, "features_label": row.features_label,
                  "n_seeds": len(row.seeds), "seeds": ";".join(row.seeds)}
        for column in table.spec.columns:
            for partition in EVALUATED_PARTITIONS:
                cell, stem = row.cell(partition, column.metric), f"{partition}_{column.slug}"
                record[f"{stem}_mean"] = _csv_number(cell.mean)
                record[f"{stem}_sd"] = _csv_number(cell.sd)
                record[f"{stem}_n"] = cell.n
                record[f"{stem}_best"] = table.is_best(row, partition, column.metric)
            if table.spec.has_paper(column.metric):
                for partition in EVALUATED_PARTITIONS:
                    record[f"paper_{partition}_{column.slug}"] = row.paper_value(
                        partition, column.metric)
        records.append(record)
    return pd.DataFrame.from_records(records)


def ranking_frame(rankings: list[Ranking]) -> pd.DataFrame:
    records = [{"partition": ranking.partition, "place": ranked.place, "system": row.system,
                "features": row.features, "features_label": row.features_label,
                "emotion_score": _csv_number(ranked.emotion_score),
                "topic_score": _csv_number(ranked.topic_score),
                "emotion_rank": ranked.emotion_rank, "topic_rank": ranked.topic_rank,
                "mean_rank": ranked.mean_rank}
               for ranking in rankings for ranked, row in ranking.places]
    return pd.DataFrame.from_records(records)
