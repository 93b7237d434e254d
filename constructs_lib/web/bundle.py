"""The web app as it is uploaded: no build step (plain ES modules, no dependencies; README, "The web app"), only
content hashing. Every file of web/src goes under assets/<hash of them all>/, so an asset path never changes
content and is cached for a year; index.html names that folder and is revalidated on every load."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from constructs_lib.foundation.staging import package_files, staged_content
from lambda_src.contracts import web

WEB_ROOT = Path(__file__).resolve().parents[2] / "web"
ASSETS_PLACEHOLDER = "{{ASSETS}}"
# What the browser loads; tests and editor files in web/src stay out of the upload.
SHIPPED_SUFFIXES = (".js", ".css", ".svg")


@dataclass(frozen=True)
class SiteBuild:
    """``pages``: a folder with index.html; ``assets``: a folder with <build id>/<file>; ``*_keys``: the bucket
    keys they land at (the upload's IAM policy names exactly these objects)."""

    build_id: str
    pages: Path
    assets: Path
    page_keys: tuple[str, ...]
    asset_keys: tuple[str, ...]


def build_site(root: Path = WEB_ROOT) -> SiteBuild:
    index = root / web.INDEX
    if not index.is_file():
        raise ValueError(f"The web app's {index} is missing: the WebStack serves web/ from this repository.")
    sources = {name: path for name, path in package_files(root / "src", root / "src").items()
               if name.endswith(SHIPPED_SUFFIXES)}  # fmt: skip
    if not any(name.endswith(".js") for name in sources):
        raise ValueError(f"The web app has no scripts under {root / 'src'}.")
    digest = hashlib.sha256()
    for name in sorted(sources):
        digest.update(name.encode() + b"\0" + sources[name].read_bytes() + b"\0")
    build_id = digest.hexdigest()[:16]
    page = index.read_text()
    if ASSETS_PLACEHOLDER not in page:
        raise ValueError(f"{index} must load its files from {ASSETS_PLACEHOLDER}/ (the hashed assets folder).")
    assets_path = "/" + web.ASSETS_PREFIX + build_id
    pages = staged_content({web.INDEX: page.replace(ASSETS_PLACEHOLDER, assets_path).encode()}, "web-pages")
    assets = staged_content({f"{build_id}/{name}": path.read_bytes() for name, path in sources.items()}, "web-assets")
    return SiteBuild(
        build_id=build_id,
        pages=pages,
        assets=assets,
        page_keys=(web.INDEX,),
        asset_keys=tuple(f"{web.ASSETS_PREFIX}{build_id}/{name}" for name in sorted(sources)),
    )
