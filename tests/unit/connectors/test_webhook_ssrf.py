from __future__ import annotations

import ipaddress

import pytest

from app.connectors.webhook import CallbackRefused, allow_list, check_callback_url
from app.connectors.webhook.ssrf import GuardedResolver, refusal
from app.contracts.errors import BadInputError


def _refusal(text: str, allowed: tuple[str, ...] = ()) -> str | None:
    return refusal(ipaddress.ip_address(text), allow_list(allowed))


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("fd12:3456::1", "private"),
        ("169.254.1.1", "link-local"),
        ("fe80::1", "link-local"),
        ("169.254.169.254", "metadata"),
        ("fd00:ec2::254", "metadata"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:169.254.169.254", "metadata"),
        ("::ffff:10.0.0.1", "private"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("100.64.0.1", "non-public"),
        ("224.0.0.1", "multicast"),
    ],
)
def test_non_public_addresses_are_refused_with_their_kind(address: str, kind: str) -> None:
    reason = _refusal(address)
    assert reason is not None and kind in reason
    assert "allow_private" in reason


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_pass(address: str) -> None:
    assert _refusal(address) is None


def test_the_allow_list_lets_its_networks_through_and_no_other() -> None:
    assert _refusal("127.0.0.1", ("127.0.0.1/32",)) is None
    assert _refusal("::ffff:127.0.0.1", ("127.0.0.1/32",)) is None
    assert _refusal("127.0.0.2", ("127.0.0.1/32",)) is not None
    assert _refusal("10.9.9.9", ("10.0.0.0/8",)) is None
    assert _refusal("169.254.169.254", ("10.0.0.0/8",)) is not None
    assert _refusal("::1", ("::1/128",)) is None


async def test_check_callback_url_refuses_literal_and_resolved_private_hosts() -> None:
    with pytest.raises(CallbackRefused, match=r"169\.254\.169\.254 is a cloud metadata address"):
        await check_callback_url("http://169.254.169.254/latest/meta-data/")
    with pytest.raises(CallbackRefused, match="loopback"):
        await check_callback_url("http://localhost:8080/hook")  # every address of the name is checked
    with pytest.raises(CallbackRefused, match="loopback"):
        await check_callback_url("http://[::ffff:127.0.0.1]/hook")
    await check_callback_url("http://localhost:8080/hook", allow_list(["127.0.0.1/32", "::1/128"]))
    await check_callback_url("https://93.184.216.34/hook")


async def test_check_callback_url_refuses_what_is_no_http_url() -> None:
    for url in ("ftp://example.com/x", "file:///etc/passwd", "http:///nohost", "not a url"):
        with pytest.raises(CallbackRefused):
            await check_callback_url(url)


def test_a_refused_callback_is_a_bad_input_error() -> None:
    assert issubclass(CallbackRefused, BadInputError)


async def test_the_delivery_resolver_returns_only_checked_addresses() -> None:
    resolver = GuardedResolver(allow_list(["127.0.0.1/32", "::1/128"]))
    hosts = await resolver.resolve("localhost", 8080)
    assert hosts and all(ipaddress.ip_address(h["host"]).is_loopback for h in hosts)
    with pytest.raises(CallbackRefused):
        await GuardedResolver().resolve("localhost", 8080)
