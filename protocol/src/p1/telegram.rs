//! One telegram: the CRC verdict, the header and every data line, borrowed from the frame.
//!
//! Parsing is lenient about layout and strict about what it reports: lines may have extra
//! spaces, a missing blank line after the header, lower-case units or a three-digit CRC; every
//! line with an OBIS code is kept, known or not; a line that is not `OBIS(…)…` is kept as
//! [`MalformedLine`] with its offset instead of failing the telegram. Only the CRC decides
//! whether a telegram is trustworthy, and that verdict is always reported, never hidden.

use core::fmt;

use memchr::memchr;
use thiserror::Error;

use super::crc::crc16_arc;
use super::framer::{FrameError, FrameIn, Framer, FramerConfig};
use super::swar::{
    find_close_and_last_star, find_group_stop_or_star, obis_before_group, scan_plain_groups,
};
use super::value::{ObisCode, RawValue};

/// The CRC verdict of a telegram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrcCheck {
    /// No CRC after `!` (DSMR 2.2/3 and D0 meters). Nothing guards the content.
    Absent {
        /// CRC-16/ARC of `/`…`!`, for display.
        computed: u16,
    },
    /// The CRC matches.
    Valid {
        /// The CRC.
        value: u16,
        /// How many hex digits the meter printed; fewer than 4 means an unpadded CRC (a
        /// Warmtelink unit prints `!B9F` for 0x0B9F), which is accepted.
        digits: u8,
    },
    /// The CRC does not match: the telegram was corrupted (or the meter computes it wrongly).
    Mismatch {
        /// CRC as printed.
        given: u16,
        /// CRC-16/ARC of `/`…`!`.
        computed: u16,
        /// Hex digits printed.
        digits: u8,
    },
}

impl CrcCheck {
    /// Computes the verdict for a frame body (`/`…`!`) and its CRC digits.
    #[must_use]
    pub fn of(body: &[u8], digits: &[u8]) -> Self {
        let computed = crc16_arc(body);
        let given = digits.iter().try_fold(0u16, |acc, &digit| {
            let nibble = (digit as char).to_digit(16)?;
            Some((acc << 4) | nibble as u16)
        });
        match given {
            _ if digits.is_empty() => CrcCheck::Absent { computed },
            // The framer only passes 0-4 hex digits; anything else is a mismatch by definition.
            Some(given) if digits.len() <= 4 && given == computed => {
                CrcCheck::Valid { value: computed, digits: digits.len() as u8 }
            }
            given => CrcCheck::Mismatch {
                given: given.unwrap_or(0),
                computed,
                digits: digits.len().min(4) as u8,
            },
        }
    }

    /// True only for a present, matching CRC.
    #[must_use]
    pub const fn is_valid(&self) -> bool {
        matches!(self, CrcCheck::Valid { .. })
    }

    /// The CRC the telegram should carry.
    #[must_use]
    pub const fn computed(&self) -> u16 {
        match *self {
            CrcCheck::Absent { computed } | CrcCheck::Mismatch { computed, .. } => computed,
            CrcCheck::Valid { value, .. } => value,
        }
    }
}

/// Why bytes are not a telegram at all (as opposed to a telegram with bad lines or a bad CRC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum TelegramError {
    /// The bytes do not frame as exactly one telegram.
    #[error("framing: {0}")]
    Frame(#[from] FrameError),
    /// No telegram found at all.
    #[error("no telegram (no '/' … '!' block) in the input")]
    Missing,
    /// A byte that is not 7-bit ASCII (DSMR text is ASCII; bit 7 is parity or noise).
    #[error("byte 0x{byte:02X} at offset {offset} is not ASCII")]
    NotAscii {
        /// Stream offset of the byte.
        offset: u64,
        /// The byte.
        byte: u8,
    },
}

/// Why a line inside a telegram was not a data object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum LineError {
    /// The line does not start with `A-B:C.D.E`.
    #[error("line does not start with an OBIS code")]
    NoObisCode,
    /// The OBIS code is not followed by `(…)` groups only.
    #[error("values are not a sequence of (…) groups")]
    BadValues,
    /// A `(…)` continuation line with no object before it to continue.
    #[error("continuation line without an object before it")]
    OrphanContinuation,
}

/// A line kept because it could not be read as an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MalformedLine<'a> {
    /// Offset of the line within the telegram (the `/` is 0).
    pub offset: usize,
    /// The line, without its line end.
    pub text: &'a str,
    /// What is wrong with it.
    pub error: LineError,
}

/// One data object: an OBIS code and its `(…)` values, which for DSMR 2.2/3 gas profiles
/// continue on the next line.
///
/// Grammar (DSMR P1 companion standard 5.0.2 §6.4, with the 2.2/3 continuation):
///
/// ```text
/// object       = obis 1*group CRLF *(1*group CRLF)
/// group        = "(" *(%x20-27 / %x2A-7E) ")"     ; no parentheses inside
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct DataObject<'a> {
    /// The code.
    pub obis: ObisCode,
    /// Offset of the line within the telegram (the `/` is 0).
    pub offset: usize,
    /// The `(…)` groups, possibly spanning continuation lines.
    values: &'a str,
    /// The first group, split while the line was scanned: most readings need only it.
    first: RawValue<'a>,
}

// Written out so the cached first value (derived from `values`) does not show.
impl fmt::Debug for DataObject<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataObject")
            .field("obis", &self.obis)
            .field("offset", &self.offset)
            .field("values", &self.values)
            .finish()
    }
}

impl<'a> DataObject<'a> {
    /// The values in order. Allocation-free: the groups are split on demand.
    #[must_use]
    pub fn values(&self) -> Values<'a> {
        Values { rest: self.values }
    }

    /// The `n`th value (0-based).
    #[must_use]
    pub fn value(&self, n: usize) -> Option<RawValue<'a>> {
        if n == 0 {
            return Some(self.first);
        }
        self.values().nth(n)
    }

    /// The values exactly as written, `(…)(…)`.
    #[must_use]
    pub const fn raw_values(&self) -> &'a str {
        self.values
    }
}

/// Iterator over the `(…)` groups of an object.
#[derive(Debug, Clone)]
pub struct Values<'a> {
    rest: &'a str,
}

impl<'a> Iterator for Values<'a> {
    type Item = RawValue<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        // Validated at parse time: only `(…)` groups separated by blanks and line ends remain,
        // so a byte scan suffices (no Unicode trimming, no memchr call for short values). The
        // `)` and the last `*` before it (where `RawValue::new` splits) are found in one pass.
        let bytes = self.rest.as_bytes();
        let open = match bytes.first() {
            Some(b'(') => 0,
            _ => bytes.iter().position(|&byte| byte == b'(')?,
        };
        let start = open + 1;
        let (close, star) = find_close_and_last_star(&bytes[start..])?;
        let inner = &self.rest[start..start + close];
        self.rest = &self.rest[start + close + 1..];
        Some(match star {
            Some(star) => RawValue { text: &inner[..star], unit: Some(&inner[star + 1..]) },
            None => RawValue { text: inner, unit: None },
        })
    }
}

/// A parsed telegram, borrowing the frame it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Telegram<'a> {
    offset: u64,
    text: &'a str,
    header: &'a str,
    crc: CrcCheck,
    objects: Vec<DataObject<'a>>,
    malformed: Vec<MalformedLine<'a>>,
}

impl<'a> Telegram<'a> {
    /// Parses a framed telegram. The CRC is checked and reported in [`Telegram::crc`], not
    /// enforced: callers that act on readings should require [`CrcCheck::is_valid`] (or accept
    /// [`CrcCheck::Absent`] for DSMR 2.2/3 meters).
    pub fn parse(frame: FrameIn<'a>) -> Result<Self, TelegramError> {
        let crc = CrcCheck::of(frame.body, frame.crc_digits);
        // `is_ascii` checks a word at a time; the position is only looked for on failure.
        if let Some(at) = (!frame.body.is_ascii())
            .then(|| frame.body.iter().position(|b| !b.is_ascii()))
            .flatten()
        {
            return Err(TelegramError::NotAscii {
                offset: frame.offset + at as u64,
                byte: frame.body[at],
            });
        }
        let text = core::str::from_utf8(frame.body).map_err(|error| {
            let at = error.valid_up_to();
            TelegramError::NotAscii { offset: frame.offset + at as u64, byte: frame.body[at] }
        })?;
        let bytes = text.as_bytes();
        // `!` is the last byte; a line break precedes it (the framer guarantees both).
        let end = bytes.len() - 1;
        let header_end = memchr(b'\n', &bytes[..end]).unwrap_or(end);
        let header = text[1..header_end].trim_end_matches(['\r', ' ']);

        let mut objects = Vec::with_capacity(40);
        let mut malformed = Vec::new();
        // Start index (in `text`) of the last object's values, so a continuation line can extend
        // them to a slice that covers both lines.
        let mut last_values_start: Option<usize> = None;
        let mut pos = header_end + 1;
        let line_bytes = &bytes[..end];
        while pos < end {
            // The common line, `A-B:C.D.E(…)…(…)\r\n`, in one word-wise pass; everything else
            // (blanks, continuation lines, malformed lines) takes the general path below.
            if let Some((obis, values_at)) = obis_before_group(line_bytes, pos)
                && let Some(groups) = scan_plain_groups(line_bytes, values_at)
            {
                let inner = &text[values_at + 1..groups.first_close];
                let first = match groups.first_star {
                    Some(star) => {
                        let star = star - (values_at + 1);
                        RawValue { text: &inner[..star], unit: Some(&inner[star + 1..]) }
                    }
                    None => RawValue { text: inner, unit: None },
                };
                let values = &text[values_at..=groups.last_close];
                objects.push(DataObject { obis, offset: pos, values, first });
                last_values_start = Some(values_at);
                pos = groups.newline + 1;
                continue;
            }
            // Leading blanks are tolerated.
            let mut line_start = pos;
            while line_start < end && matches!(bytes[line_start], b' ' | b'\t') {
                line_start += 1;
            }
            // One pass per line: the OBIS code, then the groups, validated while looking for the
            // line end (a memchr call per 25-byte line costs more than it saves).
            let (kind, line_end, values_at) = match bytes.get(line_start) {
                Some(b'(') => {
                    let (line_end, scan) = scan_groups(bytes, line_start, end);
                    let well_formed = scan.is_some();
                    (LineKind::Continuation { well_formed }, line_end, line_start)
                }
                _ => match ObisCode::parse_prefix(&bytes[line_start..end]) {
                    Some((obis, used)) => {
                        let (line_end, first) = scan_groups(bytes, line_start + used, end);
                        (LineKind::Object { obis, first }, line_end, line_start + used)
                    }
                    None => {
                        let line_end = bytes[line_start..end]
                            .iter()
                            .position(|&byte| byte == b'\n')
                            .map_or(end, |i| line_start + i);
                        (LineKind::Other, line_end, line_start)
                    }
                },
            };
            pos = line_end + 1;
            let mut trimmed_end = line_end;
            if let LineKind::Object { first: Some(first), .. } = kind {
                // Only blanks and CR follow the last group of a well-formed line.
                trimmed_end = first.last_close + 1;
            }
            while trimmed_end > line_start && matches!(bytes[trimmed_end - 1], b'\r' | b' ' | b'\t')
            {
                trimmed_end -= 1;
            }
            if trimmed_end == line_start {
                continue;
            }
            let line = &text[line_start..trimmed_end];
            let mut reject = |error| {
                malformed.push(MalformedLine { offset: line_start, text: line, error });
            };
            match kind {
                LineKind::Object { obis, first: Some(first) } => {
                    last_values_start = Some(values_at);
                    let values = &text[values_at..trimmed_end];
                    let inner = &text[first.open + 1..first.close];
                    let first = match first.star {
                        Some(star) => {
                            let star = star - (first.open + 1);
                            RawValue { text: &inner[..star], unit: Some(&inner[star + 1..]) }
                        }
                        None => RawValue { text: inner, unit: None },
                    };
                    objects.push(DataObject { obis, offset: line_start, values, first });
                }
                LineKind::Continuation { well_formed: true } => {
                    match last_values_start.zip(objects.last_mut()) {
                        Some((values_start, object)) => {
                            object.values = &text[values_start..trimmed_end];
                        }
                        None => reject(LineError::OrphanContinuation),
                    }
                }
                LineKind::Object { .. } | LineKind::Continuation { .. } => {
                    last_values_start = None;
                    reject(LineError::BadValues);
                }
                LineKind::Other => {
                    last_values_start = None;
                    reject(LineError::NoObisCode);
                }
            }
        }
        Ok(Telegram { offset: frame.offset, text, header, crc, objects, malformed })
    }

    /// Parses a buffer holding exactly one telegram, e.g. a file or a decrypted Smarty frame.
    /// Bytes before and after it (blank lines, a D0 gateway's trailer) are ignored; a second
    /// telegram or a truncated one is an error. Bit 7 is not masked here.
    pub fn parse_bytes(bytes: &'a [u8]) -> Result<Self, TelegramError> {
        let frame = frame_one(bytes)?;
        Telegram::parse(frame)
    }

    /// Stream offset of the leading `/`.
    #[must_use]
    pub const fn offset(&self) -> u64 {
        self.offset
    }

    /// The identification line without its `/`, e.g. `ISk5\2MT382-1000`.
    #[must_use]
    pub const fn header(&self) -> &'a str {
        self.header
    }

    /// The three-letter manufacturer FLAG id from the header (`ISk`, `KFM`, `FLU`), if present.
    #[must_use]
    pub fn manufacturer(&self) -> Option<&'a str> {
        self.header.get(..3)
    }

    /// The CRC verdict.
    #[must_use]
    pub const fn crc(&self) -> CrcCheck {
        self.crc
    }

    /// The telegram text from `/` through `!`.
    #[must_use]
    pub const fn text(&self) -> &'a str {
        self.text
    }

    /// Every data object in telegram order, known or not.
    #[must_use]
    pub fn objects(&self) -> &[DataObject<'a>] {
        &self.objects
    }

    /// Lines that are not data objects.
    #[must_use]
    pub fn malformed_lines(&self) -> &[MalformedLine<'a>] {
        &self.malformed
    }

    /// The first object with this code.
    #[must_use]
    pub fn object(&self, obis: ObisCode) -> Option<&DataObject<'a>> {
        self.objects.iter().find(|object| object.obis == obis)
    }

    /// The P1 version from `1-3:0.2.8` (DSMR 4/5) or `0-0:96.1.4` (Belgian e-MUCS), if sent.
    #[must_use]
    pub fn version(&self) -> Option<&'a str> {
        self.object(ObisCode::new(1, 3, 0, 2, 8))
            .or_else(|| self.object(ObisCode::new(0, 0, 96, 1, 4)))
            .and_then(|object| object.value(0))
            .map(|value| value.text)
    }
}

/// Frames a buffer that should hold exactly one telegram, without copying.
fn frame_one(bytes: &[u8]) -> Result<FrameIn<'_>, TelegramError> {
    // Reuse the framer's rules on a private copy to find the boundaries, then borrow the
    // caller's bytes for the result (telegrams are small; this path is not the streaming one).
    let mut framer =
        Framer::new(FramerConfig { mask_parity_bit: false, ..FramerConfig::default() });
    framer.feed(bytes);
    framer.finish();
    let mut found = None;
    while let Some(step) = framer.next_frame() {
        let frame = match step {
            Ok(frame) => frame,
            // Bytes around the telegram (a D0 gateway's trailer lines) do not make it invalid.
            Err(FrameError::Garbage { .. }) => continue,
            Err(error) => return Err(error.into()),
        };
        if found.is_some() {
            return Err(TelegramError::Frame(FrameError::Garbage {
                offset: frame.offset,
                len: (frame.body.len() + frame.crc_digits.len()) as u64,
            }));
        }
        let start = usize::try_from(frame.offset).map_err(|_| TelegramError::Missing)?;
        found = Some((start, frame.body.len(), frame.crc_digits.len()));
    }
    let (start, body_len, crc_len) = found.ok_or(TelegramError::Missing)?;
    Ok(FrameIn {
        offset: start as u64,
        body: &bytes[start..start + body_len],
        crc_digits: &bytes[start + body_len..start + body_len + crc_len],
    })
}

/// What a line turned out to be, before its text is cut out.
#[derive(Debug, Clone, Copy)]
enum LineKind {
    /// `OBIS(…)…`; the first group when the line is well formed.
    Object { obis: ObisCode, first: Option<FirstGroup> },
    /// `(…)…`: more values for the previous object (DSMR 2.2/3).
    Continuation { well_formed: bool },
    /// Anything else.
    Other,
}

/// Where a line's first `(…)` group is: indices of `(`, `)` and the last `*` between them.
#[derive(Debug, Clone, Copy)]
struct FirstGroup {
    open: usize,
    close: usize,
    star: Option<usize>,
    /// The `)` of the line's last group.
    last_close: usize,
}

/// Scans `(…)` groups from `start` to the end of the line (the `\n`, or `end`). Returns the
/// index of the line end and, if the line held one or more groups separated only by blanks, where
/// its first group is.
fn scan_groups(bytes: &[u8], start: usize, end: usize) -> (usize, Option<FirstGroup>) {
    let mut well_formed = true;
    let mut first = None;
    let mut index = start;
    while index < end {
        match bytes[index] {
            b'\n' => break,
            b'(' => {
                // A group's inside is anything but parentheses and line ends: one tight search
                // (that also stops at a `*`, to remember where the unit starts).
                let mut from = index + 1;
                let mut star = None;
                let stop = loop {
                    match find_group_stop_or_star(&bytes[from..end]) {
                        Some(at) if bytes[from + at] == b'*' => {
                            star = Some(from + at);
                            from += at + 1;
                        }
                        other => break other.map(|at| from + at),
                    }
                };
                match stop {
                    Some(at) if bytes[at] == b')' => {
                        match &mut first {
                            None => {
                                first = Some(FirstGroup {
                                    open: index,
                                    close: at,
                                    star,
                                    last_close: at,
                                });
                            }
                            Some(first) => first.last_close = at,
                        }
                        index = at + 1;
                        // The usual line end right after a group: no more bytes to classify.
                        if bytes.get(index..index + 2) == Some(b"\r\n") && index + 1 < end {
                            index += 1;
                            break;
                        }
                    }
                    // Unclosed: look at the offending byte again (a line end ends the line).
                    Some(at) => {
                        well_formed = false;
                        index = at;
                    }
                    None => {
                        well_formed = false;
                        index = end;
                    }
                }
                continue;
            }
            b' ' | b'\t' | b'\r' => {}
            _ => well_formed = false,
        }
        index += 1;
    }
    (index, first.filter(|_| well_formed))
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::{CrcCheck, LineError, Telegram, TelegramError};
    use crate::p1::value::ObisCode;

    const V3: &[u8] = b"/ISk5\\2MT382-1000\r\n\r\n\
0-0:96.1.1(4B384547303034303436333935353037)\r\n\
1-0:1.8.1(12345.678*kWh)\r\n\
0-1:24.3.0(090212160000)(00)(60)(1)(0-1:24.2.1)(m3)\r\n\
(00001.001)\r\n\
0-1:24.4.0(1)\r\n\
!\r\n";

    #[test]
    fn profile_values_on_the_next_line_join_their_object() {
        let telegram = Telegram::parse_bytes(V3).unwrap();
        assert_eq!(telegram.header(), "ISk5\\2MT382-1000");
        assert!(matches!(telegram.crc(), CrcCheck::Absent { .. }));
        let gas = telegram.object(ObisCode::new(0, 1, 24, 3, 0)).unwrap();
        let values: Vec<_> = gas.values().map(|v| v.text).collect();
        assert_eq!(values, ["090212160000", "00", "60", "1", "0-1:24.2.1", "m3", "00001.001"]);
        assert_eq!(telegram.objects().len(), 4);
        assert!(telegram.malformed_lines().is_empty());
    }

    #[test]
    fn unknown_and_malformed_lines_are_kept() {
        let bytes =
            b"/XYZ5 test\r\n\r\n1-0:99.99.9(42*kWh)(7)\r\nhello\r\n1-0:1.8.1 12\r\n(1)\r\n!";
        let telegram = Telegram::parse_bytes(bytes).unwrap();
        assert_eq!(telegram.objects().len(), 1);
        assert_eq!(telegram.objects()[0].values().count(), 2);
        let errors: Vec<_> = telegram.malformed_lines().iter().map(|l| (l.text, l.error)).collect();
        assert_eq!(
            errors,
            [
                ("hello", LineError::NoObisCode),
                ("1-0:1.8.1 12", LineError::BadValues),
                ("(1)", LineError::OrphanContinuation),
            ]
        );
    }

    #[test]
    fn crc_verdicts() {
        let body = b"/NWA-WARMTELINK\r\n\r\n!";
        let crc = crate::p1::crc::crc16_arc(body);
        let four = format!("{crc:04X}");
        assert_eq!(CrcCheck::of(body, four.as_bytes()), CrcCheck::Valid { value: crc, digits: 4 });
        assert!(CrcCheck::of(body, four.to_lowercase().as_bytes()).is_valid());
        assert_eq!(CrcCheck::of(body, b""), CrcCheck::Absent { computed: crc });
        let wrong = format!("{:04X}", crc ^ 1);
        assert_eq!(
            CrcCheck::of(body, wrong.as_bytes()),
            CrcCheck::Mismatch { given: crc ^ 1, computed: crc, digits: 4 }
        );
    }

    #[test]
    fn not_one_telegram_is_an_error() {
        assert_eq!(Telegram::parse_bytes(b"no telegram here\r\n"), Err(TelegramError::Missing));
        assert_eq!(Telegram::parse_bytes(b""), Err(TelegramError::Missing));
        assert!(Telegram::parse_bytes(b"/AB5\r\n\r\n1-0:1.8.1(1)\r\n").is_err());
        let two = [V3, V3].concat();
        assert!(Telegram::parse_bytes(&two).is_err());
        let non_ascii = b"/AB5\xC3\xA9\r\n\r\n!\r\n";
        assert_eq!(
            Telegram::parse_bytes(non_ascii),
            Err(TelegramError::NotAscii { offset: 4, byte: 0xC3 })
        );
    }
}
