//! Replaying a capture file at the meter's own pace, faster, or as fast as possible.
//!
//! The pace comes from the telegrams themselves: the gap between two telegrams' meter times,
//! divided by the speed factor. Bytes between telegrams (a capture that starts mid-telegram,
//! noise) are replayed too, so the framer sees what the port delivered.

use std::path::Path;
use std::time::Duration;

use protocol::p1::{Framer, Readings, Telegram};

use super::{Source, SourceError};

/// How fast a capture is replayed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Speed {
    /// `factor` × the meter's pace (1.0 = real time).
    Factor(f64),
    /// No waiting at all.
    Unlimited,
}

impl std::str::FromStr for Speed {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if matches!(text, "max" | "unlimited" | "0") {
            return Ok(Speed::Unlimited);
        }
        let factor: f64 =
            text.parse().map_err(|_| format!("{text:?} is not a number or \"max\""))?;
        if factor.is_finite() && factor > 0.0 {
            Ok(Speed::Factor(factor))
        } else {
            Err(format!("speed must be positive (or \"max\"), got {text}"))
        }
    }
}

#[derive(Debug)]
struct Chunk {
    bytes: Vec<u8>,
    meter_time: Option<u64>,
}

/// A capture file split into per-telegram chunks.
#[derive(Debug)]
pub struct ReplaySource {
    name: String,
    chunks: Vec<Chunk>,
    next: usize,
    speed: Speed,
    last_time: Option<u64>,
    resume_after: Option<u64>,
}

/// Longest wait between two telegrams, whatever the capture's timestamps say (a capture
/// spanning a power cut must not stall a test for hours).
const MAX_GAP: Duration = Duration::from_secs(60);

impl ReplaySource {
    /// Loads `path`.
    pub fn open(path: &Path, speed: Speed) -> Result<Self, SourceError> {
        let bytes = std::fs::read(path)
            .map_err(|source| SourceError::Io { path: path.display().to_string(), source })?;
        Ok(Self::from_bytes(path.display().to_string(), &bytes, speed))
    }

    /// Splits `bytes` at every telegram start the framer finds.
    pub fn from_bytes(name: String, bytes: &[u8], speed: Speed) -> Self {
        let mut starts: Vec<(usize, Option<u64>)> = Vec::new();
        let mut framer = Framer::default();
        framer.feed(bytes);
        framer.finish();
        while let Some(step) = framer.next_frame() {
            let Ok(frame) = step else { continue };
            let Ok(offset) = usize::try_from(frame.offset) else { continue };
            let time = Telegram::parse(frame).ok().and_then(|t| {
                let time = Readings::from_telegram(&t).meter_time?;
                u64::try_from(time.to_utc().unix_seconds()).ok()
            });
            starts.push((offset, time));
        }
        let mut chunks = Vec::new();
        let mut cursor = 0;
        for (i, (start, time)) in starts.iter().enumerate() {
            if *start > cursor && i == 0 {
                chunks.push(Chunk { bytes: bytes[cursor..*start].to_vec(), meter_time: None });
            }
            let end = starts.get(i + 1).map_or(bytes.len(), |(next, _)| *next);
            chunks.push(Chunk { bytes: bytes[*start..end].to_vec(), meter_time: *time });
            cursor = end;
        }
        if starts.is_empty() && !bytes.is_empty() {
            chunks.push(Chunk { bytes: bytes.to_vec(), meter_time: None });
        }
        Self { name, chunks, next: 0, speed, last_time: None, resume_after: None }
    }

    /// Telegram chunks in the file (including a leading fragment, if any).
    pub fn len(&self) -> usize {
        self.chunks.len()
    }

    /// Whether the file held nothing.
    pub fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }
}

impl Source for ReplaySource {
    async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, SourceError> {
        loop {
            let Some(chunk) = self.chunks.get(self.next) else { return Ok(None) };
            self.next += 1;
            if let (Some(after), Some(time)) = (self.resume_after, chunk.meter_time)
                && time <= after
            {
                self.last_time = Some(time);
                continue;
            }
            if let (Speed::Factor(factor), Some(time), Some(last)) =
                (self.speed, chunk.meter_time, self.last_time)
            {
                let gap = Duration::from_secs(time.saturating_sub(last)).min(MAX_GAP);
                tokio::time::sleep(gap.div_f64(factor)).await;
            }
            if chunk.meter_time.is_some() {
                self.last_time = chunk.meter_time;
            }
            return Ok(Some(chunk.bytes.clone()));
        }
    }

    fn resume_after(&mut self, unix_secs: u64) {
        self.resume_after = Some(unix_secs);
    }

    fn describe(&self) -> String {
        format!("capture {} ({} chunks)", self.name, self.chunks.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAPTURE: &[u8] = include_bytes!("../../tests/fixtures/iskra-am550-566.p1");

    #[tokio::test]
    async fn replays_every_byte_in_order_split_at_telegrams() {
        let mut source = ReplaySource::from_bytes("capture".into(), CAPTURE, Speed::Unlimited);
        // A leading fragment (the capture starts mid-telegram) plus 566 telegrams.
        assert_eq!(source.len(), 567);
        let mut all = Vec::new();
        while let Some(chunk) = source.next_chunk().await.unwrap() {
            all.extend(chunk);
        }
        assert_eq!(all, CAPTURE);
    }

    #[tokio::test]
    async fn resume_skips_what_was_published() {
        let mut source = ReplaySource::from_bytes("capture".into(), CAPTURE, Speed::Unlimited);
        let cut = source.chunks[300].meter_time.unwrap();
        source.resume_after(cut);
        let mut telegrams = 0;
        while let Some(chunk) = source.next_chunk().await.unwrap() {
            if chunk.starts_with(b"/") {
                telegrams += 1;
            }
        }
        assert_eq!(telegrams, 566 - 300);
    }

    #[tokio::test(start_paused = true)]
    async fn paces_at_the_meters_interval_divided_by_speed() {
        let mut source = ReplaySource::from_bytes("capture".into(), CAPTURE, Speed::Factor(2.0));
        let start = tokio::time::Instant::now();
        for _ in 0..11 {
            source.next_chunk().await.unwrap().unwrap();
        }
        // Fragment, then 10 telegrams one meter-second apart: 9 gaps of 0.5 s.
        assert_eq!(start.elapsed(), Duration::from_millis(4500));
    }

    #[test]
    fn speed_parses_factors_and_max() {
        assert_eq!("max".parse::<Speed>(), Ok(Speed::Unlimited));
        assert_eq!("10".parse::<Speed>(), Ok(Speed::Factor(10.0)));
        assert!("-1".parse::<Speed>().is_err());
        assert!("fast".parse::<Speed>().is_err());
    }
}
