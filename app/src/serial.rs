//! Web Serial: the only module that touches `navigator.serial`.
//!
//! It adapts the browser's port to the reader's [`SerialSource`]/[`SerialLink`] traits; all
//! decoding and link detection is in [`crate::reader`], which the tests drive with a fake port.

use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

use crate::reader::{PortError, SerialLink, SerialSource};

/// Whether this browser can read a serial port, and if not, why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Support {
    /// `navigator.serial` is there.
    Available,
    /// The page is not a secure context (HTTPS or localhost), where Web Serial is hidden.
    InsecureContext,
    /// The browser has no Web Serial (Firefox, Safari, mobile browsers).
    MissingApi,
}

impl Support {
    /// Words for the user when reading is not possible.
    pub fn explanation(self) -> &'static str {
        match self {
            Support::Available => "This browser can read a serial port.",
            Support::InsecureContext => {
                "Web Serial only works on pages served over HTTPS or from this computer \
                 (localhost). Open Meterkast through https:// to read your meter."
            }
            Support::MissingApi => {
                "This browser cannot talk to serial ports (Web Serial). Reading the meter \
                 directly needs a desktop Chrome, Edge or Opera; Firefox and Safari do not \
                 offer it. Everything else in Meterkast works here."
            }
        }
    }
}

/// Detects Web Serial.
pub fn support() -> Support {
    let Some(window) = web_sys::window() else { return Support::MissingApi };
    if !window.is_secure_context() {
        return Support::InsecureContext;
    }
    let navigator = window.navigator();
    match js_sys::Reflect::has(&navigator, &JsValue::from_str("serial")) {
        Ok(true) => Support::Available,
        _ => Support::MissingApi,
    }
}

/// USB vendor ids of the adapters P1 cables are built on, offered first in the port picker:
/// FTDI (FT232R), WCH (CH340/CH341), Silicon Labs (CP210x), Prolific (PL2303).
pub const P1_CABLE_VENDORS: [(u16, &str); 4] = [
    (0x0403, "FTDI"),
    (0x1A86, "WCH CH340"),
    (0x10C4, "Silicon Labs CP210x"),
    (0x067B, "Prolific"),
];

/// Read buffer asked of the browser: several telegrams, so a busy page never drops bytes.
const BUFFER_SIZE: u32 = 16 * 1024;
/// How often a lost device is looked for again.
const REPLUG_POLL_MS: u32 = 1000;

fn js_error(value: &JsValue) -> String {
    value
        .dyn_ref::<js_sys::Error>()
        .map(|error| String::from(error.message()))
        .or_else(|| value.as_string())
        .unwrap_or_else(|| "unknown error".to_owned())
}

fn serial() -> Option<web_sys::Serial> {
    (support() == Support::Available).then(|| web_sys::window()?.navigator().serial().into())?
}

/// The port the user granted, as a [`SerialSource`] the reader opens and reopens.
#[derive(Debug)]
pub struct WebSerialSource {
    port: web_sys::SerialPort,
    /// USB ids of the granted device, to find it again after an unplug.
    usb_ids: (Option<u16>, Option<u16>),
}

impl WebSerialSource {
    fn new(port: web_sys::SerialPort) -> Self {
        let info = port.get_info();
        let usb_ids = (info.get_usb_vendor_id(), info.get_usb_product_id());
        WebSerialSource { port, usb_ids }
    }

    /// Opens the browser's port picker. Call it straight from a click handler: the picker needs
    /// the click's user activation, so the request is made before this function returns and
    /// only the answer is awaited.
    pub fn request() -> impl core::future::Future<Output = Result<Self, PortError>> {
        let pending = serial().map(|serial| {
            let filters: Vec<web_sys::SerialPortFilter> = P1_CABLE_VENDORS
                .iter()
                .map(|&(vendor, _)| {
                    let filter = web_sys::SerialPortFilter::new();
                    filter.set_usb_vendor_id(vendor);
                    filter
                })
                .collect();
            let options = web_sys::SerialPortRequestOptions::new();
            options.set_filters(&filters);
            JsFuture::from(serial.request_port_with_options(&options))
        });
        async move {
            let pending = pending
                .ok_or_else(|| PortError::Open(Support::MissingApi.explanation().to_owned()))?;
            let port = pending.await.map_err(|_| PortError::NotChosen)?;
            Ok(WebSerialSource::new(port))
        }
    }

    /// A port granted on an earlier visit (`getPorts`), without asking again.
    pub async fn remembered() -> Option<Self> {
        let ports = JsFuture::from(serial()?.get_ports()).await.ok()?;
        ports.iter().next().map(WebSerialSource::new)
    }

    /// A short description of the device, e.g. `"FTDI (0403:6001)"`.
    pub fn describe(&self) -> String {
        match self.usb_ids {
            (Some(vendor), Some(product)) => {
                let name = P1_CABLE_VENDORS
                    .iter()
                    .find(|&&(id, _)| id == vendor)
                    .map_or("USB serial adapter", |&(_, name)| name);
                format!("{name} ({vendor:04x}:{product:04x})")
            }
            _ => "serial port".to_owned(),
        }
    }
}

impl SerialSource for WebSerialSource {
    type Link = WebSerialLink;

    async fn open(&mut self, baud_rate: u32) -> Result<WebSerialLink, PortError> {
        let options = web_sys::SerialOptions::new(baud_rate);
        options.set_data_bits(8);
        options.set_stop_bits(1);
        options.set_parity(web_sys::ParityType::None);
        options.set_buffer_size(BUFFER_SIZE);
        JsFuture::from(self.port.open(&options))
            .await
            .map_err(|e| PortError::Open(js_error(&e)))?;
        let reader = self
            .port
            .readable()
            .get_reader()
            .dyn_into::<web_sys::ReadableStreamDefaultReader>()
            .map_err(|_| PortError::Open("the port is not readable".to_owned()))?;
        Ok(WebSerialLink { port: self.port.clone(), reader, pending: None })
    }

    async fn wait_for_device(&mut self) -> Result<(), PortError> {
        // Chromium hands out a new SerialPort object when a device is plugged back in; find
        // it among the granted ports by its USB ids.
        let serial = serial().ok_or_else(|| PortError::Open("Web Serial vanished".to_owned()))?;
        loop {
            gloo_timers::future::TimeoutFuture::new(REPLUG_POLL_MS).await;
            let Ok(ports) = JsFuture::from(serial.get_ports()).await else { continue };
            let found = ports.iter().find(|port| {
                let info = port.get_info();
                (info.get_usb_vendor_id(), info.get_usb_product_id()) == self.usb_ids
            });
            if let Some(port) = found {
                self.port = port;
                return Ok(());
            }
        }
    }
}

/// An open Web Serial port and the reader locked on its stream.
#[derive(Debug)]
pub struct WebSerialLink {
    port: web_sys::SerialPort,
    reader: web_sys::ReadableStreamDefaultReader,
    /// A read whose answer has not been taken yet: kept when the caller drops its future, so
    /// the bytes it brings go to the next [`SerialLink::read`] (this is what makes it
    /// cancel-safe).
    pending: Option<JsFuture>,
}

impl SerialLink for WebSerialLink {
    async fn read(&mut self) -> Result<Option<Vec<u8>>, PortError> {
        let reader = self.reader.clone();
        let pending = self.pending.get_or_insert_with(|| JsFuture::from(reader.read()));
        let result = pending.await;
        self.pending = None;
        let result = result.map_err(|e| PortError::Disconnected(js_error(&e)))?;
        let result: web_sys::ReadableStreamReadResult = result.unchecked_into();
        if result.get_done().unwrap_or(false) {
            return Ok(None);
        }
        Ok(Some(js_sys::Uint8Array::new(&result.get_value()).to_vec()))
    }

    async fn close(self) {
        // Errors are ignored throughout: after an unplug the port is already gone.
        let _ = JsFuture::from(self.reader.cancel()).await;
        self.reader.release_lock();
        let _ = JsFuture::from(self.port.close()).await;
    }
}
