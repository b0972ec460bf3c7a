-- household_results: one row per accepted household with its verdict and figures.
-- Inputs: households, params, verdicts, household_income, household_assets.
-- Output: household_id, verdict, members, income_total and income_den (per-capita
-- monthly income = income_total / income_den, rounded for display), assets_total,
-- standard_monthly. SPEC §7 results.jsonl.
CREATE VIEW household_results AS
SELECT h.household_id,
       v.verdict,
       h.members,
       hi.income_total,
       h.members * p.income_months AS income_den,
       ha.assets_total,
       p.standard_monthly
FROM households h
JOIN params p ON p.household_id = h.household_id
JOIN verdicts v ON v.household_id = h.household_id
JOIN household_income hi ON hi.household_id = h.household_id
JOIN household_assets ha ON ha.household_id = h.household_id
