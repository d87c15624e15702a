"`make lab` serves JupyterLab on 127.0.0.1 behind a token, at the course's index notebook."
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from .conftest import ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, ""


@pytest.fixture(scope="module")
def lab():
    port, token = free_port(), "t0ken-for-tests"
    # BROWSER=true: "open" the page with the `true` command, so no browser starts.
    proc = subprocess.Popen(["make", "lab", f"PORT={port}", f"TOKEN={token}"], cwd=ROOT, start_new_session=True,
                            env={**os.environ, "BROWSER": "true"}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            if proc.poll() is not None:
                pytest.fail(f"make lab exited early:\n{proc.stdout.read()}")
            try:
                if get(f"{base}/api/status?token={token}")[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.5)
        else:
            pytest.fail("JupyterLab did not answer within 60 s")
        yield base, token
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def test_lab_answers_with_the_token(lab):
    base, token = lab
    status, page = get(f"{base}/lab?token={token}")
    assert status == 200 and "JupyterLab" in page


def test_lab_refuses_without_the_token(lab):
    base, _ = lab
    assert get(f"{base}/api/contents/nbs")[0] == 403


def test_lab_serves_the_index_notebook(lab):
    base, token = lab
    status, body = get(f"{base}/api/contents/nbs/index.ipynb?token={token}")
    assert status == 200 and "mlre-lab" in body


def test_lab_listens_on_localhost_only(lab):
    base, _ = lab
    port = int(base.rsplit(":", 1)[1])
    tables = [Path("/proc/net/tcp"), Path("/proc/net/tcp6")]
    if not tables[0].exists():
        pytest.skip("reads Linux's socket tables")
    # Each row: local address as hex IP:port, ..., state 0A = LISTEN
    listening = [row.split()[1] for table in tables if table.exists() for row in table.read_text().splitlines()[1:]
                 if row.split()[3] == "0A" and int(row.split()[1].rsplit(":", 1)[1], 16) == port]
    assert listening and all(address.split(":")[0] in ("0100007F", "00000000000000000000000001000000")
                             for address in listening), listening
