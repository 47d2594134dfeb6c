"""String checks from ``k8s.io/apimachinery/pkg/util/validation``.

Each ``is_*`` function returns the list of upstream's message strings (empty
when the value is fine), because callers wrap every message into its own
``field.Invalid`` exactly as upstream does; the wording is the interface that
kubectl users and tests compare against.  The ``validate_*`` helpers do that
wrapping for the common cases.  IP and CIDR parsing follows Go's "sloppy"
parser (IPv4 octets may carry leading zeros; no IPv6 zones).
"""

from __future__ import annotations

import functools
import ipaddress
import re
from typing import Any

from kubesvc.api.errors import FieldError, invalid

IPAddr = ipaddress.IPv4Address | ipaddress.IPv6Address

DNS1123_LABEL_MAX = 63
DNS1123_SUBDOMAIN_MAX = 253
DNS1035_LABEL_MAX = 63
QUALIFIED_NAME_MAX = 63
LABEL_VALUE_MAX = 63

_DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN_FMT = _DNS1123_LABEL_FMT + "(\\." + _DNS1123_LABEL_FMT + ")*"
_DNS1035_LABEL_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
_QNAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_LABEL_VALUE_FMT = "(" + _QNAME_FMT + ")?"

_DNS1123_LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character"
)
_DNS1123_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character"
)
_DNS1035_LABEL_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', "
    "start with an alphabetic character, and end with an alphanumeric character"
)
_QNAME_MSG = (
    "must consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character"
)
_LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character"
)

# Go's regexp "$" anchors at the very end; Python's fullmatch does the same.
_DNS1123_LABEL_RE = re.compile(_DNS1123_LABEL_FMT)
_DNS1123_SUBDOMAIN_RE = re.compile(_DNS1123_SUBDOMAIN_FMT)
_DNS1035_LABEL_RE = re.compile(_DNS1035_LABEL_FMT)
_QNAME_RE = re.compile(_QNAME_FMT)
_LABEL_VALUE_RE = re.compile(_LABEL_VALUE_FMT)
_PORT_NAME_CHARSET_RE = re.compile("[-a-z0-9]+")
_ONE_LETTER_RE = re.compile("[a-z]")


def max_len_error(length: int) -> str:
    return f"must be no more than {length} characters"


def empty_error() -> str:
    return "must be non-empty"


def inclusive_range_error(lo: int, hi: int) -> str:
    return f"must be between {lo} and {hi}, inclusive"


def regex_error(msg: str, fmt: str, *examples: str) -> str:
    """Upstream's RegexError, including its doubled space between examples."""
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    msg += " (e.g. "
    for i, ex in enumerate(examples):
        if i > 0:
            msg += " or "
        msg += f"'{ex}', "
    return msg + f"regex used for validation is '{fmt}')"


def _full(regex: re.Pattern[str], value: str) -> bool:
    return regex.fullmatch(value) is not None


def is_dns1123_label(value: str) -> list[str]:
    errs: list[str] = []
    if len(value) > DNS1123_LABEL_MAX:
        errs.append(max_len_error(DNS1123_LABEL_MAX))
    if not _full(_DNS1123_LABEL_RE, value):
        if _full(_DNS1123_SUBDOMAIN_RE, value):
            # a valid subdomain but not a label: length was checked, so it is the dots
            errs.append("must not contain dots")
        else:
            errs.append(regex_error(_DNS1123_LABEL_MSG, _DNS1123_LABEL_FMT, "my-name", "123-abc"))
    return errs


def is_dns1123_subdomain(value: str) -> list[str]:
    errs: list[str] = []
    if len(value) > DNS1123_SUBDOMAIN_MAX:
        errs.append(max_len_error(DNS1123_SUBDOMAIN_MAX))
    if not _full(_DNS1123_SUBDOMAIN_RE, value):
        errs.append(regex_error(_DNS1123_SUBDOMAIN_MSG, _DNS1123_SUBDOMAIN_FMT, "example.com"))
    return errs


def is_dns1035_label(value: str) -> list[str]:
    errs: list[str] = []
    if len(value) > DNS1035_LABEL_MAX:
        errs.append(max_len_error(DNS1035_LABEL_MAX))
    if not _full(_DNS1035_LABEL_RE, value):
        errs.append(regex_error(_DNS1035_LABEL_MSG, _DNS1035_LABEL_FMT, "my-name", "abc-123"))
    return errs


def is_qualified_name(value: str) -> list[str]:
    """Label keys, annotation keys, finalizers, appProtocol, loadBalancerClass.

    Memoised: every write re-validates the same few label and annotation keys.
    """
    return list(_qualified_name_errors(value))


@functools.lru_cache(maxsize=4096)
def _qualified_name_errors(value: str) -> tuple[str, ...]:
    return tuple(_is_qualified_name(value))


def _is_qualified_name(value: str) -> list[str]:
    errs: list[str] = []
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part " + empty_error())
        else:
            errs.extend("prefix part " + m for m in is_dns1123_subdomain(prefix))
    else:
        return [
            "a qualified name "
            + regex_error(_QNAME_MSG, _QNAME_FMT, "MyName", "my.name", "123-abc")
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    if not name:
        errs.append("name part " + empty_error())
    elif len(name) > QUALIFIED_NAME_MAX:
        errs.append("name part " + max_len_error(QUALIFIED_NAME_MAX))
    if not _full(_QNAME_RE, name):
        errs.append("name part " + regex_error(_QNAME_MSG, _QNAME_FMT, "MyName", "my.name", "123-abc"))
    return errs


def is_valid_label_value(value: str) -> list[str]:
    errs: list[str] = []
    if len(value) > LABEL_VALUE_MAX:
        errs.append(max_len_error(LABEL_VALUE_MAX))
    if not _full(_LABEL_VALUE_RE, value):
        errs.append(regex_error(_LABEL_VALUE_MSG, _LABEL_VALUE_FMT, "MyValue", "my_value", "12345"))
    return errs


def is_valid_port_num(port: int) -> list[str]:
    if 1 <= port <= 65535:
        return []
    return [inclusive_range_error(1, 65535)]


def is_iana_svc_name(port: str) -> list[str]:
    """IsValidPortName: a named port (IANA_SVC_NAME, RFC 6335), lower case only."""
    errs: list[str] = []
    if len(port) > 15:
        errs.append(max_len_error(15))
    if not _full(_PORT_NAME_CHARSET_RE, port):
        errs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not _ONE_LETTER_RE.search(port):
        errs.append("must contain at least one letter (a-z)")
    if "--" in port:
        errs.append("must not contain consecutive hyphens")
    if port and (port[0] == "-" or port[-1] == "-"):
        errs.append("must not begin or end with a hyphen")
    return errs


# --------------------------------------------------------------------------
# IPs and CIDRs (Go's ParseIPSloppy / ParseCIDRSloppy)

IP_ERROR = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
CIDR_ERROR = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"


def _parse_ipv4_sloppy(value: str) -> ipaddress.IPv4Address | None:
    parts = value.split(".")
    if len(parts) != 4:
        return None
    octets: list[int] = []
    for p in parts:
        if not p or not p.isascii() or not p.isdigit():
            return None
        n = int(p)
        if n > 255:
            return None
        octets.append(n)
    return ipaddress.IPv4Address(".".join(map(str, octets)))


def parse_ip(value: Any) -> IPAddr | None:
    """Parse as Go's ParseIPSloppy would; IPv4-mapped IPv6 counts as IPv4."""
    if not isinstance(value, str) or not value or "%" in value:
        return None
    if ":" not in value:
        return _parse_ipv4_sloppy(value)
    try:
        addr = ipaddress.IPv6Address(value)
    except ValueError:
        return None
    return addr.ipv4_mapped or addr


def ip_family(value: Any) -> str | None:
    """``IPv4``/``IPv6`` for a parseable IP (Go's IsIPv6String is "not To4")."""
    ip = parse_ip(value)
    if ip is None:
        return None
    return "IPv4" if ip.version == 4 else "IPv6"


def parse_cidr(value: Any) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    """Parse as ParseCIDRSloppy: host bits may be set, prefix length is required."""
    if not isinstance(value, str) or value.count("/") != 1:
        return None
    addr, _, bits = value.partition("/")
    ip = parse_ip(addr)
    if ip is None or not bits.isascii() or not bits.isdigit():
        return None
    n = int(bits)
    width = 32 if ip.version == 4 and ":" not in addr else 128
    if n > width:
        return None
    if width == 128 and ip.version == 4:
        ip = ipaddress.IPv6Address("::ffff:" + str(ip))
    return ipaddress.ip_network(f"{ip}/{n}", strict=False)


def is_valid_ip(value: Any) -> list[str]:
    return [] if parse_ip(value) is not None else [IP_ERROR]


def is_valid_cidr(value: Any) -> list[str]:
    return [] if parse_cidr(value) is not None else [CIDR_ERROR]


# --------------------------------------------------------------------------
# field-error wrappers, as upstream's Validate* helpers


def _wrap(path: str, value: Any, msgs: list[str]) -> list[FieldError]:
    return [invalid(path, value, m) for m in msgs]


def validate_dns1123_label(value: str, path: str) -> list[FieldError]:
    return _wrap(path, value, is_dns1123_label(value))


def validate_dns1123_subdomain(value: str, path: str) -> list[FieldError]:
    return _wrap(path, value, is_dns1123_subdomain(value))


def validate_qualified_name(value: str, path: str) -> list[FieldError]:
    return _wrap(path, value, is_qualified_name(value))


def validate_ip(value: Any, path: str) -> list[FieldError]:
    return _wrap(path, value, is_valid_ip(value))


def validate_cidr(value: Any, path: str) -> list[FieldError]:
    return _wrap(path, value, is_valid_cidr(value))


def validate_port_num_or_name(value: Any, path: str) -> list[FieldError]:
    """An IntOrString port: numbers 1-65535, names IANA_SVC_NAME (a missing value is int 0)."""
    if value is None:
        value = 0
    if isinstance(value, str):
        return _wrap(path, value, is_iana_svc_name(value))
    return _wrap(path, value, is_valid_port_num(value))


def validate_non_special_ip(value: str, path: str) -> list[FieldError]:
    """ValidateNonSpecialIP: no unspecified, loopback or link-local addresses."""
    ip = parse_ip(value)
    if ip is None:
        return [invalid(path, value, "must be a valid IP address")]
    errs: list[FieldError] = []
    if ip.is_unspecified:
        errs.append(invalid(path, value, f"may not be unspecified ({value})"))
    if ip.is_loopback:
        errs.append(invalid(path, value, "may not be in the loopback range (127.0.0.0/8, ::1/128)"))
    if ip.is_link_local and not ip.is_multicast:
        errs.append(invalid(path, value, "may not be in the link-local range (169.254.0.0/16, fe80::/10)"))
    if _is_link_local_multicast(ip):
        errs.append(
            invalid(path, value, "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)")
        )
    return errs


def _is_link_local_multicast(ip: IPAddr) -> bool:
    if ip.version == 4:
        return ip in ipaddress.IPv4Network("224.0.0.0/24")
    packed = ip.packed
    return packed[0] == 0xFF and (packed[1] & 0x0F) == 0x02
