//! `-o table|json|yaml`: the same data for people and for scripts.

use comfy_table::{Table, presets};
use serde::Serialize;

use crate::failure::{Class, Failure, Outcome};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
    Yaml,
}

/// Prints `value` as JSON or YAML, or as the table `table` draws.
pub fn emit<T: Serialize>(format: Format, value: &T, table: impl FnOnce(&T) -> String) -> Outcome {
    match format {
        Format::Table => Ok(table(value)),
        Format::Json => serde_json::to_string_pretty(value)
            .map_err(|e| Failure::new(Class::Server, e.to_string())),
        Format::Yaml => yaml_serde::to_string(value)
            .map(|s| s.trim_end().to_string())
            .map_err(|e| Failure::new(Class::Server, e.to_string())),
    }
}

/// A plain table: a header row and aligned columns, no borders (easy to read and to grep).
pub fn table<I, R>(header: &[&str], rows: I) -> String
where
    I: IntoIterator<Item = R>,
    R: IntoIterator<Item = String>,
{
    let mut t = Table::new();
    t.load_preset(presets::NOTHING);
    t.set_header(header.iter().map(|h| h.to_uppercase()));
    for row in rows {
        t.add_row(row);
    }
    t.lines()
        .map(|l| l.trim_end().to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// `key: value` lines, keys aligned.
pub fn fields(pairs: &[(&str, String)]) -> String {
    let width = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 1;
    pairs
        .iter()
        .map(|(k, v)| format!("{:width$} {v}", format!("{k}:")))
        .collect::<Vec<_>>()
        .join("\n")
}

/// "Page 1 of 3 (25 items)"
pub fn footer(page: i64, page_size: i64, total: i64) -> String {
    let pages = if page_size > 0 {
        (total + page_size - 1) / page_size
    } else {
        1
    };
    format!("page {} of {} ({total} in all)", page + 1, pages.max(1))
}

pub fn time(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}
