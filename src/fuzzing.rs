//! Fuzz bodies for the SIP, SDP and RTCP parsers: `fuzz/` (cargo-fuzz, feature `fuzzing`) calls them on
//! generated inputs and `cargo test` runs them over the seed corpus in `fuzz/corpus/` and over
//! random and mutated messages.
//!
//! A body may only panic on a real bug: a panic inside the parsers (nothing read from the network
//! may panic the process), or a message that does not survive our own printing.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use rms_filters::codec::CodecKind;
use rms_filters::rtp::rtcp::{NtpTimestamp, RtcpCompound};
use rms_filters::rtp::session::{ReportInputs, RtcpConfig, RtcpSession, SenderInputs};

use crate::sdp::{
    build_offer, negotiate_answer, negotiate_offer_answer, AnswerConfig, Direction, OfferConfig, OriginState,
    SessionDescription,
};
use crate::sip::{Response, SipMessage, StreamFramer, MAX_MESSAGE_SIZE};

/// One UDP datagram: parse, use every typed accessor, print and reparse; then the same bytes as a
/// TCP stream cut in two (the cut point taken from the input).
pub fn sip_message(data: &[u8]) {
    if let Ok(msg) = SipMessage::parse_datagram(data) {
        check_message(&msg);
    }
    let cut = data.first().map_or(0, |&b| usize::from(b)) % (data.len() + 1);
    let mut framer = StreamFramer::new();
    for part in [&data[..cut], &data[cut..]] {
        framer.push(part);
        drain(&mut framer);
    }
}

/// A TCP stream in chunks whose sizes come from the input: every framed message is checked like a
/// datagram, and the framer never holds more than one message's worth of bytes.
pub fn sip_stream(data: &[u8]) {
    let Some((&size, mut rest)) = data.split_first() else { return };
    let size = usize::from(size).max(1);
    let mut framer = StreamFramer::new();
    while !rest.is_empty() {
        let (chunk, tail) = rest.split_at(size.min(rest.len()));
        framer.push(chunk);
        drain(&mut framer);
        assert!(framer.buffered() <= MAX_MESSAGE_SIZE + size, "framer kept {} bytes", framer.buffered());
        rest = tail;
    }
}

/// An SDP offer: parse; answer it with our usual configuration and read the answer back; read it
/// as the answer to an offer of ours.
pub fn sdp(data: &[u8]) {
    let Ok(offer) = SessionDescription::parse(data) else { return };
    let _ = (offer.origin(), offer.media(), offer.session_address(), offer.to_string());
    let config = AnswerConfig {
        address: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)),
        rtp_port: 20000,
        codecs: vec![CodecKind::Pcma, CodecKind::Pcmu],
        telephone_event: true,
        origin: OriginState::new(1),
    };
    if let Ok(answer) = negotiate_answer(&offer, &config) {
        let printed = answer.sdp.to_bytes();
        let reread = SessionDescription::parse(&printed)
            .unwrap_or_else(|e| panic!("our answer does not parse: {e}\n{}", String::from_utf8_lossy(&printed)));
        assert_eq!(reread, answer.sdp, "our answer changed through printing");
        assert_eq!(answer.sdp.media().len(), offer.media().len(), "RFC 3264 §6: one m-line per offered m-line");
    }
    let ours = build_offer(&OfferConfig {
        address: config.address,
        rtp_port: config.rtp_port,
        codecs: config.codecs.clone(),
        telephone_event: true,
        origin: OriginState::new(2),
        direction: Direction::SendRecv,
    });
    let _ = negotiate_offer_answer(&ours, &offer);
}

/// An RTCP compound datagram (RFC 3550 §6, RFC 3611 XR): parse; what parses writes back and re-parses
/// to the same value.
pub fn rtcp(data: &[u8]) {
    // What a leg does with any datagram from its peer: counted, parsed or counted malformed, never a
    // panic; then a report of its own still writes.
    let mut session = RtcpSession::new(RtcpConfig::new("fuzz@rms".into()), Duration::ZERO, 1);
    let ntp = NtpTimestamp::from_unix(Duration::from_secs(1_790_000_000));
    session.receive(Duration::from_millis(10), ntp, data, 0x1234);
    let counters = session.summary().counters;
    assert_eq!((counters.received_packets, counters.received_bytes), (1, data.len() as u64));
    let inputs = ReportInputs {
        sender: SenderInputs { ssrc: 0x1234, packets: 1, payload_octets: 160, rtp_timestamp: 0 },
        receiver: None,
        impairment: rms_filters::rtp::quality::impairment(CodecKind::Pcmu, true),
        packet_ms: 20,
        plc: false,
    };
    let report = session.report(Duration::from_secs(1), ntp, &inputs).expect("a report always writes");
    RtcpCompound::parse(&report).expect("our report parses");

    let Ok(compound) = RtcpCompound::parse(data) else {
        assert_eq!(counters.malformed, 1);
        return;
    };
    assert_eq!(counters.malformed, 0);
    let mut out = Vec::new();
    if let Err(e) = compound.write(&mut out) {
        panic!("a parsed compound does not write: {e}\n{compound:?}");
    }
    let again = RtcpCompound::parse(&out).unwrap_or_else(|e| panic!("our compound does not parse: {e}\n{out:02x?}"));
    assert_eq!(again, compound, "the compound changed through writing");
}

fn drain(framer: &mut StreamFramer) {
    while let Some(framed) = framer.next_message() {
        if let Ok(msg) = framed {
            check_message(&msg);
        }
    }
}

/// Typed accessors never panic; printing and reparsing keeps what a transaction and a dialog use.
fn check_message(msg: &SipMessage) {
    match msg {
        SipMessage::Request(r) => {
            let _ = (r.via_top(), r.vias(), r.from(), r.to(), r.call_id(), r.cseq(), r.contacts());
            let _ = (r.record_routes(), r.routes(), r.max_forwards(), r.content_type(), r.uri().to_string());
            // Every request we accept can be answered with a response we can read back.
            let resp = Response::for_request(r, 400, "Bad Request", Some("fuzz")).to_bytes();
            if let Err(e) = SipMessage::parse_datagram(&resp) {
                panic!("our response does not parse: {e}\n{}", String::from_utf8_lossy(&resp));
            }
        }
        SipMessage::Response(r) => {
            let _ = (r.via_top(), r.vias(), r.from(), r.to(), r.call_id(), r.cseq(), r.contacts());
            let _ = (r.record_routes(), r.routes(), r.max_forwards(), r.content_type());
        }
    }
    let printed = msg.to_bytes();
    let again = SipMessage::parse_datagram(&printed)
        .unwrap_or_else(|e| panic!("printed message does not parse: {e}\n{}", String::from_utf8_lossy(&printed)));
    assert_eq!(again.method(), msg.method());
    assert_eq!(again.status(), msg.status());
    assert_eq!(again.call_id(), msg.call_id());
    assert_eq!(again.cseq(), msg.cseq());
    assert_eq!(again.body(), msg.body());
    assert_eq!(again.via_top().ok(), msg.via_top().ok());
    // Printing is a fixed point: what we print once prints the same again.
    assert_eq!(again.to_bytes(), printed, "printing is not stable");
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::sync::OnceLock;

    use proptest::prelude::*;

    use super::*;
    use rms_filters::testing::mutate;

    fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.expect("corpus entry").path())
            .collect();
        files.sort();
        files.into_iter().map(|p| (p.clone(), std::fs::read(&p).expect("corpus file"))).collect()
    }

    /// The seeds, read once for all proptest cases.
    fn seeds(target: &'static str) -> &'static [Vec<u8>] {
        static SIP: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
        static SDP: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
        static RTCP: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
        let cell = match target {
            "sdp" => &SDP,
            "rtcp" => &RTCP,
            _ => &SIP,
        };
        cell.get_or_init(|| corpus(target).into_iter().map(|(_, b)| b).collect())
    }

    #[test]
    fn sip_corpus() {
        let files = corpus("sip_message");
        assert!(files.len() >= 49 + 5, "the RFC 4475 messages and our edge cases");
        for (path, bytes) in files {
            let name = path.display().to_string();
            std::panic::catch_unwind(|| {
                sip_message(&bytes);
                sip_stream(&bytes);
            })
            .unwrap_or_else(|_| panic!("{name}"));
        }
    }

    #[test]
    fn sdp_corpus() {
        let files = corpus("sdp");
        assert!(files.len() >= 10);
        for (path, bytes) in files {
            let name = path.display().to_string();
            std::panic::catch_unwind(|| sdp(&bytes)).unwrap_or_else(|_| panic!("{name}"));
        }
    }

    #[test]
    fn rtcp_corpus() {
        let files = corpus("rtcp");
        assert!(files.len() >= 8);
        let mut parsed = 0;
        for (path, bytes) in files {
            let name = path.display().to_string();
            std::panic::catch_unwind(|| rtcp(&bytes)).unwrap_or_else(|_| panic!("{name}"));
            // The seeds named bad_* are the malformed ones; the others must parse, or they seed nothing.
            let ok = RtcpCompound::parse(&bytes).is_ok();
            assert_eq!(ok, !name.contains("/bad_"), "{name}");
            parsed += usize::from(ok);
        }
        assert!(parsed >= 5);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn random_bytes(data in proptest::collection::vec(any::<u8>(), 0..400)) {
            sip_message(&data);
            sip_stream(&data);
            sdp(&data);
            rtcp(&data);
        }

        /// A corpus message with a few bytes replaced, inserted or removed, and maybe cut short.
        #[test]
        fn mutated_corpus(
            pick in any::<prop::sample::Index>(),
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..6),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut m = pick.get(seeds("sip_message")).clone();
            for (at, byte, kind) in edits {
                let i = at.index(m.len() + 1);
                match kind {
                    0 if i < m.len() => m[i] = byte,
                    1 => m.insert(i, byte),
                    _ if i < m.len() => { m.remove(i); }
                    _ => {}
                }
            }
            if cut.index(4) == 0 {
                m.truncate(cut.index(m.len() + 1));
            }
            sip_message(&m);
            sip_stream(&m);
        }

        #[test]
        fn mutated_sdp(
            pick in any::<prop::sample::Index>(),
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        ) {
            let mut m = pick.get(seeds("sdp")).clone();
            for (at, byte) in edits {
                let i = at.index(m.len() + 1);
                if i < m.len() { m[i] = byte } else { m.push(byte) }
            }
            sdp(&m);
        }

        /// An RTCP seed with bytes replaced, bits flipped, bytes inserted, and maybe cut short.
        #[test]
        fn mutated_rtcp(
            pick in any::<prop::sample::Index>(),
            edits in proptest::collection::vec((any::<usize>(), any::<u8>(), 0u8..3), 1..5),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut m = pick.get(seeds("rtcp")).clone();
            mutate(&mut m, &edits, (cut.index(4) == 0).then(|| cut.index(usize::MAX)));
            rtcp(&m);
        }
    }
}
