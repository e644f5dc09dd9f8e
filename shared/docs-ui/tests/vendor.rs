//! The vendored files are the ones `vendor/update.sh` took from the pinned npm
//! packages (after checking each tarball's npm integrity): their SHA-256 sums
//! match `vendor/SHA256SUMS`. `bash vendor/update.sh --check` re-verifies
//! them against npm itself.

use sha2::{Digest, Sha256};

#[test]
fn vendored_files_match_their_recorded_sums() {
    let vendor = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("vendor");
    let sums = std::fs::read_to_string(vendor.join("SHA256SUMS")).unwrap();
    let mut checked = Vec::new();
    for line in sums.lines() {
        let (expected, file) = line.split_once("  ").unwrap_or_else(|| panic!("bad line {line:?}"));
        let bytes = std::fs::read(vendor.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        let actual = hex::encode(Sha256::digest(&bytes));
        assert_eq!(actual, expected, "{file} is not the file vendored from npm");
        checked.push(file);
    }
    // Everything the crate embeds, and the licences, are covered.
    for file in [
        "swagger-ui-dist-5.35.0/swagger-ui-bundle.js",
        "swagger-ui-dist-5.35.0/swagger-ui.css",
        "swagger-ui-dist-5.35.0/LICENSE",
        "swagger-ui-dist-5.35.0/NOTICE",
        "redoc-2.5.4/redoc.standalone.js",
        "redoc-2.5.4/LICENSE",
    ] {
        assert!(checked.contains(&file), "{file} is not in SHA256SUMS");
    }
}

#[test]
fn the_versions_in_the_api_are_the_vendored_ones() {
    let vendor = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("vendor");
    let swagger = format!("swagger-ui-dist-{}", quper_docs_ui::SWAGGER_UI_VERSION);
    let redoc = format!("redoc-{}", quper_docs_ui::REDOC_VERSION);
    assert!(vendor.join(&swagger).is_dir(), "{swagger}");
    assert!(vendor.join(&redoc).is_dir(), "{redoc}");
    let script = std::fs::read_to_string(vendor.join("update.sh")).unwrap();
    assert!(script.contains(&format!("\"swagger-ui-dist|{}|", quper_docs_ui::SWAGGER_UI_VERSION)));
    assert!(script.contains(&format!("\"redoc|{}|", quper_docs_ui::REDOC_VERSION)));
}
