"""The internal report and the store's catalog page render in a real headless browser.

A small real release is built in a temporary folder; its ``report.html`` and the
store's ``index.html`` are screenshotted with Chromium (the Debian package; ``make test``
installs it, see the Makefile's ``ensure-chromium``). In CI (``CI`` set) a missing
Chromium fails the test; elsewhere it skips. The PNGs are decoded (Pillow if present,
else the small reader below) and must be the window's size, not blank, and show the
pages' own CSS colours (so the styles, not just text, were applied).
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest

WIDTH, HEIGHT = 1280, 2000
REPORT_PASSED_BANNER = (0xE3, 0xF4, 0xE6)  # .pass in validators/report.py's CSS
CATALOG_LATEST_TAG = (0xD8, 0xF5, 0xD8)  # .latest in synthrelease/store/catalog.py's CSS


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.environ.get("CI", "").lower() not in ("", "0", "false", "no"):
        pytest.fail("chromium is not installed; CI runs `make test`, which installs it")
    pytest.skip("chromium is not installed (apt-get install chromium); CI fails here")


def _screenshot(page: Path, out: Path, profile: Path) -> np.ndarray:
    subprocess.run(
        [
            _chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            f"--screenshot={out}",
            f"--window-size={WIDTH},{HEIGHT}",
            page.resolve().as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=180,
    )
    assert out.exists() and out.stat().st_size > 1000
    return _pixels(out)


def _pixels(path: Path) -> np.ndarray:
    """(height, width, channels) uint8 of an 8-bit RGB/RGBA PNG."""
    try:
        from PIL import Image
    except ImportError:
        return _read_png(path.read_bytes())
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def _read_png(data: bytes) -> np.ndarray:
    """A small PNG reader: 8-bit RGB or RGBA, not interlaced (what Chromium writes)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, [], None
    while pos < len(data):
        (size,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + size]
        pos += 12 + size
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
    assert header is not None, "no IHDR chunk"
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and colour in (2, 6) and interlace == 0, header
    bpp = 3 if colour == 2 else 4
    raw = np.frombuffer(zlib.decompress(b"".join(idat)), dtype=np.uint8)
    rows = raw.reshape(height, width * bpp + 1)
    out = np.zeros((height, width * bpp), dtype=np.uint8)
    prior = np.zeros(width * bpp, dtype=np.int64)
    for y in range(height):
        kind, line = rows[y, 0], rows[y, 1:].astype(np.int64)
        if kind == 0:
            recon = line
        elif kind == 1:  # Sub: a running sum per channel
            recon = np.cumsum(line.reshape(width, bpp), axis=0).reshape(-1) % 256
        elif kind == 2:  # Up
            recon = (line + prior) % 256
        else:  # Average, Paeth: left to right
            recon = _sequential(int(kind), line.tolist(), prior.tolist(), bpp)
        out[y] = recon
        prior = np.asarray(recon, dtype=np.int64)
    return out.reshape(height, width, bpp)[:, :, :3]


def _sequential(kind: int, line: list[int], prior: list[int], bpp: int) -> np.ndarray:
    recon = [0] * len(line)
    for i, value in enumerate(line):
        a = recon[i - bpp] if i >= bpp else 0
        b = prior[i]
        c = prior[i - bpp] if i >= bpp else 0
        if kind == 3:
            guess = (a + b) // 2
        elif kind == 4:
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            guess = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
        else:
            raise ValueError(f"unknown PNG filter {kind}")
        recon[i] = (value + guess) % 256
    return np.asarray(recon, dtype=np.int64)


def _assert_rendered(pixels: np.ndarray, colour: tuple[int, int, int]) -> None:
    assert pixels.shape == (HEIGHT, WIDTH, 3)
    flat = pixels.reshape(-1, 3)
    colours, counts = np.unique(flat, axis=0, return_counts=True)
    assert len(colours) > 50, "too few colours: a blank or unstyled page"
    assert counts.max() / len(flat) < 0.98, "one colour covers the page"
    assert (flat == np.array(colour, dtype=np.uint8)).all(axis=1).sum() > 100, colour


def test_read_png_round_trip():
    """The reader against a PNG written with every filter type by hand."""
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(5, 4, 3), dtype=np.int64)
    rows, prior = [], np.zeros(12, dtype=np.int64)
    for y, kind in enumerate((0, 1, 2, 3, 4)):
        line = image[y].reshape(-1)
        left = np.concatenate([np.zeros(3, dtype=np.int64), line[:-3]])
        upper_left = np.concatenate([np.zeros(3, dtype=np.int64), prior[:-3]])
        p = left + prior - upper_left
        pa, pb, pc = np.abs(p - left), np.abs(p - prior), np.abs(p - upper_left)
        paeth = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, prior, upper_left))
        guess = [0, left, prior, (left + prior) // 2, paeth][kind]
        rows.append(bytes([kind]) + ((line - guess) % 256).astype(np.uint8).tobytes())
        prior = line

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", 0)

    png = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 4, 5, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(b"".join(rows)))
        + chunk(b"IEND", b"")
    )
    assert (_read_png(png) == image).all()


@pytest.mark.integration
def test_the_report_and_the_catalog_render_in_headless_chromium(tmp_path):
    _chromium()  # fail (CI) or skip before the release is built
    from tests.test_datasheet import _release, _spec

    (tmp_path / "release").mkdir()
    spec, run_dir, _, _ = _release(_spec(tmp_path / "release"))
    report = run_dir / "report" / "report.html"
    catalog = Path(spec.store.uri) / "index.html"
    assert report.exists() and catalog.exists()
    assert "Utility at a glance" in report.read_text()

    pixels = _screenshot(report, tmp_path / "report.png", tmp_path / "profile")
    _assert_rendered(pixels, REPORT_PASSED_BANNER)
    pixels = _screenshot(catalog, tmp_path / "catalog.png", tmp_path / "profile")
    _assert_rendered(pixels, CATALOG_LATEST_TAG)
