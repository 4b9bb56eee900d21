"""The docs a newcomer follows: every relative link lands on a file and heading that exist, the tables that
mirror the code (policy rules, components) list what the code has, and the component example runs.

Anchors are computed the way GitHub renders headings (lower-case, punctuation dropped, spaces to hyphens,
-1/-2 for repeats)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests.helpers import ROOT

# Every page that links: the README, docs/, and the READMEs next to code.
PAGES = [
    ROOT / "README.md",
    *sorted((ROOT / "docs").glob("*.md")),
    ROOT / "trainstack" / "policies" / "README.md",
    *sorted((ROOT / "examples").glob("*/README.md")),
]

# Pages written by a generator (`make config-docs`): their text is owned by the generator's own tests.
GENERATED = {"docs/configuration.md"}

FENCE = re.compile(r"^ {0,3}(```|~~~).*?^ {0,3}\1", re.M | re.S)
CODE_SPAN = re.compile(r"`+[^`\n]*`+")
LINK = re.compile(r"!?\[(?P<text>[^\]]*)\]\((?P<target>[^)\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)


def prose(text: str) -> str:
    """The text without fenced code blocks and code spans (a link inside code is not a link)."""
    return CODE_SPAN.sub("", FENCE.sub("", text))


def anchors(text: str) -> set[str]:
    """The heading anchors GitHub generates for a Markdown page."""
    seen: dict[str, int] = {}
    out = set()
    for heading in HEADING.findall(FENCE.sub("", text)):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def links(page: Path) -> list[tuple[str, str]]:
    return [(m["text"], m["target"]) for m in LINK.finditer(prose(page.read_text()))]


def broken_links(pages: list[Path], root: Path = ROOT) -> list[str]:
    """Every relative link in `pages` whose file or anchor does not exist, as 'page: target (why)'."""
    problems = []
    for page in pages:
        for _, target in links(page):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto: ...
                continue
            path, _, anchor = target.partition("#")
            dest = (page.parent / path).resolve() if path else page
            where = f"{page.relative_to(root)}: {target}"
            try:
                rel = dest.relative_to(root).as_posix()
            except ValueError:
                problems.append(f"{where} (outside the repository)")
                continue
            if not dest.exists():
                problems.append(f"{where} (no such file)")
                continue
            if anchor and (dest.suffix != ".md" or anchor not in anchors(dest.read_text())):
                problems.append(f"{where} (no heading #{anchor} in {rel})")
    return problems


def test_every_relative_link_in_the_docs_lands_on_a_file_and_heading_that_exist():
    assert len(PAGES) >= 10 and all(p.exists() for p in PAGES)
    assert sum(len(links(p)) for p in PAGES) > 50  # the checker sees the links at all
    assert broken_links(PAGES) == []


def test_the_link_checker_reports_a_missing_file_a_missing_heading_and_ignores_code(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "other.md").write_text("# Other page\n\n## The `run` command\n\n## Twice\n\n## Twice\n")
    page = tmp_path / "README.md"
    page.write_text(
        "[ok](docs/other.md#the-run-command) [repeat](docs/other.md#twice-1) [web](https://example.com/x)\n"
        "[gone](docs/missing.md) [bad anchor](docs/other.md#nope) [self](#here)\n"
        "`[in code](docs/nothing.md)`\n\n```\n[in a block](docs/nothing.md)\n# not a heading\n```\n"
        "- a list\n\n  ```\n  [in an indented block](docs/nothing.md)\n  ```\n"
    )
    assert broken_links([page], root=tmp_path) == [
        "README.md: docs/missing.md (no such file)",
        "README.md: docs/other.md#nope (no heading #nope in docs/other.md)",
        "README.md: #here (no heading #here in README.md)",
    ]
    assert anchors(page.read_text()) == set()  # the `# not a heading` line is code


def test_the_readme_stays_newcomer_sized_and_links_every_docs_page():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 250
    linked = {(ROOT / target.partition("#")[0]).resolve() for _, target in links(ROOT / "README.md")}
    pages = set((ROOT / "docs").glob("*.md"))
    assert {p.resolve() for p in pages} <= linked
    texts = [text.lower() for text, target in links(ROOT / "README.md") if "verify-on-first-deploy.md" in target]
    assert any("verify on a first deploy" in t for t in texts)


def test_every_docs_page_says_who_it_is_for():
    for page in sorted((ROOT / "docs").glob("*.md")):
        if page.relative_to(ROOT).as_posix() in GENERATED:
            continue
        title, blank, intro = page.read_text().split("\n", 3)[:3]
        assert title.startswith("# ") and blank == "", page
        assert intro.startswith("For "), f"{page.name}: the line under the title says who the page is for"


def test_the_policy_table_lists_every_rule_of_the_pack_at_its_level():
    from trainstack.policies.rules import POLICIES

    table = re.findall(r"^\| `([a-z0-9-]+)` \| (mandatory|advisory) \|", (ROOT / "docs/policies.md").read_text(), re.M)
    pack = {p.name: str(p.enforcement_level).rsplit(".", 1)[-1].lower() for p in POLICIES}
    assert dict(table) == pack and len(table) == len(pack)


def component_classes() -> dict[str, str]:
    """class name -> type token of every ComponentResource in components/ (read from the source)."""
    found = {}
    for path in sorted((ROOT / "components").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and any(ast.unparse(b) == "pulumi.ComponentResource" for b in node.bases):
                token = re.search(r'super\(\).__init__\("([^"]+)"', ast.unparse(node).replace("'", '"'))
                found[node.name] = f"components/{path.name} ({token.group(1)})"
    return found


def test_the_component_table_lists_every_component_with_its_file_and_type_token():
    rows = re.findall(r"^\| `(\w+)` \| `([^`]+)` \(`([^`]+)`\) \|", (ROOT / "docs/components.md").read_text(), re.M)
    assert {name: f"{file} ({token})" for name, file, token in rows} == component_classes()


def test_the_component_example_deploys_under_the_mock_engine_and_passes_the_policy_pack(run_program):
    from trainstack.policies.offline import analyze

    code = re.search(r"```python\n(.*?)```", (ROOT / "docs/components.md").read_text(), re.S)
    assert code, "docs/components.md shows a program"
    run = run_program(lambda: exec(compile(code.group(1), "docs/components.md", "exec"), {}))
    buckets = run.of_type("aws:s3/bucket:Bucket")
    assert len(buckets) == 4 and all(b.protect for b in buckets)
    assert run.one("aws:kms/key:Key").protect
    assert set(run.outputs) == {"vpcId", "rawBucket"}
    report = analyze(run.resources)
    assert report.resources > 40 and report.violations == [], report.violations


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_no_page_names_a_path_from_before_the_restructuring(page):
    stale = re.compile(
        r"scripts/cli\.py|components/config\.py|components\.sagemaker_request|scripts\.run\b|scripts/(offline|provider_schema)\.py"
        r"|(?<![\w/])policies/(rules|offline|__main__)\.py|--policy-pack policies\b|(?<![\w/])programs/"
        r"|trainstack/(config|catalog|cidr|amis|timing|cost|tags|iam_documents|run_locations|sagemaker_request"
        r"|eks_request|scheduler_input|code_delivery|prices|torchrun)\.py|trainstack/data/|tests/test_\w+\.py"
        r"|design\.md"
    )
    text = page.read_text()
    # A link to docs/design.md (this repository's design notes) is fine; a bare `design.md` meant the old brief.
    hits = [m.group(0) for m in stale.finditer(text) if not text[: m.start()].endswith(("docs/", "(", "]("))]
    assert hits == [], f"{page.relative_to(ROOT)} names stale paths: {hits}"
