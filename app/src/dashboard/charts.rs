//! The dashboard's charts, drawn as SVG like the meter page's ([`crate::chart`]): the live
//! power lines (net and per phase) and bars for energy and gas per hour or day.

use leptos::prelude::*;

use super::feed::LiveSeries;
use super::received::Bar;

const WIDTH: f64 = 600.0;
const HEIGHT: f64 = 160.0;

/// Net power and each phase's net power over the last minutes; `#live-chart`.
#[component]
pub fn LiveChart(live: RwSignal<LiveSeries>) -> impl IntoView {
    let label = move || {
        live.with(|l| match &l.now {
            None => "Live power chart: no readings yet".to_owned(),
            Some(now) => format!(
                "Net power over the last {} readings; now {} W taken, {} W delivered",
                l.net.len(),
                now.import,
                now.export
            ),
        })
    };
    // One scale for every line, so the phases compare with the total; a margin keeps a line at
    // the range's edge visible.
    let range = move || {
        let (low, high) = live.with(|l| {
            std::iter::once(&l.net).chain(&l.phases).filter(|s| !s.is_empty()).fold(
                (0.0f64, 0.1f64),
                |(low, high), s| {
                    let (l, h) = s.range();
                    (low.min(l), high.max(h))
                },
            )
        });
        let margin = (high - low) * 0.08;
        (low - margin, high + margin)
    };
    let zero_y = move || {
        let (low, high) = range();
        HEIGHT - (0.0 - low) / (high - low) * HEIGHT
    };
    let scaled = move |pick: fn(&LiveSeries) -> &crate::chart::Series| {
        move || {
            let shared = range();
            live.with(|l| pick(l).polyline_within(WIDTH, HEIGHT, shared))
        }
    };
    view! {
        <figure class="chart">
            <svg id="live-chart" viewBox=format!("0 0 {WIDTH} {HEIGHT}") preserveAspectRatio="none"
                role="img" aria-label=label>
                <line x1="0" x2=WIDTH y1=zero_y y2=zero_y class="zero" />
                <polyline points=scaled(|l| &l.phases[0]) class="line phase l1" />
                <polyline points=scaled(|l| &l.phases[1]) class="line phase l2" />
                <polyline points=scaled(|l| &l.phases[2]) class="line phase l3" />
                <polyline points=scaled(|l| &l.net) class="line" />
            </svg>
            <figcaption>
                {move || {
                    let (low, high) = range();
                    format!("Net power, kW (range {low:.2} to {high:.2}); above the line: import, below: export. Thick: total; thin: phases L1, L2, L3.")
                }}
            </figcaption>
        </figure>
    }
}

/// Bars of `amount` per period; `unit` names it ("kWh", "m³"), `label_of` formats a period.
#[component]
pub fn BarChart(
    id: &'static str,
    title: &'static str,
    unit: &'static str,
    bars: Signal<Vec<Bar>>,
    label_of: fn(u64) -> String,
) -> impl IntoView {
    let label = move || {
        let bars = bars.get();
        match bars.last() {
            None => format!("{title}: nothing received yet"),
            Some(last) => format!(
                "{title}: {} periods, the latest ({}) {:.3} {unit}",
                bars.len(),
                label_of(last.start),
                last.amount
            ),
        }
    };
    view! {
        <figure class="chart bars">
            <svg id=id viewBox=format!("0 0 {WIDTH} {HEIGHT}") preserveAspectRatio="none" role="img" aria-label=label>
                {move || {
                    let bars = bars.get();
                    let shown = &bars[bars.len().saturating_sub(48)..];
                    let high = shown.iter().map(|b| b.amount).fold(0.0f64, f64::max).max(1e-6);
                    let width = WIDTH / shown.len().max(1) as f64;
                    shown.iter().enumerate().map(|(i, bar)| {
                        let height = bar.amount / high * (HEIGHT - 4.0);
                        view! {
                            <rect x=format!("{:.1}", i as f64 * width + 1.0) width=format!("{:.1}", (width - 2.0).max(1.0))
                                y=format!("{:.1}", HEIGHT - height) height=format!("{height:.1}") class="bar">
                                <title>{format!("{}: {:.3} {unit}", label_of(bar.start), bar.amount)}</title>
                            </rect>
                        }
                    }).collect_view()
                }}
            </svg>
            <figcaption>{title} " (" {unit} ")"
                {move || bars.with(|b| b.last().map(|last| format!(": {:.3} in the latest period", last.amount)))}
            </figcaption>
        </figure>
    }
}
