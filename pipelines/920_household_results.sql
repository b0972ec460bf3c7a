-- household_results: one row per accepted household with its verdict and figures.
-- Inputs: households, params, verdicts, household_income, household_assets,
-- household_stale. Output: household_id, verdict, members, income_total and income_den
-- (per-capita monthly income = income_total / income_den, rounded for display),
-- assets_total, standard_monthly, stale_here (the sources stale for this household
-- alone, comma-separated and sorted; NULL when none). SPEC §7 results.jsonl.
CREATE VIEW household_results AS
SELECT h.household_id,
       v.verdict,
       h.members,
       hi.income_total,
       h.members * p.income_months AS income_den,
       ha.assets_total,
       p.standard_monthly,
       st.stale_here
FROM households h
JOIN params p ON p.household_id = h.household_id
JOIN verdicts v ON v.household_id = h.household_id
JOIN household_income hi ON hi.household_id = h.household_id
JOIN household_assets ha ON ha.household_id = h.household_id
LEFT JOIN (
    SELECT household_id, string_agg(source, ',' ORDER BY source) AS stale_here
    FROM household_stale
    GROUP BY household_id
) st ON st.household_id = h.household_id
