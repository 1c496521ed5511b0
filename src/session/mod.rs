//! The B2BUA core (sans-IO): calls, their legs, and the call state machine.
//!
//! In: SIP events from the [`Endpoint`] (which it answers through directly: both live on the
//! signalling task), media events from the media thread, and the actions routes return. Out: SIP
//! messages (through the endpoint) and media commands ([`Sessions::poll_media`]).
//!
//! A call's resources are an RTP port (from [`RtpPorts`]), a media leg, a dialog and timers; every
//! path that ends a call (BYE either way, CANCEL, errors, 488, script failures, shutdown) releases
//! them, and [`Sessions::counts`] shows what is left.

pub mod route;

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use rms_filters::codec::CodecKind;

use crate::media::{LegId, LegMedia, LegReport, MediaCmd, MediaEvent};
use crate::sdp::{
    build_offer, negotiate_answer, negotiate_offer_answer, AnswerConfig, Direction, Negotiated, OfferConfig,
    OriginState, SessionDescription,
};
use crate::sip::{Body, DialogEnd, DialogId, Endpoint, Method, Reply, Request, ServerTxId, SipEvent};
pub use route::{Action, CallView, RouteHost, RouteName, ScriptError};

/// Nested `answer` → route → ... calls stop here (a script that loops on itself).
const MAX_ROUTE_DEPTH: usize = 8;

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
    pub started: Duration,
    pub answered: Option<Duration>,
    pub ended: Duration,
    pub reason: EndReason,
    /// The media leg's report (RTP statistics, filter usage), when the call had media.
    pub leg: Option<LegReport>,
}

impl EndReason {
    /// A stable name for logs and the call log.
    pub fn name(&self) -> &'static str {
        match self {
            EndReason::CallerBye => "caller_bye",
            EndReason::RmsBye => "rms_bye",
            EndReason::Cancelled => "cancelled",
            EndReason::Rejected { .. } => "rejected",
            EndReason::AckTimeout => "ack_timeout",
            EndReason::Error { .. } => "error",
            EndReason::Shutdown => "shutdown",
        }
    }

    /// Who ended the call: `caller` or `rms`.
    pub fn hung_up_by(&self) -> &'static str {
        match self {
            EndReason::CallerBye | EndReason::Cancelled => "caller",
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
}

/// What is alive, for leak checks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionCounts {
    pub calls: usize,
    /// Legs whose `LegClosed` has not arrived yet (their port is still held).
    pub legs: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CallState {
    /// The INVITE is with the script, or ringing.
    Unanswered,
    /// 200 sent.
    Answered,
}

struct Call {
    view: CallView,
    tx: ServerTxId,
    state: CallState,
    dialog: Option<DialogId>,
    /// The leg allocated at answer time (its port is held).
    leg: Option<LegId>,
    /// `CreateLeg` went to the media thread (with a late offer, only after the ACK).
    media_running: bool,
    port: Option<u16>,
    origin: OriginState,
    /// The offer that our last answer answered (re-offers with the same o= version get the same
    /// answer, RFC 3264 §8).
    last_offer: Option<SessionDescription>,
    last_answer: Option<Vec<u8>>,
    /// Our offer in the 200 when the INVITE had none; the answer comes in the ACK.
    our_offer: Option<SessionDescription>,
    /// The route to run once media runs (answer without SDP: after the ACK).
    after_answer: Option<String>,
    negotiated: Option<Negotiated>,
    /// Play token → the route to run when it ends.
    plays: HashMap<u64, String>,
    started: Duration,
    answered: Option<Duration>,
}

/// Every call on this signalling task.
pub struct Sessions {
    config: SessionConfig,
    calls: HashMap<u64, Call>,
    by_tx: HashMap<ServerTxId, u64>,
    by_dialog: HashMap<DialogId, u64>,
    by_leg: HashMap<LegId, u64>,
    /// Legs destroyed whose `LegClosed` has not come back: their ports are still bound.
    closing: HashMap<LegId, u16>,
    /// Legs whose port can go back at once (media never started).
    release_now: Vec<LegId>,
    /// Ended calls waiting for their leg's report before they are complete.
    awaiting_report: HashMap<LegId, CallRecord>,
    next_call: u64,
    next_leg: u32,
    next_token: u64,
    rng: fastrand::Rng,
    media: VecDeque<MediaCmd>,
    ended: VecDeque<CallRecord>,
    reports: VecDeque<(LegId, LegReport)>,
}

impl Sessions {
    pub fn new(config: SessionConfig, seed: u64) -> Self {
        Self {
            config,
            calls: HashMap::new(),
            by_tx: HashMap::new(),
            by_dialog: HashMap::new(),
            by_leg: HashMap::new(),
            closing: HashMap::new(),
            release_now: Vec::new(),
            awaiting_report: HashMap::new(),
            next_call: 0,
            next_leg: 0,
            next_token: 0,
            rng: fastrand::Rng::with_seed(seed),
            media: VecDeque::new(),
            ended: VecDeque::new(),
            reports: VecDeque::new(),
        }
    }

    /// Media commands for the media thread, in order.
    pub fn poll_media(&mut self) -> Option<MediaCmd> {
        self.media.pop_front()
    }

    /// Calls that ended, for the call log (a call with media once its leg has reported).
    pub fn poll_ended(&mut self) -> Option<CallRecord> {
        self.ended.pop_front()
    }

    /// Leg reports that belong to no ended call (none in normal operation).
    pub fn poll_report(&mut self) -> Option<(LegId, LegReport)> {
        self.reports.pop_front()
    }

    pub fn counts(&self) -> SessionCounts {
        SessionCounts { calls: self.calls.len(), legs: self.by_leg.len() + self.closing.len() }
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
                rtp_port: c.port,
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
                let Some(&id) = self.by_dialog.get(&dialog) else { return };
                let reason = match reason {
                    DialogEnd::ByeReceived => EndReason::CallerBye,
                    DialogEnd::ByeSent => EndReason::RmsBye,
                    DialogEnd::AckTimeout => EndReason::AckTimeout,
                    DialogEnd::Failed => EndReason::Error { detail: "in-dialog request failed".into() },
                };
                if let Some(call) = self.calls.get_mut(&id) {
                    // The endpoint already ended the dialog: no BYE from us.
                    call.dialog = None;
                }
                self.by_dialog.remove(&dialog);
                self.end_call(now, id, reason, ep);
            }
            SipEvent::Response { .. } | SipEvent::Timeout { .. } => {}
        }
        self.release_ports(ports);
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
                let Some(&id) = self.by_leg.get(&leg) else { return };
                let Some(route) = self.calls.get_mut(&id).and_then(|c| c.plays.remove(&token)) else { return };
                // A play stopped by a newer one or by teardown does not run its route.
                if completed {
                    self.run_route(now, id, RouteName::Event(&route), ep, host, ports, 0);
                }
            }
            MediaEvent::PlayFailed { leg, token, error } => {
                let Some(&id) = self.by_leg.get(&leg) else { return };
                if let Some(c) = self.calls.get_mut(&id) {
                    c.plays.remove(&token);
                }
                tracing::error!(call = %self.call_id(id), %error, "prompt failed; ending the call");
                self.end_call(now, id, EndReason::Error { detail: error.to_string() }, ep);
            }
            MediaEvent::CommandFailed { leg, error } | MediaEvent::LegFailed { leg, error, .. } => {
                let Some(&id) = self.by_leg.get(&leg) else { return };
                tracing::error!(call = %self.call_id(id), %error, "media failed; ending the call");
                self.end_call(now, id, EndReason::Error { detail: error.to_string() }, ep);
            }
            MediaEvent::Bridged { .. } => {}
            MediaEvent::LegClosed { leg, report } => {
                if self.closing.remove(&leg).is_some() {
                    ports.release(leg);
                }
                match self.awaiting_report.remove(&leg) {
                    Some(mut record) => {
                        record.leg = Some(report);
                        self.ended.push_back(record);
                    }
                    None => self.reports.push_back((leg, report)),
                }
            }
        }
        self.release_ports(ports);
    }

    /// End every call: BYE to answered ones, 503 to unanswered ones.
    pub fn shutdown(&mut self, now: Duration, ep: &mut Endpoint, ports: &mut dyn RtpPorts) {
        let ids: Vec<u64> = self.calls.keys().copied().collect();
        for id in ids {
            self.end_call(now, id, EndReason::Shutdown, ep);
        }
        self.release_ports(ports);
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
        let origin = OriginState::new(self.rng.u64(1..u64::MAX / 2));
        let call = Call {
            view,
            tx,
            state: CallState::Unanswered,
            dialog: None,
            leg: None,
            media_running: false,
            port: None,
            origin,
            last_offer: offer,
            last_answer: None,
            our_offer: None,
            after_answer: None,
            negotiated: None,
            plays: HashMap::new(),
            started: now,
            answered: None,
        };
        self.calls.insert(id, call);
        self.by_tx.insert(tx, id);
        self.run_route(now, id, RouteName::Request, ep, host, ports, 0);
        // request_route must answer or reply: nothing else can move an unanswered call on, so
        // leaving it would be silence.
        if self.calls.get(&id).is_some_and(|c| c.state == CallState::Unanswered) {
            tracing::error!(call = %self.call_id(id), "request_route neither answered nor replied: 500");
            self.end_call(now, id, EndReason::Error { detail: "request_route took no action".into() }, ep);
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
                        let _ = ep.respond(now, call.tx, Reply::new(code, reason));
                        self.finish(now, id, EndReason::Rejected { status: code });
                        Ok(())
                    }
                    _ => Err(format!("reply({code}): use answer() for 2xx; codes are 101-199 or 300-699")),
                }
            }
            Action::Hangup { code, reason } => {
                if call.state == CallState::Unanswered {
                    let code = code.filter(|c| (300..=699).contains(c)).unwrap_or(480);
                    let reason = reason.unwrap_or_else(|| "Temporarily Unavailable".into());
                    let _ = ep.respond(now, call.tx, Reply::new(code, reason));
                    self.finish(now, id, EndReason::Rejected { status: code });
                } else {
                    self.end_call(now, id, EndReason::RmsBye, ep);
                }
                Ok(())
            }
            Action::Answer { route } => {
                if call.state != CallState::Unanswered {
                    return Err("answer() on an answered call".into());
                }
                self.answer(now, id, route, ep, host, ports, depth)
            }
            Action::Play { file, route } => {
                if call.state != CallState::Answered {
                    return Err(format!("play({file}) before answer()"));
                }
                let Some(leg) = call.leg.filter(|_| call.media_running) else {
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
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn answer(
        &mut self,
        now: Duration,
        id: u64,
        route: String,
        ep: &mut Endpoint,
        host: &mut dyn RouteHost,
        ports: &mut dyn RtpPorts,
        depth: usize,
    ) -> Result<(), String> {
        self.next_leg += 1;
        let leg = LegId(self.next_leg);
        let Some(port) = ports.allocate(leg) else {
            let call = self.calls.get_mut(&id).ok_or("call gone")?;
            let _ = ep.respond(now, call.tx, Reply::new(503, "Service Unavailable - No RTP Port"));
            tracing::warn!(call = %call.view.id, "no RTP port free: 503");
            self.finish(now, id, EndReason::Rejected { status: 503 });
            return Ok(());
        };
        let config = &self.config;
        let call = self.calls.get_mut(&id).ok_or("call gone")?;
        let (body, negotiated) = match &call.last_offer {
            Some(offer) => {
                let answer_config = AnswerConfig {
                    address: config.media_ip,
                    rtp_port: port,
                    codecs: config.codecs.clone(),
                    telephone_event: config.telephone_event,
                    origin: call.origin,
                };
                match negotiate_answer(offer, &answer_config) {
                    Ok(answer) => (answer.sdp.to_bytes(), Some(answer.negotiated)),
                    Err(e) => {
                        ports.release(leg);
                        let reply = Reply::new(488, "Not Acceptable Here").with_header("Warning", e.warning_text());
                        let _ = ep.respond(now, call.tx, reply);
                        tracing::info!(call = %call.view.id, error = %e, "offer not acceptable: 488");
                        self.finish(now, id, EndReason::Rejected { status: 488 });
                        return Ok(());
                    }
                }
            }
            None => {
                let offer = build_offer(&OfferConfig {
                    address: config.media_ip,
                    rtp_port: port,
                    codecs: config.codecs.clone(),
                    telephone_event: config.telephone_event,
                    origin: call.origin,
                    direction: Direction::SendRecv,
                });
                let bytes = offer.to_bytes();
                call.our_offer = Some(offer);
                (bytes, None)
            }
        };
        let dialog = match ep.respond(now, call.tx, Reply::new(200, "OK").with_body(Body::sdp(body.clone()))) {
            Ok(Some(d)) => d,
            other => {
                ports.release(leg);
                return Err(format!("200 not sent: {other:?}"));
            }
        };
        call.state = CallState::Answered;
        call.answered = Some(now);
        call.dialog = Some(dialog.clone());
        call.port = Some(port);
        call.leg = Some(leg);
        call.last_answer = Some(body);
        self.by_dialog.insert(dialog, id);
        // The port is held from now on, by the call or (after teardown) by `closing`.
        self.by_leg.insert(leg, id);
        match negotiated {
            Some(n) => {
                self.start_media(id, leg, n);
                self.run_route(now, id, RouteName::Event(&route), ep, host, ports, depth + 1);
            }
            None => {
                // Offer in our 200: media and the route wait for the answer in the ACK.
                let call = self.calls.get_mut(&id).ok_or("call gone")?;
                call.after_answer = Some(route);
            }
        }
        Ok(())
    }

    fn start_media(&mut self, id: u64, leg: LegId, n: Negotiated) {
        let Some(call) = self.calls.get_mut(&id) else { return };
        call.view.codec = n.codec.name().to_string();
        let media = leg_media(&n);
        call.leg = Some(leg);
        call.media_running = true;
        call.negotiated = Some(n);
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
        let Some(&id) = self.by_dialog.get(dialog) else { return };
        let Some(call) = self.calls.get_mut(&id) else { return };
        let Some(offer) = call.our_offer.take() else { return };
        let route = call.after_answer.take();
        let Some(leg) = call.leg else { return };
        let answer = SessionDescription::parse(request.body()).map_err(|e| e.to_string()).and_then(|a| {
            let n = negotiate_offer_answer(&offer, &a).map_err(|e| e.to_string())?;
            Ok((a, n))
        });
        match answer {
            Ok((sdp, n)) if call.media_running => {
                // The answer to the offer in our 200 to a re-INVITE without SDP.
                call.last_offer = Some(sdp);
                let media = leg_media(&n);
                call.view.codec = n.codec.name().to_string();
                call.negotiated = Some(n);
                self.media.push_back(MediaCmd::UpdateLeg { leg, media });
            }
            Ok((sdp, n)) => {
                call.last_offer = Some(sdp);
                self.start_media(id, leg, n);
                if let Some(route) = route {
                    self.run_route(now, id, RouteName::Event(&route), ep, host, ports, 1);
                }
            }
            Err(detail) => {
                tracing::warn!(call = %call.view.id, %detail, "no usable answer in the ACK; ending the call");
                self.end_call(now, id, EndReason::Error { detail: format!("answer in ACK: {detail}") }, ep);
            }
        }
    }

    /// A re-INVITE: a new offer/answer in the dialog (hold: sendonly → we answer recvonly).
    fn reinvite(&mut self, now: Duration, tx: ServerTxId, request: &Request, dialog: &DialogId, ep: &mut Endpoint) {
        let Some(&id) = self.by_dialog.get(dialog) else {
            let _ = ep.respond(now, tx, Reply::new(481, "Call/Transaction Does Not Exist"));
            return;
        };
        let config = &self.config;
        let Some(call) = self.calls.get_mut(&id) else { return };
        let Some(port) = call.port else {
            let _ = ep.respond(now, tx, Reply::new(488, "Not Acceptable Here"));
            return;
        };
        // A running leg keeps its codec (the media graph changes destination and ptime in place,
        // not codec), so re-offers and re-answers name only it; an offer without it gets 488 and
        // the session stays as it was (RFC 3261 §14.2).
        let codecs = match &call.negotiated {
            Some(n) if call.media_running => vec![n.codec],
            _ => config.codecs.clone(),
        };
        if request.body().is_empty() {
            // RFC 3261 §14.2: a re-INVITE without SDP asks for our offer in the 200; the answer
            // comes in the ACK (handled in `ack`).
            let offer = build_offer(&OfferConfig {
                address: config.media_ip,
                rtp_port: port,
                codecs,
                telephone_event: config.telephone_event,
                origin: call.origin.next(),
                direction: Direction::SendRecv,
            });
            let body = offer.to_bytes();
            let _ = ep.respond(now, tx, Reply::new(200, "OK").with_body(Body::sdp(body)));
            call.our_offer = Some(offer);
            return;
        }
        let Ok(offer) = SessionDescription::parse(request.body()) else {
            let reply = Reply::new(488, "Not Acceptable Here").with_header("Warning", "399 rms \"unreadable SDP\"");
            let _ = ep.respond(now, tx, reply);
            return;
        };
        // RFC 3264 §8: the same o= version is the same SDP, so the same answer.
        if let (Some(prev), Some(answer)) = (&call.last_offer, &call.last_answer) {
            if crate::sdp::offer_unchanged(prev, &offer) {
                let _ = ep.respond(now, tx, Reply::new(200, "OK").with_body(Body::sdp(answer.clone())));
                return;
            }
        }
        let origin = call.origin.next();
        let answer_config = AnswerConfig {
            address: config.media_ip,
            rtp_port: port,
            codecs,
            telephone_event: config.telephone_event,
            origin,
        };
        match negotiate_answer(&offer, &answer_config) {
            Ok(answer) => {
                let body = answer.sdp.to_bytes();
                let _ = ep.respond(now, tx, Reply::new(200, "OK").with_body(Body::sdp(body.clone())));
                call.last_offer = Some(offer);
                call.last_answer = Some(body);
                let n = answer.negotiated;
                if let Some(leg) = call.leg.filter(|_| call.media_running) {
                    self.media.push_back(MediaCmd::UpdateLeg { leg, media: leg_media(&n) });
                }
                call.negotiated = Some(n);
            }
            Err(e) => {
                let reply = Reply::new(488, "Not Acceptable Here").with_header("Warning", e.warning_text());
                let _ = ep.respond(now, tx, reply);
            }
        }
    }

    /// End a call on any path: BYE if answered and the dialog is ours to end, 500/503 if
    /// unanswered, media torn down.
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
        self.finish(now, id, reason);
    }

    /// Forget a call whose SIP side is settled; tear its media down.
    fn finish(&mut self, now: Duration, id: u64, reason: EndReason) {
        let Some(call) = self.calls.remove(&id) else { return };
        self.by_tx.remove(&call.tx);
        if let Some(d) = &call.dialog {
            self.by_dialog.remove(d);
        }
        let mut awaiting = None;
        if let Some(leg) = call.leg {
            self.by_leg.remove(&leg);
            if call.media_running {
                awaiting = Some(leg);
                // The port stays bound until the media thread closes the leg's socket.
                self.closing.insert(leg, call.port.unwrap_or(0));
                self.media.push_back(MediaCmd::DestroyLeg { leg });
            } else {
                self.release_now.push(leg);
            }
        }
        tracing::info!(call = %call.view.id, ?reason, "call ended");
        let record = CallRecord {
            id: call.view.id,
            from: call.view.from,
            to: call.view.to,
            ruri: call.view.ruri,
            codec: call.negotiated.map(|n| n.codec),
            started: call.started,
            answered: call.answered,
            ended: now,
            reason,
            leg: None,
        };
        match awaiting {
            Some(leg) => {
                self.awaiting_report.insert(leg, record);
            }
            None => self.ended.push_back(record),
        }
    }

    fn call_id(&self, id: u64) -> String {
        self.calls.get(&id).map(|c| c.view.id.clone()).unwrap_or_default()
    }
}

/// What the media leg needs of a negotiation.
fn leg_media(n: &Negotiated) -> LegMedia {
    LegMedia {
        telephone_event: n.telephone_event,
        send: n.direction.sends() && !n.remote_rtp.ip().is_unspecified(),
        ..LegMedia::new(n.remote_rtp, n.codec, n.payload_type, n.ptime)
    }
}

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
