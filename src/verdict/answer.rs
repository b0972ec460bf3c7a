//! A run's answer: every accepted household's result, in household_id order, given
//! chunk by chunk, assembled from what [`super::spill`] kept each time it is read — what
//! a run holds of its answer is one chunk, however heavy the evidence.

use super::results::HouseholdResult;
use super::spill::{SpillError, Spilled};

/// Every accepted household's result, in household_id order.
#[derive(Debug)]
pub struct Answer(Spilled);

impl Answer {
    /// The answer kept by `spilled`.
    pub(crate) fn spilled(spilled: Spilled) -> Answer {
        Answer(spilled)
    }

    /// How many households it answers.
    pub fn len(&self) -> usize {
        self.0.households()
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
        for k in 0..self.0.chunks() {
            each(&self.0.assemble(k)?)?;
        }
        Ok(())
    }

    /// The result of household `household_id`, if the run answered it.
    pub fn find(&self, household_id: &str) -> Result<Option<HouseholdResult>, SpillError> {
        match self.0.chunk_of(household_id) {
            Some(k) => Ok(self
                .0
                .assemble(k)?
                .into_iter()
                .find(|r| r.household_id == household_id)),
            None => Ok(None),
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
