//! The reader driven through the same [`SerialSource`] interface the Meter page uses, with a
//! fake port that replays a real capture (566 consecutive telegrams of an Iskra AM550, from
//! `protocol/tests/fixtures/p1/streams/nielsbasjes/`, Apache-2.0) in random chunk sizes.
//!
//! The fake unplugs itself in the middle of the stream; the replugged port starts again at the
//! beginning of the telegram the unplug cut off (what a meter does: the next telegram comes
//! whole), so every telegram of the capture must arrive exactly once, plus one failed fragment
//! per cut that fell inside a telegram. Chunking comes from a seeded xorshift generator, so runs
//! are reproducible.
#![cfg(target_arch = "wasm32")]
// Test helpers outside #[test] functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used)]

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use app::reader::{
    self, Counts, Decoded, MeterDecoder, PortError, ReaderEvent, SerialLink, SerialSource, Stopped,
};
use futures_channel::oneshot;
use wasm_bindgen_test::{wasm_bindgen_test as test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

#[path = "../../protocol/tests/p1_capture/mod.rs"]
mod p1_capture;

use p1_capture::{Prng, TELEGRAMS_IN_CAPTURE, capture};

/// Every telegram of the capture as (start, end) byte ranges, found without the framer: a `/`
/// that starts a line up to the `!` line and its four CRC digits.
fn telegram_ranges(capture: &[u8]) -> Vec<(usize, usize)> {
    let text = std::str::from_utf8(capture).unwrap();
    text.match_indices("\r\n/")
        .map(|(at, _)| {
            let start = at + 2;
            (start, start + text[start..].find("\r\n!").unwrap() + 3 + 4)
        })
        .collect()
}

/// A meter behind a fake port. Each `open` starts the next session; a session that is not the
/// last ends in an unplug.
struct FakeMeter {
    /// Byte ranges of the capture, one per session (between unplugs).
    sessions: VecDeque<(usize, usize)>,
    capture: Rc<Vec<u8>>,
    /// The meter's line speed: opened at another speed, the port yields line noise.
    meter_baud: u32,
    /// Set bit 7 to even parity, as a 7E1 meter read through an 8N1 port delivers it.
    seven_e_one: bool,
    rng: Rc<RefCell<Prng>>,
    replugs_waited: usize,
}

struct FakeLink {
    capture: Rc<Vec<u8>>,
    pos: usize,
    end: usize,
    unplug_at_end: bool,
    /// Opened at the wrong speed: noise until closed.
    noise: bool,
    seven_e_one: bool,
    rng: Rc<RefCell<Prng>>,
}

impl SerialSource for FakeMeter {
    type Link = FakeLink;

    async fn open(&mut self, baud_rate: u32) -> Result<FakeLink, PortError> {
        let noise = baud_rate != self.meter_baud;
        let (start, end) = if noise {
            (0, 0)
        } else {
            self.sessions.pop_front().ok_or_else(|| PortError::Open("no session left".into()))?
        };
        Ok(FakeLink {
            capture: self.capture.clone(),
            pos: start,
            end,
            unplug_at_end: !self.sessions.is_empty(),
            noise,
            seven_e_one: self.seven_e_one,
            rng: self.rng.clone(),
        })
    }

    async fn wait_for_device(&mut self) -> Result<(), PortError> {
        self.replugs_waited += 1;
        gloo_timers::future::TimeoutFuture::new(1).await;
        Ok(())
    }
}

impl SerialLink for FakeLink {
    async fn read(&mut self) -> Result<Option<Vec<u8>>, PortError> {
        if !self.noise && self.pos >= self.end {
            if self.unplug_at_end {
                return Err(PortError::Disconnected(
                    "NetworkError: The device has been lost.".into(),
                ));
            }
            // The meter keeps the line open but the capture is over.
            let never: std::convert::Infallible = std::future::pending().await;
            match never {}
        }
        let mut rng = self.rng.borrow_mut();
        if self.noise {
            // A UART at the wrong speed: framing errors come through as arbitrary bytes,
            // here without any '/' so no telegram can start.
            let len = rng.range(1, 512);
            return Ok(Some((0..len).map(|_| (rng.next() as u8) | 0x80).collect()));
        }
        let len = rng.range(1, 700).min(self.end - self.pos);
        let chunk = &self.capture[self.pos..self.pos + len];
        self.pos += len;
        Ok(Some(if self.seven_e_one {
            chunk.iter().map(|&b| b | (((b.count_ones() & 1) as u8) << 7)).collect()
        } else {
            chunk.to_vec()
        }))
    }

    async fn close(self) {}
}

/// What a run reported.
#[derive(Default)]
struct Seen {
    good: Vec<String>,
    failed: usize,
    disconnects: Vec<PortError>,
    resumed: usize,
    detected: Vec<u32>,
    tried: Vec<u32>,
    counts: Counts,
}

/// Splits the capture at `cuts` into sessions; returns them and how many cuts fall strictly
/// inside a telegram (each leaves one failed fragment).
fn sessions_with_cuts(capture: &[u8], cuts: &[usize]) -> (VecDeque<(usize, usize)>, usize) {
    let ranges = telegram_ranges(capture);
    let mut sessions = VecDeque::new();
    let mut start = 0;
    let mut inside = 0;
    for &cut in cuts {
        sessions.push_back((start, cut));
        // The replugged meter starts with the first telegram not completely sent.
        let (resume, cut_inside) = match ranges.iter().find(|&&(_, end)| end > cut) {
            Some(&(s, _)) if s < cut => (s, true),
            Some(_) | None => (cut, false),
        };
        inside += usize::from(cut_inside);
        start = resume;
    }
    sessions.push_back((start, capture.len()));
    (sessions, inside)
}

async fn read_all(mut meter: FakeMeter, expected_good: usize) -> (Seen, Stopped) {
    let seen = Rc::new(RefCell::new(Seen::default()));
    let (stop_tx, mut stop_rx) = oneshot::channel();
    let mut stop_tx = Some(stop_tx);
    let mut decoder = MeterDecoder::default();
    let sink = seen.clone();
    let mut emit = move |event: ReaderEvent| {
        let mut seen = sink.borrow_mut();
        match event {
            ReaderEvent::Trying { baud_rate } => seen.tried.push(baud_rate),
            ReaderEvent::LinkDetected { baud_rate } => seen.detected.push(baud_rate),
            ReaderEvent::NoTelegrams => panic!("the link was not detected"),
            ReaderEvent::Decoded(decoded, counts) => {
                seen.counts = counts;
                match decoded {
                    Decoded::Telegram(snapshot) => {
                        assert!(snapshot.meter_time_utc.is_some());
                        assert!(snapshot.power_import.is_some());
                        seen.good.push(snapshot.raw);
                    }
                    Decoded::Corrupt(_) => seen.failed += 1,
                    Decoded::Problem(problem) => {
                        if !matches!(
                            problem,
                            reader::DecodeProblem::Frame(protocol::p1::FrameError::Garbage { .. })
                        ) {
                            seen.failed += 1;
                        }
                    }
                }
                if seen.good.len() == expected_good {
                    stop_tx.take().map(|tx| tx.send(()));
                }
            }
            ReaderEvent::Disconnected(error) => seen.disconnects.push(error),
            ReaderEvent::Resumed { .. } => seen.resumed += 1,
        }
    };
    let stopped = reader::run(&mut meter, &mut decoder, &mut stop_rx, &mut emit).await;
    drop(emit);
    assert_eq!(meter.replugs_waited, seen.borrow().disconnects.len());
    let seen = Rc::try_unwrap(seen).ok().unwrap().into_inner();
    (seen, stopped)
}

fn originals(capture: &[u8]) -> Vec<String> {
    telegram_ranges(capture)
        .into_iter()
        .map(|(start, end)| String::from_utf8(capture[start..end].to_vec()).unwrap())
        .collect()
}

#[test]
async fn every_telegram_arrives_across_unplugs_in_random_chunks() {
    let capture = Rc::new(capture());
    let originals = originals(&capture);
    assert_eq!(originals.len(), TELEGRAMS_IN_CAPTURE);
    for seed in [1u64, 0x5EED, 0xC0FFEE] {
        let mut rng = Prng::new(seed);
        let mut cuts = vec![
            rng.range(1000, capture.len() / 2),
            rng.range(capture.len() / 2, capture.len() - 1000),
        ];
        cuts.sort_unstable();
        let (sessions, cuts_inside) = sessions_with_cuts(&capture, &cuts);
        let meter = FakeMeter {
            sessions,
            capture: capture.clone(),
            meter_baud: 115_200,
            seven_e_one: false,
            rng: Rc::new(RefCell::new(rng)),
            replugs_waited: 0,
        };
        let (seen, stopped) = read_all(meter, TELEGRAMS_IN_CAPTURE).await;

        assert_eq!(stopped, Stopped::ByRequest);
        assert_eq!(seen.good, originals, "seed {seed}: every telegram, once, in order");
        assert_eq!(seen.disconnects.len(), 2, "seed {seed}: both unplugs reported");
        assert!(seen.disconnects.iter().all(|e| matches!(e, PortError::Disconnected(_))));
        assert_eq!(seen.resumed, 2, "seed {seed}: reading resumed after each unplug");
        assert_eq!(seen.detected, vec![115_200]);
        assert_eq!(seen.failed, cuts_inside, "seed {seed}: one failed fragment per cut telegram");
        assert_eq!(seen.counts.good, TELEGRAMS_IN_CAPTURE as u64);
        assert_eq!(seen.counts.bad, cuts_inside as u64);
        // The capture starts mid-telegram: those bytes are garbage, not a telegram.
        assert!(seen.counts.garbage_bytes > 0);
    }
}

#[test]
async fn a_7e1_meter_at_9600_baud_is_found_after_115200_fails() {
    let capture = Rc::new(capture());
    let originals = originals(&capture);
    let wanted = 40;
    let meter = FakeMeter {
        sessions: VecDeque::from([(0, capture.len())]),
        capture: capture.clone(),
        meter_baud: 9_600,
        seven_e_one: true,
        rng: Rc::new(RefCell::new(Prng::new(7))),
        replugs_waited: 0,
    };
    let (seen, stopped) = read_all(meter, wanted).await;
    assert_eq!(stopped, Stopped::ByRequest);
    assert_eq!(seen.tried, vec![115_200, 9_600]);
    assert_eq!(seen.detected, vec![9_600]);
    // Bit 7 carried parity on the wire; the framer masked it, so the text is the original.
    assert_eq!(seen.good, originals[..wanted]);
    assert!(seen.disconnects.is_empty());
}

/// A port that never delivers a byte and records whether it was closed.
struct SilentPort {
    closed: Rc<std::cell::Cell<bool>>,
}

struct SilentSource {
    closed: Rc<std::cell::Cell<bool>>,
}

impl SerialLink for SilentPort {
    async fn read(&mut self) -> Result<Option<Vec<u8>>, PortError> {
        let never: std::convert::Infallible = std::future::pending().await;
        match never {}
    }

    async fn close(self) {
        self.closed.set(true);
    }
}

impl SerialSource for SilentSource {
    type Link = SilentPort;

    async fn open(&mut self, _baud_rate: u32) -> Result<SilentPort, PortError> {
        Ok(SilentPort { closed: self.closed.clone() })
    }

    async fn wait_for_device(&mut self) -> Result<(), PortError> {
        Ok(())
    }
}

#[test]
async fn stopping_a_waiting_reader_closes_the_port() {
    let closed = Rc::new(std::cell::Cell::new(false));
    let mut source = SilentSource { closed: closed.clone() };
    let (stop_tx, mut stop_rx) = oneshot::channel::<()>();
    let mut decoder = MeterDecoder::default();
    let mut events = Vec::new();
    let mut emit = |event| events.push(event);
    // Stop 50 ms in, while the reader waits for bytes that never come.
    wasm_bindgen_futures::spawn_local(async move {
        gloo_timers::future::TimeoutFuture::new(50).await;
        let _ = stop_tx.send(());
    });
    let stopped = reader::run(&mut source, &mut decoder, &mut stop_rx, &mut emit).await;
    assert_eq!(stopped, Stopped::ByRequest);
    assert!(closed.get(), "the port was closed");
    assert_eq!(events, vec![ReaderEvent::Trying { baud_rate: 115_200 }]);
}

#[test]
async fn a_port_that_cannot_be_opened_ends_the_reader_with_the_reason() {
    struct Busy;
    impl SerialSource for Busy {
        type Link = SilentPort;
        async fn open(&mut self, _baud_rate: u32) -> Result<SilentPort, PortError> {
            Err(PortError::Open("Failed to open serial port.".into()))
        }
        async fn wait_for_device(&mut self) -> Result<(), PortError> {
            Ok(())
        }
    }
    let (_stop_tx, mut stop_rx) = oneshot::channel::<()>();
    let stopped =
        reader::run(&mut Busy, &mut MeterDecoder::default(), &mut stop_rx, &mut |_| {}).await;
    assert_eq!(stopped, Stopped::Failed(PortError::Open("Failed to open serial port.".into())));
}
