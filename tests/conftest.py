"""Shared fixtures: one torch thread, the repository root, and throw-away catalog copies for bad-input tests."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Every test runs on one torch thread. The models are tiny: one thread is fastest and
    deterministic, and the default of one thread per core in each of the suite's two xdist workers
    oversubscribes a 2-core machine (OpenMP threads spin-waiting for each other made small
    convolutions 10-50x slower; a Nasty Teacher toy took 146 s instead of 5.6 s). The harness's tasks
    make the same choice (kdatlas.harness.get_task)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

VALID = {
    "id": "doe2020example",
    "title": "An Example Paper: Distilling Ünïcode & Co.",
    "authors": ["Jane Doe", "José Núñez-Pérez"],
    "year": 2020,
    "venue": "ICLR 2021",
    "venue_type": "conference",
    "venue_full": "International Conference on Learning Representations",
    "venue_year": 2021,
    "arxiv": "2001.00001",
    "doi": None,
    "url": "https://arxiv.org/abs/2001.00001",
    "pdf": "https://arxiv.org/pdf/2001.00001",
    "code": [{"url": "https://github.com/example/example", "official": True}],
    "sources": ["https://arxiv.org/abs/2001.00001"],
    "unconfirmed": [],
    "added": "2026-11-28",
    "tags": {"knowledge": ["response"], "scheme": ["offline"], "teacher-setup": ["single-teacher"],
             "data": ["standard"], "mechanism": ["plain"], "task": ["image-classification"],
             "purpose": ["model-compression"], "relation-to-kd": ["core"]},
    "tldr": "A fixture record used by the tests; it is not a real paper.",
    "summary": "This record exists only for the test-suite. " * 4,
    "method": "The loss is $L = T^2 \\mathrm{KL}(p \\| q)$ with temperature $T$.",
    "results": [{"task": "image-classification", "dataset": "CIFAR-100", "metric": "top-1 accuracy",
                 "higher_is_better": True, "value": 73.5, "teacher": "ResNet-32x4", "student": "ResNet-8x4",
                 "method": "doe2020example", "baseline": 72.5, "teacher_value": 79.42, "source": "Table 1"}],
    "related": [],
    "seed": {"entries": [{"section": "2020", "title": "An Example Paper"}], "errata": []},
    "implementation": {"status": "pending", "scope": "core-mechanism", "reason": "Fixture record, never implemented."},
}


@pytest.fixture
def root() -> Path:
    return ROOT


@pytest.fixture
def valid_record() -> dict:
    import copy
    return copy.deepcopy(VALID)


class MiniRepo(type(Path())):
    """A Path with a ``write_paper`` helper."""

    def write_paper(self, record: dict | None = None, name: str | None = None, text: str | None = None) -> Path:
        rec = dict(VALID if record is None else record)
        path = self / "papers" / f"{name or rec['id']}.yaml"
        path.write_text(text if text is not None else yaml.safe_dump(rec, allow_unicode=True, sort_keys=False), encoding="utf-8")
        return path


@pytest.fixture
def mini_repo(tmp_path: Path):
    """A minimal atlas checkout (vocab, mkdocs.yml, docs, one valid paper) to break in tests."""
    for name in ("vocab", "docs", "src"):
        shutil.copytree(ROOT / name, tmp_path / name, symlinks=True)
    shutil.copy(ROOT / "mkdocs.yml", tmp_path / "mkdocs.yml")
    for name in ("papers", "implementations", "notebooks", "tests", "results"):
        (tmp_path / name).mkdir()
    mj = ROOT / ".cache" / "npm"
    if mj.exists():
        (tmp_path / ".cache").mkdir()
        (tmp_path / ".cache" / "npm").symlink_to(mj)

    repo = MiniRepo(tmp_path)
    repo.write_paper()
    return repo
