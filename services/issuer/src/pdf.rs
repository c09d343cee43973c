//! The printable card: a one-page PDF (A4 or US Letter) for people without a smartphone.
//!
//! Everything printed is read back from the signed card itself (not from the database), so the
//! paper can never say something the QR does not. The QR is drawn as vector rectangles from
//! [`shc::qr::matrix`] (crisp at any printer resolution), 60 mm wide without its quiet zone — well
//! over the 40 mm the spec sizes version 22 for (spec-checklist rule 34). Only black on white:
//! it must photocopy and fax.
//!
//! Text uses the PDF base-14 font Helvetica with WinAnsiEncoding, so no font file ships or gets
//! embedded. That covers Latin-1 and the Windows-1252 extras (é, ü, ñ, ß, Œ, Š, …); characters
//! outside it (Cyrillic, Greek, CJK, Arabic, …) cannot be drawn by a base-14 font and are printed
//! as `?` — the QR still carries the exact name, and a note on the page says so.

use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str};
use serde_json::Value;
use shc::verify::{contents, CardContents, DoseSummary};

/// Millimetres to PDF points.
const MM: f32 = 72.0 / 25.4;
/// Width of the QR modules area (without the quiet zone).
pub const QR_WIDTH_MM: f32 = 60.0;
const MARGIN: f32 = 18.0 * MM;

/// Paper size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Paper {
    /// ISO A4, 210 × 297 mm.
    A4,
    /// US Letter, 8.5 × 11 in.
    Letter,
}

impl Paper {
    /// Parses `a4` / `letter` (case-insensitive).
    pub fn parse(s: &str) -> Option<Paper> {
        match s.to_ascii_lowercase().as_str() {
            "a4" => Some(Paper::A4),
            "letter" | "us-letter" => Some(Paper::Letter),
            _ => None,
        }
    }

    /// Width and height in points.
    pub fn size(self) -> (f32, f32) {
        match self {
            Paper::A4 => (595.28, 841.89),
            Paper::Letter => (612.0, 792.0),
        }
    }
}

/// Why a card cannot be printed.
#[derive(Debug, thiserror::Error)]
pub enum PdfError {
    /// The stored artefact is not a readable SMART Health Card JWS.
    #[error("the stored card is not a readable SMART Health Card")]
    Unreadable,
    /// The card is too large for one QR code (a file or link is the only way to share it).
    #[error("the card is too large for a QR code")]
    TooLargeForQr,
}

impl PdfError {
    /// Stable, low-cardinality kebab-case code.
    pub fn code(&self) -> &'static str {
        match self {
            PdfError::Unreadable => "card-unreadable",
            PdfError::TooLargeForQr => "card-too-large-for-qr",
        }
    }
}

/// What goes on the page besides the card itself.
#[derive(Debug, Clone)]
pub struct PrintOptions<'a> {
    /// The issuer's name as people know it.
    pub issuer_name: &'a str,
    /// The issuer's `iss` (printed so a verifier can check who signed).
    pub iss: &'a str,
    /// Paper size.
    pub paper: Paper,
}

/// The card's payload (inflated JSON) from its compact JWS, without checking the signature: the
/// card comes from our own store.
pub fn card_payload(jws: &str) -> Result<Value, PdfError> {
    let parsed = shc::jws::parse(jws).map_err(|_| PdfError::Unreadable)?;
    let json = shc::deflate::inflate_raw(&parsed.payload, shc::deflate::MAX_INFLATED)
        .map_err(|_| PdfError::Unreadable)?;
    serde_json::from_slice(&json).map_err(|_| PdfError::Unreadable)
}

/// Renders the printable card of `jws`.
pub fn render(jws: &str, opts: &PrintOptions<'_>) -> Result<Vec<u8>, PdfError> {
    let payload = card_payload(jws)?;
    let card = contents(&payload);
    let qr_text = shc::qr::numeric_text(jws).map_err(|_| PdfError::Unreadable)?;
    let code = shc::qr::matrix(&qr_text).map_err(|_| PdfError::TooLargeForQr)?;
    let (w, h) = opts.paper.size();
    let content = page_content(&card, &code, opts, w, h);

    let catalog = Ref::new(1);
    let tree = Ref::new(2);
    let page = Ref::new(3);
    let regular = Ref::new(4);
    let bold = Ref::new(5);
    let stream = Ref::new(6);
    let info = Ref::new(7);
    let mut pdf = Pdf::new();
    pdf.catalog(catalog).pages(tree);
    pdf.pages(tree).kids([page]).count(1);
    let mut p = pdf.page(page);
    p.media_box(Rect::new(0.0, 0.0, w, h))
        .parent(tree)
        .contents(stream);
    p.resources()
        .fonts()
        .pair(Name(b"F1"), regular)
        .pair(Name(b"F2"), bold);
    p.finish();
    pdf.type1_font(regular)
        .base_font(Name(b"Helvetica"))
        .encoding_predefined(Name(b"WinAnsiEncoding"));
    pdf.type1_font(bold)
        .base_font(Name(b"Helvetica-Bold"))
        .encoding_predefined(Name(b"WinAnsiEncoding"));
    pdf.stream(stream, content.as_slice());
    // No patient data in the document info: PDF metadata leaks into file listings and indexes.
    pdf.document_info(info)
        .title(pdf_writer::TextStr(
            "Vaccination record (SMART Health Card)",
        ))
        .creator(pdf_writer::TextStr("vaxcred"));
    Ok(pdf.finish())
}

struct Page {
    c: Content,
    lost_chars: bool,
}

#[derive(Clone, Copy)]
enum Font {
    Regular,
    Bold,
}

impl Page {
    fn text(&mut self, font: Font, size: f32, x: f32, y: f32, text: &str) {
        let (bytes, lost) = win_ansi(text);
        self.lost_chars |= lost;
        let name = match font {
            Font::Regular => Name(b"F1"),
            Font::Bold => Name(b"F2"),
        };
        self.c.begin_text();
        self.c.set_font(name, size);
        self.c.next_line(x, y);
        self.c.show(Str(&bytes));
        self.c.end_text();
    }

    /// Draws `text` cut to `max_width` points (with `...`).
    fn text_fit(&mut self, font: Font, size: f32, x: f32, y: f32, max_width: f32, text: &str) {
        self.text(font, size, x, y, &fit(text, font, size, max_width));
    }

    /// Draws `text` wrapped at `max_width`; returns the y below the last line.
    fn paragraph(
        &mut self,
        font: Font,
        size: f32,
        x: f32,
        mut y: f32,
        max_width: f32,
        text: &str,
    ) -> f32 {
        for line in wrap(text, font, size, max_width) {
            self.text(font, size, x, y, &line);
            y -= size * 1.35;
        }
        y
    }

    fn rule(&mut self, x: f32, y: f32, width: f32, thickness: f32) {
        self.c.rect(x, y, width, thickness);
        self.c.fill_nonzero();
    }
}

fn page_content(
    card: &CardContents,
    code: &qrcodegen::QrCode,
    opts: &PrintOptions<'_>,
    w: f32,
    h: f32,
) -> pdf_writer::Buf {
    let mut pg = Page {
        c: Content::new(),
        lost_chars: false,
    };
    pg.c.set_fill_gray(0.0);
    let inner = w - 2.0 * MARGIN;
    let top = h - MARGIN;

    pg.text(Font::Bold, 22.0, MARGIN, top - 20.0, "Vaccination Record");
    pg.text(
        Font::Regular,
        11.0,
        MARGIN,
        top - 38.0,
        "SMART Health Card - digitally signed by the issuer",
    );
    pg.rule(MARGIN, top - 48.0, inner, 1.2);

    // QR, top right, with a 4-module quiet zone left white.
    let modules = code.size().max(1);
    let module = QR_WIDTH_MM * MM / modules as f32;
    let quiet = 4.0 * module;
    let qr_total = QR_WIDTH_MM * MM + 2.0 * quiet;
    let qr_x = w - MARGIN - qr_total + quiet;
    let qr_top = top - 58.0 - quiet;
    for y in 0..modules {
        let mut x = 0;
        while x < modules {
            if code.get_module(x, y) {
                let start = x;
                while x < modules && code.get_module(x, y) {
                    x += 1;
                }
                // One rectangle per dark run; a hair of overlap avoids white seams in viewers.
                pg.c.rect(
                    qr_x + start as f32 * module,
                    qr_top - (y + 1) as f32 * module,
                    (x - start) as f32 * module,
                    module + 0.01,
                );
            } else {
                x += 1;
            }
        }
    }
    pg.c.fill_nonzero();
    let qr_bottom = qr_top - QR_WIDTH_MM * MM;
    pg.text(
        Font::Regular,
        8.0,
        qr_x,
        qr_bottom - quiet - 4.0,
        "Scan with a SMART Health Card verifier app",
    );

    // Identity, left of the QR.
    let left_w = inner - qr_total - 12.0;
    let mut y = top - 78.0;
    let name = card
        .patient_name
        .as_deref()
        .unwrap_or("(no name on the card)");
    pg.text(Font::Regular, 9.0, MARGIN, y, "NAME");
    y -= 20.0;
    y = pg.paragraph(Font::Bold, 17.0, MARGIN, y, left_w, name) - 10.0;
    pg.text(Font::Regular, 9.0, MARGIN, y, "DATE OF BIRTH");
    y -= 18.0;
    let birth = card.birth_date.as_deref().unwrap_or("-");
    pg.text(Font::Bold, 15.0, MARGIN, y, birth);
    y -= 30.0;
    pg.text(Font::Regular, 9.0, MARGIN, y, "ISSUED BY");
    y -= 16.0;
    y = pg.paragraph(Font::Bold, 12.0, MARGIN, y, left_w, opts.issuer_name);
    pg.text_fit(Font::Regular, 8.0, MARGIN, y, left_w, opts.iss);

    // Doses table, full width below the QR.
    let mut y = qr_bottom - quiet - 34.0;
    pg.text(Font::Bold, 13.0, MARGIN, y, "Vaccinations");
    y -= 8.0;
    pg.rule(MARGIN, y, inner, 0.8);
    let cols = [0.0, 0.06, 0.24, 0.62, 0.78];
    let col_x = |i: usize| MARGIN + inner * cols.get(i).copied().unwrap_or(0.0);
    let col_w = |i: usize| {
        let next = cols.get(i + 1).copied().unwrap_or(1.0);
        inner * (next - cols.get(i).copied().unwrap_or(0.0)) - 6.0
    };
    y -= 15.0;
    for (i, head) in ["#", "Date", "Vaccine", "Lot", "Given by"]
        .iter()
        .enumerate()
    {
        pg.text(Font::Bold, 10.0, col_x(i), y, head);
    }
    y -= 6.0;
    pg.rule(MARGIN, y, inner, 0.5);
    let footer_room = MARGIN + 80.0;
    let total = card.immunizations.len();
    for (n, dose) in card.immunizations.iter().enumerate() {
        if y - 18.0 < footer_room {
            pg.text(
                Font::Regular,
                10.0,
                MARGIN,
                y - 14.0,
                &format!("... and {} more in the QR code", total - n),
            );
            y -= 20.0;
            break;
        }
        y -= 15.0;
        let cells = [
            (n + 1).to_string(),
            dose.date.clone().unwrap_or_else(|| "-".into()),
            vaccine_label(dose),
            dose.lot_number.clone().unwrap_or_else(|| "-".into()),
            dose.performer.clone().unwrap_or_else(|| "-".into()),
        ];
        for (i, cell) in cells.iter().enumerate() {
            pg.text_fit(Font::Regular, 10.0, col_x(i), y, col_w(i), cell);
        }
        y -= 6.0;
        pg.rule(MARGIN, y, inner, 0.3);
    }
    if total == 0 {
        y -= 15.0;
        pg.text(
            Font::Regular,
            10.0,
            MARGIN,
            y,
            "No vaccination on this card.",
        );
    }

    // How to verify, and the note about characters the font cannot show.
    y -= 26.0;
    let how = format!(
        "How to verify: scan the QR code with a SMART Health Card verifier app (for example \
         \"SMART Health Card Verifier\"). It checks the digital signature of {} ({}) and shows \
         the same name, birth date and vaccinations as this page.",
        opts.issuer_name, opts.iss
    );
    y = pg.paragraph(Font::Regular, 10.0, MARGIN, y, inner, &how);
    if pg.lost_chars {
        pg.paragraph(
            Font::Regular,
            9.0,
            MARGIN,
            y - 4.0,
            inner,
            "Some characters cannot be printed in this font and show as '?'; the QR code holds \
             the exact text.",
        );
    }
    pg.rule(MARGIN, MARGIN + 20.0, inner, 0.5);
    pg.text(
        Font::Regular,
        8.0,
        MARGIN,
        MARGIN + 8.0,
        "Keep this page with you. A photocopy or printout works as well as the original: the QR code carries the signed record.",
    );
    pg.c.finish()
}

/// A short, consumer-facing name for common vaccine codes, with the code itself.
fn vaccine_label(dose: &DoseSummary) -> String {
    let code = dose.code.as_deref().unwrap_or("?");
    let system = dose.system.as_deref().unwrap_or_default();
    let name = if system == model::CVX {
        match code {
            "207" | "221" | "228" | "229" | "230" | "300" | "302" | "311" | "312" => {
                Some("Moderna COVID-19")
            }
            "208" | "217" | "218" | "219" | "300s" | "301" | "308" | "309" | "310" => {
                Some("Pfizer-BioNTech COVID-19")
            }
            "210" => Some("AstraZeneca COVID-19"),
            "211" | "313" => Some("Novavax COVID-19"),
            "212" => Some("Janssen COVID-19"),
            "510" => Some("Sinopharm COVID-19"),
            "511" => Some("Sinovac COVID-19"),
            "206" => Some("Jynneos (mpox)"),
            "75" => Some("ACAM2000 (smallpox)"),
            _ => None,
        }
    } else {
        None
    };
    let short_system = if system == model::CVX {
        "CVX"
    } else if system == model::SNOMED {
        "SNOMED"
    } else {
        "code"
    };
    match name {
        Some(n) => format!("{n} ({short_system} {code})"),
        None => format!("{short_system} {code}"),
    }
}

/// Text as WinAnsiEncoding bytes; `true` when some characters had no byte (printed as `?`).
fn win_ansi(text: &str) -> (Vec<u8>, bool) {
    let mut lost = false;
    let bytes = text
        .chars()
        .map(|c| {
            let b = match c {
                ' '..='~' => Some(c as u8),
                '\u{a0}'..='\u{ff}' => u8::try_from(u32::from(c)).ok(),
                '€' => Some(0x80),
                '‚' => Some(0x82),
                '…' => Some(0x85),
                'Š' => Some(0x8a),
                'Œ' => Some(0x8c),
                'Ž' => Some(0x8e),
                '‘' => Some(0x91),
                '’' => Some(0x92),
                '“' => Some(0x93),
                '”' => Some(0x94),
                '–' => Some(0x96),
                '—' => Some(0x97),
                'š' => Some(0x9a),
                'œ' => Some(0x9c),
                'ž' => Some(0x9e),
                'Ÿ' => Some(0x9f),
                _ => None,
            };
            b.unwrap_or_else(|| {
                lost = true;
                b'?'
            })
        })
        .collect();
    (bytes, lost)
}

/// Approximate Helvetica advance width in 1/1000 em (AFM metrics, grouped): close enough to cut
/// and wrap lines safely.
fn char_width(c: char, font: Font) -> f32 {
    let w = match c {
        'i' | 'j' | 'l' | '\'' | '|' => 222.0,
        ' ' | '.' | ',' | ':' | ';' | '!' | 'I' | 'f' | 't' | '/' | '(' | ')' | '[' | ']' => 278.0,
        'r' | '-' => 333.0,
        'm' => 833.0,
        'w' => 722.0,
        'M' => 833.0,
        'W' => 944.0,
        '0'..='9' => 556.0,
        'A'..='Z' => 722.0,
        _ => 556.0,
    };
    match font {
        Font::Regular => w,
        Font::Bold => w * 1.08,
    }
}

fn text_width(text: &str, font: Font, size: f32) -> f32 {
    text.chars().map(|c| char_width(c, font)).sum::<f32>() * size / 1000.0
}

fn fit(text: &str, font: Font, size: f32, max_width: f32) -> String {
    if text_width(text, font, size) <= max_width {
        return text.to_owned();
    }
    let mut out = String::new();
    for c in text.chars() {
        out.push(c);
        if text_width(&out, font, size) + text_width("...", font, size) > max_width {
            out.pop();
            break;
        }
    }
    out.push_str("...");
    out
}

fn wrap(text: &str, font: Font, size: f32, max_width: f32) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let candidate = if line.is_empty() {
            word.to_owned()
        } else {
            format!("{line} {word}")
        };
        if text_width(&candidate, font, size) <= max_width || line.is_empty() {
            line = candidate;
        } else {
            lines.push(std::mem::take(&mut line));
            line = word.to_owned();
        }
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
        .into_iter()
        .map(|l| fit(&l, font, size, max_width))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn win_ansi_keeps_latin1_and_marks_the_rest() {
        assert_eq!(
            win_ansi("José Müller"),
            (b"Jos\xe9 M\xfcller".to_vec(), false)
        );
        let (bytes, lost) = win_ansi("Иван");
        assert_eq!(bytes, b"????");
        assert!(lost);
    }

    #[test]
    fn wrap_and_fit_stay_within_width() {
        let text = "a fairly long sentence that must wrap over several lines of text";
        for line in wrap(text, Font::Regular, 10.0, 120.0) {
            assert!(text_width(&line, Font::Regular, 10.0) <= 120.0, "{line}");
        }
        let cut = fit(&"W".repeat(100), Font::Bold, 10.0, 50.0);
        assert!(cut.ends_with("..."));
        assert!(text_width(&cut, Font::Bold, 10.0) <= 50.0);
    }

    #[test]
    fn paper_sizes_parse() {
        assert_eq!(Paper::parse("A4"), Some(Paper::A4));
        assert_eq!(Paper::parse("letter"), Some(Paper::Letter));
        assert_eq!(Paper::parse("legal"), None);
    }
}
