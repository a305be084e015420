//! Reading a meter: bytes from a serial port in, decoded telegrams and link events out.
//!
//! ```text
//!   SerialSource ──open(baud)──► SerialLink ──read()──► chunks ──► MeterDecoder ──► Decoded
//!   (Web Serial in serial.rs,                                     (protocol::p1:
//!    a fake port in the tests)                                     framer, CRC, cipher)
//!        ▲                                                               │
//!        └── run(): link detection, unplug → wait_for_device → reopen ───┴──► ReaderEvent
//! ```
//!
//! The page drives [`run`] with the Web Serial port ([`crate::serial`]); the tests drive the
//! same function with a fake port that replays a capture in random pieces and unplugs itself.
//! [`MeterDecoder`] is synchronous and owns no I/O, so its cost per telegram can be measured
//! on its own (see `tests/reader.rs`).
//!
//! # Link detection
//!
//! DSMR 4/5 meters send 8N1 at 115 200 Bd; DSMR 2.2/3 meters send 7E1 at 9600 Bd. Both are read
//! through a port opened as 8N1 because the framer clears bit 7 (where a 7E1 byte carries its
//! parity). [`run`] tries the speeds of [`BAUD_CANDIDATES`] in turn and stays on the first
//! that yields a telegram; a speed is given up after [`DETECT_BYTE_BUDGET`] bytes or
//! [`DETECT_WINDOW_MS`] without one (older meters send a telegram only every 10 s).

use core::future::{Future, poll_fn};
use core::pin::{Pin, pin};
use core::task::Poll;

use futures_channel::oneshot;
use gloo_timers::future::TimeoutFuture;
use protocol::p1::{
    CipherFrameError, CipherFrameIn, DecryptError, FrameError, Framer, MeterKey,
    SMARTY_AUTHENTICATION_KEY, Telegram, TelegramError,
};
use thiserror::Error;

use crate::live::Snapshot;

/// Line speeds tried, in order: DSMR 4/5 first (nearly every meter installed since 2014).
pub const BAUD_CANDIDATES: [u32; 2] = [115_200, 9_600];
/// Bytes read at one speed without a telegram before the next speed is tried: at the right
/// speed a DSMR 5 meter sends a whole telegram (≤ 1.5 KiB) every second.
pub const DETECT_BYTE_BUDGET: u64 = 4096;
/// Time at one speed without a telegram before the next is tried (DSMR 2.2/3 send every 10 s).
pub const DETECT_WINDOW_MS: u32 = 12_000;
/// How long a cipher frame may grow before the buffer is considered garbage.
const MAX_CIPHER_BUFFER: usize = 16 * 1024;

/// Why the serial port failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PortError {
    /// The cable was unplugged or the device vanished while reading.
    #[error("the meter cable was unplugged or the port was lost ({0})")]
    Disconnected(String),
    /// The port could not be opened (another program holds it, or the device is gone).
    #[error("the serial port could not be opened: {0}")]
    Open(String),
    /// The user closed the port picker without choosing a port.
    #[error("no serial port was chosen")]
    NotChosen,
}

/// An open serial port delivering bytes.
///
/// `read` must be cancel-safe: [`run`] drops a pending read when a detection window ends or the
/// user stops, and no byte may be lost or duplicated by that (the Web Serial port keeps its
/// pending read for the next call).
#[allow(async_fn_in_trait)] // wasm is single-threaded: these futures need not be `Send`
pub trait SerialLink {
    /// The next chunk of bytes; `Ok(None)` when the port's stream ended.
    async fn read(&mut self) -> Result<Option<Vec<u8>>, PortError>;
    /// Closes the port (errors are ignored: the device may already be gone).
    async fn close(self);
}

/// Something that can open the chosen port, again and again (reopen after an unplug, or at
/// another speed).
#[allow(async_fn_in_trait)] // wasm is single-threaded: these futures need not be `Send`
pub trait SerialSource {
    /// The open port type.
    type Link: SerialLink;
    /// Opens the port 8N1 at `baud_rate`.
    async fn open(&mut self, baud_rate: u32) -> Result<Self::Link, PortError>;
    /// Waits until the device is plugged in again after a disconnect.
    async fn wait_for_device(&mut self) -> Result<(), PortError>;
}

/// Telegrams and problems counted since the reader started.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Counts {
    /// Milliseconds spent in [`MeterDecoder::feed`] (framing, CRC, parsing, decryption,
    /// snapshots) on this thread, measured by [`run`] with `performance.now()`.
    pub decode_ms: f64,
    /// Telegrams with a correct CRC (or none, on meters that send none), or that decrypted.
    pub good: u64,
    /// Telegrams that failed: CRC mismatch, truncated, oversized, not ASCII, not decryptable.
    pub bad: u64,
    /// Bytes outside any telegram (noise, a start mid-telegram).
    pub garbage_bytes: u64,
}

/// Why bytes did not become a usable telegram.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeProblem {
    /// The framer could not frame the bytes.
    #[error("{0}")]
    Frame(FrameError),
    /// A framed telegram is not ASCII text.
    #[error("{0}")]
    Telegram(TelegramError),
    /// An encrypted frame is malformed.
    #[error("encrypted frame: {0}")]
    CipherFrame(CipherFrameError),
    /// An encrypted frame did not decrypt with the key given.
    #[error("{0} — check the decryption key")]
    Decrypt(DecryptError),
}

/// What the decoder made of the bytes.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded {
    /// A trustworthy telegram (correct CRC, no CRC on old meters, or authenticated decryption).
    Telegram(Box<Snapshot>),
    /// A telegram whose CRC does not match: shown raw, its values not used.
    Corrupt(Box<Snapshot>),
    /// Bytes that are not a telegram.
    Problem(DecodeProblem),
}

/// Turns serial chunks into [`Decoded`] values with `protocol::p1`, plaintext or encrypted.
#[derive(Debug)]
pub struct MeterDecoder {
    framer: Framer,
    /// Set for Luxembourg/Austrian meters: the stream is then DLMS cipher frames, not text.
    key: Option<MeterKey>,
    cipher_buf: Vec<u8>,
    counts: Counts,
    /// A telegram (or a well-formed cipher frame) was seen since the last [`Self::reset_link`]:
    /// the line speed is right.
    link_evidence: bool,
}

impl Default for MeterDecoder {
    fn default() -> Self {
        MeterDecoder::new(None)
    }
}

impl MeterDecoder {
    /// A decoder for plaintext meters (`key = None`) or encrypted ones.
    pub fn new(key: Option<MeterKey>) -> Self {
        MeterDecoder {
            framer: Framer::default(),
            key,
            cipher_buf: Vec::new(),
            counts: Counts::default(),
            link_evidence: false,
        }
    }

    /// The counts so far.
    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// Whether the bytes since the last reset contained a telegram.
    pub fn has_link_evidence(&self) -> bool {
        self.link_evidence
    }

    /// Forgets partial input and the link evidence (a new port or a new speed).
    pub fn reset_link(&mut self, out: &mut Vec<Decoded>) {
        self.end_of_input(out);
        self.link_evidence = false;
    }

    /// The input stopped (unplug, close): a telegram cut off is reported as truncated.
    pub fn end_of_input(&mut self, out: &mut Vec<Decoded>) {
        self.framer.finish();
        self.drain_framer(out);
        if !self.cipher_buf.is_empty() {
            self.counts.bad += 1;
            out.push(Decoded::Problem(DecodeProblem::CipherFrame(CipherFrameError::Incomplete {
                needed: self.cipher_buf.len() + 1,
            })));
            self.cipher_buf.clear();
        }
    }

    /// Decodes one chunk, appending what it completed to `out`.
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<Decoded>) {
        if self.key.is_some() {
            self.cipher_buf.extend_from_slice(chunk);
            self.drain_cipher(out);
        } else {
            self.framer.feed(chunk);
            self.drain_framer(out);
        }
    }

    fn drain_framer(&mut self, out: &mut Vec<Decoded>) {
        while let Some(step) = self.framer.next_frame() {
            match step {
                Ok(frame) => {
                    let digits = String::from_utf8_lossy(frame.crc_digits).into_owned();
                    match Telegram::parse(frame) {
                        Ok(telegram) => {
                            let snapshot = Box::new(Snapshot::of(&telegram, &digits));
                            // A CRC settles it; without one, line noise must not pass as a
                            // telegram (p1::trust).
                            if telegram.trusted().is_ok() {
                                self.counts.good += 1;
                                self.link_evidence |= !telegram.objects().is_empty();
                                out.push(Decoded::Telegram(snapshot));
                            } else {
                                self.counts.bad += 1;
                                out.push(Decoded::Corrupt(snapshot));
                            }
                        }
                        Err(error) => {
                            self.counts.bad += 1;
                            out.push(Decoded::Problem(DecodeProblem::Telegram(error)));
                        }
                    }
                }
                Err(FrameError::Garbage { len, offset }) => {
                    self.counts.garbage_bytes += len;
                    out.push(Decoded::Problem(DecodeProblem::Frame(FrameError::Garbage {
                        offset,
                        len,
                    })));
                }
                Err(error) => {
                    self.counts.bad += 1;
                    out.push(Decoded::Problem(DecodeProblem::Frame(error)));
                }
            }
        }
    }

    fn drain_cipher(&mut self, out: &mut Vec<Decoded>) {
        let Some(key) = self.key.clone() else { return };
        loop {
            // A frame starts with the general-glo-cipher tag and an 8-byte system title.
            let start = self.cipher_buf.windows(2).position(|pair| pair == [0xDB, 0x08]);
            let skip = start.unwrap_or(self.cipher_buf.len().saturating_sub(1));
            self.counts.garbage_bytes += skip as u64;
            self.cipher_buf.drain(..skip);
            if start.is_none() {
                return;
            }
            match CipherFrameIn::split(&self.cipher_buf) {
                Err(CipherFrameError::Incomplete { .. })
                    if self.cipher_buf.len() <= MAX_CIPHER_BUFFER =>
                {
                    return;
                }
                Err(error) => {
                    self.counts.bad += 1;
                    out.push(Decoded::Problem(DecodeProblem::CipherFrame(error)));
                    self.cipher_buf.drain(..1);
                }
                Ok((frame, used)) => {
                    self.link_evidence = true;
                    // Real Smarty/AT meters authenticate with the public Smarty key; some
                    // units (and the specification's examples) use no additional data.
                    let plain = frame
                        .decrypt(&key, Some(&SMARTY_AUTHENTICATION_KEY))
                        .or_else(|_| frame.decrypt(&key, None));
                    self.cipher_buf.drain(..used);
                    match plain {
                        Ok(plain) => self.decoded_plaintext(&plain, out),
                        Err(error) => {
                            self.counts.bad += 1;
                            out.push(Decoded::Problem(DecodeProblem::Decrypt(error)));
                        }
                    }
                }
            }
        }
    }

    fn decoded_plaintext(&mut self, plain: &[u8], out: &mut Vec<Decoded>) {
        match Telegram::parse_bytes(plain) {
            Ok(telegram) => {
                let end = telegram.offset() as usize + telegram.text().len();
                let digits: String = plain
                    .get(end..)
                    .unwrap_or_default()
                    .iter()
                    .take_while(|b| b.is_ascii_hexdigit())
                    .take(4)
                    .map(|&b| char::from(b))
                    .collect();
                let snapshot = Box::new(Snapshot::of(&telegram, &digits));
                // Authenticated decryption already vouches for the content.
                self.counts.good += 1;
                out.push(Decoded::Telegram(snapshot));
            }
            Err(error) => {
                self.counts.bad += 1;
                out.push(Decoded::Problem(DecodeProblem::Telegram(error)));
            }
        }
    }
}

/// What the reader reports to the page.
#[derive(Debug, Clone, PartialEq)]
pub enum ReaderEvent {
    /// The port is being opened at this speed (link detection).
    Trying { baud_rate: u32 },
    /// Telegrams arrive at this speed.
    LinkDetected { baud_rate: u32 },
    /// Every speed was tried without a telegram; trying again from the first.
    NoTelegrams,
    /// Output of the decoder, with the counts after it.
    Decoded(Decoded, Counts),
    /// The port was lost; the reader waits for the device to come back.
    Disconnected(PortError),
    /// The device is back and reading resumed at this speed.
    Resumed { baud_rate: u32 },
}

/// How [`run`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stopped {
    /// The stop signal fired (or its sender was dropped).
    ByRequest,
    /// The port could not be opened.
    Failed(PortError),
}

enum Wake {
    Data(Result<Option<Vec<u8>>, PortError>),
    Timeout,
    Stop,
}

/// Waits for the first of: the stop signal, the timer (if any), a read.
async fn next_wake(
    read: impl Future<Output = Result<Option<Vec<u8>>, PortError>>,
    timer: Option<&mut TimeoutFuture>,
    stop: &mut oneshot::Receiver<()>,
) -> Wake {
    let mut read = pin!(read);
    let mut timer = timer;
    poll_fn(move |cx| {
        if Pin::new(&mut *stop).poll(cx).is_ready() {
            return Poll::Ready(Wake::Stop);
        }
        if let Some(timer) = timer.as_deref_mut()
            && Pin::new(timer).poll(cx).is_ready()
        {
            return Poll::Ready(Wake::Timeout);
        }
        read.as_mut().poll(cx).map(Wake::Data)
    })
    .await
}

/// Waits for `work` unless the stop signal fires first.
async fn unless_stopped<T>(
    work: impl Future<Output = T>,
    stop: &mut oneshot::Receiver<()>,
) -> Option<T> {
    let mut work = pin!(work);
    poll_fn(move |cx| {
        if Pin::new(&mut *stop).poll(cx).is_ready() {
            return Poll::Ready(None);
        }
        work.as_mut().poll(cx).map(Some)
    })
    .await
}

/// `performance.now()` in milliseconds (0 where there is no `window`).
fn now_ms() -> f64 {
    web_sys::window().and_then(|window| window.performance()).map_or(0.0, |p| p.now())
}

/// Feeds a chunk and adds the time it took to the decoder's counts. Chromium rounds
/// `performance.now()` to 100 µs with jitter, so single chunks read 0 or 0.1 ms; the sum over
/// many chunks is what is meaningful.
fn timed_feed(decoder: &mut MeterDecoder, chunk: &[u8], out: &mut Vec<Decoded>) {
    let started = now_ms();
    decoder.feed(chunk, out);
    decoder.counts.decode_ms += now_ms() - started;
}

/// Hands decoded values to `emit`, each with the counts after it.
fn flush(decoder: &MeterDecoder, out: &mut Vec<Decoded>, emit: &mut impl FnMut(ReaderEvent)) {
    for decoded in out.drain(..) {
        emit(ReaderEvent::Decoded(decoded, decoder.counts()));
    }
}

/// Reads the meter until `stop` fires: detects the line speed, decodes every chunk, and after
/// an unplug waits for the device and resumes. Everything is reported through `emit`.
pub async fn run<S: SerialSource>(
    source: &mut S,
    decoder: &mut MeterDecoder,
    stop: &mut oneshot::Receiver<()>,
    emit: &mut impl FnMut(ReaderEvent),
) -> Stopped {
    let mut out = Vec::new();
    let mut locked: Option<u32> = None;
    let mut resuming = false;
    loop {
        let mut interrupted = false;
        // Phase 1: find the speed (or reuse the one that worked before an unplug).
        let candidates: Vec<u32> = match locked {
            Some(baud) => vec![baud],
            None => BAUD_CANDIDATES.to_vec(),
        };
        let mut link = None;
        for baud in candidates {
            if locked.is_none() {
                emit(ReaderEvent::Trying { baud_rate: baud });
            }
            let mut port = match unless_stopped(source.open(baud), stop).await {
                None => return Stopped::ByRequest,
                Some(Ok(port)) => port,
                // Back after an unplug but not ready yet (the OS still enumerates it): wait again.
                Some(Err(error)) if resuming => {
                    emit(ReaderEvent::Disconnected(error));
                    if unless_stopped(source.wait_for_device(), stop).await.is_none() {
                        return Stopped::ByRequest;
                    }
                    interrupted = true;
                    break;
                }
                Some(Err(error)) => return Stopped::Failed(error),
            };
            decoder.reset_link(&mut out);
            flush(decoder, &mut out, emit);
            if locked.is_some() {
                link = Some((port, baud));
                break;
            }
            let mut timer = TimeoutFuture::new(DETECT_WINDOW_MS);
            let mut bytes_seen = 0u64;
            let verdict = loop {
                match next_wake(port.read(), Some(&mut timer), stop).await {
                    Wake::Stop => {
                        port.close().await;
                        return Stopped::ByRequest;
                    }
                    Wake::Timeout => break None,
                    Wake::Data(Ok(Some(chunk))) => {
                        bytes_seen += chunk.len() as u64;
                        timed_feed(decoder, &chunk, &mut out);
                        flush(decoder, &mut out, emit);
                        if decoder.has_link_evidence() {
                            break Some(Ok(()));
                        }
                        if bytes_seen > DETECT_BYTE_BUDGET {
                            break None;
                        }
                    }
                    Wake::Data(Ok(None)) => {
                        break Some(Err(PortError::Disconnected("the port closed".to_owned())));
                    }
                    Wake::Data(Err(error)) => break Some(Err(error)),
                }
            };
            match verdict {
                Some(Ok(())) => {
                    emit(ReaderEvent::LinkDetected { baud_rate: baud });
                    link = Some((port, baud));
                    break;
                }
                None => port.close().await,
                Some(Err(error)) => {
                    port.close().await;
                    decoder.end_of_input(&mut out);
                    flush(decoder, &mut out, emit);
                    emit(ReaderEvent::Disconnected(error));
                    if unless_stopped(source.wait_for_device(), stop).await.is_none() {
                        return Stopped::ByRequest;
                    }
                    interrupted = true;
                    break;
                }
            }
        }
        let Some((mut port, baud)) = link else {
            if !interrupted {
                emit(ReaderEvent::NoTelegrams);
            }
            continue;
        };
        locked = Some(baud);
        if resuming {
            emit(ReaderEvent::Resumed { baud_rate: baud });
        }

        // Phase 2: read until stopped or unplugged.
        let error = loop {
            match next_wake(port.read(), None, stop).await {
                Wake::Stop => {
                    port.close().await;
                    return Stopped::ByRequest;
                }
                Wake::Timeout => {}
                Wake::Data(Ok(Some(chunk))) => {
                    timed_feed(decoder, &chunk, &mut out);
                    flush(decoder, &mut out, emit);
                }
                Wake::Data(Ok(None)) => {
                    break PortError::Disconnected("the port closed".to_owned());
                }
                Wake::Data(Err(error)) => break error,
            }
        };
        port.close().await;
        decoder.end_of_input(&mut out);
        flush(decoder, &mut out, emit);
        emit(ReaderEvent::Disconnected(error));
        if unless_stopped(source.wait_for_device(), stop).await.is_none() {
            return Stopped::ByRequest;
        }
        resuming = true;
    }
}
