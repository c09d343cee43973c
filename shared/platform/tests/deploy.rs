//! Runs the deployment checks (`tests/deploy/run.sh`: Helm chart render + lint + Kubernetes
//! schema validation, and `docker-compose config`) so that `cargo test` covers them.

use std::path::Path;
use std::process::Command;

#[test]
fn helm_chart_and_compose_file_validate() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let script = repo.join("tests/deploy/run.sh");
    assert!(script.is_file(), "missing {}", script.display());
    let out = Command::new("bash")
        .arg(&script)
        .current_dir(&repo)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(
        out.status.success(),
        "tests/deploy/run.sh failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
    assert!(
        stdout.contains("deploy checks passed"),
        "unexpected output:\n{stdout}"
    );
}
