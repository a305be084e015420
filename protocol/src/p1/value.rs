//! The pieces of a data line: OBIS codes, exact decimals, units and the raw `(…)` values.
//!
//! Everything here borrows from the telegram text: a [`RawValue`] is two `&str` slices, a
//! [`Decimal`] is the digits exactly as the meter printed them. Numbers are never turned into
//! floating point on the way in; [`Decimal::mantissa_and_scale`] gives exact integer arithmetic to
//! whoever needs to compute with them.

use core::fmt;
use core::str::FromStr;

use thiserror::Error;

use super::swar::lone_non_digit;
use super::time::{Timestamp, TimestampError};

/// An OBIS reduced ID as DSMR uses it: `A-B:C.D.E`, plus the `*F` group that IEC 62056-21 (D0)
/// meters such as the EasyMeter Q3D append. `B` is the channel: 0 for the meter itself, 1–4 for
/// M-Bus devices (gas, water, heat).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObisCode {
    /// Medium: 0 abstract, 1 electricity, 7 gas (rare in P1).
    pub a: u8,
    /// Channel.
    pub b: u8,
    /// Quantity.
    pub c: u8,
    /// Processing (instantaneous, cumulative, …).
    pub d: u8,
    /// Tariff or classification.
    pub e: u8,
    /// Billing period, only on D0 meters (`*255`).
    pub f: Option<u8>,
}

impl ObisCode {
    /// `A-B:C.D.E` without an F group.
    #[must_use]
    pub const fn new(a: u8, b: u8, c: u8, d: u8, e: u8) -> Self {
        ObisCode { a, b, c, d, e, f: None }
    }

    /// The code with `B` (channel) set to 0, for matching M-Bus objects of any channel.
    #[must_use]
    pub const fn any_channel(self) -> Self {
        ObisCode { b: 0, f: None, ..self }
    }

    /// `(C, D, E)`: what the object measures, regardless of medium and channel.
    #[must_use]
    pub const fn cde(self) -> (u8, u8, u8) {
        (self.c, self.d, self.e)
    }

    /// Parses the start of `text` as an OBIS code; returns it and the number of bytes used.
    /// Accepts what meters send: 1–3 digit groups separated by `-`, `:`, `.`, `.`, and an
    /// optional F group as `*F` or `.F`.
    #[must_use]
    #[inline]
    pub fn parse_prefix(text: &[u8]) -> Option<(Self, usize)> {
        // Straight-line code: this runs once per line of every telegram.
        let mut pos = 0;
        let a = read_group(text, &mut pos)?;
        expect(text, &mut pos, b'-')?;
        let b = read_group(text, &mut pos)?;
        expect(text, &mut pos, b':')?;
        let c = read_group(text, &mut pos)?;
        expect(text, &mut pos, b'.')?;
        let d = read_group(text, &mut pos)?;
        expect(text, &mut pos, b'.')?;
        let e = read_group(text, &mut pos)?;
        // The F group: `*F` on D0 meters, `.F` in the DSMR 4.2.2 specification example.
        let f = if matches!(text.get(pos), Some(b'*' | b'.'))
            && text.get(pos + 1).is_some_and(u8::is_ascii_digit)
        {
            pos += 1;
            Some(read_group(text, &mut pos)?)
        } else {
            None
        };
        Some((ObisCode { a, b, c, d, e, f }, pos))
    }
}

/// One decimal group of an OBIS code at `pos`: 1–3 digits, value ≤ 255.
#[inline(always)]
fn read_group(text: &[u8], pos: &mut usize) -> Option<u8> {
    // Unrolled: the first digit is required, two more are optional.
    let mut value = digit_at(text, *pos)?;
    *pos += 1;
    if let Some(digit) = digit_at(text, *pos) {
        value = value * 10 + digit;
        *pos += 1;
        if let Some(digit) = digit_at(text, *pos) {
            value = value * 10 + digit;
            *pos += 1;
        }
    }
    u8::try_from(value).ok()
}

/// The decimal digit at `pos`, if there is one.
#[inline(always)]
fn digit_at(text: &[u8], pos: usize) -> Option<u16> {
    let digit = text.get(pos)?.wrapping_sub(b'0');
    (digit < 10).then_some(u16::from(digit))
}

/// Consumes `separator` at `pos`.
#[inline(always)]
fn expect(text: &[u8], pos: &mut usize, separator: u8) -> Option<()> {
    if text.get(*pos) == Some(&separator) {
        *pos += 1;
        Some(())
    } else {
        None
    }
}

/// Error of [`ObisCode::from_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("not an OBIS code (expected A-B:C.D.E with groups 0-255)")]
pub struct ObisSyntaxError;

impl FromStr for ObisCode {
    type Err = ObisSyntaxError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match ObisCode::parse_prefix(text.as_bytes()) {
            Some((code, used)) if used == text.len() => Ok(code),
            _ => Err(ObisSyntaxError),
        }
    }
}

impl fmt::Display for ObisCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}:{}.{}.{}", self.a, self.b, self.c, self.d, self.e)?;
        if let Some(group) = self.f {
            write!(f, "*{group}")?;
        }
        Ok(())
    }
}

/// An exact decimal number exactly as the meter printed it (`000004.426`, `-00.5`, `13`).
///
/// Leading zeros are kept so the text can be shown and forwarded byte for byte; use
/// [`Decimal::trimmed`] for the canonical form and [`Decimal::mantissa_and_scale`] for arithmetic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Decimal<'a>(&'a str);

impl<'a> Decimal<'a> {
    /// Accepts `[-+]?digits[.digits]` (at least one digit before and, if a point is present,
    /// after it). Returns `None` otherwise.
    #[must_use]
    pub fn parse(text: &'a str) -> Option<Self> {
        let bytes = text.as_bytes();
        let unsigned = match bytes.first() {
            Some(b'-' | b'+') => &bytes[1..],
            _ => bytes,
        };
        // Digits with at most one other byte, which must be a point with digits on both sides.
        let valid = match lone_non_digit(unsigned)? {
            None => !unsigned.is_empty(),
            Some(point) => unsigned[point] == b'.' && point > 0 && point + 1 < unsigned.len(),
        };
        valid.then_some(Decimal(text))
    }

    /// The digits as they appeared on the wire.
    #[must_use]
    pub const fn as_str(&self) -> &'a str {
        self.0
    }

    /// The same number without redundant leading zeros and without a `+` sign: `000004.426` →
    /// `4.426`, `000.00` → `0.00`, `-007` → `-7`. Trailing zeros are significant and kept.
    #[must_use]
    pub fn trimmed(&self) -> TrimmedDecimal<'a> {
        let (negative, unsigned) = match self.0.as_bytes().first() {
            Some(b'-') => (true, &self.0[1..]),
            Some(b'+') => (false, &self.0[1..]),
            _ => (false, self.0),
        };
        let int_len = unsigned.find('.').unwrap_or(unsigned.len());
        let zeros = unsigned[..int_len].bytes().take_while(|&b| b == b'0').count();
        let digits = &unsigned[zeros.min(int_len - 1)..];
        let is_zero = digits.bytes().all(|b| b == b'0' || b == b'.');
        TrimmedDecimal { negative: negative && !is_zero, digits }
    }

    /// The value as `mantissa × 10^-scale`, exactly (`000004.426` → `(4426, 3)`), or `None` if it
    /// does not fit an `i64`.
    #[must_use]
    pub fn mantissa_and_scale(&self) -> Option<(i64, u32)> {
        let mut mantissa: i64 = 0;
        let mut scale = 0u32;
        let mut after_point = false;
        let (negative, unsigned) = match self.0.as_bytes().first() {
            Some(b'-') => (true, &self.0[1..]),
            Some(b'+') => (false, &self.0[1..]),
            _ => (false, self.0),
        };
        for byte in unsigned.bytes() {
            if byte == b'.' {
                after_point = true;
                continue;
            }
            mantissa = mantissa.checked_mul(10)?.checked_add(i64::from(byte - b'0'))?;
            scale += u32::from(after_point);
        }
        Some((if negative { -mantissa } else { mantissa }, scale))
    }

    /// The value as an integer, if it has no fractional digits other than zeros and fits `u64`
    /// (failure counts, device types).
    #[must_use]
    pub fn to_u64(&self) -> Option<u64> {
        let bytes = self.0.as_bytes();
        if bytes.len() <= 18 && lone_non_digit(bytes) == Some(None) {
            // The usual case (counts): plain digits that cannot overflow, no division.
            return Some(bytes.iter().fold(0, |acc, &digit| acc * 10 + u64::from(digit - b'0')));
        }
        let (mantissa, scale) = self.mantissa_and_scale()?;
        let divisor = 10i64.checked_pow(scale)?;
        if mantissa < 0 || mantissa % divisor != 0 {
            return None;
        }
        u64::try_from(mantissa / divisor).ok()
    }
}

impl fmt::Display for Decimal<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// [`Decimal::trimmed`]: canonical text of a decimal, borrowed except for the sign.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrimmedDecimal<'a> {
    negative: bool,
    digits: &'a str,
}

impl fmt::Display for TrimmedDecimal<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.negative {
            f.write_str("-")?;
        }
        f.write_str(self.digits)
    }
}

/// The units DSMR meters print, recognised case-insensitively (`kWh`, `kwh`, `KWH` are the same).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Unit {
    /// kWh
    KiloWattHour,
    /// Wh (Austrian Sagemcom T210-D-r)
    WattHour,
    /// kW
    KiloWatt,
    /// W
    Watt,
    /// kvarh
    KiloVarHour,
    /// varh
    VarHour,
    /// kvar
    KiloVar,
    /// var
    Var,
    /// kVA
    KiloVoltAmpere,
    /// V
    Volt,
    /// A
    Ampere,
    /// m3
    CubicMetre,
    /// GJ
    GigaJoule,
    /// Hz
    Hertz,
    /// s
    Second,
}

impl Unit {
    /// Recognises a unit; `None` for anything else (the raw text is kept regardless).
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        const UNITS: [(&str, Unit); 15] = [
            ("kWh", Unit::KiloWattHour),
            ("Wh", Unit::WattHour),
            ("kW", Unit::KiloWatt),
            ("W", Unit::Watt),
            ("kvarh", Unit::KiloVarHour),
            ("varh", Unit::VarHour),
            ("kvar", Unit::KiloVar),
            ("var", Unit::Var),
            ("kVA", Unit::KiloVoltAmpere),
            ("V", Unit::Volt),
            ("A", Unit::Ampere),
            ("m3", Unit::CubicMetre),
            ("GJ", Unit::GigaJoule),
            ("Hz", Unit::Hertz),
            ("s", Unit::Second),
        ];
        UNITS.iter().find(|(name, _)| name.eq_ignore_ascii_case(text)).map(|&(_, unit)| unit)
    }

    /// The canonical spelling.
    #[must_use]
    pub const fn symbol(self) -> &'static str {
        match self {
            Unit::KiloWattHour => "kWh",
            Unit::WattHour => "Wh",
            Unit::KiloWatt => "kW",
            Unit::Watt => "W",
            Unit::KiloVarHour => "kvarh",
            Unit::VarHour => "varh",
            Unit::KiloVar => "kvar",
            Unit::Var => "var",
            Unit::KiloVoltAmpere => "kVA",
            Unit::Volt => "V",
            Unit::Ampere => "A",
            Unit::CubicMetre => "m3",
            Unit::GigaJoule => "GJ",
            Unit::Hertz => "Hz",
            Unit::Second => "s",
        }
    }
}

/// A number with its unit as printed, e.g. `000004.426*kWh`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quantity<'a> {
    /// The exact digits.
    pub value: Decimal<'a>,
    /// The unit text as printed (may be lower case); `None` when the meter sent none.
    pub unit: Option<&'a str>,
}

impl Quantity<'_> {
    /// The recognised unit, if any.
    #[must_use]
    pub fn unit_kind(&self) -> Option<Unit> {
        self.unit.and_then(Unit::parse)
    }
}

impl fmt::Display for Quantity<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.unit {
            Some(unit) => write!(f, "{} {unit}", self.value),
            None => write!(f, "{}", self.value),
        }
    }
}

/// The contents of one `(…)` group, untrusted and unclassified: the text before an optional `*`
/// and the unit after it. What it means depends on the OBIS code it belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawValue<'a> {
    /// Text inside the parentheses, before any `*`.
    pub text: &'a str,
    /// Text after the `*`, if there was one.
    pub unit: Option<&'a str>,
}

/// Why a value was not what its OBIS code needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum ValueError {
    /// Expected a decimal number.
    #[error("expected a decimal number")]
    NotDecimal,
    /// Expected a timestamp.
    #[error("bad timestamp: {0}")]
    Timestamp(#[from] TimestampError),
    /// Expected hex-encoded octets.
    #[error("expected an even number of hex digits")]
    NotHex,
    /// The object has fewer values than its definition needs.
    #[error("value missing")]
    Missing,
}

impl<'a> RawValue<'a> {
    /// Splits the inside of a `(…)` group at its last `*`.
    #[must_use]
    pub fn new(inner: &'a str) -> Self {
        // Values are short: a plain backwards scan beats a memrchr call.
        match inner.bytes().rposition(|byte| byte == b'*') {
            Some(star) => RawValue { text: &inner[..star], unit: Some(&inner[star + 1..]) },
            None => RawValue { text: inner, unit: None },
        }
    }

    /// `()`: no value.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.text.is_empty() && self.unit.is_none()
    }

    /// The value as a decimal with its unit.
    pub fn quantity(&self) -> Result<Quantity<'a>, ValueError> {
        let value = Decimal::parse(self.text).ok_or(ValueError::NotDecimal)?;
        Ok(Quantity { value, unit: self.unit })
    }

    /// The value as a timestamp.
    pub fn timestamp(&self) -> Result<Timestamp, ValueError> {
        Ok(Timestamp::parse(self.text)?)
    }

    /// The value as hex-encoded octets (equipment ids, text messages), checked but not decoded.
    pub fn hex(&self) -> Result<&'a str, ValueError> {
        if self.text.len().is_multiple_of(2) && self.text.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(self.text)
        } else {
            Err(ValueError::NotHex)
        }
    }

    /// A best guess at the kind of value, for showing objects nobody has described: used only
    /// when the OBIS code is unknown. Twelve digits plus `S`/`W` is a timestamp, a `*unit` makes
    /// a quantity, `A-B:C.D.E` is an OBIS reference.
    #[must_use]
    pub fn guess_kind(&self) -> ValueKind {
        if self.is_empty() {
            ValueKind::Empty
        } else if self.unit.is_some() && Decimal::parse(self.text).is_some() {
            ValueKind::Quantity
        } else if self.text.len() == 13 && Timestamp::parse(self.text).is_ok() {
            ValueKind::Timestamp
        } else if self.text.parse::<ObisCode>().is_ok() {
            ValueKind::ObisReference
        } else if Decimal::parse(self.text).is_some() {
            ValueKind::Number
        } else {
            ValueKind::Text
        }
    }
}

impl fmt::Display for RawValue<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.unit {
            Some(unit) => write!(f, "{}*{unit}", self.text),
            None => f.write_str(self.text),
        }
    }
}

/// What a value holds, as declared for known OBIS codes or guessed for unknown ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValueKind {
    /// `()`
    Empty,
    /// A decimal with a unit.
    Quantity,
    /// A decimal without a unit (counts, power factor).
    Number,
    /// A `TST` timestamp.
    Timestamp,
    /// Another object's OBIS code (`0-0:96.7.19` in the failure log).
    ObisReference,
    /// Hex-encoded octets (equipment ids, text messages).
    Hex,
    /// Any other string (tariff indicator `0002`, switch position).
    Text,
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::{Decimal, ObisCode, RawValue, Unit, ValueKind};

    #[test]
    fn obis_codes_parse_with_and_without_f_group() {
        let code: ObisCode = "1-0:1.8.1".parse().unwrap();
        assert_eq!(code, ObisCode::new(1, 0, 1, 8, 1));
        assert_eq!(code.to_string(), "1-0:1.8.1");
        let (d0, used) = ObisCode::parse_prefix(b"1-0:1.8.0*255(00052185.7825309*kWh)").unwrap();
        assert_eq!(d0.f, Some(255));
        assert_eq!(used, 13);
        assert_eq!(d0.to_string(), "1-0:1.8.0*255");
        let (dotted, _) = ObisCode::parse_prefix(b"1-0:31.7.0.255(001*A)").unwrap();
        assert_eq!(dotted, ObisCode { f: Some(255), ..ObisCode::new(1, 0, 31, 7, 0) });
        assert!("1-0:1.8".parse::<ObisCode>().is_err());
        assert!("1-0:256.8.1".parse::<ObisCode>().is_err());
        assert!("1-0:1.8.1x".parse::<ObisCode>().is_err());
    }

    #[test]
    fn decimals_keep_their_digits_and_trim_on_request() {
        let d = Decimal::parse("000004.426").unwrap();
        assert_eq!(d.as_str(), "000004.426");
        assert_eq!(d.trimmed().to_string(), "4.426");
        assert_eq!(d.mantissa_and_scale(), Some((4426, 3)));
        assert_eq!(Decimal::parse("000.00").unwrap().trimmed().to_string(), "0.00");
        assert_eq!(Decimal::parse("-007").unwrap().trimmed().to_string(), "-7");
        assert_eq!(Decimal::parse("-0.0").unwrap().trimmed().to_string(), "0.0");
        assert_eq!(Decimal::parse("00013").unwrap().to_u64(), Some(13));
        assert_eq!(Decimal::parse("1.5").unwrap().to_u64(), None);
        for bad in ["", ".", "1.", ".5", "1.2.3", "12a", "-", "0x10"] {
            assert!(Decimal::parse(bad).is_none(), "{bad:?}");
        }
        assert_eq!(Decimal::parse("99999999999999999999").unwrap().mantissa_and_scale(), None);
    }

    #[test]
    fn units_are_case_insensitive() {
        assert_eq!(Unit::parse("kwh"), Some(Unit::KiloWattHour));
        assert_eq!(Unit::parse("KW"), Some(Unit::KiloWatt));
        assert_eq!(Unit::parse("m3"), Some(Unit::CubicMetre));
        assert_eq!(Unit::parse("furlong"), None);
    }

    #[test]
    fn raw_values_split_units_and_guess_kinds() {
        let v = RawValue::new("000004.426*kWh");
        assert_eq!((v.text, v.unit), ("000004.426", Some("kWh")));
        assert_eq!(v.guess_kind(), ValueKind::Quantity);
        assert_eq!(RawValue::new("170102192002W").guess_kind(), ValueKind::Timestamp);
        assert_eq!(RawValue::new("0-0:96.7.19").guess_kind(), ValueKind::ObisReference);
        assert_eq!(RawValue::new("").guess_kind(), ValueKind::Empty);
        assert_eq!(RawValue::new("4.556").guess_kind(), ValueKind::Number);
        assert_eq!(RawValue::new("4B38").guess_kind(), ValueKind::Text);
        assert_eq!(RawValue::new("4B38").hex(), Ok("4B38"));
        assert!(RawValue::new("4B3").hex().is_err());
    }
}
