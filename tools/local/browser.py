"""Debian's Chromium as the browser tests and the web benchmark start it (installed by `make browser`)."""

from __future__ import annotations

from typing import Any

CHROMIUM = "/usr/bin/chromium"
# Headless on a machine with a closed network: no background fetches, no sandbox (CI runs as root), no GPU.
CHROMIUM_ARGS = ("--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync")  # fmt: skip


def launch(playwright: Any) -> Any:
    """A headless Chromium through Playwright (its own browser download is never used)."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=list(CHROMIUM_ARGS))
