-- rule_income: income_over_limit, with the records the income rests on as evidence
-- (each member's wage records from the department whose total was taken, and the
-- counted other income).
-- Inputs: household_income, income_records, member_income. Output: flag rows.
-- SPEC §5.2, severity disqualifying; value = per-capita monthly income
-- (income_total / (n × months)), limit = S × income_multiplier.
CREATE VIEW rule_income AS
SELECT hi.household_id,
       'income_over_limit' AS rule,
       'disqualifying' AS severity,
       CAST(NULL AS VARCHAR) AS member,
       'money' AS unit,
       CAST(hi.income_total AS DECIMAL(38, 6)) AS value_num,
       hi.members * hi.income_months AS value_den,
       CAST(NULL AS VARCHAR) AS value_text,
       CAST(hi.income_limit_monthly AS DECIMAL(38, 6)) AS limit_num,
       CAST(1 AS BIGINT) AS limit_den,
       r.ev_table,
       r.ev_file,
       r.ev_row
-- The members (one row each) come first and the income records last: the engine builds
-- its hash table on the left side, so it holds the members of the households over the
-- limit, never every income record of theirs (on heavy evidence, millions).
FROM member_income mi
JOIN household_income hi ON hi.household_id = mi.household_id
JOIN income_records r ON r.household_id = mi.household_id AND r.id_number = mi.id_number
WHERE hi.income_total > hi.income_limit_total
  AND (r.part = 'other'
       OR (r.part = 'hr_wage' AND mi.hr_wage >= mi.tax_wage)
       OR (r.part = 'tax_wage' AND mi.tax_wage > mi.hr_wage))
