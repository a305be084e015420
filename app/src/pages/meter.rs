//! The Meter page: read a smart meter's P1 port straight from this browser over Web Serial.
//!
//! # Main thread, not a worker
//!
//! Decoding a telegram (framing, CRC, parsing, typed readings and the owned snapshot) costs
//! about 0.2 ms in wasm — measured on the page by `tools/e2e/meter.test.mjs` in headless
//! Chromium on a busy 2-core build machine, 1 KiB AM550 telegrams — and a meter sends one per
//! second (one per ten seconds on older meters): about 0.02 % of the main thread. A worker would add a second wasm
//! instance, message passing and a copy of every snapshot for no gain in responsiveness, and
//! `requestPort()` must be called from the page anyway. The page shows the measured cost
//! (`#decode-cost`) so the claim can be checked on any device.

use futures_channel::oneshot;
use leptos::prelude::*;
use leptos::task::spawn_local;
use protocol::p1::{Direction, MeterKey};

use crate::chart::{PowerChart, Series};
use crate::device::panel::{ShareFeed, SharePanel};
use crate::live::{CrcStatus, Measure, Snapshot};
use crate::reader::{self, Counts, Decoded, MeterDecoder, ReaderEvent, Stopped};
use crate::serial::{self, WebSerialSource};

/// Where the connection stands, for the status line and the buttons.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Connection {
    Idle,
    Choosing,
    Reading(String),
    Failed(String),
}

/// Energy at the first telegram of the meter's day seen by this page.
#[derive(Debug, Clone, Copy, PartialEq)]
struct DayBaseline {
    day: (i32, u8, u8),
    import_kwh: Option<f64>,
    export_kwh: Option<f64>,
}

/// Everything the live view shows, updated from reader events.
#[derive(Debug, Clone, Copy)]
struct Live {
    latest: RwSignal<Option<Snapshot>>,
    /// The last telegram received, good or corrupt, for the raw panel.
    raw: RwSignal<Option<(String, CrcStatus)>>,
    counts: RwSignal<Counts>,
    series: RwSignal<Series>,
    baseline: RwSignal<Option<(DayBaseline, String)>>,
    status: RwSignal<String>,
    last_problem: RwSignal<Option<String>>,
}

impl Live {
    fn new() -> Self {
        Live {
            latest: RwSignal::new(None),
            raw: RwSignal::new(None),
            counts: RwSignal::new(Counts::default()),
            series: RwSignal::new(Series::default()),
            baseline: RwSignal::new(None),
            status: RwSignal::new(String::new()),
            last_problem: RwSignal::new(None),
        }
    }

    fn apply(&self, event: ReaderEvent) {
        match event {
            ReaderEvent::Trying { baud_rate } => {
                self.status.set(format!("Listening at {baud_rate} Bd…"));
            }
            ReaderEvent::LinkDetected { baud_rate } => self.status.set(format!(
                "Reading at {baud_rate} Bd ({})",
                if baud_rate == 9_600 { "DSMR 2.2/3, 7E1" } else { "DSMR 4/5, 8N1" }
            )),
            ReaderEvent::NoTelegrams => self.status.set(
                "No telegrams at either speed yet. Is the cable in the meter's P1 port? \
                 Some meters only send after their P1 port has been enabled by the grid operator."
                    .to_owned(),
            ),
            ReaderEvent::Disconnected(error) => {
                self.status.set(format!("{error}. Plug it back in: reading resumes by itself."));
            }
            ReaderEvent::Resumed { baud_rate } => {
                self.status.set(format!("Reading again at {baud_rate} Bd (cable reconnected)"));
            }
            ReaderEvent::Decoded(decoded, counts) => {
                self.counts.set(counts);
                match decoded {
                    Decoded::Telegram(snapshot) => self.telegram(*snapshot),
                    Decoded::Corrupt(snapshot) => {
                        self.raw.set(Some((snapshot.raw.clone(), snapshot.crc)));
                    }
                    Decoded::Problem(problem) => self.last_problem.set(Some(problem.to_string())),
                }
            }
        }
    }

    fn telegram(&self, snapshot: Snapshot) {
        self.raw.set(Some((snapshot.raw.clone(), snapshot.crc)));
        if let (Some(time), Some(kw)) = (snapshot.meter_time_utc, snapshot.net_power_kw()) {
            self.series.update(|series| series.push(time as f64, kw));
        }
        if let Some(day) = snapshot.meter_day {
            let starts_day =
                self.baseline.with_untracked(|b| b.as_ref().is_none_or(|(b, _)| b.day != day));
            if starts_day {
                let baseline = DayBaseline {
                    day,
                    import_kwh: snapshot.energy_total_kwh(Direction::Import),
                    export_kwh: snapshot.energy_total_kwh(Direction::Export),
                };
                let since = snapshot.meter_time_local.clone().unwrap_or_default();
                self.baseline.set(Some((baseline, since)));
            }
        }
        self.latest.set(Some(snapshot));
    }
}

/// The Meter page.
#[component]
pub fn MeterPage() -> impl IntoView {
    let support = serial::support();
    let live = Live::new();
    let connection = RwSignal::new(Connection::Idle);
    let key_text = RwSignal::new(String::new());
    // Telegrams go to the "share as a device" panel too, while it shares.
    let feed = ShareFeed::new();
    // Dropping or firing the sender stops the reader; kept here so leaving the page stops it.
    let stop = StoredValue::new(None::<oneshot::Sender<()>>);
    on_cleanup(move || {
        if let Some(tx) = stop.try_update_value(Option::take).flatten() {
            let _ = tx.send(());
        }
    });

    let key_error = move || {
        let text = key_text.get();
        (!text.trim().is_empty() && MeterKey::from_hex(text.trim()).is_err())
            .then_some("A decryption key is 32 hexadecimal digits (0-9, A-F).")
    };

    let start = move |source: WebSerialSource| {
        let key = MeterKey::from_hex(key_text.get_untracked().trim()).ok();
        let (tx, mut rx) = oneshot::channel();
        stop.set_value(Some(tx));
        connection.set(Connection::Reading(source.describe()));
        spawn_local(async move {
            let mut source = source;
            let mut decoder = MeterDecoder::new(key);
            let mut emit = |event: ReaderEvent| {
                if let ReaderEvent::Decoded(Decoded::Telegram(snapshot), _) = &event {
                    feed.telegram(&snapshot.raw);
                }
                live.apply(event);
            };
            let stopped = reader::run(&mut source, &mut decoder, &mut rx, &mut emit).await;
            connection.try_set(match stopped {
                Stopped::ByRequest => Connection::Idle,
                Stopped::Failed(error) => Connection::Failed(error.to_string()),
            });
        });
    };

    // A cable granted on an earlier visit is read again without asking.
    if support == serial::Support::Available {
        spawn_local(async move {
            if let Some(source) = WebSerialSource::remembered().await
                && connection.try_get_untracked() == Some(Connection::Idle)
            {
                start(source);
            }
        });
    }

    let connect = move |_| {
        // The picker needs this click's user activation: request() asks before returning.
        let request = WebSerialSource::request();
        connection.set(Connection::Choosing);
        spawn_local(async move {
            match request.await {
                Ok(source) => start(source),
                Err(error) => connection.set(Connection::Failed(error.to_string())),
            }
        });
    };
    let disconnect = move |_| {
        if let Some(tx) = stop.try_update_value(Option::take).flatten() {
            let _ = tx.send(());
        }
        live.status.set("Disconnected.".to_owned());
    };

    let reading = move || matches!(connection.get(), Connection::Reading(_));
    view! {
        <section class="card" aria-labelledby="meter-heading">
            <h2 id="meter-heading">"Meter"</h2>
            {match support {
                serial::Support::Available => view! {
                    <p>"Plug a P1 cable into your meter and this computer, then connect. "
                       "The meter's data is read and shown here, in this tab only."</p>
                }.into_any(),
                missing => view! {
                    <p class="status-error" role="alert" id="serial-missing">{missing.explanation()}</p>
                }.into_any(),
            }}
            <div class="row">
                <button type="button" id="connect" on:click=connect
                    disabled=move || support != serial::Support::Available || reading()
                        || connection.get() == Connection::Choosing>
                    "Connect to the meter"
                </button>
                <button type="button" class="secondary" id="disconnect" on:click=disconnect
                    disabled=move || !reading()>"Disconnect"</button>
            </div>
            <p id="meter-status" role="status" aria-live="polite">
                {move || match connection.get() {
                    Connection::Idle => live.status.get(),
                    Connection::Choosing => "Choose the P1 cable in the browser's list…".to_owned(),
                    Connection::Reading(device) => format!("{device}: {}", live.status.get()),
                    Connection::Failed(error) => error,
                }}
            </p>
            <details>
                <summary>"Encrypted meter (Luxembourg, Austria)"</summary>
                <div class="field">
                    <label for="meter-key">"Decryption key"</label>
                    <input id="meter-key" type="password" autocomplete="off" spellcheck="false"
                        aria-describedby="meter-key-hint meter-key-error"
                        prop:value=move || key_text.get()
                        on:input=move |ev| key_text.set(event_target_value(&ev)) />
                    <p id="meter-key-hint" class="hint">
                        "The 32-digit key from your grid operator. It stays in this tab's memory: "
                        "never stored, never sent. It applies when you connect."
                    </p>
                    <p id="meter-key-error" class="status-error" role="alert">{key_error}</p>
                </div>
            </details>
        </section>
        <SharePanel feed=feed />
        <LiveView live=live />
    }
}

fn show(measure: Option<&Measure>) -> String {
    measure.map_or_else(|| "—".to_owned(), Measure::display)
}

/// The live readings, chart, counts and raw telegram.
#[component]
fn LiveView(live: Live) -> impl IntoView {
    let latest = live.latest;
    let today = move |direction: Direction| {
        let current = latest.with(|s| s.as_ref().and_then(|s| s.energy_total_kwh(direction)));
        let baseline = live.baseline.with(|b| {
            b.as_ref().and_then(|(b, _)| match direction {
                Direction::Import => b.import_kwh,
                Direction::Export => b.export_kwh,
            })
        });
        match (current, baseline) {
            (Some(now), Some(start)) => format!("{:.3} kWh", now - start),
            _ => "—".to_owned(),
        }
    };
    let series = live.series.read_only();
    view! {
        <section class="card" aria-labelledby="live-heading">
            <h2 id="live-heading">"Live"</h2>
            <Show when=move || latest.with(Option::is_some)
                fallback=|| view! { <p class="muted" id="live-empty">"No readings yet."</p> }>
                <dl class="tiles">
                    <div><dt>"Taking from the grid"</dt>
                        <dd id="power-import">{move || latest.with(|s| show(s.as_ref().and_then(|s| s.power_import.as_ref())))}</dd></div>
                    <div><dt>"Delivering to the grid"</dt>
                        <dd id="power-export">{move || latest.with(|s| show(s.as_ref().and_then(|s| s.power_export.as_ref())))}</dd></div>
                    <div><dt>{move || live.baseline.with(|b| b.as_ref().map_or_else(
                            || "Imported today".to_owned(),
                            |(_, since)| format!("Imported since {since}")))}</dt>
                        <dd id="today-import">{move || today(Direction::Import)}</dd></div>
                    <div><dt>"Exported (same period)"</dt>
                        <dd id="today-export">{move || today(Direction::Export)}</dd></div>
                    <div><dt>"Tariff"</dt>
                        <dd id="tariff">{move || latest.with(|s| s.as_ref().and_then(|s| s.tariff.clone()).unwrap_or_else(|| "—".to_owned()))}</dd></div>
                    <div><dt>"Gas"</dt>
                        <dd id="gas">{move || latest.with(|s| s.as_ref().and_then(|s| s.gas.as_ref()).map_or_else(
                            || "—".to_owned(),
                            |gas| match &gas.captured_at {
                                Some(at) => format!("{} (at {at})", gas.volume.display()),
                                None => gas.volume.display(),
                            }))}</dd></div>
                    <div><dt>"Meter time"</dt>
                        <dd id="meter-time">{move || latest.with(|s| s.as_ref().and_then(|s| s.meter_time_local.clone()).unwrap_or_else(|| "—".to_owned()))}</dd></div>
                </dl>
                <PowerChart series=series />
                <div class="table-wrap"><table class="phases">
                    <caption>"Per phase"</caption>
                    <thead><tr><th scope="col">"Phase"</th><th scope="col">"Voltage"</th><th scope="col">"Current"</th>
                        <th scope="col">"Import"</th><th scope="col">"Export"</th></tr></thead>
                    <tbody>
                        {(0..3).map(|i| view! {
                            <tr>
                                <th scope="row">{format!("L{}", i + 1)}</th>
                                <td>{move || latest.with(|s| show(s.as_ref().and_then(|s| s.phases[i].voltage.as_ref())))}</td>
                                <td>{move || latest.with(|s| show(s.as_ref().and_then(|s| s.phases[i].current.as_ref())))}</td>
                                <td>{move || latest.with(|s| show(s.as_ref().and_then(|s| s.phases[i].power_import.as_ref())))}</td>
                                <td>{move || latest.with(|s| show(s.as_ref().and_then(|s| s.phases[i].power_export.as_ref())))}</td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table></div>
                <table class="registers">
                    <caption>"Meter registers"</caption>
                    <tbody>
                        {move || latest.with(|s| s.as_ref().map(|s| s.registers.iter().map(|r| view! {
                            <tr><th scope="row">{r.label()}</th><td>{r.energy.display()}</td></tr>
                        }).collect_view()))}
                    </tbody>
                </table>
            </Show>
        </section>
        <section class="card" aria-labelledby="counts-heading">
            <h2 id="counts-heading">"Telegrams"</h2>
            <dl class="facts">
                <dt>"Good"</dt><dd id="count-good">{move || live.counts.get().good}</dd>
                <dt>"Bad"</dt><dd id="count-bad">{move || live.counts.get().bad}</dd>
                <dt>"Noise bytes"</dt><dd id="count-garbage">{move || live.counts.get().garbage_bytes}</dd>
                <dt>"Decoding cost"</dt><dd id="decode-cost">{move || {
                    let counts = live.counts.get();
                    let telegrams = counts.good + counts.bad;
                    if telegrams == 0 { "—".to_owned() } else {
                        format!("{:.0} µs per telegram, on the page's thread", counts.decode_ms * 1000.0 / telegrams as f64)
                    }
                }}</dd>
                <dt>"Last problem"</dt><dd id="last-problem">{move || live.last_problem.get().unwrap_or_else(|| "none".to_owned())}</dd>
            </dl>
            <h3>"Last telegram"</h3>
            {move || live.raw.get().map(|(raw, crc)| view! {
                <p id="crc-status" class=if crc.trusted() { "status-ok" } else { "status-error" }>{crc.describe()}</p>
                <pre id="raw-telegram" class="raw" tabindex="0" aria-label="Raw telegram text">{raw}</pre>
            })}
        </section>
    }
}
