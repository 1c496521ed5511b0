//! The IVR flow in virtual time: a caller endpoint, the server's endpoint, sessions, a scripted
//! route host and the real media coordinator, joined by an instant link.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use rms_filters::NoClock;

use super::*;
use crate::media::{LegSocket, MediaCoordinator, MediaOutput};
use crate::sip::{EndpointConfig, EndpointCounts, OutgoingRequest, SipMessage, Transmit, Transport};

const CALLER: &str = "192.0.2.1:5060";
const RMS: &str = "192.0.2.2:5060";
const CALLEE: &str = "192.0.2.3:5060";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// Routes as closures: name → actions (or an error).
struct ScriptedHost {
    routes: HashMap<String, Result<Vec<Action>, ScriptError>>,
    ran: Vec<String>,
    /// The call as each route saw it.
    views: Vec<CallView>,
}

impl ScriptedHost {
    fn new(routes: &[(&str, Vec<Action>)]) -> Self {
        Self {
            routes: routes.iter().map(|(n, a)| (n.to_string(), Ok(a.clone()))).collect(),
            ran: Vec::new(),
            views: Vec::new(),
        }
    }

    fn ivr(prompt: &str) -> Self {
        Self::new(&[
            ("request_route", vec![Action::Answer { route: "rms:start".into() }]),
            ("rms:start", vec![Action::Play { file: prompt.into(), route: "rms:after_play".into() }]),
            ("rms:after_play", vec![Action::Hangup { code: None, reason: None }]),
        ])
    }
}

impl RouteHost for ScriptedHost {
    fn run(&mut self, route: RouteName<'_>, call: &CallView) -> Result<Vec<Action>, ScriptError> {
        let name = match route {
            RouteName::Request => "request_route".to_string(),
            RouteName::Event(n) => n.to_string(),
        };
        self.ran.push(name.clone());
        self.views.push(call.clone());
        self.routes
            .get(&name)
            .cloned()
            .unwrap_or_else(|| Err(ScriptError::UndefinedRoute { route: route.to_string(), script: "test".into() }))
    }
}

#[derive(Default)]
struct CountingPorts {
    next: u16,
    held: HashSet<LegId>,
}

impl RtpPorts for CountingPorts {
    fn allocate(&mut self, leg: LegId) -> Option<u16> {
        self.next += 2;
        self.held.insert(leg);
        Some(20000 + self.next)
    }

    fn release(&mut self, leg: LegId) {
        assert!(self.held.remove(&leg), "released a port twice or never allocated: {leg:?}");
    }
}

/// How the B-leg's UA answers an INVITE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Callee {
    /// 180, then 200 with SDP at once.
    Answer,
    /// 486 Busy Here.
    Busy,
    /// Nothing by itself: the test responds through `callee_invite`.
    Manual,
}

struct World {
    now: Duration,
    caller: Endpoint,
    /// The B-leg's UA (at `CALLEE`).
    callee: Endpoint,
    callee_mode: Callee,
    callee_events: Vec<SipEvent>,
    /// SIP messages rms sent to the callee.
    to_callee: Vec<SipMessage>,
    /// The INVITE transaction the callee received last.
    callee_invite: Option<ServerTxId>,
    /// Every media command the sessions issued.
    media_cmds: Vec<MediaCmd>,
    rms: Endpoint,
    sessions: Sessions,
    media: MediaCoordinator,
    host: ScriptedHost,
    ports: CountingPorts,
    caller_events: Vec<SipEvent>,
    /// SIP messages rms sent to the caller.
    to_caller: Vec<SipMessage>,
    /// RTP packets per media leg.
    rtp: HashMap<LegId, usize>,
    /// Whether the caller sent its INVITE without SDP (it then answers in the ACK).
    late_offer: bool,
    /// The caller's answer in the ACK.
    late_answer: &'static str,
    voice_dir: PathBuf,
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.voice_dir);
    }
}

impl World {
    fn new(host: ScriptedHost) -> Self {
        Self::with_collector(host, None)
    }

    /// A world whose rms sends its RFC 6035 reports to `collector`.
    fn with_collector(host: ScriptedHost, collector: Option<&str>) -> Self {
        // One directory per world: tests run in parallel and must not rewrite each other's prompt.
        static WORLDS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = WORLDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let voice_dir = std::env::temp_dir().join(format!("rms-session-test-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&voice_dir).unwrap();
        // A 1.0 s, 440 Hz prompt at 8 kHz.
        let prompt = rms_filters::testing::sine(8000, 440.0, 8000.0, 8000);
        rms_filters::testing::write_wav(&voice_dir.join("hello.wav"), 8000, &prompt).unwrap();
        let config = SessionConfig {
            media_ip: "192.0.2.2".parse().unwrap(),
            voice_dirs: vec![voice_dir.clone()],
            codecs: vec![CodecKind::Pcmu, CodecKind::Pcma],
            telephone_event: true,
            opus: OpusConfig::default(),
            vq_collector: collector.map(|c| crate::sip::parse_target(c).unwrap()),
            epoch: std::time::UNIX_EPOCH + Duration::from_secs(1_790_000_000),
        };
        Self {
            now: Duration::ZERO,
            caller: Endpoint::new(EndpointConfig::new(addr(CALLER)), 1),
            callee: Endpoint::new(EndpointConfig::new(addr(CALLEE)), 5),
            callee_mode: Callee::Answer,
            callee_events: Vec::new(),
            to_callee: Vec::new(),
            callee_invite: None,
            media_cmds: Vec::new(),
            rms: Endpoint::new(EndpointConfig::new(addr(RMS)), 2),
            sessions: Sessions::new(config, 3),
            media: MediaCoordinator::new(4, Box::new(NoClock)),
            host,
            ports: CountingPorts::default(),
            caller_events: Vec::new(),
            to_caller: Vec::new(),
            rtp: HashMap::new(),
            late_offer: false,
            late_answer: LATE_ANSWER,
            voice_dir,
        }
    }

    fn invite(&mut self, sdp: Option<&str>) {
        let out = OutgoingRequest {
            method: Method::Invite,
            uri: rsipstack::sip::parse_uri("sip:ivr@192.0.2.2").unwrap(),
            from: "<sip:alice@192.0.2.1>".into(),
            to: "<sip:ivr@192.0.2.2>".into(),
            dest: addr(RMS),
            transport: Transport::Udp,
            headers: Vec::new(),
            body: sdp.map(Body::sdp),
        };
        self.late_offer = sdp.is_none();
        self.caller.send_request(self.now, out);
        self.flush();
    }

    /// Move everything queued until quiet.
    fn flush(&mut self) {
        for _ in 0..10_000 {
            let mut moved = false;
            while let Some(Transmit { payload, .. }) = self.caller.poll_transmit() {
                moved = true;
                self.rms.handle_datagram(self.now, addr(CALLER), &payload);
            }
            while let Some(Transmit { payload, .. }) = self.callee.poll_transmit() {
                moved = true;
                self.rms.handle_datagram(self.now, addr(CALLEE), &payload);
            }
            while let Some(Transmit { payload, dest, .. }) = self.rms.poll_transmit() {
                moved = true;
                if dest == addr(CALLEE) {
                    self.to_callee.push(SipMessage::parse_datagram(&payload).unwrap());
                    self.callee.handle_datagram(self.now, addr(RMS), &payload);
                } else {
                    self.to_caller.push(SipMessage::parse_datagram(&payload).unwrap());
                    self.caller.handle_datagram(self.now, addr(RMS), &payload);
                }
            }
            while let Some(e) = self.callee.poll_event() {
                moved = true;
                if let SipEvent::Request { tx, request, dialog: None, .. } = &e {
                    if *request.method() == Method::Invite {
                        self.callee_invite = Some(*tx);
                        match self.callee_mode {
                            Callee::Answer => {
                                let _ = self.callee.respond(self.now, *tx, Reply::new(180, "Ringing"));
                                let ok = Reply::new(200, "OK").with_body(Body::sdp(CALLEE_ANSWER));
                                let _ = self.callee.respond(self.now, *tx, ok);
                            }
                            Callee::Busy => {
                                let _ = self.callee.respond(self.now, *tx, Reply::new(486, "Busy Here"));
                            }
                            Callee::Manual => {}
                        }
                    }
                }
                self.callee_events.push(e);
            }
            while let Some(e) = self.rms.poll_event() {
                moved = true;
                self.sessions.handle_sip(self.now, e, &mut self.rms, &mut self.host, &mut self.ports);
            }
            while let Some(cmd) = self.sessions.poll_media() {
                moved = true;
                self.media_cmds.push(cmd.clone());
                self.media.handle_cmd(self.now, cmd);
            }
            while let Some(out) = self.media.poll_output() {
                moved = true;
                match out {
                    MediaOutput::Transmit { leg, socket: LegSocket::Rtp, .. } => *self.rtp.entry(leg).or_default() += 1,
                    MediaOutput::Transmit { .. } => {}
                    MediaOutput::Event(e) => {
                        self.sessions.handle_media(self.now, e, &mut self.rms, &mut self.host, &mut self.ports)
                    }
                }
            }
            while let Some(e) = self.caller.poll_event() {
                moved = true;
                // The caller ACKs every 2xx (answering an offer in the 200 with PCMA).
                if let SipEvent::Response { response, dialog: Some(d), .. } = &e {
                    if response.status() == 200 && response.cseq().unwrap().method == Method::Invite {
                        let late_offer = !response.body().is_empty() && self.late_offer;
                        let body = late_offer.then(|| Body::sdp(self.late_answer));
                        let _ = self.caller.ack(d, response.cseq().unwrap().seq, body);
                    }
                }
                self.caller_events.push(e);
            }
            if !moved {
                return;
            }
        }
        panic!("world never went quiet");
    }

    /// Advance time to `until` through every deadline (media ticks, SIP timers).
    fn run_until(&mut self, until: Duration) {
        loop {
            let next = [
                Some(self.media.poll_timeout()),
                self.caller.poll_timeout(),
                self.callee.poll_timeout(),
                self.rms.poll_timeout(),
                self.sessions.poll_timeout(),
            ]
            .into_iter()
            .flatten()
            .min()
            .unwrap();
            if next > until {
                self.now = until;
                return;
            }
            self.now = next;
            self.media.tick(self.now);
            self.caller.handle_timeout(self.now);
            self.callee.handle_timeout(self.now);
            self.rms.handle_timeout(self.now);
            self.sessions.handle_timeout(self.now, &mut self.rms, &mut self.host, &mut self.ports);
            self.flush();
        }
    }

    /// The caller's dialog (from rms's 200).
    fn caller_dialog(&self) -> DialogId {
        self.caller_events
            .iter()
            .find_map(|e| match e {
                SipEvent::Response { dialog: Some(d), .. } => Some(d.clone()),
                _ => None,
            })
            .expect("the caller has a dialog")
    }

    fn statuses(&self) -> Vec<u16> {
        self.to_caller.iter().filter_map(|m| m.status()).collect()
    }

    fn byes(&self) -> Vec<&SipMessage> {
        self.to_caller.iter().filter(|m| m.method() == Some(&Method::Bye)).collect()
    }

    /// Nothing left anywhere once the SIP timers have run out.
    fn assert_all_freed(&mut self) {
        self.run_until(self.now + Duration::from_secs(40));
        assert_eq!(self.sessions.counts(), SessionCounts::default(), "calls or legs left");
        assert_eq!(self.media.leg_count(), 0, "media graphs left");
        assert!(self.ports.held.is_empty(), "RTP ports left: {:?}", self.ports.held);
        assert_eq!(self.rms.counts(), EndpointCounts::default(), "SIP state left");
    }

    /// The callee's dialog (from its 200).
    fn callee_dialog(&self) -> DialogId {
        self.callee_events
            .iter()
            .find_map(|e| match e {
                SipEvent::Ack { dialog, .. } => Some(dialog.clone()),
                _ => None,
            })
            .expect("the callee has a confirmed dialog")
    }

    /// The caller's INVITE reached a callee answering by hand, which rang (180); its INVITE transaction.
    fn ring_manual_callee(&mut self) -> ServerTxId {
        self.callee_mode = Callee::Manual;
        self.invite(Some(OFFER));
        let tx = self.callee_invite.expect("the callee got the INVITE");
        self.callee.respond(self.now, tx, Reply::new(180, "Ringing")).unwrap();
        self.flush();
        tx
    }

    /// The caller's INVITE transaction (from the responses it got), to CANCEL it.
    fn caller_invite(&self) -> ClientTxId {
        self.caller_events
            .iter()
            .find_map(|e| match e {
                SipEvent::Response { tx, .. } => Some(*tx),
                _ => None,
            })
            .expect("the caller got a response to its INVITE")
    }

    fn callee_requests(&self, method: Method) -> Vec<&SipMessage> {
        self.to_callee.iter().filter(|m| m.method() == Some(&method)).collect()
    }

    fn bridges(&self) -> Vec<(LegId, LegId)> {
        self.media_cmds
            .iter()
            .filter_map(|c| match c {
                MediaCmd::Bridge { a, b } => Some((*a, *b)),
                _ => None,
            })
            .collect()
    }
}

const OFFER: &str = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
m=audio 40000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n";
const CALLEE_ANSWER: &str = "v=0\r\no=- 7 1 IN IP4 192.0.2.3\r\ns=-\r\nc=IN IP4 192.0.2.3\r\nt=0 0\r\n\
m=audio 50000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n";
const LATE_ANSWER: &str = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
m=audio 40000 RTP/AVP 8\r\n";

#[test]
fn answer_play_hangup_sends_the_prompt_then_one_bye_and_frees_everything() {
    let mut w = World::new(ScriptedHost::ivr("hello.wav"));
    w.invite(Some(OFFER));
    assert!(w.statuses().contains(&200));
    let ok = w.to_caller.iter().find(|m| m.status() == Some(200)).unwrap().clone();
    let answer = SessionDescription::parse(ok.body()).unwrap();
    assert_eq!(answer.media()[0].fmt, "0 101", "PCMU, the offer's first codec, with telephone-event");
    w.run_until(Duration::from_secs(3));
    assert_eq!(w.host.ran, vec!["request_route", "rms:start", "rms:after_play", "rms:hangup"]);
    // The hangup route sees why the call ended and the A-leg's quality (the caller sent no RTP: no
    // interval was measured).
    let hangup = w.host.views.last().unwrap();
    assert_eq!(hangup.end_reason, "rms_bye");
    assert_eq!(hangup.quality.iter().map(|q| (q.label, q.samples)).collect::<Vec<_>>(), vec![("A", 0)]);
    // 1.0 s of prompt at 20 ms: 50 packets.
    let packets: Vec<usize> = w.rtp.values().copied().collect();
    assert_eq!(packets.len(), 1);
    assert!((49..=51).contains(&packets[0]), "{packets:?} packets");
    let byes = w.byes();
    assert_eq!(byes.len(), 1, "exactly one BYE");
    assert_eq!(byes[0].header("To").unwrap().matches("tag=").count(), 1, "one To tag");
    let record = w.sessions.poll_ended().unwrap();
    assert_eq!(record.reason, EndReason::RmsBye);
    assert_eq!(record.codec, Some(CodecKind::Pcmu));
    let report = record.leg.expect("the leg's report completes the record");
    assert_eq!(report.sent.packets, packets[0] as u64);
    w.assert_all_freed();
}

#[test]
fn bye_from_the_caller_while_playing_stops_media_at_once() {
    let mut w = World::new(ScriptedHost::ivr("hello.wav"));
    w.invite(Some(OFFER));
    w.run_until(Duration::from_millis(400));
    let dialog = w.caller_dialog();
    let sent_before = w.rtp.values().sum::<usize>();
    w.caller.send_in_dialog(w.now, &dialog, Method::Bye, Vec::new(), None).unwrap();
    w.flush();
    assert_eq!(w.media.leg_count(), 0, "the leg is destroyed in the same step");
    assert!(w.statuses().iter().filter(|s| **s == 200).count() >= 2, "200 to the BYE");
    w.run_until(Duration::from_secs(2));
    assert_eq!(w.rtp.values().sum::<usize>(), sent_before, "no RTP after the BYE");
    assert!(!w.host.ran.contains(&"rms:after_play".to_string()), "a stopped play does not run its route");
    assert!(w.byes().is_empty());
    assert_eq!(w.sessions.poll_ended().unwrap().reason, EndReason::CallerBye);
    w.assert_all_freed();
}

#[test]
fn offer_without_a_common_codec_gets_488_with_warning() {
    let mut w = World::new(ScriptedHost::ivr("hello.wav"));
    w.invite(Some(&OFFER.replace("RTP/AVP 0 8 101", "RTP/AVP 18").replace("a=rtpmap:101", "a=x:101")));
    let resp = w.to_caller.iter().find(|m| m.status() == Some(488)).expect("488");
    assert!(resp.header("Warning").unwrap().starts_with("305 rms"));
    w.assert_all_freed();
}

#[test]
fn script_errors_give_500_before_the_answer_and_bye_after() {
    // request_route fails: 500.
    let mut host = ScriptedHost::ivr("hello.wav");
    host.routes.insert(
        "request_route".into(),
        Err(ScriptError::Runtime { route: "request_route".into(), message: "ivr.lua:3: boom".into() }),
    );
    let mut w = World::new(host);
    w.invite(Some(OFFER));
    assert!(w.statuses().contains(&500));
    w.assert_all_freed();
    // An answer route that is not defined: BYE.
    let mut host = ScriptedHost::ivr("hello.wav");
    host.routes.remove("rms:start");
    let mut w = World::new(host);
    w.invite(Some(OFFER));
    assert!(w.statuses().contains(&200));
    assert_eq!(w.byes().len(), 1);
    w.assert_all_freed();
    // request_route that does nothing: 500, never silence.
    let mut w = World::new(ScriptedHost::new(&[("request_route", vec![])]));
    w.invite(Some(OFFER));
    assert!(w.statuses().contains(&500));
    w.assert_all_freed();
}

#[test]
fn prompts_outside_the_voice_dir_or_missing_end_the_call_with_bye() {
    for file in ["../secret.wav", "/etc/passwd", "missing.wav"] {
        let mut w = World::new(ScriptedHost::ivr(file));
        w.invite(Some(OFFER));
        w.run_until(Duration::from_millis(500));
        assert_eq!(w.byes().len(), 1, "{file}");
        assert!(matches!(w.sessions.poll_ended().unwrap().reason, EndReason::Error { .. }), "{file}");
        w.assert_all_freed();
    }
    assert!(resolve_prompt(&[PathBuf::from("/v")], "a/../../b.wav").is_err());
    assert_eq!(resolve_prompt(&[PathBuf::from("/v")], "/v/x.wav"), Ok(PathBuf::from("/v/x.wav")));
    assert_eq!(resolve_prompt(&[PathBuf::from("/v")], "x.wav"), Ok(PathBuf::from("/v/x.wav")));
}

#[test]
fn invite_without_sdp_starts_media_after_the_answer_in_the_ack() {
    let mut w = World::new(ScriptedHost::ivr("hello.wav"));
    w.invite(None);
    assert!(w.statuses().contains(&200));
    assert_eq!(w.host.ran, vec!["request_route", "rms:start"], "the answer route ran after the ACK");
    w.run_until(Duration::from_secs(3));
    assert_eq!(w.byes().len(), 1);
    assert_eq!(w.sessions.poll_ended().unwrap().codec, Some(CodecKind::Pcma), "the caller's answer chose PCMA");
    w.assert_all_freed();
}

#[test]
fn reply_and_hangup_before_answer_are_final_responses() {
    let mut w = World::new(ScriptedHost::new(&[(
        "request_route",
        vec![Action::Ringing, Action::Reply { code: 486, reason: "Busy Here".into() }],
    )]));
    w.invite(Some(OFFER));
    assert_eq!(w.statuses(), vec![100, 180, 486]);
    w.assert_all_freed();
    let mut w = World::new(ScriptedHost::new(&[("request_route", vec![Action::Hangup { code: None, reason: None }])]));
    w.invite(Some(OFFER));
    assert_eq!(w.statuses(), vec![100, 480]);
    w.assert_all_freed();
}

#[test]
fn shutdown_ends_answered_calls_with_bye() {
    let mut w = World::new(ScriptedHost::ivr("hello.wav"));
    w.invite(Some(OFFER));
    w.run_until(Duration::from_millis(200));
    w.sessions.shutdown(w.now, &mut w.rms, &mut w.host, &mut w.ports);
    w.flush();
    assert_eq!(w.byes().len(), 1);
    assert_eq!(w.sessions.poll_ended().unwrap().reason, EndReason::Shutdown);
    w.assert_all_freed();
}

#[test]
fn reinvite_without_sdp_gets_our_offer_and_the_ack_answer_updates_the_leg() {
    let mut w = World::new(ScriptedHost::new(&[
        ("request_route", vec![Action::Answer { route: "rms:start".into() }]),
        ("rms:start", vec![]),
    ]));
    w.invite(Some(OFFER));
    let dialog = w.caller_dialog();
    w.late_offer = true;
    w.late_answer =
        "v=0\r\no=- 1 2 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 40002 RTP/AVP 0\r\n";
    w.caller.send_in_dialog(w.now, &dialog, Method::Invite, Vec::new(), None).unwrap();
    w.flush();
    let ok = w.to_caller.iter().rev().find(|m| m.status() == Some(200)).unwrap();
    let offer = SessionDescription::parse(ok.body()).expect("our offer in the 200");
    assert_eq!(offer.origin().sess_version, 2, "a new SDP version");
    assert_eq!(offer.media()[0].fmt, "0 101", "the running codec only (and telephone-event)");
    // The caller's ACK answered with a new RTP port: the leg follows, the call stays up.
    assert!(w.sessions.poll_ended().is_none(), "the call is still up");
    let summary = &w.sessions.summaries(w.now)[0];
    assert_eq!(summary.codec, "PCMU");
    assert_eq!(w.media.leg_count(), 1, "the leg was updated, not recreated");
    w.caller.send_in_dialog(w.now, &dialog, Method::Bye, Vec::new(), None).unwrap();
    w.flush();
    w.assert_all_freed();
}

// ----- bridge (call:bridge and the B-leg) -----

fn bridge_to(target: &str, on_failed: Option<&str>) -> Action {
    Action::Bridge(BridgeRequest {
        target: target.into(),
        on_bridged: "rms:bridged".into(),
        on_failed: on_failed.map(str::to_string),
        ..BridgeRequest::default()
    })
}

fn bridging_host(extra: &[(&str, Vec<Action>)]) -> ScriptedHost {
    let mut routes = vec![("request_route", vec![bridge_to("sip:bob@192.0.2.3", None)]), ("rms:bridged", vec![])];
    routes.extend(extra.iter().cloned());
    ScriptedHost::new(&routes)
}

#[test]
fn bridge_from_request_route_dials_b_then_answers_a_and_joins_the_legs() {
    let mut w = World::new(bridging_host(&[]));
    w.invite(Some(OFFER));
    let invites = w.callee_requests(Method::Invite);
    assert_eq!(invites.len(), 1);
    let b_invite = invites[0];
    let a_invite_call_id = w.to_caller[0].header("Call-ID").unwrap().to_string();
    assert_ne!(b_invite.header("Call-ID").unwrap(), a_invite_call_id, "the B-leg has its own Call-ID");
    assert!(b_invite.header("From").unwrap().starts_with("<sip:alice@192.0.2.1>;tag="), "A's From, new tag");
    let a_tag = w.to_caller[0].header("From").unwrap().split("tag=").nth(1).unwrap().to_string();
    assert!(!b_invite.header("From").unwrap().contains(&a_tag), "not A's From tag");
    assert_eq!(b_invite.header("CSeq").unwrap(), "1 INVITE");
    let offer = SessionDescription::parse(b_invite.body()).unwrap();
    assert_eq!(offer.media()[0].fmt, "0 8 101", "A's codecs, in A's order, offered to B");
    // A: 100, the callee's 180 relayed, then 200 once B answered.
    assert_eq!(w.statuses(), vec![100, 180, 200]);
    assert_eq!(w.callee_requests(Method::Ack).len(), 1, "B's 200 is ACKed");
    let answer = SessionDescription::parse(w.to_caller[2].body()).unwrap();
    assert_eq!(answer.media()[0].fmt, "0 101", "A answered with B's codec: the bridge can relay");
    assert_eq!(w.bridges().len(), 1, "the legs are joined once");
    assert_eq!(w.host.ran, vec!["request_route", "rms:bridged"]);
    let bridged = w.host.views.last().unwrap();
    assert_eq!((bridged.bridge_status, bridged.b_codec.as_str(), bridged.codec.as_str()), (200, "PCMU", "PCMU"));
    let summary = &w.sessions.summaries(w.now)[0];
    assert_eq!(summary.bridge.as_ref().unwrap().state, "answered");
    // A hangs up: exactly one BYE to B.
    let dialog = w.caller_dialog();
    w.caller.send_in_dialog(w.now, &dialog, Method::Bye, Vec::new(), None).unwrap();
    w.flush();
    assert_eq!(w.callee_requests(Method::Bye).len(), 1);
    assert!(w.byes().is_empty(), "no BYE back to the caller");
    let record = w.sessions.poll_ended().unwrap();
    assert_eq!(record.reason, EndReason::CallerBye);
    assert_eq!(record.b_codec, Some(CodecKind::Pcmu));
    assert!(record.leg.is_some() && record.b_leg.is_some(), "both legs' reports are in the record");
    w.assert_all_freed();
    assert_eq!(w.callee.counts(), EndpointCounts::default());
}

#[test]
fn bye_from_b_sends_exactly_one_bye_to_a() {
    let mut w = World::new(bridging_host(&[]));
    w.invite(Some(OFFER));
    w.run_until(Duration::from_secs(1));
    let dialog = w.callee_dialog();
    w.callee.send_in_dialog(w.now, &dialog, Method::Bye, Vec::new(), None).unwrap();
    w.flush();
    assert_eq!(w.byes().len(), 1);
    assert!(w.callee_requests(Method::Bye).is_empty(), "no BYE back to the callee");
    let record = w.sessions.poll_ended().unwrap();
    assert_eq!((record.reason.name(), record.reason.hung_up_by()), ("callee_bye", "callee"));
    w.assert_all_freed();
}

#[test]
fn busy_b_is_relayed_to_a_at_once_without_on_failed() {
    let mut w = World::new(bridging_host(&[]));
    w.callee_mode = Callee::Busy;
    w.invite(Some(OFFER));
    assert_eq!(w.statuses(), vec![100, 486], "486 relayed in the same instant");
    assert!(!w.host.ran.contains(&"rms:bridged".to_string()));
    assert_eq!(w.sessions.poll_ended().unwrap().reason, EndReason::Rejected { status: 486 });
    w.assert_all_freed();
}

#[test]
fn on_failed_runs_with_the_b_status_and_decides() {
    let mut w = World::new(ScriptedHost::new(&[
        ("request_route", vec![bridge_to("sip:bob@192.0.2.3", Some("rms:failed"))]),
        ("rms:failed", vec![Action::Reply { code: 480, reason: "Nobody Home".into() }]),
    ]));
    w.callee_mode = Callee::Busy;
    w.invite(Some(OFFER));
    assert_eq!(w.host.ran, vec!["request_route", "rms:failed", "rms:hangup"]);
    let view = &w.host.views[1];
    assert_eq!((view.bridge_status, view.bridge_reason.as_str()), (486, "Busy Here"));
    assert_eq!(w.statuses(), vec![100, 480]);
    w.assert_all_freed();
    // An on_failed route that leaves the caller waiting: 500, never silence.
    let mut w = World::new(ScriptedHost::new(&[
        ("request_route", vec![bridge_to("sip:bob@192.0.2.3", Some("rms:failed"))]),
        ("rms:failed", vec![]),
    ]));
    w.callee_mode = Callee::Busy;
    w.invite(Some(OFFER));
    assert_eq!(w.statuses(), vec![100, 500]);
    w.assert_all_freed();
}

#[test]
fn ring_timeout_cancels_b_and_gives_a_408() {
    let mut request = match bridge_to("sip:bob@192.0.2.3", None) {
        Action::Bridge(r) => r,
        _ => unreachable!(),
    };
    request.timeout = Some(Duration::from_secs(5));
    let mut w = World::new(ScriptedHost::new(&[("request_route", vec![Action::Bridge(request)])]));
    w.ring_manual_callee();
    w.run_until(Duration::from_millis(4990));
    assert_eq!(w.statuses(), vec![100, 180], "still ringing just before the timeout");
    w.run_until(Duration::from_millis(5010));
    assert_eq!(w.callee_requests(Method::Cancel).len(), 1, "B cancelled");
    assert_eq!(w.statuses(), vec![100, 180, 408], "408 at the ring timeout");
    assert!(w.callee_events.iter().any(|e| matches!(e, SipEvent::Cancelled { .. })));
    w.assert_all_freed();
    assert_eq!(w.callee.counts(), EndpointCounts::default());
}

#[test]
fn caller_cancel_cancels_b() {
    let mut w = World::new(bridging_host(&[]));
    w.ring_manual_callee();
    let a_tx = w.caller_invite();
    w.caller.cancel(w.now, a_tx);
    w.flush();
    assert!(w.statuses().ends_with(&[200, 487]), "{:?}: 200 to the CANCEL, 487 to the INVITE", w.statuses());
    assert_eq!(w.callee_requests(Method::Cancel).len(), 1, "B gets a CANCEL");
    assert_eq!(w.sessions.poll_ended().unwrap().reason, EndReason::Cancelled);
    w.assert_all_freed();
}

#[test]
fn a_2xx_crossing_our_cancel_is_acked_and_hung_up() {
    let mut w = World::new(bridging_host(&[]));
    let tx = w.ring_manual_callee();
    // The caller hangs up (CANCEL) while the callee answers: the callee's 200 crosses rms's CANCEL.
    let a_tx = w.caller_invite();
    w.callee.respond(w.now, tx, Reply::new(200, "OK").with_body(Body::sdp(CALLEE_ANSWER))).unwrap();
    w.caller.cancel(w.now, a_tx);
    // Deliver the caller's CANCEL before the callee's 200.
    while let Some(Transmit { payload, .. }) = w.caller.poll_transmit() {
        w.rms.handle_datagram(w.now, addr(CALLER), &payload);
    }
    w.flush();
    assert_eq!(w.callee_requests(Method::Ack).len(), 1, "the late 200 is ACKed");
    assert_eq!(w.callee_requests(Method::Bye).len(), 1, "and hung up");
    assert!(w.statuses().ends_with(&[200, 487]));
    w.assert_all_freed();
    assert_eq!(w.callee.counts(), EndpointCounts::default());
}

#[test]
fn early_media_183_with_sdp_answers_a_with_183_and_joins_early() {
    let mut w = World::new(bridging_host(&[]));
    w.callee_mode = Callee::Manual;
    w.invite(Some(OFFER));
    let tx = w.callee_invite.unwrap();
    w.callee.respond(w.now, tx, Reply::new(183, "Session Progress").with_body(Body::sdp(CALLEE_ANSWER))).unwrap();
    w.flush();
    assert_eq!(w.statuses(), vec![100, 183]);
    let early = w.to_caller[1].body().to_vec();
    assert!(SessionDescription::parse(&early).is_ok(), "the 183 carries A's answer");
    assert_eq!(w.bridges().len(), 1, "joined on early media");
    assert!(w.host.ran == vec!["request_route"], "on_bridged waits for the answer");
    w.run_until(Duration::from_millis(500));
    w.callee.respond(w.now, tx, Reply::new(200, "OK").with_body(Body::sdp(CALLEE_ANSWER))).unwrap();
    w.flush();
    assert_eq!(w.statuses(), vec![100, 183, 200]);
    assert_eq!(w.to_caller[2].body(), &early[..], "the 200 repeats the 183's answer");
    assert_eq!(w.bridges().len(), 1, "joined once");
    assert_eq!(w.host.ran, vec!["request_route", "rms:bridged"]);
    let dialog = w.caller_dialog();
    w.caller.send_in_dialog(w.now, &dialog, Method::Bye, Vec::new(), None).unwrap();
    w.flush();
    assert_eq!(w.callee_requests(Method::Bye).len(), 1);
    w.assert_all_freed();
}

#[test]
fn play_then_bridge_answers_once_and_stops_the_prompt() {
    let mut w = World::new(ScriptedHost::new(&[
        ("request_route", vec![Action::Answer { route: "rms:start".into() }]),
        ("rms:start", vec![Action::Play { file: "hello.wav".into(), route: "rms:after_play".into() }]),
        ("rms:after_play", vec![bridge_to("sip:bob@192.0.2.3", None)]),
        ("rms:bridged", vec![]),
    ]));
    w.invite(Some(OFFER));
    w.run_until(Duration::from_secs(2));
    assert_eq!(w.host.ran, vec!["request_route", "rms:start", "rms:after_play", "rms:bridged"]);
    assert_eq!(w.statuses().iter().filter(|s| **s == 200).count(), 1, "A answered once");
    assert_eq!(w.callee_requests(Method::Invite).len(), 1);
    assert_eq!(w.bridges().len(), 1);
    let dialog = w.callee_dialog();
    w.callee.send_in_dialog(w.now, &dialog, Method::Bye, Vec::new(), None).unwrap();
    w.flush();
    assert_eq!(w.byes().len(), 1);
    w.assert_all_freed();
}

#[test]
fn a_target_that_does_not_parse_fails_the_bridge_with_400() {
    // With on_failed: it runs with status 400.
    let mut w = World::new(ScriptedHost::new(&[
        ("request_route", vec![bridge_to("not a uri", Some("rms:failed"))]),
        ("rms:failed", vec![Action::Hangup { code: Some(404), reason: Some("Not Found".into()) }]),
    ]));
    w.invite(Some(OFFER));
    assert_eq!(w.host.views.last().unwrap().bridge_status, 400);
    assert_eq!(w.statuses(), vec![100, 404]);
    assert!(w.to_callee.is_empty());
    w.assert_all_freed();
    // Without: an unanswered A gets 500, an answered one a BYE.
    let mut w = World::new(ScriptedHost::new(&[("request_route", vec![bridge_to("sip:bob@example.com", None)])]));
    w.invite(Some(OFFER));
    assert_eq!(w.statuses(), vec![100, 500]);
    w.assert_all_freed();
    let mut w = World::new(ScriptedHost::new(&[
        ("request_route", vec![Action::Answer { route: "rms:start".into() }]),
        ("rms:start", vec![bridge_to("mailto:bob@192.0.2.3", None)]),
    ]));
    w.invite(Some(OFFER));
    assert_eq!(w.byes().len(), 1);
    assert_eq!(w.sessions.poll_ended().unwrap().reason, EndReason::BridgeFailed { status: 400 });
    w.assert_all_freed();
}

#[test]
fn reinvite_from_b_is_answered_locally_and_hold_stops_sending_to_b() {
    let mut w = World::new(bridging_host(&[]));
    w.invite(Some(OFFER));
    let dialog = w.callee_dialog();
    let hold = CALLEE_ANSWER.replace("o=- 7 1", "o=- 7 2") + "a=sendonly\r\n";
    w.callee.send_in_dialog(w.now, &dialog, Method::Invite, Vec::new(), Some(Body::sdp(hold))).unwrap();
    w.flush();
    let ok = w
        .callee_events
        .iter()
        .rev()
        .find_map(|e| match e {
            SipEvent::Response { response, .. } if response.status() == 200 => Some(response.clone()),
            _ => None,
        })
        .unwrap();
    let answer = String::from_utf8_lossy(ok.body()).to_string();
    assert!(answer.contains("a=recvonly"), "{answer}");
    let b_leg = w.bridges()[0].1;
    let update = w.media_cmds.iter().rev().find_map(|c| match c {
        MediaCmd::UpdateLeg { leg, media } if *leg == b_leg => Some(*media),
        _ => None,
    });
    assert_eq!(update.map(|m| m.send), Some(false), "no media to a holding B");
    assert!(w.to_caller.iter().filter(|m| m.method() == Some(&Method::Invite)).count() == 0, "A is not involved");
    // In-dialog INFO and OPTIONS from B: answered locally.
    for method in [Method::Info, Method::Options] {
        w.callee.send_in_dialog(w.now, &dialog, method, Vec::new(), None).unwrap();
        w.flush();
        let last = w.callee_events.iter().rev().find_map(|e| match e {
            SipEvent::Response { response, .. } => Some(response.status()),
            _ => None,
        });
        assert_eq!(last, Some(200), "{method}");
    }
    w.callee.send_in_dialog(w.now, &dialog, Method::Bye, Vec::new(), None).unwrap();
    w.flush();
    w.assert_all_freed();
}

#[test]
fn a_caller_offer_without_a_common_codec_gets_488_before_b_is_dialled() {
    let mut w = World::new(bridging_host(&[]));
    w.invite(Some(&OFFER.replace("RTP/AVP 0 8 101", "RTP/AVP 18").replace("a=rtpmap:101", "a=x:101")));
    assert_eq!(w.statuses(), vec![100, 488]);
    assert!(w.to_callee.is_empty(), "the callee is never rung");
    w.assert_all_freed();
}

/// RFC 6035: with a collector, each leg with media gets its own PUBLISH at the call's end, about its
/// own SIP dialog (the B-leg's Call-ID is not the A-leg's). Here the collector is the callee's address.
#[test]
fn each_leg_of_a_bridged_call_gets_its_own_quality_report() {
    let collector = format!("sip:collector@{CALLEE}");
    let mut w = World::with_collector(bridging_host(&[]), Some(&collector));
    w.invite(Some(OFFER));
    w.run_until(Duration::from_secs(1));
    let dialog = w.callee_dialog();
    w.callee.send_in_dialog(w.now, &dialog, Method::Bye, Vec::new(), None).unwrap();
    w.flush();
    let publishes: Vec<SipMessage> = w.callee_requests(Method::Publish).into_iter().cloned().collect();
    assert_eq!(publishes.len(), 2, "one report per leg");
    let call_ids: Vec<String> = publishes
        .iter()
        .map(|p| {
            assert_eq!(p.header("Event"), Some("vq-rtcpxr"));
            assert_eq!(p.header("Content-Type"), Some("application/vq-rtcpxr"));
            let body = std::str::from_utf8(p.body()).unwrap();
            assert!(body.starts_with("VQSessionReport: CallTerm\r\n"), "{body}");
            body.lines().find_map(|l| l.strip_prefix("CallID: ")).unwrap().to_string()
        })
        .collect();
    let a_call_id = w.sessions.poll_ended().unwrap().id;
    assert_eq!(call_ids[0], a_call_id, "the A-leg's report first, about the caller's dialog");
    assert_eq!(call_ids[1], dialog.call_id, "then the B-leg's, about rms's own dialog with the callee");
    // The collector answers; nothing is left.
    let txs: Vec<_> = w
        .callee_events
        .iter()
        .filter_map(|e| match e {
            SipEvent::Request { tx, request, .. } if *request.method() == Method::Publish => Some(*tx),
            _ => None,
        })
        .collect();
    for tx in txs {
        w.callee.respond(w.now, tx, Reply::new(200, "OK")).unwrap();
    }
    w.flush();
    w.assert_all_freed();
}
