"""Run checkov over synthesized templates; fail on any failed check not skipped in quality/checkov-skips.json.

    python tools/gates/checkov_gate.py CHECKOV_BINARY DIR [DIR ...]

A skip names one check id, a regex over checkov's resource id (``Type.LogicalId``) and a reason, so it
covers exactly the resources it was written for. Unused skips are reported too, so the file stays honest.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

SKIPS = Path(__file__).resolve().parents[2] / "quality" / "checkov-skips.json"


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    checkov, folders = argv[1], argv[2:]
    skips = json.loads(SKIPS.read_text())
    for skip in skips:
        if len(skip.get("reason", "").split()) < 8:
            print(f"Skip {skip['check']} needs a real reason.", file=sys.stderr)
            return 2
    used: set[int] = set()
    unexpected = []
    passed = 0
    for folder in folders:
        result = subprocess.run(  # noqa: S603 - the checkov binary comes from the Makefile
            [checkov, "-d", folder, "--framework", "cloudformation", "-o", "json"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        reports = json.loads(result.stdout or "[]")
        for report in reports if isinstance(reports, list) else [reports]:
            results = report.get("results", {})
            passed += len(results.get("passed_checks", []))
            for failure in results.get("failed_checks", []):
                match = next(
                    (i for i, s in enumerate(skips)
                     if s["check"] == failure["check_id"] and re.search(s["resource"], failure["resource"])),
                    None,
                )  # fmt: skip
                if match is None:
                    unexpected.append(f"{failure['check_id']} {failure['resource']} ({folder}{failure['file_path']}): "
                                      f"{failure['check_name']}")  # fmt: skip
                else:
                    used.add(match)
    for line in unexpected:
        print(f"FAILED {line}")
    for index, skip in enumerate(skips):
        if index not in used:
            print(f"UNUSED SKIP {skip['check']} {skip['resource']}: remove it")
    print(f"checkov: {passed} passed, {len(unexpected)} failed outside the skips, {len(used)}/{len(skips)} skips used")
    return 1 if unexpected or len(used) != len(skips) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
