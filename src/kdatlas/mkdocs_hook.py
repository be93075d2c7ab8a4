"""mkdocs hook: generate the site from the catalog at build time.

Registered in mkdocs.yml under ``hooks:``. It validates the catalog (a catalog with problems stops the
build before anything is written), generates every page from the records, adds the notebooks for
mkdocs-jupyter to render, sets the navigation, and serves MathJax from a local copy so that the site
works offline.
"""
from __future__ import annotations

import logging
import shutil
import subprocess
from pathlib import Path

from mkdocs.exceptions import PluginError
from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files

from kdatlas.catalog import CatalogError, load_catalog
from kdatlas.site import SiteContext, build_nav, build_pages

log = logging.getLogger("mkdocs.hooks.kdatlas")
MATHJAX_VERSION = "3.2.2"
_state: dict = {}


def _static_pages(docs_dir: Path) -> list:
    """Hand-written pages under docs/guide, for the nav (title from the first heading)."""
    nav = []
    for md in sorted((docs_dir / "guide").glob("*.md")):
        first = md.read_text(encoding="utf-8").splitlines()[0].lstrip("# ").strip()
        nav.append({first: f"guide/{md.name}"})
    return [{"Guide": nav}] if nav else []


def mathjax_dir(root: Path) -> Path:
    """A local MathJax (npm package), installed on first use into .cache/npm (npm registry only)."""
    target = root / ".cache" / "npm" / "node_modules" / "mathjax" / "es5"
    if not (target / "tex-chtml.js").exists():
        npm = shutil.which("npm")
        if not npm:
            raise PluginError("MathJax is not installed and npm was not found: install Node.js/npm, "
                              "or run `npm install --prefix .cache/npm mathjax@" + MATHJAX_VERSION + "`")
        log.info("installing MathJax %s into .cache/npm", MATHJAX_VERSION)
        subprocess.run([npm, "install", "--silent", "--no-audit", "--no-fund", "--prefix", str(root / ".cache" / "npm"),
                        f"mathjax@{MATHJAX_VERSION}"], check=True)
    return target


def on_config(config):
    root = Path(config.config_file_path).resolve().parent
    cat = load_catalog(root)
    try:
        ctx = SiteContext(repo_url=config.repo_url or "https://github.com/kd-atlas/kd-atlas")
        pages = build_pages(cat, ctx)
    except CatalogError as exc:
        raise PluginError(str(exc)) from exc
    notebooks = sorted(p.stem for p in (root / "notebooks").glob("*.ipynb"))
    config.nav = build_nav(cat, pages, notebooks, _static_pages(Path(config.docs_dir)))
    _state.update(root=root, pages=pages, notebooks=notebooks)
    return config


@event_priority(100)  # before mkdocs-jupyter turns .ipynb files into notebook pages
def on_files(files: Files, config) -> Files:
    root: Path = _state["root"]
    for path, content in _state["pages"].items():
        if files.get_file_from_path(path):
            raise PluginError(f"docs/{path} exists but the page is generated from the catalog: remove docs/{path}")
        files.append(File.generated(config, path, content=content))
    # Notebooks reach the site through the docs/notebooks symlink (mkdocs-jupyter renders the .ipynb).
    mj = mathjax_dir(root)
    wanted = [mj / "tex-chtml.js", *sorted((mj / "input" / "tex" / "extensions").glob("*.js")),
              *sorted((mj / "output" / "chtml" / "fonts" / "woff-v2").glob("*.woff"))]
    for f in wanted:
        rel = f.relative_to(mj).as_posix()
        files.append(File.generated(config, f"assets/mathjax/{rel}", abs_src_path=str(f)))
    return files


def on_page_markdown(markdown: str, page, config, files):
    """Edit links point at the data a page is generated from (the paper's YAML), or nowhere."""
    src = page.file.src_uri
    if not page.file.generated_by:
        return markdown
    if src.startswith("papers/") and src != "papers/index.md":
        page.edit_url = f"{config.repo_url.rstrip('/')}/edit/main/papers/{src.removeprefix('papers/').removesuffix('.md')}.yaml"
    elif src.startswith("notebooks/"):
        page.edit_url = f"{config.repo_url.rstrip('/')}/edit/main/notebooks/{src.removeprefix('notebooks/').removesuffix('.ipynb')}.py"
    else:
        page.edit_url = None
    return markdown
