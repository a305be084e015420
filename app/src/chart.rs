//! A running line chart drawn as SVG: no chart crate, a few hundred bytes of wasm.

use std::collections::VecDeque;

use leptos::prelude::*;

/// Points kept: 10 minutes at one telegram per second.
pub const CHART_POINTS: usize = 600;

/// A bounded series of (seconds, value) points; the oldest drop out.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Series {
    points: VecDeque<(f64, f64)>,
}

impl Series {
    /// Appends a point, dropping the oldest beyond [`CHART_POINTS`]; a point earlier than the
    /// last (meter clock set back) restarts the series rather than drawing backwards.
    pub fn push(&mut self, seconds: f64, value: f64) {
        if !value.is_finite() {
            return;
        }
        if self.points.back().is_some_and(|&(last, _)| seconds < last) {
            self.points.clear();
        }
        if self.points.len() == CHART_POINTS {
            self.points.pop_front();
        }
        self.points.push_back((seconds, value));
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// True when there is nothing to draw.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// The value range drawn: always includes zero, so import and export read at a glance.
    pub fn range(&self) -> (f64, f64) {
        let (low, high) =
            self.points.iter().fold((0.0f64, 0.0f64), |(lo, hi), &(_, v)| (lo.min(v), hi.max(v)));
        if high - low < 0.1 { (low, low + 0.1) } else { (low, high) }
    }

    /// The SVG polyline `points` attribute for a `width` × `height` box.
    fn polyline(&self, width: f64, height: f64) -> String {
        self.polyline_within(width, height, self.range())
    }

    /// The polyline drawn against a given value range `(low, high)`, so several series can
    /// share one scale (the provider dashboard's total and per-phase lines).
    pub fn polyline_within(&self, width: f64, height: f64, (low, high): (f64, f64)) -> String {
        let (Some(&(first, _)), Some(&(last, _))) = (self.points.front(), self.points.back())
        else {
            return String::new();
        };
        let span = (last - first).max(1.0);
        let high = if high - low < 0.1 { low + 0.1 } else { high };
        self.points
            .iter()
            .map(|&(t, v)| {
                let x = (t - first) / span * width;
                let y = height - (v - low) / (high - low) * height;
                format!("{x:.1},{y:.1}")
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

const WIDTH: f64 = 600.0;
const HEIGHT: f64 = 160.0;

/// Net power (import − export) over the last minutes, with the zero line and the range.
#[component]
pub fn PowerChart(series: ReadSignal<Series>) -> impl IntoView {
    let label = move || {
        let series = series.get();
        match series.points.back() {
            None => "Power chart: no readings yet".to_owned(),
            Some(&(_, now)) => format!(
                "Net power over the last {} readings, now {now:.3} kW (above zero: taken from the grid; below: delivered)",
                series.len()
            ),
        }
    };
    let zero_y = move || {
        let (low, high) = series.get().range();
        HEIGHT - (0.0 - low) / (high - low) * HEIGHT
    };
    view! {
        <figure class="chart">
            <svg id="power-chart" viewBox=format!("0 0 {WIDTH} {HEIGHT}") preserveAspectRatio="none"
                role="img" aria-label=label>
                <line x1="0" x2=WIDTH y1=zero_y y2=zero_y class="zero" />
                <polyline points=move || series.get().polyline(WIDTH, HEIGHT) class="line" />
            </svg>
            <figcaption>
                {move || {
                    let (low, high) = series.get().range();
                    format!("Net power, kW (range {low:.2} to {high:.2}); above the line: import, below: export")
                }}
            </figcaption>
        </figure>
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::{CHART_POINTS, Series};

    #[test]
    fn the_series_is_bounded_and_restarts_when_time_goes_back() {
        let mut series = Series::default();
        for t in 0..(CHART_POINTS + 10) {
            series.push(t as f64, 1.0);
        }
        assert_eq!(series.len(), CHART_POINTS);
        series.push(5.0, 2.0);
        assert_eq!(series.len(), 1);
        series.push(6.0, f64::NAN);
        assert_eq!(series.len(), 1);
    }

    #[test]
    fn the_polyline_spans_the_box_and_includes_zero() {
        let mut series = Series::default();
        series.push(0.0, 1.0);
        series.push(10.0, -1.0);
        assert_eq!(series.polyline(100.0, 50.0), "0.0,0.0 100.0,50.0");
        let mut positive = Series::default();
        positive.push(0.0, 2.0);
        positive.push(1.0, 4.0);
        // The range starts at zero, so 2 kW is drawn half-way up.
        assert_eq!(positive.polyline(10.0, 50.0), "0.0,25.0 10.0,0.0");
    }
}
