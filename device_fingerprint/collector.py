"""The browser collector script ztgate serves, and what a page needs to embed it safely.

``static/collector.js`` defines ``window.ztgateDevice.collect()``, which resolves
to a payload conforming to ``schema/web-v1.json``; the page sends it with its
requests (e.g. as the body of a login call) and the gateway hands the bytes to
`DeviceAssessor` as `DeviceObservation.signals`.

Serve the bytes of `collector_script` as ``application/javascript`` and load them
with ``<script src=… integrity="{collector_integrity()}" crossorigin="anonymous">``
(Subresource Integrity, W3C SRI §3.3): a tampered script is refused by the browser.
`FONT_PROBES` is the script's font probe list (a test keeps the two equal).
"""

from __future__ import annotations

import base64
import functools
import hashlib
from importlib import resources
from typing import Final

__all__ = ["COLLECTOR_VERSION", "FONT_PROBES", "collector_integrity", "collector_script"]

COLLECTOR_VERSION: Final = "1.0.0"
FONT_PROBES: Final = (
    "Arial", "Arial Black", "Bahnschrift", "Calibri", "Cambria", "Candara", "Comic Sans MS",
    "Consolas", "Constantia", "Corbel", "Courier New", "DengXian", "Ebrima", "FangSong",
    "Franklin Gothic Medium", "Gabriola", "Georgia", "Impact", "KaiTi", "Lucida Console",
    "Lucida Sans Unicode", "Malgun Gothic", "Microsoft JhengHei", "Microsoft YaHei",
    "MS Gothic", "Palatino Linotype", "Segoe UI", "Segoe UI Emoji", "SimHei", "SimSun",
    "Sylfaen", "Tahoma", "Times New Roman", "Trebuchet MS", "Verdana", "Yu Gothic",
    "Aptos", "Book Antiqua", "Bookman Old Style", "Century Gothic", "Garamond", "Gill Sans MT",
    "Lucida Bright", "Rockwell", "Tw Cen MT",
    "Adobe Heiti Std", "Adobe Song Std", "Minion Pro", "Myriad Pro", "Source Han Sans CN",
    "FZShuTi", "LiSu", "STKaiti", "STXihei", "YouYuan",
    "American Typewriter", "Apple Color Emoji", "Avenir", "Avenir Next", "Baskerville",
    "Futura", "Geneva", "Gill Sans", "Helvetica", "Helvetica Neue", "Hiragino Sans GB",
    "Menlo", "Monaco", "Optima", "PingFang SC", "Songti SC", "STHeiti",
    "Cantarell", "DejaVu Sans", "Droid Sans", "Liberation Sans", "Noto Color Emoji",
    "Noto Sans CJK SC", "Roboto", "Ubuntu", "HarmonyOS Sans SC", "MiSans",
    "Fira Code", "JetBrains Mono", "Source Code Pro",
)  # fmt: skip


@functools.cache
def collector_script() -> bytes:
    """The script's bytes (package data ``static/collector.js``)."""
    return resources.files("device_fingerprint").joinpath("static", "collector.js").read_bytes()


@functools.cache
def collector_integrity() -> str:
    """The SRI ``integrity`` value of `collector_script` (SHA-384, W3C SRI §3.1)."""
    digest = hashlib.sha384(collector_script()).digest()
    return "sha384-" + base64.b64encode(digest).decode("ascii")
