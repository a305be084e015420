//! The byte-level building blocks of every channel encoding.
//!
//! Integers are either fixed big-endian (`u8`, `u64be`) where a field is hashed or signed at a fixed
//! offset, or unsigned LEB128 varints where compactness matters (readings). Varints must be
//! minimal: a non-minimal encoding is rejected, so every value has exactly one encoding and
//! hashes over encodings are well defined.

/// Why bytes from a peer or from storage could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The input ended inside a field.
    #[error("input ends inside {field}")]
    Truncated {
        /// The field being read.
        field: &'static str,
    },
    /// Bytes remain after the last field.
    #[error("{count} unexpected trailing bytes")]
    TrailingBytes {
        /// How many bytes were left.
        count: usize,
    },
    /// A varint is longer than 10 bytes, overflows 64 bits, or is not minimally encoded.
    #[error("invalid varint in {field}")]
    InvalidVarint {
        /// The field being read.
        field: &'static str,
    },
    /// A field holds a value outside its allowed range.
    #[error("invalid value for {field}")]
    InvalidValue {
        /// The field being read.
        field: &'static str,
    },
    /// The format version is not one this code understands.
    #[error("unsupported {what} version {version}")]
    UnsupportedVersion {
        /// Which format.
        what: &'static str,
        /// The version byte found.
        version: u8,
    },
}

/// Appends encoded fields to a buffer.
#[derive(Debug, Default)]
pub(crate) struct Writer {
    bytes: Vec<u8>,
}

impl Writer {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn u8(&mut self, value: u8) -> &mut Self {
        self.bytes.push(value);
        self
    }

    pub(crate) fn u64be(&mut self, value: u64) -> &mut Self {
        self.bytes.extend_from_slice(&value.to_be_bytes());
        self
    }

    pub(crate) fn bytes(&mut self, value: &[u8]) -> &mut Self {
        self.bytes.extend_from_slice(value);
        self
    }

    pub(crate) fn varint(&mut self, mut value: u64) -> &mut Self {
        loop {
            let low = (value & 0x7f) as u8;
            value >>= 7;
            if value == 0 {
                self.bytes.push(low);
                return self;
            }
            self.bytes.push(low | 0x80);
        }
    }

    /// A varint length followed by the bytes.
    pub(crate) fn length_prefixed(&mut self, value: &[u8]) -> &mut Self {
        self.varint(value.len() as u64);
        self.bytes(value)
    }

    pub(crate) fn finish(self) -> Vec<u8> {
        self.bytes
    }
}

/// Reads encoded fields from a slice; every read names its field for the error.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }

    pub(crate) fn take(
        &mut self,
        len: usize,
        field: &'static str,
    ) -> Result<&'a [u8], DecodeError> {
        if self.rest.len() < len {
            return Err(DecodeError::Truncated { field });
        }
        let (head, tail) = self.rest.split_at(len);
        self.rest = tail;
        Ok(head)
    }

    pub(crate) fn array<const N: usize>(
        &mut self,
        field: &'static str,
    ) -> Result<[u8; N], DecodeError> {
        let slice = self.take(N, field)?;
        let mut out = [0u8; N];
        out.copy_from_slice(slice);
        Ok(out)
    }

    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        Ok(self.take(1, field)?[0])
    }

    pub(crate) fn u64be(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array(field)?))
    }

    pub(crate) fn varint(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        let mut value: u64 = 0;
        for index in 0..10u32 {
            let byte = self.u8(field)?;
            let payload = u64::from(byte & 0x7f);
            if index == 9 && payload > 1 {
                return Err(DecodeError::InvalidVarint { field });
            }
            value |= payload << (7 * index);
            if byte & 0x80 == 0 {
                // Minimal: a continuation byte followed by a zero final byte is redundant.
                if index > 0 && byte == 0 {
                    return Err(DecodeError::InvalidVarint { field });
                }
                return Ok(value);
            }
        }
        Err(DecodeError::InvalidVarint { field })
    }

    /// A varint that must fit `max`.
    pub(crate) fn varint_max(&mut self, max: u64, field: &'static str) -> Result<u64, DecodeError> {
        let value = self.varint(field)?;
        if value > max {
            return Err(DecodeError::InvalidValue { field });
        }
        Ok(value)
    }

    /// A varint-length-prefixed byte string of at most `max` bytes.
    pub(crate) fn length_prefixed(
        &mut self,
        max: usize,
        field: &'static str,
    ) -> Result<&'a [u8], DecodeError> {
        let len = self.varint_max(max as u64, field)?;
        // `len <= max`, which is a usize, so the conversion is lossless.
        self.take(len as usize, field)
    }

    /// A flag byte that must be 0 or 1.
    pub(crate) fn bool(&mut self, field: &'static str) -> Result<bool, DecodeError> {
        match self.u8(field)? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(DecodeError::InvalidValue { field }),
        }
    }

    pub(crate) fn finish(self) -> Result<(), DecodeError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes { count: self.rest.len() })
        }
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    #[test]
    fn varints_round_trip_at_boundaries() {
        for value in [0, 1, 127, 128, 16_383, 16_384, u64::from(u32::MAX), u64::MAX] {
            let mut writer = Writer::new();
            writer.varint(value);
            let bytes = writer.finish();
            let mut reader = Reader::new(&bytes);
            assert_eq!(reader.varint("v").unwrap(), value);
            reader.finish().unwrap();
        }
    }

    #[test]
    fn varints_reject_non_minimal_overlong_and_overflow() {
        let err = |bytes: &[u8]| Reader::new(bytes).varint("v").unwrap_err();
        assert_eq!(err(&[0x80, 0x00]), DecodeError::InvalidVarint { field: "v" });
        assert_eq!(err(&[0xff; 11]), DecodeError::InvalidVarint { field: "v" });
        let mut overflow = [0xff; 10];
        overflow[9] = 0x02;
        assert_eq!(err(&overflow), DecodeError::InvalidVarint { field: "v" });
        assert_eq!(err(&[0x80]), DecodeError::Truncated { field: "v" });
    }

    #[test]
    fn trailing_bytes_and_bad_flags_are_errors() {
        let mut reader = Reader::new(&[1, 2]);
        assert!(reader.bool("flag").unwrap());
        assert_eq!(reader.finish(), Err(DecodeError::TrailingBytes { count: 1 }));
        assert_eq!(
            Reader::new(&[2]).bool("flag"),
            Err(DecodeError::InvalidValue { field: "flag" })
        );
        assert_eq!(
            Reader::new(&[5, 1]).length_prefixed(4, "s"),
            Err(DecodeError::InvalidValue { field: "s" })
        );
    }
}
