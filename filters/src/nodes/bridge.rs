//! `bridge_out` and `bridge_in`: where frames leave one leg's graph and enter the other's (mediastreamer2's
//! ITC sink and source). The graphs' owner moves what a `bridge_out` collected into the other leg's
//! `bridge_in` between the receive and the send half of a tick, so crossing adds no delay either way.
//!
//! - `bridge_out`: input 0 media (received RTP to relay, or decoded audio to transcode), input 1 RFC 4733
//!   telephone-events; output 0 passes the media on (a copy, made only when linked: a recording).
//! - `bridge_in`: output 0 media, output 1 telephone-events, rewritten for this leg by its [`BridgeMap`]:
//!   payload types, and event durations to this leg's clock rate. When relaying, events go out with the
//!   media on output 0 (the relay's offsets place them); when transcoding, on output 1 (to be retimed,
//!   or played in-band by `dtmf_gen` when this leg has no telephone-event).

use std::collections::VecDeque;

use crate::codec::telephone_event::TelephoneEvent;
use crate::filter::{Filter, FilterDesc, FilterError, ProcessCx};
use crate::frame::{Frame, RtpFrame};

/// Frames a bridge node holds at most per queue (its owner empties it every tick); beyond, the oldest
/// is dropped and counted.
const MAX_HELD: usize = 64;

/// Collects a leg's received media and events for the other leg.
#[derive(Debug, Default)]
pub struct BridgeOut {
    media: VecDeque<Frame>,
    events: VecDeque<RtpFrame>,
    /// Frames dropped because the owner did not take them in time.
    pub overflow: u64,
}

impl BridgeOut {
    pub const DESC: FilterDesc = FilterDesc { name: "bridge_out", inputs: 2, outputs: 1, pump: false };

    pub fn new() -> Self {
        Self::default()
    }

    /// Move what was collected since the last call to the end of `media` and `events`.
    pub fn take(&mut self, media: &mut Vec<Frame>, events: &mut Vec<RtpFrame>) {
        media.extend(self.media.drain(..));
        events.extend(self.events.drain(..));
    }
}

impl Filter for BridgeOut {
    fn desc(&self) -> FilterDesc {
        Self::DESC
    }

    fn process(&mut self, cx: &mut ProcessCx<'_>) -> Result<(), FilterError> {
        while let Some(frame) = cx.pop(0) {
            if cx.is_linked(0) {
                cx.push(0, frame.clone());
            }
            self.overflow += hold(&mut self.media, frame);
        }
        while let Some(frame) = cx.pop(1) {
            let Frame::Rtp(event) = frame else {
                return Err(FilterError::UnexpectedFrame {
                    filter: "bridge_out",
                    pin: 1,
                    expected: "rtp",
                    got: frame.kind(),
                });
            };
            self.overflow += hold(&mut self.events, event);
        }
        Ok(())
    }
}

/// Queue `item`, dropping the oldest when full; returns how many were dropped.
fn hold<T>(queue: &mut VecDeque<T>, item: T) -> u64 {
    let dropped = if queue.len() >= MAX_HELD { u64::from(queue.pop_front().is_some()) } else { 0 };
    queue.push_back(item);
    dropped
}

/// How the other leg's frames are rewritten for this one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BridgeMap {
    /// Media payload type (relay): as received on the other leg, as sent on this one.
    pub media_pt: (u8, u8),
    /// What becomes of the other leg's telephone-events; `None` when it negotiated none.
    pub events: Option<EventRoute>,
    /// Relaying: events go out with the media on output 0.
    pub relay: bool,
}

/// The other leg's telephone-events on this leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventRoute {
    /// Both legs negotiated telephone-event: sent as events, remapped.
    Relay(EventMap),
    /// Only the other leg did (its payload type and clock rate): they leave on output 1 as they
    /// came, for `dtmf_gen` to play in-band.
    InBand { pt: u8, clock_rate: u32 },
}

/// Telephone-event payload types and clock rates: the other leg's, this leg's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventMap {
    pub pt: (u8, u8),
    pub clock_rate: (u32, u32),
}

/// Releases the other leg's frames into this leg's send graph.
#[derive(Debug)]
pub struct BridgeIn {
    map: BridgeMap,
    media: VecDeque<Frame>,
    events: VecDeque<RtpFrame>,
    /// Frames dropped: not of the mapped payload types, malformed events, or overflow.
    pub dropped: u64,
}

impl BridgeIn {
    pub const DESC: FilterDesc = FilterDesc { name: "bridge_in", inputs: 0, outputs: 2, pump: false };

    pub fn new(map: BridgeMap) -> Self {
        Self { map, media: VecDeque::new(), events: VecDeque::new(), dropped: 0 }
    }

    pub fn set_map(&mut self, map: BridgeMap) {
        self.map = map;
    }

    /// Queue the other leg's frames for the next tick, emptying `media` and `events`.
    pub fn push(&mut self, media: &mut Vec<Frame>, events: &mut Vec<RtpFrame>) {
        for frame in media.drain(..) {
            self.dropped += hold(&mut self.media, frame);
        }
        for event in events.drain(..) {
            self.dropped += hold(&mut self.events, event);
        }
    }

    /// Drop what is queued (the bridge changed mode).
    pub fn clear(&mut self) {
        self.media.clear();
        self.events.clear();
    }
}

impl Filter for BridgeIn {
    fn desc(&self) -> FilterDesc {
        Self::DESC
    }

    fn process(&mut self, cx: &mut ProcessCx<'_>) -> Result<(), FilterError> {
        let map = self.map;
        while let Some(frame) = self.media.pop_front() {
            match frame {
                Frame::Rtp(mut rtp) if rtp.payload_type == map.media_pt.0 => {
                    rtp.payload_type = map.media_pt.1;
                    cx.push(0, rtp);
                }
                Frame::Rtp(_) => self.dropped += 1,
                other => cx.push(0, other),
            }
        }
        while let Some(mut rtp) = self.events.pop_front() {
            let events = match map.events {
                Some(EventRoute::Relay(events)) if events.pt.0 == rtp.payload_type => events,
                Some(EventRoute::InBand { pt, .. }) if pt == rtp.payload_type => {
                    cx.push(1, rtp);
                    continue;
                }
                _ => {
                    self.dropped += 1;
                    continue;
                }
            };
            let Ok(event) = TelephoneEvent::parse(&rtp.payload) else {
                self.dropped += 1;
                continue;
            };
            let (from, to) = events.clock_rate;
            rtp.payload.clear();
            rtp.payload.extend_from_slice(&event.rescaled(from, to).to_bytes());
            rtp.payload_type = events.pt.1;
            cx.push(if map.relay { 0 } else { 1 }, rtp);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::AudioFrame;
    use crate::testing::FilterHarness;

    fn rtp(pt: u8, payload: Vec<u8>) -> RtpFrame {
        RtpFrame { ssrc: 1, seq: 1, timestamp: 0, payload_type: pt, marker: false, payload }
    }

    fn event_payload(duration: u16) -> Vec<u8> {
        TelephoneEvent { event: 1, end: false, volume: 10, duration }.to_bytes().to_vec()
    }

    #[test]
    fn bridge_out_collects_both_inputs_and_copies_media_on_when_linked() {
        let mut h = FilterHarness::new(BridgeOut::new());
        h.push(0, AudioFrame::new(vec![1, 2], 8000));
        h.push(1, rtp(101, event_payload(0)));
        h.run().unwrap();
        assert_eq!(h.take_samples(0), vec![1, 2], "the harness links output 0");
        let (mut media, mut events) = (Vec::new(), Vec::new());
        h.filter.take(&mut media, &mut events);
        assert_eq!(media, vec![Frame::Audio(AudioFrame::new(vec![1, 2], 8000))]);
        assert_eq!(events.len(), 1);
        h.push(1, AudioFrame::new(vec![1], 8000));
        assert!(h.run().is_err(), "events must be RTP");
    }

    #[test]
    fn bridge_out_keeps_the_newest_when_nobody_takes() {
        let mut h = FilterHarness::new(BridgeOut::new());
        for k in 0..(MAX_HELD + 3) {
            h.push(0, AudioFrame::new(vec![k as i16], 8000));
        }
        h.run().unwrap();
        assert_eq!(h.filter.overflow, 3);
        let (mut media, mut events) = (Vec::new(), Vec::new());
        h.filter.take(&mut media, &mut events);
        assert_eq!(media.first(), Some(&Frame::Audio(AudioFrame::new(vec![3], 8000))));
    }

    #[test]
    fn bridge_in_maps_payload_types_and_rescales_events() {
        let events = Some(EventRoute::Relay(EventMap { pt: (101, 96), clock_rate: (8000, 48000) }));
        let mut h = FilterHarness::new(BridgeIn::new(BridgeMap { media_pt: (0, 0), events, relay: false }));
        let mut media = vec![Frame::Audio(AudioFrame::new(vec![5], 8000))];
        let mut evs = vec![rtp(101, event_payload(160)), rtp(100, event_payload(160)), rtp(101, vec![1])];
        h.filter.push(&mut media, &mut evs);
        assert!(media.is_empty() && evs.is_empty());
        h.run().unwrap();
        assert_eq!(h.take_samples(0), vec![5]);
        let out = h.take(1);
        assert_eq!(out, vec![Frame::Rtp(rtp(96, event_payload(960)))]);
        assert_eq!(h.filter.dropped, 2, "another payload type and a malformed event");
    }

    #[test]
    fn in_band_events_leave_on_output_1_as_they_came() {
        let events = Some(EventRoute::InBand { pt: 101, clock_rate: 8000 });
        let mut h = FilterHarness::new(BridgeIn::new(BridgeMap { media_pt: (0, 0), events, relay: false }));
        h.filter.push(&mut Vec::new(), &mut vec![rtp(101, event_payload(160)), rtp(96, event_payload(160))]);
        h.run().unwrap();
        assert_eq!(h.take(1), vec![Frame::Rtp(rtp(101, event_payload(160)))]);
        assert_eq!(h.filter.dropped, 1, "another payload type");
    }

    #[test]
    fn relaying_bridge_in_maps_media_and_sends_events_with_it() {
        let events = Some(EventRoute::Relay(EventMap { pt: (101, 100), clock_rate: (8000, 8000) }));
        let mut h = FilterHarness::new(BridgeIn::new(BridgeMap { media_pt: (8, 96), events, relay: true }));
        h.filter.push(
            &mut vec![Frame::Rtp(rtp(8, vec![1])), Frame::Rtp(rtp(0, vec![2]))],
            &mut vec![rtp(101, event_payload(80))],
        );
        h.run().unwrap();
        let out = h.take(0);
        assert_eq!(out, vec![Frame::Rtp(rtp(96, vec![1])), Frame::Rtp(rtp(100, event_payload(80)))]);
        assert!(h.take(1).is_empty());
        assert_eq!(h.filter.dropped, 1);
    }
}
