"""`make lab` serves JupyterLab on 127.0.0.1 behind a token, at the course's index notebook. The tests start it the
way a learner does (`PORT=... make lab`, nothing else) and use exactly the address it prints."""
import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from .conftest import ROOT

PRINTED_URL = re.compile(r"JupyterLab on (http://\S+)")


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


def printed_url(log: Path, proc: subprocess.Popen, seconds: float = 60) -> str:
    "The address `make lab` printed, read from its output as a learner reads it."
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        match = PRINTED_URL.search(log.read_text())
        if match:
            return match.group(1)
        if proc.poll() is not None:
            pytest.fail(f"make lab exited before printing an address:\n{log.read_text()}")
        time.sleep(0.2)
    pytest.fail(f"make lab printed no address within {seconds:.0f} s:\n{log.read_text()}")


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    "Start `make lab` in the background; yield the URL it printed once the server answers."
    log = tmp_path_factory.mktemp("lab") / "make-lab.log"
    env = {k: v for k, v in os.environ.items() if k != "TOKEN"}
    # BROWSER=true: "open" the page with the `true` command, so no browser starts.
    env.update(PORT=str(free_port()), BROWSER="true")
    with log.open("w") as out:
        proc = subprocess.Popen(["make", "lab"], cwd=ROOT, start_new_session=True, env=env, stdout=out,
                                stderr=subprocess.STDOUT)
    try:
        url = printed_url(log, proc)
        base = f"{urlsplit(url).scheme}://{urlsplit(url).netloc}"
        for _ in range(120):
            if proc.poll() is not None:
                pytest.fail(f"make lab exited early:\n{log.read_text()}")
            try:
                if get(f"{base}/api/status")[0] in (200, 403):
                    break
            except OSError:
                pass
            time.sleep(0.5)
        else:
            pytest.fail("JupyterLab did not answer within 60 s")
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def parts(url: str) -> tuple[str, str]:
    "(base address, token) of a printed lab URL."
    split = urlsplit(url)
    return f"{split.scheme}://{split.netloc}", parse_qs(split.query)["token"][0]


def test_the_printed_url_opens_the_lab(lab):
    status, page = get(lab)
    assert status == 200 and "JupyterLab" in page, f"{lab} answered {status}"


def test_the_printed_token_opens_the_index_notebook(lab):
    base, token = parts(lab)
    status, body = get(f"{base}/api/contents/nbs/index.ipynb?token={token}")
    assert status == 200 and "mlre-lab" in body, f"{base}/api/contents/nbs/index.ipynb answered {status}"


def test_the_lab_refuses_without_the_token(lab):
    base, _ = parts(lab)
    assert get(f"{base}/api/contents/nbs")[0] == 403


def test_the_token_is_fresh_and_long(lab):
    _, token = parts(lab)
    assert len(token) >= 32 and token not in (ROOT / "Makefile").read_text()


def test_lab_listens_on_localhost_only(lab):
    port = urlsplit(lab).port
    tables = [Path("/proc/net/tcp"), Path("/proc/net/tcp6")]
    if not tables[0].exists():
        pytest.skip("reads Linux's socket tables")
    # Each row: local address as hex IP:port, ..., state 0A = LISTEN
    listening = [row.split()[1] for table in tables if table.exists() for row in table.read_text().splitlines()[1:]
                 if row.split()[3] == "0A" and int(row.split()[1].rsplit(":", 1)[1], 16) == port]
    assert listening and all(address.split(":")[0] in ("0100007F", "00000000000000000000000001000000")
                             for address in listening), listening
