"""The error contract in TypeScript: every error the daemon can raise, through the daemon's
encoder (`seatd.transport.status.to_status`) and the Node client's decoder (clients/node)."""

from __future__ import annotations

import base64
import json
import subprocess
from typing import Any

import grpc
import pytest
from seatclient import contract

from seatd.transport.status import to_status
from tests.node import node_script
from tests.unit.test_error_contract import CASES, EXIT, NOW, ORDER_URL, Case


def trailer(key: str, value: str | bytes) -> list[str]:
    if isinstance(value, bytes):
        return [key, base64.b64encode(value).decode()]
    return [key, value]


@pytest.fixture(scope="module")
def decoded() -> list[dict[str, Any]]:
    """How the Node client decodes each case of CASES, in order."""
    lines = []
    for case in CASES:
        status = to_status(case.error, NOW)
        code: grpc.StatusCode = status.code
        lines.append(
            json.dumps(
                {
                    "code": code.value[0],
                    "details": status.details,
                    "trailers": [trailer(k, v) for k, v in status.trailing_metadata],
                }
            )
        )
    out = subprocess.run(
        node_script("test/decode.js"),
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return [json.loads(line) for line in out.stdout.splitlines()]


@pytest.mark.parametrize(
    "index", range(len(CASES)), ids=[f"{type(c.error).__name__}:{c.error.reason}" for c in CASES]
)
def test_node_client_decodes_each_daemon_error_as_the_python_library_does(
    decoded: list[dict[str, Any]], index: int
) -> None:
    """Same class name, reason, message and `seat` exit code in TypeScript as in Python."""
    case: Case = CASES[index]
    got = decoded[index]
    assert got["name"] == case.expected.__name__
    assert got["fields"]["code"] == case.error.reason
    assert case.error.message in got["message"]
    assert got["exit"] == EXIT.get(case.expected, 2)


def test_node_client_decodes_the_refusal_at_capacity_with_every_way_out(
    decoded: list[dict[str, Any]],
) -> None:
    """SEATS_EXHAUSTED: cap, in use, retry_after, queue position, sessions and order_url."""
    (got,) = [d for d in decoded if d["name"] == "SeatsExhausted"]
    fields = got["fields"]
    assert (fields["cap"], fields["inUse"], fields["retryAfter"], fields["queuePosition"]) == (
        3,
        3,
        10,
        2,
    )
    assert fields["sessions"] == ["7"]
    assert fields["orderUrl"] == ORDER_URL


def test_node_contract_knows_every_reason_and_key_of_the_python_one() -> None:
    """clients/node/src/contract.ts holds every value of seatclient/contract.py (it may know
    a reason before the daemon sends it, never miss one the daemon sends)."""
    script = (
        "const c = require(process.argv[1]);"
        "console.log(JSON.stringify({reasons: c.Reason, meta: c.Meta, detail: c.DETAIL_KEY,"
        " queue: c.QUEUE_POSITION_KEY, domain: c.DOMAIN, prefix: c.LICENCE_PREFIX}))"
    )
    node, contract_js = node_script("src/contract.js")
    out = subprocess.run(
        [node, "-e", script, contract_js], capture_output=True, text=True, timeout=30, check=True
    )
    ts = json.loads(out.stdout)

    def names(cls: type) -> dict[str, str]:
        return {k: v for k, v in vars(cls).items() if not k.startswith("_")}

    assert names(contract.Reason).items() <= ts["reasons"].items()
    assert names(contract.Meta).items() <= ts["meta"].items()
    assert (ts["detail"], ts["queue"], ts["domain"], ts["prefix"]) == (
        contract.DETAIL_KEY,
        contract.QUEUE_POSITION_KEY,
        contract.DOMAIN,
        contract.LICENCE_PREFIX,
    )
