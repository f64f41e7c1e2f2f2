//! A WebSocket relayed byte for byte between a client and the upstream, closed with 1001
//! (going away) on both sides when the server drains. A close frame may only go between two
//! frames, so each direction's bytes are followed for their frame boundaries (RFC 6455
//! §5.2); nothing is decoded or changed.

/// Where the frames of one direction of a relayed WebSocket are, as its bytes pass.
#[derive(Clone, Debug, Default)]
pub struct FrameCursor {
    /// The frame header read so far (at most 14 bytes: 2, an 8-byte length, a 4-byte mask).
    header: [u8; 14],
    have: usize,
    /// Payload bytes still to pass in the current frame.
    payload: u64,
}

impl FrameCursor {
    /// At the start of a frame.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the bytes passed so far end between two frames (where a frame may be sent).
    pub fn at_boundary(&self) -> bool {
        self.have == 0 && self.payload == 0
    }

    /// Follows `bytes`, the next ones in this direction, and says how many to pass on: all
    /// of them, or with `stop_at_boundary`, those that end the frame under way (none at a
    /// boundary): then a frame of certauth's own may follow.
    pub fn pass(&mut self, bytes: &[u8], stop_at_boundary: bool) -> usize {
        let mut used = 0;
        while used < bytes.len() {
            if stop_at_boundary && self.at_boundary() {
                break;
            }
            if self.payload > 0 {
                let left = bytes.len() - used;
                let n = usize::try_from(self.payload).map_or(left, |p| p.min(left));
                used += n;
                self.payload -= u64::try_from(n).unwrap_or(self.payload);
                continue;
            }
            self.header[self.have] = bytes[used];
            self.have += 1;
            used += 1;
            if let Some(payload) = self.header_complete() {
                self.have = 0;
                self.payload = payload;
            }
        }
        used
    }

    /// The payload length once the whole header has been read.
    fn header_complete(&self) -> Option<u64> {
        if self.have < 2 {
            return None;
        }
        let masked = self.header[1] & 0x80 != 0;
        let (ext, len7) = match self.header[1] & 0x7f {
            126 => (2, None),
            127 => (8, None),
            n => (0, Some(u64::from(n))),
        };
        let need = 2 + ext + if masked { 4 } else { 0 };
        if self.have < need {
            return None;
        }
        Some(len7.unwrap_or_else(|| {
            self.header[2..2 + ext]
                .iter()
                .fold(0u64, |n, b| (n << 8) | u64::from(*b))
        }))
    }
}

/// A close frame with status 1001 (going away): masked when it goes to a server (the
/// upstream, RFC 6455 §5.3), unmasked to a client.
pub fn going_away_frame(to_server: bool) -> Vec<u8> {
    let payload = 1001u16.to_be_bytes();
    if !to_server {
        return vec![0x88, 0x02, payload[0], payload[1]];
    }
    // The payload is fixed, so the key protects nothing an attacker chose.
    let key = [0x5a, 0x3c, 0xa5, 0xc3];
    vec![
        0x88,
        0x82,
        key[0],
        key[1],
        key[2],
        key[3],
        payload[0] ^ key[0],
        payload[1] ^ key[1],
    ]
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// A frame with `len` payload bytes, masked or not, in each length form.
    fn frame(len: usize, masked: bool) -> Vec<u8> {
        let mut f = vec![0x82];
        let m = if masked { 0x80 } else { 0 };
        match len {
            0..=125 => f.push(m | u8::try_from(len).unwrap()),
            126..=65535 => {
                f.push(m | 126);
                f.extend_from_slice(&u16::try_from(len).unwrap().to_be_bytes());
            }
            _ => {
                f.push(m | 127);
                f.extend_from_slice(&u64::try_from(len).unwrap().to_be_bytes());
            }
        }
        if masked {
            f.extend_from_slice(&[1, 2, 3, 4]);
        }
        f.extend(std::iter::repeat_n(7, len));
        f
    }

    #[test]
    fn boundaries_in_every_length_form_and_split_anywhere() {
        let frames: Vec<Vec<u8>> = [
            (0, false),
            (5, true),
            (125, false),
            (126, true),
            (70_000, false),
        ]
        .iter()
        .map(|(l, m)| frame(*l, *m))
        .collect();
        let wire: Vec<u8> = frames.concat();
        let ends: Vec<usize> = frames
            .iter()
            .scan(0, |at, f| {
                *at += f.len();
                Some(*at)
            })
            .collect();
        for step in [1, 3, 7, 1000, wire.len()] {
            let mut c = FrameCursor::new();
            let mut at = 0;
            for chunk in wire.chunks(step) {
                assert_eq!(c.pass(chunk, false), chunk.len());
                at += chunk.len();
                assert_eq!(c.at_boundary(), ends.contains(&at), "step {step} at {at}");
            }
        }
        // Stopping at boundaries: from a frame's first byte to its end, then nothing more.
        let mut c = FrameCursor::new();
        let mut at = 0;
        for end in &ends {
            assert_eq!(c.pass(&wire[at..], true), 0);
            at += c.pass(&wire[at..at + 1], false);
            at += c.pass(&wire[at..], true);
            assert_eq!(at, *end);
            assert!(c.at_boundary());
        }
    }

    #[test]
    fn the_going_away_frames_read_as_one_frame() {
        for to_server in [false, true] {
            let f = going_away_frame(to_server);
            let mut c = FrameCursor::new();
            assert_eq!(c.pass(&f, false), f.len());
            assert!(c.at_boundary());
            let payload = if to_server {
                [f[6] ^ f[2], f[7] ^ f[3]]
            } else {
                [f[2], f[3]]
            };
            assert_eq!(u16::from_be_bytes(payload), 1001);
        }
    }
}
