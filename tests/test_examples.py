"""Every example in workflows/ checks and runs on a fresh machine, with the results it promises."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((REPO / "workflows").glob("*.bsw"))
SECRETS = {"PAYMENT_API_KEY": "test-key"}


def run_example(run_cli: Any, name: str, *inputs: str) -> tuple[int, dict[str, Any]]:
    args = [a for i in inputs for a in ("--input", i)]
    result = run_cli("run", f"workflows/{name}.bsw", *args, "--json", env=SECRETS)
    assert result.stdout, result.stderr
    return result.exit_code, json.loads(result.stdout)


def states(run: dict[str, Any]) -> dict[str, str]:
    return {j["key"]: j["state"] for j in run["jobs"]}


def test_there_are_at_least_six_examples() -> None:
    assert len([p for p in EXAMPLES if "workflow " in p.read_text()]) >= 6


@pytest.mark.slow
def test_every_example_checks(run_cli: Any) -> None:
    result = run_cli("check", "workflows")
    assert result.exit_code == 0, result.stderr
    yaml_templates = list((REPO / "workflows").glob("*.template.yaml"))
    assert yaml_templates  # checked with the workflows, as the server loads them
    assert result.stdout.startswith(f"{len(EXAMPLES) + len(yaml_templates)} files ok")


@pytest.mark.slow
def test_orders_charges_over_http_and_ships(run_cli: Any) -> None:
    code, run = run_example(run_cli, "orders")
    assert code == 0 and run["status"] == "COMPLETED"
    assert run["outputs"] == {"status": "valid", "transaction": "tx-A-1001", "shipped": True}
    assert states(run)["refuse"] == "SKIPPED"
    charge = next(j for j in run["jobs"] if j["key"] == "charge")
    assert charge["inputs"]["headers"]["Authorization"] == "Bearer ***"


@pytest.mark.slow
def test_orders_refuses_an_invalid_payment(run_cli: Any) -> None:
    code, run = run_example(run_cli, "orders", "currency=XYZ")
    assert code == 0 and run["status"] == "COMPLETED"
    s = states(run)
    assert (s["charge"], s["refuse"], s["ship"]) == ("SKIPPED", "SUCCEEDED", "SKIPPED")
    assert run["outputs"]["status"] == "invalid"


@pytest.mark.slow
def test_orders_failure_handler_prints_an_error_with_parentheses_and_quotes(
        run_cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without PAYMENT_API_KEY the charge fails with "secret 'PAYMENT_API_KEY' is not set
    (...)"; the handler's shell command (template notify) gets that text as one word."""
    pwned = tmp_path / "pwned"
    order = f"O'Brien (\"vip\") $(touch {pwned})"
    monkeypatch.delenv("PAYMENT_API_KEY", raising=False)
    result = run_cli("run", "workflows/orders.bsw", "--input", f"order_id={order}", "--json")
    run = json.loads(result.stdout)
    assert result.exit_code == 1 and run["status"] == "FAILED"
    assert states(run)["charge"] == "FAILED" and states(run)["page"] == "SUCCEEDED"
    page = next(j for j in run["jobs"] if j["key"] == "page")
    assert page["output"]["stdout"] == (
        "notify: order flow failed: job charge failed: secret 'PAYMENT_API_KEY' is not set "
        "(set the environment variable PAYMENT_API_KEY, or configure a secrets plugin)\n")
    assert not pwned.exists()


@pytest.mark.slow
def test_fanout_squares_in_parallel_and_totals(run_cli: Any) -> None:
    code, run = run_example(run_cli, "fanout", "numbers=[1, 2, 3]")
    assert code == 0
    assert run["outputs"] == {"sum": 14, "mean": 14 / 3}
    assert sorted(k for k in states(run) if k.startswith("square[")) == [
        "square[0]", "square[1]", "square[2]"]


@pytest.mark.slow
def test_flaky_job_succeeds_on_its_third_attempt(run_cli: Any) -> None:
    code, run = run_example(run_cli, "flaky")
    assert code == 0
    fetch = next(j for j in run["jobs"] if j["key"] == "fetch")
    assert [a["state"] for a in fetch["attempts"]] == ["FAILED", "FAILED", "SUCCEEDED"]
    assert run["outputs"]["attempts"] == 3


@pytest.mark.slow
@pytest.mark.parametrize(("amount", "approved", "review"),
                         [("120", True, "SKIPPED"), ("5000", False, "SUCCEEDED")])
def test_conditional_branches_by_amount(run_cli: Any, amount: str, approved: bool,
                                        review: str) -> None:
    code, run = run_example(run_cli, "conditional", f"amount={amount}")
    assert code == 0
    assert run["outputs"] == {"approved": approved}
    assert states(run)["manual_review"] == review
    assert states(run)["notify"] == "SUCCEEDED"


@pytest.mark.slow
def test_failure_handlers_run_and_the_run_fails(run_cli: Any) -> None:
    code, run = run_example(run_cli, "failure")
    assert code == 1 and run["status"] == "FAILED"
    s = states(run)
    assert (s["upload"], s["cleanup"], s["alert"], s["log_failure"]) == (
        "FAILED", "CANCELLED", "SUCCEEDED", "SUCCEEDED")
    alert = next(j for j in run["jobs"] if j["key"] == "alert")
    assert alert["output"]["stdout"] == "notify: export failed: upload\n"


@pytest.mark.slow
def test_hello(run_cli: Any) -> None:
    code, run = run_example(run_cli, "hello", "name=ada")
    assert code == 0 and run["outputs"] == {"message": "HELLO ADA!"}
