"""The subscriber pages by raw HTTP against the app under uvicorn (issue 14): RFC 8058
one-click unsubscribe, expiring confirmation links, CSRF on every form, header
injection, escaping, no address enumeration, rate limits."""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import replace
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import pytest

from digest.pipeline import republish
from digest.store.subscribers import Subscribers
from digest.subscribers import Preferences
from digest.tokens import Tokens
from tests.subscribe_site import NOW, Site, link_in, write_dump

pytestmark = pytest.mark.timeout(180)


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "no CSRF field in the form"
    return match[1]


def delivered(site: Site, *addresses: str) -> dict[str, EmailMessage]:
    """Subscribes ``addresses`` (active), ingests a dump and delivers a digest to them."""
    for a in addresses:
        site.subs.add(a, NOW - timedelta(days=1), status="active", source="cli")
    write_dump(site.inbox, "d1.txt", ["Sparse attention at scale", "Diffusion for faces"])
    report = site.run(NOW)
    assert report.delivery.sent == len(addresses)
    return {a: site.mails_to(a)[0] for a in addresses}


def one_click_url(message: EmailMessage) -> str:
    header = str(message["List-Unsubscribe"])
    [https] = [u for u in re.findall(r"<([^>]+)>", header) if u.startswith("http")]
    return str(https)


def test_rfc8058_one_click_unsubscribes_exactly_that_recipient(site: Site) -> None:
    got = delivered(site, "ann@example.org", "bob@example.org")
    ann, bob = got["ann@example.org"], got["bob@example.org"]
    assert ann["List-Unsubscribe"] != bob["List-Unsubscribe"]  # per recipient
    assert ann["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    header = str(ann["List-Unsubscribe"])
    assert "<mailto:digest@example.org?subject=unsubscribe%20" in header  # the mailto carries the token
    url = one_click_url(ann)
    assert url.startswith(site.base + "unsubscribe?t=")
    text = ann.get_body(("plain",))
    assert text is not None and url in str(text.get_content())  # the footer shows the same link

    # A GET (a mail scanner) changes nothing.
    with httpx.Client(timeout=10, follow_redirects=False) as raw:
        page = raw.get(url)
        assert page.status_code == 200 and "Unsubscribe" in page.text
        assert site.subs.get("ann@example.org").status == "active"  # type: ignore[union-attr]
        # The one-click POST: no cookie, no CSRF token, answered 200 without a redirect.
        answer = raw.post(
            url,
            content=b"List-Unsubscribe=One-Click",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
    assert answer.status_code == 200 and "location" not in answer.headers
    assert "will get no more emails" in answer.text
    assert site.subs.get("ann@example.org").status == "unsubscribed"  # type: ignore[union-attr]
    assert site.subs.get("bob@example.org").status == "active"  # type: ignore[union-attr]
    # Twice is harmless.
    again = httpx.post(url, content=b"List-Unsubscribe=One-Click", timeout=10)
    assert again.status_code == 200


def test_the_unsubscribe_page_and_its_one_click_post_set_no_cookie(site: Site) -> None:
    """README: "no redirect, no cookie, no login". The pages with a CSRF form still set theirs."""
    sub = site.subs.add("ann@example.org", NOW, status="active", source="cli")
    url = site.base + "unsubscribe?t=" + site.pages.tokens.make("unsubscribe", sub)
    # Each request on its own, as a mail client's one-click POST comes: no cookie sent.
    answer = httpx.post(
        url,
        content=b"List-Unsubscribe=One-Click",
        headers={"content-type": "application/x-www-form-urlencoded"},
        timeout=10,
    )
    page = httpx.get(url, timeout=10)
    invalid = httpx.post(
        site.base + "unsubscribe?t=forged", content=b"List-Unsubscribe=One-Click", timeout=10
    )
    prefs = httpx.get(
        site.base + "preferences", params={"t": site.pages.tokens.make("preferences", sub)}, timeout=10
    )
    assert answer.status_code == 200 and "Unsubscribed" in answer.text
    assert "set-cookie" not in answer.headers and "location" not in answer.headers
    assert page.status_code == 200 and "set-cookie" not in page.headers
    assert invalid.status_code == 403 and "set-cookie" not in invalid.headers
    assert site.subs.get("ann@example.org").status == "unsubscribed"  # type: ignore[union-attr]
    assert prefs.headers["set-cookie"].startswith("digest_csrf=")  # its forms need one


def test_forged_truncated_and_other_list_tokens_are_refused_and_change_nothing(site: Site) -> None:
    got = delivered(site, "ann@example.org")
    url = one_click_url(got["ann@example.org"])
    token = parse_qs(urlsplit(url).query)["t"][0]
    sub = site.subs.get("ann@example.org")
    assert sub is not None
    payload, sig = token.rsplit(".", 1)
    forged = {
        "forged": f"{payload}.{sig[:-4]}AAAA",
        "truncated": token[: len(token) // 2],
        "other list": Tokens("another install's key").make("unsubscribe", sub),
        "other purpose": site.pages.tokens.make("preferences", sub),
        "empty": "",
    }
    for name, bad in forged.items():
        for method in ("GET", "POST"):
            answer = httpx.request(
                method,
                site.base + "unsubscribe",
                params={"t": bad},
                content=b"List-Unsubscribe=One-Click",
                timeout=10,
            )
            assert 400 <= answer.status_code < 500, (name, method, answer.status_code)
    assert site.subs.get("ann@example.org").status == "active"  # type: ignore[union-attr]
    # A token made before the subscriber's secret changed is revoked with it.
    site.subs.new_token(sub.id)
    assert httpx.post(url, content=b"List-Unsubscribe=One-Click", timeout=10).status_code == 403
    assert site.subs.get("ann@example.org").status == "active"  # type: ignore[union-attr]


def test_expired_confirmation_link_says_so_and_offers_a_new_one(site: Site) -> None:
    sub = site.subs.add("late@example.org", NOW, status="pending", source="web")
    old = site.pages.tokens.make("confirm", sub, now=site.pages.clock() - timedelta(days=4))
    with site.client() as browser:
        page = browser.get("confirm", params={"t": old})
        assert page.status_code == 410
        assert "expired" in page.text and "Send me a new link" in page.text
        assert 'value="late@example.org"' in page.text
        # Pressing the button asks /subscribe for a new link, which arrives.
        answer = browser.post(
            "subscribe", data={"csrf": csrf_of(page.text), "address": "late@example.org", "cadence": "daily"}
        )
        assert answer.status_code == 200
        # The old link cannot confirm, even by POST with a valid form token.
        form = browser.get("subscribe")
        assert browser.post("confirm", data={"csrf": csrf_of(form.text), "t": old}).status_code in (403, 410)
    [mail] = site.mails_to("late@example.org")
    fresh = link_in(mail, "confirm")
    assert parse_qs(urlsplit(fresh).query)["t"][0] != old
    assert site.subs.get("late@example.org").status == "pending"  # type: ignore[union-attr]


def test_every_form_refuses_a_post_without_its_csrf_token(site: Site) -> None:
    sub = site.subs.add("ann@example.org", NOW, status="pending", source="web")
    confirm = site.pages.tokens.make("confirm", sub, now=site.pages.clock())
    prefs = site.pages.tokens.make("preferences", sub)
    site.subs.vote(sub.id, "some paper", 1, NOW)
    cases = [
        ("subscribe", {}, {"address": "eve@example.org", "cadence": "daily"}),
        ("confirm", {}, {"t": confirm}),
        ("preferences", {"t": prefs}, {"action": "save", "cadence": "weekly:fri", "max_papers": "3"}),
        ("preferences", {"t": prefs}, {"action": "unvote", "paper": "some paper"}),
    ]
    for path, params, data in cases:
        with site.client() as attacker:
            # No token; a token from another visitor's cookie; a made-up token.
            other = site.client()
            other_token = csrf_of(other.get("subscribe").text)
            other.close()
            for token in (None, other_token, "made-up"):
                fields = dict(data) if token is None else {**data, "csrf": token}
                answer = attacker.post(path, params=params, data=fields)
                assert answer.status_code == 403, (path, data, token)
    site.pages.worker.join()
    after = site.subs.get("ann@example.org")
    assert after is not None and after.status == "pending" and after.preferences == Preferences()
    assert [v.paper_key for v in site.subs.votes(sub.id)] == ["some paper"]
    assert site.subs.get("eve@example.org") is None and not site.sink.accepted
    # With the token the same posts work.
    with site.client() as browser:
        page = browser.get("preferences", params={"t": prefs})
        ok = browser.post(
            "preferences", params={"t": prefs}, data={**cases[2][2], "csrf": csrf_of(page.text)}
        )
        assert ok.status_code == 200 and "Saved." in ok.text
    assert site.subs.get("ann@example.org").preferences.cadence == "weekly:fri"  # type: ignore[union-attr]


def test_no_header_injection_through_the_address_or_interests(site: Site) -> None:
    with site.client() as browser:
        token = csrf_of(browser.get("subscribe").text)
        for address in (
            "ann@example.org\r\nBcc: victim@example.org",
            "ann@example.org\nX-Evil: 1",
            "a@b\r\n.org",
        ):
            answer = browser.post("subscribe", data={"csrf": token, "address": address, "cadence": "daily"})
            assert answer.status_code == 400 and "That address will not work" in answer.text
        answer = browser.post(
            "subscribe",
            data={
                "csrf": token,
                "address": "ann@example.org",
                "cadence": "daily",
                "interests": "faces\r\nBcc: victim@example.org\r\n\r\n<b>body</b>",
            },
        )
        assert answer.status_code == 200
        bad_cadence = browser.post(
            "subscribe",
            data={"csrf": token, "address": "bob@example.org", "cadence": "daily\r\nBcc: v@x.org"},
        )
        assert bad_cadence.status_code == 400
    [mail] = site.mails_to("ann@example.org")
    assert mail["Bcc"] is None and mail["X-Evil"] is None
    assert {r for got in site.sink.accepted for r in got.rcpt_tos} == {"ann@example.org"}
    sub = site.subs.get("ann@example.org")
    assert sub is not None and "\n" not in sub.preferences.interests and "\r" not in sub.preferences.interests


EVIL = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def test_html_in_every_field_comes_out_escaped_on_every_page_and_email(site: Site) -> None:
    sub = site.subs.add("ann@example.org", NOW, status="active", source="cli")
    prefs = site.pages.tokens.make("preferences", sub)
    with site.client() as browser:
        page = browser.get("preferences", params={"t": prefs})
        saved = browser.post(
            "preferences",
            params={"t": prefs},
            data={
                "csrf": csrf_of(page.text),
                "action": "save",
                "cadence": "daily",
                "max_papers": "5",
                "interests": EVIL,
                "keywords": EVIL + "\nfaces",
                "exclude": EVIL + " survey",  # not the keyword itself: that is refused
            },
        )
        assert saved.status_code == 200
        pages = [saved.text, browser.get("preferences", params={"t": prefs}).text]
        token = csrf_of(browser.get("subscribe").text)
        # A bad address and the interests come back in the form, escaped.
        pages.append(
            browser.post(
                "subscribe", data={"csrf": token, "address": EVIL, "cadence": "daily", "interests": EVIL}
            ).text
        )
        pages.append(browser.get("subscribe", params={"x": EVIL}).text)
        pages.append(browser.get("confirm", params={"t": EVIL}).text)
        pages.append(browser.get("unsubscribe", params={"t": EVIL}).text)
        pages.append(browser.get("preferences", params={"t": EVIL}).text)
    for html in pages:
        assert "<script" not in html and "<img" not in html, html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in pages[1]
    # In a digest email (the footer names the address; the pages are the only place
    # the preferences appear, and rank's reasons are escaped by the same templates).
    write_dump(site.inbox, "evil.txt", [EVIL + " in a title"])
    site.run(NOW)
    [mail] = site.mails_to("ann@example.org")
    html = str(mail.get_body(("html",)).get_content())  # type: ignore[union-attr]
    assert "<script" not in html and "<img" not in html
    assert "&lt;script&gt;" in html


@pytest.mark.slow  # end to end, timed: a mail server that takes 1 s a message, 8 requests (8 s)
def test_the_same_answer_whether_or_not_the_address_is_known(site: Site) -> None:
    site.subs.add("active@example.org", NOW, status="active", source="cli")
    site.subs.add("pending@example.org", NOW, status="pending", source="web")
    gone = site.subs.add("gone@example.org", NOW, status="active", source="web")
    site.subs.set_status(gone.id, "unsubscribed", NOW)
    # The mail server takes a second per message: an answer that waited for the work
    # (store, email) would show it; the same timing class means none waits.
    accept = site.sink.handle_DATA

    async def slow(*args: object) -> str:
        await asyncio.sleep(1.0)
        return await accept(*args)

    site.sink.handle_DATA = slow  # type: ignore[method-assign,assignment]
    kinds = ("new", "active", "pending", "gone")
    pages: dict[str, set[str]] = {k: set() for k in kinds}
    timings: dict[str, list[float]] = {k: [] for k in kinds}
    with site.client() as browser:
        token = csrf_of(browser.get("subscribe").text)
        for _ in range(2):  # interleaved, so load on the machine hits every kind alike
            for who in kinds:
                address = f"{who}@example.org"
                started = time.perf_counter()
                answer = browser.post(
                    "subscribe", data={"csrf": token, "address": address, "cadence": "daily"}
                )
                timings[who].append(time.perf_counter() - started)
                assert answer.status_code == 200
                pages[who].add(answer.text.replace(address, "ADDRESS"))
    assert len(set().union(*pages.values())) == 1  # byte for byte the same page
    assert max(max(t) for t in timings.values()) < 0.9, timings  # none waited for a mail
    # And each got what fits: a confirmation, or (active) a note with the preferences link.
    assert "Confirm your subscription" in str(site.mails_to("new@example.org", timeout=20)[0]["Subject"])
    assert "already receive" in str(site.mails_to("active@example.org", timeout=20)[0]["Subject"])
    assert "Confirm" in str(site.mails_to("gone@example.org", timeout=20)[0]["Subject"])


def test_rate_limits_hold_under_a_burst(site: Site) -> None:
    limit_client = site.config.subscribe.max_per_client  # 20
    limit_address = site.config.subscribe.max_per_address  # 3
    with site.client() as browser:
        token = csrf_of(browser.get("subscribe").text)
        codes = [
            browser.post(
                "subscribe", data={"csrf": token, "address": "burst@example.org", "cadence": "daily"}
            ).status_code
            for _ in range(limit_client + 10)
        ]
    assert codes == [200] * limit_client + [429] * 10
    # Per address: only max_per_address confirmation emails, however many requests.
    site.pages.worker.join()
    time.sleep(0.3)
    assert len(site.mails_to("burst@example.org", count=limit_address + 1, timeout=1)) == limit_address


def test_a_robot_filling_the_honeypot_gets_the_same_page_and_no_email(site: Site) -> None:
    with site.client() as browser:
        token = csrf_of(browser.get("subscribe").text)
        answer = browser.post(
            "subscribe",
            data={
                "csrf": token,
                "address": "robot@example.org",
                "cadence": "daily",
                "website": "http://spam",
            },
        )
    assert answer.status_code == 200 and "Check your inbox" in answer.text
    site.pages.worker.join()
    assert Subscribers(site.store).get("robot@example.org") is None and not site.sink.accepted


def test_confirming_twice_is_harmless_and_get_changes_nothing(site: Site) -> None:
    with site.client() as browser:
        token = csrf_of(browser.get("subscribe").text)
        browser.post("subscribe", data={"csrf": token, "address": "ann@example.org", "cadence": "weekly:mon"})
        [mail] = site.mails_to("ann@example.org")
        url = link_in(mail, "confirm")
        page = browser.get(url)
        assert page.status_code == 200 and "Confirm my subscription" in page.text
        assert site.subs.get("ann@example.org").status == "pending"  # type: ignore[union-attr]
        t = parse_qs(urlsplit(url).query)["t"][0]
        for _ in range(2):
            done = browser.post("confirm", data={"csrf": csrf_of(page.text), "t": t})
            assert done.status_code == 200 and "now receives" in done.text
    sub = site.subs.get("ann@example.org")
    assert sub is not None and sub.status == "active" and sub.preferences.cadence == "weekly:mon"


def test_a_non_ascii_local_part_is_refused_and_an_idn_domain_mailed_in_ascii(site: Site) -> None:
    with site.client() as browser:
        token = csrf_of(browser.get("subscribe").text)
        refused = browser.post(
            "subscribe", data={"csrf": token, "address": "zoë@exämple.org", "cadence": "daily"}
        )
        assert refused.status_code == 400 and "SMTPUTF8" in refused.text
        answer = browser.post(
            "subscribe", data={"csrf": token, "address": "zoe@exämple.org", "cadence": "daily"}
        )
        assert answer.status_code == 200
    [mail] = site.mails_to("zoe@xn--exmple-cua.org")
    assert str(mail["To"]) == "zoe@xn--exmple-cua.org"
    assert {r for got in site.sink.accepted for r in got.rcpt_tos} == {"zoe@xn--exmple-cua.org"}


def test_the_archive_index_links_the_sign_up_page_only_when_it_is_served(site: Site, tmp_path: Path) -> None:
    write_dump(site.inbox, "d1.txt", ["Sparse attention at scale"])
    site.run(NOW)
    with site.client() as client:
        index = client.get("index.html")
        hrefs = re.findall(r'href="([^"]*subscribe[^"]*)"', index.text)
        assert hrefs == ["subscribe"]  # beside the feeds
        form = client.get(urljoin(str(index.url), hrefs[0]))
    assert form.status_code == 200 and 'action="subscribe"' in form.text
    # Without http.listen nothing answers /subscribe: the index does not link it.
    unserved = replace(site.config, http=replace(site.config.http, listen=""))
    republish(unserved, site.store, NOW, output_dir=tmp_path / "unserved")
    unserved_index = (tmp_path / "unserved" / "index.html").read_text("utf-8")
    assert re.findall(r'href="([^"]*subscribe[^"]*)"', unserved_index) == []
