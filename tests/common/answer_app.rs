//! The test-only application of issue 3: answers every INVITE with 200 and a negotiated SDP (or
//! an offer when the INVITE has none), re-INVITEs with a new answer, and records what happened.
//! The Request-URI user steers it:
//! - `ring`: 180 and no answer (for CANCEL tests);
//! - `hangup`: BYE from our side 500 ms after the ACK;
//! - `busy`: 486.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rms::runtime::SignallingApp;
use rms::sdp::{
    build_offer, negotiate_answer, negotiate_offer_answer, AnswerConfig, Direction, OfferConfig, OriginState,
    SessionDescription,
};
use rms::sip::{Body, DialogEnd, DialogId, Endpoint, Method, Reply, SipEvent};
use rms_filters::codec::CodecKind;

/// What the application saw, for assertions.
#[derive(Debug, Default, Clone)]
pub struct AppLog {
    pub invites: usize,
    pub answered: usize,
    pub acks: usize,
    pub cancelled: usize,
    pub reinvites: usize,
    /// Our direction in each re-INVITE answer (`recvonly` for a hold).
    pub reinvite_directions: Vec<Direction>,
    pub negotiated_codecs: Vec<CodecKind>,
    /// Offer sent in our 200, answer read from the ACK.
    pub late_offers_answered: usize,
    pub ended: Vec<DialogEnd>,
    pub rejected_488: usize,
    pub errors: Vec<String>,
}

struct Call {
    origin: OriginState,
    /// Our offer, when the INVITE had no SDP (the answer comes in the ACK).
    our_offer: Option<SessionDescription>,
    hangup: bool,
}

pub struct AnswerApp {
    pub log: Arc<Mutex<AppLog>>,
    calls: HashMap<DialogId, Call>,
    /// (when, dialog) of BYEs we will send.
    byes: Vec<(Duration, DialogId)>,
    next_port: u16,
    next_session: u64,
}

impl AnswerApp {
    pub fn new() -> (Self, Arc<Mutex<AppLog>>) {
        let log = Arc::new(Mutex::new(AppLog::default()));
        let app = Self { log: log.clone(), calls: HashMap::new(), byes: Vec::new(), next_port: 30000, next_session: 1 };
        (app, log)
    }

    fn media_ip() -> IpAddr {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    }

    fn codecs() -> Vec<CodecKind> {
        vec![CodecKind::Pcmu, CodecKind::Pcma]
    }

    fn answer(&mut self, offer_bytes: &[u8], origin: OriginState) -> Result<(Vec<u8>, CodecKind, Direction), String> {
        let offer = SessionDescription::parse(offer_bytes).map_err(|e| e.to_string())?;
        let config = AnswerConfig {
            address: Self::media_ip(),
            rtp_port: self.next_port,
            codecs: Self::codecs(),
            telephone_event: true,
            origin,
        };
        let answer = negotiate_answer(&offer, &config).map_err(|e| e.warning_text())?;
        Ok((answer.sdp.to_bytes(), answer.negotiated.codec, answer.negotiated.direction))
    }

    fn on_request(
        &mut self,
        now: Duration,
        tx: rms::sip::ServerTxId,
        request: rms::sip::Request,
        dialog: Option<DialogId>,
        ep: &mut Endpoint,
    ) {
        let mut log = self.log.lock().unwrap();
        match (request.method(), dialog) {
            (Method::Invite, None) => {
                log.invites += 1;
                let user = request.uri().auth.as_ref().map(|a| a.user.clone()).unwrap_or_default();
                if user == "busy" {
                    let _ = ep.respond(now, tx, Reply::new(486, "Busy Here"));
                    return;
                }
                if user == "ring" {
                    let _ = ep.respond(now, tx, Reply::new(180, "Ringing"));
                    return;
                }
                self.next_session += 1;
                self.next_port += 2;
                let origin = OriginState::new(self.next_session);
                let (body, our_offer) = if request.body().is_empty() {
                    let offer = build_offer(&OfferConfig {
                        address: Self::media_ip(),
                        rtp_port: self.next_port,
                        codecs: Self::codecs(),
                        telephone_event: true,
                        origin,
                        direction: Direction::SendRecv,
                    });
                    (offer.to_bytes(), Some(offer))
                } else {
                    drop(log);
                    let answered = self.answer(request.body(), origin);
                    log = self.log.lock().unwrap();
                    match answered {
                        Ok((sdp, codec, _)) => {
                            log.negotiated_codecs.push(codec);
                            (sdp, None)
                        }
                        Err(warning) => {
                            log.rejected_488 += 1;
                            let reply = Reply::new(488, "Not Acceptable Here").with_header("Warning", warning);
                            let _ = ep.respond(now, tx, reply);
                            return;
                        }
                    }
                };
                match ep.respond(now, tx, Reply::new(200, "OK").with_body(Body::sdp(body))) {
                    Ok(Some(d)) => {
                        log.answered += 1;
                        self.calls.insert(d, Call { origin, our_offer, hangup: user == "hangup" });
                    }
                    other => log.errors.push(format!("answer failed: {other:?}")),
                }
            }
            (Method::Invite, Some(d)) => {
                log.reinvites += 1;
                let Some(mut origin) = self.calls.get(&d).map(|c| c.origin) else {
                    let _ = ep.respond(now, tx, Reply::new(481, "Call/Transaction Does Not Exist"));
                    return;
                };
                drop(log);
                let answered = self.answer(request.body(), origin.next());
                log = self.log.lock().unwrap();
                match answered {
                    Ok((sdp, _, direction)) => {
                        log.reinvite_directions.push(direction);
                        if let Some(c) = self.calls.get_mut(&d) {
                            c.origin = origin;
                        }
                        let _ = ep.respond(now, tx, Reply::new(200, "OK").with_body(Body::sdp(sdp)));
                    }
                    Err(warning) => {
                        let reply = Reply::new(488, "Not Acceptable Here").with_header("Warning", warning);
                        let _ = ep.respond(now, tx, reply);
                    }
                }
            }
            _ => {
                let _ = ep.respond(now, tx, Reply::new(200, "OK"));
            }
        }
    }
}

impl SignallingApp for AnswerApp {
    type Input = ();

    fn handle_event(&mut self, now: Duration, event: SipEvent, ep: &mut Endpoint) {
        match event {
            SipEvent::Request { tx, request, dialog, .. } => self.on_request(now, tx, request, dialog, ep),
            SipEvent::Ack { dialog, request } => {
                let mut log = self.log.lock().unwrap();
                log.acks += 1;
                let Some(call) = self.calls.get_mut(&dialog) else { return };
                if let Some(offer) = call.our_offer.take() {
                    match SessionDescription::parse(request.body())
                        .map_err(|e| e.to_string())
                        .and_then(|answer| negotiate_offer_answer(&offer, &answer).map_err(|e| e.to_string()))
                    {
                        Ok(n) => {
                            log.late_offers_answered += 1;
                            log.negotiated_codecs.push(n.codec);
                        }
                        Err(e) => log.errors.push(format!("answer in ACK: {e}")),
                    }
                }
                if call.hangup {
                    self.byes.push((now + Duration::from_millis(500), dialog));
                }
            }
            SipEvent::Cancelled { .. } => self.log.lock().unwrap().cancelled += 1,
            SipEvent::DialogEnded { dialog, reason } => {
                self.calls.remove(&dialog);
                self.byes.retain(|(_, d)| *d != dialog);
                self.log.lock().unwrap().ended.push(reason);
            }
            SipEvent::Response { .. } | SipEvent::Timeout { .. } | SipEvent::TransportFailed { .. } => {}
        }
    }

    fn handle_timeout(&mut self, now: Duration, ep: &mut Endpoint) {
        let due: Vec<DialogId> = self.byes.iter().filter(|(at, _)| *at <= now).map(|(_, d)| d.clone()).collect();
        self.byes.retain(|(at, _)| *at > now);
        for d in due {
            if let Err(e) = ep.send_in_dialog(now, &d, Method::Bye, Vec::new(), None) {
                self.log.lock().unwrap().errors.push(format!("BYE: {e}"));
            }
        }
    }

    fn poll_timeout(&self) -> Option<Duration> {
        self.byes.iter().map(|(at, _)| *at).min()
    }
}
