"""grpcio's proxy rules as :func:`proxy_for` repeats them: precedence, no_proxy, secrets.

The end-to-end proof that grpcio really follows these rules (a check through a real
CONNECT proxy, and around it with ``--no-proxy``) is in ``test_proxy_connect.py``.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from check_grpc_health.core.proxy import ProxyDecision, ProxyRoute, proxy_for, strip_credentials
from check_grpc_health.core.targets import parse_target

LOCAL = parse_target("localhost:50051")


def route_of(environ: dict[str, str], address: str = "localhost:50051") -> ProxyRoute | None:
    return proxy_for(parse_target(address), environ).route


def test_no_setting_means_no_proxy_and_no_notes() -> None:
    assert proxy_for(LOCAL, {}) == ProxyDecision(None, ())


@pytest.mark.parametrize(
    ("environ", "source", "url"),
    [
        ({"http_proxy": "http://p1:3128"}, "http_proxy", "http://p1:3128"),
        (
            {"http_proxy": "http://p1:3128", "https_proxy": "http://p2:8080"},
            "https_proxy",
            "http://p2:8080",
        ),
        (
            {
                "http_proxy": "http://p1:1",
                "https_proxy": "http://p2:2",
                "grpc_proxy": "http://p3:3",
            },
            "grpc_proxy",
            "http://p3:3",
        ),
        ({"http_proxy": "http://10.0.0.1"}, "http_proxy", "http://10.0.0.1:443"),
        ({"http_proxy": "http://[::1]:3128/"}, "http_proxy", "http://[::1]:3128"),
        ({"http_proxy": "HTTP://Proxy.Example:3128"}, "http_proxy", "http://proxy.example:3128"),
    ],
)
def test_precedence_and_default_port(environ: dict[str, str], source: str, url: str) -> None:
    decision = proxy_for(LOCAL, environ)
    assert decision.route is not None
    assert (decision.route.source, decision.route.url) == (source, url)
    assert decision.notes == (f"connecting through the HTTP proxy {url} (from {source})",)


def test_an_empty_value_ends_the_search() -> None:
    decision = proxy_for(LOCAL, {"grpc_proxy": "", "http_proxy": "http://p1:3128"})
    assert decision == ProxyDecision(None, ("grpc_proxy is empty: no proxy",))


def test_upper_case_variables_are_ignored_and_said_so() -> None:
    decision = proxy_for(LOCAL, {"HTTP_PROXY": "http://p1:3128", "NO_PROXY": "x"})
    assert decision == ProxyDecision(
        None,
        (
            "HTTP_PROXY set, but grpcio reads only lower-case "
            "grpc_proxy/https_proxy/http_proxy: no proxy",
        ),
    )


@pytest.mark.parametrize(
    ("setting", "shown"),
    [
        ("https://u:secret@p1:3128", "https://***@p1:3128"),
        ("p1:3128", "p1:3128"),
        ("socks5://p1:1080", "socks5://p1:1080"),
        ("http://", "http://"),
        ("http://p1:99999", "http://p1:99999"),
    ],
)
def test_only_http_urls_are_used(setting: str, shown: str) -> None:
    decision = proxy_for(LOCAL, {"https_proxy": setting})
    assert decision == ProxyDecision(
        None,
        (f"https_proxy={shown!r} is ignored by grpcio (only http://host:port works)",),
    )


@pytest.mark.parametrize(
    ("address", "no_proxy", "exempt"),
    [
        ("localhost:1", "localhost", True),
        ("LocalHost:1", "LOCALHOST", True),
        ("localhost:1", "calhost", False),
        ("api.dual.test:1", "test", True),
        ("api.dual.test:1", ".test", True),
        ("api.dual.test:1", " other , .dual.test ", True),
        ("dual.test:1", ".dual.test", True),
        ("notdual.test:1", "dual.test", False),
        ("localhost:1", "localhost:1", False),
        ("localhost:1", "*", False),
        ("127.0.0.1:1", "127.0.0.1", True),
        ("127.0.0.1:1", "127.0.0.0/8", True),
        ("127.0.0.1:1", "10.0.0.0/8", False),
        ("localhost:1", "127.0.0.0/8", False),
        ("[::1]:1", "::1", True),
        ("[::1]:1", "::/0", True),
        ("ipv4:127.0.0.1:1", "127.0.0.1", True),
        ("dns:///api.dual.test:1", "dual.test", True),
        ("localhost:1", "", False),
    ],
)
def test_no_proxy_matching(address: str, no_proxy: str, exempt: bool) -> None:
    environ = {"http_proxy": "http://p1:3128", "no_proxy": no_proxy}
    decision = proxy_for(parse_target(address), environ)
    assert (decision.route is None) is exempt
    if exempt:
        host = parse_target(address).host
        assert decision.notes == (f"no_proxy lists {host}: connecting directly",)


def test_no_grpc_proxy_replaces_no_proxy_even_when_empty() -> None:
    base = {"http_proxy": "http://p1:3128", "no_proxy": "localhost"}
    assert route_of({**base, "no_grpc_proxy": ""}) is not None
    decision = proxy_for(LOCAL, {**base, "no_grpc_proxy": "localhost"})
    assert decision.notes == ("no_grpc_proxy lists localhost: connecting directly",)


def test_unix_sockets_are_direct_but_unix_abstract_goes_through_the_proxy() -> None:
    environ = {"http_proxy": "http://p1:3128"}
    assert proxy_for(parse_target("unix:/run/app.sock"), environ) == ProxyDecision(None, ())
    decision = proxy_for(parse_target("unix-abstract:app"), environ)
    assert decision.route is not None
    assert decision.notes == (
        "grpcio sends unix-abstract: targets through a proxy too",
        "connecting through the HTTP proxy http://p1:3128 (from http_proxy)",
    )


def test_disabled_says_so_only_when_a_proxy_is_set() -> None:
    assert proxy_for(LOCAL, {}, enabled=False) == ProxyDecision(None, ())
    decision = proxy_for(LOCAL, {"http_proxy": "http://p1:3128"}, enabled=False)
    assert decision == ProxyDecision(
        None, ("http_proxy not used (proxy use turned off): connecting directly",)
    )


def test_environ_defaults_to_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("grpc_proxy", "https_proxy", "no_grpc_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("http_proxy", "http://p9:3128")
    route = proxy_for(LOCAL).route
    assert route is not None
    assert route.url == "http://p9:3128"


def test_credentials_are_kept_for_connect_but_never_shown() -> None:
    decision = proxy_for(LOCAL, {"http_proxy": "http://al%40ice:s3cr%3At@p1:3128"})
    route = decision.route
    assert route is not None
    assert route.authenticated
    assert route.credentials == "al@ice:s3cr:t"
    shown = " ".join((repr(decision), str(decision), repr(route), str(route), *decision.notes))
    assert "s3cr" not in shown
    assert "al%40ice" not in shown
    assert "ice" not in shown
    assert route == ProxyRoute("http://p1:3128", "http_proxy", "p1", 3128)


def test_strip_credentials() -> None:
    assert strip_credentials("http://u:p@h:1/x") == "http://***@h:1/x"
    assert strip_credentials("u:p@h:1") == "***@h:1"
    assert strip_credentials("http://h:1") == "http://h:1"


_secret = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=6, max_size=12)


@given(user=_secret, password=_secret, scheme=st.sampled_from(["http", "https", "socks5", ""]))
def test_no_note_or_repr_ever_holds_the_password(user: str, password: str, scheme: str) -> None:
    prefix = f"{scheme}://" if scheme else ""
    for name in ("grpc_proxy", "https_proxy", "http_proxy"):
        decision = proxy_for(LOCAL, {name: f"{prefix}{user}:{password}@proxy.example:3128"})
        shown = repr(decision) + str(decision) + " ".join(decision.notes)
        assert password not in shown
        assert user not in shown


def test_the_address_level_proxy_is_noted() -> None:
    environ = {"GRPC_ADDRESS_HTTP_PROXY": "10.0.0.3:3128"}
    assert proxy_for(LOCAL, environ).notes == (
        "GRPC_ADDRESS_HTTP_PROXY='10.0.0.3:3128' is set: grpcio sends the addresses in "
        "GRPC_ADDRESS_HTTP_PROXY_ENABLED_ADDRESSES through it",
    )
    assert proxy_for(LOCAL, environ, enabled=False).notes == (
        "GRPC_ADDRESS_HTTP_PROXY='10.0.0.3:3128' not used (proxy use turned off)",
    )
