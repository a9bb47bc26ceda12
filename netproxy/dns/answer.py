"""One DNS query in, one decision out (pure): a response, "forward it upstream", or "drop it".

Theory of operation:
- Whatever arrives is parsed with dnspython. Fewer than 12 bytes, or a packet that is itself a
  response (QR set), is dropped: answering responses lets two servers bounce a packet forever.
  Anything else that does not parse gets FORMERR, built from the header alone.
- Opcodes other than QUERY get NOTIMP; a query with other than one question, FORMERR (RFC 9619);
  an EDNS version above 0, BADVERS (RFC 6891 §6.1.3); a class other than IN, REFUSED.
- Names in the cluster domain are ours (AA set): records from the view, NXDOMAIN for a name
  that does not exist, NOERROR with no records for a name that exists with none of the asked
  type (AAAA of an IPv4 service), both with the zone's SOA so resolvers cache the negative answer
  (RFC 2308). Search-path expansions such as `web.default.svc.cluster.local.default.svc.cluster.local`
  are just names that do not exist, so a resolver walking the search list moves on at once.
- Reverse names (in-addr.arpa, ip6.arpa) are answered when the view holds a PTR; otherwise they
  fall through to the upstream, as with CoreDNS's `fallthrough in-addr.arpa ip6.arpa`.
- Every other name is forwarded when there is an upstream, and REFUSED when there is none.
- Over UDP the response must fit the client's buffer (512 bytes, or the EDNS size, up to 4096);
  if it does not, a truncated response (TC, question only) sends the client to TCP (RFC 1035 §4.2.1).
"""

from __future__ import annotations

import functools
import struct
from dataclasses import dataclass

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from netproxy.dns.view import Record, ServiceView

UDP_DEFAULT_SIZE = 512
UDP_MAX_SIZE = 4096
TCP_MAX_SIZE = 65535
REVERSE_ZONES = ("in-addr.arpa", "ip6.arpa")
SOA_REFRESH_S, SOA_RETRY_S, SOA_EXPIRE_S = 7200, 1800, 86400


@dataclass(frozen=True)
class Forward:
    """Send the query upstream unchanged and relay the upstream's response."""


FORWARD = Forward()


def header_only_response(query: bytes, rcode: int) -> bytes:
    """A response with no sections for a packet that could not be parsed: the ID, opcode and RD
    are copied from its header."""
    ident, flags = struct.unpack_from(">HH", query)
    flags = 0x8000 | (flags & 0x7900) | (rcode & 0xF)  # QR, then opcode and RD as asked
    return struct.pack(">HHHHHH", ident, flags, 0, 0, 0, 0)


@functools.lru_cache(maxsize=65536)
def _rdata(rtype: str, data: str) -> dns.rdata.Rdata:
    """Parsed once per distinct record (rdata objects are immutable): the response cache is
    emptied whenever the view changes, and parsing the text is most of an answer's cost."""
    return dns.rdata.from_text(dns.rdataclass.IN, rtype, data)


def _rrset(name: dns.name.Name, rtype: str, records: list[Record], ttl_s: int) -> dns.rrset.RRset:
    return dns.rrset.from_rdata_list(name, ttl_s, [_rdata(r.rtype, r.data) for r in records])


def _soa(view: ServiceView, ttl_s: int) -> dns.rrset.RRset:
    zone = dns.name.from_text(view.domain)
    data = (f"ns.dns.{view.domain}. hostmaster.{view.domain}. {view.generation % 2**32} "
            f"{SOA_REFRESH_S} {SOA_RETRY_S} {SOA_EXPIRE_S} {ttl_s}")
    return dns.rrset.from_rdata_list(zone, ttl_s, [_rdata("SOA", data)])


def _key(name: dns.name.Name) -> str:
    return name.to_text(omit_final_dot=True).lower()


def _fill_authoritative(response: dns.message.Message, view: ServiceView, question: dns.rrset.RRset, key: str,
                        ttl_s: int) -> None:
    name, rtype = question.name, dns.rdatatype.to_text(question.rdtype)
    response.flags |= dns.flags.AA
    if key == view.domain and rtype in ("SOA", "ANY"):
        response.answer.append(_soa(view, ttl_s))
        return
    found = view.lookup(key)
    if found is None:
        response.set_rcode(dns.rcode.NXDOMAIN)
        response.authority.append(_soa(view, ttl_s))
        return
    cname = [r for r in found if r.rtype == "CNAME"]
    if cname and rtype != "CNAME":
        # a CNAME stands for every type (RFC 1034 §3.6.2); the client resolves the target itself
        response.answer.append(_rrset(name, "CNAME", cname, ttl_s))
        return
    wanted = [r for r in found if rtype == "ANY" or r.rtype == rtype]
    if not wanted:
        response.authority.append(_soa(view, ttl_s))
        return
    for kind in dict.fromkeys(r.rtype for r in wanted):
        response.answer.append(_rrset(name, kind, [r for r in wanted if r.rtype == kind], ttl_s))
    for record in wanted:
        if record.rtype == "SRV":  # the targets' addresses, so the client needs no second query
            target = record.data.split()[-1]
            addresses = [r for r in view.lookup(target.rstrip(".")) or () if r.rtype in ("A", "AAAA")]
            for kind in dict.fromkeys(r.rtype for r in addresses):
                rrset = _rrset(dns.name.from_text(target), kind, [r for r in addresses if r.rtype == kind], ttl_s)
                if rrset not in response.additional:
                    response.additional.append(rrset)


def _in_zone(key: str, zone: str) -> bool:
    return key == zone or key.endswith("." + zone)


def _wire(response: dns.message.Message, limit: int) -> bytes:
    try:
        return response.to_wire(max_size=limit)
    except dns.exception.TooBig:
        response.answer, response.authority, response.additional = [], [], []
        response.flags |= dns.flags.TC
        return response.to_wire(max_size=limit)


def answer(query: bytes, view: ServiceView, *, upstream: bool = False, tcp: bool = False,
           ttl_s: int = 5) -> bytes | Forward | None:
    """The response to `query` (bytes), FORWARD, or None (drop). `upstream`: whether there is
    somewhere to forward names outside our zones; `tcp`: the query came over TCP (no size limit)."""
    if len(query) < 12 or query[2] & 0x80:
        return None
    if (query[2] >> 3) & 0xF != dns.opcode.QUERY:  # before parsing: UPDATE and NOTIFY parse differently
        return header_only_response(query, dns.rcode.NOTIMP)
    try:
        message = dns.message.from_wire(query)
    except dns.message.UnknownTSIGKey:
        return header_only_response(query, dns.rcode.REFUSED)
    except Exception:  # whatever the bytes were, the answer is FORMERR, never a crash
        return header_only_response(query, dns.rcode.FORMERR)
    if len(message.question) != 1:
        return header_only_response(query, dns.rcode.FORMERR)
    response = dns.message.make_response(message, our_payload=UDP_MAX_SIZE)
    if upstream:
        response.flags |= dns.flags.RA
    limit = TCP_MAX_SIZE if tcp else min(max(message.payload, UDP_DEFAULT_SIZE), UDP_MAX_SIZE) \
        if message.edns >= 0 else UDP_DEFAULT_SIZE
    if message.edns > 0:
        response.set_rcode(dns.rcode.BADVERS)
        return _wire(response, limit)
    question = message.question[0]
    key = _key(question.name)
    if question.rdclass != dns.rdataclass.IN:
        response.set_rcode(dns.rcode.REFUSED)
    elif view.in_domain(key):
        _fill_authoritative(response, view, question, key, ttl_s)
    elif any(_in_zone(key, zone) for zone in REVERSE_ZONES) and view.lookup(key):
        _fill_authoritative(response, view, question, key, ttl_s)
    elif upstream:
        return FORWARD
    else:
        response.set_rcode(dns.rcode.REFUSED)
    return _wire(response, limit)


def server_failure(query: bytes) -> bytes | None:
    """SERVFAIL for a query that could not be forwarded (every upstream failed or timed out)."""
    if len(query) < 12:
        return None
    try:
        response = dns.message.make_response(dns.message.from_wire(query))
    except Exception:  # it parsed once already; if not, a bare header will do
        return header_only_response(query, dns.rcode.SERVFAIL)
    response.set_rcode(dns.rcode.SERVFAIL)
    return _wire(response, UDP_DEFAULT_SIZE)
