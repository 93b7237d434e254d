"""Synth benchmark: this app's full synth (all stacks, five nag packs) against a one-bucket reference app.

Both run as `python <app>` in fresh processes with the same venv (Python, jsii, Node 24), interleaved so
machine noise hits both alike. Our app gets cdk.json's context the way the CDK CLI passes it.
Prints medians and the ratio (target <= 1.5x); also the cost of the built-in CloudFormation
validation that the default synth leaves to cfn-lint, and what cfn-lint costs instead.

    make bench            # or: .venv/bin/python bench/synth_bench.py --runs 7
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _env(context: dict[str, object] | None, outdir: str) -> dict[str, str]:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "CDK_OUTDIR": outdir}
    if context is not None:
        env["CDK_CONTEXT_JSON"] = json.dumps(context)
    return env


def _time(cmd: list[str], context: dict[str, object] | None) -> float:
    with tempfile.TemporaryDirectory() as outdir:
        start = time.perf_counter()
        subprocess.run(cmd, cwd=ROOT, env=_env(context, outdir), check=True, capture_output=True)
        return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--suite", action="store_true", help="also time the whole test suite once (P2)")
    args = parser.parse_args()
    cdk_context = json.loads((ROOT / "cdk.json").read_text())["context"]
    python = sys.executable
    cases = {
        "reference (1 bucket, default App())": ([python, "bench/reference_app.py"], None),
        "this app, dev (make synth settings)": ([python, "app.py"], {**cdk_context, "stage": "dev"}),
        "this app, prod (make synth settings)": ([python, "app.py"], {**cdk_context, "stage": "prod"}),
        "this app, dev, built-in CFN validation on": (
            [python, "app.py"],
            {**cdk_context, "stage": "dev", "cfn_validation": "true"},
        ),
    }
    _time(*cases["reference (1 bucket, default App())"])  # warm the OS file cache once
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.runs):
        for name, (cmd, context) in cases.items():
            samples[name].append(_time(cmd, context))

    with tempfile.TemporaryDirectory() as outdir:
        subprocess.run([python, "app.py"], cwd=ROOT, env=_env({**cdk_context, "stage": "dev"}, outdir), check=True,
                       capture_output=True)  # fmt: skip
        templates = [str(p) for p in Path(outdir).glob("*.template.json")]
        lint = []
        for _ in range(args.runs):
            start = time.perf_counter()
            subprocess.run([str(BIN / "cfn-lint"), "--config-file", ".cfnlintrc.yaml", *templates], cwd=ROOT,
                           check=True, capture_output=True)  # fmt: skip
            lint.append(time.perf_counter() - start)

    medians = {name: statistics.median(values) for name, values in samples.items()}
    print(f"runs per case: {args.runs} (median, seconds)")
    for name, value in medians.items():
        print(f"  {name:<45} {value:6.2f}  (min {min(samples[name]):.2f}, max {max(samples[name]):.2f})")
    print(f"  {'cfn-lint on the dev templates':<45} {statistics.median(lint):6.2f}")
    reference = medians["reference (1 bucket, default App())"]
    ratio = medians["this app, dev (make synth settings)"] / reference
    print(f"P1 full synth / reference synth: {ratio:.2f}x (target <= 1.5x)")
    validation = medians["this app, dev, built-in CFN validation on"] - medians["this app, dev (make synth settings)"]
    print(f"built-in CloudFormation validation would add {validation:.2f} s per synth")
    if args.suite:
        start = time.perf_counter()
        subprocess.run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=ROOT,
                       env=_env(None, tempfile.mkdtemp()), check=True, capture_output=True)  # fmt: skip
        suite = time.perf_counter() - start
        dev = medians["this app, dev (make synth settings)"]
        print(f"P2 test suite {suite:.1f} s / full synth {dev:.2f} s: {suite / dev:.1f}x (target <= 2x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
