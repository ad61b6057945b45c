"""The `muse` command: synth, prepare, demo, score, report, extract, fuse and predict
subcommands over the muse package."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path


def _csv_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def _synth(args: argparse.Namespace) -> None:
    from muse.package.synthetic import synthesize

    out = synthesize(
        args.out, videos=args.videos, minutes=args.minutes, seed=args.seed,
        features=args.features, scale=args.scale,
    )
    print(f"synthetic MuSe-CaR package written to {out}")


def _prepare(args: argparse.Namespace) -> None:
    from muse.store.prepare import prepare
    from muse.store.prepare.check import check_package

    if args.check:
        print(check_package(args.package, args.tasks))
        return
    if args.out is None:
        raise SystemExit("muse prepare: give --out DIR (or --check to look at the package)")
    stores = prepare(
        args.package, args.out, tasks=args.tasks, features=args.features,
        audio_rate=0 if args.no_audio else args.audio_rate,
    )
    for task, path in stores.items():
        print(f"{task}: {path}")


def _demo(args: argparse.Namespace) -> None:
    from muse.store.demo import ensure_demo

    for task, path in ensure_demo(args.data, seed=args.seed).items():
        print(f"{task}: {path}")


def _score(args: argparse.Namespace) -> None:
    from muse.package.layout import aggregated_file
    from muse.scoring import score_files

    labels = args.labels
    if labels is None:
        if args.package is None:
            raise SystemExit("muse score: give --labels AGG_CSV or --package DIR --partition P")
        labels = aggregated_file(args.package, args.task, args.partition)
    print(json.dumps(score_files(args.task, labels, args.predictions), indent=2))


def _report(args: argparse.Namespace) -> None:
    from muse.report import report
    from muse.report.record import EXPERIMENT
    from muse.runs.tracking import ui_command

    result = report(args.tracking_uri, args.experiments, args.out, tuple(args.formats))
    print(f"report of {len(result.tables)} table(s) written to {result.out}: "
          f"{', '.join(result.files)}")
    print(f"recorded as run {result.run_id} of the experiment {EXPERIMENT}; look at it: "
          f"{ui_command(result.tracking_uri, EXPERIMENT)}")


def _extract(args: argparse.Namespace) -> None:
    from muse.package.extract import extract_package

    out = extract_package(args.media, args.out, transcripts=args.transcripts,
                          fasttext_model=args.fasttext_model, features=args.features,
                          labels=args.labels, workers=args.workers)
    print(f"package written to {out}; next: muse prepare --package {out} --out DIR")


def _fuse(args: argparse.Namespace) -> None:
    from muse.errors import FusionError
    from muse.runs.fusion.run import fuse_runs
    from muse.runs.fusion.selection import member_groups
    from muse.runs.tracking import default_tracking_uri, open_store, root_dir

    tracking_uri = args.tracking_uri or default_tracking_uri()
    groups = member_groups(open_store(tracking_uri), tracking_uri, args.run_ids, args.filter,
                           args.seeds)
    if args.name and len(groups) > 1:
        raise FusionError(f"--name {args.name}: --seeds makes {len(groups)} runs here, one per "
                          "configuration; leave --name out")
    for members in groups:
        fuse_runs(tracking_uri, members, args.method, root_dir() / "logs", args.name, args.data,
                  ensemble=args.seeds)


def _add_fuse(commands: argparse._SubParsersAction) -> None:
    fuse = commands.add_parser(
        "fuse", help="late fusion of finished runs, or seed ensembles: a new run with scores")
    fuse.add_argument("run_ids", nargs="*", metavar="RUN_ID", help="the runs to fuse")
    fuse.add_argument("--filter", default=None,
                      help="an MLflow filter selecting the runs instead, e.g. "
                           "\"tags.task = 'wild' and tags.features = 'egemaps'\"")
    fuse.add_argument("--seeds", action="store_true",
                      help="group the filtered runs by configuration minus the seed and fuse "
                           "each group: one seed ensemble per configuration")
    fuse.add_argument("--method", choices=("mean", "weighted", "learned"), default="mean")
    fuse.add_argument("--name", default=None, help="the fused run's name")
    fuse.add_argument("--data", type=Path, default=None,
                      help="the folder holding the members' store, when not where they trained")
    fuse.add_argument("--tracking-uri", default=None,
                      help="default: $MLFLOW_TRACKING_URI, else sqlite:///logs/mlflow.db")
    fuse.set_defaults(run=_fuse)


def _predict(args: argparse.Namespace) -> None:
    from muse.predict import predict_run

    out = args.out or Path("logs") / "predictions" / args.run_id
    written = predict_run(args.run_id, out, media=args.media or (), package=args.package,
                          transcripts=args.transcripts, fasttext_model=args.fasttext_model,
                          tracking_uri=args.tracking_uri, log_to_run=args.log,
                          workers=args.workers)
    print(f"{len(written)} file(s) written to {out}: "
          f"{', '.join(path.name for path in written)}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="muse", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    synth = commands.add_parser("synth", help="write a synthetic MuSe-CaR in the official layout")
    synth.add_argument("--out", type=Path, required=True)
    synth.add_argument("--videos", type=int, default=None, help="number of videos")
    synth.add_argument("--minutes", type=float, default=None, help="mean minutes per video")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--features", type=_csv_list, default=None,
                       help="comma-separated feature sets (default: a small demo selection)")
    synth.add_argument("--scale", choices=("demo", "full"), default="demo")
    synth.set_defaults(run=_synth)

    prep = commands.add_parser("prepare", help="convert a challenge package into HDF5 stores")
    prep.add_argument("--package", type=Path, required=True)
    prep.add_argument("--out", type=Path, default=None, help="folder of the stores")
    prep.add_argument("--tasks", type=_csv_list, default=["wild", "topic", "trust"])
    prep.add_argument("--features", type=_csv_list, default=None,
                      help="comma-separated feature sets (default: every one in the package)")
    prep.add_argument("--audio-rate", type=int, default=8000)
    prep.add_argument("--no-audio", action="store_true", help="do not store raw audio")
    prep.add_argument("--check", action="store_true",
                      help="only report what prepare would read (headers and samples, seconds); "
                           "writes nothing")
    prep.set_defaults(run=_prepare)

    demo = commands.add_parser(
        "demo", help="generate (once) and prepare the built-in synthetic demo in a data directory")
    demo.add_argument("--data", type=Path, default=Path("data"))
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(run=_demo)

    score = commands.add_parser("score", help="score predictions like the official scorer")
    score.add_argument("--task", choices=("wild", "topic", "trust"), required=True)
    score.add_argument("--labels", type=Path, default=None, help="aggregated label CSV")
    score.add_argument("--package", type=Path, default=None)
    score.add_argument("--partition", choices=("train", "devel", "test"), default="devel")
    score.add_argument("--predictions", type=Path, required=True)
    score.set_defaults(run=_score)

    report = commands.add_parser("report", help="the paper's tables from the MLflow runs")
    report.add_argument("--experiment", dest="experiments", action="extend", nargs="+",
                        default=None, metavar="NAME",
                        help="experiments to read (default: MuSe-Wild MuSe-Topic MuSe-Trust)")
    report.add_argument("--tracking-uri", default=None,
                        help="default: $MLFLOW_TRACKING_URI, else sqlite:///logs/mlflow.db")
    report.add_argument("--out", type=Path, default=None, help="default: logs/report")
    report.add_argument("--format", dest="formats", type=_csv_list, default=["md", "csv"],
                        help="comma-separated, from md,csv,html (PNG figures always)")
    report.set_defaults(run=_report)

    extract = commands.add_parser(
        "extract", help="new media (audio or video files) -> a package in the official layout")
    extract.add_argument("--media", type=Path, nargs="+", required=True,
                         help="media files (wav, flac, mp3, mp4, mkv, webm) or folders of them")
    extract.add_argument("--out", type=Path, required=True, help="the new package folder")
    extract.add_argument("--transcripts", type=Path, default=None,
                         help="folder of <media name>.csv (start,end,word in ms), .srt or .vtt")
    extract.add_argument("--fasttext-model", type=Path, default=None,
                         help="a 300-d fastText binary model (e.g. cc.en.300.bin)")
    extract.add_argument("--features", type=_csv_list, default=None,
                         help="comma-separated, from egemaps,lld,fasttext (default: egemaps,lld "
                              "and fasttext when a model is given)")
    extract.add_argument("--labels", type=Path, default=None,
                         help="CSV of file,timestamp (ms),arousal/valence/trustworthiness "
                              "[,partition]: a labelled package of your own videos")
    extract.add_argument("--workers", type=int, default=1,
                         help="processes sharing the eGeMAPS windows (one per core at most)")
    extract.set_defaults(run=_extract)

    _add_fuse(commands)
    predict = commands.add_parser(
        "predict", help="a finished run applied to new media or a package: per-video CSV + PNG")
    predict.add_argument("--run", dest="run_id", required=True, metavar="RUN_ID",
                         help="the MLflow run id of a finished run")
    given = predict.add_mutually_exclusive_group(required=True)
    given.add_argument("--media", type=Path, nargs="+",
                       help="media files (wav, flac, mp3, mp4, mkv, webm) or folders of them")
    given.add_argument("--package", type=Path, help="a package in the official layout instead")
    predict.add_argument("--out", type=Path, default=None,
                         help="a new folder for the files (default: logs/predictions/RUN)")
    predict.add_argument("--transcripts", type=Path, default=None,
                         help="folder of <media name>.csv (start,end,word in ms), .srt or .vtt")
    predict.add_argument("--fasttext-model", type=Path, default=None,
                         help="the run's fastText binary model, for runs that read fasttext")
    predict.add_argument("--tracking-uri", default=None,
                         help="default: $MLFLOW_TRACKING_URI, else sqlite:///logs/mlflow.db")
    predict.add_argument("--log", action="store_true",
                         help="record the files as artifacts of the run (predictions/<out name>/)")
    predict.add_argument("--workers", type=int, default=1,
                         help="processes sharing the eGeMAPS extraction (one per core at most)")
    predict.set_defaults(run=_predict)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    from muse.errors import MuseError

    try:
        args.run(args)
    except MuseError as error:
        print(f"muse {args.command}: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
