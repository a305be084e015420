//! `pi-agent parse`: read one or many telegrams (or Smarty/AT cipher frames) from a file or
//! stdin and print, per telegram, the header, the CRC verdict, every object and the typed
//! readings. Errors are reported per telegram with their byte offset and parsing continues.
//!
//! Exit status: 0 when every telegram was read with a valid (or, on DSMR 2.2/3, absent) CRC,
//! 1 when any telegram or byte range had a problem, 2 when the input could not be read at all.

use std::fmt::Write as _;
use std::io::{self, Read, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use protocol::p1::cipher::CipherFrameError;
use protocol::p1::readings::{Direction, MbusKind, TariffMeaning};
use protocol::p1::registry::{describe, value_kind};
use protocol::p1::{
    CipherFrameIn, Country, CrcCheck, FrameError, Framer, MeterKey, Readings,
    SMARTY_AUTHENTICATION_KEY, Telegram, Timestamp, ValueKind,
};
use serde_json::{Value, json};

/// Options of `pi-agent parse`.
#[derive(Debug, Args)]
pub struct ParseArgs {
    /// File with telegrams, or `-` for stdin.
    #[arg(default_value = "-")]
    input: PathBuf,
    /// Print one JSON object per line (JSON Lines) instead of text.
    #[arg(long)]
    json: bool,
    /// AES-128 key (32 hex digits) for encrypted Luxembourg Smarty / Austrian frames.
    #[arg(long, value_name = "HEX")]
    key: Option<String>,
    /// Authentication key (32 hex digits) for encrypted frames; default: the fixed Smarty value.
    /// `none` decrypts frames sealed without additional data.
    #[arg(long, value_name = "HEX", requires = "key")]
    aad: Option<String>,
    /// Interpret tariffs for this country instead of detecting it from the telegram (Belgian
    /// tariff 1 is day, Dutch tariff 1 is low).
    #[arg(long, value_enum)]
    country: Option<CountryArg>,
}

/// `--country` values.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum CountryArg {
    Nl,
    Be,
    Lu,
    At,
    Se,
    Hu,
    Other,
}

impl From<CountryArg> for Country {
    fn from(arg: CountryArg) -> Self {
        match arg {
            CountryArg::Nl => Country::Netherlands,
            CountryArg::Be => Country::Belgium,
            CountryArg::Lu => Country::Luxembourg,
            CountryArg::At => Country::Austria,
            CountryArg::Se => Country::Sweden,
            CountryArg::Hu => Country::Hungary,
            CountryArg::Other => Country::Other,
        }
    }
}

/// How to print.
#[derive(Debug, Clone, Copy)]
struct Style {
    json: bool,
    country: Option<Country>,
}

/// What one step of reading the input produced.
enum Item<'a> {
    Telegram(Telegram<'a>),
    Problem { offset: u64, message: String },
}

/// Runs the command; see the module docs for the exit status.
pub fn run(args: &ParseArgs) -> ExitCode {
    let input = match read_input(&args.input) {
        Ok(bytes) => bytes,
        Err(error) => {
            eprintln!("pi-agent parse: cannot read {}: {error}", args.input.display());
            return ExitCode::from(2);
        }
    };
    let mut out = String::new();
    let style = Style { json: args.json, country: args.country.map(Country::from) };
    let clean = match &args.key {
        Some(key) => match decrypt_all(&input, key, args.aad.as_deref()) {
            Ok(telegrams) => {
                let mut clean = true;
                for (offset, result) in telegrams {
                    let item = match result {
                        Ok(plain) => report_plain(&plain, offset, style, &mut out),
                        Err(message) => report(&Item::Problem { offset, message }, style, &mut out),
                    };
                    clean &= item;
                }
                clean
            }
            Err(message) => {
                eprintln!("pi-agent parse: {message}");
                return ExitCode::from(2);
            }
        },
        None => report_plain(&input, 0, style, &mut out),
    };
    print_out(&out);
    if clean { ExitCode::SUCCESS } else { ExitCode::from(1) }
}

#[allow(clippy::print_stdout)]
fn print_out(text: &str) {
    let mut stdout = io::stdout().lock();
    // A closed pipe (`| head`) is not an error worth reporting.
    let _ = stdout.write_all(text.as_bytes());
}

fn read_input(path: &PathBuf) -> io::Result<Vec<u8>> {
    if path.as_os_str() == "-" {
        let mut bytes = Vec::new();
        io::stdin().read_to_end(&mut bytes)?;
        Ok(bytes)
    } else {
        std::fs::read(path)
    }
}

/// Frames and reports every telegram in `bytes`; `base` is added to offsets (for decrypted
/// frames, the frame's offset). Returns whether everything was clean.
fn report_plain(bytes: &[u8], base: u64, style: Style, out: &mut String) -> bool {
    let mut framer = Framer::default();
    framer.feed(bytes);
    framer.finish();
    let mut clean = true;
    let mut seen_any = false;
    while let Some(step) = framer.next_frame() {
        let item = match step {
            Ok(frame) => match Telegram::parse(frame) {
                Ok(telegram) => Item::Telegram(telegram),
                Err(error) => Item::Problem { offset: frame.offset, message: error.to_string() },
            },
            Err(error) => Item::Problem { offset: error.offset(), message: frame_message(&error) },
        };
        seen_any |= matches!(item, Item::Telegram(_));
        // Problems are placed in the input; offsets inside a decrypted telegram stay relative
        // to its plaintext (there is no byte of the input they could point at).
        let item = match item {
            Item::Problem { offset, message } => Item::Problem { offset: offset + base, message },
            telegram => telegram,
        };
        clean &= report(&item, style, out);
    }
    if !seen_any {
        let message = "no telegram found (expected '/' … '!'; use --key for encrypted frames)";
        clean &= report(&Item::Problem { offset: base, message: message.to_owned() }, style, out);
    }
    clean
}

fn frame_message(error: &FrameError) -> String {
    match error {
        FrameError::Garbage { len, .. } => {
            format!("skipped {len} byte(s) that are not part of a telegram")
        }
        FrameError::Truncated { len, .. } => {
            format!("telegram truncated after {len} byte(s) (no '!' end mark)")
        }
        FrameError::Oversized { limit, .. } => {
            format!("telegram longer than {limit} bytes, dropped")
        }
    }
}

/// Splits `input` (binary or hex text) into cipher frames and decrypts each.
#[allow(clippy::type_complexity)]
fn decrypt_all(
    input: &[u8],
    key: &str,
    aad: Option<&str>,
) -> Result<Vec<(u64, Result<Vec<u8>, String>)>, String> {
    let key = MeterKey::from_hex(key.trim()).map_err(|error| format!("--key: {error}"))?;
    let auth = match aad.map(str::trim) {
        None => Some(SMARTY_AUTHENTICATION_KEY),
        Some(text) if text.eq_ignore_ascii_case("none") => None,
        Some(text) => {
            Some(*MeterKey::from_hex(text).map_err(|error| format!("--aad: {error}"))?.as_bytes())
        }
    };
    let bytes = if input.first() == Some(&0xDB) { input.to_vec() } else { hex_text(input)? };
    let mut results = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        match CipherFrameIn::split(&bytes[pos..]) {
            Ok((frame, used)) => {
                let result = frame.decrypt(&key, auth.as_ref()).map_err(|error| error.to_string());
                results.push((pos as u64, result));
                pos += used;
            }
            Err(CipherFrameError::Incomplete { needed }) => {
                let have = bytes.len() - pos;
                results.push((
                    pos as u64,
                    Err(format!("cipher frame truncated: {have} of {needed} bytes")),
                ));
                break;
            }
            Err(error) => {
                results.push((pos as u64, Err(error.to_string())));
                // Resynchronise on the next 0xDB 0x08.
                let next = bytes[pos + 1..].windows(2).position(|w| w == [0xDB, 0x08]);
                match next {
                    Some(skip) => pos += 1 + skip,
                    None => break,
                }
            }
        }
    }
    Ok(results)
}

/// Hex digits with any whitespace between them (the athombv fixture format).
fn hex_text(input: &[u8]) -> Result<Vec<u8>, String> {
    let digits: Vec<u8> = input.iter().copied().filter(|b| !b.is_ascii_whitespace()).collect();
    if !digits.len().is_multiple_of(2) || !digits.iter().all(u8::is_ascii_hexdigit) {
        return Err("input is neither a binary cipher frame (0xDB …) nor hex text".to_owned());
    }
    Ok(digits
        .chunks_exact(2)
        .map(|pair| {
            let nibble = |d: u8| (d as char).to_digit(16).unwrap_or(0) as u8;
            nibble(pair[0]) << 4 | nibble(pair[1])
        })
        .collect())
}

/// Appends one item's report; returns whether it was clean.
fn report(item: &Item<'_>, style: Style, out: &mut String) -> bool {
    let json = style.json;
    match item {
        Item::Problem { offset, message } => {
            if json {
                let line = json!({ "error": message, "offset": offset });
                let _ = writeln!(out, "{line}");
            } else {
                let _ = writeln!(out, "error at byte {offset}: {message}\n");
            }
            false
        }
        Item::Telegram(telegram) => {
            let readings = match style.country {
                Some(country) => Readings::with_country(telegram, country),
                None => Readings::from_telegram(telegram),
            };
            if json {
                let _ = writeln!(out, "{}", telegram_json(telegram, &readings));
            } else {
                telegram_text(telegram, &readings, out);
            }
            telegram.trusted().is_ok()
                && telegram.malformed_lines().is_empty()
                && readings.problems.is_empty()
        }
    }
}

fn crc_json(crc: CrcCheck) -> Value {
    match crc {
        CrcCheck::Absent { computed } => {
            json!({ "status": "absent", "given": null, "computed": format!("{computed:04X}"), "valid": false })
        }
        CrcCheck::Valid { value, digits } => json!({
            "status": if digits < 4 { "valid-unpadded" } else { "valid" },
            "given": format!("{value:0width$X}", width = usize::from(digits)),
            "computed": format!("{value:04X}"),
            "valid": true,
        }),
        CrcCheck::Mismatch { given, computed, .. } => json!({
            "status": "mismatch", "given": format!("{given:04X}"), "computed": format!("{computed:04X}"), "valid": false
        }),
    }
}

fn crc_text(crc: CrcCheck) -> String {
    match crc {
        CrcCheck::Absent { computed } => {
            format!("absent (DSMR 2.2/3 or D0 meter; computed {computed:04X})")
        }
        CrcCheck::Valid { value, digits: 4 } => format!("{value:04X} valid"),
        CrcCheck::Valid { value, digits } => {
            format!(
                "{value:0width$X} valid (unpadded, {digits} digits; {value:04X})",
                width = usize::from(digits)
            )
        }
        CrcCheck::Mismatch { given, computed, .. } => {
            format!("MISMATCH: given {given:04X}, computed {computed:04X}")
        }
    }
}

fn kind_name(kind: ValueKind) -> &'static str {
    match kind {
        ValueKind::Empty => "empty",
        ValueKind::Quantity => "quantity",
        ValueKind::Number => "number",
        ValueKind::Timestamp => "timestamp",
        ValueKind::ObisReference => "obis",
        ValueKind::Hex => "hex",
        ValueKind::Text => "text",
    }
}

fn utc(stamp: Option<Timestamp>) -> Value {
    stamp.map_or(Value::Null, |s| Value::String(s.to_utc().to_string()))
}

fn telegram_json(telegram: &Telegram<'_>, readings: &Readings<'_>) -> Value {
    let objects: Vec<Value> = telegram
        .objects()
        .iter()
        .map(|object| {
            let values: Vec<Value> = object
                .values()
                .enumerate()
                .map(|(index, value)| {
                    let kind = value_kind(object.obis, index, &value);
                    let mut entry =
                        json!({ "kind": kind_name(kind), "value": value.text, "unit": value.unit });
                    if kind == ValueKind::Timestamp
                        && let Ok(stamp) = value.timestamp()
                    {
                        entry["utc"] = Value::String(stamp.to_utc().to_string());
                        entry["flag_agrees_with_eu_rule"] =
                            Value::Bool(stamp.flag_agrees_with_eu_rule());
                    }
                    entry
                })
                .collect();
            let info = describe(object.obis);
            json!({
                "obis": object.obis.to_string(),
                "name": info.map(|i| i.name),
                "description": info.map(|i| i.description),
                "offset": telegram.offset() + object.offset as u64,
                "values": values,
            })
        })
        .collect();
    let malformed: Vec<Value> = telegram
        .malformed_lines()
        .iter()
        .map(|line| json!({ "offset": telegram.offset() + line.offset as u64, "line": line.text, "error": line.error.to_string() }))
        .collect();
    json!({
        "offset": telegram.offset(),
        "header": telegram.header(),
        "crc": crc_json(telegram.crc()),
        "objects": objects,
        "malformed_lines": malformed,
        "readings": readings_json(readings),
    })
}

fn meaning_name(meaning: TariffMeaning) -> Option<&'static str> {
    match meaning {
        TariffMeaning::Low => Some("low"),
        TariffMeaning::Normal => Some("normal"),
        TariffMeaning::Day => Some("day"),
        TariffMeaning::Night => Some("night"),
        TariffMeaning::Unspecified => None,
    }
}

fn quantity_json(q: Option<protocol::p1::Quantity<'_>>) -> Value {
    q.map_or(Value::Null, |q| json!({ "value": q.value.as_str(), "unit": q.unit }))
}

fn mbus_kind_name(kind: MbusKind) -> String {
    match kind {
        MbusKind::Electricity => "electricity".to_owned(),
        MbusKind::Gas => "gas".to_owned(),
        MbusKind::Heat => "heat".to_owned(),
        MbusKind::WarmWater => "warm_water".to_owned(),
        MbusKind::Water => "water".to_owned(),
        MbusKind::Other(n) => format!("type_{n}"),
    }
}

fn readings_json(r: &Readings<'_>) -> Value {
    let energy: Vec<Value> = r
        .energy
        .iter()
        .map(|e| {
            json!({
                "direction": if e.direction == Direction::Import { "import" } else { "export" },
                "tariff": e.tariff,
                "meaning": meaning_name(e.meaning),
                "value": e.energy.value.as_str(),
                "unit": e.energy.unit,
            })
        })
        .collect();
    let phases: Vec<Value> = r
        .phases
        .iter()
        .map(|p| {
            json!({
                "voltage": quantity_json(p.voltage), "current": quantity_json(p.current),
                "power_import": quantity_json(p.power_import), "power_export": quantity_json(p.power_export),
                "voltage_sags": p.voltage_sags, "voltage_swells": p.voltage_swells,
            })
        })
        .collect();
    let mbus: Vec<Value> = r
        .mbus
        .iter()
        .map(|d| {
            json!({
                "channel": d.channel, "kind": d.kind.map(mbus_kind_name), "equipment_id": d.equipment_id,
                "reading": quantity_json(d.reading), "captured_at": utc(d.captured_at), "valve": d.valve,
            })
        })
        .collect();
    json!({
        "country": format!("{:?}", r.country).to_lowercase(),
        "version": r.version,
        "meter_time": utc(r.meter_time),
        "equipment_id": r.equipment_id,
        "energy": energy,
        "tariff_indicator": r.tariff_indicator.map(|(raw, number, meaning)| json!({ "raw": raw, "tariff": number, "meaning": meaning_name(meaning) })),
        "power_import": quantity_json(r.power_import),
        "power_export": quantity_json(r.power_export),
        "phases": phases,
        "power_failures": r.power_failures,
        "long_power_failures": r.long_power_failures,
        "power_failure_log": r.power_failure_log.iter().map(|f| json!({ "ended": f.ended.to_utc().to_string(), "duration": quantity_json(Some(f.duration)) })).collect::<Vec<_>>(),
        "text_message": r.text_message,
        "demand_current": quantity_json(r.demand_current),
        "demand_month_peak": r.demand_month_peak.map(|p| json!({ "at": utc(p.at), "demand": quantity_json(Some(p.demand)) })),
        "demand_peak_history": r.demand_peak_history.iter().map(|p| json!({ "month": utc(p.month), "at": utc(p.at), "demand": quantity_json(Some(p.demand)) })).collect::<Vec<_>>(),
        "breaker_state": r.breaker_state,
        "limiter_threshold": quantity_json(r.limiter_threshold),
        "mbus": mbus,
        "problems": r.problems.iter().map(ToString::to_string).collect::<Vec<_>>(),
    })
}

fn telegram_text(telegram: &Telegram<'_>, r: &Readings<'_>, out: &mut String) {
    // Control bytes (one Irish meter sends 0x02 in its header) are shown escaped.
    let header: String = telegram
        .header()
        .chars()
        .map(|c| if c.is_control() { format!("\\x{:02X}", u32::from(c)) } else { c.to_string() })
        .collect();
    let _ = writeln!(out, "telegram at byte {}: /{header}", telegram.offset());
    let _ = writeln!(out, "  crc: {}", crc_text(telegram.crc()));
    let _ = writeln!(out, "  objects:");
    for object in telegram.objects() {
        let values: Vec<String> = object
            .values()
            .enumerate()
            .map(|(index, value)| {
                let kind = value_kind(object.obis, index, &value);
                match (kind, value.timestamp(), value.unit) {
                    (ValueKind::Timestamp, Ok(stamp), _) => {
                        format!("{} ({})", stamp.to_utc(), value.text)
                    }
                    (ValueKind::Empty, ..) => "()".to_owned(),
                    (_, _, Some(unit)) => format!("{} {unit}", value.text),
                    _ => value.text.to_owned(),
                }
            })
            .collect();
        let name = describe(object.obis).map_or("", |info| info.description);
        let _ =
            writeln!(out, "    {:<16} {:<40} {}", object.obis.to_string(), name, values.join("  "));
    }
    for line in telegram.malformed_lines() {
        let offset = telegram.offset() + line.offset as u64;
        let _ = writeln!(out, "  malformed line at byte {offset}: {} ({})", line.text, line.error);
    }
    let _ = writeln!(out, "  readings ({:?}):", r.country);
    if let Some(time) = r.meter_time {
        let _ = writeln!(out, "    meter time        {}", time.to_utc());
    }
    for e in &r.energy {
        let direction = if e.direction == Direction::Import { "import" } else { "export" };
        let tariff = e.tariff.map_or("total".to_owned(), |t| format!("tariff {t}"));
        let meaning = meaning_name(e.meaning).map_or(String::new(), |m| format!(" ({m})"));
        let _ = writeln!(out, "    {direction} {tariff}{meaning:<10} {}", e.energy);
    }
    if let Some((raw, _, meaning)) = r.tariff_indicator {
        let meaning = meaning_name(meaning).map_or(String::new(), |m| format!(" ({m})"));
        let _ = writeln!(out, "    active tariff     {raw}{meaning}");
    }
    for (label, q) in [("power import", r.power_import), ("power export", r.power_export)] {
        if let Some(q) = q {
            let _ = writeln!(out, "    {label:<17} {q}");
        }
    }
    for (index, p) in r.phases.iter().enumerate() {
        let parts: Vec<String> =
            [("V", p.voltage), ("I", p.current), ("P+", p.power_import), ("P-", p.power_export)]
                .iter()
                .filter_map(|(label, q)| q.map(|q| format!("{label} {q}")))
                .collect();
        if !parts.is_empty() {
            let _ = writeln!(out, "    L{}                {}", index + 1, parts.join(", "));
        }
    }
    if let Some(count) = r.power_failures {
        let _ = writeln!(
            out,
            "    power failures    {count} (long: {})",
            r.long_power_failures.unwrap_or(0)
        );
    }
    for failure in &r.power_failure_log {
        let _ = writeln!(
            out,
            "    failure ended     {} after {}",
            failure.ended.to_utc(),
            failure.duration
        );
    }
    if let Some(q) = r.demand_current {
        let _ = writeln!(out, "    demand (15 min)   {q}");
    }
    if let Some(peak) = r.demand_month_peak {
        let at = peak.at.map_or("-".to_owned(), |t| t.to_utc().to_string());
        let _ = writeln!(out, "    month peak        {} at {at}", peak.demand);
    }
    if let Some(text) = &r.text_message {
        let _ = writeln!(out, "    text message      {}", text.escape_debug());
    }
    for d in &r.mbus {
        let kind = d.kind.map_or("device".to_owned(), mbus_kind_name);
        let reading = d.reading.map_or("-".to_owned(), |q| q.to_string());
        let at = d.captured_at.map_or(String::new(), |t| format!(" at {}", t.to_utc()));
        let _ = writeln!(out, "    M-Bus {} {kind:<8} {reading}{at}", d.channel);
    }
    for problem in &r.problems {
        let _ = writeln!(out, "    problem: {problem}");
    }
    out.push('\n');
}
