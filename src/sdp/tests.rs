use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use proptest::prelude::*;
use rms_filters::codec::CodecKind;

use super::*;

/// Linphone/baresip style: opus first, then PCMU, PCMA, telephone-event.
const LINPHONE: &str = "v=0\r\n\
o=alice 3724 1 IN IP4 192.0.2.10\r\n\
s=Talk\r\n\
c=IN IP4 192.0.2.10\r\n\
t=0 0\r\n\
m=audio 7078 RTP/AVP 96 0 8 101\r\n\
a=rtpmap:96 opus/48000/2\r\n\
a=fmtp:96 useinbandfec=1\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-15\r\n\
a=rtcp-fb:* trr-int 1000\r\n";

/// The Bria offer relayed by rtpengine (../shared/seeds/002), with the v=/o= lines it lacks there.
const BRIA: &str = "v=0\r\n\
o=- 1563192870324300 1 IN IP4 203.0.113.5\r\n\
s=Bria 3 release 3.5.5 stamp 71243\r\n\
c=IN IP4 203.0.113.5\r\n\
t=0 0\r\n\
m=audio 51472 RTP/AVP 9 0 18 98 101\r\n\
a=rtpmap:18 G729/8000\r\n\
a=fmtp:18 annexb=yes\r\n\
a=rtpmap:98 ILBC/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-15\r\n\
a=sendrecv\r\n";

const AUDIO_VIDEO: &str = "v=0\r\n\
o=- 42 7 IN IP4 198.51.100.1\r\n\
s=-\r\n\
c=IN IP4 198.51.100.1\r\n\
t=0 0\r\n\
m=video 9000 RTP/AVP 96 97\r\n\
a=rtpmap:96 H264/90000\r\n\
a=rtpmap:97 VP8/90000\r\n\
m=audio 9002 RTP/AVP 8 0 101\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n";

/// WebRTC-style (terminated to plain RTP by a gateway): rtcp-mux, a=rtcp on the RTP port.
const RTCP_MUX: &str = "v=0\r\n\
o=- 4611731400430051336 2 IN IP4 127.0.0.1\r\n\
s=-\r\n\
t=0 0\r\n\
a=group:BUNDLE 0\r\n\
m=audio 40000 RTP/AVPF 0 126\r\n\
c=IN IP4 10.1.2.3\r\n\
a=rtcp:40000 IN IP4 10.1.2.3\r\n\
a=mid:0\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:126 telephone-event/8000\r\n\
a=sendrecv\r\n\
a=rtcp-mux\r\n";

const IPV6: &str = "v=0\r\n\
o=- 1 1 IN IP6 ::1\r\n\
s=-\r\n\
c=IN IP6 ::1\r\n\
t=0 0\r\n\
m=audio 30000 RTP/AVP 8\r\n";

const LEGACY_HOLD: &str = "v=0\r\n\
o=- 5 6 IN IP4 192.0.2.7\r\n\
s=-\r\n\
c=IN IP4 0.0.0.0\r\n\
t=0 0\r\n\
m=audio 4000 RTP/AVP 0\r\n\
a=sendrecv\r\n";

const SENDONLY: &str = "v=0\r\n\
o=- 5 7 IN IP4 192.0.2.7\r\n\
s=-\r\n\
c=IN IP4 192.0.2.7\r\n\
t=0 0\r\n\
a=sendonly\r\n\
m=audio 4000 RTP/AVP 0\r\n";

const PTIME30: &str = "v=0\r\n\
o=- 1 1 IN IP4 192.0.2.8\r\n\
s=-\r\n\
c=IN IP4 192.0.2.8\r\n\
t=0 0\r\n\
m=audio 5004 RTP/AVP 0\r\n\
a=ptime:30\r\n\
a=maxptime:40\r\n";

const G729_ONLY: &str = "v=0\r\n\
o=- 1 1 IN IP4 192.0.2.9\r\n\
s=-\r\n\
c=IN IP4 192.0.2.9\r\n\
t=0 0\r\n\
m=audio 5004 RTP/AVP 18 101\r\n\
a=rtpmap:18 G729/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n";

fn config() -> AnswerConfig {
    AnswerConfig {
        address: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
        rtp_port: 20000,
        codecs: vec![CodecKind::Pcma, CodecKind::Pcmu],
        telephone_event: true,
        origin: OriginState { session_id: 123456, version: 2 },
    }
}

fn answer(offer: &str, config: &AnswerConfig) -> Answer {
    let offer = SessionDescription::parse(offer.as_bytes()).expect("fixture parses");
    negotiate_answer(&offer, config).expect("negotiates")
}

fn lines(sdp: &SessionDescription) -> Vec<String> {
    let text = sdp.to_string();
    assert!(text.ends_with("\r\n"), "CRLF-terminated");
    assert!(!text.replace("\r\n", "").contains('\n'), "only CRLF line ends: {text:?}");
    text.split("\r\n").filter(|l| !l.is_empty()).map(str::to_owned).collect()
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[test]
fn linphone_offer_picks_pcmu_in_offer_order_with_telephone_event() {
    // Our list prefers PCMA, but the offerer listed PCMU first: offerer preference wins.
    let a = answer(LINPHONE, &config());
    assert_eq!(
        lines(&a.sdp),
        [
            "v=0",
            "o=- 123456 2 IN IP4 10.0.0.1",
            "s=-",
            "c=IN IP4 10.0.0.1",
            "t=0 0",
            "m=audio 20000 RTP/AVP 0 101",
            "a=rtpmap:0 PCMU/8000",
            "a=rtpmap:101 telephone-event/8000",
            "a=fmtp:101 0-16",
            "a=ptime:20",
            "a=maxptime:60",
            "a=rtcp:20001",
            "a=sendrecv",
        ]
    );
    let n = &a.negotiated;
    assert_eq!(n.media_index, 0);
    assert_eq!(n.codec, CodecKind::Pcmu);
    assert_eq!(n.payload_type, 0);
    assert_eq!(n.clock_rate, 8000);
    assert_eq!(n.telephone_event, Some(101));
    assert_eq!(n.remote_rtp, sa("192.0.2.10:7078"));
    assert_eq!(n.remote_rtcp, sa("192.0.2.10:7079"));
    assert_eq!(n.ptime, 20);
    assert_eq!(n.direction, Direction::SendRecv);
    assert!(!n.rtcp_mux);
}

#[test]
fn our_codec_list_filters_the_offer() {
    let mut c = config();
    c.codecs = vec![CodecKind::Pcma];
    let a = answer(LINPHONE, &c);
    assert_eq!(a.negotiated.codec, CodecKind::Pcma);
    assert_eq!(a.negotiated.payload_type, 8);
    assert!(lines(&a.sdp).contains(&"m=audio 20000 RTP/AVP 8 101".to_owned()));
    assert!(lines(&a.sdp).contains(&"a=rtpmap:8 PCMA/8000".to_owned()));
}

#[test]
fn bria_offer_via_rtpengine_skips_g722_and_answers_pcmu() {
    let a = answer(BRIA, &config());
    assert_eq!(
        lines(&a.sdp)[5..],
        [
            "m=audio 20000 RTP/AVP 0 101",
            "a=rtpmap:0 PCMU/8000",
            "a=rtpmap:101 telephone-event/8000",
            "a=fmtp:101 0-16",
            "a=ptime:20",
            "a=maxptime:60",
            "a=rtcp:20001",
            "a=sendrecv",
        ]
    );
    assert_eq!(a.negotiated.remote_rtp, sa("203.0.113.5:51472"));
    assert_eq!(a.negotiated.remote_rtcp, sa("203.0.113.5:51473"));
}

#[test]
fn dynamic_payload_type_of_the_offerer_is_kept() {
    // PCMA announced at a dynamic PT: the answer uses the offerer's number, with its rtpmap.
    let offer = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
                 m=audio 6000 RTP/AVP 112 100\r\na=rtpmap:112 pcma/8000\r\na=rtpmap:100 telephone-event/8000\r\n";
    let a = answer(offer, &config());
    assert_eq!(a.negotiated.payload_type, 112);
    assert_eq!(a.negotiated.telephone_event, Some(100));
    let l = lines(&a.sdp);
    assert_eq!(
        l[5..9],
        [
            "m=audio 20000 RTP/AVP 112 100",
            "a=rtpmap:112 PCMA/8000",
            "a=rtpmap:100 telephone-event/8000",
            "a=fmtp:100 0-16"
        ]
    );
}

#[test]
fn audio_and_video_keeps_order_and_rejects_video() {
    let a = answer(AUDIO_VIDEO, &config());
    assert_eq!(
        lines(&a.sdp)[4..],
        [
            "t=0 0",
            "m=video 0 RTP/AVP 96 97",
            "m=audio 20000 RTP/AVP 8 101",
            "a=rtpmap:8 PCMA/8000",
            "a=rtpmap:101 telephone-event/8000",
            "a=fmtp:101 0-16",
            "a=ptime:20",
            "a=maxptime:60",
            "a=rtcp:20001",
            "a=sendrecv",
        ]
    );
    assert_eq!(a.negotiated.media_index, 1);
    assert_eq!(a.negotiated.remote_rtp, sa("198.51.100.1:9002"));
}

#[test]
fn second_audio_stream_and_zero_port_streams_are_rejected() {
    let offer = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
                 m=audio 0 RTP/AVP 0\r\nm=audio 6000 RTP/AVP 18 0\r\nm=audio 6002 RTP/AVP 0\r\n\
                 m=application 5000 UDP/BFCP *\r\n";
    let a = answer(offer, &config());
    let l = lines(&a.sdp);
    assert_eq!(l[5], "m=audio 0 RTP/AVP 0");
    assert_eq!(l[6], "m=audio 20000 RTP/AVP 0");
    assert!(l.contains(&"m=audio 0 RTP/AVP 0".to_owned()));
    assert_eq!(l.iter().filter(|l| l.starts_with("m=")).count(), 4);
    assert_eq!(l.last().unwrap(), "m=application 0 UDP/BFCP *");
    assert_eq!(a.negotiated.media_index, 1);
}

#[test]
fn rtcp_mux_is_answered_only_when_offered() {
    let a = answer(RTCP_MUX, &config());
    assert_eq!(
        lines(&a.sdp)[5..],
        [
            "m=audio 20000 RTP/AVPF 0 126",
            "a=rtpmap:0 PCMU/8000",
            "a=rtpmap:126 telephone-event/8000",
            "a=fmtp:126 0-16",
            "a=ptime:20",
            "a=maxptime:60",
            "a=rtcp:20000",
            "a=rtcp-mux",
            "a=sendrecv",
        ]
    );
    let n = &a.negotiated;
    assert!(n.rtcp_mux);
    // Media-level c= wins over the (absent) session-level one.
    assert_eq!(n.remote_rtp, sa("10.1.2.3:40000"));
    assert_eq!(n.remote_rtcp, sa("10.1.2.3:40000"));
    assert!(!lines(&answer(BRIA, &config()).sdp).contains(&"a=rtcp-mux".to_owned()));
}

#[test]
fn rtcp_attribute_of_the_offer_gives_the_remote_rtcp_address() {
    let offer = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
                 m=audio 6000 RTP/AVP 0\r\na=rtcp:6101 IN IP4 192.0.2.99\r\n";
    assert_eq!(answer(offer, &config()).negotiated.remote_rtcp, sa("192.0.2.99:6101"));
    let offer = offer.replace(" IN IP4 192.0.2.99", "");
    assert_eq!(answer(&offer, &config()).negotiated.remote_rtcp, sa("192.0.2.1:6101"));
}

#[test]
fn ipv6_offer_and_ipv6_answer() {
    let mut c = config();
    c.address = IpAddr::V6(Ipv6Addr::LOCALHOST);
    let a = answer(IPV6, &c);
    assert_eq!(
        lines(&a.sdp),
        [
            "v=0",
            "o=- 123456 2 IN IP6 ::1",
            "s=-",
            "c=IN IP6 ::1",
            "t=0 0",
            "m=audio 20000 RTP/AVP 8",
            "a=rtpmap:8 PCMA/8000",
            "a=ptime:20",
            "a=maxptime:60",
            "a=rtcp:20001",
            "a=sendrecv",
        ]
    );
    assert_eq!(a.negotiated.remote_rtp, sa("[::1]:30000"));
    assert_eq!(a.negotiated.telephone_event, None);
}

#[test]
fn legacy_hold_is_answered_recvonly() {
    let a = answer(LEGACY_HOLD, &config());
    assert_eq!(lines(&a.sdp).last().unwrap(), "a=recvonly");
    assert_eq!(a.negotiated.direction, Direction::RecvOnly);
    assert_eq!(a.negotiated.remote_rtp, sa("0.0.0.0:4000"));
}

#[test]
fn session_level_sendonly_is_answered_recvonly() {
    let a = answer(SENDONLY, &config());
    assert_eq!(lines(&a.sdp).last().unwrap(), "a=recvonly");
    assert_eq!(a.negotiated.direction, Direction::RecvOnly);
    assert!(!a.negotiated.direction.sends());
    assert!(a.negotiated.direction.receives());
}

#[test]
fn every_direction_maps_per_rfc3264() {
    for (offered, answered, ours) in [
        ("sendrecv", "a=sendrecv", Direction::SendRecv),
        ("sendonly", "a=recvonly", Direction::RecvOnly),
        ("recvonly", "a=sendonly", Direction::SendOnly),
        ("inactive", "a=inactive", Direction::Inactive),
    ] {
        let offer = format!(
            "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\na=sendrecv\r\n\
             m=audio 6000 RTP/AVP 0\r\na={offered}\r\n"
        );
        let a = answer(&offer, &config());
        assert_eq!(lines(&a.sdp).last().unwrap(), answered, "offer {offered}");
        assert_eq!(a.negotiated.direction, ours);
    }
    // Legacy hold combined with recvonly: nobody can send.
    let offer = LEGACY_HOLD.replace("a=sendrecv", "a=recvonly");
    assert_eq!(answer(&offer, &config()).negotiated.direction, Direction::Inactive);
}

#[test]
fn ptime_is_echoed_and_bounded_by_maxptime() {
    let a = answer(PTIME30, &config());
    assert!(lines(&a.sdp).contains(&"a=ptime:30".to_owned()));
    assert_eq!(a.negotiated.ptime, 30);
    for (attrs, expect) in [
        ("a=ptime:30\r\na=maxptime:20\r\n", 20),
        ("a=ptime:5\r\n", 10),
        ("a=ptime:90\r\n", 60),
        ("a=maxptime:10\r\n", 10),
        ("a=ptime:25\r\n", 20),
        ("a=ptime:40.0\r\n", 40),
        ("a=ptime:junk\r\n", 20),
        ("", 20),
    ] {
        let offer = format!(
            "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\n{attrs}"
        );
        let a = answer(&offer, &config());
        assert_eq!(a.negotiated.ptime, expect, "{attrs:?}");
        assert!(lines(&a.sdp).contains(&format!("a=ptime:{expect}")));
    }
}

#[test]
fn maxptime_is_answered_within_both_limits() {
    for (attrs, expect) in [("", 60), ("a=maxptime:40\r\n", 40), ("a=maxptime:150\r\n", 60), ("a=maxptime:5\r\n", 10)] {
        let offer = format!(
            "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\n{attrs}"
        );
        let a = answer(&offer, &config());
        assert!(lines(&a.sdp).contains(&format!("a=maxptime:{expect}")), "{attrs:?}");
    }
}

#[test]
fn reoffer_with_the_same_origin_version_is_unchanged() {
    let first = SessionDescription::parse(PTIME30.as_bytes()).unwrap();
    assert!(offer_unchanged(&first, &first));
    let bumped = PTIME30.replacen(" 1 IN IP4", " 2 IN IP4", 1);
    assert_ne!(bumped, PTIME30, "the fixture's o= version is 1");
    assert!(!offer_unchanged(&first, &SessionDescription::parse(bumped.as_bytes()).unwrap()));
}

#[test]
fn g729_only_is_no_common_codec_with_warning_305() {
    let offer = SessionDescription::parse(G729_ONLY.as_bytes()).unwrap();
    let err = negotiate_answer(&offer, &config()).unwrap_err();
    assert_eq!(err, NegotiationError::NoCommonCodec);
    assert_eq!(err.warning_code(), 305);
    assert_eq!(err.warning_text(), "305 rms \"Incompatible media format: no common codec\"");
}

#[test]
fn empty_codec_list_is_no_common_codec() {
    let mut c = config();
    c.codecs.clear();
    let offer = SessionDescription::parse(BRIA.as_bytes()).unwrap();
    assert_eq!(negotiate_answer(&offer, &c), Err(NegotiationError::NoCommonCodec));
}

#[test]
fn telephone_event_not_offered_is_not_answered() {
    let offer = BRIA.replace(" 98 101", " 98").replace("a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n", "");
    let a = answer(&offer, &config());
    assert_eq!(a.negotiated.telephone_event, None);
    assert_eq!(lines(&a.sdp)[5..7], ["m=audio 20000 RTP/AVP 0", "a=rtpmap:0 PCMU/8000"]);
    assert!(!a.sdp.to_string().contains("telephone-event"));
}

#[test]
fn telephone_event_not_supported_is_not_answered() {
    let mut c = config();
    c.telephone_event = false;
    let a = answer(LINPHONE, &c);
    assert_eq!(a.negotiated.telephone_event, None);
    assert!(!a.sdp.to_string().contains("telephone-event"));
}

#[test]
fn telephone_event_at_another_clock_rate_is_not_used() {
    let offer = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
                 m=audio 6000 RTP/AVP 0 110 101\r\na=rtpmap:110 telephone-event/48000\r\na=rtpmap:101 telephone-event/8000\r\n";
    assert_eq!(answer(offer, &config()).negotiated.telephone_event, Some(101));
}

#[test]
fn other_negotiation_errors() {
    let parse = |s: &str| SessionDescription::parse(s.as_bytes()).unwrap();
    let head = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\n";
    let video = parse(&format!("{head}c=IN IP4 192.0.2.1\r\nm=video 5000 RTP/AVP 96\r\n"));
    let err = negotiate_answer(&video, &config()).unwrap_err();
    assert_eq!(err, NegotiationError::NoAudio);
    assert_eq!(err.warning_code(), 304);
    let srtp = parse(&format!("{head}c=IN IP4 192.0.2.1\r\nm=audio 5000 RTP/SAVP 0\r\n"));
    let err = negotiate_answer(&srtp, &config()).unwrap_err();
    assert_eq!(err, NegotiationError::UnsupportedTransport { proto: "RTP/SAVP".into() });
    assert_eq!(err.warning_code(), 302);
    let no_c = parse(&format!("{head}m=audio 5000 RTP/AVP 0\r\n"));
    assert_eq!(negotiate_answer(&no_c, &config()), Err(NegotiationError::MissingConnection { media_index: 0 }));
    let fqdn = parse(&format!("{head}c=IN IP4 pbx.example.com\r\nm=audio 5000 RTP/AVP 0\r\n"));
    let err = negotiate_answer(&fqdn, &config()).unwrap_err();
    assert_eq!(err, NegotiationError::InvalidConnectionAddress { address: "pbx.example.com".into() });
    assert_eq!(
        err.warning_text(),
        "301 rms \"Incompatible network address formats: connection address pbx.example.com is not an IP address\""
    );
}

#[test]
fn garbage_is_an_error() {
    for input in [
        &b""[..],
        b"   \r\n",
        b"hello world",
        b"INVITE sip:bob@example.com SIP/2.0\r\n",
        b"v=1\r\n",
        b"v=0\r\no=only-two fields\r\n",
        b"v=0\r\nm=audio notaport RTP/AVP 0\r\n",
        b"\xff\xfe\x00garbage",
    ] {
        assert!(SessionDescription::parse(input).is_err(), "{:?}", String::from_utf8_lossy(input));
    }
    assert_eq!(SessionDescription::parse(b""), Err(SdpError::Empty));
    assert!(matches!(SessionDescription::parse(b"x=1"), Err(SdpError::Syntax(_))));
    assert!("v=0\r\n".parse::<SessionDescription>().is_ok());
}

#[test]
fn origin_state_counts_versions() {
    let mut o = OriginState::new(77);
    assert_eq!(o, OriginState { session_id: 77, version: 1 });
    assert_eq!(o.next(), OriginState { session_id: 77, version: 2 });
    assert_eq!(o.next().version, 3);
    assert_eq!(o.version, 3);
}

fn offer_config() -> OfferConfig {
    OfferConfig {
        address: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
        rtp_port: 30000,
        codecs: vec![CodecKind::Pcma, CodecKind::Pcmu],
        telephone_event: true,
        origin: OriginState { session_id: 99, version: 1 },
        direction: Direction::SendRecv,
    }
}

#[test]
fn build_offer_lists_all_codecs_in_preference_order() {
    let offer = build_offer(&offer_config());
    assert_eq!(
        lines(&offer),
        [
            "v=0",
            "o=- 99 1 IN IP4 10.0.0.1",
            "s=-",
            "c=IN IP4 10.0.0.1",
            "t=0 0",
            "m=audio 30000 RTP/AVP 8 0 101",
            "a=rtpmap:8 PCMA/8000",
            "a=rtpmap:0 PCMU/8000",
            "a=rtpmap:101 telephone-event/8000",
            "a=fmtp:101 0-16",
            "a=ptime:20",
            "a=maxptime:60",
            "a=rtcp:30001",
            "a=rtcp-xr:rcvr-rtt=all stat-summary=loss,dup,jitt voip-metrics",
            "a=sendrecv",
        ]
    );
    let mut c = offer_config();
    c.telephone_event = false;
    c.direction = Direction::SendOnly;
    c.codecs = vec![CodecKind::Pcmu, CodecKind::Pcmu];
    let l = lines(&build_offer(&c));
    assert_eq!(l[5], "m=audio 30000 RTP/AVP 0");
    assert_eq!(l.last().unwrap(), "a=sendonly");
}

#[test]
fn our_offer_answered_by_ourselves_round_trips() {
    let offer = build_offer(&offer_config());
    let reparsed = SessionDescription::parse(&offer.to_bytes()).unwrap();
    assert_eq!(reparsed, offer);
    let a = negotiate_answer(&reparsed, &config()).unwrap();
    // Offerer order: PCMA first.
    assert_eq!(a.negotiated.codec, CodecKind::Pcma);
    let n = negotiate_offer_answer(&offer, &a.sdp).unwrap();
    assert_eq!(n.codec, CodecKind::Pcma);
    assert_eq!(n.payload_type, 8);
    assert_eq!(n.telephone_event, Some(101));
    assert_eq!(n.remote_rtp, sa("10.0.0.1:20000"));
    assert_eq!(n.remote_rtcp, sa("10.0.0.1:20001"));
    assert_eq!(n.direction, Direction::SendRecv);
    assert_eq!(n.ptime, 20);
    assert!(!n.rtcp_mux);
}

#[test]
fn their_answer_order_decides_when_we_offered() {
    let offer = build_offer(&offer_config());
    let their = "v=0\r\no=bob 1 1 IN IP4 192.0.2.50\r\ns=-\r\nc=IN IP4 192.0.2.50\r\nt=0 0\r\n\
                 m=audio 7000 RTP/AVP 18 0 8\r\na=ptime:30\r\na=recvonly\r\n";
    let n = negotiate_offer_answer(&offer, &SessionDescription::parse(their.as_bytes()).unwrap()).unwrap();
    assert_eq!(n.codec, CodecKind::Pcmu);
    assert_eq!(n.payload_type, 0);
    assert_eq!(n.telephone_event, None);
    assert_eq!(n.ptime, 30);
    assert_eq!(n.direction, Direction::SendOnly);
    assert_eq!(n.remote_rtp, sa("192.0.2.50:7000"));

    let mut hold = offer_config();
    hold.direction = Direction::SendOnly;
    let hold = build_offer(&hold);
    let their = their.replace("a=recvonly", "a=sendrecv");
    let n = negotiate_offer_answer(&hold, &SessionDescription::parse(their.as_bytes()).unwrap()).unwrap();
    assert_eq!(n.direction, Direction::SendOnly);
}

#[test]
fn bad_answers_to_our_offer() {
    let offer = build_offer(&offer_config());
    let parse = |s: &str| SessionDescription::parse(s.as_bytes()).unwrap();
    let head = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n";
    assert_eq!(
        negotiate_offer_answer(&offer, &parse(&format!("{head}m=audio 0 RTP/AVP 0\r\n"))),
        Err(NegotiationError::AudioRejected)
    );
    assert_eq!(
        negotiate_offer_answer(&offer, &parse(&format!("{head}m=audio 6000 RTP/AVP 18\r\n"))),
        Err(NegotiationError::NoCommonCodec)
    );
    assert_eq!(
        negotiate_offer_answer(&offer, &parse(head)),
        Err(NegotiationError::MediaCountMismatch { offered: 1, answered: 0 })
    );
}

#[test]
fn rtcp_mux_needs_both_sides_when_we_offered() {
    let offer = build_offer(&offer_config());
    let their = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
                 m=audio 6000 RTP/AVP 0\r\na=rtcp-mux\r\n";
    let n = negotiate_offer_answer(&offer, &SessionDescription::parse(their.as_bytes()).unwrap()).unwrap();
    assert!(!n.rtcp_mux);
    assert_eq!(n.remote_rtcp, sa("192.0.2.1:6001"));
}

/// A wideband phone: G.722 first, then PCMU, telephone-event.
const G722_PHONE: &str = "v=0\r\n\
o=- 77 1 IN IP4 192.0.2.20\r\n\
s=-\r\n\
c=IN IP4 192.0.2.20\r\n\
t=0 0\r\n\
m=audio 16384 RTP/AVP 9 0 101\r\n\
a=rtpmap:9 G722/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-15\r\n";

fn all_codecs() -> AnswerConfig {
    AnswerConfig { codecs: codecs::KNOWN.to_vec(), ..config() }
}

#[test]
fn g722_offered_by_a_peer_is_answered_at_pt_9_with_clock_8000() {
    let a = answer(G722_PHONE, &all_codecs());
    assert_eq!(
        lines(&a.sdp)[5..9],
        ["m=audio 20000 RTP/AVP 9 101", "a=rtpmap:9 G722/8000", "a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-16"]
    );
    let n = &a.negotiated;
    assert_eq!((n.codec, n.payload_type, n.clock_rate), (CodecKind::G722, 9, 8000));
    // G.722's RTP clock is 8000 (RFC 3551 §4.5.2), so telephone-event/8000 goes with it.
    assert_eq!(n.telephone_event, Some(101));
    assert_eq!(n.opus, None);
    // PT 9 without an rtpmap is G.722 by the static table (Bria lists it first).
    let a = answer(BRIA, &all_codecs());
    assert_eq!((a.negotiated.codec, a.negotiated.payload_type), (CodecKind::G722, 9));
    // Without G.722 in our list the next one is taken.
    assert_eq!(answer(G722_PHONE, &config()).negotiated.codec, CodecKind::Pcmu);
}

#[test]
fn opus_is_answered_with_the_offerers_payload_type_and_our_fmtp() {
    let a = answer(LINPHONE, &all_codecs());
    assert_eq!(
        lines(&a.sdp)[5..9],
        ["m=audio 20000 RTP/AVP 96", "a=rtpmap:96 opus/48000/2", "a=fmtp:96 useinbandfec=1", "a=ptime:20"]
    );
    let n = &a.negotiated;
    assert_eq!((n.codec, n.payload_type, n.clock_rate), (CodecKind::Opus, 96, 48000));
    // Linphone's telephone-event is at 8000 Hz, not Opus's 48000: not usable with it (RFC 4733 §2.1).
    assert_eq!(n.telephone_event, None);
    assert_eq!(n.opus, Some(OpusFmtp { useinbandfec: Some(true), ..OpusFmtp::default() }));

    // With telephone-event/48000 offered, and our maxplaybackrate.
    let offer = LINPHONE
        .replace("RTP/AVP 96 0 8 101", "RTP/AVP 96 0 8 101 102")
        .replace("a=rtcp-fb", "a=rtpmap:102 telephone-event/48000\r\na=rtcp-fb");
    let offer = SessionDescription::parse(offer.as_bytes()).unwrap();
    let options = CodecOptions { opus_max_playback_rate: Some(16000) };
    let a = negotiate_answer_with(&offer, &all_codecs(), &options).unwrap();
    assert_eq!(a.negotiated.telephone_event, Some(102));
    assert!(lines(&a.sdp).contains(&"a=fmtp:96 useinbandfec=1; maxplaybackrate=16000".to_owned()));
    assert!(lines(&a.sdp).contains(&"a=rtpmap:102 telephone-event/48000".to_owned()));
}

#[test]
fn the_offerers_preference_decides_among_the_new_codecs() {
    let offer = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
                 m=audio 6000 RTP/AVP 0 9 107\r\na=rtpmap:107 OPUS/48000/2\r\n";
    let mut c = config();
    c.codecs = vec![CodecKind::Opus, CodecKind::G722, CodecKind::Pcmu];
    assert_eq!(answer(offer, &c).negotiated.codec, CodecKind::Pcmu);
    c.codecs = vec![CodecKind::Opus, CodecKind::G722];
    assert_eq!(answer(offer, &c).negotiated.codec, CodecKind::G722);
    c.codecs = vec![CodecKind::Opus];
    let a = answer(offer, &c);
    assert_eq!((a.negotiated.codec, a.negotiated.payload_type), (CodecKind::Opus, 107));
}

#[test]
fn opus_without_its_channel_count_is_accepted() {
    // RFC 7587 §7 makes `/2` mandatory; some endpoints omit it, and we are lenient.
    let offer = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
                 m=audio 6000 RTP/AVP 97\r\na=rtpmap:97 opus/48000\r\na=fmtp:97 maxplaybackrate=8000\r\n";
    let a = answer(offer, &all_codecs());
    assert_eq!((a.negotiated.codec, a.negotiated.payload_type), (CodecKind::Opus, 97));
    assert!(lines(&a.sdp).contains(&"a=rtpmap:97 opus/48000/2".to_owned()));
    assert_eq!(a.negotiated.opus.and_then(|f| f.maxplaybackrate), Some(8000));
    // Other clock rates or channel counts are not Opus.
    for map in ["opus/8000", "opus/48000/3"] {
        let o = offer.replace("opus/48000", map);
        let offer = SessionDescription::parse(o.as_bytes()).unwrap();
        assert_eq!(negotiate_answer(&offer, &all_codecs()).unwrap_err(), NegotiationError::NoCommonCodec, "{map}");
    }
}

#[test]
fn opus_fmtp_is_read_with_spaces_and_unknown_parameters() {
    let f = OpusFmtp::parse(
        " maxplaybackrate=16000;  sprop-stereo=1 ;stereo=0; useinbandfec = 1;maxaveragebitrate=20000; usedtx=1; \
         x-foo=bar; garbage; =; sprop-maxcapturerate=16000",
    );
    assert_eq!(
        f,
        OpusFmtp {
            useinbandfec: Some(true),
            maxplaybackrate: Some(16000),
            stereo: Some(false),
            sprop_stereo: Some(true),
            maxaveragebitrate: Some(20000),
        }
    );
    assert_eq!(OpusFmtp::parse(""), OpusFmtp::default());
    assert_eq!(OpusFmtp::parse("useinbandfec=yes; maxplaybackrate=-1; stereo"), OpusFmtp::default());
    assert_eq!(OpusFmtp::parse("USEINBANDFEC=1").useinbandfec, Some(true));
}

#[test]
fn opus_fmtp_adjusts_our_encoder() {
    use rms_filters::codec::OpusConfig;
    let ours = OpusConfig::default();
    let f = OpusFmtp::parse("maxplaybackrate=16000; maxaveragebitrate=20000; useinbandfec=1");
    let c = f.encoder_config(&ours);
    assert_eq!((c.inband_fec, c.max_playback_rate, c.bitrate), (true, Some(16000), Some(20000)));
    assert_eq!((c.complexity, c.packet_loss_pct), (ours.complexity, ours.packet_loss_pct));
    // useinbandfec=0, or absent (RFC 7587 §6.1 default 0): no FEC.
    assert!(!OpusFmtp::parse("useinbandfec=0").encoder_config(&ours).inband_fec);
    assert!(!OpusFmtp::default().encoder_config(&ours).inband_fec);
    // The lower of ours and theirs, and theirs within RFC 7587 bounds.
    let mine = OpusConfig { bitrate: Some(16000), max_playback_rate: Some(8000), ..ours };
    let c = f.encoder_config(&mine);
    assert_eq!((c.max_playback_rate, c.bitrate), (Some(8000), Some(16000)));
    let unset = OpusConfig { bitrate: None, ..ours };
    let c = OpusFmtp::parse("maxaveragebitrate=1000000; maxplaybackrate=4000").encoder_config(&unset);
    assert_eq!((c.max_playback_rate, c.bitrate), (Some(8000), Some(510_000)));
    // Our default 32 kbit/s stands when the peer allows more.
    assert_eq!(OpusFmtp::parse("maxaveragebitrate=64000").encoder_config(&ours).bitrate, Some(32_000));
}

#[test]
fn our_offer_has_g722_at_9_and_opus_at_111_with_fmtp() {
    let c = OfferConfig { codecs: codecs::KNOWN.to_vec(), ..offer_config() };
    assert_eq!(
        lines(&build_offer(&c))[5..15],
        [
            "m=audio 30000 RTP/AVP 0 8 9 111 101 96",
            "a=rtpmap:0 PCMU/8000",
            "a=rtpmap:8 PCMA/8000",
            "a=rtpmap:9 G722/8000",
            "a=rtpmap:111 opus/48000/2",
            "a=fmtp:111 useinbandfec=1",
            "a=rtpmap:101 telephone-event/8000",
            "a=fmtp:101 0-16",
            "a=rtpmap:96 telephone-event/48000",
            "a=fmtp:96 0-16",
        ]
    );
    let options = CodecOptions { opus_max_playback_rate: Some(24000) };
    let offer = build_offer_with(&c, &options);
    assert!(lines(&offer).contains(&"a=fmtp:111 useinbandfec=1; maxplaybackrate=24000".to_owned()));

    // The peer answers Opus at our PT with its own fmtp: that is what our encoder follows.
    let their = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
                 m=audio 6000 RTP/AVP 111 96\r\na=rtpmap:111 opus/48000/2\r\na=fmtp:111 useinbandfec=0; stereo=1\r\n\
                 a=rtpmap:96 telephone-event/48000\r\n";
    let n = negotiate_offer_answer(&offer, &SessionDescription::parse(their.as_bytes()).unwrap()).unwrap();
    assert_eq!((n.codec, n.payload_type, n.clock_rate, n.telephone_event), (CodecKind::Opus, 111, 48000, Some(96)));
    assert_eq!(n.opus, Some(OpusFmtp { useinbandfec: Some(false), stereo: Some(true), ..OpusFmtp::default() }));
}

#[test]
fn rms_codecs_lists_every_codec_with_encode_and_decode() {
    let text = codecs::describe();
    for name in ["PCMU", "PCMA", "G722", "opus"] {
        let line = text.lines().find(|l| l.split_whitespace().next() == Some(name)).unwrap_or_else(|| panic!("{name}"));
        let words: Vec<&str> = line.split_whitespace().collect();
        assert!(words.windows(2).any(|w| w == ["yes", "yes"]), "{line}");
    }
    assert!(text.contains("opus              48000 2 (mono)  8000,12000,16000,24000,48000"), "{text}");
    assert!(text.contains("G722               8000        1  16000"), "{text}");
    assert!(text
        .lines()
        .any(|l| l.starts_with("telephone-event") && l.contains("RFC 4733, relayed or played in-band")));
}

proptest! {
    #[test]
    fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = SessionDescription::parse(&bytes);
    }

    #[test]
    fn sdp_shaped_garbage_never_panics_negotiation(
        lines in proptest::collection::vec(
            prop_oneof![
                Just("v=0".to_owned()),
                "[a-z]=[ -~]{0,40}",
                "m=(audio|video) [0-9]{1,6} (RTP/AVP|RTP/SAVP|x) [0-9 ]{0,12}",
                "c=IN IP[46] [0-9a-f.:]{0,20}",
                "a=(rtpmap|fmtp|ptime|maxptime|rtcp|rtcp-mux|sendonly|recvonly|inactive)(:[ -~]{0,24})?",
            ],
            0..20,
        )
    ) {
        let body = lines.join("\r\n");
        if let Ok(sdp) = SessionDescription::parse(body.as_bytes()) {
            if let Ok(a) = negotiate_answer(&sdp, &config()) {
                prop_assert!(SessionDescription::parse(&a.sdp.to_bytes()).is_ok());
                let _ = negotiate_offer_answer(&sdp, &a.sdp);
            }
            let _ = negotiate_offer_answer(&build_offer(&offer_config()), &sdp);
        }
    }

    #[test]
    fn generated_offer_round_trips(
        v6 in any::<bool>(),
        raw_ip in any::<u128>(),
        port in 1u16..,
        codecs in proptest::collection::vec(proptest::sample::select(codecs::KNOWN), 1..5),
        telephone_event in any::<bool>(),
        session_id in any::<u64>(),
        version in any::<u64>(),
        direction in prop_oneof![
            Just(Direction::SendRecv), Just(Direction::SendOnly), Just(Direction::RecvOnly), Just(Direction::Inactive)
        ],
    ) {
        let address = if v6 { IpAddr::V6(Ipv6Addr::from(raw_ip)) } else { IpAddr::V4(Ipv4Addr::from(raw_ip as u32)) };
        let config = OfferConfig { address, rtp_port: port, codecs: codecs.clone(), telephone_event, origin: OriginState { session_id, version }, direction };
        let offer = build_offer(&config);
        let text = offer.to_string();
        let parsed: SessionDescription = text.parse().unwrap();
        prop_assert_eq!(&parsed, &offer);
        prop_assert_eq!(parsed.to_string(), text);
        prop_assert_eq!(parsed.origin().sess_id.clone(), session_id.to_string());
        prop_assert_eq!(parsed.origin().sess_version, version);
        prop_assert_eq!(parsed.session_address(), Some(address));
        prop_assert_eq!(parsed.media()[0].port, port);

        // Answering our own offer picks our first codec and reverses the direction.
        if !address.is_unspecified() {
            let mut ac = self::config();
            ac.codecs = codecs::KNOWN.to_vec();
            let a = negotiate_answer(&parsed, &ac).unwrap();
            prop_assert_eq!(a.negotiated.codec, codecs[0]);
            prop_assert_eq!(a.negotiated.direction, direction.reversed());
            prop_assert_eq!(a.negotiated.telephone_event.is_some(), telephone_event);
            if codecs[0] != CodecKind::Opus {
                prop_assert_eq!(a.negotiated.telephone_event, telephone_event.then_some(101));
            }
            prop_assert_eq!(a.negotiated.opus.is_some(), codecs[0] == CodecKind::Opus);
            prop_assert_eq!(a.negotiated.remote_rtp, SocketAddr::new(address, port));
            let n = negotiate_offer_answer(&offer, &a.sdp).unwrap();
            prop_assert_eq!(n.codec, codecs[0]);
            prop_assert_eq!(n.direction, direction);
        }
    }
}

#[test]
fn rtcp_xr_is_offered_always_and_answered_only_when_offered() {
    let ours = lines(&build_offer(&offer_config()));
    assert!(ours.contains(&"a=rtcp-xr:rcvr-rtt=all stat-summary=loss,dup,jitt voip-metrics".to_owned()));

    // Media level (RFC 3611 §5.1 example) and session level both count.
    let media_level = BRIA.replace("a=sendrecv\r\n", "a=sendrecv\r\na=rtcp-xr:rcvr-rtt=sender voip-metrics\r\n");
    let session_level = BRIA.replace("t=0 0\r\n", "t=0 0\r\na=rtcp-xr\r\n");
    for offer in [&media_level, &session_level] {
        let a = answer(offer, &config());
        assert!(a.negotiated.rtcp_xr, "{offer}");
        assert!(lines(&a.sdp).iter().any(|l| l.starts_with("a=rtcp-xr:")), "{offer}");
    }
    let plain = answer(BRIA, &config());
    assert!(!plain.negotiated.rtcp_xr);
    assert!(!lines(&plain.sdp).iter().any(|l| l.starts_with("a=rtcp-xr")));

    // Our offer answered with and without the attribute.
    let offer = build_offer(&offer_config());
    let their = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\n";
    let with = format!("{their}a=rtcp-xr:voip-metrics\r\n");
    let n = |sdp: &str| negotiate_offer_answer(&offer, &SessionDescription::parse(sdp.as_bytes()).unwrap()).unwrap();
    assert!(n(&with).rtcp_xr);
    assert!(!n(their).rtcp_xr);
}
