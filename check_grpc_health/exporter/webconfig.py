"""``--web-config-file``: TLS and basic auth, from the file Prometheus' own exporters read.

Layer: adapter (the exporter), its configuration. The file is exporter-toolkit's web
configuration (the ``--web.config.file`` of node_exporter and blackbox_exporter), so one
file can serve them all:

    tls_server_config:
      cert_file: server.crt        # relative paths are relative to this file's folder
      key_file: server.key
      client_auth_type: RequireAndVerifyClientCert
      client_ca_file: clients-ca.crt
      min_version: TLS12
    basic_auth_users:
      prometheus: $2y$10$...       # bcrypt hashes (htpasswd -nBC 10 "" | tr -d ':\\n')

What Python's ``ssl`` cannot do is refused with one line rather than ignored:
``RequestClientCert`` and ``RequireAnyClientCert`` (a client certificate accepted without
verification), ``cipher_suites``, ``curve_preferences``, ``prefer_server_cipher_suites``,
``client_allowed_sans``, inline ``cert``/``key``. ``http_server_config.headers`` are added
to every answer; the server speaks HTTP/1.1 only, so ``http2`` changes nothing. Reading
the file needs the ``web`` extra (PyYAML and bcrypt).
"""

from __future__ import annotations

import hashlib
import os
import threading
from typing import TYPE_CHECKING, Any, NamedTuple

from check_grpc_health.core.results import InvalidArgument
from check_grpc_health.text import clean_text

if TYPE_CHECKING:
    import ssl
_CLIENT_AUTH = {
    "NoClientCert": "none",
    "VerifyClientCertIfGiven": "optional",
    "RequireAndVerifyClientCert": "required",
}
_UNVERIFIED = ("RequestClientCert", "RequireAnyClientCert")
_VERSIONS = ("TLS10", "TLS11", "TLS12", "TLS13")
_TLS_KEYS = {
    "cert_file",
    "key_file",
    "client_auth_type",
    "client_ca_file",
    "min_version",
    "max_version",
}
_UNSUPPORTED_TLS = {
    "cert",
    "key",
    "cipher_suites",
    "curve_preferences",
    "prefer_server_cipher_suites",
    "client_allowed_sans",
}
#: Successful logins remembered, so that a scrape does not pay bcrypt's cost every time.
_CACHE_SIZE = 1024
_INSTALL = "pip install 'check-grpc-health[web]'"


class WebConfig(NamedTuple):
    """What the file asks for: a server TLS context, users, extra response headers."""

    tls: ssl.SSLContext | None
    users: BasicAuth | None
    headers: tuple[tuple[str, str], ...]


def read_web_config(path: str) -> WebConfig:
    """Read and check the file; :class:`InvalidArgument` with one line naming the problem."""
    try:
        import yaml
    except ImportError:
        raise InvalidArgument(f"--web-config-file needs PyYAML and bcrypt: {_INSTALL}") from None
    try:
        with open(path, encoding="utf-8") as handle:
            document = yaml.safe_load(handle)
    except OSError as error:
        reason = error.strerror or error.__class__.__name__
        raise InvalidArgument(f"cannot read web config file {path!r}: {reason}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        first = clean_text(str(error)).split(";")[0]
        raise InvalidArgument(f"web config file {path!r} is not YAML: {first}") from None
    document = {} if document is None else document
    _keys(path, "", document, {"tls_server_config", "http_server_config", "basic_auth_users"})
    folder = os.path.dirname(os.path.abspath(path))
    tls = document.get("tls_server_config")
    http = document.get("http_server_config") or {}
    _keys(path, "http_server_config.", http, {"http2", "headers"})
    headers = http.get("headers") or {}
    if not isinstance(headers, dict) or not all(
        isinstance(key, str) and isinstance(value, str) for key, value in headers.items()
    ):
        raise InvalidArgument(f"{path}: http_server_config.headers must map names to strings")
    users = document.get("basic_auth_users")
    return WebConfig(
        None if tls is None else _tls_context(path, folder, tls),
        None if not users else BasicAuth(path, users),
        tuple(headers.items()),
    )


def _keys(path: str, where: str, section: object, known: set[str]) -> None:
    if not isinstance(section, dict):
        raise InvalidArgument(f"{path}: {where.rstrip('.') or 'the file'} must be a mapping")
    for key in section:
        if key not in known:
            raise InvalidArgument(f"{path}: unknown key {where}{clean_text(str(key))}")


def _tls_context(path: str, folder: str, config: Any) -> ssl.SSLContext:
    import ssl

    _keys(path, "tls_server_config.", config, _TLS_KEYS | _UNSUPPORTED_TLS)
    for key in _UNSUPPORTED_TLS & set(config):
        raise InvalidArgument(f"{path}: tls_server_config.{key} is not supported here")
    cert, key = config.get("cert_file"), config.get("key_file")
    if not cert or not key:
        raise InvalidArgument(f"{path}: tls_server_config needs cert_file and key_file")
    auth = config.get("client_auth_type") or "NoClientCert"
    if auth in _UNVERIFIED:
        raise InvalidArgument(
            f"{path}: client_auth_type {auth} accepts client certificates without verifying "
            "them, which Python's ssl cannot do: use RequireAndVerifyClientCert or "
            "VerifyClientCertIfGiven with client_ca_file"
        )
    if auth not in _CLIENT_AUTH:
        raise InvalidArgument(f"{path}: unknown client_auth_type {clean_text(str(auth))}")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = _version(path, config.get("min_version") or "TLS12")
    if config.get("max_version"):
        context.maximum_version = _version(path, config["max_version"])
    try:
        context.load_cert_chain(os.path.join(folder, cert), os.path.join(folder, key))
    except (OSError, ssl.SSLError) as error:
        reason = getattr(error, "strerror", None) or clean_text(str(error))
        raise InvalidArgument(
            f"{path}: cannot load cert_file {cert!r} with key_file {key!r}: {reason}"
        ) from None
    ca = config.get("client_ca_file")
    if _CLIENT_AUTH[auth] != "none":
        if not ca:
            raise InvalidArgument(f"{path}: client_auth_type {auth} needs client_ca_file")
        try:
            context.load_verify_locations(os.path.join(folder, ca))
        except (OSError, ssl.SSLError) as error:
            reason = getattr(error, "strerror", None) or clean_text(str(error))
            raise InvalidArgument(f"{path}: cannot load client_ca_file {ca!r}: {reason}") from None
        required = _CLIENT_AUTH[auth] == "required"
        context.verify_mode = ssl.CERT_REQUIRED if required else ssl.CERT_OPTIONAL
    return context


def _version(path: str, name: object) -> ssl.TLSVersion:
    import ssl

    if name not in _VERSIONS:
        raise InvalidArgument(
            f"{path}: TLS version {clean_text(str(name))} is not one of {', '.join(_VERSIONS)}"
        )
    return {
        "TLS10": ssl.TLSVersion.TLSv1,
        "TLS11": ssl.TLSVersion.TLSv1_1,
        "TLS12": ssl.TLSVersion.TLSv1_2,
        "TLS13": ssl.TLSVersion.TLSv1_3,
    }[str(name)]


class BasicAuth:
    """``basic_auth_users``: user names and bcrypt hashes; checks an Authorization header."""

    def __init__(self, path: str, users: object) -> None:
        try:
            import bcrypt
        except ImportError:
            raise InvalidArgument(f"basic_auth_users needs bcrypt: {_INSTALL}") from None
        if not isinstance(users, dict):
            raise InvalidArgument(f"{path}: basic_auth_users must map user names to bcrypt hashes")
        self._bcrypt = bcrypt
        self._users: dict[str, bytes] = {}
        for user, hashed in users.items():
            text = str(hashed)
            if not isinstance(user, str) or not text.startswith(("$2a$", "$2b$", "$2y$")):
                # Never the hash itself: it is a secret of sorts.
                raise InvalidArgument(
                    f"{path}: basic_auth_users: the password of {clean_text(str(user))!r} is "
                    "not a bcrypt hash ($2y$...)"
                )
            self._users[user] = text.encode()
        # Checked for an unknown user too, so that the answer takes as long.
        self._dummy = bcrypt.hashpw(b"", bcrypt.gensalt(rounds=10))
        self._known: set[bytes] = set()
        self._lock = threading.Lock()

    def allows(self, header: str | None) -> bool:
        """Whether ``header`` (``Basic base64(user:password)``) names a user and password."""
        import base64
        import binascii

        if not header or not header.startswith("Basic "):
            return False
        try:
            user, colon, password = base64.b64decode(header[6:], validate=True).partition(b":")
            name = user.decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        hashed = self._users.get(name) if colon else None
        key = hashlib.sha256(user + b"\0" + password + b"\0" + (hashed or b"")).digest()
        with self._lock:
            if hashed is not None and key in self._known:
                return True
        try:
            good = self._bcrypt.checkpw(password, hashed or self._dummy) and hashed is not None
        except ValueError:  # a hash bcrypt cannot read
            return False
        if good:
            with self._lock:
                if len(self._known) >= _CACHE_SIZE:
                    self._known.clear()
                self._known.add(key)
        return good
