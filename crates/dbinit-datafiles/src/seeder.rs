//! A data file as a [`Seeder`]: checks the file against the table, then
//! streams it through [`BulkLoad::load_rows`](dbinit_core::BulkLoad::load_rows)
//! while another thread parses it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tokio::sync::mpsc;

use crate::convert::Target;
use crate::datafile::DataFile;
use crate::read::{line_of_row, Checksum, Duplicates, Plan, Reader, RowError};
use dbinit_core::load::{LoadFailure, LoadSpec, RowBatches};
use dbinit_core::{
    fault, Column, CoreError, ErrorKind, Index, Progress, SeedContext, SeedOutcome, SeedPolicy,
    Seeder, Value,
};

/// Rows per batch handed to the backend.
const BATCH: usize = 2048;
/// Batches parsed ahead of the database: bounds memory.
const AHEAD: usize = 4;

pub(crate) struct FileSeeder {
    file: DataFile,
    /// The tables' columns and indexes, shared by the files of one run:
    /// a thousand small files into one table look it up once.
    tables: Arc<Tables>,
    checksum: String,
    /// The file's size and time when it was checksummed.
    stamp: Option<(u64, std::time::SystemTime)>,
}

impl FileSeeder {
    /// Reads the file once for its checksum (with its manifest entry: a new
    /// table, key or version loads it again too). The load checks that it
    /// reads the same bytes.
    pub(crate) fn new(file: DataFile, tables: Arc<Tables>) -> Result<Self, CoreError> {
        let sum = Checksum::new(&file.entry);
        let stamp = file.content.stamp();
        let content = file.content.open().map_err(|e| cannot_read(&file, &e))?;
        std::io::copy(&mut sum.reading(content), &mut std::io::sink())
            .map_err(|e| cannot_read(&file, &e))?;
        Ok(FileSeeder {
            checksum: sum.value(),
            stamp,
            tables,
            file,
        })
    }

    fn failed(&self, message: String) -> CoreError {
        CoreError::SeedFailed {
            seeder: self.file.name.clone(),
            message,
            source: None,
        }
    }

    fn refused(&self, e: &RowError) -> CoreError {
        self.failed(e.describe(&self.file.shown))
    }

    /// Which file column feeds which table column, checked: every file
    /// column exists, every key column is given, and the key is unique.
    async fn plan(
        &self,
        header: &[String],
        header_line: u64,
        cx: &mut SeedContext<'_>,
    ) -> Result<(Plan, LoadSpec), CoreError> {
        let entry = &self.file.entry;
        let (columns, indexes) = &*self.tables.get(&entry.table, cx).await?;
        if columns.is_empty() {
            return Err(self.failed(format!(
                "table `{}` does not exist (the manifest loads {} into it); create it in a \
                 migration",
                entry.table, self.file.shown
            )));
        }
        let mut fields = Vec::with_capacity(header.len());
        for (index, name) in header.iter().enumerate() {
            let Some(column) = columns.iter().find(|c| &c.name == name) else {
                if !crate::read::showable(name) {
                    return Err(self.refused(&RowError {
                        line: header_line,
                        column: None,
                        message: format!(
                            "field {} of the header (a name that is not shown) is no column of \
                             table `{}`",
                            index + 1,
                            entry.table
                        ),
                    }));
                }
                return Err(self.refused(&RowError {
                    line: header_line,
                    column: Some(name.clone()),
                    message: format!(
                        "table `{}` has no such column (it has: {})",
                        entry.table,
                        names(columns)
                    ),
                }));
            };
            fields.push((index, Target::new(column, entry.key.contains(name))));
        }
        if let Some(k) = entry.key.iter().find(|k| !header.contains(k)) {
            return Err(self.refused(&RowError {
                line: header_line,
                column: Some(k.clone()),
                message: "is a key column, but the file does not give it".to_owned(),
            }));
        }
        let table = cx.session.dialect().quote_ident(&entry.table);
        if !unique_on(columns, indexes, &entry.key) {
            return Err(self.failed(format!(
                "table `{}` has no primary key or unique index on exactly ({}), so rows cannot \
                 be matched by that key; add one in a migration (CREATE UNIQUE INDEX … ON {} \
                 ({}))",
                entry.table,
                entry.key.join(", "),
                table,
                entry.key.join(", ")
            )));
        }
        let empty = cx
            .session
            .query(&format!("SELECT 1 AS one FROM {table} LIMIT 1"), &[])
            .await?
            .is_empty();
        let spec = LoadSpec {
            table: entry.table.clone(),
            columns: fields.iter().map(|(_, t)| t.name.clone()).collect(),
            key: entry.key.clone(),
            into_empty: empty,
        };
        Ok((Plan { fields }, spec))
    }
}

/// Columns and indexes by table, read once per run: data files load rows,
/// never change a schema, and load after everything that does.
#[derive(Default)]
pub(crate) struct Tables(Mutex<HashMap<String, Arc<TableFacts>>>);

/// A table's columns and indexes.
type TableFacts = (Vec<Column>, Vec<Index>);

impl Tables {
    async fn get(
        &self,
        table: &str,
        cx: &mut SeedContext<'_>,
    ) -> Result<Arc<TableFacts>, CoreError> {
        if let Some(known) = crate::read::lock(&self.0).get(table) {
            return Ok(known.clone());
        }
        let columns = cx.session.columns(table).await?;
        if columns.is_empty() {
            // Not there (yet): nothing to remember.
            return Ok(Arc::new((columns, Vec::new())));
        }
        let found = Arc::new((columns, cx.session.indexes(table).await?));
        crate::read::lock(&self.0).insert(table.to_owned(), found.clone());
        Ok(found)
    }
}

fn cannot_read(file: &DataFile, e: &std::io::Error) -> CoreError {
    CoreError::SeedFailed {
        seeder: file.name.clone(),
        message: format!("cannot read {}: {e}", file.shown),
        source: None,
    }
}

fn names(columns: &[Column]) -> String {
    columns
        .iter()
        .map(|c| c.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether the primary key, or a unique index on every row, covers
/// exactly `key` (a partial index cannot decide a conflict).
fn unique_on(columns: &[Column], indexes: &[Index], key: &[String]) -> bool {
    let same = |cols: &mut dyn Iterator<Item = &String>| {
        let mut cols: Vec<&String> = cols.collect();
        cols.sort();
        let mut key: Vec<&String> = key.iter().collect();
        key.sort();
        cols == key
    };
    same(&mut columns.iter().filter(|c| c.primary_key).map(|c| &c.name))
        || indexes
            .iter()
            .any(|i| i.unique && !i.partial && same(&mut i.columns.iter()))
}

#[async_trait]
impl Seeder for FileSeeder {
    fn name(&self) -> &str {
        &self.file.name
    }

    fn policy(&self) -> SeedPolicy {
        SeedPolicy::Once {
            version: self.file.entry.version,
        }
    }

    fn checksum(&self) -> Option<String> {
        Some(self.checksum.clone())
    }

    async fn is_seeded(&self, _: &mut SeedContext<'_>) -> Result<bool, CoreError> {
        // Once per content: the seed history answers, not the table.
        Ok(false)
    }

    async fn seed(&self, cx: &mut SeedContext<'_>) -> Result<SeedOutcome, CoreError> {
        let (header, header_line) = {
            let reader = Reader::open(&self.file).map_err(|e| self.refused(&e))?;
            (reader.header().to_vec(), reader.header_line())
        };
        if header.is_empty() {
            // An empty JSON array or JSON Lines file: nothing to load.
            return Ok(SeedOutcome::default());
        }
        let (plan, spec) = self.plan(&header, header_line, cx).await?;
        let (tx, rx) = mpsc::channel(AHEAD);
        let parse = {
            let (file, plan) = (self.file.clone(), plan.clone());
            let read_as = (self.checksum.clone(), self.stamp);
            std::thread::Builder::new()
                .name("dbinit-seed-reader".to_owned())
                .spawn(move || stream(&file, &plan, &read_as, &tx))
                .map_err(|e| self.failed(format!("cannot start reading: {e}")))?
        };
        let mut rows = Batches {
            rx,
            progress: cx.progress,
            label: &self.file.name,
            total: self.file.content.len(),
            rows: 0,
        };
        let loaded = cx.session.load_rows(&spec, &mut rows).await;
        let read = rows.rows;
        // Closing the channel stops the reader if the load ended early.
        drop(rows);
        // A reader that died ended its rows early, like an end of file:
        // what it sent must not commit.
        if parse.join().is_err() {
            return Err(self.failed(format!(
                "reading {} stopped unexpectedly; nothing of it was committed",
                self.file.shown
            )));
        }
        match loaded {
            Ok(outcome) => {
                cx.progress.finish(&self.file.name, read);
                Ok(outcome.into())
            }
            Err(LoadFailure {
                row: Some(row),
                error,
            }) if error.kind() == ErrorKind::Database => {
                let at = line_of_row(&self.file, &plan, row)
                    .map_or_else(|| format!("row {}", row + 1), |l| format!("line {l}"));
                Err(self.failed(format!("{} {at}: {error}", self.file.shown)))
            }
            Err(LoadFailure { error, .. }) => Err(error),
        }
    }
}

/// A parsed batch, and how far into the file it reaches.
struct Batch {
    rows: Vec<Vec<Value>>,
    position: u64,
}

/// The reader thread: parses, converts and checks every row, and sends
/// batches until the end, an error, or the receiver going away. What it
/// read must be the file the run started with (`read_as`: its checksum,
/// size and time): a file cut short, grown or edited while it loaded fails
/// the load, which then commits nothing of it, and a row refused in a file
/// that changed is reported as the change.
fn stream(
    file: &DataFile,
    plan: &Plan,
    read_as: &(String, Option<(u64, std::time::SystemTime)>),
    tx: &mpsc::Sender<Result<Batch, CoreError>>,
) {
    let changed = || CoreError::SeedFailed {
        seeder: file.name.clone(),
        message: format!(
            "{} changed while it loaded (its bytes are not those this run started with); \
             nothing of it was committed: run again once it is complete",
            file.shown
        ),
        source: None,
    };
    let refused = |e: RowError| {
        if file.content.stamp() != read_as.1 {
            return changed();
        }
        CoreError::SeedFailed {
            seeder: file.name.clone(),
            message: e.describe(&file.shown),
            source: None,
        }
    };
    let mut reader = match Reader::open(file) {
        Ok(reader) => reader,
        Err(e) => {
            let _ = tx.blocking_send(Err(refused(e)));
            return;
        }
    };
    let mut duplicates = Duplicates::new(plan);
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        let mut row = Vec::with_capacity(plan.fields.len());
        let line = match reader.next_row(plan, &mut row) {
            Ok(Some(line)) => line,
            Ok(None) if reader.checksum() != read_as.0 => {
                let _ = tx.blocking_send(Err(changed()));
                return;
            }
            Ok(None) => break,
            Err(e) => {
                let _ = tx.blocking_send(Err(refused(e)));
                return;
            }
        };
        if duplicates.maybe_seen(&row) {
            match duplicates.earlier_line(file, plan, &row, line) {
                Ok(Some(first)) => {
                    let _ = tx.blocking_send(Err(refused(RowError {
                        line,
                        column: None,
                        message: format!(
                            "key ({}) is given twice: line {first} has it too",
                            duplicates.describe(plan, &row)
                        ),
                    })));
                    return;
                }
                Ok(None) => {}
                Err(e) => {
                    let _ = tx.blocking_send(Err(refused(e)));
                    return;
                }
            }
        }
        batch.push(row);
        if batch.len() == BATCH {
            let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
            let position = reader.position();
            if tx
                .blocking_send(Ok(Batch {
                    rows: full,
                    position,
                }))
                .is_err()
            {
                return;
            }
        }
    }
    if !batch.is_empty() {
        let position = reader.position();
        let _ = tx.blocking_send(Ok(Batch {
            rows: batch,
            position,
        }));
    }
}

/// The receiving end, as the backend sees it; reports progress.
struct Batches<'a> {
    rx: mpsc::Receiver<Result<Batch, CoreError>>,
    progress: &'a dyn Progress,
    label: &'a str,
    total: u64,
    rows: u64,
}

#[async_trait]
impl RowBatches for Batches<'_> {
    async fn next_batch(&mut self) -> Option<Result<Vec<Vec<Value>>, CoreError>> {
        // Asked for the next batch, the backend has sent the previous ones:
        // the crash tests kill here, mid-load.
        fault::point("seed.load.batch");
        let batch = match self.rx.recv().await? {
            Ok(batch) => batch,
            Err(e) => return Some(Err(e)),
        };
        self.rows += batch.rows.len() as u64;
        self.progress
            .update(self.label, self.rows, batch.position, self.total);
        Some(Ok(batch.rows))
    }
}
