//! Export of a device's consent history as JSON consent records (ISO/IEC TS 27560 fields),
//! verifiable offline.
//!
//! The export carries the evidence next to the records: every log entry (hex) with its own
//! content key, the device identity and the owner's public keys. [`verify_export`] needs nothing
//! else: it checks the chain, the owner's signatures and the key commitments
//! ([`verify_chain`]), decrypts every event, rebuilds the records from the events and refuses
//! the export if the JSON records differ in any field. Giving out per-entry content keys reveals
//! those entries only; the household and grant keys stay in the wallet.
//!
//! Record fields follow ISO/IEC TS 27560:2023's consent-record information elements in
//! snake_case (schema version, record id, PII principal, controllers, purposes with legal basis,
//! PII categories and storage, jurisdiction, validity, withdrawal, state, event history), plus
//! Meterkast's own (`max_resolution_seconds`, `tiers`, `delete_by`).

use serde_json::{Value, json};

use super::ConsentError;
use super::event::{ConsentEvent, EventKind, Grant, RemovalReason};
use super::log::verify_chain;
use crate::crypto::{PartyId, PublicKeys, SymmetricKey};

/// The export format name.
pub const EXPORT_FORMAT: &str = "meterkast-consent-export/1";

/// Why an export was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExportError {
    /// Not JSON, or a field is missing or of the wrong type.
    #[error("not a Meterkast consent export: {0}")]
    Format(&'static str),
    /// The evidence does not verify.
    #[error("the signed history does not verify: {0}")]
    Evidence(#[from] ConsentError),
    /// The records say something the signed history does not.
    #[error("the consent records do not match the signed history")]
    RecordsDoNotMatch,
}

/// A verified export.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedHistory {
    /// The device.
    pub device: PartyId,
    /// The owner.
    pub owner: PartyId,
    /// Every event, in log order.
    pub events: Vec<ConsentEvent>,
    /// The consent records (as exported, and equal to those rebuilt from the events).
    pub records: Value,
}

/// Builds the export of a log from its entries in order, each with its content key.
pub fn export_history(
    device: PartyId,
    owner: &PublicKeys,
    entries: &[(Vec<u8>, SymmetricKey)],
    exported_at: u64,
) -> Result<String, ConsentError> {
    let events = verify_chain(device, owner, entries)?;
    let log: Vec<Value> = entries
        .iter()
        .enumerate()
        .map(|(index, (bytes, key))| {
            json!({
                "index": index,
                "entry": hex(bytes),
                "content_key": hex(key.expose_secret()),
            })
        })
        .collect();
    let export = json!({
        "format": EXPORT_FORMAT,
        "exported_at": iso8601(exported_at),
        "exported_at_unix": exported_at,
        "device_id": hex(&device.0),
        "owner_public_keys": hex(&owner.encode()),
        "log": log,
        "consent_records": records(&events, exported_at),
    });
    // `Value`'s alternate Display is pretty-printed JSON and cannot fail.
    Ok(format!("{export:#}"))
}

/// Verifies an export offline (see the module documentation).
pub fn verify_export(text: &str) -> Result<VerifiedHistory, ExportError> {
    let value: Value = serde_json::from_str(text).map_err(|_| ExportError::Format("not JSON"))?;
    if value["format"] != EXPORT_FORMAT {
        return Err(ExportError::Format("format"));
    }
    let device_bytes = unhex(&value["device_id"], "device_id")?;
    let device = PartyId(device_bytes.try_into().map_err(|_| ExportError::Format("device_id"))?);
    let owner = PublicKeys::decode(&unhex(&value["owner_public_keys"], "owner_public_keys")?)
        .map_err(|_| ExportError::Format("owner_public_keys"))?;
    let exported_at =
        value["exported_at_unix"].as_u64().ok_or(ExportError::Format("exported_at_unix"))?;
    let log = value["log"].as_array().ok_or(ExportError::Format("log"))?;
    let mut entries = Vec::with_capacity(log.len());
    for item in log {
        let bytes = unhex(&item["entry"], "entry")?;
        let key: [u8; 32] = unhex(&item["content_key"], "content_key")?
            .try_into()
            .map_err(|_| ExportError::Format("content_key"))?;
        entries.push((bytes, SymmetricKey::from_bytes(key)));
    }
    let events = verify_chain(device, &owner, &entries)?;
    let rebuilt = records(&events, exported_at);
    if rebuilt != value["consent_records"] || value["exported_at"] != iso8601(exported_at) {
        return Err(ExportError::RecordsDoNotMatch);
    }
    Ok(VerifiedHistory { device, owner: owner.id(), events, records: rebuilt })
}

/// One consent record per grant and per denial, with its event history.
fn records(events: &[ConsentEvent], as_of: u64) -> Value {
    let mut records: Vec<(Option<super::event::GrantId>, Value)> = Vec::new();
    let mut removed: Option<(u64, RemovalReason)> = None;
    for event in events {
        match &event.kind {
            EventKind::Granted(grant) => {
                records.push((Some(grant.id), grant_record(grant, event.time)));
            }
            EventKind::Denied { provider, request_digest, reason } => records.push((
                None,
                json!({
                    "schema_version": "ISO/IEC TS 27560:2023",
                    "record_id": hex(request_digest),
                    "pii_controllers": [{ "controller_id": hex(&provider.0) }],
                    "state": "denied",
                    "events": [history_item("denied", event.time, reason)],
                }),
            )),
            EventKind::Amended { grant, tiers, end } => {
                if let Some((_, record)) = records.iter_mut().find(|(id, _)| *id == Some(*grant)) {
                    record["tiers"] =
                        json!(tiers.iter().map(|t| t.resolution_secs()).collect::<Vec<_>>());
                    record["max_resolution_seconds"] =
                        json!(tiers.iter().map(|t| t.resolution_secs()).min());
                    record["validity"]["valid_until"] = json!(iso8601(*end));
                    record["validity"]["valid_until_unix"] = json!(end);
                    push_history(record, history_item("amended", event.time, ""));
                }
            }
            EventKind::Revoked { grant, reason } => {
                if let Some((_, record)) = records.iter_mut().find(|(id, _)| *id == Some(*grant)) {
                    if record["state"] == "granted" {
                        record["state"] = json!("revoked");
                    }
                    push_history(record, history_item("revoked", event.time, reason));
                }
            }
            EventKind::DeviceRemoved { reason } => {
                removed = Some((event.time, *reason));
            }
            EventKind::DevicePaired { .. } => {}
        }
    }
    for (id, record) in &mut records {
        if id.is_none() || record["state"] != "granted" {
            continue;
        }
        let end = record["validity"]["valid_until_unix"].as_u64().unwrap_or(0);
        match removed {
            Some((time, reason)) if time < end => {
                record["state"] = json!("terminated");
                let why = match reason {
                    RemovalReason::Removed => "device removed",
                    RemovalReason::HandedOver => "device handed over",
                };
                push_history(record, history_item("device_removed", time, why));
            }
            _ if end <= as_of => {
                record["state"] = json!("expired");
                push_history(record, history_item("expired", end, "end of the granted period"));
            }
            _ => {}
        }
    }
    Value::Array(records.into_iter().map(|(_, record)| record).collect())
}

fn grant_record(grant: &Grant, time: u64) -> Value {
    json!({
        "schema_version": "ISO/IEC TS 27560:2023",
        "record_id": hex(&grant.id.0),
        "request_id": hex(&grant.request_digest),
        "pii_principal_id": hex(&grant.pseudonym),
        "pii_controllers": [{
            "controller_id": hex(&grant.provider.id().0),
            "name": grant.provider_name,
            "url": grant.provider_url,
            "contact": grant.provider_contact,
        }],
        "purposes": [{
            "purpose": grant.purpose,
            "purpose_category": grant.category.vocabulary_term(),
            "legal_basis": "consent (GDPR Art. 6(1)(a))",
            "pii_categories": grant.data_items.iter().map(|i| i.obis()).collect::<Vec<_>>(),
            "processing": ["collect", "store", "analyse"],
            "storage": { "delete_by": iso8601(grant.delete_by), "delete_by_unix": grant.delete_by },
            "onward_sharing": "none",
            "history_before_grant": false,
        }],
        "collection_method": "smart-meter P1 port, encrypted end to end, keys per grant",
        "consent_type": "explicit",
        "jurisdiction": "EU",
        "withdrawal_method": "Meterkast wallet: revoke (enforced by key rotation on the meter reader)",
        "tiers": grant.tiers.iter().map(|t| t.resolution_secs()).collect::<Vec<_>>(),
        "max_resolution_seconds": grant.tiers.iter().map(|t| t.resolution_secs()).min(),
        "validity": {
            "valid_from": iso8601(grant.start),
            "valid_from_unix": grant.start,
            "valid_until": iso8601(grant.end),
            "valid_until_unix": grant.end,
        },
        "state": "granted",
        "events": [history_item("granted", time, "")],
    })
}

fn history_item(kind: &str, time: u64, reason: &str) -> Value {
    json!({ "type": kind, "time": iso8601(time), "actor": actor(kind), "reason": reason })
}

fn actor(kind: &str) -> &'static str {
    if kind == "expired" { "meter reader (own clock)" } else { "household" }
}

fn push_history(record: &mut Value, item: Value) {
    if let Some(history) = record["events"].as_array_mut() {
        history.push(item);
    }
}

fn hex(bytes: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(bytes)
}

fn unhex(value: &Value, field: &'static str) -> Result<Vec<u8>, ExportError> {
    let text = value.as_str().ok_or(ExportError::Format(field))?;
    data_encoding::HEXLOWER.decode(text.as_bytes()).map_err(|_| ExportError::Format(field))
}

/// `YYYY-MM-DDTHH:MM:SSZ` for UTC seconds (proleptic Gregorian; days-from-civil inverse).
fn iso8601(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    #[test]
    fn iso8601_matches_known_dates() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(iso8601(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(iso8601(4_107_542_399), "2100-02-28T23:59:59Z");
    }
}
