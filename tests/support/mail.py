"""A real SMTP server process (aiosmtpd) on a loopback port, delivering into a Maildir."""

import mailbox
import re
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from email.message import Message

from tests.support.servers import free_ports

# A password-reset link in an email's text.
RESET_LINK = re.compile(r"http://[^\s/]+/reset/[^\s/]+/[^\s/]+/")


def text_of(message: Message) -> str:
    """The decoded text of a single-part message."""
    return message.get_payload(decode=True).decode(message.get_content_charset() or "utf-8")


class SmtpServer:
    def __init__(self, port: int, maildir):
        self.port, self.maildir = port, maildir
        self.url = f"smtp://127.0.0.1:{port}"

    def messages(self) -> list[Message]:
        return [
            mailbox.Maildir(self.maildir, create=False).get_message(key)
            for key in sorted(mailbox.Maildir(self.maildir, create=False).keys())
        ]

    def to(self, address: str) -> list[Message]:
        return [m for m in self.messages() if address in m["To"]]


@contextmanager
def smtp_server(tmp_path):
    """``aiosmtpd`` in its own process, storing every message it receives in a Maildir."""
    maildir = tmp_path / "maildir"
    mailbox.Maildir(maildir, create=True)
    port = next(free_ports("TEST_SMTP_PORTS", "6500-6549"), None)
    if port is None:
        raise RuntimeError("no free port in TEST_SMTP_PORTS")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "aiosmtpd",
            "-n",
            "-l",
            f"127.0.0.1:{port}",
            "-c",
            "aiosmtpd.handlers.Mailbox",
            str(maildir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_for_port(port, process)
        yield SmtpServer(port, maildir)
    finally:
        process.terminate()
        process.wait(timeout=10)


def _wait_for_port(port, process, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the SMTP server exited: {process.stderr.read().decode()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("the SMTP server did not start")
