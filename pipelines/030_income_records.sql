-- income_records: the income records of every member inside the household's income
-- window, tagged as hr wage, tax wage or other income.
-- Inputs: member_params, hr_income, tax_income, param_excluded_hr_kinds,
-- param_excluded_tax_categories. Output: one row per counted source record.
-- SPEC §5.2: non-wage kinds/categories listed in the policy's exclusions are left out;
-- wages are always kept (the policy refuses excluding them).
CREATE VIEW income_records AS
SELECT mp.household_id,
       mp.id_number,
       CASE WHEN h.kind = 'wage' THEN 'hr_wage' ELSE 'other' END AS part,
       h.amount,
       'hr_income' AS ev_table,
       h.src_file AS ev_file,
       h.src_row AS ev_row
FROM member_params mp
JOIN hr_income h ON h.id_number = mp.id_number
LEFT JOIN param_excluded_hr_kinds x ON x.household_id = mp.household_id AND x.kind = h.kind
WHERE h.period >= mp.window_start
  AND h.period < mp.window_end
  AND (h.kind = 'wage' OR x.kind IS NULL)
UNION ALL
SELECT mp.household_id,
       mp.id_number,
       CASE WHEN t.category = 'wage' THEN 'tax_wage' ELSE 'other' END,
       t.income,
       'tax_income',
       t.src_file,
       t.src_row
FROM member_params mp
JOIN tax_income t ON t.id_number = mp.id_number
LEFT JOIN param_excluded_tax_categories x ON x.household_id = mp.household_id AND x.category = t.category
WHERE t.period >= mp.window_start
  AND t.period < mp.window_end
  AND (t.category = 'wage' OR x.category IS NULL)
