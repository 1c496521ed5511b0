//! The SIP endpoint: transaction matching (§17.1.3, §17.2.3), the UAS and UAC cores (§8, §13, §15),
//! CANCEL (§9), dialogs (§12) and response routing (§18.2.2, RFC 3581), sans-IO.
//!
//! Run loop (str0m's shape): feed what arrives with [`Endpoint::handle_datagram`] or
//! [`Endpoint::handle_message`] and due timers with [`Endpoint::handle_timeout`]; then drain
//! [`Endpoint::poll_transmit`] (bytes to send) and [`Endpoint::poll_event`] (what the application
//! must act on), and sleep until [`Endpoint::poll_timeout`]. The application answers requests with
//! [`Endpoint::respond`] and sends with [`Endpoint::send_request`] / [`Endpoint::send_in_dialog`].
//!
//! What the endpoint does by itself, so that no application can get it wrong: 100 Trying to every
//! INVITE, 200 to a matching CANCEL and 487 to its INVITE, 481 to requests for unknown dialogs or
//! transactions, 200 to OPTIONS (with Allow, Accept, Supported), 200 to BYE, 491 on re-INVITE
//! glare, 2xx retransmission until the ACK and a BYE when none comes in 64 × T1, and the ACK for a
//! retransmitted 2xx.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use super::dialog::{uri_socket_addr, Dialog, DialogId, DialogRole, DialogState, Pending2xx};
use super::message::{Request, Response, SipMessage};
use super::timer::TimerConfig;
use super::transaction::{Absorbed, ClientEvent, ClientTransaction, ServerTransaction, TransactionError, MAGIC_COOKIE};
use super::{BadMessageAction, Method, SipError, Uri};

/// Methods we implement, for Allow (§20.5).
pub const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO";
/// Bodies we understand, for Accept (§20.1).
pub const ACCEPT: &str = "application/sdp";

/// The transport a message came in on or goes out on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
}

impl Transport {
    /// Reliable transports need no retransmission (§17.1.1.2).
    pub fn is_reliable(self) -> bool {
        self == Transport::Tcp
    }

    fn via_name(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
        }
    }
}

/// Bytes for the runtime to send. On TCP, `dest` names the connection (opened if none is).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub transport: Transport,
    pub dest: SocketAddr,
    pub payload: Vec<u8>,
}

/// Endpoint settings.
#[derive(Debug, Clone)]
pub struct EndpointConfig {
    pub timers: TimerConfig,
    /// Our address as peers reach it: Via sent-by and Contact.
    pub public_addr: SocketAddr,
    /// The user part of our Contact.
    pub contact_user: String,
    /// Server / User-Agent header value.
    pub user_agent: String,
    /// An INVITE the application has not answered finally by then gets 487 and a `Cancelled`
    /// event, as if the caller had cancelled it (§13.3.1: the INVITE's Expires, when shorter,
    /// applies). A guard against an application that forgets a call, so nothing leaks.
    pub answer_timeout: Duration,
}

impl EndpointConfig {
    pub fn new(public_addr: SocketAddr) -> Self {
        Self {
            timers: TimerConfig::default(),
            public_addr,
            contact_user: "rms".to_string(),
            user_agent: concat!("rms/", env!("CARGO_PKG_VERSION")).to_string(),
            answer_timeout: Duration::from_secs(180),
        }
    }
}

/// A server transaction handle, for [`Endpoint::respond`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServerTxId(u64);

/// A client transaction handle, named in the events about its responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientTxId(u64);

/// Why a dialog ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialogEnd {
    /// The peer sent BYE (answered 200 by the endpoint).
    ByeReceived,
    /// We sent BYE.
    ByeSent,
    /// Our 2xx was never ACKed within 64 × T1; the endpoint sent BYE (§13.3.1.4).
    AckTimeout,
    /// An in-dialog request got 481 or timed out (§12.2.1.2).
    Failed,
}

/// What the application must act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SipEvent {
    /// A request to answer with [`Endpoint::respond`]: an initial INVITE, or a request within a
    /// dialog (re-INVITE, INFO, ...), or an out-of-dialog request the endpoint does not handle.
    Request { tx: ServerTxId, request: Request, dialog: Option<DialogId>, source: SocketAddr, transport: Transport },
    /// A CANCEL matched this unanswered INVITE: 200 went to the CANCEL and 487 to the INVITE.
    /// Also sent when the application left an INVITE unanswered past `answer_timeout` (or the
    /// INVITE's Expires): the endpoint answered 487.
    Cancelled { tx: ServerTxId },
    /// A response to one of our requests (provisional or final; a 2xx to an INVITE carries the
    /// dialog it created, which the application must ACK with [`Endpoint::ack`]).
    Response { tx: ClientTxId, response: Response, dialog: Option<DialogId> },
    /// No final response (timer B or F): act as on 408 (§8.1.3.1).
    Timeout { tx: ClientTxId },
    /// The request could not be sent (a TCP connection to its destination failed): act as on 503
    /// (§8.1.3.1, §17.1.4).
    TransportFailed { tx: ClientTxId },
    /// The ACK for our 2xx arrived (its body is the SDP answer when our 2xx held the offer).
    Ack { dialog: DialogId, request: Request },
    /// A dialog is gone, and why.
    DialogEnded { dialog: DialogId, reason: DialogEnd },
}

/// Misuse of the endpoint by the application.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    #[error("no such server transaction")]
    UnknownTransaction,
    #[error("no such dialog")]
    UnknownDialog,
    #[error(transparent)]
    Transaction(#[from] TransactionError),
    /// §14.1: an INVITE of ours is still in progress in this dialog.
    #[error("an INVITE is already in progress in this dialog")]
    InviteInProgress,
    #[error("request builder: {0}")]
    Build(#[from] SipError),
}

/// A message body and its type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Body {
    pub content_type: String,
    pub bytes: Vec<u8>,
}

impl Body {
    pub fn sdp(bytes: impl Into<Vec<u8>>) -> Self {
        Self { content_type: "application/sdp".to_string(), bytes: bytes.into() }
    }
}

/// A response the application asks for; the endpoint adds tags, Contact and Record-Route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Body>,
}

impl Reply {
    pub fn new(status: u16, reason: impl Into<String>) -> Self {
        Self { status, reason: reason.into(), headers: Vec::new(), body: None }
    }

    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    pub fn with_body(mut self, body: Body) -> Self {
        self.body = Some(body);
        self
    }
}

/// An out-of-dialog request the application sends (the UAC core fills Via, tags, Call-ID, CSeq).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingRequest {
    pub method: Method,
    pub uri: Uri,
    /// From header value without tag, e.g. `<sip:rms@192.0.2.1>`.
    pub from: String,
    /// To header value, e.g. `<sip:bob@192.0.2.2>`.
    pub to: String,
    pub dest: SocketAddr,
    pub transport: Transport,
    pub headers: Vec<(String, String)>,
    pub body: Option<Body>,
}

/// §17.2.3 server transaction key: branch, sent-by and method (ACK matches its INVITE). Requests
/// without the RFC 3261 magic cookie get a key from Call-ID, CSeq number and From tag instead
/// (a simplification of the RFC 2543 rules that fits every UA we know of).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ServerKey {
    branch: String,
    sent_by: String,
    method: Method,
}

/// §8.2.2.2: what identifies a request outside a dialog beside its transaction, to spot the same
/// request arriving again by another path (a forking proxy, a loop).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct MergeKey {
    call_id: String,
    from_tag: String,
    cseq: u32,
    method: Method,
}

/// §17.1.3 client transaction key: our branch and the CSeq method.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ClientKey {
    branch: String,
    method: Method,
}

/// What a timer index entry points at.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Slot {
    Server(ServerTxId),
    Client(ClientTxId),
    Dialog(DialogId),
}

struct ServerEntry {
    tx: ServerTransaction,
    key: ServerKey,
    request: Request,
    source: SocketAddr,
    /// Where responses go (§18.2.2).
    reply_to: SocketAddr,
    transport: Transport,
    /// Our To tag for this request's responses (INVITE).
    local_tag: String,
    dialog: Option<DialogId>,
    /// Its entry in `merge_keys` (requests without a To tag).
    merge_key: Option<MergeKey>,
    /// INVITE: when the endpoint gives up waiting for the application's final answer.
    answer_by: Option<Duration>,
    deadline: Option<Duration>,
}

struct ClientEntry {
    tx: ClientTransaction,
    key: ClientKey,
    dest: SocketAddr,
    transport: Transport,
    dialog: Option<DialogId>,
    /// A CANCEL asked for before any provisional response (§9.1: sent once one arrives).
    cancel_pending: bool,
    deadline: Option<Duration>,
}

/// The SIP endpoint. See the module docs for the run loop.
pub struct Endpoint {
    config: EndpointConfig,
    rng: fastrand::Rng,
    next_id: u64,
    servers: HashMap<ServerTxId, ServerEntry>,
    server_keys: HashMap<ServerKey, ServerTxId>,
    /// Ongoing server transactions of requests without a To tag, for merged-request detection.
    merge_keys: HashMap<MergeKey, ServerTxId>,
    clients: HashMap<ClientTxId, ClientEntry>,
    client_keys: HashMap<ClientKey, ClientTxId>,
    dialogs: HashMap<DialogId, Dialog>,
    timers: BTreeSet<(Duration, Slot)>,
    /// Each dialog's entry in `timers`, so it is replaced in O(log n) (transactions keep theirs
    /// in their entry; a dialog's must outlive the dialog's removal).
    dialog_timers: HashMap<DialogId, Duration>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<SipEvent>,
}

impl Endpoint {
    /// `seed` drives tags, branches and Call-IDs, so tests repeat exactly.
    pub fn new(config: EndpointConfig, seed: u64) -> Self {
        Self {
            config,
            rng: fastrand::Rng::with_seed(seed),
            next_id: 0,
            servers: HashMap::new(),
            server_keys: HashMap::new(),
            merge_keys: HashMap::new(),
            clients: HashMap::new(),
            client_keys: HashMap::new(),
            dialogs: HashMap::new(),
            timers: BTreeSet::new(),
            dialog_timers: HashMap::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    pub fn config(&self) -> &EndpointConfig {
        &self.config
    }

    /// A UDP datagram arrived. Unreadable requests get the response [`SipError::action`] names
    /// (when the headers needed to address it can be read); everything else unreadable is dropped.
    pub fn handle_datagram(&mut self, now: Duration, source: SocketAddr, bytes: &[u8]) {
        // RFC 5626 §4.4.1 keep-alives: a bare CRLF (or CRLFCRLF) is not a message.
        if bytes.iter().all(|b| matches!(b, b'\r' | b'\n' | b' ' | b'\t' | 0)) {
            return;
        }
        match SipMessage::parse_datagram(bytes) {
            Ok(msg) => self.handle_message(now, source, Transport::Udp, msg),
            Err(err) => self.reject_unreadable(source, Transport::Udp, bytes, &err),
        }
    }

    /// A complete message arrived (TCP messages come framed by the runtime's `StreamFramer`).
    pub fn handle_message(&mut self, now: Duration, source: SocketAddr, transport: Transport, msg: SipMessage) {
        match msg {
            SipMessage::Request(req) => self.handle_request(now, source, transport, req),
            SipMessage::Response(resp) => self.handle_response(now, resp),
        }
    }

    /// A stream message that could not be read: answered when possible (the caller closes the
    /// connection when framing is lost).
    pub fn handle_unreadable(&mut self, source: SocketAddr, transport: Transport, bytes: &[u8], err: &SipError) {
        self.reject_unreadable(source, transport, bytes, err);
    }

    /// Run every timer due by `now`.
    pub fn handle_timeout(&mut self, now: Duration) {
        while let Some((at, slot)) = self.timers.first().cloned() {
            if at > now {
                break;
            }
            self.timers.remove(&(at, slot.clone()));
            match slot {
                Slot::Server(id) => {
                    let mut give_up = false;
                    if let Some(e) = self.servers.get_mut(&id) {
                        e.deadline = None;
                        e.tx.handle_timeout(now);
                        give_up = e.answer_by.is_some_and(|at| at <= now) && !e.tx.is_answered();
                    }
                    self.after_server(id);
                    if give_up {
                        tracing::warn!(tx = ?id, "INVITE not answered in time: 487");
                        self.auto_reply(now, id, Reply::new(487, "Request Terminated"));
                        self.events.push_back(SipEvent::Cancelled { tx: id });
                    }
                }
                Slot::Client(id) => {
                    if let Some(e) = self.clients.get_mut(&id) {
                        e.deadline = None;
                        e.tx.handle_timeout(now);
                    }
                    self.after_client(now, id);
                }
                Slot::Dialog(id) => {
                    self.dialog_timers.remove(&id);
                    self.dialog_timeout(now, id)
                }
            }
        }
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<SipEvent> {
        self.events.pop_front()
    }

    /// When [`Endpoint::handle_timeout`] next has work.
    pub fn poll_timeout(&self) -> Option<Duration> {
        self.timers.first().map(|(at, _)| *at)
    }

    /// Live transactions, dialogs and timers: all zero once every call has ended and every
    /// transaction has run out.
    pub fn counts(&self) -> EndpointCounts {
        EndpointCounts {
            server_transactions: self.servers.len(),
            client_transactions: self.clients.len(),
            dialogs: self.dialogs.len(),
            timers: self.timers.len(),
            merge_keys: self.merge_keys.len(),
        }
    }

    pub fn dialog(&self, id: &DialogId) -> Option<&Dialog> {
        self.dialogs.get(id)
    }

    /// The request a server transaction was created for.
    pub fn request(&self, tx: ServerTxId) -> Option<&Request> {
        self.servers.get(&tx).map(|e| &e.request)
    }

    /// Answer a request. For an INVITE, a 2xx creates the dialog (returned) and starts its
    /// retransmission until the ACK; 18x and 2xx get our To tag, Contact and the Record-Route.
    pub fn respond(&mut self, now: Duration, tx: ServerTxId, reply: Reply) -> Result<Option<DialogId>, EndpointError> {
        let entry = self.servers.get(&tx).ok_or(EndpointError::UnknownTransaction)?;
        let response = self.build_response(entry, reply);
        let is_invite = *entry.request.method() == Method::Invite;
        let status = response.status();
        let entry = self.servers.get_mut(&tx).ok_or(EndpointError::UnknownTransaction)?;
        entry.tx.respond(now, &response)?;
        let (reply_to, transport, existing) = (entry.reply_to, entry.transport, entry.dialog.clone());
        let mut created = None;
        if is_invite && (200..300).contains(&status) {
            let dialog_id = match existing {
                // re-INVITE: the dialog exists.
                Some(id) => {
                    if let Some(d) = self.dialogs.get_mut(&id) {
                        d.invite_in = false;
                    }
                    id
                }
                None => {
                    let entry = self.servers.get(&tx).ok_or(EndpointError::UnknownTransaction)?;
                    let dialog = Dialog::uas(&entry.request, &response, entry.source, transport)
                        .ok_or(SipError::MissingHeader { name: "Contact" })?;
                    let id = dialog.id.clone();
                    self.dialogs.insert(id.clone(), dialog);
                    if let Some(e) = self.servers.get_mut(&tx) {
                        e.dialog = Some(id.clone());
                    }
                    id
                }
            };
            let cseq = self.servers.get(&tx).and_then(|e| e.request.cseq().ok()).map_or(0, |c| c.seq);
            let t = self.config.timers;
            if let Some(d) = self.dialogs.get_mut(&dialog_id) {
                d.pending_2xx = Some(Pending2xx {
                    cseq,
                    bytes: response.to_bytes(),
                    dest: reply_to,
                    interval: t.t1,
                    next_at: now + t.t1,
                    give_up_at: now + t.timeout(),
                });
            }
            self.reindex_dialog(&dialog_id);
            created = Some(dialog_id);
        } else if is_invite && status >= 300 {
            if let Some(d) = existing.and_then(|id| self.dialogs.get_mut(&id)) {
                d.invite_in = false;
            }
        }
        self.after_server(tx);
        Ok(created)
    }

    /// Send an out-of-dialog request (a B-leg INVITE, an OPTIONS ping, ...).
    pub fn send_request(&mut self, now: Duration, out: OutgoingRequest) -> ClientTxId {
        let mut req = Request::new(out.method, out.uri);
        req.push_header("Max-Forwards", "70");
        let tag = self.token(8);
        req.push_header("From", format!("{};tag={tag}", out.from));
        req.push_header("To", out.to);
        req.push_header("Call-ID", format!("{}@{}", self.token(16), self.config.public_addr.ip()));
        req.push_header("CSeq", format!("1 {}", out.method));
        if out.method == Method::Invite {
            req.push_header("Contact", self.contact(out.transport));
        }
        for (n, v) in out.headers {
            req.push_header(&n, v);
        }
        if let Some(body) = out.body {
            req.set_body(Some(&body.content_type), body.bytes);
        }
        self.start_client(now, req, out.dest, out.transport, None)
    }

    /// Send a request within a dialog (§12.2.1.1): BYE, re-INVITE, INFO, OPTIONS. A BYE ends the
    /// dialog at once (§15.1.1).
    pub fn send_in_dialog(
        &mut self,
        now: Duration,
        dialog: &DialogId,
        method: Method,
        headers: Vec<(String, String)>,
        body: Option<Body>,
    ) -> Result<ClientTxId, EndpointError> {
        self.send_in_dialog_ending(now, dialog, method, headers, body, DialogEnd::ByeSent)
    }

    /// [`Endpoint::send_in_dialog`], naming why a BYE ends the dialog.
    fn send_in_dialog_ending(
        &mut self,
        now: Duration,
        dialog: &DialogId,
        method: Method,
        headers: Vec<(String, String)>,
        body: Option<Body>,
        bye_reason: DialogEnd,
    ) -> Result<ClientTxId, EndpointError> {
        let contact = self.contact(self.dialogs.get(dialog).ok_or(EndpointError::UnknownDialog)?.transport);
        let d = self.dialogs.get_mut(dialog).ok_or(EndpointError::UnknownDialog)?;
        if method == Method::Invite && (d.invite_out || d.invite_in) {
            return Err(EndpointError::InviteInProgress);
        }
        if d.bye_pending.is_some() {
            return Err(EndpointError::UnknownDialog);
        }
        // §15: the callee must not send BYE before the ACK for its 2xx (or the end of its
        // retransmissions). The session ends now for the application; the BYE waits.
        if method == Method::Bye && d.role == DialogRole::Uas && d.pending_2xx.is_some() {
            let id = ClientTxId(self.next());
            let d = self.dialogs.get_mut(dialog).ok_or(EndpointError::UnknownDialog)?;
            d.bye_pending = Some(id);
            self.events.push_back(SipEvent::DialogEnded { dialog: dialog.clone(), reason: bye_reason });
            return Ok(id);
        }
        d.local_seq += 1;
        let mut req = d.request(method, d.local_seq);
        if method == Method::Invite {
            req.push_header("Contact", contact);
            d.invite_out = true;
        }
        for (n, v) in headers {
            req.push_header(&n, v);
        }
        if let Some(body) = body {
            req.set_body(Some(&body.content_type), body.bytes);
        }
        let (dest, transport) = (d.next_hop(), d.transport);
        let id = ClientTxId(self.next());
        self.start_client_as(now, id, req, dest, transport, Some(dialog.clone()));
        if method == Method::Bye {
            self.end_dialog(dialog, bye_reason);
        }
        Ok(id)
    }

    /// Send the BYE deferred until the ACK (or the ACK timeout), then forget the dialog; the
    /// application was told when it asked.
    fn send_deferred_bye(&mut self, now: Duration, dialog: &DialogId, id: ClientTxId) {
        let Some(d) = self.dialogs.get_mut(dialog) else { return };
        d.pending_2xx = None;
        d.local_seq += 1;
        let req = d.request(Method::Bye, d.local_seq);
        let (dest, transport) = (d.next_hop(), d.transport);
        self.start_client_as(now, id, req, dest, transport, Some(dialog.clone()));
        self.dialogs.remove(dialog);
        self.reindex_dialog(dialog);
    }

    /// §13.2.2.4: ACK a 2xx to our INVITE (with the SDP answer when the 2xx held the offer). The
    /// endpoint re-sends this ACK for every retransmission of that 2xx.
    pub fn ack(&mut self, dialog: &DialogId, cseq: u32, body: Option<Body>) -> Result<(), EndpointError> {
        let branch = self.branch();
        let via = format!(
            "SIP/2.0/{} {};branch={branch};rport",
            self.dialog_transport(dialog)?.via_name(),
            self.config.public_addr
        );
        let d = self.dialogs.get_mut(dialog).ok_or(EndpointError::UnknownDialog)?;
        let mut ack = d.request(Method::Ack, cseq);
        ack.prepend_header("Via", via);
        if let Some(body) = body {
            ack.set_body(Some(&body.content_type), body.bytes);
        }
        d.state = DialogState::Confirmed;
        let bytes = ack.to_bytes();
        let dest = d.next_hop();
        d.last_ack = Some((cseq, bytes.clone(), dest));
        self.transmits.push_back(Transmit { transport: d.transport, dest, payload: bytes });
        Ok(())
    }

    /// The runtime could not reach `dest` over `transport` (a TCP connect failed): every request
    /// of ours still waiting there fails (§17.1.4), and a failed in-dialog request other than BYE
    /// ends its dialog (§12.2.1.2).
    pub fn transport_failed(&mut self, transport: Transport, dest: SocketAddr) {
        let ids: Vec<ClientTxId> = self
            .clients
            .iter()
            .filter(|(_, e)| e.transport == transport && e.dest == dest)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            let Some(e) = self.clients.get_mut(&id) else { continue };
            if !e.tx.transport_failed() {
                continue;
            }
            let method = *e.tx.request().method();
            if let Some(d) = e.dialog.clone() {
                if let Some(dialog) = self.dialogs.get_mut(&d) {
                    if method == Method::Invite {
                        dialog.invite_out = false;
                    }
                }
                if method != Method::Bye {
                    self.end_dialog(&d, DialogEnd::Failed);
                }
            }
            self.events.push_back(SipEvent::TransportFailed { tx: id });
            self.reindex_client(id);
        }
    }

    /// §9.1: cancel our INVITE. Sent at once if a provisional response has arrived, otherwise
    /// as soon as one does. No effect once a final response arrived.
    pub fn cancel(&mut self, now: Duration, tx: ClientTxId) {
        let Some(entry) = self.clients.get_mut(&tx) else { return };
        match entry.tx.state() {
            super::ClientState::Proceeding => {
                let cancel = cancel_for(entry.tx.request());
                let (dest, transport) = (entry.dest, entry.transport);
                self.start_client(now, cancel, dest, transport, None);
            }
            super::ClientState::Calling => entry.cancel_pending = true,
            _ => {}
        }
    }

    // ----- requests -----

    fn handle_request(&mut self, now: Duration, source: SocketAddr, transport: Transport, mut req: Request) {
        // §18.2.1 and RFC 3581 §4: record where the request really came from.
        let Ok(mut via) = req.via_top() else { return };
        let source_ip = source.ip().to_string();
        let host = via.host.trim_start_matches('[').trim_end_matches(']').to_string();
        let rport = via.rport.is_some();
        if host != source_ip || rport {
            let top = req.header("Via").unwrap_or_default().to_string();
            let mut top = strip_via_param(&top, "received");
            if rport {
                top = strip_via_param(&top, "rport");
                top.push_str(&format!(";rport={}", source.port()));
            }
            top.push_str(&format!(";received={source_ip}"));
            req.set_first_header("Via", top);
            via.received = Some(source_ip.clone());
        }
        // §18.2.2, RFC 3581 §4: TCP answers on the connection; UDP to the source address, at its
        // port when rport was asked for, else at the sent-by port. (`received` is always the
        // source here: a sent-by that names the source is the source.)
        let reply_to = match transport {
            Transport::Tcp => source,
            Transport::Udp if rport => source,
            Transport::Udp => SocketAddr::new(source.ip(), via.port.unwrap_or(5060)),
        };
        let method = *req.method();
        let key = server_key(&req, &via);
        // Retransmission, or ACK for a non-2xx final (§17.2.3).
        if let Some(&id) = self.server_keys.get(&key) {
            if let Some(e) = self.servers.get_mut(&id) {
                if e.tx.handle_request(now, &method) == Absorbed::Yes || method != Method::Ack {
                    self.after_server(id);
                    return;
                }
            }
            self.after_server(id);
        }
        if method == Method::Ack {
            self.handle_ack(now, req);
            return;
        }
        let reliable = transport.is_reliable();
        let tx = ServerTransaction::new(now, &req, reliable, self.config.timers);
        let id = ServerTxId(self.next());
        let local_tag = self.token(8);
        let answer_by = (method == Method::Invite).then(|| {
            // §20.19 Expires: delta-seconds.
            let expires = req.header("Expires").and_then(|v| v.trim().parse::<u64>().ok()).map(Duration::from_secs);
            now + expires.map_or(self.config.answer_timeout, |e| e.min(self.config.answer_timeout))
        });
        self.server_keys.insert(key.clone(), id);
        self.servers.insert(
            id,
            ServerEntry {
                tx,
                key,
                request: req,
                source,
                reply_to,
                transport,
                local_tag,
                dialog: None,
                merge_key: None,
                answer_by,
                deadline: None,
            },
        );
        self.after_server(id);
        self.dispatch_request(now, id);
    }

    /// A new request with its server transaction: the UAS core's checks (§8.2), then CANCEL,
    /// in-dialog handling (§12.2.2), or the application.
    fn dispatch_request(&mut self, now: Duration, id: ServerTxId) {
        let e = &self.servers[&id];
        let req = e.request.clone();
        let (source, transport) = (e.source, e.transport);
        let method = *req.method();
        // §8.2.2.1: we serve sip:, sips: and tel: Request-URIs.
        let scheme = req.uri().scheme.as_ref().map(|s| s.to_string().to_ascii_lowercase()).unwrap_or_default();
        if !matches!(scheme.as_str(), "sip" | "sips" | "tel") {
            return self.auto_reply(now, id, Reply::new(416, "Unsupported URI Scheme"));
        }
        // §8.2.2.3: we support no extensions.
        let required: Vec<String> = req
            .header_all("Require")
            .iter()
            .flat_map(|v| v.split(','))
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .collect();
        if !required.is_empty() && method != Method::Cancel {
            let reply = Reply::new(420, "Bad Extension").with_header("Unsupported", required.join(", "));
            return self.auto_reply(now, id, reply);
        }
        // §8.2.3: we read SDP bodies only.
        if !req.body().is_empty() && matches!(method, Method::Invite) {
            let ct = req.content_type().unwrap_or("").split(';').next().unwrap_or("").trim().to_ascii_lowercase();
            let encoded = req.header("Content-Encoding").is_some_and(|v| !v.trim().eq_ignore_ascii_case("identity"));
            if ct != "application/sdp" || encoded {
                let reply = Reply::new(415, "Unsupported Media Type")
                    .with_header("Accept", ACCEPT)
                    .with_header("Accept-Encoding", "identity");
                return self.auto_reply(now, id, reply);
            }
        }
        if method == Method::Cancel {
            return self.handle_cancel(now, id);
        }
        // §8.1.1.8: an INVITE must say where the dialog's requests go.
        if method == Method::Invite && req.contacts().map_or(true, |c| c.is_empty()) {
            return self.auto_reply(now, id, Reply::new(400, "Bad Request - Missing Contact"));
        }
        let to_tag = req.to().ok().and_then(|t| t.tag);
        let Some(to_tag) = to_tag else {
            if self.merged(id, &req) {
                return self.auto_reply(now, id, Reply::new(482, "Loop Detected"));
            }
            return match method {
                Method::Invite => {
                    self.events.push_back(SipEvent::Request { tx: id, request: req, dialog: None, source, transport })
                }
                Method::Options => self.auto_reply(now, id, self.options_reply()),
                Method::Bye | Method::Info => {
                    self.auto_reply(now, id, Reply::new(481, "Call/Transaction Does Not Exist"))
                }
                _ => self.auto_reply(now, id, Reply::new(405, "Method Not Allowed").with_header("Allow", ALLOW)),
            };
        };
        // §12.2.2: a request within a dialog.
        let dialog_id = DialogId {
            call_id: req.call_id().unwrap_or_default().to_string(),
            local_tag: to_tag,
            remote_tag: req.from().ok().and_then(|f| f.tag).unwrap_or_default(),
        };
        let cseq = req.cseq().map(|c| c.seq).unwrap_or(0);
        let Some(d) = self.dialogs.get_mut(&dialog_id) else {
            return self.auto_reply(now, id, Reply::new(481, "Call/Transaction Does Not Exist"));
        };
        if d.remote_seq.is_some_and(|r| cseq < r) {
            return self.auto_reply(now, id, Reply::new(500, "Server Internal Error - CSeq Out of Order"));
        }
        d.remote_seq = Some(cseq);
        if let Some(e) = self.servers.get_mut(&id) {
            e.dialog = Some(dialog_id.clone());
            // Responses in the dialog carry our existing tag.
            e.local_tag = dialog_id.local_tag.clone();
        }
        match method {
            Method::Bye => {
                self.auto_reply(now, id, Reply::new(200, "OK"));
                self.end_dialog(&dialog_id, DialogEnd::ByeReceived);
            }
            Method::Options => self.auto_reply(now, id, self.options_reply()),
            Method::Invite => {
                let Some(d) = self.dialogs.get_mut(&dialog_id) else { return };
                if d.invite_out {
                    // §14.1 glare.
                    return self.auto_reply(now, id, Reply::new(491, "Request Pending"));
                }
                if d.invite_in {
                    let retry = self.rng.u32(0..=10);
                    let reply = Reply::new(500, "Server Internal Error").with_header("Retry-After", retry.to_string());
                    return self.auto_reply(now, id, reply);
                }
                d.invite_in = true;
                // §12.2.2: a target refresh updates the remote target.
                if let Some(c) = req.contacts().ok().and_then(|c| c.into_iter().next()) {
                    d.remote_target = c.uri;
                }
                self.events.push_back(SipEvent::Request {
                    tx: id,
                    request: req,
                    dialog: Some(dialog_id),
                    source,
                    transport,
                });
            }
            _ => self.events.push_back(SipEvent::Request {
                tx: id,
                request: req,
                dialog: Some(dialog_id),
                source,
                transport,
            }),
        }
    }

    /// §9.2: CANCEL matches the INVITE server transaction with the same key.
    fn handle_cancel(&mut self, now: Duration, cancel_id: ServerTxId) {
        let key = ServerKey { method: Method::Invite, ..self.servers[&cancel_id].key.clone() };
        let Some(&invite_id) = self.server_keys.get(&key) else {
            return self.auto_reply(now, cancel_id, Reply::new(481, "Call/Transaction Does Not Exist"));
        };
        self.auto_reply(now, cancel_id, Reply::new(200, "OK"));
        let answered = self.servers.get(&invite_id).is_none_or(|e| e.tx.is_answered());
        if !answered {
            self.auto_reply(now, invite_id, Reply::new(487, "Request Terminated"));
            self.events.push_back(SipEvent::Cancelled { tx: invite_id });
        }
    }

    /// An ACK that matched no transaction: the ACK for a 2xx (§13.3.1.4), or a stray one.
    fn handle_ack(&mut self, now: Duration, req: Request) {
        let Some(local_tag) = req.to().ok().and_then(|t| t.tag) else { return };
        let id = DialogId {
            call_id: req.call_id().unwrap_or_default().to_string(),
            local_tag,
            remote_tag: req.from().ok().and_then(|f| f.tag).unwrap_or_default(),
        };
        let cseq = req.cseq().map(|c| c.seq).unwrap_or(0);
        let Some(d) = self.dialogs.get_mut(&id) else { return };
        if d.pending_2xx.as_ref().is_some_and(|p| p.cseq == cseq) {
            if let Some(bye) = d.bye_pending {
                self.send_deferred_bye(now, &id, bye);
                return;
            }
            d.pending_2xx = None;
            d.state = DialogState::Confirmed;
            self.reindex_dialog(&id);
            self.events.push_back(SipEvent::Ack { dialog: id, request: req });
        }
    }

    /// A response the endpoint sends on its own.
    /// §8.2.2.2: a request without a To tag whose From tag, Call-ID and CSeq are those of another
    /// ongoing transaction reached us twice (forked, or looped back by a proxy): the copy gets 482.
    /// Otherwise the request is recorded for the copies that may follow.
    fn merged(&mut self, id: ServerTxId, req: &Request) -> bool {
        let Ok(cseq) = req.cseq() else { return false };
        let key = MergeKey {
            call_id: req.call_id().unwrap_or_default().to_string(),
            from_tag: req.from().ok().and_then(|f| f.tag).unwrap_or_default(),
            cseq: cseq.seq,
            method: *req.method(),
        };
        if self.merge_keys.get(&key).is_some_and(|other| *other != id && self.servers.contains_key(other)) {
            return true;
        }
        self.merge_keys.insert(key.clone(), id);
        if let Some(e) = self.servers.get_mut(&id) {
            e.merge_key = Some(key);
        }
        false
    }

    fn auto_reply(&mut self, now: Duration, id: ServerTxId, reply: Reply) {
        if let Err(err) = self.respond(now, id, reply) {
            tracing::warn!(%err, "automatic response not sent");
        }
    }

    fn options_reply(&self) -> Reply {
        Reply::new(200, "OK")
            .with_header("Allow", ALLOW)
            .with_header("Accept", ACCEPT)
            .with_header("Accept-Encoding", "identity")
            .with_header("Accept-Language", "en")
            .with_header("Supported", "")
    }

    fn build_response(&self, entry: &ServerEntry, reply: Reply) -> Response {
        let req = &entry.request;
        let tag = (reply.status > 100).then_some(entry.local_tag.as_str());
        let mut resp = Response::for_request(req, reply.status, &reply.reason, tag);
        let dialog_forming = *req.method() == Method::Invite && (101..300).contains(&reply.status);
        if dialog_forming {
            // §12.1.1: Record-Route copied, Contact ours.
            for rr in req.header_all("Record-Route") {
                resp.push_header("Record-Route", rr);
            }
            resp.push_header("Contact", self.contact(entry.transport));
        }
        if reply.status != 100 {
            resp.push_header("Server", self.config.user_agent.clone());
        }
        if *req.method() == Method::Invite && (200..300).contains(&reply.status) {
            resp.push_header("Allow", ALLOW);
        }
        for (n, v) in reply.headers {
            resp.push_header(&n, v);
        }
        if let Some(body) = reply.body {
            resp.set_body(Some(&body.content_type), body.bytes);
        }
        resp
    }

    // ----- responses -----

    fn handle_response(&mut self, now: Duration, resp: Response) {
        let (Ok(via), Ok(cseq)) = (resp.via_top(), resp.cseq()) else { return };
        let Some(branch) = via.branch else { return };
        let key = ClientKey { branch, method: cseq.method };
        if let Some(&id) = self.client_keys.get(&key) {
            if let Some(e) = self.clients.get_mut(&id) {
                e.tx.handle_response(now, resp);
            }
            self.after_client(now, id);
            return;
        }
        // A 2xx retransmitted after the INVITE transaction ended: re-send our ACK (§13.2.2.4).
        if cseq.method == Method::Invite && (200..300).contains(&resp.status()) {
            let id = dialog_id_uac(&resp);
            if let Some(d) = id.and_then(|id| self.dialogs.get(&id)) {
                if let Some((seq, bytes, dest)) = &d.last_ack {
                    if *seq == cseq.seq {
                        self.transmits.push_back(Transmit {
                            transport: d.transport,
                            dest: *dest,
                            payload: bytes.clone(),
                        });
                    }
                }
            }
        }
    }

    /// Act on a client transaction's events after it ran.
    fn after_client(&mut self, now: Duration, id: ClientTxId) {
        let Some(e) = self.clients.get_mut(&id) else { return };
        let (dest, transport) = (e.dest, e.transport);
        while let Some(payload) = e.tx.poll_transmit() {
            self.transmits.push_back(Transmit { transport, dest, payload });
        }
        let mut events = Vec::new();
        while let Some(ev) = e.tx.poll_event() {
            events.push(ev);
        }
        let dialog = e.dialog.clone();
        let method = *e.tx.request().method();
        let mut send_cancel = false;
        for ev in events {
            match ev {
                ClientEvent::Response(resp) => {
                    let status = resp.status();
                    if (101..200).contains(&status) && self.clients.get(&id).is_some_and(|e| e.cancel_pending) {
                        send_cancel = true;
                    }
                    let mut event_dialog = dialog.clone();
                    if method == Method::Invite && status >= 200 {
                        if let Some(d) = dialog.as_ref().and_then(|d| self.dialogs.get_mut(d)) {
                            d.invite_out = false;
                        }
                    }
                    if method == Method::Invite && (200..300).contains(&status) {
                        event_dialog = self.uac_dialog(id, &resp, dest, transport);
                        // A retransmitted 2xx we already ACKed: re-send the ACK, tell no one.
                        let seq = resp.cseq().map(|c| c.seq).unwrap_or(0);
                        if let Some(d) = event_dialog.as_ref().and_then(|d| self.dialogs.get(d)) {
                            if let Some((s, bytes, dest)) = &d.last_ack {
                                if *s == seq {
                                    let t = Transmit { transport: d.transport, dest: *dest, payload: bytes.clone() };
                                    self.transmits.push_back(t);
                                    continue;
                                }
                            }
                        }
                    }
                    // §12.2.1.2: 481 or 408 to an in-dialog request ends the dialog.
                    if matches!(status, 408 | 481) && method != Method::Bye {
                        if let Some(d) = &dialog {
                            self.end_dialog(d, DialogEnd::Failed);
                        }
                    }
                    self.events.push_back(SipEvent::Response { tx: id, response: resp, dialog: event_dialog });
                }
                ClientEvent::Timeout => {
                    if let Some(d) = &dialog {
                        if method == Method::Invite {
                            if let Some(d) = self.dialogs.get_mut(d) {
                                d.invite_out = false;
                            }
                        }
                        if method != Method::Bye {
                            self.end_dialog(d, DialogEnd::Failed);
                        }
                    }
                    self.events.push_back(SipEvent::Timeout { tx: id });
                }
            }
        }
        if send_cancel {
            if let Some(e) = self.clients.get_mut(&id) {
                e.cancel_pending = false;
            }
            self.cancel(now, id);
        }
        self.reindex_client(id);
    }

    /// The dialog a 2xx to our INVITE creates (or the one a re-INVITE ran in).
    fn uac_dialog(
        &mut self,
        id: ClientTxId,
        resp: &Response,
        dest: SocketAddr,
        transport: Transport,
    ) -> Option<DialogId> {
        let e = self.clients.get(&id)?;
        if let Some(d) = &e.dialog {
            return Some(d.clone());
        }
        let dialog_id = dialog_id_uac(resp)?;
        if !self.dialogs.contains_key(&dialog_id) {
            let mut dialog = Dialog::uac(e.tx.request(), resp, dest, transport)?;
            // Without DNS, a Contact host that is a name is reached where the INVITE went.
            if uri_socket_addr(&dialog.remote_target).is_none() {
                dialog.peer = dest;
            }
            self.dialogs.insert(dialog_id.clone(), dialog);
        }
        Some(dialog_id)
    }

    fn after_server(&mut self, id: ServerTxId) {
        let Some(e) = self.servers.get_mut(&id) else { return };
        let (dest, transport) = (e.reply_to, e.transport);
        while let Some(payload) = e.tx.poll_transmit() {
            self.transmits.push_back(Transmit { transport, dest, payload });
        }
        // Timer H (no ACK for our non-2xx final) needs nothing from the application.
        while e.tx.poll_event().is_some() {}
        self.reindex_server(id);
    }

    // ----- dialogs -----

    fn dialog_timeout(&mut self, now: Duration, id: DialogId) {
        let Some(d) = self.dialogs.get_mut(&id) else { return };
        let Some(p) = d.pending_2xx.as_mut() else { return };
        if now >= p.give_up_at {
            if let Some(bye) = d.bye_pending {
                self.send_deferred_bye(now, &id, bye);
                return;
            }
            // §13.3.1.4: no ACK in 64 × T1: confirm, then end the session with a BYE.
            d.pending_2xx = None;
            d.state = DialogState::Confirmed;
            let _ = self.send_in_dialog_ending(now, &id, Method::Bye, Vec::new(), None, DialogEnd::AckTimeout);
            return;
        }
        if now >= p.next_at {
            self.transmits.push_back(Transmit { transport: d.transport, dest: p.dest, payload: p.bytes.clone() });
            p.interval = (p.interval * 2).min(self.config.timers.t2);
            p.next_at = now + p.interval;
        }
        self.reindex_dialog(&id);
    }

    fn end_dialog(&mut self, id: &DialogId, reason: DialogEnd) {
        let Some(d) = self.dialogs.remove(id) else { return };
        self.reindex_dialog(id);
        // Already reported when the application asked for its BYE.
        if d.bye_pending.is_some() {
            return;
        }
        self.reindex_dialog(id);
        self.events.push_back(SipEvent::DialogEnded { dialog: id.clone(), reason });
    }

    fn dialog_transport(&self, id: &DialogId) -> Result<Transport, EndpointError> {
        self.dialogs.get(id).map(|d| d.transport).ok_or(EndpointError::UnknownDialog)
    }

    // ----- clients -----

    fn start_client(
        &mut self,
        now: Duration,
        req: Request,
        dest: SocketAddr,
        transport: Transport,
        dialog: Option<DialogId>,
    ) -> ClientTxId {
        let id = ClientTxId(self.next());
        self.start_client_as(now, id, req, dest, transport, dialog);
        id
    }

    fn start_client_as(
        &mut self,
        now: Duration,
        id: ClientTxId,
        mut req: Request,
        dest: SocketAddr,
        transport: Transport,
        dialog: Option<DialogId>,
    ) {
        // CANCEL reuses its INVITE's Via (§9.1); everything else gets a fresh branch.
        let branch = match req.via_top() {
            Ok(v) if *req.method() == Method::Cancel => v.branch.unwrap_or_default(),
            _ => {
                let branch = self.branch();
                let via = format!("SIP/2.0/{} {};branch={branch};rport", transport.via_name(), self.config.public_addr);
                req.prepend_header("Via", via);
                branch
            }
        };
        if req.header("User-Agent").is_none() {
            req.push_header("User-Agent", self.config.user_agent.clone());
        }
        let key = ClientKey { branch, method: *req.method() };
        let tx = ClientTransaction::new(now, req, transport.is_reliable(), self.config.timers);
        self.client_keys.insert(key.clone(), id);
        self.clients
            .insert(id, ClientEntry { tx, key, dest, transport, dialog, cancel_pending: false, deadline: None });
        self.after_client(now, id);
    }

    // ----- timer index -----

    fn reindex_server(&mut self, id: ServerTxId) {
        let Some(e) = self.servers.get_mut(&id) else { return };
        if let Some(old) = e.deadline.take() {
            self.timers.remove(&(old, Slot::Server(id)));
        }
        if e.tx.is_terminated() {
            let (key, merge_key) = (e.key.clone(), e.merge_key.take());
            self.servers.remove(&id);
            if self.server_keys.get(&key) == Some(&id) {
                self.server_keys.remove(&key);
            }
            if let Some(merge_key) = merge_key.filter(|k| self.merge_keys.get(k) == Some(&id)) {
                self.merge_keys.remove(&merge_key);
            }
            return;
        }
        let answer_by = e.answer_by.filter(|_| !e.tx.is_answered());
        e.deadline = [e.tx.poll_timeout(), answer_by].into_iter().flatten().min();
        if let Some(at) = e.deadline {
            self.timers.insert((at, Slot::Server(id)));
        }
    }

    fn reindex_client(&mut self, id: ClientTxId) {
        let Some(e) = self.clients.get_mut(&id) else { return };
        if let Some(old) = e.deadline.take() {
            self.timers.remove(&(old, Slot::Client(id)));
        }
        if e.tx.is_terminated() {
            let key = e.key.clone();
            self.clients.remove(&id);
            if self.client_keys.get(&key) == Some(&id) {
                self.client_keys.remove(&key);
            }
            return;
        }
        e.deadline = e.tx.poll_timeout();
        if let Some(at) = e.deadline {
            self.timers.insert((at, Slot::Client(id)));
        }
    }

    fn reindex_dialog(&mut self, id: &DialogId) {
        if let Some(old) = self.dialog_timers.remove(id) {
            self.timers.remove(&(old, Slot::Dialog(id.clone())));
        }
        let next = self.dialogs.get(id).and_then(|d| d.pending_2xx.as_ref()).map(|p| p.next_at.min(p.give_up_at));
        if let Some(at) = next {
            self.timers.insert((at, Slot::Dialog(id.clone())));
            self.dialog_timers.insert(id.clone(), at);
        }
    }

    // ----- helpers -----

    fn reject_unreadable(&mut self, source: SocketAddr, transport: Transport, bytes: &[u8], err: &SipError) {
        // §17: an ACK is never answered, however broken.
        if bytes.starts_with(b"ACK ") {
            tracing::debug!(%source, %err, "unreadable ACK dropped");
            return;
        }
        let is_request = !super::looks_like_response(bytes);
        let BadMessageAction::Respond { status, reason } = err.action(is_request) else {
            tracing::debug!(%source, %err, "unreadable SIP message dropped");
            return;
        };
        // §8.2: answer only what we can address: a top Via and the dialog headers, read leniently.
        let Some(resp) = lenient_response(bytes, status, reason) else {
            tracing::debug!(%source, %err, "unreadable SIP request dropped: cannot address a response");
            return;
        };
        tracing::debug!(%source, %err, status, "unreadable SIP request rejected");
        let mut resp = resp;
        resp.push_header("Warning", format!("399 rms \"{}\"", err.to_string().replace('"', "'")));
        self.transmits.push_back(Transmit { transport, dest: source, payload: resp.to_bytes() });
    }

    fn contact(&self, transport: Transport) -> String {
        let param = if transport == Transport::Tcp { ";transport=tcp" } else { "" };
        format!("<sip:{}@{}{param}>", self.config.contact_user, self.config.public_addr)
    }

    fn next(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn token(&mut self, len: usize) -> String {
        (0..len).map(|_| char::from_digit(self.rng.u32(0..16), 16).unwrap_or('0')).collect()
    }

    fn branch(&mut self) -> String {
        format!("{MAGIC_COOKIE}{}", self.token(16))
    }
}

/// Live state, for leak checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EndpointCounts {
    pub server_transactions: usize,
    pub client_transactions: usize,
    pub dialogs: usize,
    pub timers: usize,
    /// Requests remembered for merged-request detection (§8.2.2.2): one per ongoing transaction at most.
    pub merge_keys: usize,
}

fn server_key(req: &Request, via: &super::ViaHeader) -> ServerKey {
    let method = match req.method() {
        Method::Ack => Method::Invite,
        m => *m,
    };
    let sent_by = format!("{}:{}", via.host.to_ascii_lowercase(), via.port.unwrap_or(5060));
    match via.branch.as_deref() {
        Some(b) if b.starts_with(MAGIC_COOKIE) => ServerKey { branch: b.to_string(), sent_by, method },
        _ => {
            let call_id = req.call_id().unwrap_or_default();
            let seq = req.cseq().map(|c| c.seq).unwrap_or(0);
            let from_tag = req.from().ok().and_then(|f| f.tag).unwrap_or_default();
            ServerKey { branch: format!("rfc2543:{call_id}:{seq}:{from_tag}"), sent_by, method }
        }
    }
}

/// §9.1: a CANCEL for a client INVITE.
fn cancel_for(invite: &Request) -> Request {
    let mut cancel = Request::new(Method::Cancel, invite.uri().clone());
    for name in ["Via", "Max-Forwards", "From", "To", "Call-ID"] {
        if let Some(v) = invite.header(name) {
            cancel.push_header(name, v);
        }
    }
    if let Ok(cseq) = invite.cseq() {
        cancel.push_header("CSeq", format!("{} CANCEL", cseq.seq));
    }
    for r in invite.header_all("Route") {
        cancel.push_header("Route", r);
    }
    cancel
}

/// The dialog id of a response to our request: local = From tag, remote = To tag.
fn dialog_id_uac(resp: &Response) -> Option<DialogId> {
    Some(DialogId {
        call_id: resp.call_id().ok()?.to_string(),
        local_tag: resp.from().ok()?.tag?,
        remote_tag: resp.to().ok()?.tag?,
    })
}

/// Drop one `;name[=value]` parameter from a Via value.
fn strip_via_param(via: &str, name: &str) -> String {
    via.split(';')
        .enumerate()
        .filter(|(i, p)| *i == 0 || !p.trim().split('=').next().unwrap_or("").trim().eq_ignore_ascii_case(name))
        .map(|(_, p)| p)
        .collect::<Vec<_>>()
        .join(";")
}

/// RFC 3261 §8.2: to answer an unreadable request we need its Via, From, To, Call-ID and CSeq;
/// read them line by line without validating anything else.
fn lenient_response(bytes: &[u8], status: u16, reason: &str) -> Option<Response> {
    let text = String::from_utf8_lossy(bytes);
    let head = text.split("\r\n\r\n").next()?;
    let mut resp = Response::new(status, reason);
    let mut found = [false; 5];
    for line in head.lines().skip(1) {
        let Some((name, value)) = line.split_once(':') else { continue };
        let name = match name.trim().to_ascii_lowercase().as_str() {
            "via" | "v" => 0,
            "from" | "f" => 1,
            "to" | "t" => 2,
            "call-id" | "i" => 3,
            "cseq" => 4,
            _ => continue,
        };
        let canonical = ["Via", "From", "To", "Call-ID", "CSeq"][name];
        // Every Via goes back (the proxies strip theirs); other headers once.
        if found[name] && name != 0 {
            continue;
        }
        found[name] = true;
        resp.push_header(canonical, value.trim());
    }
    found.iter().all(|f| *f).then_some(resp)
}
