"""A probe-ready gRPC server (sync API): health, per-service status, reflection, drain.

Run it:  python server.py --port 50051
Check:   grpc_health_probe -addr=127.0.0.1:50051 -service=readiness

On SIGTERM (what Kubernetes sends first) it marks every service NOT_SERVING, keeps
answering for --drain-seconds so readiness probes see the change and traffic moves
away, and only then stops the server.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

# Separate names, so a liveness probe never kills a pod that is only not ready.
LIVENESS = "liveness"
READINESS = "readiness"
# grpcio turns SO_REUSEPORT on by default: a second server on a port that is taken then
# starts "successfully", and the kernel splits connections between the two. Refuse it.
SERVER_OPTIONS = [("grpc.so_reuseport", 0)]


def serve(host: str, port: int, drain_seconds: float) -> None:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=10), options=SERVER_OPTIONS)

    # Register your own services here, e.g. orders_pb2_grpc.add_OrdersServicer_to_server(...).

    health_servicer = health.HealthServicer(experimental_non_blocking=False)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)

    service_names = [health_pb2.DESCRIPTOR.services_by_name["Health"].full_name]
    try:
        from grpc_reflection.v1alpha import reflection
    except ImportError:
        pass  # pip install grpcio-reflection to let clients list services
    else:
        service_names.append(reflection.SERVICE_NAME)
        reflection.enable_server_reflection(service_names, server)

    try:
        bound = server.add_insecure_port(f"{host}:{port}")
    except RuntimeError:  # grpcio's "Failed to bind": the port is taken, or not ours
        sys.exit(f"cannot listen on {host}:{port}: the port is in use or the address is not local")
    server.start()

    # Alive as soon as the process serves; ready once start-up work is done.
    health_servicer.set(LIVENESS, health_pb2.HealthCheckResponse.SERVING)
    # ... warm caches, open database pools, then:
    health_servicer.set(READINESS, health_pb2.HealthCheckResponse.SERVING)
    health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    print(f"listening on {host}:{bound}", flush=True)

    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stopping.set())
    signal.signal(signal.SIGINT, lambda signum, frame: stopping.set())
    stopping.wait()

    # 1. Tell every health client, Watch streams included, that we are going away.
    health_servicer.enter_graceful_shutdown()
    print("draining: all services NOT_SERVING", flush=True)
    # 2. Keep serving while load balancers and readiness probes notice.
    stopping.clear()
    stopping.wait(drain_seconds)
    # 3. Stop taking new RPCs, give in-flight ones a grace period, then exit.
    server.stop(grace=5).wait()
    print("stopped", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description="A probe-ready gRPC server.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=50051)
    parser.add_argument(
        "--drain-seconds",
        type=float,
        default=10.0,
        help="how long to answer NOT_SERVING before stopping (>= readiness period x threshold)",
    )
    args = parser.parse_args()
    serve(args.host, args.port, args.drain_seconds)


if __name__ == "__main__":
    main()
