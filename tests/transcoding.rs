//! Transcoding quality with real codec peers. For now, the self-test of the tooling the
//! rms-in-the-middle tests will use (tests/common/codec_peer.rs): each codec's independent peer
//! (ffmpeg encoders; sox and ffmpeg decoders) sends the reference speech straight to a receiver
//! over loopback RTP, and PESQ (tests/pesq, ITU-T P.862 narrowband) scores what arrives. Needs
//! Debian's ffmpeg and sox, and the PESQ venv of tests/pesq/README.md.
//!
//! The PESQ figures are deterministic (same fixture, same encoders, lossless loopback); the
//! thresholds below sit well under them (see tests/pesq/README.md for the measured values).

#[path = "common/codec_peer.rs"]
mod codec_peer;

use std::net::UdpSocket;
use std::time::Duration;

use codec_peer::{
    bare_chain, bare_chain_pesq, decode, decode_to_wav_8k, encode, ogg_opus, ogg_packets, opus_packet_samples,
    packetize, pesq_nb, reassemble, reference_speech, reference_speech_for, send_paced, work_dir, Codec, ReceiveLimits,
    RtpPacket, RtpReceiver, StreamParams,
};
use rms_filters::testing::{read_wav, write_wav};

/// Lowest PESQ NB accepted for a codec alone, encoded and decoded by its peer (measured: PCMU
/// 4.18, PCMA 4.18, G.722 4.11, Opus 32 kbit/s 4.44).
fn min_single(codec: Codec) -> f64 {
    match codec {
        Codec::Pcmu | Codec::Pcma => 4.0,
        Codec::G722 | Codec::Opus => 3.8,
    }
}

/// Payload type a test uses for `codec` (Opus: a dynamic one, as an SDP rtpmap would map it).
fn payload_type(codec: Codec) -> u8 {
    codec.static_payload_type().unwrap_or(111)
}

/// Send `packets` in order over loopback RTP at 20 ms to a receiver; what it captured, in arrival order.
fn over_loopback(packets: &[RtpPacket]) -> Vec<RtpPacket> {
    let receiver = RtpReceiver::spawn(UdpSocket::bind("127.0.0.1:0").unwrap(), ReceiveLimits::default());
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    send_paced(&sender, receiver.local_addr(), packets, Duration::from_millis(20));
    receiver.join()
}

/// The whole path for one codec: encode, send, receive, decode, score. Checks the RTP on the wire,
/// that the network added nothing (the received audio is the bare codec's, sample for sample) and
/// the PESQ of the result.
fn loopback(codec: Codec) {
    let dir = work_dir(&format!("loopback-{codec:?}"));
    let pt = payload_type(codec);
    let payloads = encode(&reference_speech_for(codec), codec, &dir);
    let sent = packetize(&payloads, codec, StreamParams::new(pt, 3));
    let received = over_loopback(&sent);

    assert_eq!(received.len(), sent.len(), "{codec:?}: packets received");
    assert!(received.iter().all(|p| p.payload_type == pt && p.ssrc == sent[0].ssrc), "{codec:?}: payload type, SSRC");
    assert!(
        received[0].marker && received[1..].iter().all(|p| !p.marker),
        "{codec:?}: marker on the first packet only"
    );
    // RTP clocks: 20 ms is 160 units at 8000 Hz (G.722 included, RFC 3551 §4.5.2), 960 at 48000 Hz (Opus).
    let step = codec.clock_rate() / 50;
    for w in received.windows(2) {
        assert_eq!(w[1].sequence, w[0].sequence.wrapping_add(1), "{codec:?}: sequence numbers");
        assert_eq!(w[1].timestamp.wrapping_sub(w[0].timestamp), step, "{codec:?}: timestamp step");
    }
    // Paced in real time: the last packet comes (n - 1) × 20 ms after the first, not sooner.
    let span = received[received.len() - 1].received_at.unwrap() - received[0].received_at.unwrap();
    let nominal = Duration::from_millis(20) * (sent.len() as u32 - 1);
    assert!(
        span + Duration::from_millis(40) >= nominal && span <= nominal + Duration::from_secs(1),
        "{codec:?}: {} packets over {span:?}, expected {nominal:?}",
        sent.len()
    );

    let stream = reassemble(&received, pt);
    assert_eq!((stream.lost, stream.duplicates, stream.out_of_order, stream.ignored), (0, 0, 0, 0), "{codec:?}");
    let decoded = dir.join("received-8k.wav");
    decode_to_wav_8k(&stream.payloads, codec, &dir, &decoded);
    let bare = bare_chain(&reference_speech_for(codec), &[codec], &dir);
    assert!(
        read_wav(&decoded).unwrap() == read_wav(&bare).unwrap(),
        "{codec:?}: received audio differs from the bare codec's"
    );

    let mos = pesq_nb(&reference_speech(8000), &decoded);
    eprintln!("{codec:?} over loopback RTP: {} packets in {span:.2?}, PESQ NB {mos:.3}", received.len());
    assert!(mos >= min_single(codec), "{codec:?}: PESQ NB {mos:.3} < {}", min_single(codec));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn pcmu_peer_over_loopback() {
    loopback(Codec::Pcmu);
}

#[test]
fn pcma_peer_over_loopback() {
    loopback(Codec::Pcma);
}

#[test]
fn g722_peer_over_loopback() {
    loopback(Codec::G722);
}

#[test]
fn opus_peer_over_loopback() {
    loopback(Codec::Opus);
}

/// The bare codec chains the rms-in-the-middle tests compare with: each codec followed by the
/// G.711 leg it is bridged to, scored at the G.711 side. Each must clear the threshold
/// by itself (3.8 for G.711 to G.711, 3.5 for G.722 and Opus), else no rms could, and score below
/// its first codec alone (the second codec really is applied).
#[test]
fn bare_codec_chains_clear_the_acceptance_thresholds() {
    let dir = work_dir("bare-chains");
    let chains: [(&[Codec], f64); 4] = [
        (&[Codec::Pcmu, Codec::Pcma], 3.8),
        (&[Codec::Pcma, Codec::Pcmu], 3.8),
        (&[Codec::G722, Codec::Pcmu], 3.5),
        (&[Codec::Opus, Codec::Pcmu], 3.5),
    ];
    for (chain, threshold) in chains {
        let alone = bare_chain_pesq(&chain[..1], &dir);
        let mos = bare_chain_pesq(chain, &dir);
        eprintln!("bare chain {chain:?}: PESQ NB {mos:.3} ({:?} alone: {alone:.3})", chain[0]);
        assert!(mos >= threshold, "bare chain {chain:?}: PESQ NB {mos:.3} < {threshold}");
        assert!(mos < alone, "bare chain {chain:?}: PESQ NB {mos:.3}, not below {:?} alone ({alone:.3})", chain[0]);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Decoding with lost packets (payloads dropped before decoding, no network): each lost packet
/// is 20 ms of silence in its place, and PESQ scores a 20 % loss far below the clean stream.
#[test]
fn lost_packets_decode_as_silence_and_score_lower() {
    let dir = work_dir("lost");
    let reference = reference_speech(8000);
    for codec in Codec::ALL {
        let payloads: Vec<Option<Vec<u8>>> =
            encode(&reference_speech_for(codec), codec, &dir).into_iter().map(Some).collect();
        let lossy: Vec<Option<Vec<u8>>> =
            payloads.iter().enumerate().map(|(i, p)| if i % 5 == 2 { None } else { p.clone() }).collect();
        let clean = decode(&payloads, codec, &dir);
        let degraded = decode(&lossy, codec, &dir);
        assert_eq!(degraded.len(), clean.len(), "{codec:?}: lost packets keep their place");
        let per_packet = codec.decoder_rate() as usize / 50;
        for (i, (lost, whole)) in degraded.chunks(per_packet).zip(clean.chunks(per_packet)).enumerate() {
            if i % 5 == 2 {
                assert!(lost.iter().all(|&s| s == 0), "{codec:?}: lost packet {i} is not silence");
            } else if codec != Codec::Opus && codec != Codec::G722 {
                // Stateless G.711 decodes each received packet as if nothing were lost.
                assert_eq!(lost, whole, "{codec:?}: packet {i}");
            }
        }
        let (clean_wav, lossy_wav) = (dir.join("clean.wav"), dir.join("lossy.wav"));
        write_wav(&clean_wav, codec.decoder_rate(), &clean).unwrap();
        write_wav(&lossy_wav, codec.decoder_rate(), &degraded).unwrap();
        let (clean_mos, lossy_mos) = (pesq_nb(&reference, &clean_wav), pesq_nb(&reference, &lossy_wav));
        eprintln!("{codec:?}: PESQ NB {clean_mos:.3} clean, {lossy_mos:.3} with 20 % of packets lost");
        assert!(clean_mos >= min_single(codec), "{codec:?}: clean PESQ NB {clean_mos:.3}");
        assert!(lossy_mos <= clean_mos - 1.0, "{codec:?}: 20 % loss scores {lossy_mos:.3}, clean {clean_mos:.3}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Over the wire: a PCMU stream starting just before the sequence number wraps, with every fifth
/// packet dropped and some pairs swapped, is put back in order with the drops counted as lost,
/// and scores far below the clean stream.
#[test]
fn reordered_and_lost_packets_over_loopback() {
    let dir = work_dir("impaired");
    let codec = Codec::Pcmu;
    let payloads = encode(&reference_speech(8000), codec, &dir);
    let mut params = StreamParams::new(0, 5);
    params.first_sequence = 65_500;
    let all = packetize(&payloads, codec, params);
    let lost = |i: usize| i % 5 == 2;
    let mut impaired: Vec<RtpPacket> =
        all.iter().enumerate().filter(|(i, _)| !lost(*i)).map(|(_, p)| p.clone()).collect();
    let mut swapped = 0;
    for pair in impaired.chunks_mut(2).step_by(3) {
        pair.reverse();
        swapped += pair.len() / 2;
    }

    let stream = reassemble(&over_loopback(&impaired), 0);
    assert_eq!((stream.received, stream.duplicates, stream.ignored), (impaired.len(), 0, 0));
    assert_eq!(stream.lost, (0..all.len()).filter(|&i| lost(i)).count());
    assert_eq!(stream.out_of_order, swapped, "each swapped pair has one late packet");
    assert_eq!(stream.payloads.len(), all.len());
    for (i, (slot, original)) in stream.payloads.iter().zip(&all).enumerate() {
        assert_eq!(slot, &(!lost(i)).then(|| original.payload.clone()), "slot {i} after reassembly");
    }

    let (clean, lossy) = (dir.join("clean.wav"), dir.join("lossy.wav"));
    decode_to_wav_8k(&payloads.iter().cloned().map(Some).collect::<Vec<_>>(), codec, &dir, &clean);
    decode_to_wav_8k(&stream.payloads, codec, &dir, &lossy);
    let reference = reference_speech(8000);
    let (clean_mos, lossy_mos) = (pesq_nb(&reference, &clean), pesq_nb(&reference, &lossy));
    eprintln!("PCMU over loopback: PESQ NB {clean_mos:.3} clean, {lossy_mos:.3} with 20 % lost and pairs swapped");
    assert!(lossy_mos <= clean_mos - 1.0, "20 % loss scores {lossy_mos:.3}, clean {clean_mos:.3}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The Ogg Opus writer and reader agree (CRC, lacing of packets of 255 bytes and more), and Opus
/// durations come from the TOC byte (RFC 6716 §3.1).
#[test]
fn ogg_opus_round_trip_and_toc_durations() {
    // TOC config 1 (SILK NB 20 ms), 12 (hybrid 10 ms), 31 (CELT FB 20 ms); code 0 one frame,
    // code 1 two, code 3 with its frame count in the next byte.
    assert_eq!(opus_packet_samples(&[1 << 3]), 960);
    assert_eq!(opus_packet_samples(&[12 << 3]), 480);
    assert_eq!(opus_packet_samples(&[(31 << 3) | 1, 0, 0]), 1920);
    assert_eq!(opus_packet_samples(&[(16 << 3) | 3, 6]), 720);
    let packets: Vec<Vec<u8>> = [1, 254, 255, 256, 600].iter().map(|&n| vec![(31 << 3) as u8; n]).collect();
    let parsed = ogg_packets(&ogg_opus(&packets)).unwrap();
    assert!(parsed[0].starts_with(b"OpusHead") && parsed[1].starts_with(b"OpusTags"));
    assert_eq!(parsed[2..], packets[..]);
    let mut corrupt = ogg_opus(&packets);
    let last = corrupt.len() - 1;
    corrupt[last] ^= 1;
    let error = ogg_packets(&corrupt).expect_err("a corrupted page passes the CRC");
    assert!(error.starts_with("bad CRC"), "{error}");
}
