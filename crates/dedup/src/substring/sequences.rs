//! Step 1: the units of every document, per input file.

use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Arc;

use refinery_corpus::executor::mark_step_complete;
use refinery_corpus::readers::{self, Item};

use super::format::{Kind, RecordWriter};
use super::{cancelled, remove_with_tmp, units, Result, SubstringError, SubstringJob, STEPS};

pub(super) fn run_task(job: &SubstringJob, task: usize, cancel: &AtomicBool) -> Result<()> {
    for (f, _) in job.task_files(task) {
        remove_with_tmp(&job.units_path(f))?;
        remove_with_tmp(&job.docs_path(f))?;
    }
    let mut buf = Vec::new();
    for (f, input) in job.task_files(task) {
        let mut unit_file = RecordWriter::create(&job.units_path(f), job.unit_kind())?;
        let mut docs = RecordWriter::create(&job.docs_path(f), Kind::Docs)?;
        let mut n: u64 = 0;
        for item in readers::open(
            &input.path,
            &input.source,
            &job.reader,
            Arc::new(AtomicU64::new(0)),
        ) {
            cancelled(cancel)?;
            let Item::Doc(d) = item else { continue };
            if n >= u32::MAX as u64 {
                return Err(SubstringError::Config(format!(
                    "{}: more than 2^32 documents in one file",
                    input.source
                )));
            }
            buf.clear();
            let len = units::encode(&d.text, job.config.unit, &mut buf);
            unit_file.push(&buf)?;
            docs.push_u64(len)?;
            n += 1;
        }
        unit_file.finish()?;
        docs.finish()?;
    }
    Ok(mark_step_complete(&job.step_dir(STEPS[0]), task)?)
}
