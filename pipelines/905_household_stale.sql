-- household_stale: the sources that cannot speak for a household because their dated
-- table does not reach back far enough for its check: an income table (hr_income,
-- tax_income) whose earliest period is after the first month of the household's income
-- window, a balance table (financial, housing_fund) whose earliest as_of is after D.
-- Empty windows and missing balances are then not zero: the source counts as stale for
-- that household (incomplete, never eligible on data that was never delivered).
-- Inputs: params, table_reach. Output: household_id, source (once each).
-- SPEC §5.7 (data that does not reach back to D).
CREATE VIEW household_stale AS
SELECT DISTINCT p.household_id, r.source
FROM params p
JOIN table_reach r
  ON (r.reach = 'window' AND r.earliest > p.window_start)
  OR (r.reach = 'as_of' AND r.earliest > p.as_of)
