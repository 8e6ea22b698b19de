"""The Icinga 2 API's settings: its address, the user and password, the CA, and the result
settings, each checked before any check runs.

Layer: adapter (a fleet sink's options, shared by the one-shot fleet and ``--watch``).
Every problem is one line (:class:`InvalidArgument`); a URL that may hold a secret (a
user name or password, a query, a fragment) is refused without being shown. The
password comes from a file or the environment, never from the command line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from check_grpc_health.core.results import InvalidArgument

if TYPE_CHECKING:
    import ssl
    from collections.abc import Mapping

PASSWORD_VARIABLE = "ICINGA2_API_PASSWORD"  # noqa: S105 (a name, not a password)
DEFAULT_PORT = 5665


@dataclass(frozen=True)
class Icinga2Api:
    """Where and how to submit: the API's address, the user, and result settings.

    ``context`` verifies the API's certificate (against ``ca_file``, else the system's
    CAs); the connections share it.
    """

    url: str
    host: str
    port: int
    user: str
    password: str = field(repr=False)
    ca_file: str | None
    check_source: str
    ttl: float
    context: ssl.SSLContext | None = field(default=None, repr=False, compare=False)


def icinga2_api_settings(  # noqa: PLR0917 (one argument per command-line option)
    url: str,
    user: str | None,
    password_file: str | None,
    ca_file: str | None,
    check_source: str,
    ttl: float,
    environ: Mapping[str, str],
) -> Icinga2Api:
    """Validate the ``--icinga2-*`` options; raises :class:`InvalidArgument` with one line."""
    host, port = parse_api_url(url)
    if not user:
        raise InvalidArgument("--icinga2-api needs --icinga2-user NAME")
    password = _password(password_file, environ)
    context = _verifying_context(ca_file)
    return Icinga2Api(url, host, port, user, password, ca_file, check_source, ttl, context)


def parse_api_url(url: str) -> tuple[str, int]:
    """``https://HOST[:PORT]`` to its host and port; one clear line when it is not that.

    A URL that holds a user name, a password, a query or a fragment is not shown: any
    of them may be a secret.
    """
    import urllib.parse

    if "@" in url:
        raise InvalidArgument(
            "--icinga2-api (not shown): it holds user@ or user:password@; give the user with "
            "--icinga2-user and the password with --icinga2-password-file"
        )
    if "?" in url or "#" in url:
        raise InvalidArgument(
            "--icinga2-api (not shown): it holds a query (?) or a fragment (#); give "
            "https://HOST[:PORT] alone"
        )
    unusable = InvalidArgument(
        f"--icinga2-api {url!r} is not https://HOST[:PORT] (the API speaks only HTTPS)"
    )
    if not url.isprintable() or " " in url:
        raise unusable
    try:
        parsed = urllib.parse.urlsplit(url)
    except ValueError:  # an unclosed [IPv6 address
        raise unusable from None
    if parsed.scheme != "https" or not parsed.hostname:
        raise unusable
    try:
        port = parsed.port
    except ValueError:  # not a number, or above 65535
        port = 0
    if port == 0 or parsed.netloc.endswith(":"):
        raise InvalidArgument(
            f"--icinga2-api {url!r} has no usable port: give 1 to 65535, or leave it out "
            f"for {DEFAULT_PORT}"
        )
    if parsed.path.strip("/"):
        raise unusable
    return parsed.hostname, port or DEFAULT_PORT


def _verifying_context(ca_file: str | None) -> ssl.SSLContext:
    """The context that verifies the API: the CA file must hold a certificate."""
    import ssl

    if ca_file is None:
        return ssl.create_default_context()
    try:
        return ssl.create_default_context(cafile=ca_file)
    except OSError as error:
        if isinstance(error, ssl.SSLError):  # OpenSSL does not say more than that
            raise InvalidArgument(
                f"--icinga2-ca {ca_file!r} holds no usable PEM certificate"
            ) from None
        reason = error.strerror or error.__class__.__name__
        raise InvalidArgument(f"cannot read --icinga2-ca {ca_file!r}: {reason}") from None


def _password(path: str | None, environ: Mapping[str, str]) -> str:
    if path is not None:
        try:
            with open(path, encoding="utf-8") as handle:
                password = handle.readline().rstrip("\r\n")
        except OSError as error:
            reason = error.strerror or error.__class__.__name__
            raise InvalidArgument(
                f"cannot read --icinga2-password-file {path!r}: {reason}"
            ) from None
        except UnicodeDecodeError:
            raise InvalidArgument(f"--icinga2-password-file {path!r} is not UTF-8") from None
        if not password:
            raise InvalidArgument(f"--icinga2-password-file {path!r} is empty")
        return password
    password = environ.get(PASSWORD_VARIABLE, "")
    if not password:
        raise InvalidArgument(
            f"--icinga2-api needs a password: --icinga2-password-file PATH or the "
            f"environment variable {PASSWORD_VARIABLE}"
        )
    return password
