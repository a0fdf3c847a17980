#!/usr/bin/env python3
"""Builds the course's website from the files in the tree: `make site`.

    /usr/bin/python3 -m tools.site.build      -> build/site/index.html

Nothing is copied by hand. At every build this writes a MkDocs source tree under
build/site-src/ (pages/ and mkdocs.yml), then runs Debian's `mkdocs build --strict`
(with the mkdocs-material theme) into build/site/:

- README.md becomes the home page; docs/*.md the guides and benchmark write-ups;
- every available lesson of course.toml gets its student-facing README (lessons/NN-slug/),
  its HINTS.md folded one hint per collapsible block, and the ladders of its captures;
- captures/NAME.pcap is drawn as an SVG ladder by checker/checks/ladder.py, the code the
  checks and captures/NAME.txt use; the build fails if the drawing and the .txt differ;
- docs/*.svg, the benchmark plots, are shown on a page of their own.

The pages keep the tree's layout (lessons/NN-slug/README.md, docs/x.md), so the links
between them resolve as they do on GitHub; a link to a file the site does not hold fails
the build. The site works offline: no web font, no CDN, search is MkDocs' local lunr index.
"""
import os
import pathlib
import re
import shutil
import subprocess
import sys

from checker import manifest
from checker.checks.ladder import ladder, ladder_svg, reference_drawn
from tools.hint import parse_hints

ROOT = pathlib.Path(__file__).resolve().parents[2]
SOURCE = ROOT / "build" / "site-src"     # what mkdocs reads (generated, never edited)
PAGES = SOURCE / "pages"
SITE = ROOT / "build" / "site"            # what mkdocs writes

GUIDES = [("Course", "docs/course.md"), ("Student guide", "docs/student-guide.md"),
          ("Instructor guide", "docs/instructor-guide.md")]
BENCHMARKS = [("C10K benchmark", "docs/c10k-bench.md"), ("select vs epoll", "docs/select-vs-epoll.md"),
              ("Handshake: nginx", "docs/handshake-nginx.md")]


class SiteError(Exception):
    pass


# ---- links: the tree's relative links, checked against what the site holds --------------

LINK = re.compile(r"(!?\[[^\]]*\]\()([^)\s]+)(\))")   # [text](target) and ![alt](target)


def rewrite_links(text: str, source: str, page: str, site_files: dict) -> str:
    """The relative links of `text` (the repository file `source`, shown as the site file
    `page`) made to point at the site's copy of their target. site_files: repository path
    -> site path. A link to a repository file the site does not hold is an error."""
    def fix(m):
        target = m.group(2)
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            return m.group(0)
        path, _, anchor = target.partition("#")
        repo_path = os.path.normpath(os.path.join(os.path.dirname(source), path))
        if repo_path not in site_files:
            raise SiteError(f"{source}: the link to {target} points at {repo_path}, "
                            "which the site does not hold")
        new = os.path.relpath(site_files[repo_path], os.path.dirname(page))
        return m.group(1) + new + ("#" + anchor if anchor else "") + m.group(3)
    return LINK.sub(fix, text)


# ---- hints: one collapsible block each ----------------------------------------------------

def folded_hints(hints: str, number: str) -> str:
    """HINTS.md as closed pymdownx.details blocks, one per hint, read by the parser that
    `make hint-NN` uses (tools/hint.py)."""
    out = ["## Hints", "",
           f"Open them one at a time, as `make hint-{number}` shows them: each says a little more.", ""]
    for n, (title, body) in enumerate(parse_hints(hints), 1):
        out.append(f'??? tip "Hint {n}: {title.replace(chr(34), chr(39))}"')
        out += [("    " + line) if line.strip() else "" for line in body.splitlines()]
        out.append("")
    return "\n".join(out)


# ---- captures: the ladders as pictures -----------------------------------------------------

def capture_ladder(name: str):
    """captures/NAME.pcap's packets as drawn in captures/NAME.txt, checked against it row by
    row. Returns (the drawn packets, the server's port, the .txt's '#' header lines)."""
    txt = (ROOT / "captures" / f"{name}.txt").read_text().splitlines()
    header = [line[2:] for line in txt if line.startswith("# ")]
    drawn, port = reference_drawn(name)
    if ladder(drawn, port) != [line for line in txt if not line.startswith("#")]:
        raise SiteError(f"captures/{name}.txt is not the ladder of captures/{name}.pcap: "
                        "run make captures")
    return drawn, port, header


def captures_section(names, link_prefix: str) -> str:
    out = []
    for name in names:
        _, _, header = CAPTURES[name]
        out += [f"### {name}", "", header[0], "",
                f"`{header[1]}`" if len(header) > 1 else "", "",
                f"![the packet ladder of captures/{name}.pcap]({link_prefix}{name}.svg)", "",
                " · ".join(header[2:]) + f" · [{name}.pcap]({link_prefix}{name}.pcap) "
                f"· [{name}.txt]({link_prefix}{name}.txt)", ""]
    return "\n".join(out)


CAPTURES = {}   # name -> (packets, port, header), filled by build_captures()


def build_captures(site_files: dict):
    (PAGES / "captures").mkdir(parents=True)
    for pcap in sorted((ROOT / "captures").glob("*.pcap")):
        name = pcap.stem
        packets, port, header = capture_ladder(name)
        CAPTURES[name] = (packets, port, header)
        (PAGES / "captures" / f"{name}.svg").write_text(ladder_svg(packets, port, header[0]))
        for ext in ("pcap", "txt"):
            shutil.copyfile(ROOT / "captures" / f"{name}.{ext}", PAGES / "captures" / f"{name}.{ext}")
            site_files[f"captures/{name}.{ext}"] = f"captures/{name}.{ext}"
    intro = ("# Packet captures\n\nThe reference captures of `captures/`, recorded from the "
             "solutions by `make captures`. Each ladder is drawn from its `.pcap` by the code "
             "the checks use (`checker/checks/ladder.py`): who sends what, in order, with no "
             "times. The client is on the left, the server on the right.\n\n")
    (PAGES / "captures" / "index.md").write_text(intro + captures_section(sorted(CAPTURES), ""))


# ---- the pages -----------------------------------------------------------------------------

def lesson_page(lesson, site_files: dict) -> str:
    source = f"lessons/{lesson.name}/README.md"
    text = (ROOT / source).read_text().rstrip("\n")
    text = rewrite_links(text, source, site_files[source], site_files)
    hints = ROOT / "lessons" / lesson.name / "HINTS.md"
    if hints.exists():
        text += "\n\n" + folded_hints(rewrite_links(hints.read_text(), str(hints.relative_to(ROOT)),
                                                    site_files[source], site_files), lesson.number)
    mine = [name for name in sorted(CAPTURES) if name.startswith(lesson.number + "-")]
    if mine:
        text += ("\n\n## Reference captures, drawn\n\nThe ladders of this lesson's captures in "
                 "`captures/`, drawn from the `.pcap` files.\n\n" + captures_section(mine, "../../captures/"))
    return text + "\n"


def plots_page(site_files: dict) -> str:
    """docs/*.svg, each with links to the pages that name it."""
    out = ["# Benchmark plots", "",
           "The plots the benchmarks draw into `docs/` (`make bench-pollers`, `make bench-download`), "
           "each with the pages that name it.", ""]
    pages = [path for path in site_files if path.endswith(".md")]
    for svg in sorted((ROOT / "docs").glob("*.svg")):
        about = [path for path in pages if svg.name in (ROOT / path).read_text()]
        links = ", ".join(f"[{path}]({os.path.relpath(site_files[path], 'docs')})" for path in about)
        out += [f"## {svg.stem}", "", f"![docs/{svg.name}]({svg.name})", "",
                f"`docs/{svg.name}`" + (f", named in {links}." if links else "."), ""]
    return "\n".join(out)


def yaml_str(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def mkdocs_yml(lessons) -> str:
    nav = ["nav:", "  - Home: index.md", "  - Guides:"]
    nav += [f"      - {yaml_str(title)}: {path}" for title, path in GUIDES]
    nav += ["  - Lessons:"]
    nav += [f"      - {yaml_str(lesson.number + ' · ' + lesson.title)}: lessons/{lesson.name}/README.md"
            for lesson in lessons]
    nav += ["  - Captures: captures/index.md", "  - Benchmarks:"]
    nav += [f"      - {yaml_str(title)}: {path}" for title, path in BENCHMARKS]
    nav += ["      - Plots: docs/plots.md"]
    return "\n".join([
        "# Generated by tools/site/build.py at every `make site`: edit that, not this.",
        "site_name: netcourse",
        "site_description: Linux network programming in C++, one lesson at a time",
        "docs_dir: pages",
        f"site_dir: {SITE}",
        "use_directory_urls: false   # plain .html files: the site also works from file://",
        "strict: true",
        "theme:",
        "  name: material",
        "  font: false               # no Google Fonts: the system's fonts, offline",
        "  features: [navigation.sections, navigation.top]",
        "plugins: [search]           # a local lunr index (search/search_index.json), no service",
        "markdown_extensions:",
        "  - admonition",
        "  - pymdownx.details        # ??? blocks: the folded hints",
        "  - pymdownx.superfences",
        "  - tables",
        "  - attr_list",
        "  - toc:",
        "      permalink: true",
    ] + nav) + "\n"


def build_source() -> list:
    """Writes build/site-src/ afresh; returns the lessons it holds."""
    if SOURCE.exists():
        shutil.rmtree(SOURCE)
    PAGES.mkdir(parents=True)
    lessons = [lesson for lesson in manifest.available() if (ROOT / "lessons" / lesson.name).is_dir()]
    # repository path -> site path, for every file the site holds
    site_files = {"README.md": "index.md"}
    for _, path in GUIDES + BENCHMARKS:
        site_files[path] = path
    for svg in (ROOT / "docs").glob("*.svg"):
        site_files[f"docs/{svg.name}"] = f"docs/{svg.name}"
    for lesson in lessons:
        site_files[f"lessons/{lesson.name}/README.md"] = f"lessons/{lesson.name}/README.md"
    build_captures(site_files)

    (PAGES / "index.md").write_text(rewrite_links((ROOT / "README.md").read_text(), "README.md",
                                                  "index.md", site_files))
    (PAGES / "docs").mkdir()
    for _, path in GUIDES + BENCHMARKS:
        (PAGES / path).write_text(rewrite_links((ROOT / path).read_text(), path, path, site_files))
    for svg in (ROOT / "docs").glob("*.svg"):
        shutil.copyfile(svg, PAGES / "docs" / svg.name)
    (PAGES / "docs" / "plots.md").write_text(plots_page(site_files))
    for lesson in lessons:
        page = PAGES / "lessons" / lesson.name / "README.md"
        page.parent.mkdir(parents=True)
        page.write_text(lesson_page(lesson, site_files))
    (SOURCE / "mkdocs.yml").write_text(mkdocs_yml(lessons))
    return lessons


def build() -> None:
    lessons = build_source()
    # mkdocs' own warnings (a broken link, a page missing from the nav...) fail the build.
    result = subprocess.run(["mkdocs", "build", "--strict", "--clean", "-q", "-f",
                             str(SOURCE / "mkdocs.yml")], capture_output=True, text=True, timeout=300)
    if result.returncode != 0 or result.stderr.strip() or result.stdout.strip():
        raise SiteError("mkdocs build --strict:\n" + result.stdout + result.stderr)
    print(f"[site] {len(lessons)} lessons, {len(CAPTURES)} ladders: "
          f"{SITE.relative_to(ROOT)}/index.html")


def main() -> int:
    try:
        build()
    except SiteError as e:
        print(f"[site] {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
