#!/usr/bin/python
# Copyright: check-grpc-health contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0), or at your option
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later
"""Ansible module ``grpc_health.probe.grpc_health``: a deployment gate on gRPC health.

Layer: adapter (Ansible). An argument spec, one call into ``module_utils.gate`` (which calls
the core), then ``exit_json`` or ``fail_json``.
"""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: grpc_health
short_description: Check or wait for a gRPC server's health through grpc.health.v1.Health
version_added: 0.1.0
description:
  - Asks a gRPC server for its health through the standard gRPC Health Checking Protocol
    (C(grpc.health.v1.Health)), for the server as a whole or for named services.
  - With O(timeout=0) (the default) it checks once. With a O(timeout) it waits until every
    service reports the wanted O(state), following the server's C(Watch) stream so the task
    passes the moment the server turns healthy. Where the server answers C(Watch) with
    C(UNIMPLEMENTED) it polls C(Check) every O(sleep) seconds instead.
  - Use it to gate rolling deployments. Unlike M(ansible.builtin.wait_for), which only proves a
    TCP port is open, it passes only when the application itself reports the wanted state.
  - "The module runs where the task runs. Run it on the node to check a server on that node's
    loopback, or with C(delegate_to: localhost) to check the node over the network."
  - It changes nothing, so it always returns C(changed=false) and runs in check mode too.
author:
  - check-grpc-health maintainers (!UNKNOWN)
requirements:
  - python >= 3.10
  - grpcio >= 1.60
  - grpcio-health-checking >= 1.60
  - grpcio-reflection >= 1.60, only for O(all_services)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: The health check only reads, so it runs in check mode as it does otherwise.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  host:
    description:
      - The server to check.
      - A host name or IP address, with the port in O(port), or an address with its port
        such as C(db1:50051) or C([2001:db8::1]:50051).
      - Also C(unix:/path/to/socket), C(unix-abstract:name) and C(dns:///name:port).
      - "Also a URL: C(grpc://host:port) and C(http://host:port) connect in plaintext,
        C(grpcs://host:port) and C(https://host:port) with TLS (as O(tls=true)). Without a port
        C(http://) means port 80 and C(https://) port 443; C(grpc://) and C(grpcs://) need one.
        A URL takes no path."
      - A file path such as C(/run/app.sock) is refused; write C(unix:/run/app.sock).
    type: str
    required: true
  port:
    description:
      - The TCP port, when O(host) does not include one.
    type: int
  service:
    description:
      - The service or services to check, by the names the server registers them under,
        for example C(grpc.health.v1.Health) or C(my.package.Orders).
      - The empty string asks for the server's overall health.
      - A string or a list. With a list, every service must reach the wanted O(state).
        A name listed twice is checked once.
    type: list
    elements: str
    default: [""]
  all_services:
    description:
      - Check the overall health and every service the server lists through gRPC server
        reflection, instead of the services in O(service).
      - The list is read once, at the first connection; while the server is not up yet it is
        retried every O(sleep) seconds within O(timeout).
      - Needs the Python package C(grpcio-reflection) where the module runs, and reflection
        enabled on the server.
    type: bool
    default: false
  state:
    description:
      - The status to wait for.
      - V(serving) passes when every service reports C(SERVING).
      - V(not_serving) passes when every service reports C(NOT_SERVING), for waiting until a
        node has drained before it is taken out of service.
      - A connection that cannot be made never counts as either state.
    type: str
    choices: [serving, not_serving]
    default: serving
  timeout:
    description:
      - How many seconds to wait for the wanted O(state), counted from the start of the task,
        O(delay) included, as in M(ansible.builtin.wait_for).
      - V(0) checks once and fails at once when the state is not the wanted one.
    type: float
    default: 0
  delay:
    description:
      - Seconds to wait before the first check.
    type: float
    default: 0
  sleep:
    description:
      - Seconds between polls when the server does not implement C(Watch), and between
        attempts to connect to a server that is not up yet.
    type: float
    default: 1
  connect_timeout:
    description:
      - Seconds to wait for one connection to become ready, TLS handshake included.
    type: float
    default: 5
  rpc_timeout:
    description:
      - Seconds to wait for one health C(Check) RPC to answer.
    type: float
    default: 5
  tls:
    description:
      - Connect with TLS.
      - Defaults to V(true) when O(ca_cert), O(client_cert), O(client_key) or O(server_name)
        is set, or O(host) starts with C(grpcs://) or C(https://), and to V(false) otherwise.
    type: bool
  ca_cert:
    description:
      - A PEM file of CA certificates to verify the server with, instead of the system's
        trusted roots.
    type: path
  client_cert:
    description:
      - A PEM client certificate, for servers that require mutual TLS.
      - Requires O(client_key).
    type: path
  client_key:
    description:
      - The unencrypted PEM private key of O(client_cert).
    type: path
  server_name:
    description:
      - The name to expect in the server's certificate and to send as TLS SNI, when it
        differs from O(host); for example when connecting to an IP address.
    type: str
  validate_certs:
    description:
      - Verify the server's certificate.
      - With V(false), the module fetches the certificate the server presents and trusts
        exactly that one for the check. The traffic is still encrypted, but the server is
        not authenticated.
    type: bool
    default: true
  metadata:
    description:
      - Request headers (gRPC metadata) to send with every health RPC, for example an
        authorization token.
      - Keys are lowercase letters, digits, C(-), C(_) and C(.).
      - Values are treated as secrets and never appear in results or messages.
    type: dict
  authority:
    description:
      - The C(:authority) pseudo-header to send, when the server or a proxy routes on it.
    type: str
  use_proxy:
    description:
      - Use the HTTP proxy named in the environment, as grpcio does on its own.
      - grpcio reads only the lower-case variables C(grpc_proxy), C(https_proxy) and
        C(http_proxy) (the first one set wins; only C(http://) proxy URLs work) and skips the
        hosts listed in C(no_grpc_proxy) or C(no_proxy).
      - With V(false) the module always connects directly, as with
        M(ansible.builtin.uri)'s O(ansible.builtin.uri#module:use_proxy).
    type: bool
    default: true
notes:
  - The module follows the server's C(Watch) stream while it waits, so the gate passes
    within milliseconds of the server turning healthy.
  - The managed node (or the host the task is delegated to) needs the Python packages
    C(grpcio) and C(grpcio-health-checking), and C(grpcio-reflection) for O(all_services);
    the collection's C(requirements.txt) lists them.
seealso:
  - module: ansible.builtin.wait_for
  - name: gRPC Health Checking Protocol
    description: The protocol this module speaks.
    link: https://github.com/grpc/grpc/blob/master/doc/health-checking.md
"""

EXAMPLES = r"""
- name: Check once that the server is healthy
  grpc_health.probe.grpc_health:
    host: 127.0.0.1
    port: 50051

- name: Wait up to two minutes for two services to turn SERVING after a deploy
  grpc_health.probe.grpc_health:
    host: "{{ inventory_hostname }}"
    port: 50051
    service:
      - my.package.Orders
      - my.package.Payments
    timeout: 120
  delegate_to: localhost

- name: Wait until every service the server lists through reflection is SERVING
  grpc_health.probe.grpc_health:
    host: 127.0.0.1
    port: 50051
    all_services: true
    timeout: 60

- name: Wait until the node has drained
  grpc_health.probe.grpc_health:
    host: 127.0.0.1
    port: 50051
    state: not_serving
    timeout: 60

- name: Check over mutual TLS with a token
  grpc_health.probe.grpc_health:
    host: api.example.com:443
    ca_cert: /etc/pki/grpc/ca.pem
    client_cert: /etc/pki/grpc/client.pem
    client_key: /etc/pki/grpc/client.key
    metadata:
      authorization: "Bearer {{ health_token }}"
"""

RETURN = r"""
status:
  description:
    - The last status seen for each service, by service name (the empty string is the
      overall health).
    - One of V(SERVING), V(NOT_SERVING), V(UNKNOWN), V(SERVICE_UNKNOWN), or V(null) when the
      server gave no status (no connection, or an RPC error such as C(NOT_FOUND)).
    - Empty when O(all_services) could not list the services.
  returned: always
  type: dict
  sample: {"": "SERVING", "my.package.Orders": "SERVING"}
elapsed:
  description: Seconds the task took, O(delay) included.
  returned: always
  type: float
  sample: 2.315
attempts:
  description:
    - How many times the module asked the server for health, C(Check) rounds, C(Watch)
      streams and polls together. A C(Check) round whose connection failed counts too.
    - V(0) when it never asked, after a bad argument or when O(all_services) could not
      list the services.
  returned: always
  type: int
  sample: 2
method:
  description:
    - How the module asked. V(check) for a single round of C(Check), V(watch) when it
      followed C(Watch) streams, V(poll) when it polled C(Check) because C(Watch) is
      unimplemented.
    - V(null) exactly when RV(attempts) is V(0).
  returned: always
  type: str
  sample: watch
time:
  description:
    - Seconds the last successful C(Check) round took, its RPCs and, when that round made
      the connection, connecting.
    - After a wait the round runs on the connection the wait already had, so this is close
      to RV(rpc_time).
  returned: always; V(null) when no C(Check) round succeeded
  type: float
  sample: 0.0123
connect_time:
  description:
    - Seconds the connection took to become ready, TLS handshake included, measured when
      the module made it.
  returned: >-
    always; V(null) when no connection was made, or when a C(Watch) stream made it while
    waiting for a server that was not up yet
  type: float
  sample: 0.0051
rpc_time:
  description: Seconds the health RPCs of the last successful C(Check) round took.
  returned: always; V(null) when no C(Check) round succeeded
  type: float
  sample: 0.0023
diagnosis:
  description:
    - Why the check failed, found after the failure (never on success), within O(connect_timeout)
      and at most 2 seconds. A failed task says the same cause, with the fix, in its C(msg).
    - V(null) when the check passed or failed without a diagnosis (for example an unhealthy
      status, which needs none).
  returned: always
  type: dict
  sample:
    kind: tls_required
    cause: the server speaks TLS
    hint: "add tls: true"
    proxy: null
  contains:
    kind:
      description:
        - A stable name of the cause, for example V(tls_required), V(plaintext_server),
          V(cert_untrusted), V(name_mismatch), V(cert_expired), V(client_cert_required),
          V(http1_server), V(refused), V(no_answer), V(silent_peer), V(name_not_found),
          V(no_health_service), V(compression_unsupported), V(http2_not_grpc).
      type: str
    cause:
      description: The cause in words, without option names.
      type: str
    hint:
      description:
        - What to change, naming this module's options; V(null) when there is nothing to set.
      type: str
    proxy:
      description: The HTTP proxy the connection went through (credentials removed), or V(null).
      type: str
"""

from typing import Any  # noqa: E402

from ansible.module_utils.basic import AnsibleModule, missing_required_lib  # noqa: E402

from ansible_collections.grpc_health.probe.plugins.module_utils.gate import (  # noqa: E402
    GRPC_IMPORT_ERROR,
    run_gate,
)

ARGUMENT_SPEC: dict[str, Any] = {
    "host": {"type": "str", "required": True},
    "port": {"type": "int"},
    "service": {"type": "list", "elements": "str", "default": [""]},
    "all_services": {"type": "bool", "default": False},
    "state": {"type": "str", "choices": ["serving", "not_serving"], "default": "serving"},
    "timeout": {"type": "float", "default": 0},
    "delay": {"type": "float", "default": 0},
    "sleep": {"type": "float", "default": 1},
    "connect_timeout": {"type": "float", "default": 5},
    "rpc_timeout": {"type": "float", "default": 5},
    "tls": {"type": "bool"},
    "ca_cert": {"type": "path"},
    "client_cert": {"type": "path"},
    "client_key": {"type": "path"},
    "server_name": {"type": "str"},
    "validate_certs": {"type": "bool", "default": True},
    "metadata": {"type": "dict", "no_log": True},
    "authority": {"type": "str"},
    "use_proxy": {"type": "bool", "default": True},
}


def main() -> None:
    """Run the gate and report it the Ansible way."""
    module = AnsibleModule(
        argument_spec=ARGUMENT_SPEC,
        required_together=[("client_cert", "client_key")],
        supports_check_mode=True,
    )
    if GRPC_IMPORT_ERROR is not None:
        module.fail_json(
            msg=missing_required_lib("grpcio and grpcio-health-checking"),
            exception=GRPC_IMPORT_ERROR,
        )
    outcome = run_gate(module.params)
    if outcome.passed:
        module.exit_json(changed=False, msg=outcome.msg, **outcome.values)
    module.fail_json(msg=outcome.msg, changed=False, **outcome.values)


if __name__ == "__main__":
    main()
