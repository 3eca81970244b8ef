"""Which Prefect API a command-line run reports to: the configured server when it
answers, else a temporary local one (what Prefect calls ephemeral mode).

Prefect's own ephemeral mode is asked for with an empty ``PREFECT_API_URL``, but Prefect
3.9's events worker then fails (it takes the empty string for a server URL: task-run
states are lost and every event logs an error). So the temporary server is started here
(the same ``SubprocessASGIServer`` Prefect would start), and its URL is set both for this
process (``temporary_settings``) and in the environment for child processes (Dask
workers).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path

logger = logging.getLogger(__name__)


def server_answers() -> bool:
    """True if the configured Prefect server answers ($PREFECT_API_URL or the project's
    prefect.toml); else the run uses a temporary local server (``flows/api.py``)."""
    url = os.environ.get("PREFECT_API_URL")
    if url is None and Path("prefect.toml").exists():
        import tomllib

        try:
            url = tomllib.loads(Path("prefect.toml").read_text()).get("api", {}).get("url")
        except (OSError, tomllib.TOMLDecodeError):
            url = None
    if not url:
        return False
    import urllib.request

    try:
        with urllib.request.urlopen(url.rstrip("/") + "/health", timeout=2) as resp:
            if resp.status == 200:
                logger.info("reporting to Prefect server", extra={"api": url})
                return True
    except OSError:
        pass
    logger.info("Prefect server not reachable; using a temporary one", extra={"api": url})
    return False


@contextlib.contextmanager
def prefect_api(*, configured: bool) -> Iterator[None]:
    """Run the body against the configured API (``configured``) or a temporary one."""
    if configured:
        yield
        return
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.settings import PREFECT_API_URL, temporary_settings

    server = SubprocessASGIServer()
    server.start()
    logger.info("temporary Prefect server started", extra={"api": server.api_url})
    previous = os.environ.get("PREFECT_API_URL")
    os.environ["PREFECT_API_URL"] = server.api_url
    try:
        with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
            try:
                yield
            finally:  # deliver queued logs and events before the server goes away
                from prefect.events.worker import EventsWorker
                from prefect.logging.handlers import APILogWorker

                APILogWorker.drain_all(timeout=10)
                EventsWorker.drain_all(timeout=10)
    finally:
        if previous is None:
            os.environ.pop("PREFECT_API_URL", None)
        else:
            os.environ["PREFECT_API_URL"] = previous
        server.stop()
