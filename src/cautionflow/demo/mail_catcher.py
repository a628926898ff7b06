"""A local SMTP catcher for `make demo`: accepts every message on a loopback port and saves it
as an .eml file, so the demo's digests can be opened and read. Never for production.

    python -m cautionflow.demo.mail_catcher --port 1025 --out var/demo/mail
"""

from __future__ import annotations

import argparse
import signal
import threading
from pathlib import Path
from typing import Any


class SaveToFolder:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.count = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        with self.lock:
            self.count += 1
            number = self.count
        recipients = "_".join(r.split("@")[0] for r in envelope.rcpt_tos)[:60]
        (self.folder / f"{number:04d}-{recipients}.eml").write_bytes(envelope.original_content or envelope.content)
        return "250 Message accepted for delivery"


def main(argv: list[str] | None = None) -> int:
    from aiosmtpd.controller import Controller

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1025)
    parser.add_argument("--out", default="var/demo/mail")
    args = parser.parse_args(argv)
    folder = Path(args.out)
    folder.mkdir(parents=True, exist_ok=True)
    controller = Controller(SaveToFolder(folder), hostname=args.host, port=args.port)
    controller.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print(f"demo mail catcher on {args.host}:{args.port}, saving to {folder}", flush=True)
    stop.wait()
    controller.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
