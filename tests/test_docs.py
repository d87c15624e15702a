"""The docs site, checked without Quarto: the notebooks process, every notebook is in the sidebar, and links inside
the site point at pages that exist."""
import json
import os
import re
from pathlib import Path

import pytest
import yaml

from .conftest import BIN, ROOT, copy_project, run

NBS = ROOT / "nbs"
DOC_URL = "https://mlre-lab.github.io/mlre-lab/"


def sidebar_entries(contents) -> list[str]:
    entries = []
    for item in contents:
        if isinstance(item, str):
            entries.append(item)
        elif "contents" in item:
            entries += sidebar_entries(item["contents"])
        else:
            entries.append(item["href"])
    return entries


def test_every_notebook_is_in_the_sidebar_and_every_entry_exists():
    sidebar = yaml.safe_load((NBS / "sidebar.yml").read_text())
    entries = sidebar_entries(sidebar["website"]["sidebar"]["contents"])
    notebooks = sorted(p.name for p in NBS.glob("*.ipynb"))
    assert not set(notebooks) - set(entries), f"missing from nbs/sidebar.yml: {sorted(set(notebooks) - set(entries))}"
    assert not set(entries) - set(notebooks), f"nbs/sidebar.yml lists pages that do not exist: " \
                                              f"{sorted(set(entries) - set(notebooks))}"
    assert len(entries) == len(set(entries)), "a page is listed twice in nbs/sidebar.yml"


def test_quarto_config_uses_the_sidebar():
    quarto = yaml.safe_load((NBS / "_quarto.yml").read_text())
    assert "sidebar.yml" in quarto["metadata-files"] and quarto["project"]["type"] == "website"


def test_the_site_is_built_from_executed_notebooks():
    recipe = run(["make", "--dry-run", "docs"]).stdout
    assert "scripts/execute-docs.py _build/docs --kernel mlre-lab" in recipe, recipe
    assert "QUARTO_PYTHON=" in recipe and "nbdev-docs" in recipe.split("execute-docs.py", 1)[1], recipe
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "deploy.yml").read_text())
    steps = [step.get("run", "") for step in workflow["jobs"]["build"]["steps"]]
    assert "make docs" in steps, f"the Pages workflow should build with `make docs`: {steps}"


@pytest.fixture(scope="module")
def processed(tmp_path_factory) -> Path:
    "Run the real nbdev-proc-nbs on a copy of the project; return its _proc folder."
    work = tmp_path_factory.mktemp("site")
    copy_project(work)
    # nbdev-proc-nbs refuses to start without a `quarto` executable, although processing never calls it. This
    # stand-in satisfies the lookup and fails loudly if anything does call it.
    fake = work / "fakebin"
    fake.mkdir()
    (fake / "quarto").write_text("#!/bin/sh\necho 'quarto stand-in called' >&2\nexit 97\n")
    (fake / "quarto").chmod(0o755)
    out = run([str(BIN / "nbdev-proc-nbs"), "--n-workers", "2"], cwd=work,
              env={"PATH": f"{fake}:{os.environ['PATH']}"}, timeout=900)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "stand-in called" not in out.stderr
    return work / "_proc"


def page_name(nb: dict) -> str | None:
    for cell in nb["cells"]:
        if cell["cell_type"] == "raw":
            match = re.search(r"^output-file:\s*(\S+)", "".join(cell["source"]), re.M)
            if match:
                return match.group(1)
    return None


def test_every_notebook_is_processed(processed):
    assert sorted(p.name for p in processed.glob("*.ipynb")) == sorted(p.name for p in NBS.glob("*.ipynb"))


def test_llms_txt_is_published_with_the_site(processed):
    quarto = yaml.safe_load((NBS / "_quarto.yml").read_text())
    assert "llms.txt" in quarto["project"].get("resources", []), "nbs/_quarto.yml should list llms.txt in resources"
    assert (processed / "llms.txt").read_text() == (NBS / "llms.txt").read_text()


LINK = re.compile(r"\]\(([^)\s]+)\)|href=\"([^\"]+)\"")


def test_links_inside_the_site_resolve(processed):
    notebooks = {p.name: json.loads(p.read_text()) for p in processed.glob("*.ipynb")}
    pages = {page_name(nb) or name.replace(".ipynb", ".html") for name, nb in notebooks.items()}
    broken = []
    for name, nb in notebooks.items():
        for cell in nb["cells"]:
            if cell["cell_type"] != "markdown":
                continue
            for match in LINK.finditer("".join(cell["source"])):
                target = (match.group(1) or match.group(2)).split("#")[0]
                if target.startswith(DOC_URL):
                    target = target[len(DOC_URL):]
                elif re.match(r"^[a-z]+:", target) or not target:
                    continue  # another site, or an anchor on this page
                target = target.removesuffix(".md")
                if target not in pages and target not in notebooks:
                    broken.append(f"{name}: {match.group(0)}")
    assert not broken, "links to pages that do not exist:\n" + "\n".join(broken)
