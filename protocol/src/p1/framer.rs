//! Streaming framer: arbitrary byte chunks in, one [`FrameIn`] per telegram out.
//!
//! A serial port delivers telegrams in whatever pieces its driver likes (one byte at a time on a
//! slow UART, 4 KiB blocks through Web Serial), it may start mid-telegram, and a loose cable adds
//! noise. The framer owns a bounded buffer and answers each [`Framer::next_frame`] with one of:
//!
//! - `None` — *incomplete*: nothing decidable yet, feed more bytes (mini-redis's `Incomplete`);
//! - `Some(Ok(frame))` — a complete `/`…`!` block with its 0–4 CRC digits, still untrusted;
//! - `Some(Err(error))` — *invalid*: bytes that cannot be a telegram, with their stream offset.
//!   Framing always recovers by hunting for the next `/`, so errors never stop the stream.
//!
//! Rules, from the DSMR framing every version shares:
//! - a telegram starts at `/`; bytes before it that are not blank (CR, LF, space, tab, NUL) are
//!   reported once per run as [`FrameError::Garbage`];
//! - it ends at a `!` that starts a line, followed by up to four hex digits of CRC (none on DSMR
//!   2.2/3, three on some Warmtelink units); whatever follows the digits (normally CRLF) is not
//!   part of the frame, so a missing final CRLF is tolerated;
//! - after the header line, a `/` that starts a line, or that starts `/XXX5` (a header) mid-line,
//!   means the telegram was cut off: it is reported as [`FrameError::Truncated`] and the new
//!   one is framed (any other `/` is data: DSMR 3 text messages may contain one);
//! - a telegram longer than [`FramerConfig::max_telegram_len`] (8 KiB by default; the largest
//!   real one seen is about 1.5 KiB) is dropped as [`FrameError::Oversized`].
//!
//! Bit 7 is cleared on the way in by default: a 7E1 link (DSMR 2.2/3 at 9600 Bd) read through a
//! port opened as 8N1 delivers the parity bit as bit 7, and DSMR text is pure ASCII, so masking
//! makes one port setting read every meter. The CRC still guards integrity.

use memchr::{memchr, memchr2};
use thiserror::Error;

/// Framer settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FramerConfig {
    /// Longest accepted telegram, from `/` to `!` inclusive.
    pub max_telegram_len: usize,
    /// Clear bit 7 of every byte (reads 7E1 links through an 8N1 port).
    pub mask_parity_bit: bool,
}

impl FramerConfig {
    /// 8 KiB: five times the largest telegram seen in the field.
    pub const DEFAULT_MAX_TELEGRAM_LEN: usize = 8 * 1024;
}

impl Default for FramerConfig {
    fn default() -> Self {
        FramerConfig { max_telegram_len: Self::DEFAULT_MAX_TELEGRAM_LEN, mask_parity_bit: true }
    }
}

/// A framed telegram as received: untrusted, CRC not yet checked. Borrowed from the framer's
/// buffer until the next call on the framer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameIn<'a> {
    /// Offset of the leading `/` in the whole stream fed so far.
    pub offset: u64,
    /// From `/` through `!`: exactly the bytes the CRC covers.
    pub body: &'a [u8],
    /// The 0–4 hex digits after `!`, as received.
    pub crc_digits: &'a [u8],
}

/// Bytes that could not be framed as a telegram. Offsets count from the first byte fed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum FrameError {
    /// Non-blank bytes outside any telegram (noise, a capture that starts mid-telegram, trailer
    /// lines some gateways append).
    #[error("{len} byte(s) of garbage outside a telegram at offset {offset}")]
    Garbage {
        /// First garbage byte.
        offset: u64,
        /// Bytes from the first to the last garbage byte of the run.
        len: u64,
    },
    /// A telegram that never reached its `!`: a new `/` began, or the input ended.
    #[error("telegram at offset {offset} truncated after {len} byte(s)")]
    Truncated {
        /// The telegram's `/`.
        offset: u64,
        /// Bytes received before it was cut off.
        len: u64,
    },
    /// No `!` within the size limit.
    #[error("telegram at offset {offset} exceeds {limit} bytes without an end mark")]
    Oversized {
        /// The telegram's `/`.
        offset: u64,
        /// The configured limit.
        limit: usize,
    },
}

impl FrameError {
    /// Stream offset where the problem starts.
    #[must_use]
    pub const fn offset(&self) -> u64 {
        match *self {
            FrameError::Garbage { offset, .. }
            | FrameError::Truncated { offset, .. }
            | FrameError::Oversized { offset, .. } => offset,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Looking for `/`.
    Hunting,
    /// Inside a telegram that starts at `consumed`; the search for its end resumes at `scan`.
    InTelegram { scan: usize },
}

/// What one look for a telegram's end found (indices into the buffer).
#[derive(Debug, Clone, Copy)]
enum Step {
    /// Keep scanning from this index.
    Continue(usize),
    /// Nothing decidable until more bytes arrive.
    NeedMore,
    /// Report this error.
    Invalid(FrameError),
    /// A telegram: `/` at `start`, `!` at `mark`, CRC digits up to `digits_end`.
    Frame { start: usize, mark: usize, digits_end: usize },
}

/// The streaming framer. Feed bytes with [`Framer::feed`], drain with [`Framer::next_frame`]
/// until it returns `None`, repeat; call [`Framer::finish`] at end of input.
#[derive(Debug)]
pub struct Framer {
    config: FramerConfig,
    buf: Vec<u8>,
    /// Stream offset of `buf[0]`.
    base: u64,
    /// Bytes at the front of `buf` already handed out or skipped; dropped on the next call (not
    /// at once, because the last frame handed out still borrows them).
    consumed: usize,
    state: State,
    /// A garbage run seen but not yet reported: (first offset, end offset).
    garbage: Option<(u64, u64)>,
    /// After an oversized telegram the rest of it is not reported again as garbage.
    quiet_until_slash: bool,
    /// [`Framer::finish`] was called: no more bytes will come.
    finished: bool,
}

impl Default for Framer {
    fn default() -> Self {
        Framer::new(FramerConfig::default())
    }
}

impl Framer {
    /// A framer with the given settings.
    #[must_use]
    pub fn new(config: FramerConfig) -> Self {
        Framer {
            config,
            buf: Vec::with_capacity(2048),
            base: 0,
            consumed: 0,
            state: State::Hunting,
            garbage: None,
            quiet_until_slash: false,
            finished: false,
        }
    }

    /// Appends received bytes (masked per [`FramerConfig::mask_parity_bit`]). Feeding after
    /// [`Framer::finish`] starts a new input whose offsets continue the old ones.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.compact();
        self.finished = false;
        if self.config.mask_parity_bit {
            self.buf.extend(bytes.iter().map(|byte| byte & 0x7F));
        } else {
            self.buf.extend_from_slice(bytes);
        }
    }

    /// Marks the end of input: a telegram still missing its end is then reported as truncated,
    /// and a final `!` with fewer than four CRC digits is complete.
    pub fn finish(&mut self) {
        self.finished = true;
    }

    /// Total bytes fed so far.
    #[must_use]
    pub fn stream_len(&self) -> u64 {
        self.base + self.buf.len() as u64
    }

    /// The next framing result; `None` when more bytes are needed (or, after
    /// [`Framer::finish`], when everything has been reported).
    pub fn next_frame(&mut self) -> Option<Result<FrameIn<'_>, FrameError>> {
        self.compact();
        loop {
            match self.state {
                State::Hunting => {
                    let rest = &self.buf[self.consumed..];
                    match memchr(b'/', rest) {
                        Some(index) => {
                            self.note_skipped(self.consumed, self.consumed + index);
                            self.consumed += index;
                            self.quiet_until_slash = false;
                            self.state = State::InTelegram { scan: self.consumed + 1 };
                            if let Some(error) = self.take_garbage() {
                                return Some(Err(error));
                            }
                        }
                        None => {
                            self.note_skipped(self.consumed, self.buf.len());
                            self.consumed = self.buf.len();
                            return if self.finished { self.take_garbage().map(Err) } else { None };
                        }
                    }
                }
                State::InTelegram { scan } => match self.find_end(scan) {
                    Step::Continue(next_scan) => self.state = State::InTelegram { scan: next_scan },
                    Step::NeedMore => return None,
                    Step::Invalid(error) => return Some(Err(error)),
                    Step::Frame { start, mark, digits_end } => {
                        return Some(Ok(FrameIn {
                            offset: self.base + start as u64,
                            body: &self.buf[start..=mark],
                            crc_digits: &self.buf[mark + 1..digits_end],
                        }));
                    }
                },
            }
        }
    }

    /// Looks for the end of the telegram starting at `consumed`, from `scan` on, and updates the
    /// state for what it finds.
    fn find_end(&mut self, scan: usize) -> Step {
        let start = self.consumed;
        let offset = self.base + start as u64;
        let limit_end = self.buf.len().min(start + self.config.max_telegram_len);
        let Some(found) = memchr2(b'!', b'/', &self.buf[scan..limit_end]) else {
            if limit_end - start >= self.config.max_telegram_len {
                self.consumed = start + 1;
                self.state = State::Hunting;
                self.quiet_until_slash = true;
                let limit = self.config.max_telegram_len;
                return Step::Invalid(FrameError::Oversized { offset, limit });
            }
            if self.finished {
                self.consumed = self.buf.len();
                self.state = State::Hunting;
                let len = (self.buf.len() - start) as u64;
                return Step::Invalid(FrameError::Truncated { offset, len });
            }
            self.state = State::InTelegram { scan: limit_end };
            return Step::NeedMore;
        };
        let mark = scan + found;
        if self.buf[mark] == b'/' {
            // No value contains `/`, so past the header line a `/` starts the next telegram: the
            // current one lost its end (a dropped chunk, a meter reset). Inside the header line
            // it is part of the identification.
            if memchr(b'\n', &self.buf[start..mark]).is_none() {
                return Step::Continue(mark + 1);
            }
            // Mid-line, only a `/` that looks like a header (`/XXX5`) restarts: plain-text
            // messages on old meters may contain a `/`.
            if self.buf[mark - 1] != b'\n' {
                match looks_like_header(&self.buf[mark + 1..]) {
                    Some(true) => {}
                    Some(false) => return Step::Continue(mark + 1),
                    None if self.finished => return Step::Continue(mark + 1),
                    None => {
                        self.state = State::InTelegram { scan: mark };
                        return Step::NeedMore;
                    }
                }
            }
            self.consumed = mark;
            self.state = State::InTelegram { scan: mark + 1 };
            let len = (mark - start) as u64;
            return Step::Invalid(FrameError::Truncated { offset, len });
        }
        if self.buf[mark - 1] != b'\n' {
            // The end mark starts a line; a `!` elsewhere is noise inside a line.
            return Step::Continue(mark + 1);
        }
        let digits_start = mark + 1;
        let digits_len = self.buf[digits_start..self.buf.len().min(digits_start + 4)]
            .iter()
            .take_while(|byte| byte.is_ascii_hexdigit())
            .count();
        let digits_end = digits_start + digits_len;
        if digits_len < 4 && digits_end == self.buf.len() && !self.finished {
            // More CRC digits may still come; look at this `!` again next time.
            self.state = State::InTelegram { scan: mark };
            return Step::NeedMore;
        }
        self.consumed = digits_end;
        self.state = State::Hunting;
        Step::Frame { start, mark, digits_end }
    }

    /// Records skipped bytes `buf[from..to]` that are not blank as (part of) a garbage run.
    fn note_skipped(&mut self, from: usize, to: usize) {
        if self.quiet_until_slash {
            return;
        }
        let skipped = &self.buf[from..to];
        let is_blank = |byte: &u8| matches!(byte, b'\r' | b'\n' | b' ' | b'\t' | 0);
        let Some(first) = skipped.iter().position(|b| !is_blank(b)) else { return };
        let last = skipped.iter().rposition(|b| !is_blank(b)).unwrap_or(first);
        let first = self.base + (from + first) as u64;
        let end = self.base + (from + last + 1) as u64;
        self.garbage = Some(match self.garbage {
            Some((start, _)) => (start, end),
            None => (first, end),
        });
    }

    fn take_garbage(&mut self) -> Option<FrameError> {
        self.garbage.take().map(|(offset, end)| FrameError::Garbage { offset, len: end - offset })
    }

    /// Drops consumed bytes once they are at least half the buffer, so a long stream uses a
    /// buffer of about one telegram and compaction costs amortised O(1) per byte.
    fn compact(&mut self) {
        if self.consumed == 0 || self.consumed * 2 < self.buf.len() {
            return;
        }
        let dropped = self.consumed;
        self.buf.drain(..dropped);
        self.base += dropped as u64;
        self.consumed = 0;
        if let State::InTelegram { scan } = self.state {
            self.state = State::InTelegram { scan: scan - dropped };
        }
    }
}

/// Whether bytes after a `/` start a header: three letters (the FLAG id) and a digit. `None`
/// when fewer than four bytes are available.
fn looks_like_header(after_slash: &[u8]) -> Option<bool> {
    let id = after_slash.get(..4)?;
    Some(id[..3].iter().all(u8::is_ascii_alphabetic) && id[3].is_ascii_digit())
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::{FrameError, Framer, FramerConfig};

    const TELEGRAM: &[u8] = b"/ISK5\\2M550T-1012\r\n\r\n1-0:1.8.1(001234.567*kWh)\r\n!1A2B\r\n";

    /// Collects (offset, body, crc) of frames and the errors, in order.
    type Drained = Vec<Result<(u64, Vec<u8>, Vec<u8>), FrameError>>;

    fn drain(framer: &mut Framer) -> Drained {
        let mut out = Vec::new();
        while let Some(step) = framer.next_frame() {
            out.push(step.map(|f| (f.offset, f.body.to_vec(), f.crc_digits.to_vec())));
        }
        out
    }

    #[test]
    fn one_byte_at_a_time_reports_incomplete_until_the_crc_is_complete() {
        let mut framer = Framer::default();
        let mut results = Vec::new();
        for (index, byte) in TELEGRAM.iter().enumerate() {
            framer.feed(&[*byte]);
            let got = drain(&mut framer);
            if !got.is_empty() {
                results.push((index, got));
            }
        }
        // Complete exactly when the fourth CRC digit arrives, not before.
        let last_digit = TELEGRAM.len() - 3;
        assert_eq!(results.len(), 1);
        assert_eq!(results[0].0, last_digit);
        let (offset, body, crc) = results[0].1[0].clone().unwrap();
        assert_eq!(offset, 0);
        assert_eq!(body, &TELEGRAM[..TELEGRAM.len() - 6]);
        assert_eq!(crc, b"1A2B");
    }

    #[test]
    fn garbage_before_a_telegram_is_reported_with_its_offset() {
        let mut framer = Framer::default();
        framer.feed(b"\r\nxx(12)\r\n");
        framer.feed(TELEGRAM);
        let got = drain(&mut framer);
        assert_eq!(got[0], Err(FrameError::Garbage { offset: 2, len: 6 }));
        assert_eq!(got[1].as_ref().unwrap().0, 10);
        assert_eq!(got.len(), 2);
    }

    #[test]
    fn a_new_header_inside_a_telegram_truncates_it() {
        let mut framer = Framer::default();
        framer.feed(&TELEGRAM[..21]);
        framer.feed(TELEGRAM);
        let got = drain(&mut framer);
        assert_eq!(got[0], Err(FrameError::Truncated { offset: 0, len: 21 }));
        assert_eq!(got[1].as_ref().unwrap().0, 21);
    }

    #[test]
    fn a_telegram_cut_mid_line_is_truncated_by_the_next_header() {
        let mut framer = Framer::default();
        framer.feed(&TELEGRAM[..30]);
        framer.feed(b"/ISK");
        assert_eq!(framer.next_frame(), None, "four bytes after '/' decide");
        framer.feed(&TELEGRAM[4..]);
        let got = drain(&mut framer);
        assert_eq!(got[0], Err(FrameError::Truncated { offset: 0, len: 30 }));
        assert_eq!(got[1].as_ref().unwrap().0, 30);
        assert_eq!(got.len(), 2);
    }

    #[test]
    fn a_slash_inside_a_line_is_data() {
        let telegram = b"/AB5 x/y\r\n\r\n0-0:96.13.0(test-/-test)\r\n!\r\n";
        let mut framer = Framer::default();
        framer.feed(telegram);
        let got = drain(&mut framer);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].as_ref().unwrap().2, b"");
    }

    #[test]
    fn short_crcs_complete_at_a_non_hex_byte_or_at_finish() {
        let mut framer = Framer::default();
        framer.feed(b"/NWA-WARMTELINK\r\n\r\n1-3:0.2.8(50)\r\n!B9F");
        assert!(framer.next_frame().is_none());
        framer.feed(b"\r\n");
        assert_eq!(framer.next_frame().unwrap().unwrap().crc_digits, b"B9F");

        framer.feed(b"/NWA-WARMTELINK\r\n\r\n!B9F");
        assert!(framer.next_frame().is_none());
        framer.finish();
        assert_eq!(framer.next_frame().unwrap().unwrap().crc_digits, b"B9F");
        assert!(framer.next_frame().is_none());
    }

    #[test]
    fn end_of_input_inside_a_telegram_is_truncation() {
        let mut framer = Framer::default();
        framer.feed(&TELEGRAM[..40]);
        assert!(framer.next_frame().is_none());
        framer.finish();
        assert_eq!(framer.next_frame(), Some(Err(FrameError::Truncated { offset: 0, len: 40 })));
        assert_eq!(framer.next_frame(), None);
    }

    #[test]
    fn oversized_telegrams_are_dropped_and_framing_recovers() {
        let config = FramerConfig { max_telegram_len: 64, ..FramerConfig::default() };
        let mut framer = Framer::new(config);
        let mut long = b"/XYZ5 long\r\n\r\n".to_vec();
        long.extend(std::iter::repeat_n(b'0', 100));
        long.extend_from_slice(b"\r\n");
        framer.feed(&long);
        framer.feed(TELEGRAM);
        let got = drain(&mut framer);
        assert_eq!(got[0], Err(FrameError::Oversized { offset: 0, limit: 64 }));
        assert_eq!(got[1].as_ref().unwrap().0, long.len() as u64);
        assert_eq!(got.len(), 2);
    }

    #[test]
    fn bit_seven_is_masked_so_7e1_reads_through_8n1() {
        // Even parity on bit 7, as a 7E1 link delivers to an 8N1 port.
        let with_parity: Vec<u8> =
            TELEGRAM.iter().map(|&b| if b.count_ones() % 2 == 1 { b | 0x80 } else { b }).collect();
        assert_ne!(with_parity, TELEGRAM);
        let mut framer = Framer::default();
        framer.feed(&with_parity);
        let (_, body, crc) = drain(&mut framer).remove(0).unwrap();
        assert_eq!(body, &TELEGRAM[..TELEGRAM.len() - 6]);
        assert_eq!(crc, b"1A2B");

        let mut unmasked =
            Framer::new(FramerConfig { mask_parity_bit: false, ..Default::default() });
        unmasked.feed(&with_parity);
        unmasked.finish();
        assert!(drain(&mut unmasked).iter().all(|r| r.as_ref().map_or(true, |f| f.1 != body)));
    }

    #[test]
    fn the_buffer_stays_bounded_on_an_endless_stream() {
        let mut framer = Framer::default();
        for _ in 0..2000 {
            framer.feed(TELEGRAM);
            while framer.next_frame().is_some() {}
        }
        assert!(framer.buf.len() < 4 * TELEGRAM.len());
        assert_eq!(framer.stream_len(), 2000 * TELEGRAM.len() as u64);
    }
}
