//! Step 1: the units of every document, per input file.

use std::sync::atomic::AtomicBool;

use refinery_corpus::executor::mark_step_complete;
use refinery_corpus::readers::Item;

use super::format::{Kind, RecordWriter};
use super::{remove_with_tmp, units, Result, SubstringJob, STEPS};

pub(super) fn run_task(job: &SubstringJob, task: usize, cancel: &AtomicBool) -> Result<()> {
    for (f, _) in job.task_files(task) {
        remove_with_tmp(&job.units_path(f))?;
        remove_with_tmp(&job.docs_path(f))?;
    }
    let mut buf = Vec::new();
    for (f, _, items) in crate::job::task_docs(job, task, cancel) {
        let mut unit_file = RecordWriter::create(&job.units_path(f), job.unit_kind())?;
        let mut docs = RecordWriter::create(&job.docs_path(f), Kind::Docs)?;
        for keyed in items {
            let Item::Doc(d) = keyed?.1 else { continue };
            buf.clear();
            let len = units::encode(&d.text, job.config.unit, &mut buf);
            unit_file.push(&buf)?;
            docs.push_u64(len)?;
        }
        unit_file.finish()?;
        docs.finish()?;
    }
    Ok(mark_step_complete(&job.step_dir(STEPS[0]), task)?)
}
