use super::*;
use proptest::prelude::*;

const INVITE: &str = "INVITE sip:bob@example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP pc33.example.com:5060;branch=z9hG4bK776asdhds;rport\r\n\
Via: SIP/2.0/UDP proxy.example.com;branch=z9hG4bK1;received=192.0.2.9\r\n\
Max-Forwards: 70\r\n\
To: Bob <sip:bob@example.com>\r\n\
From: \"Alice\" <sip:alice@example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.example.com\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:alice@pc33.example.com>\r\n\
Record-Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 36\r\n\r\n\
v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\n";

fn simple(method: &str) -> String {
    format!(
        "{method} sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP h.example.com;branch=z9hG4bKx\r\n\
Max-Forwards: 70\r\nTo: <sip:bob@example.com>;tag=b\r\nFrom: <sip:alice@example.com>;tag=a\r\n\
Call-ID: c1\r\nCSeq: 2 {method}\r\nContent-Length: 0\r\n\r\n"
    )
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/fixtures/sip/{name}.sip", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

#[test]
fn invite_parses_and_round_trips() {
    let msg = SipMessage::parse_datagram(INVITE.as_bytes()).unwrap();
    let SipMessage::Request(req) = &msg else { panic!("request expected") };
    assert_eq!(req.method(), &Method::Invite);
    let via = req.via_top().unwrap();
    assert_eq!(via.branch.as_deref(), Some("z9hG4bK776asdhds"));
    assert_eq!((via.host.as_str(), via.port), ("pc33.example.com", Some(5060)));
    assert_eq!(via.rport, Some(None));
    let vias = req.vias().unwrap();
    assert_eq!(vias.len(), 2);
    assert_eq!(vias[1].received.as_deref(), Some("192.0.2.9"));
    assert_eq!(req.from().unwrap().tag.as_deref(), Some("1928301774"));
    assert_eq!(req.from().unwrap().display_name.as_deref(), Some("Alice"));
    assert_eq!(req.to().unwrap().tag, None);
    assert_eq!(req.call_id().unwrap(), "a84b4c76e66710@pc33.example.com");
    assert_eq!(req.cseq().unwrap(), CSeq { seq: 314159, method: Method::Invite });
    assert_eq!(req.max_forwards().unwrap(), Some(70));
    assert_eq!(req.record_routes().unwrap().len(), 2);
    assert_eq!(req.contacts().unwrap().len(), 1);
    assert_eq!(req.content_type(), Some("application/sdp"));
    assert_eq!(req.body().len(), 36);
    let again = SipMessage::parse_datagram(&msg.to_bytes()).unwrap();
    assert_eq!(again, msg);
}

#[test]
fn simple_requests_round_trip() {
    for m in ["ACK", "BYE", "CANCEL", "OPTIONS"] {
        let msg = SipMessage::parse_datagram(simple(m).as_bytes()).unwrap();
        assert_eq!(msg.method().unwrap().to_string(), m);
        assert_eq!(SipMessage::parse_datagram(&msg.to_bytes()).unwrap(), msg);
        assert_eq!(msg.to_bytes(), simple(m).into_bytes());
    }
}

#[test]
fn response_for_request_copies_headers_and_round_trips() {
    let SipMessage::Request(req) = SipMessage::parse_datagram(INVITE.as_bytes()).unwrap() else { panic!() };
    let resp = Response::for_request(&req, 200, "OK", Some("totag1"));
    assert_eq!(resp.vias().unwrap().len(), 2);
    assert_eq!(resp.to().unwrap().tag.as_deref(), Some("totag1"));
    assert_eq!(resp.call_id().unwrap(), req.call_id().unwrap());
    assert_eq!(resp.cseq().unwrap(), req.cseq().unwrap());
    let bytes = resp.to_bytes();
    assert!(bytes.starts_with(b"SIP/2.0 200 OK\r\n"));
    let parsed = SipMessage::parse_datagram(&bytes).unwrap();
    assert_eq!(parsed.status(), Some(200));
    assert_eq!(parsed.to_bytes(), bytes);
    let custom = Response::for_request(&req, 486, "Busy Here Now", None);
    assert!(custom.to_bytes().starts_with(b"SIP/2.0 486 Busy Here Now\r\n"));
}

#[test]
fn compact_forms_and_case_insensitive_names() {
    let raw = "BYE sip:bob@example.com SIP/2.0\r\nv: SIP/2.0/TCP h.example.com;branch=z9hG4bKc\r\n\
max-forwards: 10\r\nt: <sip:bob@example.com>;tag=b\r\nf: <sip:alice@example.com>;tag=a\r\n\
i: cid\r\ncseq: 3 BYE\r\nm: <sip:a@h>\r\nk: timer\r\ns: hi\r\nc: text/plain\r\nl: 2\r\n\r\nhi";
    let msg = SipMessage::parse_datagram(raw.as_bytes()).unwrap();
    let SipMessage::Request(r) = &msg else { panic!() };
    assert_eq!(r.call_id().unwrap(), "cid");
    assert_eq!(r.via_top().unwrap().transport, "TCP");
    assert_eq!(r.header("Supported"), Some("timer"));
    assert_eq!(r.header("K"), Some("timer"));
    assert_eq!(r.header("subject"), Some("hi"));
    assert_eq!(r.header("CALL-ID"), Some("cid"));
    assert_eq!(r.content_type(), Some("text/plain"));
    assert_eq!(r.body(), b"hi");
    assert!(String::from_utf8(msg.to_bytes()).unwrap().contains("Call-ID: cid\r\n"));
}

#[test]
fn multiple_vias_on_one_line_and_folding() {
    let raw = simple("OPTIONS").replace(
        "Via: SIP/2.0/UDP h.example.com;branch=z9hG4bKx\r\n",
        "Via: SIP/2.0/UDP a.example.com;branch=z9hG4bK1,\r\n SIP/2.0/UDP b.example.com:5070;branch=z9hG4bK2\r\n",
    );
    let SipMessage::Request(r) = SipMessage::parse_datagram(raw.as_bytes()).unwrap() else { panic!() };
    let vias = r.vias().unwrap();
    assert_eq!(vias.len(), 2);
    assert_eq!(vias[1].port, Some(5070));
    assert_eq!(vias[1].branch.as_deref(), Some("z9hG4bK2"));
}

#[test]
fn udp_short_body_is_400_and_long_body_is_truncated() {
    let short = INVITE.replace("Content-Length: 36", "Content-Length: 99");
    let err = SipMessage::parse_datagram(short.as_bytes()).unwrap_err();
    assert!(matches!(err, SipError::BodyTooShort { declared: 99, available: 36 }));
    assert!(matches!(err.action(true), BadMessageAction::Respond { status: 400, .. }));
    assert_eq!(err.action(false), BadMessageAction::Drop);
    let long = INVITE.replace("Content-Length: 36", "Content-Length: 4");
    assert_eq!(SipMessage::parse_datagram(long.as_bytes()).unwrap().body(), b"v=0\r");
    let none = INVITE.replace("Content-Length: 36\r\n", "");
    assert_eq!(SipMessage::parse_datagram(none.as_bytes()).unwrap().body().len(), 36);
}

#[test]
fn tcp_framing() {
    let mut f = StreamFramer::new();
    let two = format!("{}\r\n\r\n{}", simple("BYE"), INVITE);
    f.push(two.as_bytes());
    assert_eq!(f.next_message().unwrap().unwrap().method(), Some(&Method::Bye));
    assert_eq!(f.next_message().unwrap().unwrap().body().len(), 36);
    assert!(f.next_message().is_none());
    let b = INVITE.as_bytes();
    f.push(&b[..10]);
    assert!(f.next_message().is_none());
    f.push(&b[10..400]);
    assert!(f.next_message().is_none());
    f.push(&b[400..]);
    assert_eq!(f.next_message().unwrap().unwrap().method(), Some(&Method::Invite));
    f.push(b"\r\n\r\n\r\n");
    assert!(f.next_message().is_none());
    assert_eq!(f.buffered(), 0);
    f.push(simple("BYE").replace("Content-Length: 0\r\n", "").as_bytes());
    assert_eq!(f.next_message().unwrap().unwrap_err(), SipError::MissingContentLength);
    f.push(&vec![b'A'; MAX_MESSAGE_SIZE + 1]);
    assert!(matches!(f.next_message().unwrap(), Err(SipError::TooLarge { .. })));
}

fn outcome(name: &str) -> Result<SipMessage, SipError> {
    SipMessage::parse_datagram(&fixture(name))
}

#[test]
fn rfc4475_torture_messages() {
    // 3.1.1.1 wsinv: accepted.
    let SipMessage::Request(r) = outcome("wsinv").unwrap() else { panic!() };
    assert_eq!(r.max_forwards().unwrap(), Some(68));
    assert_eq!(r.cseq().unwrap().seq, 9);
    assert_eq!(r.call_id().unwrap(), "wsinv.ndaksdj@192.0.2.1");
    assert_eq!(r.to().unwrap().tag.as_deref(), Some("1918181833n"));
    assert_eq!(r.from().unwrap().tag.as_deref(), Some("98asjd8"));
    assert_eq!(r.vias().unwrap().len(), 3);
    // esc01: accepted.
    let SipMessage::Request(r) = outcome("esc01").unwrap() else { panic!() };
    assert_eq!(r.call_id().unwrap(), "esc01.239409asdfakjkn23onasd0-3234");
    // Invalid ones: 400.
    for (name, check) in [
        ("badinv01", (|e: &SipError| matches!(e, SipError::HeaderValue { .. })) as fn(&SipError) -> bool),
        ("clerr", |e| matches!(e, SipError::BodyTooShort { declared: 9999, .. })),
        ("ncl", |e| matches!(e, SipError::InvalidContentLength { .. })),
        ("mcl01", |e| matches!(e, SipError::DuplicateHeader { name: "Content-Length" })),
        ("ltgtruri", |e| matches!(e, SipError::StartLine { .. })),
    ] {
        let e = outcome(name).unwrap_err();
        assert!(check(&e), "{name}: {e:?}");
        assert!(matches!(e.action(true), BadMessageAction::Respond { status: 400, .. }), "{name}");
        assert!(!looks_like_response(&fixture(name)));
    }
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = SipMessage::parse_datagram(&bytes);
        let mut f = StreamFramer::new();
        f.push(&bytes);
        while let Some(_m) = f.next_message() {}
    }

    #[test]
    fn mutated_messages_never_panic(idx in 0usize..2000, b in any::<u8>(), cut in 0usize..2000) {
        for base in [INVITE.as_bytes().to_vec(), fixture("wsinv"), fixture("esc01")] {
            let mut m = base.clone();
            let i = idx % m.len();
            m[i] = b;
            m.truncate(cut.max(i + 1).min(m.len()));
            if let Ok(msg) = SipMessage::parse_datagram(&m) {
                let _ = (msg.via_top(), msg.cseq(), msg.to_bytes());
                if let SipMessage::Request(r) = &msg {
                    let _ = (r.from(), r.to(), r.contacts(), r.routes(), r.record_routes());
                    let _ = Response::for_request(r, 400, "Bad", Some("t")).to_bytes();
                }
            }
        }
    }
}

#[test]
fn zz_print_outcomes() {
    let dir = format!("{}/tests/fixtures/sip", env!("CARGO_MANIFEST_DIR"));
    let mut names: Vec<_> = std::fs::read_dir(&dir).unwrap().filter_map(|e| {
        let p = e.unwrap().path();
        (p.extension()? == "sip").then(|| p.file_stem().unwrap().to_string_lossy().into_owned())
    }).collect();
    names.sort();
    for n in names {
        let b = fixture(&n);
        let r = SipMessage::parse_datagram(&b);
        match r {
            Ok(m) => println!("{n}: OK {:?} {:?}", m.method(), m.status()),
            Err(e) => println!("{n}: ERR {e} -> {:?}", e.action(!looks_like_response(&b))),
        }
    }
}
