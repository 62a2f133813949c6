//! The operator's view of learning records: a program's statements as a file, and the queue's state.

use std::io::Write;
use std::path::Path;

use super::outbox::Outbox;
use crate::error::ApiError;
use crate::report::store::{ReportStore, Val};

/// Queues what is new, then writes every statement of `program_id` as a JSON array (one
/// statement per line) to `to`, replacing it only once the whole file is written.
pub fn export(reports: &ReportStore, home: &str, program_id: &str, to: &Path) -> Result<usize, String> {
    let fail = |e: ApiError| e.detail();
    let known = reports.sql().query("SELECT 1 FROM programs WHERE id = $1", &[Val::Text(program_id.into())]);
    if known.map_err(fail)?.is_empty() {
        return Err(format!("there is no program {program_id:?} (see `admin list-programs`)"));
    }
    let outbox = Outbox::new(reports, home);
    outbox.fill(false).map_err(fail)?;
    let statements = outbox.program_statements(program_id).map_err(fail)?;
    let partial = to.with_extension("partial");
    let write = || -> std::io::Result<()> {
        let mut file = std::io::BufWriter::new(std::fs::File::create(&partial)?);
        file.write_all(b"[\n")?;
        for (i, statement) in statements.iter().enumerate() {
            file.write_all(statement.as_bytes())?;
            file.write_all(if i + 1 < statements.len() { b",\n" } else { b"\n" })?;
        }
        file.write_all(b"]\n")?;
        file.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&partial, to)
    };
    write().map_err(|e| format!("{}: {e}", to.display()))?;
    Ok(statements.len())
}

/// Counts by state, then each refused statement with the LRS's reason, then the last error.
pub fn status(reports: &ReportStore) -> Result<String, ApiError> {
    let counts = Outbox::new(reports, "").counts()?;
    let mut out = format!("pending {}\tdelivered {}\trefused {}\n", counts.pending, counts.delivered, counts.refused);
    for row in
        reports.sql().query("SELECT id, refused FROM xapi_statements WHERE refused IS NOT NULL ORDER BY seq", &[])?
    {
        if let (Val::Text(id), Val::Text(reason)) = (&row[0], &row[1]) {
            out.push_str(&format!("refused {id}: {reason}\n"));
        }
    }
    let last = reports.sql().query(
        "SELECT last_error, attempts FROM xapi_statements WHERE delivered_at IS NULL AND refused IS NULL
         AND last_error IS NOT NULL ORDER BY seq LIMIT 1",
        &[],
    )?;
    if let Some([Val::Text(error), Val::Int(attempts)]) = last.first().map(Vec::as_slice) {
        out.push_str(&format!("waiting after {attempts} attempts: {error}\n"));
    }
    Ok(out)
}
