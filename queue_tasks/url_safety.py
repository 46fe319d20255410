"""Fetching a web page a user named, without letting that URL reach inside our network (SSRF).

Rules: only http and https; the host is resolved once and every address it resolves to must be
public (not private, loopback, link-local, multicast, reserved or unspecified; IPv4 in any numeric
form, IPv6, and IPv4 embedded in IPv6 alike) unless `INKWELL_ALLOW_PRIVATE_URLS=true` or the
address is in `INKWELL_URL_ALLOWED_NETWORKS`; the connection goes to the address that was checked
(the URL is rewritten to it, with the Host header and TLS server name kept), so DNS cannot change
its answer between the check and the connect; each redirect hop (at most 5) is checked the same
way; the body is read up to a size cap and within one total time-out; only HTML is accepted.

It uses httpx2 (already installed: the openai SDK's HTTP library), async so a time-out or a
cancelled job stops the download at once, with proxies from the environment ignored (a proxy
would connect to a name we did not check).
"""

from __future__ import annotations

import asyncio
import codecs
import ipaddress
import re
import socket
import zlib
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import httpx2

from queue_tasks.errors import PermanentJobError, TransientJobError

MAX_REDIRECTS = 5
HTML_TYPES = ("text/html", "application/xhtml+xml")
REDIRECT_STATUSES = (301, 302, 303, 307, 308)
USER_AGENT = "InkwellBot/1.0 (website analysis for a content team)"
# Compressed pages are read through a decoder that never produces more than the size cap, so a
# small "zip bomb" cannot fill memory: the cap counts the page as decoded, not as sent.
ACCEPT_ENCODING = "gzip, deflate"
_ZLIB_WINDOW = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# A host name as sent in DNS queries and Host headers (IDNA already applied); "_" is seen in the wild.
_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_HOST_NAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\.?")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


# --- Errors ------------------------------------------------------------------------------------------


def url_refused(message: str) -> PermanentJobError:
    return PermanentJobError("url_refused", message)


# --- Which addresses may be fetched ------------------------------------------------------------------


def parse_ip_literal(host: str) -> IPAddress | None:
    """The address a host names by itself, or None for a DNS name.

    Accepts every form a resolver would: dotted quads, but also the integer, hex and octal IPv4
    forms (2130706433, 0x7f000001, 0177.0.0.1, 127.1) that getaddrinfo turns into addresses.
    """
    text = host.strip().strip("[]")
    text = text.split("%", 1)[0]  # an IPv6 zone id (fe80::1%eth0) names an interface, not a host
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    if re.fullmatch(r"[0-9a-fA-FxX.]+", text) and not text.endswith(".."):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(text))
        except OSError:
            return None
    return None


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, NAT64, 6to4, Teredo), if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    return None


def refusal_reason(address: IPAddress) -> str | None:
    """Why an address may not be fetched, or None when it is a public unicast address."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = embedded_ipv4(address)
        if inner is not None:
            reason = refusal_reason(inner)
            return f"an IPv6 form of {inner}, which is {reason}" if reason else None
    for check, reason in (
        ("is_unspecified", "unspecified"),
        ("is_loopback", "a loopback address"),
        ("is_link_local", "link-local"),
        ("is_multicast", "multicast"),
        ("is_private", "in a private range"),
        ("is_reserved", "in a reserved range"),
    ):
        if getattr(address, check):
            return reason
    if not address.is_global:
        return "not a public address"
    return None


@dataclass(frozen=True)
class AddressPolicy:
    allow_private: bool = False
    allowed_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()

    @classmethod
    def from_settings(cls, allow_private: bool, allowed_networks: str | None) -> AddressPolicy:
        networks = tuple(
            ipaddress.ip_network(part.strip(), strict=False) for part in (allowed_networks or "").split(",") if part.strip()
        )
        return cls(allow_private=allow_private, allowed_networks=networks)

    def check(self, address: IPAddress, host: str) -> None:
        """Raise url_refused unless this address may be fetched."""
        if self.allow_private or any(address in network for network in self.allowed_networks):
            return
        reason = refusal_reason(address)
        if reason is not None:
            shown = host if host.strip("[]") == str(address) else f"{host} ({address})"
            raise url_refused(
                f"Refused to fetch {shown}: the address is {reason}. Only public web addresses can be analysed "
                "(an operator can allow private ones with INKWELL_ALLOW_PRIVATE_URLS=true)."
            )


# --- Checking a URL and choosing the address to connect to -------------------------------------------


@dataclass(frozen=True)
class Target:
    url: str  # as the user (or a redirect) gave it
    scheme: str
    host: str  # the name, ASCII (IDNA), as sent in Host and TLS SNI
    port: int
    path: str  # path and query
    addresses: tuple[IPAddress, ...]  # the checked addresses; connections go only to these

    def connect_url(self, address: IPAddress) -> str:
        host = f"[{address}]" if address.version == 6 else str(address)
        return f"{self.scheme}://{host}:{self.port}{self.path}"

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        shown = f"[{self.host}]" if ":" in self.host else self.host
        return shown if self.port == default else f"{shown}:{self.port}"


def split_url(url: str) -> tuple[str, str, int, str]:
    """Scheme, ASCII host, port and path of an http(s) URL; refuses anything else."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as error:
        raise PermanentJobError("url_invalid", f"That is not a valid URL: {error}.") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise url_refused(f"Only http and https URLs can be fetched, not {scheme or 'a URL without a scheme'}:.")
    host = parts.hostname
    if not host:
        raise PermanentJobError("url_invalid", "The URL names no host.")
    if parts.username or parts.password:
        raise url_refused("URLs with a user name or password in them are not fetched.")
    try:
        ascii_host = host if host.isascii() else host.encode("idna").decode("ascii")
    except UnicodeError:
        raise PermanentJobError("url_invalid", f"The host name {host!r} is not a valid domain name.") from None
    if not _HOST_NAME.fullmatch(ascii_host) and parse_ip_literal(ascii_host) is None:
        raise PermanentJobError("url_invalid", f"The host name {host!r} is not a valid domain name.")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return scheme, ascii_host, port or (443 if scheme == "https" else 80), path


async def resolve_target(url: str, policy: AddressPolicy) -> Target:
    """Check the URL and every address its host resolves to; pick the one to connect to."""
    scheme, host, port, path = split_url(url)
    literal = parse_ip_literal(host)
    if literal is not None:
        addresses = [literal]
    else:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as error:
            raise TransientJobError("url_unreachable", f"The host {host} could not be found ({error.strerror}).") from None
        addresses = []
        for *_, sockaddr in infos:
            address = ipaddress.ip_address(sockaddr[0].split("%", 1)[0])
            if address not in addresses:
                addresses.append(address)
        if not addresses:
            raise TransientJobError("url_unreachable", f"The host {host} has no address.")
    # Every address must pass, not just the one we would pick: a name that also points inside
    # is refused as a whole.
    for address in addresses:
        policy.check(address, host)
    return Target(url=url, scheme=scheme, host=host, port=port, path=path, addresses=tuple(addresses))


# --- Fetching -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FetchedPage:
    url: str  # the final URL, after redirects
    content_type: str
    html: str
    size_bytes: int
    redirects: int


def _charset(content_type_header: str, head: bytes) -> str:
    match = re.search(r"charset=[\"']?([\w.:-]+)", content_type_header, re.IGNORECASE)
    if not match:
        match = re.search(rb"<meta[^>]+charset=[\"']?([\w.:-]+)", head[:2048], re.IGNORECASE)
    name = match.group(1) if match else "utf-8"
    name = name.decode("ascii", "replace") if isinstance(name, bytes) else name
    try:
        return codecs.lookup(name).name
    except LookupError:
        return "utf-8"


async def _connect(client: httpx2.AsyncClient, target: Target) -> httpx2.Response:
    """Send the request to the first checked address that accepts a connection (a host may have an
    IPv6 and an IPv4 address and listen on only one)."""
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    for index, address in enumerate(target.addresses):
        request = client.build_request(
            "GET",
            target.connect_url(address),
            headers={
                "Host": target.host_header,
                "User-Agent": USER_AGENT,
                "Accept": "text/html,application/xhtml+xml",
                "Accept-Encoding": ACCEPT_ENCODING,
            },
            extensions=extensions,
        )
        try:
            return await client.send(request, stream=True)
        except httpx2.ConnectError:
            if index == len(target.addresses) - 1:
                raise
    raise AssertionError("a target always has an address")


async def _fetch_once(client: httpx2.AsyncClient, target: Target, max_bytes: int) -> tuple[httpx2.Response, bytes]:
    response = await _connect(client, target)
    try:
        if response.status_code in REDIRECT_STATUSES or response.status_code >= 400:
            return response, b""
        content_type = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if content_type not in HTML_TYPES:
            raise PermanentJobError(
                "url_not_html",
                f"The page is {content_type or 'of no stated type'}, not an HTML page: only web pages can be analysed.",
            )
        declared = response.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > max_bytes:
            raise PermanentJobError("url_too_large", _too_large(max_bytes, f"it says it is {int(declared):,} bytes"))
        decoder = _BodyDecoder(response.headers.get("content-encoding", ""), max_bytes)
        async for chunk in response.aiter_raw():
            decoder.feed(chunk)
        return response, decoder.finish()
    finally:
        await response.aclose()


class _BodyDecoder:
    """The page's bytes, decompressed when the site compressed them, never more than max_bytes
    (sent or decoded): reading stops as soon as either is over."""

    def __init__(self, content_encoding: str, max_bytes: int):
        encoding = content_encoding.strip().lower()
        if encoding not in ("", "identity", *_ZLIB_WINDOW):
            raise PermanentJobError(
                "url_not_html", f"The site sent the page compressed as {encoding!r}, which cannot be read here."
            )
        self.encoding = encoding
        self.max_bytes = max_bytes
        self.received = 0
        self.body = bytearray()
        self._zlib = zlib.decompressobj(_ZLIB_WINDOW[encoding]) if encoding in _ZLIB_WINDOW else None
        self._started = False

    def feed(self, chunk: bytes) -> None:
        self.received += len(chunk)
        if self.received > self.max_bytes:
            # Stop reading here: the rest is never downloaded.
            raise PermanentJobError("url_too_large", _too_large(self.max_bytes, "it is larger"))
        if self._zlib is None:
            self.body += chunk
            return
        try:
            if not self._started and self.encoding == "deflate":
                self._started = True
                try:
                    self._decompress(chunk)
                    return
                except zlib.error:  # "deflate" sent without its zlib header, as some servers do
                    self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)
            self._decompress(chunk)
        except zlib.error:
            raise PermanentJobError("url_not_html", f"The page's {self.encoding} compression is broken.") from None

    def _decompress(self, data: bytes) -> None:
        room = self.max_bytes - len(self.body) + 1
        self.body += self._zlib.decompress(data, room)
        if len(self.body) > self.max_bytes or self._zlib.unconsumed_tail:
            raise PermanentJobError("url_too_large", _too_large(self.max_bytes, "it is larger once decompressed"))

    def finish(self) -> bytes:
        if self._zlib is not None:
            try:
                self.body += self._zlib.flush(self.max_bytes - len(self.body) + 1)
            except zlib.error:
                raise PermanentJobError("url_not_html", f"The page's {self.encoding} compression is broken.") from None
            if not self._zlib.eof:
                raise PermanentJobError("url_not_html", f"The page's {self.encoding} compression is broken (it ends early).")
            if len(self.body) > self.max_bytes:
                raise PermanentJobError("url_too_large", _too_large(self.max_bytes, "it is larger once decompressed"))
        return bytes(self.body)


def _too_large(max_bytes: int, how: str) -> str:
    return f"The page is too large to analyse: the limit is {max_bytes / 1_000_000:g} MB and {how}."


async def fetch_html(url: str, *, policy: AddressPolicy, max_bytes: int, timeout_seconds: float) -> FetchedPage:
    """Fetch an HTML page under the rules above; raises a JobError with a url_* code otherwise."""
    try:
        async with asyncio.timeout(timeout_seconds):
            # Per-operation limits inside the total one; no proxies, no automatic redirects.
            async with httpx2.AsyncClient(
                trust_env=False, follow_redirects=False, timeout=httpx2.Timeout(timeout_seconds)
            ) as client:
                current = url
                for hop in range(MAX_REDIRECTS + 1):
                    target = await resolve_target(current, policy)
                    response, body = await _fetch_once(client, target, max_bytes)
                    status = response.status_code
                    if status in REDIRECT_STATUSES:
                        location = response.headers.get("location")
                        if not location:
                            raise PermanentJobError("url_http_error", f"The site answered {status} (a redirect) without saying where to.")
                        current = urljoin(f"{target.scheme}://{target.host_header}{target.path}", location)
                        continue
                    if status in (408, 429) or status >= 500:
                        raise TransientJobError("url_server_error", f"The site answered {status}; it may work later.")
                    if status >= 400:
                        raise PermanentJobError("url_http_error", f"The site answered {status} for that page.")
                    content_type = response.headers.get("content-type", "")
                    html = body.decode(_charset(content_type, body), errors="replace")
                    return FetchedPage(url=current, content_type=content_type, html=html, size_bytes=len(body), redirects=hop)
                raise PermanentJobError("url_too_many_redirects", f"The page redirected more than {MAX_REDIRECTS} times.")
    except TimeoutError:
        raise TransientJobError("url_timeout", f"The site did not send the whole page within {timeout_seconds:g} s.") from None
    except httpx2.TimeoutException:
        raise TransientJobError("url_timeout", f"The site did not answer within {timeout_seconds:g} s.") from None
    except httpx2.ConnectError as error:
        raise TransientJobError("url_unreachable", f"The site could not be reached: {error or 'connection failed'}.") from None
    except httpx2.TransportError as error:
        raise TransientJobError("url_unreachable", f"The connection to the site failed: {type(error).__name__}.") from None


async def post_json(
    url: str, body: bytes, *, headers: dict[str, str], policy: AddressPolicy, timeout_seconds: float
) -> int:
    """POST a JSON body under the same address rules as fetch_html (completion webhooks); no
    redirects are followed. Returns the status code; raises a JobError with a url_* code when the
    URL is refused or the host cannot be reached in time."""
    try:
        async with asyncio.timeout(timeout_seconds):
            target = await resolve_target(url, policy)
            async with httpx2.AsyncClient(
                trust_env=False, follow_redirects=False, timeout=httpx2.Timeout(timeout_seconds)
            ) as client:
                extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
                for index, address in enumerate(target.addresses):
                    request = client.build_request(
                        "POST",
                        target.connect_url(address),
                        content=body,
                        headers={"Host": target.host_header, "User-Agent": USER_AGENT,
                                 "Content-Type": "application/json", **headers},
                        extensions=extensions,
                    )
                    try:
                        response = await client.send(request)
                    except httpx2.ConnectError:
                        if index == len(target.addresses) - 1:
                            raise
                        continue
                    return response.status_code
                raise AssertionError("a target always has an address")
    except TimeoutError:
        raise TransientJobError("url_timeout", f"The receiver did not answer within {timeout_seconds:g} s.") from None
    except httpx2.TimeoutException:
        raise TransientJobError("url_timeout", f"The receiver did not answer within {timeout_seconds:g} s.") from None
    except httpx2.ConnectError as error:
        raise TransientJobError("url_unreachable", f"The receiver could not be reached: {error or 'connection failed'}.") from None
    except httpx2.TransportError as error:
        raise TransientJobError("url_unreachable", f"The connection to the receiver failed: {type(error).__name__}.") from None


# --- Readable text ---------------------------------------------------------------------------------


_SKIPPED = {"script", "style", "nav", "footer", "noscript", "template", "svg", "iframe", "head", "form", "button"}
_BLOCKS = {"p", "div", "section", "article", "main", "header", "li", "ul", "ol", "br", "tr", "table", "blockquote",
           "h1", "h2", "h3", "h4", "h5", "h6", "dd", "dt"}
_VOID = {"br", "img", "meta", "link", "input", "hr", "area", "base", "col", "embed", "source", "track", "wbr"}


@dataclass
class PageText:
    title: str
    description: str
    headings: list[str]
    text: str


class _ReadableText(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.skip_depth = 0
        self.stack: list[str] = []
        self.parts: list[str] = []
        self.title: list[str] = []
        self.description = ""
        self.headings: list[str] = []
        self.heading: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "meta":
            values = {k.lower(): (v or "") for k, v in attrs}
            if values.get("name", "").lower() in ("description", "og:description") or values.get("property", "").lower() == "og:description":
                self.description = self.description or values.get("content", "").strip()
            return
        if tag in _VOID:
            if tag == "br":
                self.parts.append("\n")
            return
        self.stack.append(tag)
        if tag in _SKIPPED:
            self.skip_depth += 1
        if tag in ("h1", "h2", "h3") and not self.skip_depth:
            self.heading = []
        if tag in _BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag not in self.stack:
            return
        # Close anything left open inside this element (HTML in the wild is not well formed).
        while self.stack:
            open_tag = self.stack.pop()
            if open_tag in _SKIPPED:
                self.skip_depth -= 1
            if open_tag == tag:
                break
        if tag in ("h1", "h2", "h3") and self.heading is not None:
            text = " ".join("".join(self.heading).split())
            if text:
                self.headings.append(text)
            self.heading = None
        if tag in _BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if "title" in self.stack:
            self.title.append(data)
            return
        if self.skip_depth:
            return
        self.parts.append(data)
        if self.heading is not None:
            self.heading.append(data)


def readable_text(html: str, max_chars: int = 12_000) -> PageText:
    parser = _ReadableText()
    parser.feed(html)
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.parts).splitlines())
    text = "\n".join(line for line in lines if line)
    return PageText(
        title=" ".join("".join(parser.title).split())[:300],
        description=" ".join(parser.description.split())[:500],
        headings=parser.headings[:30],
        text=text[:max_chars],
    )
