//! QR codes for health cards (rules 34–37): the `shc:/` numeric text, its deprecated chunked form,
//! the QR matrix, SVG and PNG rendering, and decoding raster images.
//!
//! A card is one QR of version ≤ 22 at error correction L with exactly two segments: byte mode
//! `shc:/`, then numeric mode where each JWS character `c` becomes the two digits of `c − 45`.
//! vaxcred never emits chunks (rule 37) but decodes them in any scan order.
//!
//! Rendering a matrix costs ~30× the rest of a card (DESIGN.md §10): callers render on request
//! and cache, never per issued card.

use qrcodegen::{Mask, QrCode, QrCodeEcc, QrSegment, Version};

use crate::error::{Error, Problem, ProblemKind};
use crate::{MAX_CHUNK_JWS, MAX_SINGLE_QR_JWS};

/// The prefix of every health-card QR text (rule 35).
pub const PREFIX: &str = "shc:/";
/// Largest QR version allowed (rule 34).
pub const MAX_VERSION: u8 = 22;
const SMALLEST_CHAR: u8 = b'-';
const LARGEST_CHAR: u8 = b'z';

/// The numeric digits for a JWS (rule 35): two digits per character, `c − 45`.
pub fn numeric_digits(jws: &str) -> Result<String, Error> {
    let mut out = String::with_capacity(jws.len() * 2);
    for b in jws.bytes() {
        if !(SMALLEST_CHAR..=LARGEST_CHAR).contains(&b) {
            return Err(Error::Claim(
                "JWS holds a character outside `-`..`z`".into(),
            ));
        }
        let v = b - SMALLEST_CHAR;
        out.push(char::from(b'0' + v / 10));
        out.push(char::from(b'0' + v % 10));
    }
    Ok(out)
}

/// The `shc:/…` text of a single-QR card.
pub fn numeric_text(jws: &str) -> Result<String, Error> {
    let digits = numeric_digits(jws)?;
    let mut out = String::with_capacity(PREFIX.len() + digits.len());
    out.push_str(PREFIX);
    out.push_str(&digits);
    Ok(out)
}

/// One decoded QR text: the chunk position when chunked, and the JWS (part).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedText {
    /// `(index, total)`, 1-based, for the deprecated chunked form.
    pub chunk: Option<(usize, usize)>,
    /// The JWS, or the chunk of it.
    pub jws: String,
}

/// Splits off trailing characters: one final newline is tolerated as a file-ending convention,
/// anything else after the artefact is a problem (dev-tools `*-trailing_chars`).
pub fn split_trailing(text: &str) -> (&str, Option<Problem>) {
    let body = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(text);
    let trimmed = body.trim_end();
    if trimmed.len() != body.len() {
        let problem = Problem::error(
            ProblemKind::TrailingCharacters,
            format!(
                "{} trailing whitespace character(s) after the artefact",
                body.len() - trimmed.len()
            ),
        );
        (trimmed, Some(problem))
    } else {
        (body, None)
    }
}

/// Decodes one `shc:/` text (single or one chunk).
pub fn decode_text(text: &str) -> Result<DecodedText, Problem> {
    let rest = text.strip_prefix(PREFIX).ok_or_else(|| {
        Problem::error(
            ProblemKind::InvalidNumericQrHeader,
            "QR text must start with `shc:/` (rule 35)",
        )
    })?;
    let (chunk, digits) = match split_chunk_header(rest) {
        Some((index, total, digits)) => (Some((index, total)), digits),
        None => (None, rest),
    };
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Problem::error(
            ProblemKind::InvalidNumericQr,
            "QR text holds non-digit characters",
        ));
    }
    if digits.len() % 2 != 0 {
        return Err(Problem::error(
            ProblemKind::InvalidNumericQr,
            "QR text has an odd number of digits (rule 36)",
        ));
    }
    let mut jws = String::with_capacity(digits.len() / 2);
    for pair in digits.as_bytes().chunks_exact(2) {
        let (Some(hi), Some(lo)) = (pair.first(), pair.get(1)) else {
            continue;
        };
        let v = (hi - b'0') * 10 + (lo - b'0');
        if v > LARGEST_CHAR - SMALLEST_CHAR {
            return Err(Problem::error(
                ProblemKind::InvalidNumericQr,
                format!("QR digit pair {v} is above 77 (rule 36)"),
            ));
        }
        jws.push(char::from(v + SMALLEST_CHAR));
    }
    Ok(DecodedText { chunk, jws })
}

/// `C/N/digits` → (C, N, digits) when `rest` has a chunk header.
fn split_chunk_header(rest: &str) -> Option<(usize, usize, &str)> {
    let mut parts = rest.splitn(3, '/');
    let (c, n, digits) = (parts.next()?, parts.next()?, parts.next()?);
    let c = c
        .parse()
        .ok()
        .filter(|_| c.bytes().all(|b| b.is_ascii_digit()))?;
    let n = n
        .parse()
        .ok()
        .filter(|_| n.bytes().all(|b| b.is_ascii_digit()))?;
    Some((c, n, digits))
}

/// Assembles the JWS from one QR text or from the chunks of a chunked card, in any order, with
/// every problem found. Returns `None` for the JWS when it cannot be assembled.
pub fn assemble(texts: &[&str]) -> (Option<String>, Vec<Problem>) {
    let mut problems = Vec::new();
    let mut decoded = Vec::with_capacity(texts.len());
    for text in texts {
        let (body, trailing) = split_trailing(text);
        problems.extend(trailing);
        match decode_text(body) {
            Ok(d) => decoded.push(d),
            Err(p) => {
                problems.push(p);
                return (None, problems);
            }
        }
    }
    match decoded.as_slice() {
        [] => {
            problems.push(Problem::error(ProblemKind::QrDecode, "no QR text given"));
            (None, problems)
        }
        [single] => match single.chunk {
            None => (Some(single.jws.clone()), problems),
            Some((1, 1)) => {
                problems.push(Problem::warning(
                    ProblemKind::InvalidNumericQrHeader,
                    "single QR code carries a `1/1/` chunk header",
                ));
                (Some(single.jws.clone()), problems)
            }
            Some((index, total)) => {
                problems.push(Problem::error(
                    ProblemKind::QrChunkingDeprecated,
                    "chunked QR codes are deprecated (rule 37)",
                ));
                problems.push(Problem::error(
                    ProblemKind::InvalidNumericQrHeader,
                    format!("chunk {index}/{total} given alone; the other chunks are missing or the header is wrong"),
                ));
                (None, problems)
            }
        },
        many => assemble_chunks(many, problems),
    }
}

fn assemble_chunks(
    chunks: &[DecodedText],
    mut problems: Vec<Problem>,
) -> (Option<String>, Vec<Problem>) {
    let n = chunks.len();
    let mut slots: Vec<Option<&str>> = vec![None; n];
    for c in chunks {
        let Some((index, total)) = c.chunk else {
            problems.push(Problem::error(
                ProblemKind::InvalidNumericQrHeader,
                "a chunk of a chunked card lacks its `C/N/` header",
            ));
            return (None, problems);
        };
        if total != n || index == 0 || index > n {
            problems.push(Problem::error(
                ProblemKind::QrChunkingDeprecated,
                "chunked QR codes are deprecated (rule 37)",
            ));
            problems.push(Problem::error(
                ProblemKind::InvalidNumericQrHeader,
                format!("chunk {index}/{total} does not fit a set of {n} chunks"),
            ));
            return (None, problems);
        }
        match slots.get_mut(index - 1) {
            Some(slot @ None) => *slot = Some(&c.jws),
            _ => {
                problems.push(Problem::error(
                    ProblemKind::InvalidNumericQrHeader,
                    format!("chunk {index} appears twice"),
                ));
                return (None, problems);
            }
        }
    }
    let jws: String = slots.iter().flatten().copied().collect();
    let needed = jws.len() > MAX_SINGLE_QR_JWS;
    if needed {
        problems.push(Problem::warning(
            ProblemKind::QrChunkingDeprecated,
            "chunked QR codes are deprecated (rule 37)",
        ));
    } else {
        problems.push(Problem::error(
            ProblemKind::QrChunkingDeprecated,
            "card fits one QR code but was chunked (chunking is deprecated, rule 37)",
        ));
    }
    for c in chunks {
        if c.jws.len() > MAX_CHUNK_JWS {
            problems.push(Problem::error(
                ProblemKind::InvalidNumericQr,
                format!(
                    "chunk of {} characters exceeds {MAX_CHUNK_JWS} (rule 37)",
                    c.jws.len()
                ),
            ));
        }
    }
    let lens = chunks.iter().map(|c| c.jws.len());
    let (min, max) = (lens.clone().min().unwrap_or(0), lens.max().unwrap_or(0));
    // More chunks than the length needs, or sizes far apart, means the producer did not balance.
    if max - min > n || n > jws.len().div_ceil(MAX_CHUNK_JWS) {
        problems.push(Problem::warning(
            ProblemKind::UnbalancedQrChunks,
            format!(
                "chunk sizes range from {min} to {max} characters; producers should balance them"
            ),
        ));
    }
    (Some(jws), problems)
}

/// The spec's two segments: bytes `shc:/` (with a chunk header `C/N/` when present), then digits.
fn segments(text: &str) -> Result<Vec<QrSegment>, Error> {
    let rest = text
        .strip_prefix(PREFIX)
        .ok_or_else(|| Error::Claim("QR text must start with `shc:/`".into()))?;
    let digits = match split_chunk_header(rest) {
        Some((_, _, digits)) => digits,
        None => rest,
    };
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::Claim(
            "QR text holds non-digits after `shc:/`".into(),
        ));
    }
    let prefix = text.get(..text.len() - digits.len()).unwrap_or(PREFIX);
    Ok(vec![
        QrSegment::make_bytes(prefix.as_bytes()),
        QrSegment::make_numeric(digits),
    ])
}

/// The QR matrix of a `shc:/` text: two segments, error correction L, version ≤ 22 (rules 34–36).
pub fn matrix(text: &str) -> Result<QrCode, Error> {
    let segs = segments(text)?;
    QrCode::encode_segments_advanced(
        &segs,
        QrCodeEcc::Low,
        Version::MIN,
        Version::new(MAX_VERSION),
        None,
        false,
    )
    .map_err(|_| Error::TooLargeForQr {
        jws_len: text.len().saturating_sub(PREFIX.len()) / 2,
        max: MAX_SINGLE_QR_JWS,
    })
}

/// Quiet zone around the code, in modules (the QR standard asks for 4).
pub const QUIET_ZONE: i32 = 4;

/// Renders a matrix as SVG starting with `<svg` (no XML prolog: some validators refuse one),
/// one unit per module, with the quiet zone. Dark runs are drawn as horizontal strokes.
pub fn to_svg(code: &QrCode) -> String {
    let size = code.size();
    let full = size + 2 * QUIET_ZONE;
    let mut path = String::with_capacity((size * size) as usize);
    for y in 0..size {
        let mut x = 0;
        while x < size {
            if code.get_module(x, y) {
                let start = x;
                while x < size && code.get_module(x, y) {
                    x += 1;
                }
                path.push_str(&format!(
                    "M{} {}.5h{}",
                    start + QUIET_ZONE,
                    y + QUIET_ZONE,
                    x - start
                ));
            } else {
                x += 1;
            }
        }
    }
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {full} {full}" shape-rendering="crispEdges"><path fill="#ffffff" d="M0 0h{full}v{full}H0z"/><path stroke="#000000" d="{path}"/></svg>"##
    )
}

/// Renders a matrix as a greyscale PNG, `scale` pixels per module, with the quiet zone.
pub fn to_png(code: &QrCode, scale: u32) -> Result<Vec<u8>, Error> {
    let scale = scale.clamp(1, 64);
    let modules = (code.size() + 2 * QUIET_ZONE) as u32;
    let px = modules * scale;
    let img = image::GrayImage::from_fn(px, px, |x, y| {
        let mx = (x / scale) as i32 - QUIET_ZONE;
        let my = (y / scale) as i32 - QUIET_ZONE;
        if code.get_module(mx, my) {
            image::Luma([0u8])
        } else {
            image::Luma([255u8])
        }
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .map_err(|e| Error::Image(e.to_string()))?;
    Ok(out.into_inner())
}

/// What was read from one QR code in an image.
#[derive(Debug, Clone)]
pub struct ScannedQr {
    /// The text, when it could be decoded.
    pub text: Option<String>,
    /// The QR version.
    pub version: usize,
    /// Problems with the code itself (version, segments).
    pub problems: Vec<Problem>,
}

/// Reads every QR code in a PNG or JPEG image and checks each against rules 34–35.
pub fn scan_image(bytes: &[u8]) -> Result<Vec<ScannedQr>, Problem> {
    let img = image::load_from_memory(bytes)
        .map_err(|_| Problem::error(ProblemKind::QrDecode, "not a readable PNG or JPEG image"))?
        .to_luma8();
    // Photos and small renderings can have under two pixels per module, too few for the finder
    // pattern detector: retry on upscaled copies before giving up.
    let mut result = scan_grey(&img);
    for factor in [2u32, 3, 4] {
        if result
            .as_ref()
            .is_ok_and(|scans| scans.iter().all(|s| s.text.is_some()))
        {
            break;
        }
        if img.width().saturating_mul(factor) > 4096 {
            break;
        }
        let mut big = image::imageops::resize(
            &img,
            img.width() * factor,
            img.height() * factor,
            image::imageops::FilterType::Triangle,
        );
        // Interpolation leaves grey edges that blur the finder patterns; binarize them again.
        for p in big.pixels_mut() {
            p.0[0] = if p.0[0] < 128 { 0 } else { 255 };
        }
        let again = scan_grey(&big);
        if again
            .as_ref()
            .is_ok_and(|scans| scans.iter().any(|s| s.text.is_some()))
        {
            result = again;
        }
    }
    result
}

fn scan_grey(img: &image::GrayImage) -> Result<Vec<ScannedQr>, Problem> {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let mut prepared = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| {
        img.get_pixel_checked(x as u32, y as u32)
            .map(|p| p.0[0])
            .unwrap_or(255)
    });
    let grids = prepared.detect_grids();
    if grids.is_empty() {
        return Err(Problem::error(
            ProblemKind::QrDecode,
            "no QR code found in the image",
        ));
    }
    let mut out = Vec::new();
    for grid in grids {
        let mut raw = Vec::new();
        let meta = match grid.decode_to(&mut raw) {
            Ok(meta) => meta,
            Err(_) => {
                out.push(ScannedQr {
                    text: None,
                    version: 0,
                    problems: vec![Problem::error(
                        ProblemKind::QrDecode,
                        "QR code could not be decoded",
                    )],
                });
                continue;
            }
        };
        let version = meta.version.0;
        let mut problems = Vec::new();
        if version > MAX_VERSION as usize {
            problems.push(Problem::error(
                ProblemKind::InvalidQrVersion,
                format!("QR version {version} is above {MAX_VERSION} (rule 34)"),
            ));
        }
        let text = String::from_utf8(raw).ok();
        if let Some(text) = &text {
            problems.extend(check_segments(
                text,
                &grid.grid,
                version,
                meta.ecc_level,
                meta.mask,
            ));
        }
        out.push(ScannedQr {
            text,
            version,
            problems,
        });
    }
    Ok(out)
}

/// Compares the scanned modules with the spec's two-segment encoding of the same text at the same
/// version, error correction level and mask: a different segmentation changes most data modules,
/// while a photo's read errors change few. Also warns when a smaller version would have done.
fn check_segments(
    text: &str,
    grid: &dyn rqrr::BitGrid,
    version: usize,
    ecc_level: u16,
    mask: u16,
) -> Vec<Problem> {
    let mut problems = Vec::new();
    let Ok(segs) = segments(text) else {
        // The text decoder reports exactly what is wrong with the text; here only the segments.
        if text.starts_with(PREFIX) {
            problems.push(Problem::error(
                ProblemKind::InvalidQr,
                "QR code holds more than the byte segment `shc:/` plus one numeric segment (rule 35)",
            ));
        }
        return problems;
    };
    let ecl = match ecc_level {
        1 => QrCodeEcc::Low,
        0 => QrCodeEcc::Medium,
        3 => QrCodeEcc::Quartile,
        _ => QrCodeEcc::High,
    };
    let Ok(v) = u8::try_from(version) else {
        return problems;
    };
    if !(1..=40).contains(&v) || mask > 7 {
        return problems;
    }
    let same = QrCode::encode_segments_advanced(
        &segs,
        ecl,
        Version::new(v),
        Version::new(v),
        Some(Mask::new(mask as u8)),
        false,
    );
    match same {
        Ok(code) if code.size() as usize == grid.size() => {
            let n = grid.size();
            let mut differ = 0usize;
            for y in 0..n {
                for x in 0..n {
                    if code.get_module(x as i32, y as i32) != grid.bit(y, x) {
                        differ += 1;
                    }
                }
            }
            if differ * 10 > n * n {
                problems.push(Problem::error(
                    ProblemKind::InvalidQr,
                    "QR code is not encoded as one byte segment `shc:/` plus one numeric segment (rule 35)",
                ));
            }
        }
        _ => problems.push(Problem::error(
            ProblemKind::InvalidQr,
            "QR code is not encoded as one byte segment `shc:/` plus one numeric segment (rule 35)",
        )),
    }
    if let Ok(min) =
        QrCode::encode_segments_advanced(&segs, ecl, Version::MIN, Version::MAX, None, false)
    {
        let needed = min.version().value() as usize;
        if needed < version && version <= MAX_VERSION as usize {
            problems.push(Problem::warning(
                ProblemKind::InvalidQrVersion,
                format!("QR version {version} is larger than the {needed} the content needs"),
            ));
        }
    }
    problems
}
