"""A listener for the inline evasion cases that the lab's own services do not
cover (run inside the camera's namespace by tests/evasion/test_inline_evasion.py).

    python -m tests.evasion.inline_receiver ADDRESS PORT:BYTES [PORT:BYTES ...]

Per connection it counts what arrives and answers b"ok" once it holds BYTES
bytes: the whole exploit. So "answered" means the complete attack reached the
device, whatever the protocol (an HTTP request on 8080, a TLS ClientHello on
443), and a box that drops the completing segment leaves it unanswered."""
from __future__ import annotations

import socket
import sys
import threading


def _serve_one(conn: socket.socket, needed: int) -> None:
    held = 0
    with conn:
        conn.settimeout(10)
        try:
            while held < needed:
                data = conn.recv(65536)
                if not data:
                    return
                held += len(data)
            conn.sendall(b"ok")
        except OSError:
            return


def _listen(address: str, port: int, needed: int) -> None:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    server = socket.socket(family, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((address, port))
    server.listen(16)
    while True:
        conn, _ = server.accept()
        threading.Thread(target=_serve_one, args=(conn, needed), daemon=True).start()


def main(address: str, specs: list[str]) -> None:
    threads = []
    for spec in specs:
        port, needed = (int(x) for x in spec.split(":"))
        thread = threading.Thread(target=_listen, args=(address, port, needed), daemon=True)
        thread.start()
        threads.append(thread)
    for thread in threads:
        thread.join()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
