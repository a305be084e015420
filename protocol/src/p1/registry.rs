//! What the OBIS codes P1 meters send mean: a name, a description and the kinds of their values.
//!
//! The table covers DSMR 2.2–5.0.2, Belgian e-MUCS, Luxembourg Smarty, the Swedish/Hungarian/
//! Austrian variants and the EasyMeter Q3D. Codes not listed are still parsed and shown (their
//! value kinds are guessed); the table only adds names.

use super::value::{ObisCode, ValueKind};

/// Description of a known object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Stable identifier, `snake_case` (used in JSON output).
    pub name: &'static str,
    /// One line for people.
    pub description: &'static str,
    /// Kinds of the values in order; the last one repeats for longer objects.
    pub layout: &'static [ValueKind],
}

use ValueKind::{Hex, Number, ObisReference, Quantity, Text, Timestamp};

/// `(A, C, D, E, channelled, info)`; `channelled` objects match any B (M-Bus channel).
type Entry = (u8, u8, u8, u8, bool, ObjectInfo);

const fn info(
    name: &'static str,
    description: &'static str,
    layout: &'static [ValueKind],
) -> ObjectInfo {
    ObjectInfo { name, description, layout }
}

const TABLE: &[Entry] = &[
    (1, 0, 2, 8, false, info("version", "P1 version", &[Text])),
    (0, 96, 1, 4, false, info("version_be", "e-MUCS version information", &[Text])),
    (0, 1, 0, 0, false, info("timestamp", "telegram time", &[Timestamp])),
    (0, 96, 1, 1, false, info("equipment_id", "equipment identifier", &[Hex])),
    (0, 42, 0, 0, false, info("logical_device_name", "COSEM logical device name (LU, HU)", &[Hex])),
    (1, 0, 0, 0, false, info("meter_id", "meter identifier (D0)", &[Text])),
    (1, 1, 8, 0, false, info("import_total", "energy imported, total", &[Quantity])),
    (1, 1, 8, 1, false, info("import_t1", "energy imported, tariff 1", &[Quantity])),
    (1, 1, 8, 2, false, info("import_t2", "energy imported, tariff 2", &[Quantity])),
    (1, 1, 8, 3, false, info("import_t3", "energy imported, tariff 3", &[Quantity])),
    (1, 1, 8, 4, false, info("import_t4", "energy imported, tariff 4", &[Quantity])),
    (1, 2, 8, 0, false, info("export_total", "energy exported, total", &[Quantity])),
    (1, 2, 8, 1, false, info("export_t1", "energy exported, tariff 1", &[Quantity])),
    (1, 2, 8, 2, false, info("export_t2", "energy exported, tariff 2", &[Quantity])),
    (1, 2, 8, 3, false, info("export_t3", "energy exported, tariff 3", &[Quantity])),
    (1, 2, 8, 4, false, info("export_t4", "energy exported, tariff 4", &[Quantity])),
    (1, 3, 8, 0, false, info("reactive_import_total", "reactive energy imported", &[Quantity])),
    (
        1,
        3,
        8,
        1,
        false,
        info("reactive_import_t1", "reactive energy imported, tariff 1", &[Quantity]),
    ),
    (
        1,
        3,
        8,
        2,
        false,
        info("reactive_import_t2", "reactive energy imported, tariff 2", &[Quantity]),
    ),
    (1, 4, 8, 0, false, info("reactive_export_total", "reactive energy exported", &[Quantity])),
    (
        1,
        4,
        8,
        1,
        false,
        info("reactive_export_t1", "reactive energy exported, tariff 1", &[Quantity]),
    ),
    (
        1,
        4,
        8,
        2,
        false,
        info("reactive_export_t2", "reactive energy exported, tariff 2", &[Quantity]),
    ),
    (1, 5, 8, 0, false, info("reactive_q1_total", "reactive energy QI", &[Quantity])),
    (1, 6, 8, 0, false, info("reactive_q2_total", "reactive energy QII", &[Quantity])),
    (1, 7, 8, 0, false, info("reactive_q3_total", "reactive energy QIII", &[Quantity])),
    (1, 8, 8, 0, false, info("reactive_q4_total", "reactive energy QIV", &[Quantity])),
    (1, 15, 8, 0, false, info("combined_total", "energy, absolute sum", &[Quantity])),
    (0, 96, 14, 0, false, info("tariff", "tariff indicator", &[Text])),
    (1, 1, 7, 0, false, info("power_import", "power imported", &[Quantity])),
    (1, 2, 7, 0, false, info("power_export", "power exported", &[Quantity])),
    (1, 3, 7, 0, false, info("reactive_power_import", "reactive power imported", &[Quantity])),
    (1, 4, 7, 0, false, info("reactive_power_export", "reactive power exported", &[Quantity])),
    (1, 5, 7, 0, false, info("reactive_power_q1", "reactive power QI", &[Quantity])),
    (1, 6, 7, 0, false, info("reactive_power_q2", "reactive power QII", &[Quantity])),
    (1, 7, 7, 0, false, info("reactive_power_q3", "reactive power QIII", &[Quantity])),
    (1, 8, 7, 0, false, info("reactive_power_q4", "reactive power QIV", &[Quantity])),
    (
        1,
        1,
        4,
        0,
        false,
        info("demand_current", "current quarter-hour average demand (BE)", &[Quantity]),
    ),
    (
        1,
        1,
        6,
        0,
        false,
        info("demand_month_peak", "this month's peak demand (BE)", &[Timestamp, Quantity]),
    ),
    (
        0,
        98,
        1,
        0,
        false,
        info("billing_history", "monthly history (BE peaks, HU billing)", &[Text]),
    ),
    (0, 17, 0, 0, false, info("limiter_threshold", "power limiter threshold", &[Quantity])),
    (0, 96, 3, 10, false, info("breaker_state", "breaker state", &[Text])),
    (1, 31, 4, 0, false, info("fuse_l1", "fuse supervision threshold L1", &[Quantity])),
    (1, 51, 4, 0, false, info("fuse_l2", "fuse supervision threshold L2", &[Quantity])),
    (1, 71, 4, 0, false, info("fuse_l3", "fuse supervision threshold L3", &[Quantity])),
    (0, 96, 7, 21, false, info("power_failures", "power failures, any phase", &[Number])),
    (0, 96, 7, 9, false, info("long_power_failures", "long power failures, any phase", &[Number])),
    (
        1,
        99,
        97,
        0,
        false,
        info(
            "power_failure_log",
            "long power failure event log",
            &[Number, ObisReference, Timestamp, Quantity],
        ),
    ),
    (1, 32, 32, 0, false, info("voltage_sags_l1", "voltage sags L1", &[Number])),
    (1, 52, 32, 0, false, info("voltage_sags_l2", "voltage sags L2", &[Number])),
    (1, 72, 32, 0, false, info("voltage_sags_l3", "voltage sags L3", &[Number])),
    (1, 32, 36, 0, false, info("voltage_swells_l1", "voltage swells L1", &[Number])),
    (1, 52, 36, 0, false, info("voltage_swells_l2", "voltage swells L2", &[Number])),
    (1, 72, 36, 0, false, info("voltage_swells_l3", "voltage swells L3", &[Number])),
    (0, 96, 13, 0, false, info("text_message", "text message", &[Hex])),
    (0, 96, 13, 1, false, info("text_message_code", "text message code (DSMR 3/4)", &[Text])),
    (1, 32, 7, 0, false, info("voltage_l1", "voltage L1", &[Quantity])),
    (1, 52, 7, 0, false, info("voltage_l2", "voltage L2", &[Quantity])),
    (1, 72, 7, 0, false, info("voltage_l3", "voltage L3", &[Quantity])),
    (1, 31, 7, 0, false, info("current_l1", "current L1", &[Quantity])),
    (1, 51, 7, 0, false, info("current_l2", "current L2", &[Quantity])),
    (1, 71, 7, 0, false, info("current_l3", "current L3", &[Quantity])),
    (1, 21, 7, 0, false, info("power_import_l1", "power imported L1", &[Quantity])),
    (1, 41, 7, 0, false, info("power_import_l2", "power imported L2", &[Quantity])),
    (1, 61, 7, 0, false, info("power_import_l3", "power imported L3", &[Quantity])),
    (1, 22, 7, 0, false, info("power_export_l1", "power exported L1", &[Quantity])),
    (1, 42, 7, 0, false, info("power_export_l2", "power exported L2", &[Quantity])),
    (1, 62, 7, 0, false, info("power_export_l3", "power exported L3", &[Quantity])),
    (1, 13, 7, 0, false, info("power_factor", "power factor", &[Number])),
    (1, 33, 7, 0, false, info("power_factor_l1", "power factor L1", &[Number])),
    (1, 53, 7, 0, false, info("power_factor_l2", "power factor L2", &[Number])),
    (1, 73, 7, 0, false, info("power_factor_l3", "power factor L3", &[Number])),
    (1, 14, 7, 0, false, info("frequency", "frequency", &[Quantity])),
    (1, 96, 5, 5, false, info("status", "equipment status (D0)", &[Text])),
    (0, 96, 1, 255, false, info("serial_number", "serial number (D0)", &[Text])),
    (0, 24, 1, 0, true, info("mbus_device_type", "M-Bus device type", &[Number])),
    (0, 96, 1, 0, true, info("mbus_equipment_id", "M-Bus equipment identifier", &[Hex])),
    (0, 96, 1, 2, true, info("mbus_ean", "M-Bus EAN (e-MUCS 2)", &[Hex])),
    (
        0,
        24,
        2,
        1,
        true,
        info("mbus_reading", "M-Bus reading with capture time", &[Timestamp, Quantity]),
    ),
    (
        0,
        24,
        2,
        3,
        true,
        info("mbus_reading_be", "M-Bus reading with capture time (BE)", &[Timestamp, Quantity]),
    ),
    (
        0,
        24,
        3,
        0,
        true,
        info(
            "mbus_profile",
            "M-Bus hourly profile (DSMR 2.2/3)",
            &[Timestamp, Text, Number, Number, ObisReference, Text, Number],
        ),
    ),
    (0, 24, 4, 0, true, info("mbus_valve", "M-Bus valve position", &[Text])),
    (0, 96, 3, 10, true, info("mbus_breaker_state", "M-Bus breaker state (BE)", &[Text])),
];

/// Describes a code, or `None` if it is not in the table.
#[must_use]
pub fn describe(obis: ObisCode) -> Option<&'static ObjectInfo> {
    let meter_itself = obis.b == 0;
    TABLE
        .iter()
        .find(|(a, c, d, e, channelled, _)| {
            *a == obis.a && (*c, *d, *e) == obis.cde() && (*channelled || meter_itself)
                // The meter's own 96.1.1/96.3.10 and a channel's differ only by B.
                && !(*channelled && meter_itself && obis.c == 96)
        })
        .or_else(|| {
            // Belgian meters put the M-Bus equipment id on 0-n:96.1.1.
            (obis.a == 0 && obis.b != 0 && obis.cde() == (96, 1, 1))
                .then(|| TABLE.iter().find(|entry| entry.5.name == "mbus_equipment_id"))
                .flatten()
        })
        .map(|entry| &entry.5)
}

/// The kind of value `index` of an object, from the table or guessed from the text.
#[must_use]
pub fn value_kind(obis: ObisCode, index: usize, value: &super::value::RawValue<'_>) -> ValueKind {
    if value.is_empty() {
        return ValueKind::Empty;
    }
    let guessed = value.guess_kind();
    // Variable-length objects (failure log, BE peak history, HU billing record) are described
    // by their first values only; their values are classified from the text.
    if matches!(obis.cde(), (99, 97, 0) | (98, 1, 0)) {
        return guessed;
    }
    let declared = describe(obis)
        .and_then(|info| info.layout.get(index).or_else(|| info.layout.last()).copied());
    match declared {
        Some(kind) if fits(kind, value) => kind,
        _ => guessed,
    }
}

/// Whether a value's text can be read as the declared kind (a meter may send anything).
fn fits(kind: ValueKind, value: &super::value::RawValue<'_>) -> bool {
    match kind {
        ValueKind::Quantity | ValueKind::Number => value.quantity().is_ok(),
        ValueKind::Timestamp => value.timestamp().is_ok(),
        ValueKind::Hex => value.hex().is_ok(),
        ValueKind::ObisReference => value.text.parse::<ObisCode>().is_ok(),
        ValueKind::Text | ValueKind::Empty => true,
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::{describe, value_kind};
    use crate::p1::value::{ObisCode, RawValue, ValueKind};

    #[test]
    fn channels_match_mbus_entries_only() {
        assert_eq!(describe(ObisCode::new(0, 2, 24, 2, 1)).unwrap().name, "mbus_reading");
        assert_eq!(describe(ObisCode::new(0, 0, 96, 1, 1)).unwrap().name, "equipment_id");
        assert_eq!(describe(ObisCode::new(0, 1, 96, 1, 1)).unwrap().name, "mbus_equipment_id");
        assert_eq!(describe(ObisCode::new(0, 1, 96, 3, 10)).unwrap().name, "mbus_breaker_state");
        assert_eq!(describe(ObisCode::new(0, 0, 96, 3, 10)).unwrap().name, "breaker_state");
        assert!(describe(ObisCode::new(1, 0, 200, 1, 1)).is_none());
        let names: std::collections::HashSet<_> = super::TABLE.iter().map(|e| e.5.name).collect();
        assert_eq!(names.len(), super::TABLE.len(), "names are unique");
    }

    #[test]
    fn failure_log_values_get_their_kinds() {
        let log = ObisCode::new(1, 0, 99, 97, 0);
        let stamp = RawValue::new("101208152415W");
        let secs = RawValue::new("0000000240*s");
        assert_eq!(value_kind(log, 0, &RawValue::new("2")), ValueKind::Number);
        assert_eq!(value_kind(log, 1, &RawValue::new("0-0:96.7.19")), ValueKind::ObisReference);
        assert_eq!(value_kind(log, 2, &stamp), ValueKind::Timestamp);
        assert_eq!(value_kind(log, 5, &secs), ValueKind::Quantity);
        assert_eq!(value_kind(log, 4, &stamp), ValueKind::Timestamp);
    }
}
