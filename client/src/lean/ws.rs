//! WebSocket framing (RFC 6455, section 5) as a client sees it, without
//! I/O, on tungstenite's own frame types: [`parse_header`] reads a server
//! frame's header from the front of a buffer with
//! [`FrameHeader::parse`] and checks what a client must refuse (a masked
//! frame, reserved bits, a long or fragmented control frame, a payload
//! over the limit); [`write_frame`] appends a masked client frame with
//! [`FrameHeader::format`].
//!
//! The receive path of [`super::Conn`] is built on these two functions so
//! that a message costs a header parse and a slice, with no allocation,
//! no UTF-8 validation and no copy (tungstenite's own reader copies every
//! payload into a fresh buffer).

use std::io::Cursor;

use tokio_tungstenite::tungstenite::error::{Error as WsError, ProtocolError};
pub use tokio_tungstenite::tungstenite::protocol::frame::FrameHeader;
pub use tokio_tungstenite::tungstenite::protocol::frame::coding::{
    CloseCode, Control, Data, OpCode,
};

/// Largest payload a control frame may carry.
const MAX_CONTROL: usize = 125;

/// A parsed frame header: what [`FrameHeader::parse`] read, with the
/// sizes the receive path slices by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Last fragment of its message.
    pub fin: bool,
    /// The frame's opcode.
    pub opcode: OpCode,
    /// Bytes the header itself takes.
    pub header_len: usize,
    /// Payload bytes that follow it.
    pub payload_len: usize,
}

impl Header {
    /// Header and payload together.
    pub fn frame_len(&self) -> usize {
        self.header_len + self.payload_len
    }

    /// Close, ping or pong.
    pub fn is_control(&self) -> bool {
        matches!(self.opcode, OpCode::Control(_))
    }
}

/// A server frame that breaks the protocol: the connection cannot go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The server masked a frame (RFC 6455 5.1: it must not).
    #[error("the server sent a masked frame")]
    Masked,
    /// Reserved bits set without a negotiated extension.
    #[error("reserved bits set in a frame header")]
    Reserved,
    /// An opcode RFC 6455 does not define.
    #[error("unknown opcode {0:#x}")]
    Opcode(u8),
    /// A control frame that is fragmented or longer than 125 bytes.
    #[error("malformed control frame")]
    Control,
    /// A payload longer than the receiver accepts.
    #[error("frame of {0} bytes is over the limit")]
    TooLarge(u64),
    /// A continuation without a message to continue, or a new message
    /// while one is still being assembled.
    #[error("fragments out of order")]
    Fragments,
}

/// Parses the header of the frame at the front of `buf`. `Ok(None)` when
/// `buf` does not hold the whole header yet.
///
/// The headers a server sends for frames under 64 KiB (unmasked, no
/// reserved bits, a 7- or 16-bit length) are read on the spot into
/// tungstenite's [`OpCode`]; every other header goes through
/// [`FrameHeader::parse`]. The receive path pays for this function once
/// per message, and the general parser (an `io::Read` cursor and
/// tungstenite's error type) costs about 120 instructions more per frame;
/// the tests check that both paths read every header alike.
#[inline]
pub fn parse_header(buf: &[u8], max_payload: usize) -> Result<Option<Header>, FrameError> {
    let (fin, opcode, header_len, len) = match *buf {
        [b0, b1, ..] if b0 & 0x70 == 0 && b1 < 126 => {
            (b0 & 0x80 != 0, opcode(b0 & 0x0f), 2, u64::from(b1))
        }
        [b0, 126, hi, lo, ..] if b0 & 0x70 == 0 => (
            b0 & 0x80 != 0,
            opcode(b0 & 0x0f),
            4,
            u64::from(u16::from_be_bytes([hi, lo])),
        ),
        _ => match parse_general(buf)? {
            Some(parsed) => parsed,
            None => return Ok(None),
        },
    };
    if let OpCode::Data(Data::Reserved(op)) | OpCode::Control(Control::Reserved(op)) = opcode {
        return Err(FrameError::Opcode(op));
    }
    let parsed = Header {
        fin,
        opcode,
        header_len,
        payload_len: usize::try_from(len).unwrap_or(usize::MAX),
    };
    if parsed.is_control() && (!parsed.fin || parsed.payload_len > MAX_CONTROL) {
        return Err(FrameError::Control);
    }
    if parsed.payload_len > max_payload {
        return Err(FrameError::TooLarge(len));
    }
    Ok(Some(parsed))
}

/// tungstenite's `OpCode::from(u8)`, inlined: that impl is not marked
/// `#[inline]`, and the call costs a sixth of a header parse.
#[inline]
fn opcode(bits: u8) -> OpCode {
    match bits {
        0 => OpCode::Data(Data::Continue),
        1 => OpCode::Data(Data::Text),
        2 => OpCode::Data(Data::Binary),
        3..=7 => OpCode::Data(Data::Reserved(bits)),
        8 => OpCode::Control(Control::Close),
        9 => OpCode::Control(Control::Ping),
        10 => OpCode::Control(Control::Pong),
        _ => OpCode::Control(Control::Reserved(bits)),
    }
}

/// Any header, through [`FrameHeader::parse`]: fin, opcode, header
/// length and payload length, once reserved bits and a mask are refused.
#[cold]
fn parse_general(buf: &[u8]) -> Result<Option<(bool, OpCode, usize, u64)>, FrameError> {
    let mut cursor = Cursor::new(buf);
    let (header, len) = match FrameHeader::parse(&mut cursor) {
        Ok(Some(parsed)) => parsed,
        Ok(None) => return Ok(None),
        Err(WsError::Protocol(ProtocolError::InvalidOpcode(op))) => {
            return Err(FrameError::Opcode(op));
        }
        // Parsing a slice reads no I/O; an opcode is all it can refuse.
        Err(_) => return Err(FrameError::Opcode(buf[0] & 0x0f)),
    };
    if header.rsv1 || header.rsv2 || header.rsv3 {
        return Err(FrameError::Reserved);
    }
    if header.mask.is_some() {
        return Err(FrameError::Masked);
    }
    let header_len = cursor.position() as usize;
    Ok(Some((header.is_final, header.opcode, header_len, len)))
}

/// Appends a masked client frame (FIN set) carrying `payload` to `out`.
pub fn write_frame(out: &mut Vec<u8>, opcode: OpCode, payload: &[u8], mask: [u8; 4]) {
    let header = FrameHeader {
        opcode,
        mask: Some(mask),
        ..FrameHeader::default()
    };
    header
        .format(payload.len() as u64, out)
        .expect("writing into a Vec cannot fail");
    let start = out.len();
    out.extend_from_slice(payload);
    for (i, b) in out[start..].iter_mut().enumerate() {
        *b ^= mask[i & 3];
    }
}

/// The code of a close frame's payload (`None` when it carries none).
pub fn close_code(payload: &[u8]) -> Option<CloseCode> {
    payload
        .get(..2)
        .map(|b| CloseCode::from(u16::from_be_bytes([b[0], b[1]])))
}

/// Masking keys: xorshift64*, seeded per connection. RFC 6455 asks for
/// unpredictable keys to protect intermediaries from cache poisoning;
/// the load generator only talks to gateways it is pointed at, so a fast
/// generator is enough.
#[derive(Debug, Clone)]
pub struct Masks(u64);

impl Masks {
    /// A generator seeded from `seed` (any value).
    pub fn new(seed: u64) -> Masks {
        Masks(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next key.
    #[inline]
    pub fn next_key(&mut self) -> [u8; 4] {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        let v = x.wrapping_mul(0x2545_F491_4F6C_DD1D);
        ((v >> 32) as u32).to_ne_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;

    const BINARY: OpCode = OpCode::Data(Data::Binary);
    const TEXT: OpCode = OpCode::Data(Data::Text);

    fn server_frame(opcode: OpCode, fin: bool, payload: &[u8]) -> Vec<u8> {
        let mut frame = Frame::message(payload.to_vec(), opcode, fin);
        frame.header_mut().mask = None;
        let mut out = Vec::new();
        frame.format(&mut out).unwrap();
        out
    }

    #[test]
    fn headers_of_every_length_class_parse_like_tungstenite_writes_them() {
        for len in [0usize, 1, 125, 126, 127, 65_535, 65_536, 70_000] {
            let payload = vec![7u8; len];
            let bytes = server_frame(BINARY, true, &payload);
            let h = parse_header(&bytes, 1 << 20).unwrap().unwrap();
            assert_eq!((h.fin, h.opcode, h.payload_len), (true, BINARY, len));
            assert_eq!(h.frame_len(), bytes.len());
            assert_eq!(&bytes[h.header_len..], &payload[..]);
            for cut in 0..h.header_len {
                assert_eq!(
                    parse_header(&bytes[..cut], 1 << 20),
                    Ok(None),
                    "{len} {cut}"
                );
            }
        }
        let bytes = server_frame(TEXT, false, b"abc");
        let h = parse_header(&bytes, 100).unwrap().unwrap();
        assert_eq!((h.fin, h.opcode), (false, TEXT));
        assert_eq!(
            parse_header(&server_frame(TEXT, true, &[0; 200]), 100),
            Err(FrameError::TooLarge(200))
        );
    }

    #[test]
    fn the_quick_path_reads_every_header_as_tungstenite_does() {
        for len in [0usize, 1, 125, 126, 65_535, 65_536] {
            for opcode in [TEXT, BINARY, OpCode::Data(Data::Continue)] {
                for fin in [true, false] {
                    let bytes = server_frame(opcode, fin, &vec![1; len]);
                    let quick = parse_header(&bytes, 1 << 20).unwrap().unwrap();
                    let general = parse_general(&bytes).unwrap().unwrap();
                    let quick = (quick.fin, quick.opcode, quick.header_len, quick.payload_len);
                    assert_eq!(quick, (general.0, general.1, general.2, general.3 as usize));
                }
            }
        }
    }

    #[test]
    fn opcodes_map_as_tungstenite_maps_them() {
        for bits in 0..16 {
            assert_eq!(opcode(bits), OpCode::from(bits));
        }
    }

    #[test]
    fn protocol_violations_are_refused() {
        assert_eq!(
            parse_header(&[0x82, 0x81, 1, 2, 3, 4, 5], 9),
            Err(FrameError::Masked)
        );
        assert_eq!(parse_header(&[0xC2, 0x00], 9), Err(FrameError::Reserved));
        assert_eq!(parse_header(&[0x83, 0x00], 9), Err(FrameError::Opcode(3)));
        assert_eq!(parse_header(&[0x09, 0x00], 9), Err(FrameError::Control));
        assert_eq!(
            parse_header(&[0x89, 126, 0, 126], 999),
            Err(FrameError::Control)
        );
    }

    #[test]
    fn client_frames_are_masked_and_read_back_by_tungstenite() {
        let mut masks = Masks::new(42);
        for len in [0usize, 5, 125, 126, 1000, 65_536] {
            let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut out = Vec::new();
            write_frame(&mut out, TEXT, &payload, masks.next_key());
            let mut cursor = Cursor::new(out.as_slice());
            let (header, payload_len) = FrameHeader::parse(&mut cursor).unwrap().unwrap();
            let mask = header.mask.expect("client frames are masked");
            assert!(header.is_final);
            assert_eq!(header.opcode, TEXT);
            assert_eq!(payload_len as usize, len);
            let body: Vec<u8> = out[cursor.position() as usize..]
                .iter()
                .enumerate()
                .map(|(i, b)| b ^ mask[i % 4])
                .collect();
            assert_eq!(body, payload);
        }
        assert_ne!(masks.next_key(), masks.next_key());
        assert_eq!(close_code(&[0x03, 0xE8, b'x']), Some(CloseCode::Normal));
        assert_eq!(close_code(&[]), None);
    }
}
