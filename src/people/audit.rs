//! `visage audit`: find the inconsistencies between faces, clusters, people and rejections that
//! `store::audit` checks for, and with `fix` repair them all in one transaction (named clusters
//! are summarised again from their faces as part of the repair).

use serde::Serialize;

use super::assign;
use crate::store::{Store, StoreError, audit};

/// One kind of inconsistency and how many rows show it.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub problem: &'static str,
    pub count: i64,
    pub fixed: bool,
}

/// Find inconsistencies; with `fix`, repair them all in one transaction.
pub fn audit(store: &mut Store, fix: bool) -> Result<Vec<Finding>, StoreError> {
    let mut findings: Vec<Finding> = store
        .read(audit::count)?
        .into_iter()
        .map(|(problem, count)| Finding {
            problem,
            count,
            fixed: false,
        })
        .collect();
    findings.push(Finding {
        problem: "named clusters whose summary does not match their faces",
        count: store.read(audit::stale_summaries)?,
        fixed: false,
    });
    if fix && findings.iter().any(|f| f.count > 0) {
        store.write(|tx| -> Result<(), StoreError> {
            audit::repair(tx)?;
            assign::refresh_manual(tx)?;
            Ok(())
        })?;
        for f in findings.iter_mut().filter(|f| f.count > 0) {
            f.fixed = true;
        }
    }
    Ok(findings)
}
