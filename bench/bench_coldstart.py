"""Cold start with usable byte-code: each function's cold import from its deployment artifact as built
(unchecked hash-based .pyc, which the Lambda runtime uses as they are) against the same artifact without
byte-code, which is what the default build amounts to on Lambda: the deploy zip gives every file a 1980
timestamp, so timestamp-checked .pyc are stale, and /var/task and /opt are read-only, so every module of
the function and its layer is compiled again at every cold start.

Both copies carry the zip's timestamps. Each run is a fresh interpreter, writing no byte-code, that imports
the handler module with the function's directory and its layer first on sys.path (as /var/task and
/opt/python are) and the environment the template gives the function; the runs alternate between the
variants and the functions; medians. The import includes the handler module's own work (Logger, Metrics,
the boto3 clients: no AWS call, which a checked run verifies) and the runtime's modules (boto3, the
standard library), which cost the same in both variants; the split shows each part.

Target: cold import with byte-code <= 0.6 x without it.
Artifacts: .aws-sam/build when `sam build` made them, else (or with --build) the template's build Makefiles
run into a temporary directory.
Run: .venv/bin/python -m bench.bench_coldstart [--runs N] [--build] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

from bench import artifacts
from bench.common import interleaved, summary_ms

TARGET = 0.6
# How many of the costliest imports the report lists per function.
TOP_IMPORTS = 8


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def top_imports(probe: artifacts.ColdImport) -> dict[str, float]:
    """The costliest packages to import, cumulative as -X importtime attributes it (the first importer of a
    module pays for it), the handler module itself left out (its figure is the whole import)."""
    by_package: dict[str, float] = {}
    for name, _depth, _self_s, cumulative_s in probe.import_time:
        if name == "app":
            continue
        key = name if name.startswith("mmsbridge.") else name.split(".")[0]
        by_package[key] = max(by_package.get(key, 0.0), cumulative_s)
    ranked = sorted(by_package.items(), key=lambda item: item[1], reverse=True)[:TOP_IMPORTS]
    return {name: _ms(seconds) for name, seconds in ranked}


def measure(build_dir: Path, runs: int, workdir: Path) -> dict:
    stack = artifacts.load_stack()
    variants: dict[str, tuple[artifacts.Artifact, artifacts.Artifact]] = {}
    report: dict[str, dict] = {}
    for lid, artifact in artifacts.artifacts(build_dir, stack).items():
        with_code = artifacts.deployed(artifact, workdir / "with" / lid)
        without = artifacts.deployed(artifact, workdir / "without" / lid, byte_code=False)
        variants[lid] = (with_code, without)
        # Checked runs (audit hook on, not timed), which also warm the file system cache for both.
        checked_with = artifacts.cold_import(with_code, checked=True)
        checked_without = artifacts.cold_import(without, checked=True)
        report[lid] = {
            "modules": len(checked_with.modules),
            "artifact_modules": sum(checked_with.from_artifact(name) for name in checked_with.modules),
            "compiled_with_bytecode": len(checked_with.compiled),
            "compiled_without_bytecode": len(checked_without.compiled),
            "heavy": checked_with.heavy(),
            "not_on_lambda": checked_with.outside_lambda(),
            "top_imports_ms": top_imports(checked_with),
        }

    measures = []
    for with_code, without in variants.values():
        measures += [lambda a=with_code: artifacts.cold_import(a), lambda a=without: artifacts.cold_import(a)]
    results = interleaved(runs, *measures)
    for index, lid in enumerate(variants):
        with_runs, without_runs = results[2 * index], results[2 * index + 1]
        entry = report[lid]
        for key, samples in (("with_bytecode", with_runs), ("without_bytecode", without_runs)):
            entry[key] = {
                "wall": summary_ms([run.wall_s for run in samples]),
                "cpu_p50_ms": _ms(statistics.median(run.cpu_s for run in samples)),
                "split_p50_ms": {
                    part: _ms(statistics.median(run.split_s()[part] for run in samples))
                    for part in ("artifact_modules", "runtime_modules", "handler_body")
                },
            }
        wall = [statistics.median(run.wall_s for run in samples) for samples in (with_runs, without_runs)]
        cpu = [statistics.median(run.cpu_s for run in samples) for samples in (with_runs, without_runs)]
        # with_ms and without_ms are the figures bench/report.py tabulates.
        entry["with_ms"], entry["without_ms"] = _ms(wall[0]), _ms(wall[1])
        entry["ratio_wall"], entry["ratio_cpu"] = wall[0] / wall[1], cpu[0] / cpu[1]
        parts = [
            entry[key]["split_p50_ms"]["artifact_modules"] for key in ("with_bytecode", "without_bytecode")
        ]
        entry["ratio_artifact_modules"] = parts[0] / parts[1]
        # The whole import were the layer's and handler's modules free: no byte-code can go below it.
        entry["floor_ms"] = _ms(wall[0]) - parts[0]
        entry["ratio_floor"] = entry["floor_ms"] / entry["without_ms"]
    return report


def print_table(report: dict, runs: int, build_dir: str) -> None:
    print(
        f"cold import of each handler, {runs} fresh interpreters per variant, medians; artifacts: {build_dir}"
    )
    print(
        f"{'':24} {'with .pyc':>9} {'without':>9} {'ratio':>6} {'cpu':>5}"
        f" | {'layer+handler modules':>25} | {'runtime modules':>15} | {'handler body':>12} | compiled"
    )
    for lid, entry in report.items():
        w, wo = entry["with_bytecode"], entry["without_bytecode"]
        split = {part: f"{w['split_p50_ms'][part]:.0f} / {ms:.0f}" for part, ms in wo["split_p50_ms"].items()}
        artifact_part = f"{split['artifact_modules']} ({entry['ratio_artifact_modules']:.2f})"
        compiled = f"{entry['compiled_with_bytecode']} / {entry['compiled_without_bytecode']}"
        print(
            f"{lid:24} {w['wall']['p50_ms']:7.0f}ms {wo['wall']['p50_ms']:7.0f}ms"
            f" {entry['ratio_wall']:6.2f} {entry['ratio_cpu']:5.2f}"
            f" | {artifact_part:>25} | {split['runtime_modules']:>15}"
            f" | {split['handler_body']:>12} | {compiled}"
        )
    print(
        f"target: ratio <= {TARGET} (wall; cpu: the same in process CPU time). Parts: ms with / without"
        " byte-code (-X importtime self times); compiled: modules compiled from source at import."
    )
    for lid, entry in report.items():
        missing = f"; NOT ON LAMBDA: {', '.join(entry['not_on_lambda'])}" if entry["not_on_lambda"] else ""
        print(
            f"{lid}: {entry['modules']} modules imported ({entry['artifact_modules']} from the artifact);"
            f" heavy: {', '.join(entry['heavy']) or 'none'}{missing}"
        )
        print(
            f"    without its own modules' cost the import would still take {entry['floor_ms']:.0f} ms:"
            f" ratio {entry['ratio_floor']:.2f} at best"
        )
        tops = ", ".join(f"{name} {ms:.0f}" for name, ms in entry["top_imports_ms"].items())
        print(f"    costliest imports with byte-code (ms, cumulative): {tops}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=15, help="fresh interpreters per variant (default 15)")
    parser.add_argument("--build", action="store_true", help="build the artifacts afresh, not from sam build")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mmsbridge-coldstart-") as scratch:
        workdir = Path(scratch)
        build_dir = artifacts.BUILD_DIR
        if args.build or not artifacts.built(build_dir, artifacts.load_stack()):
            build_dir = workdir / "build"
            artifacts.build(build_dir, artifacts.load_stack())
        report = measure(build_dir, args.runs, workdir)
    # The report is committed: the build directory is named relative to the checkout, wherever that is.
    shown = (
        build_dir.relative_to(artifacts.ROOT).as_posix()
        if build_dir == artifacts.BUILD_DIR
        else "built afresh by the template's Makefiles"
    )
    if args.json:
        print(json.dumps({"runs": args.runs, "artifacts": shown, "target": TARGET, "functions": report}))
    else:
        print_table(report, args.runs, shown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
