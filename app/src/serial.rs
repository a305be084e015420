//! Web Serial: the only module that touches `navigator.serial`.

use wasm_bindgen::JsValue;

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
