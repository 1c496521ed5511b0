//! Virtual-time table tests for every transaction state and timer (RFC 3261 §17, RFC 6026).

use std::time::Duration;

use super::*;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn request(method: &str) -> Request {
    let text = format!(
        "{method} sip:bob@192.0.2.2 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKtx1\r\n\
Max-Forwards: 70\r\nTo: <sip:bob@192.0.2.2>\r\nFrom: <sip:alice@192.0.2.1>;tag=a1\r\n\
Call-ID: tx-test\r\nCSeq: 7 {method}\r\nContact: <sip:alice@192.0.2.1>\r\nRoute: <sip:p1.example.com;lr>\r\n\
Content-Length: 0\r\n\r\n"
    );
    match SipMessage::parse_datagram(text.as_bytes()) {
        Ok(SipMessage::Request(r)) => r,
        other => panic!("bad test request: {other:?}"),
    }
}

fn response(req: &Request, status: u16) -> Response {
    Response::for_request(req, status, "Test", (status > 100).then_some("b1"))
}

/// Drive a transaction's timers from `start` until it terminates or `limit` passes, recording
/// the time of every transmit. Bounded: a transaction that never ends fails at `limit`.
macro_rules! run_timers {
    ($tx:expr, $start:expr, $limit:expr) => {{
        let mut sent = Vec::new();
        let mut now = $start;
        while let Some(p) = $tx.poll_transmit() {
            let _ = p;
            sent.push(now);
        }
        while !$tx.is_terminated() {
            let Some(at) = $tx.poll_timeout() else { break };
            assert!(at <= $limit, "transaction still running at {at:?}");
            now = at;
            $tx.handle_timeout(now);
            while $tx.poll_transmit().is_some() {
                sent.push(now);
            }
        }
        (sent, now)
    }};
}

fn secs(list: &[u64]) -> Vec<Duration> {
    list.iter().map(|&m| ms(m)).collect()
}

#[test]
fn client_retransmission_schedules() {
    // (method, reliable, transmit times in ms, end time in ms, timed out)
    let table: &[(&str, bool, &[u64], u64)] = &[
        // Timer A doubles from T1 without cap; timer B ends it at 64 × T1.
        ("INVITE", false, &[0, 500, 1500, 3500, 7500, 15500, 31500], 32000),
        ("INVITE", true, &[0], 32000),
        // Timer E doubles up to T2 (4 s); timer F at 64 × T1.
        ("OPTIONS", false, &[0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500], 32000),
        ("BYE", true, &[0], 32000),
    ];
    for &(method, reliable, expected, end) in table {
        let mut tx = ClientTransaction::new(ms(0), request(method), reliable, TimerConfig::default());
        let (sent, now) = run_timers!(tx, ms(0), ms(end));
        assert_eq!(sent, secs(expected), "{method} reliable={reliable}");
        assert_eq!(now, ms(end));
        assert_eq!(tx.poll_event(), Some(ClientEvent::Timeout), "{method}: timer B/F reports a timeout");
        assert!(tx.is_terminated());
    }
}

#[test]
fn timers_follow_configured_t1_t2() {
    let config = TimerConfig { t1: ms(100), t2: ms(400), t4: ms(1000) };
    let mut tx = ClientTransaction::new(ms(0), request("INFO"), false, config);
    let (sent, now) = run_timers!(tx, ms(0), ms(6400));
    assert_eq!(
        sent,
        secs(&[0, 100, 300, 700, 1100, 1500, 1900, 2300, 2700, 3100, 3500, 3900, 4300, 4700, 5100, 5500, 5900, 6300])
    );
    assert_eq!(now, ms(6400));
}

#[test]
fn invite_client_provisional_stops_retransmission_and_timer_b() {
    let mut tx = ClientTransaction::new(ms(0), request("INVITE"), false, TimerConfig::default());
    tx.poll_transmit();
    tx.handle_timeout(ms(500));
    assert!(tx.poll_transmit().is_some(), "timer A retransmits at T1");
    let req = tx.request().clone();
    tx.handle_response(ms(700), response(&req, 180));
    assert_eq!(tx.state(), ClientState::Proceeding);
    assert!(matches!(tx.poll_event(), Some(ClientEvent::Response(r)) if r.status() == 180));
    assert_eq!(tx.poll_timeout(), None, "Proceeding runs no timer: the user decides when to give up");
    tx.handle_timeout(ms(60_000));
    assert_eq!(tx.poll_transmit(), None);
    assert_eq!(tx.state(), ClientState::Proceeding);
}

#[test]
fn invite_client_2xx_accepted_passes_retransmissions_until_timer_m() {
    let mut tx = ClientTransaction::new(ms(0), request("INVITE"), false, TimerConfig::default());
    tx.poll_transmit();
    let req = tx.request().clone();
    tx.handle_response(ms(100), response(&req, 200));
    assert_eq!(tx.state(), ClientState::Accepted);
    assert!(matches!(tx.poll_event(), Some(ClientEvent::Response(r)) if r.status() == 200));
    assert_eq!(tx.poll_transmit(), None, "the ACK for a 2xx is the user's, not the transaction's");
    tx.handle_response(ms(600), response(&req, 200));
    assert!(matches!(tx.poll_event(), Some(ClientEvent::Response(r)) if r.status() == 200), "RFC 6026 §8.4");
    tx.handle_response(ms(700), response(&req, 486));
    assert_eq!(tx.poll_event(), None, "a non-2xx in Accepted is dropped");
    assert_eq!(tx.poll_timeout(), Some(ms(100 + 32_000)), "timer M = 64 × T1");
    tx.handle_timeout(ms(32_100));
    assert!(tx.is_terminated());
}

#[test]
fn invite_client_non_2xx_final_builds_ack_and_absorbs_retransmissions() {
    for (reliable, d_ends) in [(false, 100 + 32_000), (true, 100)] {
        let mut tx = ClientTransaction::new(ms(0), request("INVITE"), reliable, TimerConfig::default());
        tx.poll_transmit();
        let req = tx.request().clone();
        tx.handle_response(ms(100), response(&req, 486));
        assert!(matches!(tx.poll_event(), Some(ClientEvent::Response(r)) if r.status() == 486));
        if reliable {
            // Timer D is zero on TCP.
            assert!(tx.is_terminated());
            continue;
        }
        assert_eq!(tx.state(), ClientState::Completed);
        let ack = tx.poll_transmit().expect("ACK sent");
        let SipMessage::Request(ack) = SipMessage::parse_datagram(&ack).unwrap() else { panic!("ACK is a request") };
        // §17.1.1.3: same Request-URI, top Via (branch), From, Call-ID, CSeq number, Route;
        // the To of the response (with its tag).
        assert_eq!(ack.method(), &Method::Ack);
        assert_eq!(ack.uri(), req.uri());
        assert_eq!(ack.via_top().unwrap().branch.as_deref(), Some("z9hG4bKtx1"));
        assert_eq!(ack.to().unwrap().tag.as_deref(), Some("b1"));
        assert_eq!(ack.cseq().unwrap(), CSeq { seq: 7, method: Method::Ack });
        assert_eq!(ack.header("Route"), Some("<sip:p1.example.com;lr>"));
        assert_eq!(ack.from().unwrap().tag.as_deref(), Some("a1"));
        tx.handle_response(ms(2000), response(&req, 486));
        assert_eq!(tx.poll_event(), None, "retransmitted final absorbed");
        assert!(tx.poll_transmit().is_some(), "and answered with the ACK again");
        assert_eq!(tx.poll_timeout(), Some(ms(d_ends)), "timer D ≥ 32 s");
        tx.handle_timeout(ms(d_ends));
        assert!(tx.is_terminated());
    }
}

#[test]
fn non_invite_client_proceeding_retransmits_every_t2() {
    let mut tx = ClientTransaction::new(ms(0), request("BYE"), false, TimerConfig::default());
    tx.poll_transmit();
    let req = tx.request().clone();
    tx.handle_response(ms(200), response(&req, 100));
    assert_eq!(tx.state(), ClientState::Proceeding);
    let (sent, _) = run_timers!(tx, ms(200), ms(32_000));
    // E still fires at 500 (set before), then every T2.
    assert_eq!(sent, secs(&[500, 4500, 8500, 12500, 16500, 20500, 24500, 28500]));
    assert!(matches!(tx.poll_event(), Some(ClientEvent::Response(r)) if r.status() == 100));
    assert_eq!(tx.poll_event(), Some(ClientEvent::Timeout));
}

#[test]
fn non_invite_client_final_then_timer_k() {
    for (reliable, k) in [(false, 5000 + 300), (true, 300)] {
        let mut tx = ClientTransaction::new(ms(0), request("OPTIONS"), reliable, TimerConfig::default());
        tx.poll_transmit();
        let req = tx.request().clone();
        tx.handle_response(ms(300), response(&req, 200));
        assert!(matches!(tx.poll_event(), Some(ClientEvent::Response(r)) if r.status() == 200));
        if reliable {
            assert!(tx.is_terminated(), "timer K is zero on TCP");
            continue;
        }
        assert_eq!(tx.state(), ClientState::Completed);
        tx.handle_response(ms(900), response(&req, 200));
        assert_eq!(tx.poll_event(), None, "retransmitted final absorbed");
        assert_eq!(tx.poll_transmit(), None);
        assert_eq!(tx.poll_timeout(), Some(ms(k)), "timer K = T4");
        tx.handle_timeout(ms(k));
        assert!(tx.is_terminated());
    }
}

#[test]
fn client_transport_error_reports_timeout() {
    let mut tx = ClientTransaction::new(ms(0), request("INVITE"), false, TimerConfig::default());
    tx.transport_error();
    assert_eq!(tx.poll_event(), Some(ClientEvent::Timeout));
    assert!(tx.is_terminated());
}

#[test]
fn invite_server_sends_100_at_once_and_repeats_last_provisional() {
    let req = request("INVITE");
    let mut tx = ServerTransaction::new(ms(0), &req, false, TimerConfig::default());
    let trying = tx.poll_transmit().expect("100 Trying at once");
    let SipMessage::Response(trying) = SipMessage::parse_datagram(&trying).unwrap() else { panic!() };
    assert_eq!(trying.status(), 100);
    assert_eq!(trying.to().unwrap().tag, None, "100 Trying carries no To tag");
    assert_eq!(tx.handle_request(ms(500), &Method::Invite), Absorbed::Yes);
    assert_eq!(tx.poll_transmit(), Some(trying.to_bytes()), "retransmitted INVITE gets the 100 again");
    tx.respond(ms(600), &response(&req, 180)).unwrap();
    let ringing = tx.poll_transmit().unwrap();
    tx.handle_request(ms(1000), &Method::Invite);
    assert_eq!(tx.poll_transmit(), Some(ringing));
    assert_eq!(tx.state(), ServerState::Proceeding);
    assert_eq!(tx.poll_timeout(), None);
}

#[test]
fn invite_server_non_2xx_retransmits_with_timer_g_until_timer_h() {
    let req = request("INVITE");
    let mut tx = ServerTransaction::new(ms(0), &req, false, TimerConfig::default());
    tx.poll_transmit();
    tx.respond(ms(0), &response(&req, 486)).unwrap();
    assert_eq!(tx.state(), ServerState::Completed);
    let (sent, now) = run_timers!(tx, ms(0), ms(32_000));
    // G: T1 doubling to T2; H at 64 × T1.
    assert_eq!(sent, secs(&[0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]));
    assert_eq!(now, ms(32_000));
    assert_eq!(tx.poll_event(), Some(ServerEvent::AckTimeout));
}

#[test]
fn invite_server_ack_confirms_then_timer_i() {
    for (reliable, i_at) in [(false, 2000 + 5000), (true, 2000)] {
        let req = request("INVITE");
        let mut tx = ServerTransaction::new(ms(0), &req, reliable, TimerConfig::default());
        tx.poll_transmit();
        tx.respond(ms(100), &response(&req, 603)).unwrap();
        tx.poll_transmit();
        tx.handle_request(ms(1000), &Method::Invite);
        assert!(tx.poll_transmit().is_some(), "retransmitted INVITE in Completed gets the final again");
        while tx.poll_transmit().is_some() {}
        assert_eq!(tx.handle_request(ms(2000), &Method::Ack), Absorbed::Yes);
        if reliable {
            assert!(tx.is_terminated(), "timer I is zero on TCP");
            continue;
        }
        assert_eq!(tx.state(), ServerState::Confirmed);
        assert_eq!(tx.poll_timeout(), Some(ms(i_at)), "timer I = T4, G and H stopped");
        assert_eq!(tx.handle_request(ms(2500), &Method::Ack), Absorbed::Yes);
        assert_eq!(tx.poll_transmit(), None, "ACK retransmissions absorbed");
        tx.handle_timeout(ms(i_at));
        assert!(tx.is_terminated());
        assert_eq!(tx.poll_event(), None);
    }
}

#[test]
fn invite_server_2xx_accepted_absorbs_invites_until_timer_l() {
    let req = request("INVITE");
    let mut tx = ServerTransaction::new(ms(0), &req, false, TimerConfig::default());
    tx.poll_transmit();
    tx.respond(ms(100), &response(&req, 200)).unwrap();
    assert_eq!(tx.state(), ServerState::Accepted);
    assert!(tx.poll_transmit().is_some());
    assert_eq!(tx.handle_request(ms(500), &Method::Invite), Absorbed::Yes);
    assert_eq!(tx.poll_transmit(), None, "RFC 6026 §7.1: retransmitted INVITE absorbed, no response");
    tx.respond(ms(600), &response(&req, 200)).unwrap();
    assert!(tx.poll_transmit().is_some(), "the user's 2xx retransmissions pass through");
    assert_eq!(tx.handle_request(ms(700), &Method::Ack), Absorbed::PassToUser);
    assert!(tx.respond(ms(800), &response(&req, 180)).is_err(), "no provisional after a final");
    assert_eq!(tx.poll_timeout(), Some(ms(32_100)), "timer L = 64 × T1");
    tx.handle_timeout(ms(32_100));
    assert!(tx.is_terminated());
}

#[test]
fn non_invite_server_states_and_timer_j() {
    for (reliable, j_at) in [(false, 300 + 32_000), (true, 300)] {
        let req = request("BYE");
        let mut tx = ServerTransaction::new(ms(0), &req, reliable, TimerConfig::default());
        assert_eq!(tx.poll_transmit(), None, "no 100 Trying for non-INVITE");
        assert_eq!(tx.state(), ServerState::Trying);
        tx.handle_request(ms(100), &Method::Bye);
        assert_eq!(tx.poll_transmit(), None, "retransmission in Trying absorbed silently");
        tx.respond(ms(200), &response(&req, 100)).unwrap();
        assert_eq!(tx.state(), ServerState::Proceeding);
        let provisional = tx.poll_transmit().unwrap();
        tx.handle_request(ms(250), &Method::Bye);
        assert_eq!(tx.poll_transmit(), Some(provisional));
        tx.respond(ms(300), &response(&req, 200)).unwrap();
        let ok = tx.poll_transmit().unwrap();
        if reliable {
            assert!(tx.is_terminated(), "timer J is zero on TCP");
            continue;
        }
        assert_eq!(tx.state(), ServerState::Completed);
        tx.handle_request(ms(1000), &Method::Bye);
        assert_eq!(tx.poll_transmit(), Some(ok), "retransmission in Completed gets the final again");
        assert!(tx.respond(ms(1100), &response(&req, 500)).is_err(), "one final only");
        assert_eq!(tx.poll_timeout(), Some(ms(j_at)), "timer J = 64 × T1");
        tx.handle_timeout(ms(j_at));
        assert!(tx.is_terminated());
    }
}
