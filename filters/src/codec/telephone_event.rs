//! RFC 4733 telephone-event payload (DTMF and other named events carried in RTP).
//!
//! One event per packet, 4 octets (§2.3):
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |     event     |E|R| volume    |          duration             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//! All packets of one event carry the event's start timestamp; the duration grows from it, and the
//! end packet (E bit) is sent three times (§2.5.1.4). Several events in one packet use RFC 2198
//! redundancy, a payload type of its own, so any other length here is malformed.

/// Payload length of one event (§2.3).
pub const PAYLOAD_LEN: usize = 4;

/// One decoded event payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    /// Event code (§3.2: 0-9, *, #, A-D are 0-15 for DTMF).
    pub event: u8,
    /// E bit: this packet reports the end of the event (§2.3.2).
    pub end: bool,
    /// Power level in -dBm0, 0..=63 (§2.3.4).
    pub volume: u8,
    /// Duration so far, in RTP timestamp units from the event's start timestamp (§2.3.5).
    pub duration: u16,
}

/// Why a payload is not a telephone-event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("telephone-event payload is {0} bytes, not {PAYLOAD_LEN}")]
    Length(usize),
}

impl TelephoneEvent {
    /// Read one event payload. The reserved R bit is ignored, as §2.3.3 asks of receivers.
    pub fn parse(payload: &[u8]) -> Result<Self, EventError> {
        let &[event, flags, hi, lo] = payload else {
            return Err(EventError::Length(payload.len()));
        };
        Ok(Self { event, end: flags & 0x80 != 0, volume: flags & 0x3f, duration: u16::from_be_bytes([hi, lo]) })
    }

    /// The 4-octet payload (R bit 0; a volume above 63 keeps its low 6 bits).
    pub fn to_bytes(self) -> [u8; PAYLOAD_LEN] {
        let [hi, lo] = self.duration.to_be_bytes();
        [self.event, u8::from(self.end) << 7 | (self.volume & 0x3f), hi, lo]
    }

    /// The same event with its duration converted from a `from` Hz clock to a `to` Hz clock
    /// (a bridge between legs of different clock rates), saturating at the field's 16 bits.
    pub fn rescaled(self, from: u32, to: u32) -> Self {
        if from == to || from == 0 {
            return self;
        }
        let d = u64::from(self.duration) * u64::from(to) / u64::from(from);
        Self { duration: u16::try_from(d).unwrap_or(u16::MAX), ..self }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_builds_the_rfc_layout() {
        // Digit 5, end bit, reserved bit set (ignored), volume 10, duration 800 (100 ms at 8 kHz).
        let bytes = [5, 0x80 | 0x40 | 10, 0x03, 0x20];
        let e = TelephoneEvent::parse(&bytes).unwrap();
        assert_eq!(e, TelephoneEvent { event: 5, end: true, volume: 10, duration: 800 });
        assert_eq!(e.to_bytes(), [5, 0x80 | 10, 0x03, 0x20], "R is sent as 0");
        let start = TelephoneEvent { event: 11, end: false, volume: 63, duration: 0 };
        assert_eq!(TelephoneEvent::parse(&start.to_bytes()), Ok(start));
    }

    #[test]
    fn every_other_length_is_malformed() {
        for len in [0, 1, 3, 5, 8, 12] {
            assert_eq!(TelephoneEvent::parse(&vec![0; len]), Err(EventError::Length(len)), "{len}");
        }
    }

    #[test]
    fn durations_rescale_between_clock_rates_and_saturate() {
        let e = TelephoneEvent { event: 1, end: false, volume: 10, duration: 800 };
        assert_eq!(e.rescaled(8000, 48000).duration, 4800);
        assert_eq!(e.rescaled(48000, 8000).duration, 133);
        assert_eq!(e.rescaled(8000, 8000), e);
        let long = TelephoneEvent { duration: 20_000, ..e };
        assert_eq!(long.rescaled(8000, 48000).duration, u16::MAX);
    }
}
