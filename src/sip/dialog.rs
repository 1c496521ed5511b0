//! Dialogs (RFC 3261 §12): identity, sequence numbers, route set, remote target, and the
//! requests sent within one.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::message::{Request, Response};
use super::{Method, Transport, Uri};

/// §12: a dialog is identified by Call-ID, local tag and remote tag.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DialogId {
    pub call_id: String,
    pub local_tag: String,
    pub remote_tag: String,
}

impl std::fmt::Display for DialogId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{};local={};remote={}", self.call_id, self.local_tag, self.remote_tag)
    }
}

/// Which side created the dialog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialogRole {
    Uac,
    Uas,
}

/// The dialog state (§12): early dialogs are not built yet; a dialog exists once confirmed by 2xx.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialogState {
    /// The 2xx went out; its ACK has not arrived (UAS) or not been sent (UAC).
    Unacked,
    Confirmed,
}

/// The UAS core's 2xx retransmission (§13.3.1.4): T1 doubling to T2 until the ACK, for 64 × T1.
#[derive(Debug, Clone)]
pub(crate) struct Pending2xx {
    pub cseq: u32,
    pub bytes: Vec<u8>,
    pub dest: SocketAddr,
    pub interval: Duration,
    pub next_at: Duration,
    pub give_up_at: Duration,
}

/// One dialog's state (§12.1.1 for the UAS, §12.1.2 for the UAC).
#[derive(Debug, Clone)]
pub struct Dialog {
    pub id: DialogId,
    pub role: DialogRole,
    pub state: DialogState,
    /// Our last CSeq number; the next request uses one more (§12.2.1.1).
    pub local_seq: u32,
    /// The peer's last CSeq number, `None` until it sends one (§12.2.2).
    pub remote_seq: Option<u32>,
    /// Our From (UAC) or To (UAS) header value, with our tag.
    pub local_party: String,
    /// The peer's header value, with its tag.
    pub remote_party: String,
    /// The peer's Contact URI: the Request-URI of in-dialog requests.
    pub remote_target: Uri,
    /// Record-Route URIs in the order in-dialog requests list them as Route.
    pub route_set: Vec<String>,
    pub transport: Transport,
    /// Where the dialog's requests came from: used when the next hop is not an IP literal.
    pub peer: SocketAddr,
    /// Our own INVITE client transaction is in progress (a re-INVITE from the peer is glare, §14.1).
    pub(crate) invite_out: bool,
    /// The peer's re-INVITE is in progress (a second one gets 500 with Retry-After, §14.2).
    pub(crate) invite_in: bool,
    pub(crate) pending_2xx: Option<Pending2xx>,
    /// UAC: the ACK we sent for a 2xx (CSeq, bytes, destination), resent on a retransmitted 2xx.
    pub(crate) last_ack: Option<(u32, Vec<u8>, SocketAddr)>,
    /// UAS: a BYE asked for before the ACK came; sent on the ACK or at the ACK timeout (§15).
    pub(crate) bye_pending: Option<super::ClientTxId>,
}

impl Dialog {
    /// §12.1.1: the UAS side from the INVITE and our 2xx.
    pub(crate) fn uas(request: &Request, response: &Response, peer: SocketAddr, transport: Transport) -> Option<Self> {
        Self::from_exchange(DialogRole::Uas, request, response, peer, transport)
    }

    /// §12.1.2: the UAC side from our INVITE and the 2xx it got.
    pub(crate) fn uac(request: &Request, response: &Response, peer: SocketAddr, transport: Transport) -> Option<Self> {
        Self::from_exchange(DialogRole::Uac, request, response, peer, transport)
    }

    /// The dialog an INVITE and its 2xx create, seen from `role`: our party is the 2xx's To (UAS)
    /// or the INVITE's From (UAC); the remote target is the other side's Contact; the route set is
    /// the Record-Route, reversed on the UAC side.
    fn from_exchange(
        role: DialogRole,
        request: &Request,
        response: &Response,
        peer: SocketAddr,
        transport: Transport,
    ) -> Option<Self> {
        let cseq = request.cseq().ok()?.seq;
        let (local, remote, local_party, remote_party, contacts) = match role {
            DialogRole::Uas => (
                response.to().ok()?,
                request.from().ok()?,
                response.header("To")?,
                request.header("From")?,
                request.contacts(),
            ),
            DialogRole::Uac => (
                request.from().ok()?,
                response.to().ok()?,
                request.header("From")?,
                response.header("To")?,
                response.contacts(),
            ),
        };
        let remote_target = contacts.ok()?.into_iter().next()?.uri;
        let record_route = match role {
            DialogRole::Uas => request.header_all("Record-Route"),
            DialogRole::Uac => response.header_all("Record-Route").into_iter().rev().collect(),
        };
        Some(Self {
            id: DialogId {
                call_id: request.call_id().ok()?.to_string(),
                local_tag: local.tag?,
                remote_tag: remote.tag?,
            },
            role,
            state: DialogState::Unacked,
            // The UAS has sent nothing yet; the UAC's INVITE used `cseq` (§12.1.1, §12.1.2).
            local_seq: if role == DialogRole::Uac { cseq } else { 0 },
            remote_seq: (role == DialogRole::Uas).then_some(cseq),
            local_party: local_party.to_string(),
            remote_party: remote_party.to_string(),
            remote_target,
            route_set: record_route.into_iter().map(str::to_string).collect(),
            transport,
            peer,
            invite_out: false,
            invite_in: false,
            pending_2xx: None,
            last_ack: None,
            bye_pending: None,
        })
    }

    /// §12.2.1.1: a request within the dialog, without Via (the transaction layer adds it).
    /// The Request-URI is the remote target (loose routing) or the first route (strict routing,
    /// when that route has no `lr`); From/To carry exactly one tag each.
    pub(crate) fn request(&self, method: Method, cseq: u32) -> Request {
        let strict = self.route_set.first().is_some_and(|r| !r.contains(";lr"));
        let (uri, routes): (Uri, Vec<String>) = if strict {
            let first = route_uri(&self.route_set[0]).unwrap_or_else(|| self.remote_target.clone());
            let mut rest: Vec<String> = self.route_set[1..].to_vec();
            rest.push(format!("<{}>", super::message::print_uri(&self.remote_target)));
            (first, rest)
        } else {
            (self.remote_target.clone(), self.route_set.clone())
        };
        let mut req = Request::new(method, uri);
        req.push_header("Max-Forwards", "70");
        req.push_header("From", self.local_party.clone());
        req.push_header("To", self.remote_party.clone());
        req.push_header("Call-ID", self.id.call_id.clone());
        req.push_header("CSeq", format!("{cseq} {method}"));
        for r in routes {
            req.push_header("Route", r);
        }
        req
    }

    /// Where an in-dialog request goes (§8.1.2, RFC 3263 without DNS): the first route, or the
    /// remote target, when it is an IP literal; otherwise the address the peer used.
    pub(crate) fn next_hop(&self) -> SocketAddr {
        // On TCP the UAS reuses the connection the dialog came in on (RFC 5923's reasoning: a
        // caller behind NAT or a proxy cannot take a new connection; Kamailio does the same).
        if self.transport == Transport::Tcp && self.role == DialogRole::Uas {
            return self.peer;
        }
        let first = self.route_set.first().and_then(|r| route_uri(r));
        let uri = first.as_ref().unwrap_or(&self.remote_target);
        uri_socket_addr(uri).unwrap_or(self.peer)
    }
}

/// The URI inside a Route/Record-Route value.
fn route_uri(value: &str) -> Option<Uri> {
    let start = value.find('<')? + 1;
    let end = value[start..].find('>')? + start;
    rsipstack::sip::parse_uri(&value[start..end]).ok()
}

/// The address of a URI whose host is an IP literal (default port 5060).
pub(crate) fn uri_socket_addr(uri: &Uri) -> Option<SocketAddr> {
    let host = uri.host_with_port.host.to_string();
    let ip: IpAddr = host.trim_start_matches('[').trim_end_matches(']').parse().ok()?;
    let port = uri.host_with_port.port.as_ref().map_or(5060, |p| p.value());
    Some(SocketAddr::new(ip, port))
}
