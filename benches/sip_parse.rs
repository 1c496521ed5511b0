//! Issue 3's figure: INVITEs parsed plus their server transaction created, per second on one core.
//!
//! `cargo bench -p rms --bench sip_parse` prints, per INVITE (a typical 900-byte INVITE from a
//! proxy, two Vias, Record-Route, SDP body):
//! - `parse`: `SipMessage::parse_datagram` alone;
//! - `parse+server_transaction`: parse, then `ServerTransaction::new` (which prints the 100 Trying);
//! - `endpoint`: `Endpoint::handle_datagram`, the whole UAS path: parse, Via received/rport,
//!   transaction matching, the transaction and its 100 Trying, the request event.
//!
//! The throughput line (elements/s) is the figure to compare with the 50,000/s target.

use std::net::SocketAddr;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use rms::sip::{Endpoint, EndpointConfig, ServerTransaction, SipMessage, TimerConfig};

const BATCH: usize = 1000;

fn invite(i: usize) -> Vec<u8> {
    let sdp = "v=0\r\no=- 3724394400 3724394405 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\n\
t=0 0\r\nm=audio 40000 RTP/AVP 0 8 9 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:9 G722/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n";
    format!(
        "INVITE sip:ivr@192.0.2.10:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKproxy{i}\r\n\
Via: SIP/2.0/UDP 198.51.100.7:5060;received=198.51.100.7;branch=z9hG4bKphone{i};rport=5060\r\n\
Record-Route: <sip:192.0.2.1;lr;ftag=as1234{i}>\r\n\
Max-Forwards: 69\r\n\
From: \"Alice\" <sip:alice@example.com>;tag=as1234{i}\r\n\
To: <sip:ivr@example.com>\r\n\
Call-ID: 3c26700b{i}@198.51.100.7\r\n\
CSeq: 102 INVITE\r\n\
Contact: <sip:alice@198.51.100.7:5060>\r\n\
User-Agent: Asterisk PBX 18.0\r\n\
Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, SUBSCRIBE, NOTIFY, INFO\r\n\
Supported: replaces, timer\r\n\
Content-Type: application/sdp\r\n\
Content-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    )
    .into_bytes()
}

fn bench(c: &mut Criterion) {
    let messages: Vec<Vec<u8>> = (0..BATCH).map(invite).collect();
    let source: SocketAddr = "192.0.2.1:5060".parse().unwrap();
    let mut group = c.benchmark_group("sip_invite");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("parse", |b| {
        b.iter(|| {
            for m in &messages {
                std::hint::black_box(SipMessage::parse_datagram(m).unwrap());
            }
        })
    });
    group.bench_function("parse+server_transaction", |b| {
        b.iter(|| {
            for m in &messages {
                let Ok(SipMessage::Request(req)) = SipMessage::parse_datagram(m) else { panic!("INVITE") };
                let mut tx = ServerTransaction::new(Duration::ZERO, &req, false, TimerConfig::default());
                std::hint::black_box(tx.poll_transmit());
                std::hint::black_box((req, tx));
            }
        })
    });
    group.bench_function("endpoint", |b| {
        b.iter_batched(
            || Endpoint::new(EndpointConfig::new("192.0.2.10:5060".parse().unwrap()), 1),
            |mut ep| {
                for m in &messages {
                    ep.handle_datagram(Duration::ZERO, source, m);
                    std::hint::black_box(ep.poll_transmit());
                    std::hint::black_box(ep.poll_event());
                }
                ep
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
