//! Two endpoints joined by a simulated link, driven in virtual time (str0m's `tests/common.rs`
//! shape): call flows, CANCEL, dialogs, the 2xx/ACK rules, response routing.

use std::net::SocketAddr;
use std::time::Duration;

use super::*;

const A: &str = "192.0.2.1:5060";
const B: &str = "192.0.2.2:5060";
/// A record-routing proxy between them: the link hands what it gets to the other side.
const PROXY: &str = "192.0.2.9:5060";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Whether the link loses a datagram, by sender and content.
type DropFilter = Box<dyn FnMut(SocketAddr, &SipMessage) -> bool>;

/// Both peers, the clock, and a filter that can drop datagrams on the link.
struct Pair {
    a: Endpoint,
    b: Endpoint,
    now: Duration,
    a_events: Vec<SipEvent>,
    b_events: Vec<SipEvent>,
    /// Every datagram that crossed (or was dropped on) the link: (time, from, to, message).
    wire: Vec<(Duration, SocketAddr, SocketAddr, SipMessage)>,
    drop: DropFilter,
}

impl Pair {
    fn new() -> Self {
        Self {
            a: Endpoint::new(EndpointConfig::new(addr(A)), 1),
            b: Endpoint::new(EndpointConfig::new(addr(B)), 2),
            now: Duration::ZERO,
            a_events: Vec::new(),
            b_events: Vec::new(),
            wire: Vec::new(),
            drop: Box::new(|_, _| false),
        }
    }

    /// Deliver everything queued, in both directions, until quiet (instant link).
    fn flush(&mut self) {
        for _ in 0..1000 {
            let mut moved = false;
            while let Some(t) = self.a.poll_transmit() {
                moved = true;
                self.deliver(addr(A), t);
            }
            while let Some(t) = self.b.poll_transmit() {
                moved = true;
                self.deliver(addr(B), t);
            }
            while let Some(e) = self.a.poll_event() {
                self.a_events.push(e);
            }
            while let Some(e) = self.b.poll_event() {
                self.b_events.push(e);
            }
            if !moved {
                return;
            }
        }
        panic!("link never went quiet");
    }

    fn deliver(&mut self, from: SocketAddr, t: Transmit) {
        let msg = SipMessage::parse_datagram(&t.payload).expect("endpoints send parseable messages");
        self.wire.push((self.now, from, t.dest, msg.clone()));
        if (self.drop)(from, &msg) {
            return;
        }
        match t.dest {
            d if d == addr(A) => self.a.handle_datagram(self.now, from, &t.payload),
            d if d == addr(B) => self.b.handle_datagram(self.now, from, &t.payload),
            d if d == addr(PROXY) && from == addr(A) => self.b.handle_datagram(self.now, d, &t.payload),
            d if d == addr(PROXY) => self.a.handle_datagram(self.now, d, &t.payload),
            other => panic!("datagram to unknown address {other}"),
        }
    }

    /// Advance to the earliest deadline of either endpoint (bounded by `limit`).
    fn step(&mut self, limit: Duration) -> bool {
        let next = [self.a.poll_timeout(), self.b.poll_timeout()].into_iter().flatten().min();
        let Some(at) = next.filter(|&at| at <= limit) else { return false };
        self.now = self.now.max(at);
        self.a.handle_timeout(self.now);
        self.b.handle_timeout(self.now);
        self.flush();
        true
    }

    /// Run timers until both endpoints are idle; panics past `limit`.
    fn run_out(&mut self, limit: Duration) {
        while self.step(limit) {}
        assert_eq!(self.a.counts(), EndpointCounts::default(), "A left state behind");
        assert_eq!(self.b.counts(), EndpointCounts::default(), "B left state behind");
    }

    fn invite(&mut self, body: Option<Body>) -> ClientTxId {
        let out = OutgoingRequest {
            method: Method::Invite,
            uri: rsipstack::sip::parse_uri("sip:ivr@192.0.2.2:5060").unwrap(),
            from: "<sip:alice@192.0.2.1>".into(),
            to: "<sip:ivr@192.0.2.2>".into(),
            dest: addr(B),
            transport: Transport::Udp,
            headers: vec![("Record-Route".into(), "<sip:192.0.2.9:5060;lr>".into())],
            body,
        };
        let tx = self.a.send_request(self.now, out);
        self.flush();
        tx
    }

    /// B's pending request events.
    fn b_requests(&mut self) -> Vec<(ServerTxId, Request, Option<DialogId>)> {
        let mut out = Vec::new();
        self.b_events.retain(|e| match e {
            SipEvent::Request { tx, request, dialog, .. } => {
                out.push((*tx, request.clone(), dialog.clone()));
                false
            }
            _ => true,
        });
        out
    }

    fn a_final(&self) -> Option<(u16, Option<DialogId>)> {
        self.a_events.iter().rev().find_map(|e| match e {
            SipEvent::Response { response, dialog, .. } if response.status() >= 200 => {
                Some((response.status(), dialog.clone()))
            }
            _ => None,
        })
    }

    fn sent_by(&self, from: &str) -> Vec<&SipMessage> {
        self.wire.iter().filter(|(_, f, _, _)| *f == addr(from)).map(|(_, _, _, m)| m).collect()
    }

    /// Establish a call A → B: INVITE, 180, 200, ACK. Returns (A's dialog, B's dialog).
    fn call(&mut self) -> (DialogId, DialogId) {
        self.invite(Some(Body::sdp("v=0\r\n")));
        let (tx, _, _) = self.b_requests().pop().expect("INVITE reached B");
        self.b.respond(self.now, tx, Reply::new(180, "Ringing")).unwrap();
        let b_dialog = self.b.respond(self.now, tx, Reply::new(200, "OK").with_body(Body::sdp("v=0\r\n"))).unwrap();
        self.flush();
        let (status, a_dialog) = self.a_final().expect("A got a final");
        assert_eq!(status, 200);
        let a_dialog = a_dialog.expect("2xx creates A's dialog");
        self.a.ack(&a_dialog, 1, None).unwrap();
        self.flush();
        (a_dialog, b_dialog.expect("2xx creates B's dialog"))
    }
}

#[test]
fn invite_ringing_ok_ack_bye_leaves_nothing_behind() {
    let mut p = Pair::new();
    let (a_dialog, b_dialog) = p.call();
    assert!(p.b_events.iter().any(|e| matches!(e, SipEvent::Ack { dialog, .. } if *dialog == b_dialog)));
    assert_eq!(a_dialog.local_tag, b_dialog.remote_tag);
    assert_eq!(a_dialog.remote_tag, b_dialog.local_tag);
    // A got 100 (from the transaction), 180 and 200, each once.
    let statuses: Vec<u16> = p.sent_by(B).iter().filter_map(|m| m.status()).filter(|s| *s < 300).collect();
    assert_eq!(statuses, vec![100, 180, 200]);
    // 180 and 200 carry the same To tag; 200 has Contact, Record-Route and SDP.
    let responses: Vec<Response> = p
        .sent_by(B)
        .into_iter()
        .filter_map(|m| match m {
            SipMessage::Response(r) if r.status() > 100 => Some(r.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(responses[0].to().unwrap().tag, responses[1].to().unwrap().tag);
    assert_eq!(responses[1].header("Record-Route"), Some("<sip:192.0.2.9:5060;lr>"));
    assert!(responses[1].header("Contact").unwrap().contains("192.0.2.2:5060"));
    assert_eq!(responses[1].content_type(), Some("application/sdp"));

    p.b.send_in_dialog(p.now, &b_dialog, Method::Bye, Vec::new(), None).unwrap();
    p.flush();
    // §12.2.1.1: exactly one To tag, Request-URI = remote target (A's Contact), Route = route set.
    let bye = p.sent_by(B).into_iter().rev().find(|m| m.method() == Some(&Method::Bye)).unwrap().clone();
    let SipMessage::Request(bye) = bye else { unreachable!() };
    assert_eq!(bye.header("To").unwrap().matches("tag=").count(), 1, "one To tag");
    assert_eq!(bye.to().unwrap().tag.as_deref(), Some(a_dialog.local_tag.as_str()));
    assert_eq!(bye.uri().to_string(), "sip:rms@192.0.2.1:5060");
    assert_eq!(bye.header("Route"), Some("<sip:192.0.2.9:5060;lr>"));
    assert_eq!(bye.cseq().unwrap().seq, 1);
    assert!(p.a_events.iter().any(|e| matches!(e, SipEvent::DialogEnded { reason: DialogEnd::ByeReceived, .. })));
    assert!(p.b_events.iter().any(|e| matches!(e, SipEvent::DialogEnded { reason: DialogEnd::ByeSent, .. })));
    assert!(p.b_events.iter().any(|e| matches!(e, SipEvent::Response { response, .. } if response.status() == 200)));
    p.run_out(ms(40_000));
}

#[test]
fn cancel_before_answer_gets_200_and_487() {
    let mut p = Pair::new();
    let invite_tx = p.invite(None);
    let (tx, _, _) = p.b_requests().pop().unwrap();
    p.b.respond(p.now, tx, Reply::new(180, "Ringing")).unwrap();
    p.flush();
    p.a.cancel(p.now, invite_tx);
    p.flush();
    assert!(p.b_events.contains(&SipEvent::Cancelled { tx }));
    let b_statuses: Vec<(u16, Method)> = p
        .sent_by(B)
        .iter()
        .filter_map(|m| match m {
            SipMessage::Response(r) => Some((r.status(), r.cseq().unwrap().method)),
            _ => None,
        })
        .collect();
    assert!(b_statuses.contains(&(200, Method::Cancel)));
    assert!(b_statuses.contains(&(487, Method::Invite)));
    assert_eq!(p.a_final(), Some((487, None)));
    // The 487 was ACKed by A's transaction (same branch as the INVITE).
    assert!(p.sent_by(A).iter().any(|m| m.method() == Some(&Method::Ack)));
    // Answering after the CANCEL is refused: the transaction is done.
    assert!(p.b.respond(p.now, tx, Reply::new(200, "OK")).is_err());
    p.run_out(ms(40_000));
}

#[test]
fn cancel_before_provisional_waits_for_one() {
    let mut p = Pair::new();
    // Drop B's 100 Trying so A stays in Calling.
    p.drop = Box::new(|from, m| from == addr(B) && m.status() == Some(100));
    let invite_tx = p.invite(None);
    p.a.cancel(p.now, invite_tx);
    p.flush();
    assert!(!p.sent_by(A).iter().any(|m| m.method() == Some(&Method::Cancel)), "§9.1: no CANCEL before a 1xx");
    let (tx, _, _) = p.b_requests().pop().unwrap();
    p.b.respond(p.now, tx, Reply::new(180, "Ringing")).unwrap();
    p.flush();
    assert!(p.sent_by(A).iter().any(|m| m.method() == Some(&Method::Cancel)));
    assert_eq!(p.a_final(), Some((487, None)));
}

#[test]
fn cancel_without_matching_invite_gets_481_and_after_answer_200_only() {
    let mut p = Pair::new();
    let invite_tx = p.invite(None);
    let (tx, _, _) = p.b_requests().pop().unwrap();
    p.b.respond(p.now, tx, Reply::new(180, "Ringing")).unwrap();
    p.b.respond(p.now, tx, Reply::new(200, "OK")).unwrap();
    p.flush();
    p.a.cancel(p.now, invite_tx);
    p.flush();
    assert!(!p.b_events.iter().any(|e| matches!(e, SipEvent::Cancelled { .. })), "answered: CANCEL has no effect");
    // A stray CANCEL with an unknown branch.
    let stray = "CANCEL sip:ivr@192.0.2.2 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKnope\r\n\
Max-Forwards: 70\r\nTo: <sip:ivr@192.0.2.2>\r\nFrom: <sip:a@192.0.2.1>;tag=x\r\nCall-ID: stray\r\n\
CSeq: 1 CANCEL\r\nContent-Length: 0\r\n\r\n";
    p.b.handle_datagram(p.now, addr(A), stray.as_bytes());
    let t = p.b.poll_transmit().unwrap();
    let SipMessage::Response(r) = SipMessage::parse_datagram(&t.payload).unwrap() else { panic!() };
    assert_eq!(r.status(), 481);
}

#[test]
fn unacked_2xx_is_retransmitted_with_backoff_then_bye_after_64_t1() {
    let mut p = Pair::new();
    p.drop = Box::new(|from, m| from == addr(A) && m.method() == Some(&Method::Ack));
    let (_, b_dialog) = p.call();
    while p.step(ms(40_000)) {}
    let oks: Vec<Duration> = p
        .wire
        .iter()
        .filter(|(_, f, _, m)| *f == addr(B) && m.status() == Some(200) && m.cseq().unwrap().method == Method::Invite)
        .map(|(t, ..)| *t)
        .collect();
    // §13.3.1.4: T1 doubling to T2, until 64 × T1.
    let expected: Vec<Duration> =
        [0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500].iter().map(|&m| ms(m)).collect();
    assert_eq!(oks, expected);
    let bye_at: Vec<Duration> = p
        .wire
        .iter()
        .filter(|(_, f, _, m)| *f == addr(B) && m.method() == Some(&Method::Bye))
        .map(|(t, ..)| *t)
        .collect();
    assert_eq!(bye_at, vec![ms(32_000)]);
    assert!(p.b_events.contains(&SipEvent::DialogEnded { dialog: b_dialog, reason: DialogEnd::AckTimeout }));
    // A re-sent its ACK for every retransmitted 2xx without telling its application again.
    let a_oks = p.a_events.iter().filter(|e| matches!(e, SipEvent::Response { response, .. } if response.status() == 200 && response.cseq().unwrap().method == Method::Invite)).count();
    assert_eq!(a_oks, 1);
    assert_eq!(p.sent_by(A).iter().filter(|m| m.method() == Some(&Method::Ack)).count(), expected.len());
    p.run_out(ms(80_000));
}

#[test]
fn retransmitted_invite_is_absorbed() {
    let mut p = Pair::new();
    // A never hears the 100, so timer A fires at 500 ms: B's transaction repeats the 100 and
    // tells no one.
    p.drop = Box::new(|from, m| from == addr(B) && m.status() == Some(100));
    p.invite(None);
    assert_eq!(p.b_requests().len(), 1);
    p.step(ms(600));
    assert_eq!(p.sent_by(A).iter().filter(|m| m.method() == Some(&Method::Invite)).count(), 2);
    assert_eq!(p.b_requests().len(), 0);
    assert_eq!(p.sent_by(B).iter().filter(|m| m.status() == Some(100)).count(), 2);
}

/// §8.2.2.2: the same INVITE arriving again by another path (a forking proxy sent it twice, so the
/// top Via branch differs) is a merged request: the copy gets 482, the original goes on.
#[test]
fn a_merged_request_gets_482_and_the_original_goes_on() {
    let mut p = Pair::new();
    p.invite(Some(Body::sdp("v=0\r\n")));
    let (tx, invite, _) = p.b_requests().pop().expect("the INVITE reached B");
    let text = String::from_utf8(invite.to_bytes()).expect("text");
    let branch = invite.via_top().ok().and_then(|v| v.branch).expect("a branch");
    let copy = text.replacen(&branch, &format!("{branch}forked"), 1);
    p.b.handle_datagram(p.now, addr(PROXY), copy.as_bytes());
    let sent: Vec<_> = std::iter::from_fn(|| p.b.poll_transmit()).collect();
    let statuses: Vec<u16> =
        sent.iter().filter_map(|t| SipMessage::parse_datagram(&t.payload).ok().and_then(|m| m.status())).collect();
    assert_eq!(statuses, vec![100, 482], "the copy's own transaction: 100 Trying, then 482");
    assert!(p.b_requests().is_empty(), "the application never sees the copy");
    // A new request (CSeq 2, another transaction) with the same Call-ID is not a merge.
    let again = text.replacen(&branch, &format!("{branch}x"), 1).replacen("CSeq: 1 INVITE", "CSeq: 2 INVITE", 1);
    assert_ne!(again, text, "the CSeq line was rewritten");
    p.b.handle_datagram(p.now, addr(PROXY), again.as_bytes());
    while p.b.poll_transmit().is_some() {}
    while let Some(e) = p.b.poll_event() {
        p.b_events.push(e);
    }
    assert_eq!(p.b_requests().len(), 1);
    // The original is answered as usual, and nothing is left once the transactions end.
    p.b.respond(p.now, tx, Reply::new(486, "Busy Here")).unwrap();
    p.flush();
    assert_eq!(p.a_final().map(|(status, _)| status), Some(486));
    p.run_out(ms(300_000));
}

#[test]
fn requests_outside_dialogs() {
    let mut p = Pair::new();
    let options = OutgoingRequest {
        method: Method::Options,
        uri: rsipstack::sip::parse_uri("sip:192.0.2.2").unwrap(),
        from: "<sip:ping@192.0.2.1>".into(),
        to: "<sip:192.0.2.2>".into(),
        dest: addr(B),
        transport: Transport::Udp,
        headers: Vec::new(),
        body: None,
    };
    p.a.send_request(p.now, options.clone());
    p.flush();
    let ok = p.sent_by(B).last().cloned().cloned().unwrap();
    assert_eq!(ok.status(), Some(200));
    assert_eq!(ok.header("Allow"), Some(ALLOW));
    assert_eq!(ok.header("Accept"), Some(ACCEPT));
    assert!(ok.header("Supported").is_some());
    assert!(p.b_events.is_empty(), "OPTIONS is answered by the endpoint");
    // BYE for a dialog B does not have.
    let bye = "BYE sip:ivr@192.0.2.2 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKbye1\r\n\
Max-Forwards: 70\r\nTo: <sip:ivr@192.0.2.2>;tag=gone\r\nFrom: <sip:a@192.0.2.1>;tag=x\r\nCall-ID: nodialog\r\n\
CSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n";
    p.b.handle_datagram(p.now, addr(A), bye.as_bytes());
    p.flush();
    assert_eq!(p.sent_by(B).last().unwrap().status(), Some(481));
    // REGISTER: not ours.
    p.a.send_request(p.now, OutgoingRequest { method: Method::Register, ..options });
    p.flush();
    let resp = p.sent_by(B).last().cloned().cloned().unwrap();
    assert_eq!(resp.status(), Some(405));
    assert_eq!(resp.header("Allow"), Some(ALLOW));
}

#[test]
fn reinvite_is_a_new_offer_in_the_dialog() {
    let mut p = Pair::new();
    let (a_dialog, b_dialog) = p.call();
    p.b_events.clear();
    let hold = "v=0\r\na=sendonly\r\n";
    p.a.send_in_dialog(p.now, &a_dialog, Method::Invite, Vec::new(), Some(Body::sdp(hold))).unwrap();
    p.flush();
    let (tx, req, dialog) = p.b_requests().pop().expect("re-INVITE reaches B's application");
    assert_eq!(dialog.as_ref(), Some(&b_dialog));
    assert_eq!(req.body(), hold.as_bytes());
    assert_eq!(req.cseq().unwrap().seq, 2);
    let answered = p.b.respond(p.now, tx, Reply::new(200, "OK").with_body(Body::sdp("v=0\r\na=recvonly\r\n")));
    assert_eq!(answered, Ok(Some(b_dialog.clone())));
    p.flush();
    let (status, dialog) = p.a_final().unwrap();
    assert_eq!((status, dialog.as_ref()), (200, Some(&a_dialog)));
    p.a.ack(&a_dialog, 2, None).unwrap();
    p.flush();
    assert!(p.b_events.iter().any(|e| matches!(e, SipEvent::Ack { request, .. } if request.cseq().unwrap().seq == 2)));
    assert_eq!(p.b.dialog(&b_dialog).unwrap().remote_seq, Some(2));
}

#[test]
fn reinvite_glare_gets_491_on_both_sides() {
    let mut p = Pair::new();
    let (a_dialog, b_dialog) = p.call();
    p.b_events.clear();
    p.a_events.clear();
    // Both send a re-INVITE before either arrives.
    p.a.send_in_dialog(p.now, &a_dialog, Method::Invite, Vec::new(), None).unwrap();
    p.b.send_in_dialog(p.now, &b_dialog, Method::Invite, Vec::new(), None).unwrap();
    p.flush();
    assert_eq!(p.a_final().map(|f| f.0), Some(491));
    assert!(p.b_events.iter().any(|e| matches!(e, SipEvent::Response { response, .. } if response.status() == 491)));
    // After the 491 each may try again.
    assert!(p.a.send_in_dialog(p.now, &a_dialog, Method::Invite, Vec::new(), None).is_ok());
}

#[test]
fn cseq_going_backwards_in_a_dialog_gets_500() {
    let mut p = Pair::new();
    let (a_dialog, _) = p.call();
    p.a.send_in_dialog(p.now, &a_dialog, Method::Info, Vec::new(), None).unwrap();
    p.flush();
    let (tx, info, _) = p.b_requests().pop().unwrap();
    p.b.respond(p.now, tx, Reply::new(200, "OK")).unwrap();
    p.flush();
    let old = String::from_utf8(info.to_bytes())
        .unwrap()
        .replace("CSeq: 2 INFO", "CSeq: 1 INFO")
        .replace(&info.via_top().unwrap().branch.unwrap(), "z9hG4bKold");
    p.b.handle_datagram(p.now, addr(A), old.as_bytes());
    let t = p.b.poll_transmit().unwrap();
    assert_eq!(SipMessage::parse_datagram(&t.payload).unwrap().status(), Some(500));
}

#[test]
fn responses_follow_via_received_and_rport() {
    let mut ep = Endpoint::new(EndpointConfig::new(addr(B)), 3);
    let behind_nat = addr("198.51.100.7:40000");
    let options = |via: &str| {
        format!(
            "OPTIONS sip:192.0.2.2 SIP/2.0\r\nVia: {via}\r\nMax-Forwards: 70\r\nTo: <sip:192.0.2.2>\r\n\
From: <sip:a@10.0.0.1>;tag=x\r\nCall-ID: {via}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        )
    };
    // (Via, expected destination, expected Via in the response)
    let table = [
        // RFC 3581: rport → source address and port; received and rport filled in.
        (
            "SIP/2.0/UDP 10.0.0.1:5062;branch=z9hG4bK1;rport",
            behind_nat,
            "SIP/2.0/UDP 10.0.0.1:5062;branch=z9hG4bK1;rport=40000;received=198.51.100.7",
        ),
        // §18.2.2: sent-by differs from the source → received, port from sent-by.
        (
            "SIP/2.0/UDP 10.0.0.1:5062;branch=z9hG4bK2",
            addr("198.51.100.7:5062"),
            "SIP/2.0/UDP 10.0.0.1:5062;branch=z9hG4bK2;received=198.51.100.7",
        ),
        // sent-by is the source: sent-by, default port 5060.
        (
            "SIP/2.0/UDP 198.51.100.7;branch=z9hG4bK3",
            addr("198.51.100.7:5060"),
            "SIP/2.0/UDP 198.51.100.7;branch=z9hG4bK3",
        ),
    ];
    for (via, dest, echoed) in table {
        ep.handle_datagram(ms(0), behind_nat, options(via).as_bytes());
        let t = ep.poll_transmit().expect("200 to OPTIONS");
        assert_eq!(t.dest, dest, "{via}");
        let resp = SipMessage::parse_datagram(&t.payload).unwrap();
        assert_eq!(resp.header("Via"), Some(echoed));
    }
    // TCP: the same connection, whatever the Via says.
    let msg = SipMessage::parse_datagram(options("SIP/2.0/TCP 10.0.0.1:5062;branch=z9hG4bK4").as_bytes()).unwrap();
    ep.handle_message(ms(0), behind_nat, Transport::Tcp, msg);
    let t = ep.poll_transmit().unwrap();
    assert_eq!((t.transport, t.dest), (Transport::Tcp, behind_nat));
}

#[test]
fn unreadable_requests_get_400_and_responses_are_dropped() {
    let mut ep = Endpoint::new(EndpointConfig::new(addr(B)), 4);
    let bad_cl = "INVITE sip:ivr@192.0.2.2 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKbad\r\n\
Max-Forwards: 70\r\nTo: <sip:ivr@192.0.2.2>\r\nFrom: <sip:a@192.0.2.1>;tag=x\r\nCall-ID: bad\r\n\
CSeq: 1 INVITE\r\nContent-Length: 999\r\n\r\nv=0\r\n";
    ep.handle_datagram(ms(0), addr(A), bad_cl.as_bytes());
    let t = ep.poll_transmit().expect("a 400");
    let resp = SipMessage::parse_datagram(&t.payload).unwrap();
    assert_eq!(resp.status(), Some(400));
    assert_eq!(resp.call_id().unwrap(), "bad");
    assert!(ep.poll_event().is_none());
    for junk in [&b"SIP/2.0 200 OK\r\nVia: x\r\n\r\n"[..], b"\r\n\r\n", b"\x00\xff garbage", b"INVITE\r\n\r\n"] {
        ep.handle_datagram(ms(0), addr(A), junk);
        assert_eq!(ep.poll_transmit(), None, "{junk:?}");
    }
    assert_eq!(ep.counts(), EndpointCounts::default());
}

#[test]
fn uas_checks_scheme_require_and_content_type() {
    let mut ep = Endpoint::new(EndpointConfig::new(addr(B)), 5);
    let invite = |uri: &str, extra: &str, ct: &str| {
        format!(
            "INVITE {uri} SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK{}\r\nMax-Forwards: 70\r\n\
To: <sip:ivr@192.0.2.2>\r\nFrom: <sip:a@192.0.2.1>;tag=x\r\nCall-ID: {}\r\nCSeq: 1 INVITE\r\n\
Contact: <sip:a@192.0.2.1>\r\n{extra}Content-Type: {ct}\r\nContent-Length: 4\r\n\r\nv=0\n",
            uri.len() + extra.len() + ct.len(),
            uri.len() * 7 + extra.len() + ct.len()
        )
    };
    let table = [
        (invite("im:ivr@192.0.2.2", "", "application/sdp"), 416),
        (invite("sip:ivr@192.0.2.2", "Require: 100rel\r\n", "application/sdp"), 420),
        (invite("sip:ivr@192.0.2.2", "", "text/plain"), 415),
    ];
    for (msg, status) in table {
        ep.handle_datagram(ms(0), addr(A), msg.as_bytes());
        let mut statuses = Vec::new();
        while let Some(t) = ep.poll_transmit() {
            statuses.push(SipMessage::parse_datagram(&t.payload).unwrap().status().unwrap());
        }
        assert_eq!(statuses, vec![100, status]);
        assert!(ep.poll_event().is_none());
    }
}

#[test]
fn an_invite_left_unanswered_gets_487_at_expires_or_the_answer_timeout() {
    for (expires, give_up) in [(None, 180_000), (Some(30), 30_000), (Some(600), 180_000)] {
        let mut ep = Endpoint::new(EndpointConfig::new(addr(B)), 6);
        let expires = expires.map_or(String::new(), |e| format!("Expires: {e}\r\n"));
        let invite = format!(
            "INVITE sip:ivr@192.0.2.2 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKslow\r\n\
Max-Forwards: 70\r\nTo: <sip:ivr@192.0.2.2>\r\nFrom: <sip:a@192.0.2.1>;tag=x\r\nCall-ID: slow\r\n\
CSeq: 1 INVITE\r\nContact: <sip:a@192.0.2.1>\r\n{expires}Content-Length: 0\r\n\r\n"
        );
        ep.handle_datagram(ms(0), addr(A), invite.as_bytes());
        let Some(SipEvent::Request { tx, .. }) = ep.poll_event() else { panic!("INVITE event") };
        ep.respond(ms(0), tx, Reply::new(180, "Ringing")).unwrap();
        while ep.poll_transmit().is_some() {}
        assert_eq!(ep.poll_timeout(), Some(ms(give_up)));
        ep.handle_timeout(ms(give_up));
        let t = ep.poll_transmit().expect("487");
        assert_eq!(SipMessage::parse_datagram(&t.payload).unwrap().status(), Some(487));
        assert_eq!(ep.poll_event(), Some(SipEvent::Cancelled { tx }));
    }
}

#[test]
fn uas_requests_over_tcp_reuse_the_callers_connection() {
    let mut ep = Endpoint::new(EndpointConfig::new(addr(B)), 8);
    let caller = addr("198.51.100.7:40000");
    let invite = "INVITE sip:ivr@192.0.2.2 SIP/2.0\r\nVia: SIP/2.0/TCP 198.51.100.7:5070;branch=z9hG4bKtcp\r\n\
Max-Forwards: 70\r\nTo: <sip:ivr@192.0.2.2>\r\nFrom: <sip:a@198.51.100.7>;tag=x\r\nCall-ID: tcp\r\n\
CSeq: 1 INVITE\r\nContact: <sip:a@198.51.100.7:5070;transport=tcp>\r\nContent-Length: 0\r\n\r\n";
    ep.handle_message(ms(0), caller, Transport::Tcp, SipMessage::parse_datagram(invite.as_bytes()).unwrap());
    let Some(SipEvent::Request { tx, .. }) = ep.poll_event() else { panic!("INVITE event") };
    let dialog = ep.respond(ms(0), tx, Reply::new(200, "OK")).unwrap().unwrap();
    while ep.poll_transmit().is_some() {}
    let ack = invite
        .replace("INVITE sip:ivr@192.0.2.2", "ACK sip:rms@192.0.2.2:5060")
        .replace("z9hG4bKtcp", "z9hG4bKtcpack")
        .replace("To: <sip:ivr@192.0.2.2>", &format!("To: <sip:ivr@192.0.2.2>;tag={}", dialog.local_tag))
        .replace("CSeq: 1 INVITE", "CSeq: 1 ACK");
    ep.handle_message(ms(5), caller, Transport::Tcp, SipMessage::parse_datagram(ack.as_bytes()).unwrap());
    ep.send_in_dialog(ms(10), &dialog, Method::Bye, Vec::new(), None).unwrap();
    let bye = ep.poll_transmit().unwrap();
    assert_eq!((bye.transport, bye.dest), (Transport::Tcp, caller), "not a new connection to the Contact");
}

#[test]
fn invite_without_contact_gets_400() {
    let mut ep = Endpoint::new(EndpointConfig::new(addr(B)), 10);
    let invite = "INVITE sip:ivr@192.0.2.2 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKnoc\r\n\
Max-Forwards: 70\r\nTo: <sip:ivr@192.0.2.2>\r\nFrom: <sip:a@192.0.2.1>;tag=x\r\nCall-ID: noc\r\n\
CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
    ep.handle_datagram(ms(0), addr(A), invite.as_bytes());
    let statuses: Vec<u16> = std::iter::from_fn(|| ep.poll_transmit())
        .map(|t| SipMessage::parse_datagram(&t.payload).unwrap().status().unwrap())
        .collect();
    assert_eq!(statuses, vec![100, 400]);
    assert_eq!(ep.poll_event(), None);
}

#[test]
fn a_bye_asked_for_before_the_ack_waits_for_it() {
    // §15: the callee may not send BYE before the ACK; the application is told at once.
    for ack_arrives in [true, false] {
        let mut p = Pair::new();
        if !ack_arrives {
            p.drop = Box::new(|from, m| from == addr(A) && m.method() == Some(&Method::Ack));
        }
        p.invite(None);
        let (tx, _, _) = p.b_requests().pop().unwrap();
        let b_dialog = p.b.respond(p.now, tx, Reply::new(200, "OK")).unwrap().unwrap();
        p.b.send_in_dialog(p.now, &b_dialog, Method::Bye, Vec::new(), None).unwrap();
        assert!(p
            .b
            .poll_event()
            .is_some_and(|e| e == SipEvent::DialogEnded { dialog: b_dialog.clone(), reason: DialogEnd::ByeSent }));
        p.flush();
        if ack_arrives {
            let (_, a_dialog) = p.a_final().unwrap();
            p.a.ack(&a_dialog.unwrap(), 1, None).unwrap();
            p.flush();
            assert_eq!(
                p.sent_by(B).iter().filter(|m| m.method() == Some(&Method::Bye)).count(),
                1,
                "BYE after the ACK"
            );
        } else {
            assert!(!p.sent_by(B).iter().any(|m| m.method() == Some(&Method::Bye)), "no BYE before the ACK");
            while p.step(ms(33_000)) {}
            let byes: Vec<Duration> = p
                .wire
                .iter()
                .filter(|(_, f, _, m)| *f == addr(B) && m.method() == Some(&Method::Bye))
                .map(|(t, ..)| *t)
                .collect();
            assert_eq!(byes, vec![ms(32_000)], "BYE when the 2xx retransmissions give up");
        }
        let ended = p.b_events.iter().filter(|e| matches!(e, SipEvent::DialogEnded { .. })).count();
        assert_eq!(ended, 0, "DialogEnded was reported once, when asked (drained above)");
        p.run_out(ms(80_000));
    }
}

mod robustness {
    use super::*;
    use proptest::prelude::*;

    /// Messages built from small pools of branches, tags and Call-IDs, so that random sequences
    /// hit existing transactions and dialogs (retransmissions, CANCELs, ACKs, in-dialog BYEs).
    fn message(kind: u8, branch: u8, call: u8, tag: u8, cseq: u8) -> String {
        let call_id = format!("call{}", call % 3);
        let branch = format!("z9hG4bK{}", branch % 4);
        let to_tag = if tag.is_multiple_of(3) { String::new() } else { format!(";tag={}", tag % 3) };
        let cseq = u32::from(cseq % 4) + 1;
        let (start, method) = match kind % 9 {
            0 => ("INVITE sip:ivr@192.0.2.2 SIP/2.0".to_string(), "INVITE"),
            1 => ("ACK sip:ivr@192.0.2.2 SIP/2.0".to_string(), "ACK"),
            2 => ("BYE sip:ivr@192.0.2.2 SIP/2.0".to_string(), "BYE"),
            3 => ("CANCEL sip:ivr@192.0.2.2 SIP/2.0".to_string(), "CANCEL"),
            4 => ("OPTIONS sip:ivr@192.0.2.2 SIP/2.0".to_string(), "OPTIONS"),
            5 => ("INFO sip:ivr@192.0.2.2 SIP/2.0".to_string(), "INFO"),
            6 => ("SIP/2.0 180 Ringing".to_string(), "INVITE"),
            7 => ("SIP/2.0 200 OK".to_string(), "INVITE"),
            _ => ("SIP/2.0 487 Request Terminated".to_string(), "INVITE"),
        };
        format!(
            "{start}\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch={branch};rport\r\nMax-Forwards: 70\r\n\
To: <sip:ivr@192.0.2.2>{to_tag}\r\nFrom: <sip:a@192.0.2.1>;tag=a\r\nCall-ID: {call_id}\r\n\
CSeq: {cseq} {method}\r\nContact: <sip:a@192.0.2.1>\r\nContent-Type: application/sdp\r\n\
Content-Length: 4\r\n\r\nv=0\n"
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

        /// Random sequences of plausible and mangled messages, with the application answering
        /// some requests and time passing: no panic, and once the timers have run out no
        /// transaction or timer is left (dialogs may stay: a confirmed dialog lives until BYE).
        #[test]
        fn random_traffic_never_panics_and_leaves_no_transactions(
            steps in proptest::collection::vec(
                (any::<[u8; 5]>(), any::<u16>(), proptest::option::of((any::<usize>(), any::<u8>())), any::<u8>()),
                1..40,
            )
        ) {
            let mut ep = Endpoint::new(EndpointConfig::new(addr(B)), 9);
            let mut now = Duration::ZERO;
            let mut pending: Vec<ServerTxId> = Vec::new();
            for ([kind, branch, call, tag, cseq], advance_ms, mangle, answer) in steps {
                let mut bytes = message(kind, branch, call, tag, cseq).into_bytes();
                if let Some((at, byte)) = mangle {
                    let at = at % bytes.len();
                    bytes[at] = byte;
                }
                ep.handle_datagram(now, addr(A), &bytes);
                while let Some(e) = ep.poll_event() {
                    if let SipEvent::Request { tx, .. } = e {
                        pending.push(tx);
                    }
                }
                if let Some(tx) = pending.pop() {
                    let status = [180, 200, 486, 500][usize::from(answer % 4)];
                    let _ = ep.respond(now, tx, Reply::new(status, "Test"));
                }
                now += Duration::from_millis(u64::from(advance_ms % 5000));
                ep.handle_timeout(now);
                while ep.poll_transmit().is_some() {}
            }
            for _ in 0..10_000 {
                let Some(at) = ep.poll_timeout() else { break };
                ep.handle_timeout(at);
                while ep.poll_transmit().is_some() {}
                while ep.poll_event().is_some() {}
            }
            let counts = ep.counts();
            prop_assert_eq!(counts.server_transactions, 0);
            prop_assert_eq!(counts.client_transactions, 0);
            prop_assert_eq!(counts.timers, 0);
            prop_assert_eq!(counts.merge_keys, 0);
        }
    }
}

#[test]
fn a_tcp_connect_failure_fails_the_requests_waiting_on_it_as_503() {
    let mut ep = Endpoint::new(EndpointConfig::new(addr(A)), 1);
    let dead = addr("192.0.2.9:5060");
    let invite = |transport, dest| OutgoingRequest {
        method: Method::Invite,
        uri: rsipstack::sip::parse_uri("sip:bob@192.0.2.9;transport=tcp").unwrap(),
        from: "<sip:rms@192.0.2.1>".into(),
        to: "<sip:bob@192.0.2.9>".into(),
        dest,
        transport,
        headers: Vec::new(),
        body: None,
    };
    let tx = ep.send_request(ms(0), invite(Transport::Tcp, dead));
    // Another request to the same address over UDP, and one over TCP elsewhere, are not affected.
    let udp = ep.send_request(ms(0), invite(Transport::Udp, dead));
    let elsewhere = ep.send_request(ms(0), invite(Transport::Tcp, addr(B)));
    while ep.poll_transmit().is_some() {}
    ep.transport_failed(Transport::Tcp, dead);
    let events: Vec<SipEvent> = std::iter::from_fn(|| ep.poll_event()).collect();
    assert_eq!(events, vec![SipEvent::TransportFailed { tx }]);
    assert_eq!(ep.counts().client_transactions, 2, "{udp:?} and {elsewhere:?} go on");
    // Only once: the failed transaction is gone.
    ep.transport_failed(Transport::Tcp, dead);
    assert!(ep.poll_event().is_none());
}
