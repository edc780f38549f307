"""Headless Chromium driven over its DevTools pipe: open a page at a given viewport width,
run a script in it, take a screenshot. No driver library: the DevTools protocol is JSON
messages ended by a NUL byte on two pipes (Chromium reads fd 3 and writes fd 4).

Headless Chromium will not make a window narrower than 500 px, so a phone's width is set
by emulation (``Emulation.setDeviceMetricsOverride``), as the browser's device mode does.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["Browser", "chromium_path"]


def chromium_path() -> str | None:
    """The Chromium executable, or None."""
    return next(
        (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p),
        None,
    )


class Browser:
    """One headless Chromium with one page; use as a context manager."""

    def __init__(self) -> None:
        exe = chromium_path()
        if exe is None:
            raise RuntimeError("Chromium is not installed")
        self._profile = tempfile.TemporaryDirectory(ignore_cleanup_errors=True)
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()
        flags = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--remote-debugging-pipe",
            f"--user-data-dir={self._profile.name}",
            "about:blank",
        ]

        def child_fds() -> None:  # fd 3: Chromium reads; fd 4: Chromium writes
            read, write = os.dup(to_chrome_r), os.dup(from_chrome_w)  # above 3 and 4
            os.dup2(read, 3, inheritable=True)
            os.dup2(write, 4, inheritable=True)

        self._proc = subprocess.Popen(
            [exe, *flags],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            close_fds=False,  # fds 3 and 4 are made in the child, after any closing
            preexec_fn=child_fds,
        )
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buffer = b""
        self._next_id = 0
        self._events: list[dict] = []
        target = next(
            t for t in self._call("Target.getTargets")["targetInfos"] if t["type"] == "page"
        )
        self._session = self._call(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}
        )["sessionId"]
        self._call("Page.enable", session=True)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """End Chromium (asked to close; killed, this process only, if it does not) and
        remove its profile."""
        if self._proc.poll() is None:
            try:
                self._call("Browser.close")
            except (OSError, RuntimeError):
                pass  # already gone
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=30)
        for fd in (self._to_chrome, self._from_chrome):
            try:
                os.close(fd)
            except OSError:
                pass
        self._profile.cleanup()

    def open(self, page: Path, width: int, height: int = 844) -> None:
        """Load ``page`` at a viewport ``width`` x ``height`` CSS px (a phone: mobile mode)."""
        self._call(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600},
            session=True,
        )
        self._events.clear()
        self._call("Page.navigate", {"url": page.resolve().as_uri()}, session=True)
        self._wait_event("Page.loadEventFired")

    def evaluate(self, expression: str) -> Any:
        """The JSON value of a script run in the page."""
        reply = self._call(
            "Runtime.evaluate", {"expression": expression, "returnByValue": True}, session=True
        )
        if "exceptionDetails" in reply:
            raise RuntimeError(f"script failed: {reply['exceptionDetails']}")
        return reply["result"].get("value")

    def screenshot(self, out: Path) -> Path:
        """A PNG of the whole page (not only the viewport) at ``out``."""
        data = self._call(
            "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}, session=True
        )["data"]
        out.write_bytes(base64.b64decode(data))
        return out

    # --- the pipe ---------------------------------------------------------------------------

    def _call(self, method: str, params: dict | None = None, *, session: bool = False) -> dict:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = self._session
        os.write(self._to_chrome, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._read()
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self._events.append(reply)

    def _wait_event(self, method: str) -> dict:
        while True:
            for i, event in enumerate(self._events):
                if event.get("method") == method:
                    return self._events.pop(i)
            self._events.append(self._read())

    def _read(self) -> dict:
        while b"\0" not in self._buffer:
            chunk = os.read(self._from_chrome, 1 << 16)
            if not chunk:
                raise RuntimeError("Chromium closed its DevTools pipe")
            self._buffer += chunk
        raw, _, self._buffer = self._buffer.partition(b"\0")
        return json.loads(raw)
