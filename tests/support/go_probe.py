"""The Go tool's texts that the drop-in probe must match, byte for byte.

Layer: tests (support). The pure-logic flag tests compare ``usage()`` with this, and the
compatibility suite compares the installed ``grpc_health_probe``'s output.
"""

from __future__ import annotations

# The Go tool's flag definitions (main.go of grpc-ecosystem/grpc-health-probe), as Go's
# flag.PrintDefaults lays them out, copied from the Go source. -no-proxy, -rpc-header-file,
# -wait and -watch are ours.
GO_USAGE = """\
Usage:
  -addr string
    \t(required) tcp host:port to connect
  -alts
    \tuse ALTS (default: false, INSECURE plaintext transport)
  -connect-timeout duration
    \ttimeout for establishing connection (default 1s)
  -gzip
    \tuse GZIPCompressor for requests and GZIPDecompressor for response (default: false)
  -no-proxy
    \tignore *_proxy variables (not in the Go tool)
  -rpc-header value
    \tadditional RPC headers in 'name: value' format. May specify more than one via \
multiple flags.
  -rpc-header-file string
    \tfile of additional RPC headers, one 'name: value' per line; keeps values out of \
the process list (not in the Go tool)
  -rpc-timeout duration
    \ttimeout for health check rpc (default 1s)
  -service string
    \tservice name to check (default: "")
  -spiffe
    \tuse SPIFFE to obtain mTLS credentials
  -tls
    \tuse TLS (default: false, INSECURE plaintext transport)
  -tls-ca-cert string
    \t(with -tls, optional) file containing trusted certificates for verifying server
  -tls-client-cert string
    \t(with -tls, optional) client certificate for authenticating to the server \
(requires -tls-client-key)
  -tls-client-key string
    \t(with -tls) client private key for authenticating to the server \
(requires -tls-client-cert)
  -tls-no-verify
    \t(with -tls) don't verify the certificate (INSECURE) presented by the server \
(default: false)
  -tls-server-name string
    \t(with -tls) override the hostname used to verify the server certificate
  -user-agent string
    \tuser-agent header value of health check requests (default "grpc_health_probe")
  -v\tverbose logs
  -version
    \tshow probe version and exit
  -wait duration
    \tkeep trying until SERVING for up to this long; then the last attempt's exit code \
(not in the Go tool)
  -watch
    \tprint every status the server reports (not in the Go tool)"""
