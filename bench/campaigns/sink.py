"""The SMTP server both senders of the dispatch benchmark send to: aiosmtpd on loopback, in a
process of its own, counting what it accepts (its Message-IDs, to check nothing is missing).

    python bench/campaigns/sink.py PORT    (prints "ready"; on a line "count" on stdin, prints
                                            the messages and distinct Message-IDs so far)
"""

from __future__ import annotations

import sys
import threading

from aiosmtpd.controller import Controller


class Counter:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.n = 0
        self.ids: set[bytes] = set()

    async def handle_DATA(self, server, session, envelope):
        content = envelope.original_content or envelope.content
        head = content.split(b"\r\n\r\n", 1)[0]
        mid = next((line for line in head.split(b"\r\n")
                    if line.lower().startswith(b"message-id:")), b"")  # fmt: skip
        with self.lock:
            self.n += 1
            self.ids.add(mid)
        return "250 OK"


def main(port: int) -> None:
    h = Counter()
    c = Controller(h, hostname="127.0.0.1", port=port)
    c.start()
    print("ready", flush=True)
    for line in sys.stdin:
        if line.strip() == "count":
            with h.lock:
                print(f"{h.n} {len(h.ids)}", flush=True)
    c.stop()


if __name__ == "__main__":
    main(int(sys.argv[1]))
