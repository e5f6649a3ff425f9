"""Host names as the resolver and the Domain table see them.

One function decides what a host is, so a domain stored by an operator and a Host header sent
by a browser meet in the same form: lowercase ASCII (IDN as punycode), no port, no trailing dot.
"""

import re

_LABEL_RE = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)\Z")
_IPV4_RE = re.compile(r"^\d{1,3}(\.\d{1,3}){3}\Z")
_IPV6_RE = re.compile(r"^\[[0-9a-f:.]+\]\Z")
MAX_HOST_LENGTH = 253


def split_host_port(raw: str) -> tuple[str, str]:
    """Split ``host[:port]`` (IPv6 in brackets); the host part is returned as given."""
    raw = raw.strip()
    if raw.startswith("["):
        end = raw.find("]")
        if end == -1:
            return raw, ""
        host, rest = raw[: end + 1], raw[end + 1 :]
        return host, rest[1:] if rest.startswith(":") else ""
    if raw.count(":") == 1:
        host, port = raw.split(":")
        return host, port
    return raw, ""


def normalize_host(raw: str) -> str | None:
    """The canonical form of a host name (port removed), or None if it is not a valid host."""
    if not isinstance(raw, str) or not raw or len(raw) > 2 * MAX_HOST_LENGTH:
        return None
    host, port = split_host_port(raw)
    if port and not (port.isascii() and port.isdigit() and len(port) <= 5):
        return None
    host = host.lower()
    if host.endswith("."):
        host = host[:-1]  # the fully-qualified form names the same host
    if _IPV6_RE.match(host):
        return host
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            return None
    if _IPV4_RE.match(host):
        return host if _valid_ipv4(host) else None
    if len(host) > MAX_HOST_LENGTH:
        return None
    if not all(_LABEL_RE.match(label) for label in host.split(".")):
        return None
    return host


def parse_host_header(raw: str) -> tuple[str | None, str]:
    """(normalised host or None, port) of a Host header."""
    return normalize_host(raw), split_host_port(raw)[1]


def _valid_ipv4(host: str) -> bool:
    return all(0 <= int(part) <= 255 for part in host.split("."))
