//! The meter's P1 port through tokio-serial: 8N1, speed detection, reopening after unplug.
//!
//! DSMR 4/5 meters talk at 115200 Bd 8N1; DSMR 2.2/3 at 9600 Bd 7E1. Opening 8N1 and clearing
//! bit 7 (the framer does, `FramerConfig::mask_parity_bit`) reads both, so the only unknown is
//! the speed. With [`BaudRate::Auto`] the port starts at 115200 and switches to 9600 when no
//! telegram has been framed within [`SerialConfig::probe`], and back again, until one is; the
//! speed that worked is kept until the port is lost. (The 2018 client read its version setting
//! from a misspelt variable and so always used the DSMR 2.2 preset.)
//!
//! A USB cable pulled from the Pi makes reads fail (or return end-of-file); the source then
//! reopens the device path every [`SerialConfig::reopen_delay`] until it is back.

use std::time::Duration;

use protocol::p1::Framer;
use tokio::io::AsyncReadExt;
use tokio_serial::{DataBits, Parity, SerialPortBuilderExt, SerialStream, StopBits};

use super::{Source, SourceError};

/// The port speed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BaudRate {
    /// Try 115200, then 9600.
    Auto,
    /// Exactly this speed.
    Fixed(u32),
}

impl std::str::FromStr for BaudRate {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text == "auto" {
            return Ok(BaudRate::Auto);
        }
        text.parse::<u32>()
            .ok()
            .filter(|b| *b > 0)
            .map(BaudRate::Fixed)
            .ok_or_else(|| format!("baud rate must be \"auto\" or a number, got {text:?}"))
    }
}

/// Serial settings.
#[derive(Debug, Clone)]
pub struct SerialConfig {
    /// Device path, e.g. `/dev/ttyUSB0`.
    pub path: String,
    /// Speed.
    pub baud: BaudRate,
    /// How long to wait for a telegram before trying the other speed (auto only).
    pub probe: Duration,
    /// Wait between attempts to reopen a lost port.
    pub reopen_delay: Duration,
}

impl SerialConfig {
    /// Defaults for `path`: auto speed, 12 s probe (a DSMR 2/3 meter sends every 10 s),
    /// reopen every 2 s.
    pub fn new(path: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            baud: BaudRate::Auto,
            probe: Duration::from_secs(12),
            reopen_delay: Duration::from_secs(2),
        }
    }
}

const AUTO_SPEEDS: [u32; 2] = [115_200, 9_600];

/// A serial port source.
#[derive(Debug)]
pub struct SerialSource {
    config: SerialConfig,
    port: Option<SerialStream>,
    speed_index: usize,
    /// A telegram was framed at the current speed since the port was opened.
    locked: bool,
    probe: Framer,
    probe_deadline: tokio::time::Instant,
    buf: Vec<u8>,
}

impl SerialSource {
    /// A source that opens `config.path` on first read.
    pub fn new(config: SerialConfig) -> Self {
        Self {
            config,
            port: None,
            speed_index: 0,
            locked: false,
            probe: Framer::default(),
            probe_deadline: tokio::time::Instant::now(),
            buf: vec![0; 4096],
        }
    }

    /// The speed telegrams were framed at since the port was opened (fixed speeds count from
    /// the start); `None` while detecting or while the port is closed.
    pub fn locked_baud(&self) -> Option<u32> {
        (self.port.is_some() && self.locked).then(|| self.speed())
    }

    fn speed(&self) -> u32 {
        match self.config.baud {
            BaudRate::Fixed(baud) => baud,
            BaudRate::Auto => AUTO_SPEEDS[self.speed_index % AUTO_SPEEDS.len()],
        }
    }

    fn open(&mut self) -> std::io::Result<()> {
        let speed = self.speed();
        let port = tokio_serial::new(&self.config.path, speed)
            .data_bits(DataBits::Eight)
            .parity(Parity::None)
            .stop_bits(StopBits::One)
            .open_native_async()?;
        tracing::info!(path = %self.config.path, baud = speed, "serial port open");
        self.port = Some(port);
        self.locked = matches!(self.config.baud, BaudRate::Fixed(_));
        self.probe = Framer::default();
        self.probe_deadline = tokio::time::Instant::now() + self.config.probe;
        Ok(())
    }

    /// Feeds the detection framer; true once a complete telegram was seen at this speed.
    fn probe_bytes(&mut self, bytes: &[u8]) -> bool {
        self.probe.feed(bytes);
        let mut seen = false;
        while let Some(step) = self.probe.next_frame() {
            if let Ok(frame) = step
                && protocol::p1::Telegram::parse(frame).is_ok_and(|t| !t.objects().is_empty())
            {
                seen = true;
            }
        }
        seen
    }
}

impl Source for SerialSource {
    async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, SourceError> {
        loop {
            if self.port.is_none()
                && let Err(err) = self.open()
            {
                tracing::warn!(path = %self.config.path, error = %err,
                    retry_in = ?self.config.reopen_delay, "cannot open serial port");
                tokio::time::sleep(self.config.reopen_delay).await;
                continue;
            }
            let Some(port) = self.port.as_mut() else { continue };
            let read = if self.locked {
                Ok(port.read(&mut self.buf).await)
            } else {
                tokio::time::timeout_at(self.probe_deadline, port.read(&mut self.buf)).await
            };
            match read {
                Ok(Ok(0)) | Ok(Err(_)) => {
                    let why = match read {
                        Ok(Err(err)) => err.to_string(),
                        _ => "end of file".to_owned(),
                    };
                    tracing::warn!(path = %self.config.path, error = %why,
                        "serial port lost (unplugged?); reopening");
                    self.port = None;
                    tokio::time::sleep(self.config.reopen_delay).await;
                }
                Ok(Ok(n)) => {
                    let bytes = self.buf[..n].to_vec();
                    if !self.locked && self.probe_bytes(&bytes) {
                        self.locked = true;
                        tracing::info!(baud = self.speed(), "telegrams framed: speed locked");
                    }
                    return Ok(Some(bytes));
                }
                Err(_elapsed) => {
                    self.speed_index += 1;
                    tracing::info!(
                        next_baud = self.speed(),
                        "no telegram at this speed; trying the other one"
                    );
                    self.port = None;
                }
            }
        }
    }

    fn describe(&self) -> String {
        format!("serial {} ({:?})", self.config.path, self.config.baud)
    }
}
