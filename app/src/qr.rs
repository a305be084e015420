//! QR codes of `meterkast:` links (provider requests, device pairing), drawn as inline SVG so a
//! phone camera can carry a link from one screen to another.

use qrcode::QrCode;
use qrcode::render::svg;

pub use qrcode::types::QrError;

/// A QR code of `link` as an SVG element with the id `element_id` and the accessible name
/// `label` (screen readers announce the picture by it).
pub fn qr_svg(link: &str, element_id: &str, label: &str) -> Result<String, QrError> {
    let code = QrCode::new(link.as_bytes())?;
    let image = code
        .render::<svg::Color<'_>>()
        .min_dimensions(200, 200)
        .dark_color(svg::Color("#000"))
        .light_color(svg::Color("#fff"))
        .build();
    // Drop the XML declaration (not allowed inside HTML) and name the element.
    let start = image.find("<svg").unwrap_or(0);
    let label = label.replace(['"', '<', '>', '&'], "");
    Ok(image[start..].replacen(
        "<svg ",
        &format!(r#"<svg id="{element_id}" role="img" aria-label="{label}" "#),
        1,
    ))
}
