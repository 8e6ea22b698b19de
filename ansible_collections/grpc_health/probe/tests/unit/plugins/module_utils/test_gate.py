"""Unit tests of module_utils.gate: how module parameters become core options.

Layer: tests. Pure logic, no server: the mapping of TLS, metadata and the target.
"""

from __future__ import annotations

import pytest

from ansible_collections.grpc_health.probe.plugins.module_utils.core.results import (
    InvalidArgument,
)
from ansible_collections.grpc_health.probe.plugins.module_utils.core.tls import TlsOptions
from ansible_collections.grpc_health.probe.plugins.module_utils.gate import build_options

BASE = {"host": "db1", "port": 50051, "service": [""]}


def test_plaintext_by_default_with_port_in_the_display_name():
    options = build_options(BASE)
    assert options.tls is None
    assert options.target.grpc_target == "db1:50051"
    assert options.target.display == "db1:50051"
    assert options.services == ("",)


def test_address_with_port_keeps_its_display_name():
    options = build_options({**BASE, "host": "[::1]:50051", "port": None})
    assert options.target.display == "[::1]:50051"
    assert options.target.grpc_target == "[::1]:50051"


def test_a_certificate_option_turns_tls_on():
    options = build_options({**BASE, "ca_cert": "/ca.pem"})
    assert options.tls == TlsOptions(ca_cert="/ca.pem")


def test_validate_certs_false_maps_to_no_verify():
    options = build_options({**BASE, "tls": True, "validate_certs": False})
    assert options.tls == TlsOptions(verify=False)


def test_tls_false_with_a_certificate_option_is_refused():
    with pytest.raises(InvalidArgument, match=r"^server_name needs TLS, but tls is false$"):
        build_options({**BASE, "tls": False, "server_name": "x"})


def test_metadata_keys_are_lowercased_and_values_kept():
    options = build_options({**BASE, "metadata": {"Authorization": "Bearer t", "x-n": 5}})
    assert options.metadata == (("authorization", "Bearer t"), ("x-n", "5"))


@pytest.mark.parametrize("key", ["a:b", "grpc-timeout", "token-bin", ""])
def test_bad_metadata_keys_are_refused(key):
    with pytest.raises(InvalidArgument, match="metadata key"):
        build_options({**BASE, "metadata": {key: "secret-value"}})


def test_metadata_value_that_is_not_text_is_refused_without_showing_it():
    with pytest.raises(InvalidArgument) as error:
        build_options({**BASE, "metadata": {"token": ["secret-value"]}})
    assert str(error.value) == "metadata 'token': the value must be text (value not shown)"


def test_a_service_listed_twice_is_checked_once():
    options = build_options({**BASE, "service": ["orders", "", "orders"]})
    assert options.services == ("orders", "")


def test_a_tls_url_turns_tls_on_and_keeps_validate_certs():
    options = build_options({**BASE, "host": "grpcs://db1:443", "port": None})
    assert options.tls == TlsOptions()
    assert options.target.grpc_target == "db1:443"
    unverified = build_options(
        {**BASE, "host": "https://db1", "port": None, "validate_certs": False}
    )
    assert unverified.tls == TlsOptions(verify=False)
    assert unverified.target.port == 443


def test_a_plaintext_url_stays_plaintext():
    options = build_options({**BASE, "host": "http://db1", "port": None})
    assert options.tls is None
    assert options.target.grpc_target == "db1:80"


def test_tls_false_with_a_tls_url_is_refused():
    with pytest.raises(InvalidArgument, match=r"^host asks for TLS \(grpcs:// or https://\), "):
        build_options({**BASE, "host": "https://db1", "tls": False})


def test_use_proxy_defaults_to_true_and_false_turns_it_off():
    assert build_options(BASE).use_proxy is True
    assert build_options({**BASE, "use_proxy": False}).use_proxy is False
