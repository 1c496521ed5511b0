//! The B2BUA core (sans-IO): calls, their legs, and the call state machine.
//!
//! In: SIP events from the [`Endpoint`] (which it answers through directly: both live on the
//! signalling task), media events from the media thread, and the actions routes return. Out: SIP
//! messages (through the endpoint) and media commands ([`Sessions::poll_media`]).
//!
//! A call's resources are an RTP port (from [`RtpPorts`]), a media leg, a dialog and timers; every
//! path that ends a call (BYE either way, CANCEL, errors, 488, script failures, shutdown) releases
//! them, and [`Sessions::counts`] shows what is left.

mod bridge;
use bridge::without_tag;
pub mod route;
pub mod vq_report;

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, SystemTime};

use rms_filters::codec::{CodecKind, OpusConfig};

use crate::media::{LegId, LegMedia, LegReport, LegRtcp, MediaCmd, MediaEvent};
use crate::sdp::{
    build_offer, negotiate_answer, negotiate_offer_answer, AnswerConfig, Direction, Negotiated, OfferConfig,
    OriginState, SessionDescription,
};
use crate::sip::{
    Body, ClientTxId, DialogEnd, DialogId, Endpoint, Method, OutgoingRequest, Reply, Request, ServerTxId, SipEvent,
};
pub use route::{Action, BridgeRequest, CallView, LegQuality, RouteHost, RouteName, ScriptError, HANGUP_ROUTE};

/// Nested `answer` → route → ... calls stop here (a script that loops on itself).
const MAX_ROUTE_DEPTH: usize = 8;

/// How long a B-leg may ring before it is cancelled and the bridge fails with 408, unless
/// `call:bridge` says otherwise.
pub const DEFAULT_RING_TIMEOUT: Duration = Duration::from_secs(60);

/// Session settings.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// The address in our SDP.
    pub media_ip: IpAddr,
    /// Where prompts live: relative paths resolve against the first; no path may leave them.
    pub voice_dirs: Vec<PathBuf>,
    /// Codecs we answer with, in our order of preference when we offer.
    pub codecs: Vec<CodecKind>,
    pub telephone_event: bool,
    /// Our Opus encoder settings; each peer's fmtp adjusts them (RFC 7587 §6.1).
    pub opus: OpusConfig,
    /// Where RFC 6035 reports go at each leg's end.
    pub vq_collector: Option<crate::sip::Target>,
    /// The wall-clock time of `now == 0`, for the reports' timestamps.
    pub epoch: SystemTime,
}

impl SessionConfig {
    /// How we answer an offer on `rtp_port` with `codecs` (ours, in our order).
    fn answer_config(&self, rtp_port: u16, codecs: Vec<CodecKind>, origin: OriginState) -> AnswerConfig {
        AnswerConfig { address: self.media_ip, rtp_port, codecs, telephone_event: self.telephone_event, origin }
    }

    /// Our sendrecv offer on `rtp_port` with `codecs`.
    fn offer_config(&self, rtp_port: u16, codecs: Vec<CodecKind>, origin: OriginState) -> OfferConfig {
        OfferConfig {
            address: self.media_ip,
            rtp_port,
            codecs,
            telephone_event: self.telephone_event,
            origin,
            direction: Direction::SendRecv,
        }
    }
}

/// RTP ports for new legs. The runtime binds a real socket per port (and hands it to the media
/// thread with the leg); tests use a counter.
pub trait RtpPorts {
    /// Reserve a port for `leg`; `None` when the range is exhausted.
    fn allocate(&mut self, leg: LegId) -> Option<u16>;
    /// The leg is gone: its port is free again.
    fn release(&mut self, leg: LegId);
}

/// Why a call ended, and who ended it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndReason {
    /// The caller sent BYE.
    CallerBye,
    /// The bridged callee (B-leg) sent BYE.
    CalleeBye,
    /// The bridge failed after the caller was answered (B-leg status), and the call was ended.
    BridgeFailed { status: u16 },
    /// We sent BYE (a route's hangup, or after an error).
    RmsBye,
    /// The caller cancelled before the answer.
    Cancelled,
    /// Answered with a final non-2xx (route's reply/hangup, 488, 500 ...).
    Rejected { status: u16 },
    /// The caller never ACKed our 200.
    AckTimeout,
    /// A route or media failed; the call was ended with a BYE or a 500.
    Error { detail: String },
    /// rms is shutting down.
    Shutdown,
}

/// One ended call, for the call log.
#[derive(Debug, Clone)]
pub struct CallRecord {
    pub id: String,
    pub from: String,
    pub to: String,
    pub ruri: String,
    pub codec: Option<CodecKind>,
    /// The B-leg's codec, when the call was bridged.
    pub b_codec: Option<CodecKind>,
    pub started: Duration,
    pub answered: Option<Duration>,
    pub ended: Duration,
    pub reason: EndReason,
    /// The A-leg's media report (RTP statistics, filter usage), when the call had media.
    pub leg: Option<LegReport>,
    /// The B-leg's media report, when a bridged leg had media.
    pub b_leg: Option<LegReport>,
}

impl EndReason {
    /// A stable name for logs and the call log.
    pub fn name(&self) -> &'static str {
        match self {
            EndReason::CallerBye => "caller_bye",
            EndReason::CalleeBye => "callee_bye",
            EndReason::BridgeFailed { .. } => "bridge_failed",
            EndReason::RmsBye => "rms_bye",
            EndReason::Cancelled => "cancelled",
            EndReason::Rejected { .. } => "rejected",
            EndReason::AckTimeout => "ack_timeout",
            EndReason::Error { .. } => "error",
            EndReason::Shutdown => "shutdown",
        }
    }

    /// Who ended the call: `caller`, `callee` or `rms`.
    pub fn hung_up_by(&self) -> &'static str {
        match self {
            EndReason::CallerBye | EndReason::Cancelled => "caller",
            EndReason::CalleeBye => "callee",
            _ => "rms",
        }
    }
}

/// One active call, for `/sessions` and `rms sessions`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CallSummary {
    pub id: String,
    pub from: String,
    pub to: String,
    pub ruri: String,
    pub source: String,
    /// Empty until answered.
    pub codec: String,
    /// `unanswered` or `answered`.
    pub state: String,
    /// Seconds since the INVITE.
    pub age_s: f64,
    /// Seconds since the answer.
    pub answered_s: Option<f64>,
    /// Prompts playing now.
    pub playing: usize,
    pub rtp_port: Option<u16>,
    /// The B-leg, while a bridge is under way or up.
    #[serde(default)]
    pub bridge: Option<BridgeSummary>,
}

/// A call's B-leg, for `/sessions`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BridgeSummary {
    pub target: String,
    /// `calling`, `early` or `answered`.
    pub state: String,
    /// Empty until B answers.
    pub codec: String,
    pub rtp_port: Option<u16>,
}

/// What is alive, for leak checks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionCounts {
    pub calls: usize,
    /// Legs whose `LegClosed` has not arrived yet (their port is still held).
    pub legs: usize,
    /// B-leg INVITEs cancelled whose transaction has not ended yet.
    pub pending_cancels: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CallState {
    /// The INVITE is with the script, ringing, or waiting for a B-leg.
    Unanswered,
    /// 200 sent.
    Answered,
}

/// Which leg of a call: A is the caller (rms is its UAS), B the leg rms dials for a bridge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Side {
    A,
    B,
}

/// One leg's media and SDP state.
struct LegSdp {
    /// The media leg, allocated when we first put a port in an SDP (its port is held from then).
    leg: Option<LegId>,
    port: Option<u16>,
    /// `CreateLeg` went to the media thread (with a late offer, only after the answer).
    media_running: bool,
    origin: OriginState,
    /// The peer's last offer that we answered (re-offers with the same o= version get the same
    /// answer, RFC 3264 §8); for the A-leg, first the INVITE's offer.
    last_offer: Option<SessionDescription>,
    last_answer: Option<Vec<u8>>,
    /// Our offer waiting for its answer (in an ACK, or in the B-leg's 18x/2xx).
    our_offer: Option<SessionDescription>,
    negotiated: Option<Negotiated>,
}

impl LegSdp {
    fn new(origin: OriginState) -> Self {
        Self {
            leg: None,
            port: None,
            media_running: false,
            origin,
            last_offer: None,
            last_answer: None,
            our_offer: None,
            negotiated: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BState {
    /// INVITE sent, no provisional response yet.
    Calling,
    /// A provisional response arrived.
    Early,
    /// 2xx received and ACKed.
    Answered,
}

/// The leg rms dials for `call:bridge`.
struct BLeg {
    request: BridgeRequest,
    tx: ClientTxId,
    state: BState,
    dialog: Option<DialogId>,
    /// The dialog as established by the 2xx (kept after it ends, for the quality report).
    established: Option<DialogId>,
    /// Our From and To of the INVITE (without tags).
    from: String,
    to: String,
    sdp: LegSdp,
    /// Ring timeout: when an unanswered B-leg is cancelled.
    ring_deadline: Duration,
}

struct Call {
    view: CallView,
    tx: ServerTxId,
    state: CallState,
    dialog: Option<DialogId>,
    a: LegSdp,
    /// The route to run once media runs (answer without SDP: after the ACK).
    after_answer: Option<String>,
    /// Play token → the route to run when it ends.
    plays: HashMap<u64, String>,
    started: Duration,
    answered: Option<Duration>,
    b: Option<BLeg>,
    /// `MediaCmd::Bridge` went out for the current B-leg.
    joined: bool,
    /// `on_bridged` ran for the current B-leg.
    bridged_route_ran: bool,
    /// Report and codec of a B-leg that ended before the call did.
    b_report: Option<LegReport>,
    b_codec: Option<CodecKind>,
    /// The A-leg's dialog as established (kept after it ends, for the quality report).
    a_dialog: Option<DialogId>,
    /// The identity of the last B-leg with media, for its quality report.
    b_vq: Option<VqLeg>,
}

impl Call {
    fn sdp_mut(&mut self, side: Side) -> Option<&mut LegSdp> {
        match side {
            Side::A => Some(&mut self.a),
            Side::B => self.b.as_mut().map(|b| &mut b.sdp),
        }
    }
}

/// An ended call waiting for its legs' reports.
struct PendingRecord {
    ended: EndedCall,
    waiting: usize,
}

/// An ended call: its record, the call as the hangup route sees it, and its legs' identities for the
/// quality reports.
struct EndedCall {
    record: CallRecord,
    view: CallView,
    vq: Vec<VqLeg>,
}

/// A leg's SIP and SDP identity, for its RFC 6035 report.
#[derive(Debug, Clone)]
struct VqLeg {
    side: Side,
    call_id: String,
    local_id: String,
    remote_id: String,
    orig_id: String,
    local_addr: SocketAddr,
    remote_addr: SocketAddr,
    session: vq_report::SessionDesc,
    dialog_id: Option<String>,
    started: Duration,
}

/// Every call on this signalling task.
pub struct Sessions {
    config: SessionConfig,
    calls: HashMap<u64, Call>,
    by_tx: HashMap<ServerTxId, u64>,
    /// B-leg INVITE transactions.
    by_client: HashMap<ClientTxId, u64>,
    by_dialog: HashMap<DialogId, (u64, Side)>,
    by_leg: HashMap<LegId, (u64, Side)>,
    /// Legs destroyed whose `LegClosed` has not come back: their ports are still bound.
    closing: HashMap<LegId, u16>,
    /// Whose report a closing leg carries.
    report_to: HashMap<LegId, (u64, Side)>,
    /// Legs whose port can go back at once (media never started).
    release_now: Vec<LegId>,
    /// Ended calls waiting for their legs' reports before they are complete.
    pending_records: HashMap<u64, PendingRecord>,
    /// B-leg INVITEs cancelled after their call moved on: a late 2xx still gets its ACK and a BYE.
    orphans: HashSet<ClientTxId>,
    /// Ring timeouts, earliest first.
    deadlines: BTreeSet<(Duration, u64)>,
    next_call: u64,
    next_leg: u32,
    next_token: u64,
    rng: fastrand::Rng,
    media: VecDeque<MediaCmd>,
    /// Calls whose reports are all in, for the hangup route and the quality reports.
    completed: VecDeque<EndedCall>,
    /// Our RFC 6035 PUBLISHes in flight, by the call they report on.
    publishes: HashMap<ClientTxId, String>,
    ended: VecDeque<CallRecord>,
    reports: VecDeque<(LegId, LegReport)>,
}

impl Sessions {
    pub fn new(config: SessionConfig, seed: u64) -> Self {
        Self {
            config,
            calls: HashMap::new(),
            by_tx: HashMap::new(),
            by_client: HashMap::new(),
            by_dialog: HashMap::new(),
            by_leg: HashMap::new(),
            closing: HashMap::new(),
            report_to: HashMap::new(),
            release_now: Vec::new(),
            pending_records: HashMap::new(),
            orphans: HashSet::new(),
            deadlines: BTreeSet::new(),
            next_call: 0,
            next_leg: 0,
            next_token: 0,
            rng: fastrand::Rng::with_seed(seed),
            media: VecDeque::new(),
            completed: VecDeque::new(),
            publishes: HashMap::new(),
            ended: VecDeque::new(),
            reports: VecDeque::new(),
        }
    }

    /// Media commands for the media thread, in order.
    pub fn poll_media(&mut self) -> Option<MediaCmd> {
        self.media.pop_front()
    }

    /// Calls that ended, for the call log (a call with media once its legs have reported).
    pub fn poll_ended(&mut self) -> Option<CallRecord> {
        self.ended.pop_front()
    }

    /// Leg reports that belong to no ended call (none in normal operation).
    pub fn poll_report(&mut self) -> Option<(LegId, LegReport)> {
        self.reports.pop_front()
    }

    /// When [`Sessions::handle_timeout`] next has work (a B-leg's ring timeout).
    pub fn poll_timeout(&self) -> Option<Duration> {
        self.deadlines.first().map(|(at, _)| *at)
    }

    pub fn counts(&self) -> SessionCounts {
        SessionCounts {
            calls: self.calls.len(),
            legs: self.by_leg.len() + self.closing.len(),
            pending_cancels: self.orphans.len(),
        }
    }

    /// The active calls as scripts see them.
    pub fn calls(&self) -> impl Iterator<Item = &CallView> {
        self.calls.values().map(|c| &c.view)
    }

    /// The active calls, oldest first.
    pub fn summaries(&self, now: Duration) -> Vec<CallSummary> {
        let mut calls: Vec<&Call> = self.calls.values().collect();
        calls.sort_by_key(|c| c.started);
        calls
            .into_iter()
            .map(|c| CallSummary {
                id: c.view.id.clone(),
                from: c.view.from.clone(),
                to: c.view.to.clone(),
                ruri: c.view.ruri.clone(),
                source: c.view.source.to_string(),
                codec: c.view.codec.clone(),
                state: match c.state {
                    CallState::Unanswered => "unanswered".into(),
                    CallState::Answered => "answered".into(),
                },
                age_s: now.saturating_sub(c.started).as_secs_f64(),
                answered_s: c.answered.map(|a| now.saturating_sub(a).as_secs_f64()),
                playing: c.plays.len(),
                rtp_port: c.a.port,
                bridge: c.b.as_ref().map(|b| BridgeSummary {
                    target: b.request.target.clone(),
                    state: match b.state {
                        BState::Calling => "calling",
                        BState::Early => "early",
                        BState::Answered => "answered",
                    }
                    .into(),
                    codec: c.view.b_codec.clone(),
                    rtp_port: b.sdp.port,
                }),
            })
            .collect()
    }

    /// A SIP event from the endpoint.
    pub fn handle_sip(
        &mut self,
        now: Duration,
        event: SipEvent,
        ep: &mut Endpoint,
        host: &mut dyn RouteHost,
        ports: &mut dyn RtpPorts,
    ) {
        match event {
            SipEvent::Request { tx, request, dialog: None, source, .. } if *request.method() == Method::Invite => {
                self.new_call(now, tx, request, source, ep, host, ports)
            }
            SipEvent::Request { tx, request, dialog: Some(d), .. } if *request.method() == Method::Invite => {
                self.reinvite(now, tx, &request, &d, ep)
            }
            SipEvent::Request { tx, .. } => {
                // INFO and other in-dialog requests: accepted, nothing to do yet.
                let _ = ep.respond(now, tx, Reply::new(200, "OK"));
            }
            SipEvent::Cancelled { tx } => {
                if let Some(&id) = self.by_tx.get(&tx) {
                    self.end_call(now, id, EndReason::Cancelled, ep);
                }
            }
            SipEvent::Ack { dialog, request } => self.ack(now, &dialog, &request, ep, host, ports),
            SipEvent::DialogEnded { dialog, reason } => {
                let Some((id, side)) = self.by_dialog.remove(&dialog) else { return };
                let reason = match (reason, side) {
                    (DialogEnd::ByeReceived, Side::A) => EndReason::CallerBye,
                    (DialogEnd::ByeReceived, Side::B) => EndReason::CalleeBye,
                    (DialogEnd::ByeSent, _) => EndReason::RmsBye,
                    (DialogEnd::AckTimeout, _) => EndReason::AckTimeout,
                    (DialogEnd::Failed, _) => EndReason::Error { detail: "in-dialog request failed".into() },
                };
                if let Some(call) = self.calls.get_mut(&id) {
                    // The endpoint already ended the dialog: no BYE from us on it.
                    match side {
                        Side::A => call.dialog = None,
                        Side::B => {
                            if let Some(b) = call.b.as_mut() {
                                b.dialog = None;
                            }
                        }
                    }
                }
                self.end_call(now, id, reason, ep);
            }
            SipEvent::Response { tx, response, .. } if self.publishes.contains_key(&tx) => {
                if response.status() >= 200 {
                    let call = self.publishes.remove(&tx).unwrap_or_default();
                    match response.status() {
                        200..=299 => tracing::debug!(%call, "the collector took the quality report"),
                        status => tracing::warn!(%call, status, "the collector refused the quality report"),
                    }
                }
            }
            SipEvent::Response { tx, response, dialog } => {
                if self.orphans.contains(&tx) {
                    self.orphan_response(now, tx, &response, dialog, ep);
                } else if let Some(&id) = self.by_client.get(&tx) {
                    self.b_response(now, id, &response, dialog, ep, host, ports);
                }
            }
            SipEvent::Timeout { tx } | SipEvent::TransportFailed { tx } if self.publishes.contains_key(&tx) => {
                let call = self.publishes.remove(&tx).unwrap_or_default();
                tracing::warn!(%call, "the quality report reached no collector");
            }
            SipEvent::Timeout { tx } => {
                self.orphans.remove(&tx);
                if let Some(&id) = self.by_client.get(&tx) {
                    // Timer B: nobody answered the INVITE (RFC 3261 §17.1.1.2).
                    self.b_failed(now, id, 408, "Request Timeout", ep, host, ports);
                }
            }
            SipEvent::TransportFailed { tx } => {
                self.orphans.remove(&tx);
                if let Some(&id) = self.by_client.get(&tx) {
                    // §8.1.3.1: a transport error counts as 503.
                    self.b_failed(now, id, 503, "Service Unavailable (transport error)", ep, host, ports);
                }
            }
        }
        self.release_ports(ports);
        self.flush_completed(now, ep, host);
    }

    /// Run the timers due by `now` (B-legs' ring timeouts).
    pub fn handle_timeout(
        &mut self,
        now: Duration,
        ep: &mut Endpoint,
        host: &mut dyn RouteHost,
        ports: &mut dyn RtpPorts,
    ) {
        while let Some(&(at, id)) = self.deadlines.first() {
            if at > now {
                break;
            }
            self.deadlines.remove(&(at, id));
            self.ring_timeout(now, id, ep, host, ports);
        }
        self.release_ports(ports);
        self.flush_completed(now, ep, host);
    }

    fn release_ports(&mut self, ports: &mut dyn RtpPorts) {
        for leg in self.release_now.drain(..) {
            ports.release(leg);
        }
    }

    /// A media event from the media thread.
    pub fn handle_media(
        &mut self,
        now: Duration,
        event: MediaEvent,
        ep: &mut Endpoint,
        host: &mut dyn RouteHost,
        ports: &mut dyn RtpPorts,
    ) {
        match event {
            MediaEvent::PlayDone { leg, token, completed } => {
                let Some(&(id, _)) = self.by_leg.get(&leg) else { return };
                let Some(route) = self.calls.get_mut(&id).and_then(|c| c.plays.remove(&token)) else { return };
                // A play stopped by a newer one or by teardown does not run its route.
                if completed {
                    self.run_route(now, id, RouteName::Event(&route), ep, host, ports, 0);
                }
            }
            MediaEvent::PlayFailed { leg, token, error } => {
                let Some(&(id, _)) = self.by_leg.get(&leg) else { return };
                if let Some(c) = self.calls.get_mut(&id) {
                    c.plays.remove(&token);
                }
                tracing::error!(call = %self.call_id(id), %error, "prompt failed; ending the call");
                self.end_call(now, id, EndReason::Error { detail: error.to_string() }, ep);
            }
            MediaEvent::CommandFailed { leg, error } | MediaEvent::LegFailed { leg, error, .. } => {
                let Some(&(id, _)) = self.by_leg.get(&leg) else { return };
                tracing::error!(call = %self.call_id(id), %error, "media failed; ending the call");
                self.end_call(now, id, EndReason::Error { detail: error.to_string() }, ep);
            }
            MediaEvent::Bridged { a, b, mode } => {
                let id = self.by_leg.get(&a).map(|(id, _)| *id);
                tracing::info!(call = %id.map(|id| self.call_id(id)).unwrap_or_default(), ?a, ?b, ?mode, "legs joined");
            }
            MediaEvent::LegClosed { leg, report } => self.leg_closed(leg, report),
        }
        self.release_ports(ports);
        self.flush_completed(now, ep, host);
    }

    fn leg_closed(&mut self, leg: LegId, report: LegReport) {
        if self.closing.remove(&leg).is_some() {
            self.release_now.push(leg);
        }
        let Some((id, side)) = self.report_to.remove(&leg) else {
            self.reports.push_back((leg, report));
            return;
        };
        // A B-leg that ended while its call goes on.
        if let Some(call) = self.calls.get_mut(&id) {
            call.b_report = Some(report);
            return;
        }
        let Some(pending) = self.pending_records.get_mut(&id) else {
            self.reports.push_back((leg, report));
            return;
        };
        match side {
            Side::A => pending.ended.record.leg = Some(report),
            Side::B => pending.ended.record.b_leg = Some(report),
        }
        pending.waiting = pending.waiting.saturating_sub(1);
        if pending.waiting == 0 {
            if let Some(p) = self.pending_records.remove(&id) {
                self.completed.push_back(p.ended);
            }
        }
    }

    /// End every call: BYE to answered ones, 503 to unanswered ones, CANCEL to ringing B-legs.
    pub fn shutdown(&mut self, now: Duration, ep: &mut Endpoint, host: &mut dyn RouteHost, ports: &mut dyn RtpPorts) {
        let ids: Vec<u64> = self.calls.keys().copied().collect();
        for id in ids {
            self.end_call(now, id, EndReason::Shutdown, ep);
        }
        self.release_ports(ports);
        self.flush_completed(now, ep, host);
    }

    // ----- call flow -----

    #[allow(clippy::too_many_arguments)]
    fn new_call(
        &mut self,
        now: Duration,
        tx: ServerTxId,
        request: Request,
        source: SocketAddr,
        ep: &mut Endpoint,
        host: &mut dyn RouteHost,
        ports: &mut dyn RtpPorts,
    ) {
        self.next_call += 1;
        let id = self.next_call;
        let uri = request.uri();
        let view = CallView {
            id: request.call_id().unwrap_or_default().to_string(),
            ruri: crate::sip::print_uri(uri),
            ruri_user: uri.auth.as_ref().map(|a| a.user.clone()).unwrap_or_default(),
            from: request.header("From").unwrap_or_default().to_string(),
            to: request.header("To").unwrap_or_default().to_string(),
            source,
            codec: String::new(),
            headers: request.headers().to_vec(),
            bridge_status: 0,
            bridge_reason: String::new(),
            b_codec: String::new(),
            end_reason: String::new(),
            quality: Vec::new(),
        };
        let offer = if request.body().is_empty() {
            None
        } else {
            match SessionDescription::parse(request.body()) {
                Ok(sdp) => Some(sdp),
                Err(e) => {
                    let reply = Reply::new(400, "Bad Request - Malformed SDP")
                        .with_header("Warning", format!("399 rms \"{}\"", e.to_string().replace('"', "'")));
                    let _ = ep.respond(now, tx, reply);
                    return;
                }
            }
        };
        let mut a = LegSdp::new(OriginState::new(self.rng.u64(1..u64::MAX / 2)));
        a.last_offer = offer;
        let call = Call {
            view,
            tx,
            state: CallState::Unanswered,
            dialog: None,
            a,
            after_answer: None,
            plays: HashMap::new(),
            started: now,
            answered: None,
            b: None,
            joined: false,
            bridged_route_ran: false,
            b_report: None,
            b_codec: None,
            a_dialog: None,
            b_vq: None,
        };
        self.calls.insert(id, call);
        self.by_tx.insert(tx, id);
        self.run_route(now, id, RouteName::Request, ep, host, ports, 0);
        self.require_progress(now, id, "request_route", ep);
    }

    /// A route that leaves the caller unanswered with nothing under way (no B-leg dialled) would
    /// leave it waiting in silence: 500 instead.
    fn require_progress(&mut self, now: Duration, id: u64, route: &str, ep: &mut Endpoint) {
        if self.calls.get(&id).is_some_and(|c| c.state == CallState::Unanswered && c.b.is_none()) {
            tracing::error!(call = %self.call_id(id), route, "route neither answered, replied nor bridged: 500");
            self.end_call(now, id, EndReason::Error { detail: format!("{route} took no action") }, ep);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn run_route(
        &mut self,
        now: Duration,
        id: u64,
        route: RouteName<'_>,
        ep: &mut Endpoint,
        host: &mut dyn RouteHost,
        ports: &mut dyn RtpPorts,
        depth: usize,
    ) {
        let Some(call) = self.calls.get(&id) else { return };
        if depth >= MAX_ROUTE_DEPTH {
            tracing::error!(call = %call.view.id, %route, "routes nested too deep; ending the call");
            self.end_call(now, id, EndReason::Error { detail: "routes nested too deep".into() }, ep);
            return;
        }
        let actions = match host.run(route, &call.view) {
            Ok(actions) => actions,
            Err(error) => {
                tracing::error!(call = %call.view.id, %error, "route failed; ending the call");
                self.end_call(now, id, EndReason::Error { detail: error.to_string() }, ep);
                return;
            }
        };
        for action in actions {
            if !self.calls.contains_key(&id) {
                return;
            }
            if let Err(detail) = self.apply(now, id, action, ep, host, ports, depth) {
                tracing::error!(call = %self.call_id(id), %route, %detail, "route action failed; ending the call");
                self.end_call(now, id, EndReason::Error { detail }, ep);
                return;
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn apply(
        &mut self,
        now: Duration,
        id: u64,
        action: Action,
        ep: &mut Endpoint,
        host: &mut dyn RouteHost,
        ports: &mut dyn RtpPorts,
        depth: usize,
    ) -> Result<(), String> {
        let call = self.calls.get_mut(&id).ok_or("call gone")?;
        match action {
            Action::Ringing => {
                if call.state == CallState::Unanswered {
                    let _ = ep.respond(now, call.tx, Reply::new(180, "Ringing"));
                }
                Ok(())
            }
            Action::Reply { code, reason } => {
                if call.state != CallState::Unanswered {
                    return Err(format!("reply({code}) on an answered call"));
                }
                match code {
                    101..=199 => {
                        let _ = ep.respond(now, call.tx, Reply::new(code, reason));
                        Ok(())
                    }
                    300..=699 => {
                        self.reject(now, id, code, &reason, ep);
                        Ok(())
                    }
                    _ => Err(format!("reply({code}): use answer() for 2xx; codes are 101-199 or 300-699")),
                }
            }
            Action::Hangup { code, reason } => {
                if call.state == CallState::Unanswered {
                    let code = code.filter(|c| (300..=699).contains(c)).unwrap_or(480);
                    let reason = reason.unwrap_or_else(|| "Temporarily Unavailable".into());
                    self.reject(now, id, code, &reason, ep);
                } else {
                    self.end_call(now, id, EndReason::RmsBye, ep);
                }
                Ok(())
            }
            Action::Answer { route } => {
                if call.state != CallState::Unanswered {
                    return Err("answer() on an answered call".into());
                }
                if call.b.is_some() {
                    return Err("answer() while a bridge is being set up".into());
                }
                match self.answer_a(now, id, 200, &[], ep, ports)? {
                    AnswerOutcome::Answered => {
                        self.run_route(now, id, RouteName::Event(&route), ep, host, ports, depth + 1)
                    }
                    AnswerOutcome::OfferSent => {
                        // Offer in our 200: media and the route wait for the answer in the ACK.
                        if let Some(call) = self.calls.get_mut(&id) {
                            call.after_answer = Some(route);
                        }
                    }
                    AnswerOutcome::Rejected => {}
                }
                Ok(())
            }
            Action::Play { file, route } => {
                if call.state != CallState::Answered {
                    return Err(format!("play({file}) before answer()"));
                }
                let Some(leg) = call.a.leg.filter(|_| call.a.media_running) else {
                    // Answered without SDP and not ACKed yet: no media to play on.
                    return Err(format!("play({file}) before media runs"));
                };
                let path = resolve_prompt(&self.config.voice_dirs, &file)?;
                self.next_token += 1;
                let token = self.next_token;
                call.plays.insert(token, route);
                self.media.push_back(MediaCmd::Play { leg, file: path, loops: 1, token });
                Ok(())
            }
            Action::Bridge(request) => self.bridge(now, id, request, ep, host, ports, depth),
        }
    }

    /// A final non-2xx to the unanswered A-leg.
    fn reject(&mut self, now: Duration, id: u64, code: u16, reason: &str, ep: &mut Endpoint) {
        if let Some(call) = self.calls.get(&id) {
            let _ = ep.respond(now, call.tx, Reply::new(code, reason));
        }
        self.end_b(now, id, ep);
        self.finish(now, id, EndReason::Rejected { status: code });
    }

    /// Answer the A-leg with `status` (183 for early media, 200): allocate its port, answer its
    /// offer (preferring the codecs in `prefer`, so a bridge can relay) or put our offer in the
    /// 200, and start its media when the SDP is settled. A 183 without an offer to answer does
    /// nothing.
    fn answer_a(
        &mut self,
        now: Duration,
        id: u64,
        status: u16,
        prefer: &[CodecKind],
        ep: &mut Endpoint,
        ports: &mut dyn RtpPorts,
    ) -> Result<AnswerOutcome, String> {
        let call = self.calls.get_mut(&id).ok_or("call gone")?;
        if call.a.last_offer.is_none() && status != 200 {
            return Ok(AnswerOutcome::Rejected);
        }
        // After early media the SDP is settled: the 200 repeats the 183's answer.
        if call.a.media_running && call.a.last_answer.is_some() {
            let body = call.a.last_answer.clone().unwrap_or_default();
            let dialog =
                match ep.respond(now, call.tx, Reply::new(status, reason_for(status)).with_body(Body::sdp(body))) {
                    Ok(d) => d,
                    Err(e) => return Err(format!("{status} not sent: {e:?}")),
                };
            if let Some(d) = dialog {
                self.a_answered(now, id, d);
            }
            return Ok(AnswerOutcome::Answered);
        }
        let leg = match call.a.leg {
            Some(leg) => leg,
            None => {
                self.next_leg += 1;
                LegId(self.next_leg)
            }
        };
        let port = match call.a.port {
            Some(port) => port,
            None => match ports.allocate(leg) {
                Some(port) => port,
                None => {
                    tracing::warn!(call = %call.view.id, "no RTP port free: 503");
                    self.reject(now, id, 503, "Service Unavailable - No RTP Port", ep);
                    return Ok(AnswerOutcome::Rejected);
                }
            },
        };
        let config = &self.config;
        let (body, negotiated, our_offer) = match &call.a.last_offer {
            Some(offer) => {
                let answer_config = |codecs: Vec<CodecKind>| config.answer_config(port, codecs, call.a.origin);
                // RFC 3264 §6.1 lets the answerer prefer formats for a reason: the B-leg's codec
                // keeps the bridge a relay.
                let preferred = (!prefer.is_empty())
                    .then(|| negotiate_answer(offer, &answer_config(prefer.to_vec())).ok())
                    .flatten();
                match preferred.map_or_else(|| negotiate_answer(offer, &answer_config(config.codecs.clone())), Ok) {
                    Ok(answer) => (answer.sdp.to_bytes(), Some(answer.negotiated), None),
                    Err(e) => {
                        if call.a.port.is_none() {
                            ports.release(leg);
                        }
                        let reply = Reply::new(488, "Not Acceptable Here").with_header("Warning", e.warning_text());
                        let _ = ep.respond(now, call.tx, reply);
                        tracing::info!(call = %call.view.id, error = %e, "offer not acceptable: 488");
                        self.end_b(now, id, ep);
                        self.finish(now, id, EndReason::Rejected { status: 488 });
                        return Ok(AnswerOutcome::Rejected);
                    }
                }
            }
            None => {
                let mut codecs = prefer.to_vec();
                codecs.extend(config.codecs.iter().copied().filter(|c| !prefer.contains(c)));
                let offer = build_offer(&config.offer_config(port, codecs, call.a.origin));
                (offer.to_bytes(), None, Some(offer))
            }
        };
        let dialog =
            match ep.respond(now, call.tx, Reply::new(status, reason_for(status)).with_body(Body::sdp(body.clone()))) {
                Ok(d) => d,
                Err(e) => {
                    if call.a.port.is_none() {
                        ports.release(leg);
                    }
                    return Err(format!("{status} not sent: {e:?}"));
                }
            };
        call.a.port = Some(port);
        call.a.leg = Some(leg);
        call.a.last_answer = negotiated.is_some().then_some(body);
        call.a.our_offer = our_offer;
        // The port is held from now on, by the call or (after teardown) by `closing`.
        self.by_leg.insert(leg, (id, Side::A));
        if let Some(d) = dialog {
            self.a_answered(now, id, d);
        }
        match negotiated {
            Some(n) => {
                self.start_media(id, Side::A, n);
                Ok(AnswerOutcome::Answered)
            }
            None => Ok(AnswerOutcome::OfferSent),
        }
    }

    /// The A-leg's 200 went out and made `dialog`.
    fn a_answered(&mut self, now: Duration, id: u64, dialog: DialogId) {
        let Some(call) = self.calls.get_mut(&id) else { return };
        call.state = CallState::Answered;
        call.answered = Some(now);
        call.dialog = Some(dialog.clone());
        call.a_dialog = Some(dialog.clone());
        self.by_dialog.insert(dialog, (id, Side::A));
    }

    fn start_media(&mut self, id: u64, side: Side, n: Negotiated) {
        let Some(call) = self.calls.get_mut(&id) else { return };
        match side {
            Side::A => call.view.codec = n.codec.name().to_string(),
            Side::B => call.view.b_codec = n.codec.name().to_string(),
        }
        let partner = partner_codec(call, side);
        let Some(sdp) = call.sdp_mut(side) else { return };
        let Some(leg) = sdp.leg else { return };
        let mut media = leg_media(&n, &self.config.opus);
        if let Some(partner) = partner {
            media.params.pcm_rate = crate::media::bridged_pcm_rate(n.codec, partner);
        }
        sdp.media_running = true;
        sdp.negotiated = Some(n);
        self.media.push_back(MediaCmd::CreateLeg { leg, media });
    }

    fn ack(
        &mut self,
        now: Duration,
        dialog: &DialogId,
        request: &Request,
        ep: &mut Endpoint,
        host: &mut dyn RouteHost,
        ports: &mut dyn RtpPorts,
    ) {
        let Some(&(id, side)) = self.by_dialog.get(dialog) else { return };
        let Some(call) = self.calls.get_mut(&id) else { return };
        let route = if side == Side::A { call.after_answer.take() } else { None };
        let Some(sdp) = call.sdp_mut(side) else { return };
        let Some(offer) = sdp.our_offer.take() else { return };
        let Some(leg) = sdp.leg else { return };
        let answer = SessionDescription::parse(request.body()).map_err(|e| e.to_string()).and_then(|a| {
            let n = negotiate_offer_answer(&offer, &a).map_err(|e| e.to_string())?;
            Ok((a, n))
        });
        match answer {
            Ok((answer, n)) if sdp.media_running => {
                // The answer to the offer in our 200 to a re-INVITE without SDP.
                sdp.last_offer = Some(answer);
                let media = leg_media(&n, &self.config.opus);
                sdp.negotiated = Some(n);
                self.media.push_back(MediaCmd::UpdateLeg { leg, media });
            }
            Ok((answer, n)) => {
                sdp.last_offer = Some(answer);
                self.start_media(id, side, n);
                if self.calls.get(&id).is_some_and(|c| c.b.is_some()) {
                    self.join_legs(now, id, ep, host, ports);
                } else if let Some(route) = route {
                    self.run_route(now, id, RouteName::Event(&route), ep, host, ports, 1);
                }
            }
            Err(detail) => {
                tracing::warn!(call = %call.view.id, %detail, "no usable answer in the ACK; ending the call");
                self.end_call(now, id, EndReason::Error { detail: format!("answer in ACK: {detail}") }, ep);
            }
        }
    }

    /// A re-INVITE on either leg: a new offer/answer answered locally (hold: sendonly → we answer
    /// recvonly and stop sending to that leg).
    fn reinvite(&mut self, now: Duration, tx: ServerTxId, request: &Request, dialog: &DialogId, ep: &mut Endpoint) {
        let Some(&(id, side)) = self.by_dialog.get(dialog) else {
            let _ = ep.respond(now, tx, Reply::new(481, "Call/Transaction Does Not Exist"));
            return;
        };
        let config = &self.config;
        let Some(sdp) = self.calls.get_mut(&id).and_then(|c| c.sdp_mut(side)) else { return };
        let Some(port) = sdp.port else {
            let _ = ep.respond(now, tx, Reply::new(488, "Not Acceptable Here"));
            return;
        };
        // A running leg keeps its codec (the media graph changes destination and ptime in place,
        // not codec), so re-offers and re-answers name only it; an offer without it gets 488 and
        // the session stays as it was (RFC 3261 §14.2).
        let codecs = match &sdp.negotiated {
            Some(n) if sdp.media_running => vec![n.codec],
            _ => config.codecs.clone(),
        };
        if request.body().is_empty() {
            // RFC 3261 §14.2: a re-INVITE without SDP asks for our offer in the 200; the answer
            // comes in the ACK (handled in `ack`).
            let offer = build_offer(&config.offer_config(port, codecs, sdp.origin.next()));
            let body = offer.to_bytes();
            let _ = ep.respond(now, tx, Reply::new(200, "OK").with_body(Body::sdp(body)));
            sdp.our_offer = Some(offer);
            return;
        }
        let Ok(offer) = SessionDescription::parse(request.body()) else {
            let reply = Reply::new(488, "Not Acceptable Here").with_header("Warning", "399 rms \"unreadable SDP\"");
            let _ = ep.respond(now, tx, reply);
            return;
        };
        // RFC 3264 §8: the same o= version is the same SDP, so the same answer.
        if let (Some(prev), Some(answer)) = (&sdp.last_offer, &sdp.last_answer) {
            if crate::sdp::offer_unchanged(prev, &offer) {
                let _ = ep.respond(now, tx, Reply::new(200, "OK").with_body(Body::sdp(answer.clone())));
                return;
            }
        }
        let answer_config = config.answer_config(port, codecs, sdp.origin.next());
        match negotiate_answer(&offer, &answer_config) {
            Ok(answer) => {
                let body = answer.sdp.to_bytes();
                let _ = ep.respond(now, tx, Reply::new(200, "OK").with_body(Body::sdp(body.clone())));
                sdp.last_offer = Some(offer);
                sdp.last_answer = Some(body);
                let n = answer.negotiated;
                if let Some(leg) = sdp.leg.filter(|_| sdp.media_running) {
                    self.media.push_back(MediaCmd::UpdateLeg { leg, media: leg_media(&n, &self.config.opus) });
                }
                sdp.negotiated = Some(n);
            }
            Err(e) => {
                let reply = Reply::new(488, "Not Acceptable Here").with_header("Warning", e.warning_text());
                let _ = ep.respond(now, tx, reply);
            }
        }
    }

    /// End a call on any path: BYE if answered and the dialog is ours to end, 500/503 if
    /// unanswered, the B-leg cancelled or hung up, media torn down.
    fn end_call(&mut self, now: Duration, id: u64, reason: EndReason, ep: &mut Endpoint) {
        let Some(call) = self.calls.get(&id) else { return };
        match call.state {
            CallState::Unanswered => {
                let status = match reason {
                    EndReason::Cancelled => 0,
                    EndReason::Shutdown => 503,
                    _ => 500,
                };
                if status != 0 {
                    let reason_phrase = if status == 503 { "Service Unavailable" } else { "Server Internal Error" };
                    let _ = ep.respond(now, call.tx, Reply::new(status, reason_phrase));
                }
            }
            CallState::Answered => {
                if let Some(dialog) = &call.dialog {
                    if let Err(e) = ep.send_in_dialog(now, dialog, Method::Bye, Vec::new(), None) {
                        tracing::debug!(call = %call.view.id, error = %e, "no BYE sent");
                    }
                }
            }
        }
        self.end_b(now, id, ep);
        self.finish(now, id, reason);
    }

    /// Forget a call whose SIP side is settled; tear its media down.
    fn finish(&mut self, now: Duration, id: u64, reason: EndReason) {
        let Some(mut call) = self.calls.remove(&id) else { return };
        self.by_tx.remove(&call.tx);
        if let Some(d) = &call.dialog {
            self.by_dialog.remove(d);
        }
        if let Some(b) = call.b.take() {
            call.b_codec = b.sdp.negotiated.as_ref().map(|n| n.codec).or(call.b_codec);
            self.drop_b(id, b);
        }
        self.release_leg(id, Side::A, &call.a);
        tracing::info!(call = %call.view.id, ?reason, "call ended");
        let view = call.view.clone();
        // The legs' identities, only when there is a collector to report them to.
        let mut vq: Vec<VqLeg> = Vec::new();
        if self.config.vq_collector.is_some() {
            let a_dialog = call.dialog.as_ref().or(call.a_dialog.as_ref());
            let caller = without_tag(&call.view.from);
            let a_ids = VqIds {
                call_id: call.view.id.clone(),
                local_id: without_tag(&call.view.to),
                remote_id: caller.clone(),
                orig_id: caller,
                // We are the UAS of the A-leg: our tag is the To tag.
                dialog_id: a_dialog.map(|d| format!("{};to-tag={};from-tag={}", d.call_id, d.local_tag, d.remote_tag)),
            };
            vq.extend(vq_leg(Side::A, &call.a, self.config.media_ip, a_ids, call.started));
            vq.extend(call.b_vq.take());
        }
        let record = CallRecord {
            id: call.view.id,
            from: call.view.from,
            to: call.view.to,
            ruri: call.view.ruri,
            codec: call.a.negotiated.map(|n| n.codec),
            b_codec: call.b_codec,
            started: call.started,
            answered: call.answered,
            ended: now,
            reason,
            leg: None,
            b_leg: call.b_report,
        };
        let ended = EndedCall { record, view, vq };
        let waiting = self.report_to.values().filter(|(owner, _)| *owner == id).count();
        if waiting == 0 {
            self.completed.push_back(ended);
        } else {
            self.pending_records.insert(id, PendingRecord { ended, waiting });
        }
    }

    /// Calls whose legs have all reported: run `event_route["rms:hangup"]` with the end reason and
    /// each leg's quality, send the RFC 6035 reports, then hand the record to the call log.
    fn flush_completed(&mut self, now: Duration, ep: &mut Endpoint, host: &mut dyn RouteHost) {
        while let Some(done) = self.completed.pop_front() {
            let EndedCall { record, mut view, vq } = done;
            view.end_reason = record.reason.name().to_string();
            view.quality = [("A", &record.leg), ("B", &record.b_leg)]
                .into_iter()
                .filter_map(|(label, r)| r.as_ref().map(|r| LegQuality::of(label, r, record.started)))
                .collect();
            match host.run(RouteName::Event(HANGUP_ROUTE), &view) {
                Ok(actions) if !actions.is_empty() => {
                    tracing::debug!(call = %view.id, ?actions, "rms:hangup: the call has ended, its actions are ignored")
                }
                Ok(_) | Err(ScriptError::UndefinedRoute { .. }) => {}
                Err(e) => tracing::warn!(call = %view.id, error = %e, "rms:hangup failed"),
            }
            if let Some(collector) = self.config.vq_collector.clone() {
                for leg in &vq {
                    let report = match leg.side {
                        Side::A => record.leg.as_ref(),
                        Side::B => record.b_leg.as_ref(),
                    };
                    if let Some(report) = report {
                        self.publish(now, ep, &collector, leg, report, record.ended);
                    }
                }
            }
            self.ended.push_back(record);
        }
    }

    /// RFC 6035 §3: the leg's `VQSessionReport: CallTerm` in a PUBLISH to the collector.
    fn publish(
        &mut self,
        now: Duration,
        ep: &mut Endpoint,
        collector: &crate::sip::Target,
        leg: &VqLeg,
        report: &LegReport,
        ended: Duration,
    ) {
        let iaj = |jitter: u32| Some(jitter.saturating_mul(1000) / leg.session.sample_rate.max(1));
        let local = report
            .rtcp
            .local_metrics
            .map(|xr| vq_report::Metrics { xr, interarrival_jitter_ms: report.received_jitter.and_then(iaj) });
        let remote = report.rtcp.remote_metrics.map(|xr| vq_report::Metrics {
            xr,
            interarrival_jitter_ms: report.rtcp.remote_reception.and_then(|b| iaj(b.reception.jitter)),
        });
        let body = vq_report::VqReport {
            call_id: leg.call_id.clone(),
            local_id: leg.local_id.clone(),
            remote_id: leg.remote_id.clone(),
            orig_id: leg.orig_id.clone(),
            local_addr: leg.local_addr,
            local_ssrc: report.local_ssrc,
            remote_addr: leg.remote_addr,
            remote_ssrc: report.remote_ssrc,
            start: self.config.epoch + leg.started,
            stop: self.config.epoch + ended,
            session: leg.session.clone(),
            local,
            remote,
            dialog_id: leg.dialog_id.clone(),
        }
        .body();
        let out = OutgoingRequest {
            method: Method::Publish,
            uri: collector.uri.clone(),
            from: format!("<sip:rms@{}>", self.config.media_ip),
            to: format!("<{}>", crate::sip::print_uri(&collector.uri)),
            dest: collector.dest,
            transport: collector.transport,
            headers: vec![("Event".into(), vq_report::EVENT.into())],
            body: Some(Body { content_type: vq_report::CONTENT_TYPE.into(), bytes: body.into_bytes() }),
        };
        let tx = ep.send_request(now, out);
        tracing::debug!(call = %leg.call_id, collector = %collector.dest, "RFC 6035 report sent");
        self.publishes.insert(tx, leg.call_id.clone());
    }

    /// Give a leg's port back, or destroy its media (the port then waits for `LegClosed`).
    fn release_leg(&mut self, id: u64, side: Side, sdp: &LegSdp) {
        let Some(leg) = sdp.leg else { return };
        self.by_leg.remove(&leg);
        if sdp.media_running {
            self.closing.insert(leg, sdp.port.unwrap_or(0));
            self.report_to.insert(leg, (id, side));
            self.media.push_back(MediaCmd::DestroyLeg { leg });
        } else {
            self.release_now.push(leg);
        }
    }

    fn call_id(&self, id: u64) -> String {
        self.calls.get(&id).map(|c| c.view.id.clone()).unwrap_or_default()
    }
}

/// What [`Sessions::answer_a`] did.
enum AnswerOutcome {
    /// Answered with SDP; media runs.
    Answered,
    /// Our offer went in the 200; the answer comes in the ACK.
    OfferSent,
    /// The call was rejected (488, 503) and is gone, or there was nothing to answer yet.
    Rejected,
}

fn reason_for(status: u16) -> &'static str {
    match status {
        180 => "Ringing",
        183 => "Session Progress",
        _ => "OK",
    }
}

/// The codec the other leg of a bridge uses or will likely use (A's first codec we know in its offer
/// while it is unanswered).
fn partner_codec(call: &Call, side: Side) -> Option<CodecKind> {
    match side {
        Side::A => call.b.as_ref()?.sdp.negotiated.as_ref().map(|n| n.codec),
        Side::B => call.a.negotiated.as_ref().map(|n| n.codec).or_else(|| {
            let offer = call.a.last_offer.as_ref()?;
            crate::sdp::offered_codecs(offer).into_iter().next()
        }),
    }
}

/// What the media leg needs of a negotiation: the codec at the leg's PCM rate, Opus settings
/// adjusted by the peer's fmtp (without `useinbandfec=1` it gets no FEC), and the packet time the
/// codec can send (Opus: 10/20/40/60 ms).
fn leg_media(n: &Negotiated, opus: &OpusConfig) -> LegMedia {
    let mut media = LegMedia {
        telephone_event: n.telephone_event,
        send: n.direction.sends() && !n.remote_rtp.ip().is_unspecified(),
        rtcp: LegRtcp { remote: n.remote_rtcp, mux: n.rtcp_mux, xr: n.rtcp_xr },
        ..LegMedia::new(n.remote_rtp, n.codec, n.payload_type, n.codec.packet_ms(n.ptime))
    };
    if n.codec == CodecKind::Opus {
        media.params.opus = n.opus.unwrap_or_default().encoder_config(opus);
    }
    media
}

/// The SIP identities of a leg's report.
struct VqIds {
    call_id: String,
    local_id: String,
    remote_id: String,
    orig_id: String,
    dialog_id: Option<String>,
}

/// A leg's report identity, when it had negotiated media.
fn vq_leg(side: Side, sdp: &LegSdp, media_ip: IpAddr, ids: VqIds, started: Duration) -> Option<VqLeg> {
    let n = sdp.negotiated.as_ref()?;
    let port = sdp.port?;
    Some(VqLeg {
        side,
        call_id: ids.call_id,
        local_id: ids.local_id,
        remote_id: ids.remote_id,
        orig_id: ids.orig_id,
        local_addr: SocketAddr::new(media_ip, port),
        remote_addr: n.remote_rtp,
        session: vq_report::SessionDesc {
            payload_type: n.payload_type,
            payload_desc: n.codec.name().to_string(),
            sample_rate: n.clock_rate,
            frame_ms: n.ptime,
        },
        dialog_id: ids.dialog_id,
        started,
    })
}

/// A leg's quality for the script: its interval MOS figures, the minimum's time from the call's start.
/// Resolve a prompt path against the voice directories. Relative paths join the first directory;
/// absolute ones must lie inside one of them. Any `..` is refused: a script must not read outside
/// the configured directories.
pub fn resolve_prompt(voice_dirs: &[PathBuf], file: &str) -> Result<PathBuf, String> {
    let path = Path::new(file);
    if path.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err(format!("prompt {file:?} leaves the voice directories ('..')"));
    }
    if path.is_absolute() {
        return if voice_dirs.iter().any(|d| path.starts_with(d)) {
            Ok(path.to_path_buf())
        } else {
            Err(format!("prompt {file:?} is outside the voice directories"))
        };
    }
    let dir = voice_dirs.first().ok_or_else(|| format!("prompt {file:?}: no voice directory configured"))?;
    Ok(dir.join(path))
}

#[cfg(test)]
mod tests;
