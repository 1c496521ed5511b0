//! `dtmf_gen`: plays RFC 4733 telephone-events as in-band DTMF tones, for a leg that did not negotiate
//! telephone-event (a gateway between an RFC 4733 endpoint and one that only hears audio).
//!
//! Input 0 is the leg's audio (at `rate`), input 1 the other leg's event packets. While an event is on,
//! the audio is replaced by the event's two ITU-T Q.23 frequencies, 10 ms per tick (the node pumps, as
//! senders often send no audio during an event), at the event's volume: the pair's total power is
//! −volume dBm0. Otherwise the audio passes untouched.
//!
//! Events follow RFC 4733 §2.5.2: packets with the timestamp of the event playing update it; a new
//! timestamp starts a new event; the end packet (E bit, sent three times) sets the tone's length to
//! the event's duration, and later copies are ignored. An event whose packets stop for
//! [`EVENT_TIMEOUT`] ends there (its end packets were lost). A tone lasts at least [`MIN_TONE`], the
//! shortest digit receivers must accept (Q.24). Events other than the 16 DTMF digits are counted and
//! ignored.

use std::time::Duration;

use crate::codec::telephone_event::TelephoneEvent;
use crate::filter::{Filter, FilterDesc, FilterError, ProcessCx};
use crate::frame::{AudioFrame, Frame};
use crate::level::DBM0_RMS;
use crate::nodes::tone_gen::dual_tone;

/// An event with no packet for this long is over (a few lost end packets at a 50 ms update rate).
pub const EVENT_TIMEOUT: Duration = Duration::from_millis(250);
/// The shortest tone played.
pub const MIN_TONE: Duration = Duration::from_millis(40);

const NAME: &str = "dtmf_gen";

/// Q.23 low and high group frequencies of event codes 0-15 (0-9, *, #, A-D; RFC 4733 §3.2).
const DTMF: [[f64; 2]; 16] = [
    [941.0, 1336.0],
    [697.0, 1209.0],
    [697.0, 1336.0],
    [697.0, 1477.0],
    [770.0, 1209.0],
    [770.0, 1336.0],
    [770.0, 1477.0],
    [852.0, 1209.0],
    [852.0, 1336.0],
    [852.0, 1477.0],
    [941.0, 1209.0],
    [941.0, 1477.0],
    [697.0, 1633.0],
    [770.0, 1633.0],
    [852.0, 1633.0],
    [941.0, 1633.0],
];

/// What the node did, for the leg's statistics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DtmfGenStats {
    /// Events played as tones.
    pub played: u64,
    /// Events that are not DTMF digits, or malformed payloads.
    pub ignored: u64,
    /// Events ended by [`EVENT_TIMEOUT`] rather than an end packet.
    pub timed_out: u64,
}

impl DtmfGenStats {
    /// Add a removed node's counts to the leg's.
    pub fn merge(&mut self, other: DtmfGenStats) {
        self.played += other.played;
        self.ignored += other.ignored;
        self.timed_out += other.timed_out;
    }
}

/// The event being played.
#[derive(Debug, Clone, Copy)]
struct Tone {
    /// The event's RTP timestamp: its identity (§2.5.2.1).
    timestamp: u32,
    freqs: [f64; 2],
    /// Peak of each sine.
    amplitude: f64,
    /// Samples played so far (also the sines' phase).
    played: u64,
    /// Set by the end packet: samples to play in all.
    length: Option<u64>,
    /// When the last packet of the event arrived.
    last_packet: Duration,
}

#[derive(Debug)]
pub struct DtmfGen {
    rate: u32,
    /// The clock rate of the events' durations.
    event_clock: u32,
    tone: Option<Tone>,
    /// Timestamp of the last event that ended: its retransmitted end packets are not a new event.
    ended: Option<u32>,
    stats: DtmfGenStats,
}

impl DtmfGen {
    pub const DESC: FilterDesc = FilterDesc { name: NAME, inputs: 2, outputs: 1, pump: true };

    /// Tones at `rate` Hz for events whose durations count at `event_clock` Hz.
    pub fn new(rate: u32, event_clock: u32) -> Self {
        Self { rate, event_clock, tone: None, ended: None, stats: DtmfGenStats::default() }
    }

    pub fn stats(&self) -> DtmfGenStats {
        self.stats
    }

    /// Samples at our rate for `units` of the event clock.
    fn samples(&self, units: u64) -> u64 {
        units * u64::from(self.rate) / u64::from(self.event_clock.max(1))
    }

    fn min_tone(&self) -> u64 {
        MIN_TONE.as_millis() as u64 * u64::from(self.rate) / 1000
    }

    /// Account one event packet that arrived at `now`.
    fn event(&mut self, now: Duration, timestamp: u32, payload: &[u8]) {
        let Ok(event) = TelephoneEvent::parse(payload) else {
            self.stats.ignored += 1;
            return;
        };
        let current = self.tone.as_ref().is_some_and(|t| t.timestamp == timestamp);
        if !current && self.ended == Some(timestamp) {
            return;
        }
        if !current {
            let Some(&freqs) = DTMF.get(usize::from(event.event)) else {
                self.stats.ignored += 1;
                self.ended = Some(timestamp);
                return;
            };
            self.finish();
            // Total power −volume dBm0, split evenly: each sine 3 dB below, peak = RMS · √2.
            let rms = DBM0_RMS * 10f64.powf((-f64::from(event.volume) - 3.0103) / 20.0);
            let tone = Tone {
                timestamp,
                freqs,
                amplitude: rms * std::f64::consts::SQRT_2,
                played: 0,
                length: None,
                last_packet: now,
            };
            self.tone = Some(tone);
            self.stats.played += 1;
        }
        let length = event.end.then(|| self.samples(u64::from(event.duration)).max(self.min_tone()));
        if let Some(tone) = self.tone.as_mut() {
            tone.last_packet = now;
            if length.is_some() {
                tone.length = length;
            }
        }
    }

    /// End the tone in progress.
    fn finish(&mut self) {
        if let Some(tone) = self.tone.take() {
            self.ended = Some(tone.timestamp);
        }
    }

    /// End the tone if it has played its length, or its packets stopped coming.
    fn expire(&mut self, now: Duration) {
        let min_tone = self.min_tone();
        let Some(tone) = self.tone.as_mut() else { return };
        if tone.length.is_none() && now.saturating_sub(tone.last_packet) >= EVENT_TIMEOUT {
            tone.length = Some(tone.played.max(min_tone));
            self.stats.timed_out += 1;
        }
        if tone.length.is_some_and(|l| tone.played >= l) {
            self.finish();
        }
    }

    /// The next 10 ms of the tone (less if it ends sooner).
    fn tone_frame(&mut self) -> Option<AudioFrame> {
        let tone = self.tone.as_mut()?;
        let left = tone.length.map_or(u64::MAX, |l| l.saturating_sub(tone.played));
        let n = (u64::from(self.rate) / 100).min(left);
        let samples = dual_tone(self.rate, tone.freqs, tone.amplitude, tone.played, n);
        tone.played += n;
        Some(AudioFrame::new(samples, self.rate))
    }
}

impl Filter for DtmfGen {
    fn desc(&self) -> FilterDesc {
        Self::DESC
    }

    fn process(&mut self, cx: &mut ProcessCx<'_>) -> Result<(), FilterError> {
        while let Some(frame) = cx.pop(1) {
            let Frame::Rtp(rtp) = frame else {
                return Err(FilterError::UnexpectedFrame { filter: NAME, pin: 1, expected: "rtp", got: frame.kind() });
            };
            self.event(cx.now, rtp.timestamp, &rtp.payload);
        }
        self.expire(cx.now);
        let playing = self.tone.is_some();
        while let Some(audio) = cx.pop_audio(0, NAME)? {
            // The sender's own audio during an event is the tone or silence (RFC 4733 §2.5.1.1): ours
            // replaces it.
            if !playing {
                cx.push(0, audio);
            }
        }
        if let Some(frame) = self.tone_frame() {
            cx.push(0, frame);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::RtpFrame;
    use crate::testing::{goertzel_ratio, rms_level, sine, FilterHarness};

    fn event(timestamp: u32, code: u8, end: bool, duration: u16) -> RtpFrame {
        let payload = TelephoneEvent { event: code, end, volume: 10, duration }.to_bytes().to_vec();
        RtpFrame { ssrc: 1, seq: 0, timestamp, payload_type: 101, marker: false, payload }
    }

    /// Runs `ticks` ticks; before each, 10 ms of a 500 Hz "voice" (whole cycles) on input 0 (if `voice`) and the events
    /// scheduled for that tick on input 1. Returns the samples out.
    fn run(h: &mut FilterHarness<DtmfGen>, ticks: u64, voice: bool, events: &[(u64, RtpFrame)]) -> Vec<i16> {
        let mut out = Vec::new();
        for _ in 0..ticks {
            if voice {
                h.push(0, AudioFrame::new(sine(8000, 500.0, 3000.0, 80), 8000));
            }
            let tick = h.tick;
            for (_, e) in events.iter().filter(|(t, _)| *t == tick) {
                h.push(1, e.clone());
            }
            h.run().unwrap();
            out.extend(h.take_samples(0));
        }
        out
    }

    /// RFC 4733 §2.5.1 as senders do it: an update every 50 ms, three end packets.
    fn digit(start_tick: u64, timestamp: u32, code: u8, ms: u64) -> Vec<(u64, RtpFrame)> {
        let mut v: Vec<(u64, RtpFrame)> =
            (0..ms / 50).map(|k| (start_tick + k * 5, event(timestamp, code, false, (k * 400) as u16))).collect();
        let end = start_tick + ms / 10;
        v.extend((0..3).map(|k| (end + k, event(timestamp, code, true, (ms * 8) as u16))));
        v
    }

    #[test]
    fn a_digit_replaces_the_audio_with_its_two_tones_for_its_duration() {
        let mut h = FilterHarness::new(DtmfGen::new(8000, 8000));
        // Digit 5 (770 + 1336 Hz), 100 ms, starting at tick 10, in a 30-tick call with voice.
        let out = run(&mut h, 30, true, &digit(10, 8000, 5, 100));
        assert_eq!(out.len(), 30 * 80, "one frame a tick, tone or voice");
        let (before, tone, after) = (&out[..800], &out[800..1600], &out[1600..]);
        assert!(goertzel_ratio(before, 8000, 500.0) > 0.95);
        let pair = goertzel_ratio(tone, 8000, 770.0) + goertzel_ratio(tone, 8000, 1336.0);
        assert!(pair > 0.95, "770 + 1336 Hz carry {pair:.3} of the tone");
        assert!(goertzel_ratio(tone, 8000, 500.0) < 0.01, "no voice under the tone");
        // Volume 10: −10 dBm0 in all, RMS 16 096 · 10^(−10/20) = 5090.
        let level = rms_level(tone);
        assert!((level - 5090.0).abs() < 50.0, "RMS {level:.0}");
        assert!(goertzel_ratio(after, 8000, 500.0) > 0.95, "voice again after the end");
        assert_eq!(h.filter.stats(), DtmfGenStats { played: 1, ignored: 0, timed_out: 0 });
    }

    #[test]
    fn tones_play_without_audio_and_retransmitted_ends_are_not_new_digits() {
        let mut h = FilterHarness::new(DtmfGen::new(16000, 8000));
        // Digit 1 for 60 ms, then digit # 100 ms later; the sender sends no audio meanwhile.
        let mut events = digit(0, 1000, 1, 60);
        events.extend(digit(16, 2000, 11, 80));
        let out = run(&mut h, 40, false, &events);
        // 60 ms and 80 ms at 16 kHz: the end packets' durations (480 and 640 units of 8 kHz).
        assert_eq!(out.len(), 960 + 1280);
        let (one, hash) = out.split_at(960);
        assert!(goertzel_ratio(one, 16000, 697.0) + goertzel_ratio(one, 16000, 1209.0) > 0.95);
        assert!(goertzel_ratio(hash, 16000, 941.0) + goertzel_ratio(hash, 16000, 1477.0) > 0.95);
        assert_eq!(h.filter.stats().played, 2);
    }

    #[test]
    fn lost_end_packets_end_the_tone_after_the_timeout() {
        let mut h = FilterHarness::new(DtmfGen::new(8000, 8000));
        let events: Vec<_> = digit(0, 500, 9, 100).into_iter().filter(|(_, e)| e.payload[1] & 0x80 == 0).collect();
        let out = run(&mut h, 60, false, &events);
        // Last update at tick 5 (50 ms): the tone stops 250 ms later, at 300 ms.
        assert_eq!(out.len(), 300 * 8);
        assert_eq!(h.filter.stats().timed_out, 1);
    }

    #[test]
    fn short_events_last_the_minimum_and_other_events_are_ignored() {
        let mut h = FilterHarness::new(DtmfGen::new(8000, 8000));
        // A 10 ms digit is stretched to 40 ms; event 16 (flash) and a bad payload are not tones.
        let mut bad = event(7000, 3, false, 0);
        bad.payload.truncate(3);
        let events = [(0, event(100, 4, true, 80)), (10, event(900, 16, false, 0)), (12, bad)];
        let out = run(&mut h, 20, false, &events);
        assert_eq!(out.len(), 320);
        assert_eq!(h.filter.stats(), DtmfGenStats { played: 1, ignored: 2, timed_out: 0 });
        h.push(1, AudioFrame::new(vec![0; 80], 8000));
        assert!(h.run().is_err(), "events are RTP");
    }
}
