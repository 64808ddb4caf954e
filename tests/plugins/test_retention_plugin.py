"""The retention plugin around the stores: policies read from `[plugins.retention]` (audit
entries must outlive the data they describe), the daily application by the leader only and
not again early after a restart, template versions, the CLI, and the compliance controls
that flip with configuration and application."""
from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from baseshift.core.app.application import BaseShift
from baseshift.core.audit import AuditEntry, AuditQuery
from baseshift.core.config import read_config
from baseshift.core.errors import ConfigError
from baseshift.core.retention import RetentionPolicy
from baseshift.core.settings import Settings
from baseshift.core.states import JobState, RunState
from baseshift.core.templatestore import StepDocument, TemplateDocument
from baseshift.plugins.retention.daily import DailyRetention
from baseshift.plugins.retention.service import apply_policies, load_last, prune_templates
from tests.core.manual_clock import T0, ManualClock
from tests.plugins.backends import opened_state_store
from tests.plugins.store_records import a_job, a_run, an_attempt, changes

OLD = 1_000_000.0


async def seed_old(store: Any, run_id: str) -> None:
    run = a_run(run_id, created_at=OLD, state=RunState.RUNNING)
    await store.create_run(run, [a_job("a", run_id, state=JobState.RUNNING)])
    await store.apply(changes(
        a_run(run_id, created_at=OLD, ended_at=OLD + 1, state=RunState.COMPLETED),
        a_job("a", run_id, state=JobState.SUCCEEDED, output={"x": 1}, ended_at=OLD + 1),
        an_attempt("a", 1, run_id, state=JobState.SUCCEEDED, started_at=OLD,
                   ended_at=OLD + 1, log="old log")))


def test_policies_are_days_per_kind_and_unset_kinds_are_kept() -> None:
    policy = RetentionPolicy.from_options({"runs": 30, "attempt_logs": 7.5,
                                           "audit_entries": 365, "interval": 60})
    assert policy.to_json() == {"runs": 30, "attempt_logs": 7.5, "audit_entries": 365}
    assert policy.cutoffs(100 * 86400.0) == {"runs": 70 * 86400.0,
                                             "attempt_logs": 92.5 * 86400.0,
                                             "audit_entries": -265 * 86400.0}
    assert RetentionPolicy.from_options(None).days == {}


@pytest.mark.parametrize(("options", "words"), [
    ({"runs": 400, "audit_entries": 365}, "audit entries must outlive"),
    ({"run": 30}, "not a kind of data"),
    ({"runs": 0}, "positive number of days"),
    ({"runs": "30"}, "positive number of days"),
    ({"runs": True}, "positive number of days"),
])
def test_bad_policies_are_config_errors(options: dict[str, Any], words: str) -> None:
    with pytest.raises(ConfigError, match=words) as caught:
        RetentionPolicy.from_options(options)
    assert caught.value.hint


async def test_a_bad_policy_in_the_file_stops_the_start(tmp_path: Path) -> None:
    file = tmp_path / "baseshift.toml"
    file.write_text("[plugins.retention]\nruns = 90\njob_results = 120\naudit_entries = 100\n")
    settings = Settings(load_entrypoints=False, store="memory", data_dir=tmp_path / "d",
                        **{"extra": read_config(file)["extra"]})
    with pytest.raises(ConfigError, match="audit_entries") as caught:
        async with BaseShift(settings):
            pass
    assert "at least 120 days" in str(caught.value.hint)


async def test_daily_application_by_the_leader_once_a_day(make_baseshift: Callable[..., Any],
                                                          tmp_path: Path) -> None:
    extra = {"retention": {"runs": 30}}
    async with make_baseshift(extra=extra) as bs:
        clock = ManualClock(T0)
        daily = DailyRetention(bs, clock)
        await seed_old(bs.store, "r1")
        done = await daily.tick()
        assert done is not None and done.removed == {"runs": 1}
        assert await bs.store.load_run("r1") is None
        await seed_old(bs.store, "r2")
        restarted = DailyRetention(bs, clock)  # a restart does not apply them again early
        clock.move_to(T0 + timedelta(hours=23))
        assert await restarted.tick() is None
        assert await bs.store.load_run("r2") is not None
        clock.move_to(T0 + timedelta(hours=24, seconds=1))
        again = await restarted.tick()
        assert again is not None and again.removed == {"runs": 1}
        last = await load_last(bs.store, bs.settings.data_dir)
        assert last is not None and last.applied_at == (T0 + timedelta(hours=24,
                                                                       seconds=1)).timestamp()


async def test_the_daily_task_runs_on_its_clock(make_baseshift: Callable[..., Any]) -> None:
    async with make_baseshift(extra={"retention": {"runs": 30}}) as bs:
        await seed_old(bs.store, "r1")
        clock = ManualClock(T0)
        daily = DailyRetention(bs, clock, interval=60)
        daily.start()
        try:
            await clock.sleeping.wait()
            assert await bs.store.load_run("r1") is None
            assert clock.sleeps == [60]
        finally:
            await daily.stop()


async def test_only_the_leader_of_a_fleet_applies(make_baseshift: Callable[..., Any],
                                                  pg_url: str, tmp_path: Path) -> None:
    extra = {"retention": {"runs": 30}}
    async with make_baseshift(store="postgres", database_url=pg_url, extra=extra,
                              data_dir=tmp_path / "a") as first, \
            make_baseshift(store="postgres", database_url=pg_url, extra=extra,
                           data_dir=tmp_path / "b") as second:
        clock = ManualClock(T0)
        await seed_old(first.store, "r1")
        assert await DailyRetention(first, clock).tick() is not None
        await seed_old(first.store, "r2")
        clock.move_to(T0 + timedelta(days=2))
        assert await DailyRetention(second, clock).tick() is None  # the first one leads
        assert await second.store.load_run("r2") is not None
        # the shared mark: the second server sees when the first applied them
        last = await load_last(second.store, second.settings.data_dir)
        assert last is not None and last.applied_at == T0.timestamp()


def _template(version: str) -> TemplateDocument:
    return TemplateDocument("notify", version, (StepDocument("say", "shell",
                                                             {"command": "echo hi"}),))


@pytest.mark.parametrize("templates", ["memory", "sqlite", "postgres"])
async def test_template_versions_keep_the_newest_and_those_live_runs_use(
        make_baseshift: Callable[..., Any], templates: str, pg_url: str) -> None:
    store_name = "postgres" if templates == "postgres" else "sqlite"
    async with make_baseshift(store=store_name, templates=templates,
                              database_url=pg_url) as bs:
        store = bs.templates
        for version in ("1.0.0", "1.1.0", "1.2.0", "2.0.0"):
            await store.publish(_template(version))
        live = a_run("live", created_at=OLD, state=RunState.RUNNING)
        await bs.store.create_run(live, [a_job("a", "live", template="notify@1.1.0",
                                               state=JobState.RUNNING)])
        soon = time.time() + 3600  # every version was published before it
        assert await prune_templates(bs.store, store, soon, dry_run=True) == 2
        assert len(await store.list("notify")) == 4
        assert await prune_templates(bs.store, store, OLD, dry_run=False) == 0
        assert await prune_templates(bs.store, store, soon, dry_run=False) == 2
        assert [d.version for d in await store.list("notify")] == ["1.1.0", "2.0.0"]
        deleted = await bs.store.audit_page(AuditQuery(action="template.delete"))
        assert sorted(r.entry.detail["version"] for r in deleted) == ["1.0.0", "1.2.0"]


async def test_compliance_controls_flip(make_baseshift: Callable[..., Any]) -> None:
    async with make_baseshift() as bs:
        found = {c.id: c for c in await bs.hooks.compliance_controls()}
        assert found["retention.configured"].status == "pending"
        assert found["retention.applied"].status == "pending"
        assert found["retention.erasure"].frameworks["GDPR"] == ("Article 17",)
    async with make_baseshift(extra={"retention": {"runs": 30, "audit_entries": 400}}) as bs:
        found = {c.id: c for c in await bs.hooks.compliance_controls()}
        configured = found["retention.configured"]
        assert configured.status == "implemented"
        assert "runs 30 days" in configured.evidence and "audit_entries 400" in \
            configured.evidence
        assert configured.frameworks["GDPR"] == ("Article 5(1)(e)",)
        assert found["retention.applied"].status == "pending"
        await seed_old(bs.store, "r1")
        await apply_policies(bs.store, bs.templates, RetentionPolicy.from_options(
            {"runs": 30}), bs.settings.data_dir, dry_run=False)
        found = {c.id: c for c in await bs.hooks.compliance_controls()}
        applied = found["retention.applied"]
        assert applied.status == "implemented" and "runs 1" in applied.evidence
        assert applied.frameworks["HIPAA"] == ("164.316(b)(2)",)
        assert "CC6.5" in applied.frameworks["SOC 2"]
        assert found["retention.legal-hold"].evidence == "0 run(s) on legal hold"


async def test_cli_applies_erases_and_holds(run_cli: Callable[..., Any], tmp_path: Path) -> None:
    config = tmp_path / "baseshift.toml"
    config.write_text("[plugins.retention]\nruns = 30\n")
    env = {"BASESHIFT_CONFIG": str(config)}
    refused = run_cli("apply-retention", env=env)
    assert refused.exit_code == 2 and "--dry-run" in refused.stderr
    looked = run_cli("apply-retention", "--dry-run", env=env)
    assert looked.exit_code == 0, looked.stderr
    assert "would remove" in looked.stdout and "runs: 0" in looked.stdout
    done = run_cli("apply-retention", "--yes", "--json", env=env)
    assert done.exit_code == 0, done.stderr
    assert '"removed"' in done.stdout
    erase = run_cli("erase", "nope", "--yes", env=env)
    assert erase.exit_code != 0 and "not found" in erase.stderr
    hold = run_cli("legal-hold", "nope", "on", env=env)
    assert hold.exit_code != 0 and "not found" in hold.stderr


async def test_audit_verify_passes_after_pruning_and_fails_after_tampering(
        run_cli: Callable[..., Any], tmp_path: Path) -> None:
    data = tmp_path / "cli-data"  # the data dir run_cli gives the commands
    async with opened_state_store("sqlite", tmp_path) as store:
        await store.append_audit([AuditEntry("run.start", f"run:r{n}", "alice", at=OLD + n)
                                  for n in range(4)])
    (tmp_path / "data" / "baseshift.db").rename(_moved(data))
    config = tmp_path / "baseshift.toml"
    config.write_text("[plugins.retention]\naudit_entries = 30\n")
    env = {"BASESHIFT_CONFIG": str(config)}
    done = run_cli("apply-retention", "--yes", "--json", env=env)
    assert done.exit_code == 0, done.stderr
    assert json.loads(done.stdout)["removed"] == {"audit_entries": 4}
    verified = run_cli("audit", "verify", "--json", env=env)
    assert verified.exit_code == 0, verified.stdout + verified.stderr
    assert json.loads(verified.stdout)["intact"] is True
    with sqlite3.connect(data / "baseshift.db") as db:
        db.execute("UPDATE audit_log SET actor = 'mallory' WHERE seq = 5")
    broken = run_cli("audit", "verify", env=env)
    assert broken.exit_code == 1 and "entry 5 was edited" in broken.stderr


def _moved(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return folder / "baseshift.db"


async def test_cli_holds_and_erases_a_run(run_cli: Callable[..., Any], tmp_path: Path) -> None:
    async with opened_state_store("sqlite", tmp_path) as store:
        await seed_old(store, "r1")
    (tmp_path / "data" / "baseshift.db").rename(_moved(tmp_path / "cli-data"))
    held = run_cli("legal-hold", "r1", "on")
    assert held.exit_code == 0 and "on legal hold" in held.stdout, held.stderr
    refused = run_cli("erase", "r1", "--yes")
    assert refused.exit_code != 0 and "legal hold" in refused.stderr
    assert run_cli("legal-hold", "r1", "off").exit_code == 0
    assert run_cli("erase", "r1").exit_code == 2  # without --yes
    erased = run_cli("erase", "r1", "--yes", "--json")
    assert erased.exit_code == 0, erased.stderr
    stone = json.loads(erased.stdout)
    assert (stone["run_id"], stone["workflow"]) == ("r1", "orders")
    assert stone["erased_by"].startswith("cli:")
    shown = run_cli("show", "r1")
    assert shown.exit_code != 0 and "was erased by cli:" in shown.stderr
    verified = run_cli("audit", "list", "--action", "run.erase", "--json")
    assert json.loads(verified.stdout)["entries"][0]["resource"] == "run:r1"
