//! What the page shows, computed from the verified logs and receipts: the devices, every grant
//! with its state, and the timeline. Plain data (no keys), rebuilt after every change.
//!
//! A grant is `pending` before its start, `active` until its end, `expired` after it, and
//! `revoked` once the owner's revocation (or the device's removal) is in the log. The device
//! confirms a revocation or expiry with the delivery receipt it issues when it rotates the
//! grant's keys out (`consent.md`: final receipt, then rotation): a receipt for that grant
//! issued at or after the ending marks the rotation confirmed.

use std::collections::BTreeMap;

use protocol::consent::{DeliveryReceipt, EventKind, GrantId, RemovalReason, VerifiedEntry};

use super::household::HouseholdDevice;
use super::request::{data_label, tier_label};
use super::time::format_utc;

/// A grant's state (the names are the page's `data-state` values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantState {
    /// Granted; starts later (or the grant is being written).
    Pending,
    /// Live.
    Active,
    /// The revocation is being written.
    Revoking,
    /// Revoked by the owner (or the device was removed).
    Revoked,
    /// Reached its end.
    Expired,
}

impl GrantState {
    /// The `data-state` value.
    pub fn name(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Active => "active",
            Self::Revoking => "revoking",
            Self::Revoked => "revoked",
            Self::Expired => "expired",
        }
    }
}

/// One grant as the page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantRow {
    /// Grant id (hex).
    pub id: String,
    /// The device (hex id).
    pub device: String,
    /// The provider's name from its signed card.
    pub provider: String,
    /// The purpose.
    pub purpose: String,
    /// Data and resolution in words.
    pub what: String,
    /// Start of access.
    pub start: u64,
    /// End of access.
    pub end: u64,
    /// Delete-by.
    pub delete_by: u64,
    /// State.
    pub state: GrantState,
    /// When the owner ended it (revocation or removal), if so.
    pub ended_at: Option<u64>,
    /// The device confirmed the key rotation that ended it.
    pub rotation_confirmed: bool,
}

/// One device as the page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRow {
    /// Device id (hex).
    pub id: String,
    /// State in words (`paired`, `removed`, `handed over`).
    pub state: &'static str,
    /// When this wallet paired it.
    pub paired_at: u64,
    /// The newest delivery receipt's time: the last readings the device confirmed publishing.
    pub last_readings: Option<u64>,
    /// Grants live now.
    pub active_grants: usize,
    /// Log inconsistencies to show.
    pub warnings: Vec<String>,
}

/// One line of the history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRow {
    /// When.
    pub time: u64,
    /// Which device (hex id).
    pub device: String,
    /// `consent` (a log entry) or `delivery` (a receipt).
    pub kind: &'static str,
    /// What happened, in words.
    pub text: String,
}

/// Everything the page shows about the household.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overview {
    /// Devices, in pairing order.
    pub devices: Vec<DeviceRow>,
    /// Grants, newest first.
    pub grants: Vec<GrantRow>,
    /// Timeline, newest first.
    pub history: Vec<HistoryRow>,
}

fn grant_rows(
    device: &str,
    entries: &[VerifiedEntry],
    receipts: &[DeliveryReceipt],
    now: u64,
) -> Vec<GrantRow> {
    let mut rows: BTreeMap<GrantId, GrantRow> = BTreeMap::new();
    let mut order = Vec::new();
    for entry in entries {
        let time = entry.event.time;
        match &entry.event.kind {
            EventKind::Granted(grant) => {
                let data: Vec<&str> = grant.data_items.iter().map(|d| data_label(*d)).collect();
                let tiers: Vec<String> = grant.tiers.iter().map(|t| tier_label(*t)).collect();
                order.push(grant.id);
                rows.insert(
                    grant.id,
                    GrantRow {
                        id: hex::encode(grant.id.0),
                        device: device.to_owned(),
                        provider: grant.provider_name.clone(),
                        purpose: grant.purpose.clone(),
                        what: format!("{}; {}", data.join(", "), tiers.join(", ")),
                        start: grant.start,
                        end: grant.end,
                        delete_by: grant.delete_by,
                        state: GrantState::Active,
                        ended_at: None,
                        rotation_confirmed: false,
                    },
                );
            }
            EventKind::Amended { grant, end, .. } => {
                if let Some(row) = rows.get_mut(grant) {
                    row.end = *end;
                }
            }
            EventKind::Revoked { grant, .. } => {
                if let Some(row) = rows.get_mut(grant) {
                    row.ended_at.get_or_insert(time);
                }
            }
            EventKind::DeviceRemoved { .. } => {
                for row in rows.values_mut() {
                    row.ended_at.get_or_insert(time);
                }
            }
            EventKind::DevicePaired { .. } | EventKind::Denied { .. } => {}
        }
    }
    for (id, row) in &mut rows {
        let ending = row.ended_at.unwrap_or(row.end);
        row.state = if row.ended_at.is_some() {
            GrantState::Revoked
        } else if now >= row.end {
            GrantState::Expired
        } else if now < row.start {
            GrantState::Pending
        } else {
            GrantState::Active
        };
        row.rotation_confirmed = matches!(row.state, GrantState::Revoked | GrantState::Expired)
            && receipts.iter().any(|r| r.grant == *id && r.issued_at >= ending);
    }
    order.iter().rev().filter_map(|id| rows.remove(id)).collect()
}

fn event_text(kind: &EventKind, providers: &BTreeMap<GrantId, String>) -> String {
    let provider_of = |grant: &GrantId| providers.get(grant).map_or("a provider", String::as_str);
    match kind {
        EventKind::DevicePaired { .. } => "Paired with this wallet".to_owned(),
        EventKind::Granted(grant) => format!(
            "Granted {} access ({}) until {}",
            grant.provider_name,
            grant.tiers.iter().map(|t| tier_label(*t)).collect::<Vec<_>>().join(", "),
            format_utc(grant.end)
        ),
        EventKind::Denied { .. } => "Denied a provider's request".to_owned(),
        EventKind::Amended { grant, end, .. } => {
            format!("Changed {}'s access; it now ends {}", provider_of(grant), format_utc(*end))
        }
        EventKind::Revoked { grant, .. } => format!("Revoked {}'s access", provider_of(grant)),
        EventKind::DeviceRemoved { reason: RemovalReason::Removed } => {
            "Removed the device from this wallet; every grant ended".to_owned()
        }
        EventKind::DeviceRemoved { reason: RemovalReason::HandedOver } => {
            "Handed the device over; every grant ended".to_owned()
        }
    }
}

fn receipt_text(
    receipt: &DeliveryReceipt,
    since: u64,
    providers: &BTreeMap<GrantId, String>,
) -> String {
    let provider = providers.get(&receipt.grant).map_or("A provider", String::as_str);
    format!(
        "{provider} received {} readings at {} between {} and {}",
        group_thousands(receipt.count),
        resolution_short(receipt.tier),
        format_utc(since),
        format_utc(receipt.issued_at)
    )
}

/// A resolution as `1 s`, `15 min`, `1 h`, `1 d`.
pub fn resolution_short(tier: protocol::channel::Tier) -> String {
    match tier.resolution_secs() {
        secs if secs.is_multiple_of(86_400) => format!("{} d", secs / 86_400),
        secs if secs.is_multiple_of(3_600) => format!("{} h", secs / 3_600),
        secs if secs.is_multiple_of(60) => format!("{} min", secs / 60),
        secs => format!("{secs} s"),
    }
}

/// `3600` → `3,600`.
pub fn group_thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The overview of every device at `now`.
pub fn overview(devices: &[HouseholdDevice], now: u64) -> Overview {
    let mut out = Overview::default();
    for device in devices {
        let id = device.id_hex();
        let grants = grant_rows(&id, &device.entries, &device.receipts, now);
        let removal = device.entries.iter().find_map(|e| match e.event.kind {
            EventKind::DeviceRemoved { reason } => Some(reason),
            _ => None,
        });
        out.devices.push(DeviceRow {
            id: id.clone(),
            state: match removal {
                None => "paired",
                Some(RemovalReason::Removed) => "removed",
                Some(RemovalReason::HandedOver) => "handed over",
            },
            paired_at: device.paired_at,
            last_readings: device.receipts.iter().map(|r| r.issued_at).max(),
            active_grants: grants.iter().filter(|g| g.state == GrantState::Active).count(),
            warnings: device.warnings.iter().map(|w| w.0.clone()).collect(),
        });
        let providers: BTreeMap<GrantId, String> = device
            .entries
            .iter()
            .filter_map(|e| match &e.event.kind {
                EventKind::Granted(g) => Some((g.id, g.provider_name.clone())),
                _ => None,
            })
            .collect();
        let granted_at: BTreeMap<GrantId, u64> = device
            .entries
            .iter()
            .filter_map(|e| match &e.event.kind {
                EventKind::Granted(g) => Some((g.id, e.event.time.max(g.start))),
                _ => None,
            })
            .collect();
        for entry in &device.entries {
            out.history.push(HistoryRow {
                time: entry.event.time,
                device: id.clone(),
                kind: "consent",
                text: event_text(&entry.event.kind, &providers),
            });
        }
        // Each receipt covers what was delivered since the previous one for its grant and tier.
        let mut previous: BTreeMap<(GrantId, u8), u64> = BTreeMap::new();
        for receipt in &device.receipts {
            let key = (receipt.grant, receipt.tier.code());
            let since = previous
                .get(&key)
                .copied()
                .or_else(|| granted_at.get(&receipt.grant).copied())
                .unwrap_or(receipt.issued_at);
            previous.insert(key, receipt.issued_at);
            out.history.push(HistoryRow {
                time: receipt.issued_at,
                device: id.clone(),
                kind: "delivery",
                text: receipt_text(receipt, since, &providers),
            });
        }
        out.grants.extend(grants);
    }
    out.history.sort_by_key(|row| std::cmp::Reverse(row.time));
    out
}
