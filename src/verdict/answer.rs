//! A run's answer: every accepted household's result, in household_id order, given
//! chunk by chunk. A small run holds its results; a large one keeps its flags and
//! evidence on disk, partitioned by chunk of households (see [`super::spill`]), and
//! assembles one chunk at a time each time it is read — what a run holds of its answer
//! is one chunk, however heavy the evidence.

use super::results::HouseholdResult;
use super::spill::{SpillError, Spilled, CHUNK_HOUSEHOLDS};

/// Every accepted household's result, in household_id order.
#[derive(Debug)]
pub struct Answer(Kind);

#[derive(Debug)]
enum Kind {
    /// Held whole (a run of at most one chunk, or a test).
    Held(Vec<HouseholdResult>),
    /// On disk, assembled a chunk at a time.
    Spilled(Spilled),
}

impl Answer {
    /// An answer held in memory; `results` sorted by household_id.
    pub fn held(results: Vec<HouseholdResult>) -> Answer {
        Answer(Kind::Held(results))
    }

    /// An answer kept on disk.
    pub(crate) fn spilled(spilled: Spilled) -> Answer {
        Answer(Kind::Spilled(spilled))
    }

    /// How many households it answers.
    pub fn len(&self) -> usize {
        match &self.0 {
            Kind::Held(r) => r.len(),
            Kind::Spilled(s) => s.households(),
        }
    }

    /// Whether it answers no household.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Gives `each` the results chunk after chunk, in household_id order; stops at the
    /// first error.
    pub fn each_chunk<E: From<SpillError>>(
        &self,
        mut each: impl FnMut(&[HouseholdResult]) -> Result<(), E>,
    ) -> Result<(), E> {
        match &self.0 {
            Kind::Held(results) => {
                for chunk in results.chunks(CHUNK_HOUSEHOLDS) {
                    each(chunk)?;
                }
                Ok(())
            }
            Kind::Spilled(s) => {
                for k in 0..s.chunks() {
                    each(&s.assemble(k)?)?;
                }
                Ok(())
            }
        }
    }

    /// The result of household `household_id`, if the run answered it.
    pub fn find(&self, household_id: &str) -> Result<Option<HouseholdResult>, SpillError> {
        match &self.0 {
            Kind::Held(results) => Ok(results
                .binary_search_by(|r| r.household_id.as_str().cmp(household_id))
                .ok()
                .map(|i| results[i].clone())),
            Kind::Spilled(s) => match s.chunk_of(household_id) {
                Some(k) => Ok(s
                    .assemble(k)?
                    .into_iter()
                    .find(|r| r.household_id == household_id)),
                None => Ok(None),
            },
        }
    }

    /// Every result, held (tests and small runs).
    pub fn collect(&self) -> Result<Vec<HouseholdResult>, SpillError> {
        let mut all = Vec::with_capacity(self.len());
        self.each_chunk(|c| {
            all.extend_from_slice(c);
            Ok::<(), SpillError>(())
        })?;
        Ok(all)
    }
}
