"""SSRF guard and request parsing. The address checks run with no network at all; nothing here sends a
packet anywhere but loopback (IP literals resolve locally, and DNS is replaced by a stub)."""
import base64
import ipaddress

import pytest

from layers.edge import intake
from layers.config import FetchSettings
from layers.errors import BadInput, NotAnImage, TooLarge, UnsafeURL
from layers.edge.intake import check_address, parse_image_input, vet


@pytest.mark.parametrize("addr", [
    "10.0.0.1", "172.16.5.4", "192.168.1.1", "127.0.0.1", "127.255.0.3", "0.0.0.0", "169.254.169.254",
    "169.254.1.1", "100.64.0.1", "224.0.0.1", "240.0.0.1", "255.255.255.255", "192.0.0.192", "100.100.100.200",
    "::1", "::", "fe80::1", "fc00::1", "fd00:ec2::254", "ff02::1", "::ffff:10.0.0.1", "::ffff:127.0.0.1",
    "64:ff9b::a00:1", "2002:a00:1::1", "2001:db8::1",
])
def test_non_public_addresses_are_refused(addr):
    assert check_address(ipaddress.ip_address(addr)) is not None


@pytest.mark.parametrize("addr", ["8.8.8.8", "1.1.1.1", "151.101.1.69", "2606:4700::1111", "2a00:1450:4001::200e"])
def test_public_addresses_pass(addr):
    assert check_address(ipaddress.ip_address(addr)) is None


def test_a_name_that_resolves_to_a_private_address_is_refused(monkeypatch):
    # DNS stubbed: a public-looking name whose record points at the metadata service (no packet is sent)
    monkeypatch.setattr(intake, "resolve", lambda host, port: [ipaddress.ip_address("169.254.169.254")])
    with pytest.raises(UnsafeURL, match="metadata"):
        vet("http://images.example.com/cat.jpg", FetchSettings())


def test_any_bad_address_among_several_refuses(monkeypatch):
    monkeypatch.setattr(intake, "resolve", lambda host, port: [ipaddress.ip_address("93.184.216.34"),
                                                               ipaddress.ip_address("10.1.2.3")])
    with pytest.raises(UnsafeURL):
        vet("https://mixed.example.com/", FetchSettings())


def test_the_checked_address_is_the_one_connected_to(monkeypatch):
    monkeypatch.setattr(intake, "resolve", lambda host, port: [ipaddress.ip_address("93.184.216.34")])
    t = vet("https://img.example.com:8443/a.jpg?x=1", FetchSettings())
    assert (t.ip, t.host, t.port, t.path, t.scheme) == ("93.184.216.34", "img.example.com", 8443, "/a.jpg?x=1", "https")


@pytest.mark.parametrize("url", ["ftp://example.com/a", "file:///etc/passwd", "gopher://x", "not a url",
                                 "http:///nohost", "http://127.0.0.1:99999/", "", "javascript:alert(1)"])
def test_bad_urls_are_400(url):
    with pytest.raises(BadInput):
        vet(url, FetchSettings())


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/", "http://2130706433/", "http://0.0.0.0/", "http://[::1]/",
                                 "http://0x7f.1/", "http://[::ffff:127.0.0.1]/"])
def test_loopback_literals_are_refused_without_the_allow_list(url):
    with pytest.raises(UnsafeURL):
        vet(url, FetchSettings())


def test_allow_list_admits_exactly_what_it_names():
    allow = FetchSettings(allow=("127.0.0.1:8765",))
    assert vet("http://127.0.0.1:8765/img/1.jpg", allow).ip == "127.0.0.1"
    with pytest.raises(UnsafeURL):
        vet("http://127.0.0.1:8766/img/1.jpg", allow)


def test_parse_inputs():
    raw = parse_image_input(b"\xff\xd8jpeg", {"Content-Type": "image/jpeg"}, {"user": "U1"})
    assert raw.data == b"\xff\xd8jpeg" and raw.fields["user"] == "U1"
    js = parse_image_input(b'{"image_url": "https://x/y.jpg", "user": "U2"}', {"Content-Type": "application/json"}, {})
    assert js.url == "https://x/y.jpg" and js.fields == {"user": "U2"}
    b64 = parse_image_input(('{"image_b64": "%s"}' % base64.b64encode(b"abc").decode()).encode(),
                            {"Content-Type": "application/json; charset=utf-8"}, {})
    assert b64.data == b"abc"
    txt = parse_image_input(b"https://x/z.png", {"Content-Type": "text/plain"}, {})
    assert txt.url == "https://x/z.png"
    q = parse_image_input(b"", {}, {"url": "https://x/q.png"})
    assert q.url == "https://x/q.png"


@pytest.mark.parametrize("body, ctype, exc", [
    (b"{bad", "application/json", BadInput),
    (b"[1]", "application/json", BadInput),
    (b"{}", "application/json", BadInput),
    (b'{"image_b64": "!!!"}', "application/json", BadInput),
    (b"<x/>", "application/xml", NotAnImage),
    (b"", "image/png", BadInput),
    (b"x" * 101, "image/png", TooLarge),
])
def test_parse_rejects(body, ctype, exc):
    with pytest.raises(exc):
        parse_image_input(body, {"Content-Type": ctype}, {}, max_bytes=100)
