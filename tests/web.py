"""Plain HTTP to a real server process, as a browser without JavaScript would: Host header,
cookies, CSRF token, redirects not followed."""

import re
import urllib.error
import urllib.request
from http.cookies import SimpleCookie
from urllib.parse import urlencode

_CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


_opener = urllib.request.build_opener(_NoRedirects)


class HttpSession:
    """Requests to ``http://127.0.0.1:<port>`` with a given Host (and any other headers),
    keeping the cookies it is sent."""

    def __init__(self, port: int, host: str, headers: dict | None = None):
        self.port, self.host, self.headers, self.cookies = port, host, headers or {}, {}

    def request(self, path, data=None):
        """(status, headers, body text) of a GET, or of a POST of ``data`` (a dict)."""
        headers = {"Host": self.host, **self.headers}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = urlencode(data).encode() if data is not None else None
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}", data=body, headers=headers
        )
        try:
            with _opener.open(request, timeout=15) as response:
                return self._read(response)
        except urllib.error.HTTPError as error:
            return self._read(error)

    def submit(self, path, data):
        """GET the form at ``path`` (for its CSRF token), then POST ``data`` to it."""
        status, _, page = self.request(path)
        assert status == 200, (status, page[:500])
        token = _CSRF_FIELD.search(page).group(1)
        return self.request(path, {"csrfmiddlewaretoken": token, **data})

    def _read(self, response):
        for header in response.headers.get_all("Set-Cookie") or []:
            for name, morsel in SimpleCookie(header).items():
                self.cookies[name] = morsel.value
        return response.status, response.headers, response.read().decode(errors="replace")
