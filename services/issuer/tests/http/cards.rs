//! Card downloads: the file, QR PNG/SVG, and the printable PDF read back like a person and a
//! phone would (pdftotext for the words, pdftoppm + QR decoding for the code).

use std::process::Command;

use store::Store;

use crate::helpers::{both, issue_card, patient, spawn, DOSES, NAME_FAMILY, NAME_GIVEN, PUBLIC};

async fn downloads_file_png_svg(store: Store) {
    let app = spawn(store).await;
    let pid = patient(&app.store, &app.issuer.id).await;
    let cred = issue_card(
        &app.store,
        app.keys.as_key_store().as_ref(),
        &app.issuer,
        &pid,
    )
    .await;
    let verifier = app.verifier("", PUBLIC).await;

    let file = app.card_file("", &cred).await;
    assert!(verifier.verify_file(&file, None).is_valid());
    // Without a token: 401, never the card.
    let r = app
        .client
        .get(app.url(&format!("/credentials/{cred}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    let r = app.get_authed(&format!("/credentials/{cred}/qr.png")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/png");
    let png = r.bytes().await.unwrap();
    let v = verifier.verify_qr_images(&[&png]);
    assert!(v.is_valid(), "{:?}", v.all_problems().collect::<Vec<_>>());

    let r = app.get_authed(&format!("/credentials/{cred}/qr.svg")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/svg+xml");
    assert!(r.text().await.unwrap().starts_with("<svg"));

    let r = app.get_authed("/credentials/cred_nope/qr.svg").await;
    assert_eq!(r.status(), 404);
}
both!(downloads_file_png_svg);

fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd
        .output()
        .expect("poppler-utils (pdftotext, pdftoppm) must be installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The printable card: one page, name and every dose in its text, and the QR decoded from the
/// rendered page verifies. The rendered A4 page is kept in `target/issuer-card-a4.png` for a
/// person to look at.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn printable_pdf_reads_back_and_its_qr_verifies() {
    let db = crate::helpers::TestDb::sqlite().await;
    let app = spawn(db.store.clone()).await;
    let pid = patient(&app.store, &app.issuer.id).await;
    let cred = issue_card(
        &app.store,
        app.keys.as_key_store().as_ref(),
        &app.issuer,
        &pid,
    )
    .await;
    let verifier = app.verifier("", PUBLIC).await;
    let dir = tempfile::tempdir().unwrap();

    for paper in ["a4", "letter"] {
        let r = app
            .get_authed(&format!("/credentials/{cred}/card.pdf?paper={paper}"))
            .await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], "application/pdf");
        let pdf = r.bytes().await.unwrap();
        let path = dir.path().join(format!("card-{paper}.pdf"));
        std::fs::write(&path, &pdf).unwrap();

        let info = String::from_utf8(run(Command::new("pdfinfo").arg(&path))).unwrap();
        assert!(
            info.lines()
                .any(|l| l.starts_with("Pages:") && l.trim_end().ends_with(" 1")),
            "{info}"
        );
        let size = if paper == "a4" {
            "595.28 x 841.89"
        } else {
            "612 x 792"
        };
        assert!(info.contains(size), "{info}");

        let text = String::from_utf8(run(Command::new("pdftotext")
            .args(["-layout", "-enc", "UTF-8"])
            .arg(&path)
            .arg("-")))
        .unwrap();
        assert!(text.contains(NAME_GIVEN), "{text}");
        assert!(text.contains(NAME_FAMILY), "{text}");
        assert!(text.contains("1961-07-14"), "{text}");
        for (date, lot, performer) in DOSES {
            assert!(text.contains(date), "{date} missing: {text}");
            assert!(text.contains(lot), "{lot} missing: {text}");
            assert!(text.contains(performer), "{performer} missing: {text}");
        }
        assert!(text.contains("Moderna COVID-19 (CVX 207)"), "{text}");
        assert!(text.contains("Test General Hospital"), "{text}");
        assert!(text.contains("How to verify"), "{text}");

        let prefix = dir.path().join(format!("page-{paper}"));
        run(Command::new("pdftoppm")
            .args(["-r", "150", "-png", "-singlefile"])
            .arg(&path)
            .arg(&prefix));
        let png = std::fs::read(prefix.with_extension("png")).unwrap();
        let scans = shc::qr::scan_image(&png).unwrap();
        assert_eq!(scans.len(), 1);
        let qr_text = scans[0].text.clone().unwrap();
        let v = verifier.verify_qr_texts(&[&qr_text]);
        assert!(v.is_valid(), "{:?}", v.all_problems().collect::<Vec<_>>());
        // QR width on paper: at 150 dpi, ≥ 40 mm is ≥ 236 px of dark-module span.
        let img = image::load_from_memory(&png).unwrap().to_luma8();
        // Columns crossing the QR are dark for a third of its height or more; text and rules
        // never come close to 100 px in one column.
        let qr_cols: Vec<u32> = (0..img.width())
            .filter(|&x| {
                (0..img.height())
                    .filter(|&y| img.get_pixel(x, y).0[0] < 128)
                    .count()
                    > 100
            })
            .collect();
        let span = qr_cols.last().unwrap() - qr_cols.first().unwrap() + 1;
        let mm = f64::from(span) / 150.0 * 25.4;
        assert!(mm >= 40.0, "QR only {mm:.1} mm wide");
        let keep = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(format!("../../target/issuer-card-{paper}.png"));
        let _ = std::fs::write(keep, &png);
    }

    let r = app
        .get_authed(&format!("/credentials/{cred}/card.pdf?paper=legal"))
        .await;
    assert_eq!(r.status(), 400);
}
