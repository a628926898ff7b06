"""Benchmark: 1,000 recipients' digests rendered and delivered, beside Airflow's classic way.

    python -m bench.digests [--recipients 1000] [--alerts 600] [--areas 30] [--security starttls|none]

A local aiosmtpd server runs in its own process (as a mail server would), with STARTTLS and a
throwaway self-signed certificate by default: `security: starttls` is cautionflow's default and
`smtp_starttls = True` is Airflow's. Two timings in the same run, against the same server:

* **cautionflow**: the `digests` step end to end: read the register, select and hash each
  recipient's rows, render the HTML and text templates and the CSV, write the outbox, then send
  through `max_concurrency` reused aiosmtplib connections, recording each acceptance and its
  disclosures before that connection sends again (acceptances arriving together share a commit).
* **baseline**: the very same messages (taken from the outbox, so it renders nothing) sent the way
  Airflow's classic email operator sends (`airflow.utils.email.send_mime_email`): a new smtplib
  connection per message (connect, EHLO, STARTTLS, EHLO, MAIL, RCPT, DATA, QUIT), one after another.

Goals: cautionflow at least 5x faster than the baseline and at least 200 messages a second. The
server counts distinct Message-IDs per recipient to show every digest arrived exactly once, and a
rerun of the day shows the outbox sending nothing twice. Synthetic data only (example domains).
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import smtplib  # the baseline only: the product sends with aiosmtplib
import socket
import ssl
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

AS_OF = dt.date(2026, 11, 23)
CODES = ("VIP", "NFO", "NMO", "NLF", "DOG", "WPN", "HAZ", "SPOC", "CM", "DNV", "AGY", "OFF", "XXZ")
STREETS = ("Larkspur Close", "Mill Lane", "Quay Street", "Orchard Way", "Station Road", "Beech Grove", "Kiln Row")
TOWNS = ("Eastwick", "Westerby", "Northam", "Southcote", "Middlemere", "Highfold")
NAMES = ("Alex Example", "Sam Sample", "Eve Example", "Jo Testing", "Zoë Placeholder", "Rhys Dummy", "Nia Demo")

SERVER = textwrap.dedent(
    """
    import ssl, sys, time
    from aiosmtpd.controller import Controller

    class Counter:
        def __init__(self):
            self.ids = {}
            self.messages = 0

        async def handle_DATA(self, server, session, envelope):
            message_id = ""
            content = envelope.content
            head = content[: content.find(b"\\r\\n\\r\\n")]  # the headers only: counting stays cheap
            for line in head.split(b"\\r\\n"):
                if line[:11].lower() == b"message-id:":
                    message_id = line[11:].strip().decode()
            for rcpt in envelope.rcpt_tos:
                self.ids.setdefault(rcpt, set()).add(message_id)
            self.messages += 1
            return "250 2.0.0 Ok: queued"

    port, cert, key = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    context = None
    if cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
    handler = Counter()
    controller = Controller(handler, hostname="127.0.0.1", port=port, server_hostname="mx.bench.example",
                            tls_context=context, require_starttls=context is not None, ready_timeout=30)
    controller.start()
    print("ready", flush=True)
    for command in sys.stdin:
        if command.strip() == "count":
            distinct = sum(len(v) for v in handler.ids.values())
            print(handler.messages, len(handler.ids), distinct, time.process_time(), flush=True)
        elif command.strip() == "reset":
            handler.ids.clear()
            handler.messages = 0
            print("ok", flush=True)
    controller.stop()
    """
)


class BenchServer:
    """aiosmtpd in a child process, counting messages and distinct Message-IDs per recipient."""

    def __init__(self, folder: Path, tls: bool) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        cert = key = ""
        if tls:
            cert, key = (str(p) for p in make_certificate(folder))
        self.cert = cert
        script = folder / "server.py"
        script.write_text(SERVER)
        self.process = subprocess.Popen(
            [sys.executable, str(script), str(self.port), cert, key],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        assert self.process.stdout.readline().strip() == "ready"

    def ask(self, command: str) -> str:
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self.process.stdout.readline().strip()

    def count(self) -> tuple[int, int, int, float]:
        """Messages, recipients and distinct Message-IDs so far, and the server's CPU seconds."""
        messages, recipients, distinct, cpu = self.ask("count").split()
        return int(messages), int(recipients), int(distinct), float(cpu)

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=30)


def make_certificate(folder: Path) -> tuple[Path, Path]:
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cautionflow bench")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


def synthetic_alerts(count: int, areas: list[str], rng: random.Random) -> list[dict]:
    from tests.support import alert_row

    rows = []
    for n in range(count):
        area = areas[n % len(areas)]
        person = rng.random() < 0.8
        rows.append(
            alert_row(
                alert_id=f"CX-{n:06d}", alert_code=rng.choice(CODES), area=area,
                subject_type="person" if person else "address",
                person_ref=f"P{n:06d}" if person else None, person_name=rng.choice(NAMES) if person else None,
                asset_ref=f"H{n:06d}", address=f"{1 + n % 140} {rng.choice(STREETS)}, {rng.choice(TOWNS)}",
                postcode=f"EW{1 + n % 9} {n % 10}{'ABDEFGHJLN'[n % 10]}{'PQRSTUWXYZ'[n // 10 % 10]}",
                effective_from=(AS_OF - dt.timedelta(days=rng.randrange(10, 700))).isoformat(),
                note="Synthetic incident narrative that must never leave the register.",
            )
        )
    return rows


def recipients(count: int, areas: list[str], rng: random.Random) -> list[dict]:
    out_of_hours = max(1, count // 100)
    found = []
    for n in range(count):
        if n < out_of_hours:
            found.append({"name": f"Call Centre {n + 1}", "email": f"desk{n + 1}@callcentre.example",
                          "role": "out_of_hours"})
        else:
            found.append({"name": f"Contractor {n + 1} Ltd", "email": f"rota{n + 1}@contractor{n % 97}.example",
                          "role": "contractor", "areas": rng.sample(areas, rng.randint(1, 3))})
    return found


def baseline(messages: list[tuple[str, str, bytes]], port: int, context: ssl.SSLContext | None) -> float:
    """As airflow.utils.email.send_mime_email: per message a new connection, STARTTLS, send, QUIT."""
    start = time.perf_counter()
    for sender, recipient, data in messages:
        conn = smtplib.SMTP(host="127.0.0.1", port=port, timeout=30)
        if context is not None:
            conn.starttls(context=context)
        conn.sendmail(sender, [recipient], data)
        conn.quit()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipients", type=int, default=1000)
    parser.add_argument("--alerts", type=int, default=600)
    parser.add_argument("--areas", type=int, default=30)
    parser.add_argument("--security", choices=["starttls", "none"], default="starttls")
    parser.add_argument("--concurrency", type=int, default=None, help="smtp.max_concurrency (default: the config's 4)")
    args = parser.parse_args(argv)

    from sqlalchemy import create_engine, text
    from tests.support import write_sqlite_source

    from cautionflow.config import parse_config
    from cautionflow.steps import run_deadlines, run_digests, run_sync

    rng = random.Random(23)
    areas = [f"AREA{n:02d}" for n in range(1, args.areas + 1)]
    with tempfile.TemporaryDirectory(prefix="cautionflow-bench-") as tmp:
        folder = Path(tmp)
        server = BenchServer(folder, tls=args.security == "starttls")
        try:
            context = ssl.create_default_context(cafile=server.cert) if server.cert else None
            write_sqlite_source(folder / "housing.db", synthetic_alerts(args.alerts, areas, rng))
            smtp = {"host": "127.0.0.1", "port": server.port, "security": args.security,
                    "sender": "Example Homes <alerts@example.org>"}
            if args.concurrency:
                smtp["max_concurrency"] = args.concurrency
            config = parse_config(
                {"organisation": "Example Homes", "policy": "dover", "register_url": f"sqlite:///{folder}/register.db",
                 "source": {"url": f"sqlite:///{folder}/housing.db"}, "output_dir": str(folder / "reports"),
                 "smtp": smtp, "recipients": recipients(args.recipients, areas, rng)},
                home=Path.cwd(),
            )
            run_sync(config, as_of=AS_OF, run_id="bench-sync")
            run_deadlines(config, as_of=AS_OF, run_id="bench-deadlines")

            before = server.count()
            start, cpu = time.perf_counter(), time.process_time()
            summary = run_digests(config, as_of=AS_OF, run_id="bench-digests", tls_context=context)
            ours, ours_cpu = time.perf_counter() - start, time.process_time() - cpu
            ours_count = server.count()
            start = time.perf_counter()
            rerun = run_digests(config, as_of=AS_OF, run_id="bench-rerun", tls_context=context)
            rerun_seconds = time.perf_counter() - start

            engine = create_engine(config.register_url)
            with engine.connect() as conn:
                stored = conn.execute(text("SELECT recipient_email, message FROM outbox ORDER BY id")).all()
            engine.dispose()
            messages = [("alerts@example.org", email, message.encode("utf-8")) for email, message in stored]
            size = sum(len(m[2]) for m in messages) / max(1, len(messages))
            server.ask("reset")
            before_base = server.count()
            cpu = time.process_time()
            base = baseline(messages, server.port, context)
            base_cpu = time.process_time() - cpu
            base_count = server.count()
        finally:
            server.close()

    n = summary["sent"]
    ratio = base / ours
    print(f"digests: {args.recipients:,} recipients, {args.alerts:,} alerts in {args.areas} areas, "
          f"security={args.security}, max_concurrency={config.smtp.max_concurrency}, "
          f"mean message {size / 1024:.1f} KiB")
    print(f"cautionflow  {ours:7.2f}s  {n / ours:7.1f} msgs/s   (render + outbox + concurrent reused connections; "
          f"sent={n}, failed={summary['failed']}, pending={summary['pending']})")
    print(f"baseline     {base:7.2f}s  {len(messages) / base:7.1f} msgs/s   (same messages, new smtplib connection each, "
          f"one after another)")
    print(f"ratio        {ratio:7.2f}x  goal >= 5x {'OK' if ratio >= 5 else 'BELOW GOAL'};  "
          f"throughput goal >= 200 msgs/s {'OK' if n / ours >= 200 else 'BELOW GOAL'}")
    print(f"cpu seconds  cautionflow client {ours_cpu:.2f} / server {ours_count[3] - before[3]:.2f};  "
          f"baseline client {base_cpu:.2f} / server {base_count[3] - before_base[3]:.2f}")
    ours_total = ours_cpu + ours_count[3] - before[3]
    base_total = base_cpu + base_count[3] - before_base[3]
    print(f"cpu total    cautionflow {ours_total:.2f}s / baseline {base_total:.2f}s ({base_total / ours_total:.2f}x): "
          f"the wall-clock ratio tends to this when no core is idle (a loaded machine)")
    print(f"exactly once: server saw {ours_count[0]} messages for {ours_count[1]} recipients, "
          f"{ours_count[2]} distinct Message-IDs; rerun of the day: sent={rerun['sent']}, "
          f"already_sent={rerun['already_sent']} in {rerun_seconds:.2f}s (baseline run: {base_count[0]} messages)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
