"""Which URLs and addresses the website fetcher refuses, decided without any network access."""

from __future__ import annotations

import asyncio
import ipaddress

import pytest

from queue_tasks.errors import JobError, PermanentJobError
from queue_tasks.url_safety import AddressPolicy, parse_ip_literal, readable_text, refusal_reason, resolve_target, split_url

STRICT = AddressPolicy()


def refused_code(url: str, policy: AddressPolicy = STRICT) -> str | None:
    try:
        asyncio.run(resolve_target(url, policy))
    except JobError as error:
        return error.code
    return None


@pytest.mark.parametrize("url", ["file:///etc/passwd", "gopher://example.com/", "ftp://example.com/", "javascript:alert(1)", "example.com/page"])
def test_schemes_other_than_http_and_https_are_refused(url):
    with pytest.raises(PermanentJobError) as refused:
        split_url(url)
    assert refused.value.code == "url_refused"
    assert "Only http and https" in refused.value.message


@pytest.mark.parametrize(
    "host, address",
    [
        ("127.0.0.1", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("0x7f.0.0.1", "127.0.0.1"),
        ("[::1]", "::1"),
        ("::ffff:127.0.0.1", "::ffff:127.0.0.1"),
        ("[fe80::1%25eth0]", "fe80::1"),
    ],
)
def test_every_numeric_form_of_an_address_is_read_as_that_address(host, address):
    assert parse_ip_literal(host) == ipaddress.ip_address(address)


@pytest.mark.parametrize("host", ["example.com", "localhost", "10.example", "deadbeef.com"])
def test_names_are_not_mistaken_for_addresses(host):
    assert parse_ip_literal(host) is None


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1", "127.255.0.9", "::1",                      # loopback
        "::ffff:127.0.0.1", "::ffff:10.0.0.1",                  # IPv4-mapped IPv6
        "64:ff9b::7f00:1", "2002:7f00:1::",                     # NAT64 and 6to4 carrying loopback
        "10.0.0.1", "10.255.255.255",                           # 10/8
        "172.16.0.1", "172.31.255.254",                         # 172.16/12
        "192.168.0.1", "192.168.255.1",                         # 192.168/16
        "169.254.169.254", "169.254.0.1",                       # link-local (cloud metadata)
        "fd00::1", "fdff:ffff::1", "fc00::1",                   # unique local
        "fe80::1", "febf::1",                                   # IPv6 link-local
        "0.0.0.0", "::",                                        # unspecified
        "224.0.0.1", "239.255.255.250", "ff02::1",              # multicast
        "240.0.0.1", "255.255.255.255",                         # reserved / broadcast
        "100.64.0.1", "192.0.2.1", "198.18.0.1",                # shared and documentation ranges
    ],
)
def test_non_public_addresses_are_refused(address):
    assert refusal_reason(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize("address", ["93.184.215.14", "1.1.1.1", "2606:4700:4700::1111", "::ffff:93.184.215.14"])
def test_public_addresses_are_allowed(address):
    assert refusal_reason(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/", "http://0x7f000001/", "http://2130706433/", "http://0177.0.0.1/", "http://[::1]/",
        "http://[::ffff:127.0.0.1]/", "http://10.1.2.3/", "http://172.16.5.4:8080/admin", "https://192.168.1.1/",
        "http://169.254.169.254/latest/meta-data/", "http://[fd00::1]/", "http://[fe80::1]/", "http://0.0.0.0/",
    ],
)
def test_urls_naming_refused_addresses_fail_with_url_refused(url):
    assert refused_code(url) == "url_refused"


def test_the_refusal_message_names_the_host_and_why():
    with pytest.raises(PermanentJobError) as refused:
        asyncio.run(resolve_target("http://0x7f000001/", STRICT))
    assert "0x7f000001 (127.0.0.1)" in refused.value.message and "loopback" in refused.value.message


def test_the_allow_setting_and_allowed_networks_let_private_addresses_through():
    assert refused_code("http://127.0.0.1:9/", AddressPolicy(allow_private=True)) is None
    intranet = AddressPolicy.from_settings(False, "10.1.2.0/24, 127.0.0.1/32")
    assert refused_code("http://10.1.2.3/", intranet) is None
    assert refused_code("http://127.0.0.1/", intranet) is None
    assert refused_code("http://10.1.3.1/", intranet) == "url_refused"
    assert refused_code("http://127.0.0.2/", intranet) == "url_refused"


def test_urls_with_credentials_are_refused():
    assert refused_code("http://user:secret@93.184.215.14/") == "url_refused"


def test_the_connection_goes_to_the_checked_address_with_the_original_host_kept():
    target = asyncio.run(resolve_target("https://[2606:4700:4700::1111]:8443/a?b=1", STRICT))
    assert target.connect_url(target.addresses[0]) == "https://[2606:4700:4700::1111]:8443/a?b=1"
    assert target.host_header == "[2606:4700:4700::1111]:8443"


def test_readable_text_skips_scripts_styles_navigation_and_footers():
    page = readable_text(
        "<html><head><title>Green Corner</title><meta name='description' content='Plants for flats'>"
        "<style>body{}</style><script>var secret=1</script></head><body><nav>Home | Shop</nav>"
        "<main><h1>Grow more in less space</h1><p>We sell &amp; deliver herbs.</p></main>"
        "<footer>© 2026</footer><script>track()</script></body></html>"
    )
    assert page.title == "Green Corner"
    assert page.description == "Plants for flats"
    assert page.headings == ["Grow more in less space"]
    assert page.text == "Grow more in less space\nWe sell & deliver herbs."
