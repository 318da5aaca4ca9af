"""A threaded HTTP server on 127.0.0.1 for the fake Hub and the fake ModelScope."""
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def serve(handler: type[BaseHTTPRequestHandler], owner) -> tuple[ThreadingHTTPServer, str]:
    """Serve `handler` with `handler.hub = owner` on a free port; returns (server, base URL)."""
    handler = type(handler.__name__, (handler,), {"hub": owner})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def shut(server: ThreadingHTTPServer) -> None:
    server.shutdown()
    server.server_close()
