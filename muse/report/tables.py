"""The paper's tables from the tidy run frame: mean, sd and count over seeds, best marked.

A row is one system (model, and its learned targets when they are not the scored ones) on one
feature set; a cell is one metric on one partition, aggregated over the row's seeds that have
it (sample sd, ddof=1; no sd from one seed). A partition whose labels are masked leaves its
cells empty, not zero. The best cell of a column is the highest mean as displayed (rounded to
the column's decimals), so equal-looking means are marked alike. The paper's published value
for the same system sits beside a metric where the paper gives one and the row measured it.
MuSe-Topic also gets its final ranking (`muse.metrics.ranking.topic_ranking`) per partition.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

import pandas as pd

from muse.metrics.ranking import RankedSystem, topic_ranking
from muse.report.paper import PAPER_VALUES, PaperValue, published
from muse.report.runs import MODEL_NAMES
from muse.tasks import EVALUATED_PARTITIONS


@dataclass(frozen=True)
class Column:
    """One metric of a table, as logged under best/<partition>/ (e.g. "arousal/ccc")."""

    metric: str
    title: str
    percent: bool

    @property
    def slug(self) -> str:
        return self.metric.replace("/", "_")

    @property
    def decimals(self) -> int:
        # CCCs as the paper prints them (.2568); MuSe-Topic percentages like 76.78.
        return 2 if self.percent else 4


@dataclass(frozen=True)
class TableSpec:
    """A table of the report: its file stem, task, title, caption, columns and plotted one."""

    name: str
    task: str
    title: str
    caption: str
    columns: tuple[Column, ...]
    headline: str

    def column(self, metric: str) -> Column:
        return next(column for column in self.columns if column.metric == metric)

    def has_paper(self, metric: str) -> bool:
        """Whether the paper publishes this metric for any system of this task."""
        return any(v.task == self.task and v.metric == metric for v in PAPER_VALUES)


SPECS = (
    TableSpec("wild", "wild", "MuSe-Wild",
              "CCC of arousal and valence and their mean, the MuSe-Wild score.",
              (Column("arousal/ccc", "Arousal CCC", False),
               Column("valence/ccc", "Valence CCC", False),
               Column("score", "Combined CCC", False)), "score"),
    TableSpec("trust", "trust", "MuSe-Trust",
              "CCC of trustworthiness, the MuSe-Trust score.",
              (Column("trustworthiness/ccc", "Trustworthiness CCC", False),),
              "trustworthiness/ccc"),
    TableSpec("topic_topics", "topic", "MuSe-Topic: topics",
              "10-class topic: micro F1, UAR and their score 0.66 F1 + 0.34 UAR, in %.",
              (Column("topic/f1", "Topic F1", True), Column("topic/uar", "Topic UAR", True),
               Column("topic_score", "Topic score", True)), "topic_score"),
    TableSpec("topic_emotions", "topic", "MuSe-Topic: emotions",
              "3-class arousal and valence, each scored 0.66 F1 + 0.34 UAR, and the emotion "
              "score (their mean), in %.",
              (Column("arousal/score", "Arousal score", True),
               Column("valence/score", "Valence score", True),
               Column("emotion_score", "Emotion score", True)), "emotion_score"),
)


@dataclass
class Cell:
    """One metric on one partition over a row's seeds."""

    values: tuple[float, ...]

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.values) if self.values else None

    @property
    def sd(self) -> float | None:
        return statistics.stdev(self.values) if len(self.values) > 1 else None


@dataclass
class Row:
    """One system on one feature set: its seeds, cells and the paper's values."""

    task: str
    system: str
    model: str
    targets: tuple[str, ...]
    features: str
    features_label: str
    seeds: tuple[str, ...]
    run_ids: tuple[str, ...]
    cells: dict[tuple[str, str], Cell]  # (partition, metric) -> cell
    paper: dict[str, PaperValue] = field(default_factory=dict)

    def cell(self, partition: str, metric: str) -> Cell:
        return self.cells.get((partition, metric), Cell(()))

    def measured(self, metric: str) -> bool:
        return any(self.cell(partition, metric).n for partition in EVALUATED_PARTITIONS)

    def paper_value(self, partition: str, metric: str) -> float | None:
        """The paper's value, where the paper gives one and this row measured the metric."""
        value = self.paper.get(metric)
        if value is None or not self.measured(metric):
            return None
        return value.devel if partition == "devel" else value.test


@dataclass
class Table:
    spec: TableSpec
    rows: list[Row]

    def best_mean(self, partition: str, metric: str) -> float | None:
        """The highest mean of a column (as displayed), None when the column is empty."""
        decimals = self.spec.column(metric).decimals
        means = [round(row.cell(partition, metric).mean, decimals) for row in self.rows
                 if row.cell(partition, metric).n]
        return max(means) if means else None

    def is_best(self, row: Row, partition: str, metric: str) -> bool:
        cell = row.cell(partition, metric)
        if not cell.n:
            return False
        return round(cell.mean, self.spec.column(metric).decimals) == self.best_mean(
            partition, metric)

    @property
    def paper_sources(self) -> list[str]:
        return sorted({value.source for row in self.rows for value in row.paper.values()
                       if row.measured(value.metric)})


@dataclass
class Ranking:
    """The MuSe-Topic final ranking on one partition, ranked rows first place first."""

    partition: str
    places: list[tuple[RankedSystem, Row]]
    unranked: list[Row]


def _order(row: Row) -> tuple:
    known = list(MODEL_NAMES)
    return (known.index(row.model) if row.model in known else len(known), row.system,
            row.features_label)


def group_rows(runs: pd.DataFrame, task: str) -> list[Row]:
    """One row per system and feature set of the task's runs, with a cell per logged metric."""
    of_task = runs[runs["task"] == task]
    metrics = [c for c in runs.columns if c.split("/", 1)[0] in EVALUATED_PARTITIONS]
    rows = []
    for (system, features), group in of_task.groupby(["system", "features"], sort=False):
        group = group.sort_values("seed", key=lambda seeds: pd.to_numeric(seeds, errors="coerce"))
        first = group.iloc[0]
        cells = {}
        for column in metrics:
            values = tuple(float(v) for v in group[column].dropna())
            if values:
                partition, metric = column.split("/", 1)
                cells[(partition, metric)] = Cell(values)
        rows.append(Row(
            task=task, system=system, model=first["model"], targets=first["targets"],
            features=features, features_label=first["features_label"],
            seeds=tuple(group["seed"]), run_ids=tuple(group["run_id"]), cells=cells,
            paper=published(task, first["model"], first["feature_names"],
                             frozenset(first["targets"])),
        ))
    return sorted(rows, key=_order)


def build_tables(runs: pd.DataFrame) -> list[Table]:
    """Every table with at least one row (a row: any of the table's metrics measured)."""
    tables, rows_by_task = [], {}
    for spec in SPECS:
        if spec.task not in rows_by_task:
            rows_by_task[spec.task] = group_rows(runs, spec.task)
        rows = [row for row in rows_by_task[spec.task]
                if any(row.measured(column.metric) for column in spec.columns)]
        if rows:
            tables.append(Table(spec, rows))
    return tables


def build_rankings(runs: pd.DataFrame) -> list[Ranking]:
    """The MuSe-Topic ranking on each partition where some row has both scores."""
    rows = group_rows(runs, "topic")
    rankings = []
    for partition in EVALUATED_PARTITIONS:
        scored, unranked = {}, []
        for index, row in enumerate(rows):
            emotion = row.cell(partition, "emotion_score").mean
            topic = row.cell(partition, "topic_score").mean
            if emotion is None or topic is None:
                unranked.append(row)
            else:
                scored[str(index)] = (emotion, topic)
        if scored:
            places = [(ranked, rows[int(ranked.name)]) for ranked in topic_ranking(scored)]
            rankings.append(Ranking(partition, places, unranked))
    return rankings
