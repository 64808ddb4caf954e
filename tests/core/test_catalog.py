"""The server's catalog of a workflows folder: reloads are stable and follow the files."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    target = tmp_path / "workflows"
    shutil.copytree(REPO / "workflows", target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


def state(bs: Any) -> tuple[list[tuple[str, bool]], list[str], list[str]]:
    """What a reload decides: each workflow and whether it checks, the problems, the
    templates."""
    catalog = bs.catalog
    return ([(e.name, e.ok) for e in catalog.entries()],
            [f"{d.path}: {d.message}" for d in catalog.problems],
            sorted(t.ref for t in catalog.templates))


async def test_consecutive_reloads_give_the_same_catalog(make_baseshift: Any,
                                                         folder: Path) -> None:
    async with make_baseshift(workflows_dir=folder, templates="memory") as bs:
        await bs.catalog.refresh(force=True)
        first = state(bs)
        assert "payment.validate@1.2.0" in first[2] and "greeting@1.0.0" in first[2]
        for _ in range(4):
            await bs.catalog.refresh(force=True)
            assert state(bs) == first


async def test_reloads_follow_a_changed_and_a_removed_template(make_baseshift: Any,
                                                               folder: Path) -> None:
    templates = folder / "templates.bsw"
    async with make_baseshift(workflows_dir=folder, templates="memory") as bs:
        await bs.catalog.refresh(force=True)
        templates.write_text(templates.read_text().replace(
            "Print a notification line", "Print one notification line"))
        for _ in range(3):
            await bs.catalog.refresh(force=True)
            notify = [t for t in bs.catalog.templates if t.name == "notify"]
            assert [t.description for t in notify] == ["Print one notification line"]
            assert state(bs)[1] == []
        text = templates.read_text()
        templates.write_text(text[:text.index("template notify")])
        for _ in range(3):
            await bs.catalog.refresh(force=True)
            entries, problems, refs = state(bs)
            assert not any(ref.startswith("notify@") for ref in refs)
            assert dict(entries)["order_fulfillment"] is False and dict(entries)["hello"] is True
            assert problems == []


async def test_reloads_follow_a_changed_and_a_removed_yaml_template(make_baseshift: Any,
                                                                    folder: Path) -> None:
    greeting = folder / "greeting.template.yaml"
    (folder / "welcome.bsw").write_text(
        'workflow welcome {\n  version "1.0.0"\n'
        '  job hi uses greeting@^1 { with { name: "Ada" } }\n}\n')
    async with make_baseshift(workflows_dir=folder, templates="memory") as bs:
        greeting.write_text(greeting.read_text().replace('"1.0.0"', '"1.1.0"'))
        for _ in range(3):
            await bs.catalog.refresh(force=True)
            assert "greeting@1.1.0" in state(bs)[2] and "greeting@1.0.0" not in state(bs)[2]
            assert dict(state(bs)[0])["welcome"] is True and state(bs)[1] == []
        greeting.unlink()
        for _ in range(3):
            await bs.catalog.refresh(force=True)
            assert not any(ref.startswith("greeting@") for ref in state(bs)[2])
            assert dict(state(bs)[0])["welcome"] is False and state(bs)[1] == []


async def test_a_workflow_named_twice_is_listed_once_with_a_problem(make_baseshift: Any,
                                                                   folder: Path) -> None:
    hello = (folder / "hello.bsw").read_text()
    (folder / "hello_again.bsw").write_text(hello)
    (folder / "a_broken_hello.bsw").write_text(hello.replace("{", "", 1))
    async with make_baseshift(workflows_dir=folder, templates="memory") as bs:
        for _ in range(2):
            await bs.catalog.refresh(force=True)
            entry = bs.catalog.get("hello")
            assert entry.path.name == "a_broken_hello.bsw" and not entry.ok
            ignored = {Path(d.path).name for d in bs.catalog.problems
                       if d.code == "catalog.duplicate-workflow"}
            assert ignored == {"hello.bsw", "hello_again.bsw"}


def plans(bs: Any) -> dict[str, Any]:
    return {e.name: e.plan for e in bs.catalog.entries()}


async def test_a_reload_recompiles_only_the_changed_file(make_baseshift: Any,
                                                         folder: Path) -> None:
    hello = folder / "hello.bsw"
    async with make_baseshift(workflows_dir=folder, templates="memory") as bs:
        await bs.catalog.refresh(force=True)
        before, files = plans(bs), len(list(folder.glob("*.bsw")))
        assert bs.catalog.plan_stats().misses == files
        await bs.catalog.refresh(force=True)  # nothing changed: nothing compiled
        assert plans(bs) == before and all(plans(bs)[n] is p for n, p in before.items())
        stats = bs.catalog.plan_stats()
        assert (stats.hits, stats.misses, stats.entries) == (files, files, files)
        hello.write_text(hello.read_text().replace("Greet someone", "Greet anyone"))
        await bs.catalog.refresh(force=True)
        after = plans(bs)
        assert after["hello"].description == "Greet anyone, then shout it"
        assert after["hello"] is not before["hello"]
        assert all(after[n] is p for n, p in before.items() if n != "hello")
        # the changed file, with the one file that defines templates (what it is checked with)
        assert bs.catalog.plan_stats().misses == files + 2
        hello.write_text(hello.read_text().replace("job greet", "job greet2"))
        await bs.catalog.refresh(force=True)
        assert dict(state(bs)[0])["hello"] is False  # `needs greet` now names no job


async def test_a_changed_template_recompiles_every_file(make_baseshift: Any,
                                                        folder: Path) -> None:
    templates, greeting = folder / "templates.bsw", folder / "greeting.template.yaml"
    async with make_baseshift(workflows_dir=folder, templates="memory") as bs:
        await bs.catalog.refresh(force=True)
        before = plans(bs)
        templates.write_text(templates.read_text().replace(
            "Print a notification line", "Print one notification line"))
        await bs.catalog.refresh(force=True)
        after = plans(bs)
        assert not any(after[n] is p for n, p in before.items())  # all compiled again
        assert after["nightly_export"] != before["nightly_export"]  # it uses notify
        assert "Print one notification line" in repr(after["nightly_export"])
        greeting.write_text(greeting.read_text().replace('"1.0.0"', '"1.1.0"'))
        await bs.catalog.refresh(force=True)
        assert not any(plans(bs)[n] is p for n, p in after.items())
        text = templates.read_text()
        templates.write_text(text[:text.index("template notify")])
        await bs.catalog.refresh(force=True)
        assert dict(state(bs)[0])["order_fulfillment"] is False
