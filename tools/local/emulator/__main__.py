"""Start the emulator: moto's server on 127.0.0.1 with every patch of this package installed."""

from __future__ import annotations

import argparse
import sys

from moto.server import main as moto_main

from tools.local.emulator import __doc__ as description
from tools.local.emulator import install_patches


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.local.emulator", description=(description or "").split("\n")[0]
    )
    parser.add_argument("--port", type=int, default=5000)
    args = parser.parse_args()
    install_patches(args.port)
    moto_main(["--host", "127.0.0.1", "--port", str(args.port)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
