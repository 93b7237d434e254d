"""The web app, measured in one run: what a first visit transfers, and how long a load takes until the app is
interactive in the local browser.

    .venv/bin/python bench/web_bench.py [--loads 10]

- transfer: the files a first visit loads (index.html, config.json, the scripts, the stylesheet, the icon),
  gzip-compressed as CloudFront compresses the hashed assets (level 6), from the staged build the web stack
  uploads; JS + CSS against the 100 KB target, and what Chromium itself reports received;
- interactive: Debian's Chromium (Playwright) loads the app from the local edge (the deployed site bucket, the
  distribution's headers) ``--loads`` times, each in a new browser context (a cold cache, as a first visit): the
  time from navigation start until the sign-in form can be typed into (the modules loaded, config.json read,
  the page drawn), p50 and the spread. Starts the LocalPlatform `make local` starts (free ports, state in
  .local/bench-web/), without the sample corpus.
"""

from __future__ import annotations

import argparse
import gzip
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from constructs_lib.web.bundle import build_site  # noqa: E402 - after the path set-up
from lambda_src.contracts import web  # noqa: E402
from tools.local.browser import launch  # noqa: E402
from tools.local.launcher import STATE, LocalPlatform  # noqa: E402
from tools.local.processes import Ports  # noqa: E402

TARGET_KB = 100


def transfer() -> dict[str, int]:
    """Gzip size of each file of a first visit, by kind."""
    build = build_site()
    sizes: dict[str, int] = {"html": len(gzip.compress((build.pages / web.INDEX).read_bytes(), 6))}
    for path in build.assets.rglob("*"):
        if path.is_file():
            kind = path.suffix.lstrip(".")
            sizes[kind] = sizes.get(kind, 0) + len(gzip.compress(path.read_bytes(), 6))
    return sizes


def interactive(platform: LocalPlatform, loads: int) -> tuple[list[float], int]:
    from playwright.sync_api import sync_playwright

    sys.path.insert(0, str(ROOT / "e2e"))

    times: list[float] = []
    received = 0
    with sync_playwright() as driver:
        browser = launch(driver)
        for _ in range(loads + 1):  # the first warms the edge and the emulator, not the browser
            context = browser.new_context()
            page = context.new_page()
            page.goto(platform.web_origin)
            page.wait_for_selector("#email:not([disabled])", state="visible")
            times.append(float(page.evaluate("performance.now()")))
            received = int(page.evaluate(
                "performance.getEntriesByType('resource').reduce((n, r) => n + r.transferSize, 0)"
                " + performance.getEntriesByType('navigation')[0].transferSize"))  # fmt: skip
            context.close()
        browser.close()
    return times[1:], received


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loads", type=int, default=10)
    args = parser.parse_args()
    sizes = transfer()
    code = sizes.get("js", 0) + sizes.get("css", 0)
    print(f"First visit, gzip: JS {sizes.get('js', 0) / 1024:.1f} KB + CSS {sizes.get('css', 0) / 1024:.1f} KB = "
          f"{code / 1024:.1f} KB (target <= {TARGET_KB} KB); with index.html and the icon "
          f"{sum(sizes.values()) / 1024:.1f} KB")  # fmt: skip
    platform = LocalPlatform(ports=Ports.free(), state=STATE / "bench-web", ingest_sample=False)
    try:
        platform.start()
        times, received = interactive(platform, args.loads)
    finally:
        platform.stop()
    print(f"Chromium received {received / 1024:.1f} KB for a first visit (headers included, from the local edge)")
    p50 = statistics.median(times)
    print(f"Navigation to interactive (sign-in form ready), {len(times)} cold loads: p50 {p50:.0f} ms "
          f"(min {min(times):.0f}, max {max(times):.0f})")  # fmt: skip
    return 0 if code <= TARGET_KB * 1024 else 1


if __name__ == "__main__":
    sys.exit(main())
