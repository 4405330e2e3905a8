"""The operator's own apiserver client against an HTTP peer on loopback: what it does with
429, error Status bodies and 401 (no cluster needed; the peer is a small aiohttp server)."""

from __future__ import annotations

import json
from collections.abc import Callable

import kopf
import pytest
from aiohttp import web

from coachops_operator import kube
from coachops_operator.credentials import Credentials
from tests.operator_suite.conftest import Peer


def client(peer: Peer, token: str = "t0ken") -> kube.KubeClient:
    return kube.KubeClient(Credentials(kopf.ConnectionInfo(server=peer.url, token=token)))


def ok(request: web.Request) -> web.Response:
    return web.json_response({"kind": "Namespace", "metadata": {"name": "x"}})


def throttled(retry_after: str | None) -> Callable[[web.Request], web.Response]:
    def answer(request: web.Request) -> web.Response:
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        return web.json_response(
            {"kind": "Status", "code": 429, "message": "too many requests"},
            status=429,
            headers=headers,
        )

    return answer


async def test_429_is_retried_after_its_retry_after(peer: Peer) -> None:
    peer.answers = [throttled("0"), throttled("0"), ok]
    api = client(peer)
    try:
        found = await api.request("GET", "/api/v1/namespaces/x")
    finally:
        await api.close()
    assert found["metadata"]["name"] == "x"
    assert len(peer.seen) == 3


async def test_429_gives_up_after_a_bounded_number_of_retries(peer: Peer) -> None:
    peer.answers = [throttled("0")]
    api = client(peer)
    try:
        with pytest.raises(kube.KubeError) as raised:
            await api.request("PATCH", "/api/v1/namespaces/x", body={"a": 1})
    finally:
        await api.close()
    assert raised.value.status == 429
    assert len(peer.seen) == kube.THROTTLE_RETRIES + 1


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("3", 3.0),
        (None, kube.RETRY_AFTER_DEFAULT),
        ("soon", kube.RETRY_AFTER_DEFAULT),
        ("3600", kube.RETRY_AFTER_MAX),
        ("-4", 0.0),
        ("0", 0.0),
    ],
)
def test_retry_after_is_read_and_bounded(header: str | None, seconds: float) -> None:
    assert kube.retry_after(header) == seconds


async def test_an_error_keeps_the_apiserver_status_message(peer: Peer) -> None:
    message = 'namespaces "x" is forbidden: User "op" cannot patch resource "namespaces"'

    def forbidden(request: web.Request) -> web.Response:
        status = {"kind": "Status", "status": "Failure", "message": message, "code": 403}
        return web.json_response(status, status=403)

    peer.answers = [forbidden]
    api = client(peer)
    try:
        with pytest.raises(kube.KubeError) as raised:
            await api.request("GET", "/api/v1/namespaces/x")
    finally:
        await api.close()
    assert raised.value.status == 403
    assert raised.value.message == message
    assert str(raised.value) == f"HTTP 403 Forbidden: {message}"


def test_an_error_without_a_status_body_says_the_status_only() -> None:
    assert str(kube.KubeError.from_answer(502, "Bad Gateway", b"<html>")) == "HTTP 502 Bad Gateway"
    other = json.dumps({"kind": "Namespace", "message": "not a Status"}).encode()
    assert kube.KubeError.from_answer(500, "x", other).message == ""
    long = json.dumps({"kind": "Status", "message": "m" * 5000}).encode()
    assert len(kube.KubeError.from_answer(422, "x", long).message) == kube.STATUS_MESSAGE_MAX


async def test_every_request_carries_the_credentials(peer: Peer) -> None:
    peer.answers = [ok]
    api = client(peer, token="abc")
    try:
        await api.request("GET", "/api/v1/namespaces/x")
    finally:
        await api.close()
    assert peer.seen == [("GET", "/api/v1/namespaces/x", "Bearer abc")]


async def test_a_401_with_a_static_token_is_not_sent_again(peer: Peer) -> None:
    def refuse(request: web.Request) -> web.Response:
        return web.json_response({"kind": "Status", "message": "Unauthorized"}, status=401)

    peer.answers = [refuse, ok]
    api = client(peer)
    try:
        with pytest.raises(kube.KubeError, match="401"):
            await api.request("GET", "/api/v1/namespaces/x")
    finally:
        await api.close()
    assert len(peer.seen) == 1
