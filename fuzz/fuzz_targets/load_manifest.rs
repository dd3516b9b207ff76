//! Fuzzes the manifest loader: any bytes must give a desired state or diagnostics — never a
//! panic — and every diagnostic must render with its source span.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(errors) = bamboo_promote::manifest::load_text(std::path::Path::new("fuzz.yaml"), data.to_vec()) {
        let handler = miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor());
        for error in errors {
            let _ = error.line_column();
            let mut out = String::new();
            handler.render_report(&mut out, &error).expect("a diagnostic renders");
        }
    }
});
