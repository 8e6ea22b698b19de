"""A probe-ready gRPC server (asyncio API): the same contract as server.py.

Run it:  python server_asyncio.py --port 50051
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

LIVENESS = "liveness"
READINESS = "readiness"
# As in server.py: no SO_REUSEPORT, so a port that is taken is refused, not shared.
SERVER_OPTIONS = [("grpc.so_reuseport", 0)]


async def serve(host: str, port: int, drain_seconds: float) -> None:
    server = grpc.aio.server(options=SERVER_OPTIONS)

    # Register your own services here.

    health_servicer = health.aio.HealthServicer()
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
    await server.start()
    await health_servicer.set(LIVENESS, health_pb2.HealthCheckResponse.SERVING)
    await health_servicer.set(READINESS, health_pb2.HealthCheckResponse.SERVING)
    await health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    print(f"listening on {host}:{bound}", flush=True)

    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    await stopping.wait()

    await health_servicer.enter_graceful_shutdown()
    print("draining: all services NOT_SERVING", flush=True)
    await asyncio.sleep(drain_seconds)
    await server.stop(grace=5)
    print("stopped", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description="A probe-ready gRPC server (asyncio).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=50051)
    parser.add_argument("--drain-seconds", type=float, default=10.0)
    args = parser.parse_args()
    asyncio.run(serve(args.host, args.port, args.drain_seconds))


if __name__ == "__main__":
    main()
