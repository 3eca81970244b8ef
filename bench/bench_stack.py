"""Time the local Prefect stack: `scripts/stack.sh up`, one `release/adult` deployment
run (--watch), and `down`, on a throwaway PREFECT_HOME and port. Prints a table.

    .venv/bin/python bench/bench_stack.py
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.conftest import adult_spec_for  # noqa: E402


def main() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    tmp = Path(tempfile.mkdtemp(prefix="bench-stack-"))
    bin_dir = Path(sys.executable).parent
    env = dict(
        os.environ,
        PREFECT_HOME=str(tmp / "home"),
        SYNTHRELEASE_PREFECT_PORT=str(port),
        BIN=str(bin_dir),
        PREFECT_API_URL=f"http://127.0.0.1:{port}/api",
    )
    spec = adult_spec_for(tmp)
    rows = []
    t0 = time.perf_counter()
    subprocess.run(
        [str(ROOT / "scripts" / "stack.sh"), "up"], env=env, check=True, capture_output=True
    )
    rows.append(("stack up", time.perf_counter() - t0))
    try:
        t1 = time.perf_counter()
        run = subprocess.run(
            [
                str(bin_dir / "prefect"),
                "deployment",
                "run",
                "release/adult",
                "--param",
                f"spec_path={spec}",
                "--watch",
                "--watch-timeout",
                "600",
            ],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        rows.append(
            (f"deployment run release/adult (exit {run.returncode})", time.perf_counter() - t1)
        )
    finally:
        t2 = time.perf_counter()
        subprocess.run([str(ROOT / "scripts" / "stack.sh"), "down"], env=env, capture_output=True)
        rows.append(("stack down", time.perf_counter() - t2))
    rows.append(("total", time.perf_counter() - t0))
    print(f"{'step':<48}{'seconds':>10}")
    for name, secs in rows:
        print(f"{name:<48}{secs:>10.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
