//! The results: a line per figure as it is measured, and a Markdown table at the end.

/// One figure with its baseline.
pub struct Row {
    pub what: String,
    pub measured: String,
    pub baseline: String,
    /// measured / baseline, in the direction stated by `what`.
    pub ratio: f64,
}

#[derive(Default)]
pub struct Report {
    rows: Vec<Row>,
}

impl Report {
    pub fn add(&mut self, what: &str, measured: String, baseline: String, ratio: f64) {
        println!("  {what}: {measured} | baseline {baseline} | ratio {ratio:.2}");
        self.rows.push(Row {
            what: what.to_owned(),
            measured,
            baseline,
            ratio,
        });
    }

    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    /// The table for `docs/PERFORMANCE.md`.
    pub fn markdown(&self) -> String {
        let mut out = String::from(
            "| figure | measured | baseline (same run) | ratio |\n|---|---|---|---|\n",
        );
        for row in &self.rows {
            out.push_str(&format!(
                "| {} | {} | {} | {:.2} |\n",
                row.what, row.measured, row.baseline, row.ratio
            ));
        }
        out
    }
}

/// Milliseconds, two decimals.
pub fn ms(value: f64) -> String {
    format!("{value:.2} ms")
}
