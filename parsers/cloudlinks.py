"""Find 超大附件 / cloud-attachment links (QQ, NetEase 126/163, common 网盘) in message bodies."""

from __future__ import annotations

import bisect
import html as html_lib
import re
import urllib.parse
from html.parser import HTMLParser

from parsers.types import CloudLink

# Cheap pre-check: the full scan (and the HTML flattening) only runs on bodies that mention one of
# these, so ordinary mail pays one regex search.
_CANDIDATE = re.compile(
    r"ftn|超大附件|云附件|large-?attach|huge-?attach|fs\.mail\.|fs\.(?:163|126)\.com|dashi\.163"
    r"|pan\.baidu\.com|aliyundrive\.com|alipan\.com|weiyun\.com|cloud\.189\.cn|caiyun\.139\.com"
    r"|yun\.139\.com|123pan\.com|lanzou",
    re.IGNORECASE,
)

# Markers the webmail clients print above the file list; provider is what the marker names.
_MARKERS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"从\s*QQ\s*邮箱发来的(?:超大附件|云附件)"), "qq"),
    (re.compile(r"从\s*(?:网易)?\s*126\s*邮箱发来的(?:超大附件|云附件)"), "126"),
    (re.compile(r"从\s*(?:网易)?\s*163\s*邮箱发来的(?:超大附件|云附件)"), "163"),
    (re.compile(r"从\s*网易[^\s]{0,8}邮箱发来的(?:超大附件|云附件)"), "netease"),
]
_MARKER_REACH = 4000  # characters after a marker in which its file list is expected

_URL = re.compile(r"https?://[^\s<>\"'（）【】《》，。；、]+", re.IGNORECASE)
_URL_TRAIL = ".,;:!?)]}>'\"，。；：！？）】"

_NETEASE_HOSTS = ("163.com", "126.com", "yeah.net", "188.com", "netease.com", "126.net", "163.net")
# NetEase signature/promotion links that sit right under the file list and must not be flagged.
_NETEASE_NOT_FILES = re.compile(r"dlpro|/dashi/dl|/dashi/?$|/dashi/\?|mailmaster|/m/?$", re.IGNORECASE)
_NETDISK_HOSTS = (
    "pan.baidu.com",
    "aliyundrive.com",
    "alipan.com",
    "share.weiyun.com",
    "cloud.189.cn",
    "caiyun.139.com",
    "yun.139.com",
    "123pan.com",
)


def _host_path(url: str) -> tuple[str, str]:
    try:
        parts = urllib.parse.urlsplit(url)
        return (parts.hostname or "").lower(), parts.path + ("?" + parts.query if parts.query else "")
    except ValueError:
        return "", ""


def _host_in(host: str, domains: tuple[str, ...]) -> bool:
    return any(host == d or host.endswith("." + d) for d in domains)


def _netease_provider(host: str) -> str:
    if _host_in(host, ("126.com", "126.net")):
        return "126"
    if _host_in(host, ("163.com", "163.net")):
        return "163"
    return "netease"


def classify_url(url: str) -> str | None:
    """Provider of a cloud-attachment URL ("qq", "163", "126", "netease", "other"), None otherwise."""
    host, path = _host_path(url)
    if not host:
        return None
    low = path.lower()
    if _host_in(host, ("qq.com",)):
        # mail.qq.com/cgi-bin/ftnExs_download, wx.mail.qq.com/ftn/download, iwx..., exmail.qq.com
        if ("mail.qq.com" in host or "exmail.qq.com" in host) and "ftn" in low:
            return "qq"
        if host == "share.weiyun.com":
            return "other"
        return None
    if _host_in(host, _NETEASE_HOSTS):
        if _NETEASE_NOT_FILES.search(path):
            return None
        if "x-netease-huge-attachment" in low or "large-attachment" in low or "huge-attachment" in low:
            return _netease_provider(host)
        if host.startswith("fs.") or ".fs." in host or host.startswith("fs-"):
            return _netease_provider(host)
        if "mail." in host and ("/ftn" in low or "bigattach" in low or "cloud_attach" in low):
            return _netease_provider(host)
        if host == "dashi.163.com" and re.search(r"attach|ftn|download|preview|share", low):
            return "163"
        return None
    if _host_in(host, _NETDISK_HOSTS) or re.match(r"(?:[\w-]+\.)?lanzou\w*\.com$", host):
        return "other"
    return None


class _Flattener(HTMLParser):
    """HTML to text that keeps link targets and the attributes webmail hides file details in.

    QQ puts "name / 文件大小 / 到期时间" in a `title` attribute; NetEase puts the name in the
    anchor's `filename` attribute. Each link's href is written right after its label.
    """

    _BLOCK = frozenset({"br", "div", "p", "tr", "li", "table", "td", "h1", "h2", "h3", "h4", "span"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self._hrefs: list[str | None] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
            return
        if tag in self._BLOCK:
            self.out.append("\n")
        for key, val in attrs:
            if key in ("title", "filename", "download") and val and val.strip().lower() not in ("", "true"):
                self.out.append("\n" + val + "\n")
        if tag == "a":
            href = next((v for k, v in attrs if k == "href" and v), None)
            self._hrefs.append(href)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip = max(0, self._skip - 1)
            return
        if tag == "a" and self._hrefs:
            href = self._hrefs.pop()
            if href:
                self.out.append(" " + href + " \n")
        elif tag in self._BLOCK:
            self.out.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.out.append(data)


# How far a tag's closing ">" (a comment's "-->") may be from its "<" before the "<" is taken as text.
_TAG_REACH = 8192
_SECTION_CLOSE = re.compile(r"]\s*]\s*>")
_MS_SECTION_CLOSE = re.compile(r"]\s*>")
_SECTION_NAME = re.compile(r"[a-zA-Z][-_.a-zA-Z0-9]*")
_CDATA_LIKE = frozenset({"temp", "cdata", "ignore", "include", "rcdata"})


def _defuse_unclosed(html: str) -> str:
    """Escape each "<" that no ">" closes within _TAG_REACH characters (nor "-->" / "]]>" / "]>" what needs them).

    html.parser (CPython 3.11) rescans to the end of the input for every start tag or comment it cannot
    close, so 30,000 unclosed `<a href=` in a 1.6 MB body took minutes. Escaped, such a "<" is text, which
    is what a browser shows for it too.
    """
    if "<" not in html:
        return html
    closes = [m.start() for m in re.finditer(">", html)]
    # What html.parser looks for to end a comment, a CDATA-like marked section, an MS Office one (<![if …]>).
    enders = {
        "<!--": [m.start() for m in re.finditer("-->", html)],
        "]]": [m.start() for m in _SECTION_CLOSE.finditer(html)],
        "]": [m.start() for m in _MS_SECTION_CLOSE.finditer(html)],
    }
    out: list[str] = []
    last = 0
    for m in re.finditer("<", html):
        i = m.start()
        k = bisect.bisect_right(closes, i)
        unclosed = k == len(closes) or closes[k] - i > _TAG_REACH
        kind = None
        if not unclosed and html.startswith("<!", i):
            if html.startswith("<!--", i):
                kind = "<!--"
            elif html.startswith("<![", i):
                name = _SECTION_NAME.match(html, i + 3)
                section = name.group(0).lower() if name else ""
                kind = "]]" if section in _CDATA_LIKE else "]" if section in ("if", "else", "endif") else None
        if kind is not None:
            ends = enders[kind]
            c = bisect.bisect_left(ends, i + 3)
            unclosed = c == len(ends) or ends[c] - i > _TAG_REACH
        if unclosed:
            out.append(html[last:i])
            out.append("&lt;")
            last = i + 1
    if not out:
        return html
    out.append(html[last:])
    return "".join(out)


def html_to_text(html: str) -> str:
    parser = _Flattener()
    try:
        parser.feed(_defuse_unclosed(html))
        parser.close()
    except (AssertionError, ValueError):  # html.parser's rare internal assertions on garbage
        pass
    return "".join(parser.out).replace("\xa0", " ")


_SIZE = r"\d+(?:\.\d+)?\s*(?:[KMGT]i?B?|[KMGT]|字节|bytes?)"
_PAREN_DETAILS = re.compile(
    r"[(（]\s*(?P<size>" + _SIZE + r")\s*[,，]\s*(?P<exp>[^()（）\n]*?)\s*[)）]", re.IGNORECASE
)
_SIZE_LABEL = re.compile(r"(?:文件大小|大小)\s*[:：]\s*(?P<size>" + _SIZE + ")", re.IGNORECASE)
_EXPIRY_LABEL = re.compile(r"(?:到期时间|过期时间|有效期至|有效期)\s*[:：]\s*(?P<exp>[^\n]+)")
_LINK_LABELS = re.compile(r"(?:进入下载页面|点击下载|下载|预览|查看|打开|链接)\s*[:：]?\s*$")
_NOT_NAMES = frozenset({"", "下载", "预览", "点击下载", "进入下载页面", "查看", "打开", "文件", "附件"})


def _clean_expiry(text: str) -> str | None:
    text = text.strip().rstrip(")）").strip()
    text = re.sub(r"\s*(?:到期|过期)\s*$", "", text).strip()
    return text or None


def _clean_name(text: str) -> str | None:
    text = _LINK_LABELS.sub("", text.strip()).strip(" \t:：-—·•|")
    text = re.sub(r"\s+", " ", text)
    if text in _NOT_NAMES or len(text) > 200 or _URL.search(text):
        return None
    for marker, _ in _MARKERS:
        if marker.search(text):
            return None
    return text


def _last_name_line(before: str) -> str | None:
    """The file name printed just before a link: same-line label first, else the previous line."""
    name = _clean_name(before.rsplit("\n", 1)[-1])
    if name is None:
        lines = [ln for ln in before.split("\n") if ln.strip()]
        name = _clean_name(lines[-1]) if lines else None
    return name


def _details(before: str, after: str) -> tuple[str | None, str | None, str | None]:
    """(filename, size text, expiry text) printed around a link.

    QQ prints `name (size, expiry 到期)进入下载页面：URL` or a title with 文件大小 / 到期时间 lines
    before the link; NetEase prints the name on the link and `(size, expiry到期)` right after it.
    """
    follow = _PAREN_DETAILS.match(after.lstrip(" \t\r\n"))
    if follow is not None:
        return _last_name_line(before), follow.group("size").strip(), _clean_expiry(follow.group("exp"))
    parens = list(_PAREN_DETAILS.finditer(before))
    if parens:
        paren = parens[-1]
        expiry = _clean_expiry(paren.group("exp"))
        return _last_name_line(before[: paren.start()]), paren.group("size").strip(), expiry
    sizes = list(_SIZE_LABEL.finditer(before))
    if sizes:
        size_m = sizes[-1]
        exp_m = _EXPIRY_LABEL.search(before, size_m.end())
        expiry = _clean_expiry(exp_m.group("exp")) if exp_m else None
        lines = [ln for ln in before[: size_m.start()].split("\n") if ln.strip()]
        name = _clean_name(lines[-1]) if lines else None
        return name, size_m.group("size").strip(), expiry
    return None, None, None


def _name_from_query(url: str) -> str | None:
    try:
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    except ValueError:
        return None
    for key in ("filename", "name", "title", "fname"):
        if query.get(key):
            name = query[key][0].strip()
            if name and "." in name:
                return name
    return None


def _scan(text: str, found: dict[str, CloudLink]) -> None:
    at: dict[int, str] = {}
    for pattern, prov in _MARKERS:  # most specific first: "126" beats the generic "netease"
        for mk in pattern.finditer(text):
            at.setdefault(mk.start(), prov)
    markers = sorted(at.items())
    prev_end = 0
    for m in _URL.finditer(text):
        url = html_lib.unescape(m.group(0)).rstrip(_URL_TRAIL)
        provider = classify_url(url)
        marker = next((p for pos, p in reversed(markers) if pos < m.start() <= pos + _MARKER_REACH), None)
        host, path = _host_path(url)
        if provider is None and marker is not None:
            # Inside a 超大附件 block, a link on the marker's own provider is a file even when its
            # URL shape is one we have not seen.
            if marker == "qq" and _host_in(host, ("qq.com",)):
                provider = "qq"
            elif marker != "qq" and _host_in(host, _NETEASE_HOSTS) and not _NETEASE_NOT_FILES.search(path):
                provider = marker
        if provider is None:
            prev_end = m.end()
            continue
        if marker in ("126", "163") and provider in ("126", "163", "netease"):
            provider = marker
        before = text[max(prev_end, m.start() - 600) : m.start()]
        nxt = _URL.search(text, m.end())
        after = text[m.end() : min(m.end() + 300, nxt.start() if nxt else len(text))]
        name, size, expiry = _details(before, after)
        name = name or _name_from_query(url)
        prev_end = m.end()
        old = found.get(url)
        if old is None:
            found[url] = CloudLink(
                url=url, provider=provider, filename=name, size_text=size, expires_text=expiry
            )
        else:
            found[url] = CloudLink(
                url=url,
                provider=old.provider,
                filename=old.filename or name,
                size_text=old.size_text or size,
                expires_text=old.expires_text or expiry,
            )


def find_cloud_links(text: str, html: str) -> list[CloudLink]:
    """Every cloud-attachment link in the plain and HTML bodies, each URL once, in body order."""
    found: dict[str, CloudLink] = {}
    if text and _CANDIDATE.search(text):
        _scan(text, found)
    if html and _CANDIDATE.search(html):
        _scan(html_to_text(html), found)
    return list(found.values())
