"""Benchmark: site build time and size for the whole catalog, and the weight of a paper page.

    python benchmarks/site_build.py [--runs 3]

Builds the site with `mkdocs build --strict` into a temporary folder (cold: the mkdocs-jupyter cache is
removed before each run), and writes results/site_build.json, which the site's Benchmarks page shows.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def page_weight(site: Path, page_dir: str) -> dict:
    """Bytes of a page's HTML plus the local CSS/JS/fonts it references (what a first visit loads)."""
    import re
    html_path = site / page_dir / "index.html"
    html = html_path.read_text(encoding="utf-8")
    total, assets = html_path.stat().st_size, 0
    for ref in set(re.findall(r'(?:src|href)="([^"]+\.(?:css|js))"', html)):
        target = (html_path.parent / ref).resolve()
        if target.exists():
            assets += target.stat().st_size
    return {"page": page_dir, "html_bytes": total, "css_js_bytes": assets, "total_bytes": total + assets}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        site = Path(tmp) / "site"
        for _ in range(args.runs):
            shutil.rmtree(ROOT / ".cache" / "mkdocs-jupyter", ignore_errors=True)
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(site)], cwd=ROOT, check=True,
                           env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
            times.append(time.perf_counter() - t0)
        files = [p for p in site.rglob("*") if p.is_file()]
        html = [p for p in files if p.suffix == ".html"]
        papers = sorted((ROOT / "papers").glob("*.yaml"))
        result = {
            "command": "python benchmarks/site_build.py --runs %d" % args.runs,
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
            "papers": len(papers),
            "notebooks": len(list((ROOT / "notebooks").glob("*.ipynb"))),
            "build_seconds": {"runs": [round(t, 2) for t in times], "median": round(statistics.median(times), 2)},
            "site": {"files": len(files), "html_pages": len(html), "total_mb": round(sum(p.stat().st_size for p in files) / 2**20, 2)},
            "paper_page": page_weight(site, "papers/hinton2015distilling"),
        }
    out = ROOT / "results" / "site_build.json"
    tmp_out = out.with_suffix(".tmp")
    tmp_out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    tmp_out.replace(out)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
